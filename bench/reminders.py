"""Reminder scheduler benchmarks (issue 11), each figure beside a baseline of the same run.

    .venv/bin/python bench/reminders.py [--quick] [--lag-only | --idle-only]

Production storage: PostgreSQL (one throwaway database, dropped at the end) and Redis (a
throwaway key prefix, deleted), both on loopback, the default pool (10 connections); the
real clock; the simulated WhatsApp in process; the node as ``aiadmin serve`` composes it
(the assistant, without YClients, and the reminder scheduler with ``ReminderOptions()``'s
defaults) and production settings (pacing included). Prints one line per figure,
``name: value unit``. The idle part runs first; its future rows stay in the schedule for
the lag part, as in a running system. After a bulk insert the bench runs ``ANALYZE`` (what
autovacuum does within a minute): pooled connections otherwise keep plans made while the
table was empty.

* ``reminders_due_lag_p99_ms``: 10,000 reminders (``--quick``: 200) for 5,000 visits of 50
  linked salons (quick: 10), due evenly over one minute (quick: 2 s), the first a moment
  after planning ends. A row's lag runs from its ``due_at`` to the moment the company actor
  accepted its ``SendText`` (the scheduler's ask of the actor returned: the ``messages`` row
  written, the message in the paced outbound queue); p50, p99, max; also read back from the
  database (``messages.created_at - due_at``); the time from the first due moment to the last
  hand-over and the process CPU per row. Baseline, same run and database, before the node
  starts, as many rows of as many other (unlinked) salons: a bare loop — sleep until
  ``next_due``, ``claim_due`` 100, then per row (16 at once, the scheduler's concurrency)
  ``messages.record_outbound`` with the row's message id and ``mark_sent``.
* ``scheduler_idle_cpu``: process CPU time (``time.process_time``) over 30 s (quick: 3 s) of
  a node idling with 20 linked salons and 100,000 reminders planned over the next week
  (quick: 5,000), nothing due, with the scheduler; baseline: the same node without it; the
  two alternate (2 rounds; quick: 1), the lowest of each counts; their difference in
  CPU-seconds per minute and the scheduler's passes in the window. Also
  ``scheduler_idle_pass_ms``: one idle pass (claim, next due, backlog; the median of 20) with
  those rows planned, beside the same pass before any was planned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import trio
import trio_asyncio

# ``python bench/reminders.py`` puts ``bench/`` first on sys.path, where ``bench/http.py``
# would shadow the standard library's ``http``: the repository root instead.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Node, open_node
from actors.assistant import AssistantOptions
from actors.company import messages as m
from actors.reminders import (
    ReminderOptions,
    ReminderScheduler,
    ReminderSettings,
    VisitFacts,
    visit_details,
)
from actors.whatsapp import SimulatedGateway, SimulatedWorld
from config import Settings, settings_from_env
from storage import PlannedReminder, ReminderStatus, SalonRecord, Storage, open_storage
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database
from tests.support.startup import link_stored

ZONE = ZoneInfo("Europe/Moscow")
#: No quiet hours: the bench runs at whatever hour the machine's clock says.
NO_QUIET = {**ReminderSettings().to_json(), "quiet_start": "12:00", "quiet_end": "12:00"}
KINDS = ("day_before", "two_hours")
#: Rows per ``plan`` call (its maximum is 1,000) and calls in flight at once.
PLAN_CHUNK = 1000
PLAN_CONCURRENCY = 8
#: The bare loop's claim size and concurrency: the scheduler's (``batch``, ``CONCURRENCY``).
BARE_BATCH = 100
BARE_CONCURRENCY = 16
#: The lag part: reminders, salons, seconds over which they fall due.
LAG_FULL = (10_000, 50, 60.0)
LAG_QUICK = (200, 10, 2.0)
#: The idle part: future rows, seconds per window, rounds (each with and without).
IDLE_FULL = (100_000, 30.0, 2)
IDLE_QUICK = (5_000, 3.0, 1)
IDLE_SALONS = 20
#: Idle passes timed (the median counts), with no rows planned and with the idle rows.
PASSES = 20
#: The longest the lag part waits, after the last due moment, for every hand-over.
LAG_BOUND = 600.0
TEXT = "Напоминаем: завтра в 15:00 вас ждут в салоне на стрижку. Ответьте «да» или «нет»."


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def base_settings() -> Settings:
    """Production settings (pacing included), read from no environment."""
    return settings_from_env({}, dotenv=None)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def gather_bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], at_once: int) -> None:
    """Run ``jobs``, at most ``at_once`` at a time."""
    slots = trio.Semaphore(at_once)

    async def one(job: Callable[[], Awaitable[Any]]) -> None:
        try:
            await job()
        finally:
            slots.release()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            await slots.acquire()
            nursery.start_soon(one, job)


# -- salons and rows ---------------------------------------------------------------------------


async def make_salons(
    storage: Storage, world: SimulatedWorld | None, count: int, first_salon: int
) -> list[int]:
    """``count`` salons without quiet hours; with ``world``, linked as a previous node would
    have left them (credentials in the world, ``active`` with a device in storage), so that a
    node restores and connects them."""
    ids = []
    for i in range(count):
        created = await storage.companies.create(
            first_salon + i, title=f"Салон {i}", address="Москва, ул. Ленина, 1", timezone=ZONE.key
        )
        cid = created.company.id
        await storage.reminder_settings.put(cid, NO_QUIET)
        if world is not None:
            await link_stored(storage, world, cid, f"7900{first_salon + i:07d}")
        ids.append(cid)
    return ids


@dataclass(frozen=True)
class Visit:
    facts: VisitFacts
    offsets: tuple[float, ...]  # seconds from the first due moment, one per kind of KINDS


def spread_visits(
    salons: Sequence[int], rows: int, span: float, record_base: int
) -> dict[int, list[Visit]]:
    """``rows`` reminders (two per visit, one visit per client), due evenly over ``span``
    seconds, dealt round-robin to ``salons``; visits tomorrow."""
    visits: dict[int, list[Visit]] = {cid: [] for cid in salons}
    step = span / rows
    starts = (utc_now() + dt.timedelta(days=1)).replace(microsecond=0)
    booked = utc_now() - dt.timedelta(days=3)
    for n in range(rows // len(KINDS)):
        cid = salons[n % len(salons)]
        record_id = record_base + n
        facts = VisitFacts(
            company_id=cid,
            record_id=record_id,
            visit_id=record_id + 10_000_000,
            client_phone=f"79{record_base // 1_000_000:02d}{n:07d}",
            client_name="Мария",
            service_titles=("Стрижка женская",),
            master_name="Анна",
            starts_at=starts + dt.timedelta(minutes=n % 600),
            ends_at=starts + dt.timedelta(minutes=n % 600 + 60),
            booked_at=booked,
        )
        offsets = tuple((n * len(KINDS) + k) * step for k in range(len(KINDS)))
        visits[cid].append(Visit(facts, offsets))
    return visits


def planned(visit: Visit, first: dt.datetime, send_by: dt.datetime) -> list[PlannedReminder]:
    facts = visit.facts
    details = visit_details(facts)
    return [
        PlannedReminder(
            record_id=facts.record_id,
            kind=kind,
            visit_time=facts.starts_at,
            due_at=first + dt.timedelta(seconds=offset),
            send_by=send_by,
            visit_id=facts.visit_id,
            phone=facts.client_phone,
            details=details,
        )
        for kind, offset in zip(KINDS, visit.offsets, strict=True)
    ]


def record_of(facts: VisitFacts) -> SalonRecord:
    """The visit as the YClients sync would have stored it (the scheduler re-reads it)."""
    return SalonRecord(
        company_id=facts.company_id,
        record_id=facts.record_id,
        client_phone=facts.client_phone,
        client_name=facts.client_name,
        services=[{"title": t} for t in facts.service_titles],
        starts_at=facts.starts_at,
        seance_length=int((facts.ends_at - facts.starts_at).total_seconds()),
        attendance=0,
        changed_at=utc_now(),
        raw={"visit_id": facts.visit_id},
    )


async def store_records(storage: Storage, visits: dict[int, list[Visit]]) -> None:
    """The visits' records, as the sync stores them (``PLAN_CONCURRENCY`` writes at once)."""
    jobs = [_bound(storage.records.apply, record_of(v.facts)) for s in visits.values() for v in s]
    await gather_bounded(jobs, PLAN_CONCURRENCY)
    await analyze(storage)


async def plan_rows(
    storage: Storage, visits: dict[int, list[Visit]], first: dt.datetime, send_by: dt.datetime
) -> float:
    """Plan the visits' rows, ``PLAN_CHUNK`` per ``plan`` call, ``PLAN_CONCURRENCY`` calls at
    once; returns the seconds it took."""
    started = time.perf_counter()
    calls = []
    for cid, salon in visits.items():
        rows = [row for v in salon for row in planned(v, first, send_by)]
        for start in range(0, len(rows), PLAN_CHUNK):
            calls.append(_bound(storage.reminders.plan, cid, rows[start : start + PLAN_CHUNK]))
    # Statistics as autovacuum keeps them in a running system: without them the pooled
    # connections' cached plans, made while the table was empty, scan the whole table.
    await calls[0]()
    await analyze(storage)
    await gather_bounded(calls[1:], PLAN_CONCURRENCY)
    await analyze(storage)
    return time.perf_counter() - started


async def analyze(storage: Storage) -> None:
    """``ANALYZE`` the schedule and the records (what autovacuum does within a minute of a
    bulk insert); it also makes every connection plan its prepared statements again."""
    assert storage.pg is not None

    async def run(conn: Any) -> None:
        await conn.execute("ANALYZE reminders, salon_records")

    await storage.pg.run(run)


def _bound(fn: Callable[..., Awaitable[Any]], *args: Any) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await fn(*args)

    return call


@asynccontextmanager
async def bench_storage(url: str, prefix: str) -> AsyncIterator[Storage]:
    """Production storage on the throwaway database and key prefix (the default pool)."""
    async with open_storage(
        database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, apply_migrations=False
    ) as storage:
        yield storage


@asynccontextmanager
async def running_node(
    storage: Storage, world: SimulatedWorld, reminders: ReminderOptions | None
) -> AsyncIterator[Node]:
    """A node over ``storage`` as ``aiadmin serve`` builds it (the assistant, and the
    scheduler when ``reminders``), its linked salons restored and connected."""
    settings = base_settings()
    async with trio.open_nursery() as nursery:
        gateway = SimulatedGateway(nursery, world=world, qr=settings.qr)
        async with open_node(
            settings,
            storage,
            gateway,
            rng=random.Random(1),
            assistant=AssistantOptions(),
            reminders=reminders,
        ) as node:
            yield node
        await gateway.aclose()
        nursery.cancel_scope.cancel()


async def until(condition: Callable[[], bool], within: float, step: float = 0.05) -> None:
    """Wait until ``condition()`` holds (checked every ``step`` s), at most ``within`` s: the
    scheduler exposes counters, not events, and a bench must not change it to be measured."""
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - polling counters, see the docstring
            await trio.sleep(step)


async def wait_first_pass(scheduler: ReminderScheduler, within: float = 30.0) -> None:
    await until(lambda: scheduler.passes > 0, within)


# -- reminders_due_lag_p99_ms -------------------------------------------------------------------


@dataclass
class LagRun:
    lags_ms: list[float]
    db_lags_ms: list[float]
    plan_seconds: float
    lead_seconds: float  # from the end of planning to the first due moment
    first_to_last_seconds: float  # first due moment to the last hand-over
    cpu_ms_per_row: float  # process CPU from the end of planning to the last hand-over
    sent: int
    skipped: int


async def due_lags(storage: Storage, handed: dict[str, float]) -> tuple[list[float], list[float]]:
    """Per row handed over: (ms from ``due_at`` to the hand-over, ms from ``due_at`` to its
    ``messages`` row's ``created_at``), read back from the database."""
    assert storage.pg is not None

    async def read(conn: Any) -> list[Any]:
        return list(
            await conn.fetch(
                """SELECT r.message_id, r.due_at, msg.created_at
                   FROM reminders r JOIN messages msg
                     ON msg.company_id = r.company_id AND msg.wa_message_id = r.message_id
                   WHERE r.message_id = ANY($1::text[])""",
                list(handed),
            )
        )

    rows = await storage.pg.run(read)
    assert len(rows) == len(handed), f"{len(rows)} messages rows for {len(handed)} hand-overs"
    lags = [(handed[r["message_id"]] - r["due_at"].timestamp()) * 1000 for r in rows]
    db = [(r["created_at"] - r["due_at"]).total_seconds() * 1000 for r in rows]
    return lags, db


async def bare_loop(storage: Storage, total: int, handed: dict[str, float]) -> None:
    """The baseline: claim due rows and insert each one's ``messages`` row, nothing else."""
    owner = "bench-bare"

    async def one(row: Any) -> None:
        await storage.messages.record_outbound(
            row.company_id, row.phone, TEXT, wa_message_id=row.message_id
        )
        handed[row.message_id] = time.time()
        await storage.reminders.mark_sent(row.company_id, row.id, owner)

    while len(handed) < total:
        rows = await storage.reminders.claim_due(utc_now(), owner, 120.0, limit=BARE_BATCH)
        if rows:
            await gather_bounded([_bound(one, row) for row in rows], BARE_CONCURRENCY)
            continue
        next_due = await storage.reminders.next_due()
        delay = 1.0 if next_due is None else (next_due - utc_now()).total_seconds()
        await trio.sleep(min(max(delay, 0.0), 1.0))


async def lag_run(
    url: str,
    prefix: str,
    world: SimulatedWorld,
    *,
    rows: int,
    salons: int,
    span: float,
    bare: bool,
    record_base: int,
) -> LagRun:
    """One measured minute (``span``): the scheduler in a node, or (``bare``) the baseline.
    The visits' records are stored first; their rows are planned with the first due moment
    ``lead`` seconds ahead, so that planning is done before it."""
    handed: dict[str, float] = {}
    lead = 1.5 + rows / 2500  # planning 10,000 rows takes ~1-3 s on this machine
    async with bench_storage(url, prefix) as storage:
        ids = await make_salons(storage, None if bare else world, salons, record_base // 1000)
        visits = spread_visits(ids, rows, span, record_base)
        await store_records(storage, visits)
        send_by = utc_now() + dt.timedelta(hours=2)
        if bare:
            first = utc_now() + dt.timedelta(seconds=lead)
            plan_seconds = await plan_rows(storage, visits, first, send_by)
            lead_left = (first - utc_now()).total_seconds()
            cpu = time.process_time()
            with trio.fail_after(span + lead + LAG_BOUND):
                await bare_loop(storage, rows, handed)
            cpu = time.process_time() - cpu
            sent = skipped = 0
        else:
            async with running_node(storage, world, ReminderOptions()) as node:
                scheduler = node.reminders
                assert scheduler is not None
                await wait_first_pass(scheduler)
                inner = scheduler.ask

                async def timed_ask(company_id: int, message: Any, timeout: float) -> Any:
                    reply = await inner(company_id, message, timeout)
                    if isinstance(message, m.SendText) and message.message_id is not None:
                        handed[message.message_id] = time.time()
                    return reply

                scheduler.ask = timed_ask
                first = utc_now() + dt.timedelta(seconds=lead)
                plan_seconds = await plan_rows(storage, visits, first, send_by)
                lead_left = (first - utc_now()).total_seconds()
                cpu = time.process_time()
                await scheduler.announce()  # as the planner does when a row became earliest
                # every row handed over (or skipped), then marked sent (the status of the
                # scheduler's last pass, refreshed when the pass ends)
                await until(
                    lambda: len(handed) + scheduler.status().skipped >= rows,
                    span + lead + LAG_BOUND,
                    0.1,
                )
                cpu = time.process_time() - cpu
                await until(
                    lambda: scheduler.status().sent + scheduler.status().skipped >= rows, 60
                )
                status = scheduler.status()
                sent, skipped = status.sent, status.skipped
        last = max(handed.values())
        lags, db_lags = await due_lags(storage, handed)
        if not bare:
            sent_rows = await count_sent(storage, ids)
            assert sent_rows == len(handed), f"{sent_rows} rows sent, {len(handed)} handed over"
    return LagRun(
        lags_ms=lags,
        db_lags_ms=db_lags,
        plan_seconds=plan_seconds,
        lead_seconds=lead_left,
        first_to_last_seconds=last - first.timestamp(),
        cpu_ms_per_row=cpu / rows * 1000,
        sent=sent,
        skipped=skipped,
    )


async def count_sent(storage: Storage, salons: list[int]) -> int:
    """Rows of ``salons`` marked sent."""
    assert storage.pg is not None

    async def read(conn: Any) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM reminders WHERE status = $1 AND company_id = ANY($2)",
                ReminderStatus.SENT.value,
                salons,
            )
        )

    return await storage.pg.run(read)


async def lag_bench(
    url: str, prefix: str, world: SimulatedWorld, quick: bool
) -> tuple[LagRun, LagRun]:
    """(ours, baseline): the bare loop's minute first, then the scheduler's."""
    rows, salons, span = LAG_QUICK if quick else LAG_FULL
    common: dict[str, Any] = {"rows": rows, "salons": salons, "span": span}
    baseline = await lag_run(url, prefix, world, bare=True, record_base=1_000_000, **common)
    ours = await lag_run(url, prefix, world, bare=False, record_base=2_000_000, **common)
    return ours, baseline


def lag_report(ours: LagRun, baseline: LagRun, quick: bool) -> None:
    rows, salons, span = LAG_QUICK if quick else LAG_FULL
    print(
        f"reminders_due_lag_backend: PostgreSQL + Redis (loopback), real clock, simulated "
        f"WhatsApp; {rows} reminders due evenly over {span:.0f} s"
    )
    print(f"reminders_due_lag_salons: {salons} salons (linked; the baseline's: as many, unlinked)")
    for name, run in (("reminders_due_lag", ours), ("reminders_due_lag_baseline_bare", baseline)):
        print(f"{name}_p50_ms: {percentile(run.lags_ms, 0.5):.1f} ms")
        print(f"{name}_p99_ms: {percentile(run.lags_ms, 0.99):.1f} ms")
        print(f"{name}_max_ms: {max(run.lags_ms):.1f} ms")
        print(f"{name}_db_p99_ms: {percentile(run.db_lags_ms, 0.99):.1f} ms (messages.created_at)")
        print(f"{name}_plan_seconds: {run.plan_seconds:.2f} s (rows, records stored before)")
        print(f"{name}_lead_seconds: {run.lead_seconds:.2f} s (planning done to first due)")
        print(f"{name}_first_due_to_last_handover_seconds: {run.first_to_last_seconds:.2f} s")
        print(f"{name}_cpu_ms_per_row: {run.cpu_ms_per_row:.2f} ms (process CPU, whole run)")
    print(f"reminders_due_lag_sent: {ours.sent} rows (skipped {ours.skipped})")
    p99, base = percentile(ours.lags_ms, 0.99), percentile(baseline.lags_ms, 0.99)
    print(f"reminders_due_lag_p99_ms: {p99:.1f} ms (bare claim+insert loop: {base:.1f} ms)")


# -- scheduler_idle_cpu -------------------------------------------------------------------------


@dataclass
class IdleRun:
    cpu_with: list[float]
    cpu_without: list[float]
    passes: list[int]
    pass_empty_ms: float
    pass_full_ms: float
    plan_seconds: float
    seconds: float


async def pass_ms(storage: Storage, count: int) -> float:
    """The median wall time of ``count`` idle passes of a scheduler (not running: its pass
    called directly; nothing is due so it never asks a company)."""

    async def no_ask(company_id: int, message: Any, timeout: float) -> Any:
        raise AssertionError("nothing is due")

    scheduler = ReminderScheduler(storage, no_ask, owner="bench-pass", options=ReminderOptions())
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await scheduler.run_pass()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def idle_cpu_window(
    storage: Storage, world: SimulatedWorld, seconds: float, with_scheduler: bool
) -> tuple[float, int]:
    """CPU seconds the process spent over ``seconds`` of a node idling (after it settled),
    and the scheduler's passes in that time."""
    options = ReminderOptions() if with_scheduler else None
    async with running_node(storage, world, options) as node:
        if node.reminders is not None:
            await wait_first_pass(node.reminders)
        await trio.sleep(1.0)  # restore and first pass settle
        passes = node.reminders.passes if node.reminders is not None else 0
        cpu = time.process_time()
        await trio.sleep(seconds)
        cpu = time.process_time() - cpu
        if node.reminders is not None:
            passes = node.reminders.passes - passes
    return cpu, passes


async def idle_bench(url: str, prefix: str, world: SimulatedWorld, quick: bool) -> IdleRun:
    """The idle part, on an empty schedule (it runs first); its rows stay planned after."""
    rows, seconds, rounds = IDLE_QUICK if quick else IDLE_FULL
    async with bench_storage(url, prefix) as storage:
        ids = await make_salons(storage, world, IDLE_SALONS, 3_000)
        await pass_ms(storage, 5)  # warm-up (prepared statements)
        empty = await pass_ms(storage, PASSES)
        week = 7 * 24 * 3600.0
        visits = spread_visits(ids, rows, week, 4_000_000)
        send_by = utc_now() + dt.timedelta(days=9)
        first = utc_now() + dt.timedelta(hours=1)
        plan_seconds = await plan_rows(storage, visits, first, send_by)
        full = await pass_ms(storage, PASSES)
        cpu_with: list[float] = []
        cpu_without: list[float] = []
        passes: list[int] = []
        for _ in range(rounds):
            cpu, _ = await idle_cpu_window(storage, world, seconds, False)
            cpu_without.append(cpu)
            cpu, n = await idle_cpu_window(storage, world, seconds, True)
            cpu_with.append(cpu)
            passes.append(n)
    return IdleRun(cpu_with, cpu_without, passes, empty, full, plan_seconds, seconds)


async def run_all(
    quick: bool, lag: bool, idle: bool
) -> tuple[IdleRun | None, tuple[LagRun, LagRun] | None]:
    """One throwaway database and key prefix for both parts: the idle part first (its
    future rows then stay in the schedule, as in a running system), then the lag part."""
    world = SimulatedWorld()  # the linked salons' credentials, for every node of the run
    prefix = new_redis_prefix("bench-reminders")
    idle_run: IdleRun | None = None
    lag_runs: tuple[LagRun, LagRun] | None = None
    async with temp_database() as url, trio_asyncio.open_loop():
        try:
            if idle:
                idle_run = await idle_bench(url, prefix, world, quick)
            if lag:
                lag_runs = await lag_bench(url, prefix, world, quick)
        finally:
            with trio.CancelScope(shield=True):
                await delete_redis_prefix(prefix)
    return idle_run, lag_runs


def idle_report(run: IdleRun, rows: int) -> None:
    best_with, best_without = min(run.cpu_with), min(run.cpu_without)
    per_minute = (best_with - best_without) / run.seconds * 60
    print(
        f"scheduler_idle_backend: PostgreSQL + Redis (loopback); {rows} rows planned over the "
        f"next week (planned in {run.plan_seconds:.1f} s), nothing due; {IDLE_SALONS} linked salons"
    )
    print(f"scheduler_idle_window: {run.seconds:.0f} s x {len(run.cpu_with)} rounds")
    print(f"scheduler_idle_cpu: {best_with:.3f} cpu-s (node with the scheduler)")
    print(f"scheduler_idle_cpu_baseline_no_scheduler: {best_without:.3f} cpu-s (same node without)")
    print(f"scheduler_idle_cpu_all_rounds: with {run.cpu_with} / without {run.cpu_without} cpu-s")
    print(f"scheduler_idle_cpu_difference: {per_minute:.4f} cpu-s per minute")
    print(f"scheduler_idle_passes_in_window: {max(run.passes)} passes")
    print(f"scheduler_idle_pass_ms: {run.pass_full_ms:.2f} ms ({rows} future rows planned)")
    print(f"scheduler_idle_pass_ms_baseline_empty: {run.pass_empty_ms:.2f} ms (none planned)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows, shorter (< 30 s)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--lag-only", action="store_true", help="only reminders_due_lag")
    only.add_argument("--idle-only", action="store_true", help="only scheduler_idle_cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    idle, lag = trio.run(run_all, args.quick, not args.idle_only, not args.lag_only)
    if idle is not None:
        idle_report(idle, (IDLE_QUICK if args.quick else IDLE_FULL)[0])
    if lag is not None:
        lag_report(*lag, args.quick)
    print(f"elapsed: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
