"""A real ``aiadmin serve`` for benchmarks: a subprocess on loopback over a throwaway
PostgreSQL database and Redis key prefix (both removed after), simulated WhatsApp.

Import it as ``bench._server`` with the repository root (not ``bench/``) on ``sys.path``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database

ROOT = Path(__file__).resolve().parent.parent
LISTEN_LIMIT = 60.0
STOP_LIMIT = 30.0


class ServerError(Exception):
    """The served process exited, did not listen in time, or logged problems."""


@dataclass(frozen=True)
class Served:
    """A running server: its process, base URL, admin key and log file."""

    process: trio.Process
    base: str
    admin_key: str
    log_path: Path

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    def problems(self) -> list[str]:
        """WARNING, ERROR and traceback lines the server logged so far."""
        return [
            line
            for line in self.log_path.read_text().splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]


def vm_rss(pid: int) -> int:
    """The process's resident set (``VmRSS`` of ``/proc/<pid>/status``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ServerError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user + system (``/proc/<pid>/stat``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_seconds(pid: int) -> float:
    """Seconds the process's main thread was runnable but waiting for a CPU so far
    (``/proc/<pid>/schedstat``): how much a shared machine held it back."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(
    database_url: str, prefix: str, port: int, admin_key: str, tag: str
) -> dict[str, str]:
    """The environment of a benchmarked ``aiadmin serve``: loopback ``port``, the given
    database and Redis prefix, the simulated WhatsApp, the admin key, a JWT secret."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "AIADMIN_HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "AIADMIN_REDIS_PREFIX": prefix,
        "ADMIN_API_KEY": admin_key,
        "JWT_SECRET": f"bench secret of the {tag} run, long enough for HS256",
        "WHATSAPP_PROVIDER": "simulated",
    }


@asynccontextmanager
async def aiadmin_serve(
    admin_key: str, extra_env: dict[str, str], tag: str = "bench"
) -> AsyncIterator[Served]:
    """Spawn ``aiadmin serve`` on a fresh database and Redis prefix; yield once ``/health``
    answers 200; terminate it (then kill after 30 s) and remove the database and prefix."""
    prefix = new_redis_prefix(tag)
    try:
        async with temp_database() as database_url:
            with tempfile.TemporaryDirectory(prefix=f"aiadmin-{tag}-") as workdir:
                port = free_port()
                env = serve_env(database_url, prefix, port, admin_key, tag) | extra_env
                executable = Path(sys.executable).with_name("aiadmin")
                command = (
                    [str(executable)] if executable.exists() else [sys.executable, "-m", "web.cli"]
                )
                log_path = Path(workdir) / "server.log"
                with log_path.open("wb") as log:
                    process = await trio.lowlevel.open_process(
                        [*command, "serve"],
                        cwd=workdir,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                served = Served(process, f"http://127.0.0.1:{port}", admin_key, log_path)
                try:
                    await _wait_listening(served)
                    yield served
                except BaseException:
                    tail = log_path.read_text()[-3000:]
                    print(f"aiadmin serve's log (tail):\n{tail}", file=sys.stderr)
                    raise
                finally:
                    with trio.CancelScope(shield=True):
                        process.terminate()
                        with trio.move_on_after(STOP_LIMIT):
                            await process.wait()
                        if process.poll() is None:
                            process.kill()
                            await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            await delete_redis_prefix(prefix)


async def _wait_listening(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        with trio.fail_after(LISTEN_LIMIT):
            while True:
                if served.process.poll() is not None:
                    raise ServerError("aiadmin serve exited")
                try:
                    if (await http.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)
