"""Start-up failures of ``aiadmin serve`` (issue 12, item 15), as real subprocesses: the port
taken, PostgreSQL unreachable, and Redis down at start in production each end with one clear
line (what, which address, what to check) and an exit code other than 0 — never a traceback,
never a password. Every run is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.web.test_server import free_port

AIADMIN = str(Path(sys.executable).parent / "aiadmin")
RUN_TIMEOUT = 30.0
PASSWORD = "s3cret-Passw0rd"


async def serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``aiadmin serve`` with only ``env`` (no ``.env``: a fresh directory); it must end."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "LOG_LEVEL": "warning"}
    if "PYTHONPATH" in os.environ:  # the code under test, wherever the run points it
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    with trio.fail_after(RUN_TIMEOUT):
        return await trio.run_process(
            [AIADMIN, "serve"],
            env={**base, **env},
            cwd=cwd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def the_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The one ``aiadmin:`` line of a failed start; nothing else resembling an error."""
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode not in (0, None), out
    assert "Traceback" not in out and "Error:" not in out, out
    lines = [line for line in done.stderr.decode().splitlines() if line.startswith("aiadmin:")]
    assert len(lines) == 1, out
    assert "AI Admin is serving" not in out
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


async def test_port_in_use_is_one_line(taken_port: int, tmp_path: Path) -> None:
    line = the_line(await serve({"PORT": str(taken_port)}, tmp_path))
    assert line == (
        f"aiadmin: cannot listen on 127.0.0.1:{taken_port}: the address is already in use; "
        "stop the other server on that port or choose another PORT"
    )


async def test_postgres_unreachable_is_one_line(tmp_path: Path) -> None:
    closed = free_port()
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed}/aiadmin"
    done = await serve({"PORT": str(free_port()), "DATABASE_URL": url}, tmp_path)
    line = the_line(done)
    assert line == (
        f"aiadmin: cannot reach PostgreSQL at 127.0.0.1:{closed}/aiadmin (DATABASE_URL): "
        "connection refused; check that PostgreSQL runs there and accepts connections"
    )
    assert PASSWORD not in done.stdout.decode() + done.stderr.decode()


async def test_redis_down_at_start_in_production_is_one_line(
    database_url: str, tmp_path: Path
) -> None:
    closed = free_port()
    env = {
        "AIADMIN_ENV": "production",
        "PORT": str(free_port()),
        "JWT_SECRET": "j" * 40,
        "ADMIN_API_KEY": "admin-key-0123456789",
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{closed}/0",
        "WHATSAPP_PROVIDER": "neonize",
        "WHATSAPP_SESSIONS_PATH": str(tmp_path / "sessions"),
        "YCLIENTS_API_KEY": "partner-token",
        "YCLIENTS_APPLICATION_ID": "1",
        "PUBLIC_BASE_URL": "https://ai-admin.app",
    }
    done = await serve(env, tmp_path)
    line = the_line(done)
    assert line == (
        f"aiadmin: cannot reach Redis at 127.0.0.1:{closed}/0 (REDIS_URL): connection refused; "
        "check that Redis runs there and accepts connections"
    )
    assert PASSWORD not in done.stdout.decode() + done.stderr.decode()
