"""N ``aiadmin serve`` processes behind nginx on one machine, over PostgreSQL and Redis.

    make cluster N=3                      # or: .venv/bin/python scripts/cluster.py --processes 3
    .venv/bin/python scripts/cluster.py nginx-config --listen 80 --upstream 127.0.0.1:3001 ...

``run`` (the default) starts, in a work directory of its own:

* with the simulated WhatsApp (the default): one shared simulated world
  (``scripts/cluster_world.py``) that every process's sessions connect to, so a salon keeps
  its link when another process takes it over;
* N processes on consecutive loopback ports (``--first-port``, default 3001), each with
  ``AIADMIN_CLUSTER=true``, its own ``AIADMIN_ADVERTISE_URL`` (its node id is drawn at start),
  and the same ``DATABASE_URL``, ``REDIS_URL``, admin key and JWT secret;
* Debian's nginx (``/usr/sbin/nginx``) as a non-daemon child with its own prefix, pid and
  logs, rendered from ``deploy/nginx.conf.template``, in front of them (``--listen``,
  default 8080), trusted as the only proxy (``AIADMIN_TRUSTED_PROXIES=127.0.0.1``).

It prints the URLs and runs until Ctrl-C (or SIGTERM), then stops nginx and every process
(SIGTERM; SIGKILL after their grace) and the world. Session hosts: ``AIADMIN_SESSION_HOSTS``
is passed through from the environment; with the simulated WhatsApp there are none to start
(the sessions are plain objects talking to the shared world); with neonize each process
starts its own hosts.

:func:`open_cluster` is the same as an async context manager, for the end-to-end test and
``bench/cluster.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
NGINX = "/usr/sbin/nginx"
#: How long a process, nginx or the world may take to answer after it is spawned.
START_LIMIT = 60.0
#: How long a stopped process may take to exit before it is killed.
STOP_LIMIT = 15.0


class ClusterError(Exception):
    """A part of the cluster did not start, or exited while starting."""


def render_nginx_config(
    listen: str, upstreams: Sequence[str], prefix: str | Path, template: Path = TEMPLATE
) -> str:
    """``deploy/nginx.conf.template`` with its placeholders filled: nginx listening on
    ``listen``, round robin over ``upstreams`` (``host:port``), writing under ``prefix``."""
    if not upstreams:
        raise ValueError("nginx needs at least one upstream")
    servers = "\n".join(
        f"        server {address} max_fails=1 fail_timeout=5s;" for address in upstreams
    )
    text = template.read_text()
    for placeholder, value in (
        ("@LISTEN@", listen),
        ("@UPSTREAM_SERVERS@", servers),
        ("@PREFIX@", str(prefix)),
    ):
        if placeholder not in text:
            raise ValueError(f"{template} lacks the placeholder {placeholder}")
        text = text.replace(placeholder, value)
    return text


def free_port() -> int:
    """A loopback port free now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def consecutive_ports(count: int, first: int | None = None) -> list[int]:
    """``count`` consecutive free loopback ports: from ``first`` (an error if one is taken),
    or from a random base when ``first`` is ``None``."""
    if first is not None:
        ports = list(range(first, first + count))
        taken = [p for p in ports if not _port_free(p)]
        if taken:
            raise ClusterError(f"port(s) already in use: {', '.join(map(str, taken))}")
        return ports
    for _ in range(100):
        base = random.randrange(20_000, 40_000)
        ports = list(range(base, base + count))
        if all(_port_free(p) for p in ports):
            return ports
    raise ClusterError(f"no {count} consecutive free ports found")


def aiadmin_command() -> list[str]:
    """How to run ``aiadmin`` with this interpreter (the console script, else the module)."""
    executable = Path(sys.executable).with_name("aiadmin")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "web.cli"]


@dataclass
class Member:
    """One ``aiadmin serve`` process of the cluster."""

    index: int
    port: int
    process: trio.Process
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown, no hand-over."""
        self.process.send_signal(signal.SIGKILL)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Cluster:
    """A running cluster: its processes, nginx's URL and (simulated) the world's phones."""

    members: list[Member]
    nginx_base: str
    world_base: str | None
    admin_key: str
    workdir: Path
    nginx_log: Path
    extra: dict[str, trio.Process] = field(default_factory=dict)

    @property
    def ws_base(self) -> str:
        return self.nginx_base.replace("http://", "ws://")

    def logs(self) -> str:
        """The tail of every process's log and of nginx's error log (for a failure report)."""
        parts = [f"--- process {m.index} (:{m.port}) ---\n{m.log_tail()}" for m in self.members]
        if self.nginx_log.exists():
            parts.append(f"--- nginx ---\n{self.nginx_log.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)


def member_env(base_env: Mapping[str, str], port: int, world_socket: str | None) -> dict[str, str]:
    """One process's environment: ``base_env`` plus its port and advertised URL."""
    env = dict(base_env)
    env.update(
        PORT=str(port),
        AIADMIN_HOST="127.0.0.1",
        AIADMIN_CLUSTER="true",
        AIADMIN_ADVERTISE_URL=f"http://127.0.0.1:{port}",
        AIADMIN_TRUSTED_PROXIES="127.0.0.1",
    )
    if world_socket is not None:
        env["AIADMIN_SIMULATED_WORLD"] = world_socket
    return env


async def _spawn(
    command: list[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> trio.Process:
    with log_path.open("wb") as log:
        return await trio.lowlevel.open_process(
            command,
            cwd=str(cwd),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: a Ctrl-C in the terminal reaches this script only, which
            # stops the children itself, in order.
            start_new_session=True,
        )


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


async def wait_http(
    url: str, process: trio.Process, what: str, log_path: Path, limit: float = START_LIMIT
) -> None:
    """Wait until ``url`` answers 200 (or fail when ``process`` exits or ``limit`` passes)."""
    async with httpx.AsyncClient(timeout=5) as http:
        with trio.move_on_after(limit):
            while True:
                if process.poll() is not None:
                    tail = _tail(log_path)
                    raise ClusterError(f"{what} exited ({process.returncode}):\n{tail}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(url)).status_code == 200:
                        return
                await trio.sleep(0.1)
    raise ClusterError(f"{what} did not answer {url} within {limit:g} s")


async def stop_process(process: trio.Process, sig: int = signal.SIGTERM) -> None:
    """Signal ``process`` and wait for it; SIGKILL after :data:`STOP_LIMIT` seconds."""
    with trio.CancelScope(shield=True):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with trio.move_on_after(STOP_LIMIT):
                await process.wait()
            if process.poll() is None:
                process.kill()
                await process.wait()


def nginx_command(prefix: Path, conf: Path) -> list[str]:
    """Debian's nginx in the foreground, on its own prefix (never the system service).

    As root, nginx's workers would switch to ``nobody``, who cannot write the prefix (a
    private temporary directory): they run as the invoking user instead."""
    extra = "daemon off;"
    if os.geteuid() == 0:
        extra += f" user {pwd.getpwuid(os.geteuid()).pw_name};"
    return [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", extra]


def _write_nginx_config(prefix: Path, listen_port: int, upstreams: Sequence[str]) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render_nginx_config(f"127.0.0.1:{listen_port}", upstreams, prefix))
    return conf


async def spawn_nginx(prefix: Path, listen_port: int, upstreams: Sequence[str]) -> trio.Process:
    """Debian's nginx on ``127.0.0.1:listen_port`` in front of ``upstreams``, configured
    from the template under ``prefix`` (created); the caller waits for it and stops it."""
    conf = _write_nginx_config(prefix, listen_port, upstreams)
    return await _spawn(nginx_command(prefix, conf), {}, prefix, prefix / "stdout.log")


@asynccontextmanager
async def open_cluster(
    *,
    processes: int,
    env: Mapping[str, str],
    admin_key: str,
    ports: Sequence[int] | None = None,
    listen_port: int | None = None,
    simulated_world: bool = True,
    world_socket: str | None = None,
    workdir: Path | None = None,
) -> AsyncIterator[Cluster]:
    """Start the world (simulated), ``processes`` servers and nginx; yield once nginx
    answers ``/health``; on exit stop nginx, then the servers, then the world.

    ``world_socket``: a simulated world the caller serves itself (``run_world`` of
    ``scripts/cluster_world.py``, e.g. with salons already linked in it); none is started.

    ``env`` is every process's base environment (``DATABASE_URL``, ``REDIS_URL``, the admin
    key, ``JWT_SECRET``, timing settings ...); each process adds its own port and URLs.
    """
    if shutil.which(NGINX) is None:
        raise ClusterError(f"{NGINX} not found: install Debian's nginx (make system-deps)")
    ports = list(ports) if ports is not None else consecutive_ports(processes)
    listen_port = listen_port or free_port()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aiadmin-cl-")))
        workdir.mkdir(parents=True, exist_ok=True)
        # In the order they stop: nginx first (no new requests), the servers (together),
        # then the world.
        running: dict[str, list[trio.Process]] = {"nginx": [], "servers": [], "world": []}
        try:
            cluster = await _start(
                processes,
                env,
                admin_key,
                ports,
                listen_port,
                simulated_world,
                world_socket,
                workdir,
                running,
            )
            yield cluster
        finally:
            with trio.CancelScope(shield=True):
                for group in running.values():
                    async with trio.open_nursery() as nursery:
                        for process in group:
                            nursery.start_soon(stop_process, process)


async def _start(
    processes: int,
    env: Mapping[str, str],
    admin_key: str,
    ports: Sequence[int],
    listen_port: int,
    simulated_world: bool,
    world_socket: str | None,
    workdir: Path,
    running: dict[str, list[trio.Process]],
) -> Cluster:
    """Spawn everything; ``running`` gets each process as it is spawned."""
    world_base = None
    extra: dict[str, trio.Process] = {}
    if simulated_world and world_socket is None:
        world_port = free_port()
        world_socket = str(workdir / "world.sock")
        world_log = workdir / "world.log"
        world = await _spawn(
            [
                sys.executable,
                str(ROOT / "scripts" / "cluster_world.py"),
                "--socket",
                world_socket,
                "--port",
                str(world_port),
            ],
            {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
            workdir,
            world_log,
        )
        running["world"].append(world)
        extra["world"] = world
        world_base = f"http://127.0.0.1:{world_port}"
        await wait_http(f"{world_base}/world/0", world, "the simulated world", world_log)
    members = []
    for index, port in enumerate(ports[:processes]):
        folder = workdir / f"node{index}"
        folder.mkdir(exist_ok=True)
        log_path = folder / "server.log"
        process = await _spawn(
            [*aiadmin_command(), "serve"], member_env(env, port, world_socket), folder, log_path
        )
        running["servers"].append(process)
        members.append(Member(index, port, process, log_path))
    async with trio.open_nursery() as nursery:
        for m in members:
            nursery.start_soon(
                wait_http, f"{m.base}/health", m.process, f"process {m.index}", m.log_path
            )
    prefix = workdir / "nginx"
    nginx = await spawn_nginx(prefix, listen_port, [f"127.0.0.1:{p}" for p in ports])
    running["nginx"].append(nginx)
    extra["nginx"] = nginx
    nginx_base = f"http://127.0.0.1:{listen_port}"
    nginx_log = prefix / "error.log"
    await wait_http(f"{nginx_base}/health", nginx, "nginx", nginx_log)
    return Cluster(members, nginx_base, world_base, admin_key, workdir, nginx_log, extra)


# ---- the command line ----------------------------------------------------------------------

SETTINGS_PASSED = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "AIADMIN_REDIS_PREFIX",
    "ADMIN_API_KEY",
    "JWT_SECRET",
    "LOG_LEVEL",
    "WHATSAPP_PROVIDER",
    "AIADMIN_SESSION_HOSTS",
)


def cli_env(source: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The processes' base environment for ``make cluster``: the caller's environment (every
    setting passes through), local PostgreSQL/Redis by default, one admin key and JWT secret
    generated for the run unless set, and the whole cluster's shared store of WhatsApp
    credentials in PostgreSQL."""
    env = dict(source)
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/aiadmin")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("ADMIN_API_KEY", "adm_" + secrets.token_hex(16))
    env.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
    env.setdefault("WHATSAPP_PROVIDER", "simulated")
    env.setdefault("AIADMIN_WHATSAPP_STORE", "postgres")
    env["PYTHONPATH"] = str(ROOT)
    return env, env["ADMIN_API_KEY"]


async def _run(args: argparse.Namespace) -> None:
    env, admin_key = cli_env(os.environ)
    simulated = env["WHATSAPP_PROVIDER"] == "simulated"
    workdir = Path(args.workdir) if args.workdir else None
    async with open_cluster(
        processes=args.processes,
        env=env,
        admin_key=admin_key,
        ports=consecutive_ports(args.processes, args.first_port),
        listen_port=args.listen,
        simulated_world=simulated,
        workdir=workdir,
    ) as cluster:
        print(f"AI Admin cluster: {args.processes} processes behind nginx", flush=True)
        print(f"  balancer:  {cluster.nginx_base}   (health: {cluster.nginx_base}/health)")
        for m in cluster.members:
            print(f"  process {m.index}: {m.base}   log: {m.log_path}")
        if cluster.world_base:
            print(f"  simulated WhatsApp's phones: {cluster.world_base}/world/<company id>")
            print(
                f"    scan a connect page's QR code: curl -X POST "
                f"{cluster.world_base}/world/<company id>/scan"
            )
        print(f"  admin key: {admin_key}")
        print(f"  work directory: {cluster.workdir}   (Ctrl-C stops everything)", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                print("stopping …", flush=True)
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N aiadmin processes behind nginx")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start the cluster (the default)")
    render = sub.add_parser("nginx-config", help="print deploy/nginx.conf.template rendered")
    for p in (parser, run):
        p.add_argument("--processes", "-n", type=int, default=3, help="server processes (3)")
        p.add_argument("--first-port", type=int, default=3001, help="first process's port")
        p.add_argument("--listen", type=int, default=8080, help="nginx's port (8080)")
        p.add_argument("--workdir", help="where logs and nginx's prefix go (default: a temp dir)")
    render.add_argument("--listen", default="80", help="nginx's listen (address:port or port)")
    render.add_argument(
        "--upstream", action="append", required=True, help="host:port of a process (repeat)"
    )
    render.add_argument("--prefix", default="/var/lib/aiadmin-nginx", help="nginx's own files")
    args = parser.parse_args(argv)
    if args.command == "nginx-config":
        print(render_nginx_config(args.listen, args.upstream, args.prefix), end="")
        return 0
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if shutil.which(NGINX) is None:
        print(f"cluster: {NGINX} not found (make system-deps installs nginx)", file=sys.stderr)
        return 1
    try:
        trio.run(_run, args)
    except KeyboardInterrupt:  # Ctrl-C while starting: what had started was stopped
        return 130
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
