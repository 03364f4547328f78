"""A soak: a bounded count of mixed requests against one real ``aiadmin serve`` (subprocess,
loopback, PostgreSQL + Redis, simulated WhatsApp), watching the server's resident memory.

    .venv/bin/python bench/soak.py [--requests N] [--salons S] [--pages P]
                                   [--connections C] [--max-seconds T] [--quick] [--probe DIR]

Set-up (not counted): ``S`` salons registered and linked, ``P`` more registered with their
connect page open (``bench/load.py``'s ``setup``). Each open page asks for a new code
(``request-qr``) whenever its round ends (``qr-expired``), as a person would click again.

The mix, repeated in blocks of 10 requests (request ``i`` is of kind ``MIX[i % 10]``):

- 5 × ``GET /marketplace/status/{id}`` with the salon's ``sk_`` key (200);
- 2 × ``GET /marketplace/qr/{token}`` of an open page (200 with a code; 409 ``no_qr`` and
  503 between rounds are expected answers, counted apart);
- 2 × ``POST /marketplace/webhook/{id}`` with the salon's ``X-Webhook-Secret``: a
  ``record:update`` whose ``data`` is the whole record with a newer change time (stored
  without YClients), record ids cycling over ``RECORDS`` per salon (200);
- 1 × ``POST /dev/simulator/{id}/inbound`` (admin key): a client's message, senders cycling
  over ``PHONES`` per salon (200; the assistant answers without an LLM or YClients).

``C`` workers (default 8) share one httpx pool of ``C`` keep-alive connections and take the
next request index until ``N`` are done or ``--max-seconds`` passed (then it says so). Eight
in flight keep one server process busy; more only queue (and, on a shared machine, push
PostgreSQL answers past the server's 4 s deadline: 503s). ``--quick``: 5,000 requests within
300 s, a smoke run (its first tenth is mostly warm-up). The server's VmRSS
is read at the start and after each tenth of ``N``; ``rss_growth_last_half_pct`` is the growth
from the 5th to the 10th point. The per-IP rate limits are raised to 10**9/min for the run
(one client address). ``--probe DIR`` (diagnosis only; it slows the server) starts the
server with ``bench/_soak_probe`` on its path: at each point the server writes its live
object counts by type and largest containers and, with ``SOAK_TRACEMALLOC=1`` in the
bench's environment, a tracemalloc snapshot (tracing from the first point on).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

# ``python bench/soak.py`` puts ``bench/`` first on sys.path, where ``bench/http.py`` would
# shadow the standard library's ``http`` and ``bench/actors.py`` the ``actors`` package.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import trio
from trio_websocket import open_websocket_url

from actors.yclients import FIRST_KEY_VERSION, derive_webhook_secret
from bench._server import ROOT, Served, aiadmin_serve, cpu_seconds, run_queue_seconds, vm_rss
from bench.load import ADMIN_KEY, RATE_LIMIT, Kind, Salon, open_page, percentile
from bench.load import setup as link_salons

JWT_SECRET = "bench secret of the soak run, long enough for HS256"  # noqa: S105
MIX = (
    "status",
    "qr",
    "status",
    "webhook",
    "status",
    "inbound",
    "status",
    "qr",
    "status",
    "webhook",
)
POINTS = 10
PHONES = 10  # distinct senders per salon (the simulated chat log keeps 100 lines each)
RECORDS = 500  # distinct record ids per salon
EXPECTED = {"status": {200}, "qr": {200, 409, 503}, "webhook": {200}, "inbound": {200}}
PROBE_DIR = Path(__file__).resolve().parent / "_soak_probe"


class SoakError(Exception):
    """A set-up step failed, or the soak saw errors."""


async def keep_page(
    served: Served, salon: Salon, ready: trio.MemorySendChannel[None], busy: Counter[str]
) -> None:
    """An unlinked salon's connect page: asks for a new code each time a round ends, and
    again a second after a "busy, try again" (``unavailable``) answer, counted in ``busy``."""
    async with open_websocket_url(served.ws_base + "/marketplace/ws") as ws:
        await open_page(ws, salon.token)
        await ready.send(None)
        while True:
            frame = json.loads(await ws.get_message())
            if frame["event"] == "qr-expired":
                await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
            elif frame["event"] == "error" and frame["data"].get("code") == "unavailable":
                busy["unavailable"] += 1
                await trio.sleep(1.0)
                await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
            elif frame["event"] == "error":
                raise SoakError(f"connect page: {frame}")


class Soak:
    """The request loop: kinds' answers, RSS points, and the server's CPU."""

    def __init__(self, served: Served, linked: list[Salon], pages: list[Salon], total: int) -> None:
        self.served = served
        self.linked = linked
        self.pages = pages
        self.total = total
        self.next = 0
        self.done = 0
        self.kinds = {name: Kind() for name in EXPECTED}
        self.points: list[tuple[int, float, int]] = []  # (requests done, seconds, RSS bytes)
        self.started = 0.0
        self.salon_ids: dict[int, int] = {}  # company id -> YClients salon id
        self.secrets: dict[int, str] = {}
        self.change = datetime(2026, 1, 1, tzinfo=UTC)
        self.probe: Path | None = None
        self.page_busy: Counter[str] = Counter()  # connect pages' "busy, try again" frames

    async def learn_salons(self, http: httpx.AsyncClient) -> None:
        """Each linked salon's YClients id (from its status) and so its webhook secret."""
        for salon in self.linked:
            answer = await http.get(
                f"/marketplace/status/{salon.company_id}", headers={"X-API-Key": salon.api_key}
            )
            if answer.status_code != 200 or not answer.json()["whatsapp_connected"]:
                raise SoakError(f"salon {salon.company_id}: {answer.text[:200]}")
            salon_id = int(answer.json()["salon_id"])
            self.salon_ids[salon.company_id] = salon_id
            self.secrets[salon.company_id] = derive_webhook_secret(
                JWT_SECRET, salon_id, FIRST_KEY_VERSION
            )

    def request(self, i: int) -> tuple[str, str, str, dict[str, object]]:
        """Request ``i``: its kind, method, path and httpx keyword arguments."""
        kind = MIX[i % len(MIX)]
        block = i // len(MIX)
        if kind == "qr":
            page = self.pages[(block * 2 + (i % len(MIX) > 4)) % len(self.pages)]
            return kind, "GET", f"/marketplace/qr/{page.token}", {}
        salon = self.linked[block % len(self.linked)]
        cid = salon.company_id
        n = block // len(self.linked)
        if kind == "status":
            return (
                kind,
                "GET",
                f"/marketplace/status/{cid}",
                {"headers": {"X-API-Key": salon.api_key}},
            )
        if kind == "inbound":
            phone = f"79{cid % 10**5:05d}{n % PHONES:04d}"
            body = {"phone": phone, "text": f"Здравствуйте, можно записаться на завтра? #{n}"}
            return (
                kind,
                "POST",
                f"/dev/simulator/{cid}/inbound",
                {
                    "json": body,
                    "headers": {"X-API-Key": ADMIN_KEY},
                },
            )
        record_id = 1 + (2 * n + (i % len(MIX) > 4)) % RECORDS
        changed = self.change + timedelta(seconds=i)
        starts = changed + timedelta(days=30)
        data = {
            "id": record_id,
            "datetime": starts.isoformat(),
            "staff_id": 7,
            "services": [{"id": 11, "title": "Стрижка", "cost": 1500}],
            "client": {"id": 1000 + record_id, "name": "Анна", "phone": f"+7999{record_id:07d}"},
            "seance_length": 3600,
            "attendance": 0,
            "deleted": False,
            "last_change_date": changed.isoformat(),
        }
        body = {
            "company_id": self.salon_ids[cid],
            "resource": "record",
            "resource_id": record_id,
            "status": "update",
            "data": data,
        }
        headers = {"X-Webhook-Secret": self.secrets[cid]}
        return kind, "POST", f"/marketplace/webhook/{cid}", {"json": body, "headers": headers}

    async def send(self, http: httpx.AsyncClient, i: int) -> None:
        kind, method, path, kwargs = self.request(i)
        answers = self.kinds[kind]
        started = time.perf_counter()
        try:
            answer = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            answers.errors[type(exc).__name__] += 1
            return
        answers.latencies.append(time.perf_counter() - started)
        status = answer.status_code
        if status == 409 and answer.json().get("error", {}).get("code") != "no_qr":
            answers.errors[f"409 {answer.text[:80]}"] += 1
        elif status not in EXPECTED[kind]:
            answers.errors[f"{status} {answer.text[:80]}"] += 1
        else:
            answers.statuses[status] += 1

    async def worker(self, http: httpx.AsyncClient, deadline: float) -> None:
        while self.next < self.total and trio.current_time() < deadline:
            i = self.next
            self.next += 1
            await self.send(http, i)
            self.done += 1
            if self.done * POINTS % self.total == 0 or self.done == self.total:
                self.point()

    def point(self) -> None:
        """Read the server's RSS now (and ask the probe, if any, for its counts)."""
        elapsed = time.perf_counter() - self.started
        rss = vm_rss(self.served.process.pid)
        self.points.append((self.done, elapsed, rss))
        if self.probe is not None:
            os.kill(self.served.process.pid, signal.SIGUSR1)
        print(
            f"point {len(self.points) - 1}: {self.done:,} requests, {elapsed:,.0f} s, "
            f"RSS {rss / 2**20:.1f} MiB",
            flush=True,
        )


async def bench(args: argparse.Namespace) -> int:
    env = {
        "AIADMIN_API_RATE_LIMIT": RATE_LIMIT,
        "AIADMIN_WS_RATE_LIMIT": RATE_LIMIT,
        "JWT_SECRET": JWT_SECRET,
    }
    if args.probe:
        env["PYTHONPATH"] = f"{PROBE_DIR}{os.pathsep}{ROOT}"
        env["SOAK_PROBE_DIR"] = args.probe
        if os.environ.get("SOAK_TRACEMALLOC"):
            env["SOAK_TRACEMALLOC"] = "1"
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=None)
    timeout = httpx.Timeout(60.0, pool=None)
    async with aiadmin_serve(ADMIN_KEY, env, tag="bench-soak") as served:
        async with httpx.AsyncClient(base_url=served.base, timeout=timeout, limits=limits) as http:
            set_up = time.perf_counter()
            linked, pages = await link_salons(served, http, args.salons, args.pages)
            set_up = time.perf_counter() - set_up
            soak = Soak(served, linked, pages, args.requests)
            soak.probe = Path(args.probe) if args.probe else None
            await soak.learn_salons(http)
            ready_send, ready_receive = trio.open_memory_channel[None](len(pages))
            async with trio.open_nursery() as nursery:
                for salon in pages:
                    nursery.start_soon(keep_page, served, salon, ready_send, soak.page_busy)
                with trio.fail_after(60):
                    for _ in pages:
                        await ready_receive.receive()
                cpu_start = cpu_seconds(served.process.pid)
                waited_start = run_queue_seconds(served.process.pid)
                own_start = time.process_time()
                soak.started = time.perf_counter()
                soak.point()
                deadline = trio.current_time() + args.max_seconds
                async with trio.open_nursery() as workers:
                    for _ in range(args.connections):
                        workers.start_soon(soak.worker, http, deadline)
                elapsed = time.perf_counter() - soak.started
                cpu = cpu_seconds(served.process.pid) - cpu_start
                waited = run_queue_seconds(served.process.pid) - waited_start
                own = time.process_time() - own_start
                nursery.cancel_scope.cancel()
        problems = served.problems()
    return report(args, soak, set_up, elapsed, cpu, waited, own, problems)


def report(
    args: argparse.Namespace,
    soak: Soak,
    set_up: float,
    elapsed: float,
    cpu: float,
    waited: float,
    own: float,
    problems: list[str],
) -> int:
    done = soak.done
    errors = sum(sum(k.errors.values()) for k in soak.kinds.values())
    print(
        f"# soak: {done:,} of {args.requests:,} requests in {elapsed:,.0f} s"
        f"{' (STOPPED at --max-seconds)' if done < args.requests else ''}; "
        f"{args.salons} linked salons, {args.pages} open connect pages; mix per 10: "
        f"5 status, 2 qr, 2 webhook, 1 inbound; {args.connections} keep-alive connections; "
        f"PostgreSQL + Redis, simulated WhatsApp; rate limits raised to {RATE_LIMIT}; "
        f"set-up {set_up:.1f} s",
        flush=True,
    )
    for name, kind in soak.kinds.items():
        if not kind.latencies:
            print(f"{name}: no answers")
            continue
        answers = ", ".join(f"{s}: {n:,}" for s, n in sorted(kind.statuses.items()))
        print(
            f"{name}: {len(kind.latencies):,} requests, p50 "
            f"{percentile(kind.latencies, 0.5) * 1000:.1f} ms, p99 "
            f"{percentile(kind.latencies, 0.99) * 1000:.1f} ms (answers {answers}; errors "
            f"{sum(kind.errors.values())} {dict(kind.errors) or ''})"
        )
    print(f"connect pages: {soak.page_busy['unavailable']} 'busy, try again' frames (retried)")
    print(f"throughput: {done / elapsed:,.1f} req/s")
    print(f"errors: {errors} (must be 0)")
    print(
        f"server_cpu: {cpu:,.0f} s ({cpu / elapsed:.0%} of one core, "
        f"{cpu / max(done, 1) * 1000:.2f} ms per request); its main thread waited {waited:,.0f} s "
        f"for a CPU; client_cpu: {own:,.0f} s ({own / elapsed:.0%} of one core)"
    )
    rss = [point[2] for point in soak.points]
    print("rss_mib: " + ", ".join(f"{r / 2**20:.1f}" for r in rss) + " (start, then each tenth)")
    if len(rss) == POINTS + 1:
        growth = (rss[POINTS] - rss[POINTS // 2]) / rss[POINTS // 2] * 100
        print(f"rss_growth_last_half_pct: {growth:.2f} % (point 5 -> point 10; target <= 5)")
        growth_all = (rss[POINTS] - rss[1]) / rss[1] * 100
        print(f"rss_growth_first_to_last_pct: {growth_all:.2f} % (point 1 -> point 10)")
    else:
        print("rss_growth_last_half_pct: not measured (the run stopped before its last point)")
    print(f"server_log_problems: {len(problems)} WARNING/ERROR lines")
    for line in problems[:5]:
        print(f"  {line[:300]}")
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--salons", type=int, default=20, help="linked salons (default 20)")
    parser.add_argument("--pages", type=int, default=4, help="open connect pages (default 4)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument(
        "--max-seconds", type=float, default=4 * 3600.0, help="hard cap on the request loop"
    )
    parser.add_argument("--probe", default="", help="write the server's object counts here")
    parser.add_argument(
        "--quick", action="store_true", help="5,000 requests, at most 300 s (a smoke run)"
    )
    args = parser.parse_args()
    if args.quick:
        args.requests = min(args.requests, 5_000)
        args.max_seconds = min(args.max_seconds, 300.0)
    if args.requests < POINTS or args.requests % POINTS:
        parser.error(f"--requests must be a positive multiple of {POINTS}")
    if args.probe:
        probe = Path(args.probe).resolve()
        probe.mkdir(parents=True, exist_ok=True)
        args.probe = str(probe)
    sys.exit(trio.run(bench, args))


if __name__ == "__main__":
    main()
