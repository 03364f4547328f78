"""A load test as a user would run one: a real ``aiadmin serve`` (subprocess, loopback,
PostgreSQL + Redis, simulated WhatsApp) under salons' clients and open connect pages.

    .venv/bin/python bench/load.py [--salons N] [--clients M] [--seconds S] [--pages P]
                                   [--think T] [--qr-every Q] [--connections C] [--quick]

Set-up (not timed): ``N`` salons registered (``POST /marketplace/register``, admin key) and
linked through the connect page's WebSocket (``auth``, ``request-qr``, the simulator's
``simulate-scan``, until ``whatsapp-connected``); ``P`` more registered and left unlinked,
each with its connect page open (a WebSocket that sent ``request-qr``, held open to the end).

Load (``S`` seconds): each of the ``N × M`` clients, in a loop, writes to its salon
(``POST /dev/simulator/{id}/inbound``, admin key: the simulated phone; the assistant answers
as configured — here with no LLM or YClients) then reads its salon's status
(``GET /marketplace/status/{id}`` with the salon's own ``sk_`` key), then waits ``T`` s
(think time). Each open connect page polls ``GET /marketplace/qr/{token}`` every ``Q`` s:
200 (a live code) and 409 ``no_qr`` (no round runs now: the round ended without a scan) are
both expected answers and counted as successes, separately. Any other status or transport
error is an error; errors must be 0 (the run fails otherwise).

At most ``C`` requests are in flight at once (one httpx connection pool); a request's
latency runs from asking the pool to the full response, so time queued for a connection
counts. The server's per-IP rate limits (``AIADMIN_API_RATE_LIMIT``,
``AIADMIN_WS_RATE_LIMIT``: 30/min and 5/min per route by default) would throttle this
single-address load generator: they are raised to 10**9/min for the run, as printed.

Prints per kind: requests, req/s, p50 and p99 ms; total throughput; errors; the server's
VmRSS at the start and end of the load and its CPU time over it (``/proc/<pid>/stat``: the
share of a core it got on a shared machine, and per request) and the time its main thread
waited for a CPU (``/proc/<pid>/schedstat``); WARNING/ERROR lines it logged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# ``python bench/load.py`` puts ``bench/`` first on sys.path, where ``bench/http.py`` would
# shadow the standard library's ``http`` and ``bench/actors.py`` the ``actors`` package.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from bench._server import Served, aiadmin_serve, cpu_seconds, run_queue_seconds, vm_rss

ADMIN_KEY = "adm_bench_load_0123456789abcdef"
FIRST_SALON = 700_000
RATE_LIMIT = "1000000000/60"
SETUP_CONCURRENCY = 10


class LoadError(Exception):
    """A set-up step failed, or the load saw errors."""


@dataclass(frozen=True)
class Salon:
    company_id: int
    api_key: str
    token: str


@dataclass
class Kind:
    """The answers of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def register(http: httpx.AsyncClient, salon_id: int) -> Salon:
    """The marketplace registers a salon: its company id, ``sk_`` key and connect token."""
    answer = await http.post(
        "/marketplace/register", json={"salon_id": salon_id}, headers={"X-API-Key": ADMIN_KEY}
    )
    if answer.status_code != 201:
        raise LoadError(f"register {salon_id}: HTTP {answer.status_code} {answer.text[:200]}")
    body = answer.json()
    token = str(httpx.URL(body["connect_url"]).params["token"])
    return Salon(int(body["company_id"]), str(body["api_key"]), token)


async def open_page(ws: WebSocketConnection, token: str) -> None:
    """The connect page: ``auth`` then ``request-qr``, until the first ``qr-update``."""
    await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
    await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
    while True:
        frame = json.loads(await ws.get_message())
        if frame["event"] == "qr-update":
            return
        if frame["event"] == "error":
            raise LoadError(f"connect page: {frame}")


async def link(served: Served, salon: Salon) -> None:
    """The phone scans the page's code (``simulate-scan``) until ``whatsapp-connected``."""
    async with open_websocket_url(served.ws_base + "/marketplace/ws") as ws:
        await open_page(ws, salon.token)
        await ws.send_message(json.dumps({"event": "simulate-scan", "data": {}}))
        while True:
            frame = json.loads(await ws.get_message())
            if frame["event"] == "whatsapp-connected":
                return
            if frame["event"] == "error":
                raise LoadError(f"salon {salon.company_id}: {frame}")


async def hold_page(
    served: Served, salon: Salon, opened: trio.MemorySendChannel[None], stop: trio.Event
) -> None:
    """An unlinked salon's connect page, open until the load ends."""
    async with open_websocket_url(served.ws_base + "/marketplace/ws") as ws:
        await open_page(ws, salon.token)
        await opened.send(None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, ws)
            await stop.wait()
            nursery.cancel_scope.cancel()


async def _drain(ws: WebSocketConnection) -> None:
    """Read (and drop) the frames the server pushes to an open page (rotating codes)."""
    while True:
        await ws.get_message()


async def setup(
    served: Served, http: httpx.AsyncClient, linked: int, unlinked: int
) -> tuple[list[Salon], list[Salon]]:
    """Register ``linked + unlinked`` salons, link the first ``linked``; 10 at a time."""
    salons: list[Salon] = []
    pending = iter(range(FIRST_SALON, FIRST_SALON + linked + unlinked))

    async def registrar() -> None:
        for salon_id in pending:
            salons.append(await register(http, salon_id))

    async with trio.open_nursery() as nursery:
        for _ in range(SETUP_CONCURRENCY):
            nursery.start_soon(registrar)
    salons.sort(key=lambda s: s.company_id)
    to_link = iter(salons[:linked])

    async def linker() -> None:
        for salon in to_link:
            await link(served, salon)

    async with trio.open_nursery() as nursery:
        for _ in range(SETUP_CONCURRENCY):
            nursery.start_soon(linker)
    return salons[:linked], salons[linked:]


@dataclass
class Load:
    kinds: dict[str, Kind]
    seconds: float
    rss_start: int
    rss_end: int
    cpu: float  # the server's CPU seconds (user + system) over the load
    waited: float  # seconds its main thread was runnable but had no CPU, over the load


async def run_load(
    served: Served,
    http: httpx.AsyncClient,
    linked: list[Salon],
    pages: list[Salon],
    *,
    clients: int,
    seconds: float,
    think: float,
    qr_every: float,
    inbound: bool,
) -> Load:
    kinds = {"inbound": Kind(), "status": Kind(), "qr": Kind()}
    expected = {"inbound": {200}, "status": {200}, "qr": {200, 409}}

    async def timed(kind: str, method: str, url: str, **kwargs: object) -> None:
        started = time.perf_counter()
        try:
            answer = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            kinds[kind].errors[type(exc).__name__] += 1
            return
        kinds[kind].latencies.append(time.perf_counter() - started)
        if answer.status_code == 409 and kind == "qr":
            code = answer.json().get("error", {}).get("code")
            if code != "no_qr":
                kinds[kind].errors[f"409 {code}"] += 1
                return
        if answer.status_code not in expected[kind]:
            kinds[kind].errors[f"{answer.status_code} {answer.text[:80]}"] += 1
            return
        kinds[kind].statuses[answer.status_code] += 1

    deadline = trio.current_time() + seconds

    async def client(salon: Salon, n: int) -> None:
        phone = f"79{salon.company_id % 10**6:06d}{n:03d}"
        admin = {"X-API-Key": ADMIN_KEY}
        own = {"X-API-Key": salon.api_key}
        i = 0
        while trio.current_time() < deadline:
            if inbound:
                body = {"phone": phone, "text": f"Здравствуйте, можно записаться? #{i}"}
                await timed(
                    "inbound",
                    "POST",
                    f"/dev/simulator/{salon.company_id}/inbound",
                    json=body,
                    headers=admin,
                )
            await timed("status", "GET", f"/marketplace/status/{salon.company_id}", headers=own)
            i += 1
            await trio.sleep(think)

    async def page(salon: Salon) -> None:
        while trio.current_time() < deadline:
            await timed("qr", "GET", f"/marketplace/qr/{salon.token}")
            await trio.sleep(qr_every)

    rss_start = vm_rss(served.process.pid)
    cpu_start = cpu_seconds(served.process.pid)
    waited_start = run_queue_seconds(served.process.pid)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for salon in linked:
            for n in range(clients):
                nursery.start_soon(client, salon, n)
        for salon in pages:
            nursery.start_soon(page, salon)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(served.process.pid) - cpu_start
    waited = run_queue_seconds(served.process.pid) - waited_start
    return Load(kinds, elapsed, rss_start, vm_rss(served.process.pid), cpu, waited)


async def bench(args: argparse.Namespace) -> int:
    env = {"AIADMIN_API_RATE_LIMIT": RATE_LIMIT, "AIADMIN_WS_RATE_LIMIT": RATE_LIMIT}
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=None)
    # The pool wait is part of the latency: no pool timeout, one overall request timeout.
    timeout = httpx.Timeout(30.0, pool=None)
    async with aiadmin_serve(ADMIN_KEY, env, tag="bench-load") as served:
        async with httpx.AsyncClient(base_url=served.base, timeout=timeout, limits=limits) as http:
            set_up = time.perf_counter()
            linked, unlinked = await setup(served, http, args.salons, args.pages)
            set_up = time.perf_counter() - set_up
            stop = trio.Event()
            opened_send, opened_receive = trio.open_memory_channel[None](len(unlinked))
            async with trio.open_nursery() as nursery:
                for salon in unlinked:
                    nursery.start_soon(hold_page, served, salon, opened_send, stop)
                with trio.fail_after(60):
                    for _ in unlinked:
                        await opened_receive.receive()
                load = await run_load(
                    served,
                    http,
                    linked,
                    unlinked,
                    clients=args.clients,
                    seconds=args.seconds,
                    think=args.think,
                    qr_every=args.qr_every,
                    inbound=not args.no_inbound,
                )
                stop.set()
        problems = served.problems()
    return report(args, load, set_up, problems)


def report(args: argparse.Namespace, load: Load, set_up: float, problems: list[str]) -> int:
    total = sum(len(k.latencies) for k in load.kinds.values())
    errors = sum(sum(k.errors.values()) for k in load.kinds.values())
    print(
        f"# load: {args.salons} linked salons x {args.clients} clients "
        f"({'status only' if args.no_inbound else 'inbound + status'}, "
        f"think {args.think:g} s), {args.pages} open connect pages polling QR every "
        f"{args.qr_every:g} s, {load.seconds:.1f} s; at most {args.connections} requests in "
        f"flight; PostgreSQL + Redis, simulated WhatsApp; server rate limits raised to "
        f"{RATE_LIMIT} (API and WebSocket) for this single-address client; set-up "
        f"(register + link) {set_up:.1f} s",
        flush=True,
    )
    worst_p99 = 0.0
    for name, kind in load.kinds.items():
        if not kind.latencies:
            print(f"{name}: no answers")
            continue
        p50 = percentile(kind.latencies, 0.5) * 1000
        p99 = percentile(kind.latencies, 0.99) * 1000
        worst_p99 = max(worst_p99, p99)
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(kind.statuses.items()))
        print(
            f"{name}: {len(kind.latencies):,} requests, {len(kind.latencies) / load.seconds:,.1f} "
            f"req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (answers {answers}"
            f"{'; 409 = no_qr, expected' if name == 'qr' else ''}; errors "
            f"{sum(kind.errors.values())} {dict(kind.errors) or ''})",
            flush=True,
        )
    print(f"throughput: {total / load.seconds:,.1f} req/s ({total:,} requests)")
    print(f"p99_worst_ms: {worst_p99:.1f} ms (target < 500)")
    print(f"errors: {errors} (must be 0)")
    print(
        f"server_rss: {load.rss_start / 2**20:.1f} MiB at the start of the load -> "
        f"{load.rss_end / 2**20:.1f} MiB at its end"
    )
    print(
        f"server_cpu: {load.cpu:.1f} s over the load ({load.cpu / load.seconds:.0%} of one "
        f"core; {load.cpu / max(total, 1) * 1000:.1f} ms per request); its main thread "
        f"waited {load.waited:.1f} s for a CPU ({load.waited / load.seconds:.0%} of the run: "
        f"other processes on the machine)"
    )
    print(f"server_log_problems: {len(problems)} WARNING/ERROR lines")
    for line in problems[:5]:
        print(f"  {line[:300]}")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # The defaults are the largest load measured with p99 < 500 ms (BENCHMARKS.md, "Load").
    parser.add_argument("--salons", type=int, default=5, help="linked salons (default 5)")
    parser.add_argument("--clients", type=int, default=2, help="clients per salon (default 2)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    parser.add_argument("--pages", type=int, default=None, help="open connect pages (N/10)")
    parser.add_argument("--think", type=float, default=1.0, help="client think time, s")
    parser.add_argument("--qr-every", type=float, default=2.0, help="QR poll interval, s")
    parser.add_argument("--connections", type=int, default=64, help="requests in flight, max")
    parser.add_argument(
        "--no-inbound",
        action="store_true",
        help="clients only read status (to separate the cost of the messages)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the load for 20 s instead of 60 (under a minute)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 20.0)
    if args.pages is None:
        args.pages = max(1, args.salons // 10)
    sys.exit(trio.run(bench, args))


if __name__ == "__main__":
    main()
