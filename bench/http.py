"""HTTP and WebSocket benchmark: the real app on loopback, each figure beside a bare route
served by the same server in the same run.

    .venv/bin/python bench/http.py [--quick] [--concurrency N] [--companies N] [--viewers N]
                                   [--backends both|memory|pg] [--pg DSN] [--redis URL]

Prints ``name: value unit (baseline ...)`` lines:

- status_ratio_memory requests/s of ``GET /marketplace/status/:id`` (admin key header; an ask
                      to the company actor, JSON) ÷ requests/s of ``GET /bench/constant`` (a
                      bare route returning a constant), same server, same keep-alive
                      connections, same concurrency; in-memory storage. Both pass the app's
                      hooks (request id, rate-limit check, security headers, metrics, access
                      log), so the ratio is what the status route itself costs. Target >= 0.7.
- status_ratio_pg     the same with PostgreSQL + Redis (a server of its own over a database
                      created for the run and a fresh Redis key prefix, both removed after):
                      the rate-limit check then goes to Redis on both routes, and the status
                      route's reads, if any, to PostgreSQL. Target >= 0.7.
- status_p99_ms_memory, status_p99_ms_pg
                      p99 latency of the status requests over all measured rounds, beside the
                      constant route's p99 (same server).
- ws_first_qr_p99_ms  ``--companies`` × ``--viewers`` connect pages opened at once (default
                      100 × 10 = 1,000): time from starting the TCP connect to the first
                      ``qr-update`` frame (WebSocket handshake, ``auth`` frame with the connect
                      token, ``request-qr``, the actor starting a simulated session and rendering
                      the QR PNG); p99 and median. Baseline: the same number of sockets at once
                      on a bare WebSocket route that answers the same two frames with a constant.
                      In-memory storage.

Layout: each server runs in a child process (this file with ``--serve-child``) built like
``web/server.py`` (storage from the child's settings — in-memory, or ``DATABASE_URL`` and
``REDIS_URL`` for the PostgreSQL + Redis run — simulated WhatsApp, one
``trio_asyncio.open_loop()``, ``hypercorn.trio.serve`` with the server's own Hypercorn config)
plus the two bare routes; the API and WebSocket rate limits are raised to 10**9 per minute,
everything else is the default. The PostgreSQL + Redis server runs first (HTTP only), then the
in-memory one (HTTP, then WebSocket).
The client (this process) uses raw keep-alive HTTP/1.1 over trio sockets, far cheaper than the
server per request, so the server is the bottleneck; the two processes get a core each on a
2-core machine. HTTP rounds alternate constant/status and the best round of each counts.
WebSocket rounds use fresh companies each (a company with a live QR would answer at once).
Every phase runs under ``trio.fail_after``; any non-200 response or refused socket fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import coredis
import trio
import trio.testing

# This file is named like the standard library's ``http`` package, and ``python bench/http.py``
# puts ``bench/`` first on sys.path, which would shadow it for Hypercorn, httpx and others.
# Swap that entry for the repository root (before anything imports ``http``).
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))
assert "http" not in sys.modules or "bench" not in str(sys.modules["http"].__file__)

CONSTANT_BODY = '{"success":true,"status":"ok"}'
CONSTANT_FRAME = json.dumps({"event": "qr-update", "data": {"qr": "constant", "expiresIn": 20}})
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 30.0
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


# -- the server (child process) ------------------------------------------------------------


async def _stdin_closed() -> None:
    """Hypercorn's shutdown trigger: returns when the parent closes our stdin."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some(4096):
            pass


async def serve_child(companies: int, backlog: int | None, env: dict[str, str]) -> None:
    """Serve the real app plus the bare routes; print one JSON line once listening.

    ``env`` is the server's environment: empty for the embedded default (in-memory storage),
    ``DATABASE_URL``, ``REDIS_URL`` and ``AIADMIN_REDIS_PREFIX`` for PostgreSQL + Redis.
    """
    import trio_asyncio
    from hypercorn.trio import serve as hypercorn_serve
    from quart import websocket

    from actors import open_node
    from actors.whatsapp import open_gateway
    from config import RateLimit, settings_from_env
    from storage import open_storage
    from web._app import create_app
    from web._logging import configure_logging
    from web.server import hypercorn_config

    unlimited = RateLimit(10**9, 60.0)
    settings = dataclasses.replace(
        settings_from_env(env, dotenv=None),
        host="127.0.0.1",
        port=0,
        api_rate_limit=unlimited,
        ws_rate_limit=unlimited,
    )
    # Like `aiadmin serve` (access log at info), written to /dev/null instead of the terminal.
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - once, lives as long as the process
    configure_logging(settings.log_level, json_lines=False, stream=devnull)

    async def constant() -> tuple[str, int, dict[str, str]]:
        return CONSTANT_BODY, 200, {"Content-Type": "application/json"}

    async def ws_constant() -> None:
        await websocket.accept()
        await websocket.receive()  # the auth frame
        await websocket.receive()  # request-qr
        await websocket.send(CONSTANT_FRAME)
        while True:
            await websocket.receive()

    async with trio_asyncio.open_loop():
        async with (
            open_storage(settings) as storage,
            open_gateway(settings) as gateway,
            open_node(settings, storage, gateway) as node,
        ):
            registered = []
            for n in range(companies):
                created = await storage.companies.create(
                    10_000 + n, title=f"Bench salon {n}", phone=f"7900{n:07d}"
                )
                token = await storage.tokens.issue(created.company.id)
                registered.append([created.company.id, token])
            app = create_app(node)
            app.add_url_rule("/bench/constant", "bench_constant", constant)
            app.add_websocket("/bench/ws-constant", "bench_ws_constant", ws_constant)
            config = hypercorn_config(settings)
            if backlog is not None:
                config.backlog = backlog
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(
                    partial(hypercorn_serve, app, config, shutdown_trigger=_stdin_closed)
                )
                info = {
                    "url": next(u for u in urls if u.startswith("http://")),
                    "admin_key": settings.admin_api_key,
                    "companies": registered,
                    "backlog": config.backlog,
                }
                print(json.dumps(info), flush=True)


# -- the client ----------------------------------------------------------------------------


class BenchError(Exception):
    """A response or socket that was not what the benchmark expects."""


@dataclass
class Round:
    """One timed run of one route."""

    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; return its status code."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise BenchError("the server closed a keep-alive connection")
        buffer += chunk
    head = bytes(buffer[:end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = None
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise BenchError(f"a response without Content-Length: {head!r}")
    total = end + 4 + length
    while len(buffer) < total:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise BenchError("the server closed a connection mid-body")
        buffer += chunk
    del buffer[:total]
    return status


async def http_round(
    host: str, port: int, requests: list[list[bytes]], seconds: float, record: bool
) -> Round:
    """Each worker sends its requests in turn on one keep-alive connection for ``seconds``."""
    result = Round(0, 0.0)
    streams = [await trio.open_tcp_stream(host, port) for _ in requests]
    deadline = trio.current_time() + seconds

    async def worker(stream: trio.SocketStream, mine: list[bytes]) -> None:
        buffer = bytearray()
        i = 0
        while trio.current_time() < deadline:
            started = time.perf_counter()
            await stream.send_all(mine[i % len(mine)])
            status = await _read_response(stream, buffer)
            if status != 200:
                raise BenchError(f"HTTP {status} from {mine[i % len(mine)][:60]!r}")
            if record:
                result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            i += 1

    started = time.perf_counter()
    try:
        async with trio.open_nursery() as nursery:
            for stream, mine in zip(streams, requests, strict=True):
                nursery.start_soon(worker, stream, mine)
    finally:
        for stream in streams:
            await stream.aclose()
    result.seconds = time.perf_counter() - started
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class HttpResult:
    status: Round
    constant: Round
    status_p99: float
    constant_p99: float
    status_p99_rounds: list[float]
    constant_p99_rounds: list[float]


async def bench_http(
    server: dict[str, Any], *, concurrency: int, rounds: int, seconds: float
) -> HttpResult:
    url = server["url"]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    key = server["admin_key"]
    ids = [cid for cid, _ in server["companies"]]
    authority = f"{host}:{port}"

    def status_request(cid: int) -> bytes:
        return (
            f"GET /marketplace/status/{cid} HTTP/1.1\r\nHost: {authority}\r\n"
            f"X-API-Key: {key}\r\nAccept: application/json\r\n\r\n"
        ).encode()

    constant = (
        f"GET /bench/constant HTTP/1.1\r\nHost: {authority}\r\n"
        f"X-API-Key: {key}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    status_requests = [
        [status_request(ids[(w + k * concurrency) % len(ids)]) for k in range(8)]
        for w in range(concurrency)
    ]
    constant_requests = [[constant] for _ in range(concurrency)]
    # Warm up both routes (activates the company actors, fills caches).
    await http_round(host, int(port), status_requests, min(1.0, seconds), record=False)
    await http_round(host, int(port), constant_requests, min(1.0, seconds), record=False)
    best_status: Round | None = None
    best_constant: Round | None = None
    status_latencies: list[float] = []
    constant_latencies: list[float] = []
    status_rounds: list[float] = []
    constant_rounds: list[float] = []
    for _ in range(rounds):
        c = await http_round(host, int(port), constant_requests, seconds, record=True)
        s = await http_round(host, int(port), status_requests, seconds, record=True)
        constant_latencies += c.latencies
        status_latencies += s.latencies
        constant_rounds.append(percentile(c.latencies, 0.99))
        status_rounds.append(percentile(s.latencies, 0.99))
        best_constant = c if best_constant is None or c.rate > best_constant.rate else best_constant
        best_status = s if best_status is None or s.rate > best_status.rate else best_status
    assert best_status is not None and best_constant is not None
    return HttpResult(
        best_status,
        best_constant,
        percentile(status_latencies, 0.99),
        percentile(constant_latencies, 0.99),
        status_rounds,
        constant_rounds,
    )


async def ws_round(
    url: str, tokens: list[str], viewers: int, *, path: str, timeout: float
) -> list[float]:
    """Open ``len(tokens) * viewers`` sockets at once; seconds from connect to first QR each.

    All sockets stay open until every one has its first QR (they are concurrent viewers),
    then all close. Raises :class:`BenchError` naming how many did not make it in time.
    """
    from trio_websocket import open_websocket_url

    ws_url = url.replace("http://", "ws://") + path
    go = trio.Event()
    everyone_measured = trio.Event()
    total = len(tokens) * viewers
    times: list[float] = []
    opened: list[float] = []
    failures: list[str] = []

    async def viewer(token: str) -> None:
        await go.wait()
        started = time.perf_counter()
        try:
            async with open_websocket_url(
                ws_url, connect_timeout=timeout, disconnect_timeout=5.0
            ) as ws:
                opened.append(time.perf_counter() - started)
                await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
                await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
                while True:
                    frame = json.loads(await ws.get_message())
                    if frame.get("event") == "qr-update":
                        times.append(time.perf_counter() - started)
                        break
                    if frame.get("event") == "error":
                        raise BenchError(f"the server sent an error frame: {frame}")
                if len(times) == total:
                    everyone_measured.set()
                await everyone_measured.wait()
        except Exception as exc:  # one line per kind, not a thousand tracebacks
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            if len(failures) + len(times) == total:
                everyone_measured.set()

    with trio.move_on_after(timeout) as waited:
        async with trio.open_nursery() as nursery:
            for token in tokens:
                for _ in range(viewers):
                    nursery.start_soon(viewer, token)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
    if waited.cancelled_caught or failures:
        kinds = sorted(set(failures))[:5]
        raise BenchError(
            f"{path}: {len(times)} of {total} sockets got their first frame within "
            f"{timeout:g} s ({len(opened)} completed the handshake); failures: "
            f"{len(failures)} {kinds}"
        )
    return times


@dataclass(frozen=True)
class WsResult:
    first_qr: list[list[float]]  # one list of seconds per round
    baseline: list[list[float]]

    @staticmethod
    def flat(rounds: list[list[float]]) -> list[float]:
        return [t for r in rounds for t in r]


async def bench_ws(
    server: dict[str, Any], *, companies: int, viewers: int, rounds: int, timeout: float
) -> WsResult:
    """Baseline then real, per round; round ``r`` uses companies never opened before.

    Earlier rounds' companies keep linking (rotating QR codes) without viewers, as salons
    that closed the page would, so later rounds run beside that background work.
    """
    pairs = server["companies"]
    first_qr: list[list[float]] = []
    baseline: list[list[float]] = []
    for r in range(rounds):
        tokens = [token for _, token in pairs[r * companies : (r + 1) * companies]]
        baseline.append(
            await ws_round(
                server["url"], tokens, viewers, path="/bench/ws-constant", timeout=timeout
            )
        )
        first_qr.append(
            await ws_round(server["url"], tokens, viewers, path="/marketplace/ws", timeout=timeout)
        )
    return WsResult(first_qr, baseline)


@contextlib.contextmanager
def real_backends(pg_admin_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and Redis key prefix for one server child (its
    environment), dropped and deleted afterwards. The server migrates the database at start."""
    name = f"aiadmin_bench_http_{uuid.uuid4().hex[:10]}"
    prefix = f"aiadmin-bench-http:{uuid.uuid4().hex[:10]}:"

    async def create() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def delete_prefix() -> None:
        client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
        async with client:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(keys)

    asyncio.run(create())
    try:
        yield {
            "DATABASE_URL": pg_admin_url.rsplit("/", 1)[0] + "/" + name,
            "REDIS_URL": redis_url,
            "AIADMIN_REDIS_PREFIX": prefix,
        }
    finally:
        asyncio.run(drop())
        trio.run(delete_prefix)


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (1,000+ sockets on each side)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def with_server(
    companies: int,
    backlog: int | None,
    body: Callable[[dict[str, Any]], Awaitable[None]],
    env: dict[str, str] | None = None,
) -> None:
    """Start the server child (its settings built from ``env``: in-memory storage when empty),
    run ``body(info)``, then stop it by closing its stdin."""
    extra = [] if backlog is None else ["--backlog", str(backlog)]
    extra += ["--child-env", json.dumps(env or {})]
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--serve-child", "--companies", str(companies), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = bytearray()
        with trio.fail_after(SERVER_START_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    raise BenchError("the server child exited before listening")
                line += chunk
        await body(json.loads(line))
    finally:
        await process.stdin.aclose()
        with trio.move_on_after(SERVER_STOP_TIMEOUT) as waited:
            await process.wait()
        if waited.cancelled_caught:
            process.kill()
            await process.wait()
            print("warning: the server child did not stop in time; killed", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short rounds (about a minute in all with both servers; 70 s at load 6 on 2 cores)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP workers (default 16)")
    parser.add_argument("--companies", type=int, default=100, help="companies per WS round")
    parser.add_argument("--viewers", type=int, default=10, help="WebSockets per company")
    parser.add_argument(
        "--backlog",
        type=int,
        default=None,
        help="override the listen backlog of web.server.hypercorn_config (default: keep it)",
    )
    parser.add_argument(
        "--backends",
        choices=("both", "memory", "pg"),
        default="both",
        help="memory: the embedded default (HTTP and WebSocket figures); pg: the HTTP figures "
        "with PostgreSQL + Redis; both (default)",
    )
    parser.add_argument("--pg", default=PG_ADMIN_URL, help="PostgreSQL admin DSN")
    parser.add_argument("--redis", default=REDIS_URL, help="Redis URL")
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-env", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.serve_child:
        trio.run(serve_child, args.companies, args.backlog, json.loads(args.child_env))
        return

    http_rounds, http_seconds, ws_rounds = (2, 1.5, 1) if args.quick else (5, 4.0, 3)
    ws_timeout = 25.0 if args.quick else 60.0

    http_budget = http_rounds * 2 * http_seconds + 30
    results: dict[str, HttpResult] = {}

    async def run_pg(server: dict[str, Any]) -> None:
        with trio.fail_after(http_budget):
            results["pg"] = await bench_http(
                server, concurrency=args.concurrency, rounds=http_rounds, seconds=http_seconds
            )

    def report_http(backend: str, h: HttpResult, what: str) -> None:
        ratio = h.status.rate / h.constant.rate
        print(
            f"status_ratio_{backend}: {ratio:.2f} ratio ({what}; status {h.status.rate:,.0f} "
            f"req/s vs bare constant route {h.constant.rate:,.0f} req/s on the same server; "
            f"{args.concurrency} keep-alive connections; best of {http_rounds} rounds of "
            f"{http_seconds:g} s; target >= 0.7)",
            flush=True,
        )

    def report_p99(backend: str, h: HttpResult) -> None:
        print(
            f"status_p99_ms_{backend}: {h.status_p99 * 1000:.2f} ms (median "
            f"{statistics.median(h.status.latencies) * 1000:.2f} ms, p99 per round "
            f"[{', '.join(f'{v * 1000:.1f}' for v in h.status_p99_rounds)}]; "
            f"bare constant route p99 {h.constant_p99 * 1000:.2f} ms, median "
            f"{statistics.median(h.constant.latencies) * 1000:.2f} ms, per round "
            f"[{', '.join(f'{v * 1000:.1f}' for v in h.constant_p99_rounds)}])",
            flush=True,
        )

    def report_both() -> None:
        if "memory" in results:
            report_http("memory", results["memory"], "in-memory storage")
        if "pg" in results:
            report_http("pg", results["pg"], "PostgreSQL + Redis")
        for backend in ("memory", "pg"):
            if backend in results:
                report_p99(backend, results[backend])

    async def run_memory(server: dict[str, Any]) -> None:
        with trio.fail_after(http_budget):
            results["memory"] = await bench_http(
                server, concurrency=args.concurrency, rounds=http_rounds, seconds=http_seconds
            )
        report_both()
        w = await bench_ws(
            server,
            companies=args.companies,
            viewers=args.viewers,
            rounds=ws_rounds,
            timeout=ws_timeout,
        )
        n = args.companies * args.viewers
        qr, base = WsResult.flat(w.first_qr), WsResult.flat(w.baseline)
        per_round = ", ".join(f"{percentile(r, 0.99) * 1000:.0f}" for r in w.first_qr)
        base_round = ", ".join(f"{percentile(r, 0.99) * 1000:.0f}" for r in w.baseline)
        print(
            f"ws_first_qr_p99_ms: {percentile(qr, 0.99) * 1000:.0f} ms "
            f"({n:,} viewers at once = {args.companies} companies x {args.viewers}; "
            f"median {statistics.median(qr) * 1000:.0f} ms, max {max(qr) * 1000:.0f} ms; "
            f"p99 per round [{per_round}]; bare WebSocket route p99 "
            f"{percentile(base, 0.99) * 1000:.0f} ms, median "
            f"{statistics.median(base) * 1000:.0f} ms, per round [{base_round}]; "
            f"listen backlog {server['backlog']})",
            flush=True,
        )

    started = time.perf_counter()
    if args.backends in ("both", "pg"):
        with real_backends(args.pg, args.redis) as env:
            trio.run(with_server, args.companies, args.backlog, run_pg, env)
    if args.backends in ("both", "memory"):
        trio.run(with_server, args.companies * ws_rounds, args.backlog, run_memory)
    else:
        report_both()
    print(f"# total {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
