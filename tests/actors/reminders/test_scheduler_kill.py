"""Exactly once through a real ``kill -9``: a node sending reminders runs in its own process
(``_kill_worker``) over real PostgreSQL and Redis; it is killed with SIGKILL while the
reminders are going out, another process is started on the same database, and every reminder
reaches the phone once — the ids the phones saw are exactly the rows' message ids.

The simulated WhatsApp world (the phones) lives in this process and is served to the workers on
a Unix socket, so it outlives the kill. Three linked salons have 15 visits each, both
reminders due now: 90 messages, paced by the outbound queue (``_kill_worker.PACING``).

The kill lands in the window that matters. One visit per salon is the first claimed, and this
test keeps the insert of that client's conversation row open in its own transaction (a write
that is slow for that chat): the worker queues those reminders (they reach the phone) and then
waits, before ``mark_sent``, on the conversation's note of the prompt. When they are on the
phone and more have arrived, the worker is stopped (SIGSTOP), the rows are read (those six
still ``claimed``, others ``sent`` with their messages still queued, not all messages on the
phone) and it is killed (SIGKILL). The next process restores the queued messages (same ids)
and claims the six rows again when their short lease ends, with the ids decided at the first
claim: a scheduler that chose a new id per claim, or a company actor that queued a known id
again, would deliver those reminders twice.

Real clocks (the processes and the databases answer in real time); every wait is bounded
generously, so a slow machine only takes longer.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import asyncpg
import trio
import trio_asyncio

from actors import open_node
from actors.reminders import visit_details
from actors.whatsapp import DeliveredMessage, SimulatedWorld, open_gateway, serve_world
from storage import Direction, PlannedReminder, Reminder, ReminderStatus, Storage
from tests.support.databases import open_real_storage

from ..company.test_company_actor import link
from .scheduler_stand import ZONE, stand_settings, visit
from .test_scheduler_cluster import NO_QUIET

ROOT = Path(__file__).resolve().parents[3]
WORKER = [sys.executable, "-m", "tests.actors.reminders._kill_worker"]
SALONS = (7301, 7302, 7303)
VISITS = 15  # per salon; both reminders of each are due
KINDS = ("day_before", "two_hours")
TOTAL = len(SALONS) * VISITS * len(KINDS)
#: The claim lease of both workers: the killed one's unfinished rows are claimable again after it.
LEASE = 3.0
#: Messages on the phones before the kill (of TOTAL).
KILL_AFTER = 15
#: Bounds on each wait (generous: only a broken build should reach them).
START_WAIT = 60.0
SEND_WAIT = 60.0


def real_wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def phone_of(salon: int, n: int) -> str:
    return f"7913{salon % 1000:03d}{n:04d}"


def due_rows(company_id: int, salon: int) -> list[PlannedReminder]:
    """Both reminders of ``VISITS`` visits tomorrow, all due; visit 0's first (the held one)."""
    now = real_wall()
    rows = []
    for n in range(VISITS):
        facts = visit(
            salon * 1000 + n,
            phone_of(salon, n),
            (now + dt.timedelta(days=1)).astimezone(ZONE),
            booked=now - dt.timedelta(days=3),
            company_id=company_id,
        )
        for kind in KINDS:
            rows.append(
                PlannedReminder(
                    record_id=facts.record_id,
                    kind=kind,
                    visit_time=facts.starts_at,
                    due_at=now - dt.timedelta(seconds=60 - n),
                    send_by=now + dt.timedelta(hours=1),
                    visit_id=facts.visit_id,
                    phone=facts.client_phone,
                    details=visit_details(facts),
                )
            )
    return rows


async def linked_salons(storage: Storage, world: SimulatedWorld) -> dict[int, int]:
    """The salons registered (no quiet hours) and linked to the world, through a node of this
    process that is closed again; salon id → company id."""
    settings = stand_settings()
    companies = {}
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, restore=False) as node,
    ):
        for salon in SALONS:
            created = await storage.companies.create(
                salon, title=f"Салон {salon}", timezone=ZONE.key
            )
            company_id = created.company.id
            await storage.reminder_settings.put(company_id, NO_QUIET)
            await link(node, world, company_id)
            companies[salon] = company_id
    return companies


class HeldConversations:
    """A transaction of this test's own that has inserted conversation rows and stays open:
    whoever inserts the same rows waits for it (the row's unique key), as behind a slow write."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.open = True

    async def release(self) -> None:
        """Roll the inserts back: the waiting writers go on."""
        if self.open:
            self.open = False
            await trio_asyncio.aio_as_trio(self.conn.execute)("ROLLBACK")


@asynccontextmanager
async def held_conversations(
    database_url: str, keys: list[tuple[int, str]]
) -> AsyncIterator[HeldConversations]:
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(database_url)
    held = HeldConversations(conn)
    try:
        await trio_asyncio.aio_as_trio(conn.execute)("BEGIN")
        for company_id, phone in keys:
            await trio_asyncio.aio_as_trio(conn.execute)(
                "INSERT INTO conversations (company_id, phone) VALUES ($1, $2)", company_id, phone
            )
        yield held
    finally:
        with trio.CancelScope(shield=True):
            await held.release()
            await trio_asyncio.aio_as_trio(conn.close)()


class Worker:
    """One ``_kill_worker`` process: its stdout lines, its stderr in a file."""

    def __init__(self, process: trio.Process, log: IO[bytes], log_path: Path) -> None:
        self.process = process
        self.log = log
        self.log_path = log_path
        self.lines: list[str] = []

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = bytearray()
        async for chunk in self.process.stdout:
            buffer.extend(chunk)
            *done, rest = buffer.split(b"\n")
            self.lines.extend(line.decode() for line in done)
            buffer[:] = rest

    async def ready(self) -> None:
        with trio.fail_after(START_WAIT):
            while "ready" not in self.lines:
                if self.process.returncode is not None:
                    raise AssertionError(f"the worker exited:\n{self.logs()}")
                await trio.sleep(0.02)

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        with trio.move_on_after(10):
            await self.process.wait()
        self.log.close()


@asynccontextmanager
async def worker(
    nursery: trio.Nursery, folder: Path, database_url: str, prefix: str, world_path: str, name: str
) -> AsyncIterator[Worker]:
    log_path = folder / f"{name}.log"
    log = log_path.open("wb")
    process = await trio.lowlevel.open_process(
        [*WORKER, database_url, prefix, world_path, name, str(LEASE)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    started = Worker(process, log, log_path)
    nursery.start_soon(started.read)
    try:
        yield started
    finally:
        with trio.CancelScope(shield=True):
            await started.kill()


async def all_rows(storage: Storage, companies: dict[int, int]) -> list[Reminder]:
    rows = []
    for salon, company_id in companies.items():
        for n in range(VISITS):
            rows.extend(await storage.reminders.for_visit(company_id, salon * 1000 + n))
    return rows


def on_phones(world: SimulatedWorld, companies: dict[int, int]) -> dict[str, DeliveredMessage]:
    """Message id → the message, of every phone."""
    return {d.message_id: d for c in companies.values() for d in world.delivered(c)}


def time_to_kill(world: SimulatedWorld, companies: dict[int, int], held: set[str]) -> bool:
    """The held clients have both their reminders, and ``KILL_AFTER`` messages are out."""
    messages = on_phones(world, companies).values()
    to_held = sum(d.to_phone in held for d in messages)
    return len(messages) >= KILL_AFTER and to_held == len(held) * len(KINDS)


async def settled(storage: Storage, companies: dict[int, int]) -> bool:
    """Every row sent, and every outbound message handed to WhatsApp (none queued)."""
    rows = await all_rows(storage, companies)
    if len(rows) != TOTAL or any(r.status is not ReminderStatus.SENT for r in rows):
        return False
    for company_id in companies.values():
        if await storage.messages.pending_outbound(company_id):
            return False
    return True


async def test_kill_9_while_sending_then_a_restart_delivers_each_reminder_once(
    database_url: str, redis_prefix: str
) -> None:
    world = SimulatedWorld()
    folder = Path(tempfile.mkdtemp(prefix="aiadmin-kill-"))  # short: a socket path's limit
    try:
        async with (
            open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
            trio.open_nursery() as nursery,
        ):
            world_path = await nursery.start(serve_world, world, str(folder / "world.sock"))
            companies = await linked_salons(storage, world)
            for salon, company_id in companies.items():
                await storage.reminders.plan(company_id, due_rows(company_id, salon))
            held_phones = {phone_of(salon, 0) for salon in SALONS}
            keys = [(companies[salon], phone_of(salon, 0)) for salon in SALONS]

            async with held_conversations(database_url, keys) as held:
                async with worker(
                    nursery, folder, database_url, redis_prefix, world_path, "kill-a"
                ) as first:
                    await first.ready()
                    with trio.fail_after(SEND_WAIT):
                        await world.wait_until(lambda: time_to_kill(world, companies, held_phones))
                    first.process.send_signal(signal.SIGSTOP)  # frozen: what it did is done
                    at_kill = await all_rows(storage, companies)
                    seen = on_phones(world, companies)
                    await first.kill()
                await held.release()

            # the kill came while sending was under way, in each state that matters
            assert len(at_kill) == TOTAL
            assert len(seen) < TOTAL, "every message was out before the kill"
            stuck = [r for r in at_kill if r.phone in held_phones]
            assert len(stuck) == len(held_phones) * len(KINDS)
            for row in stuck:  # on the phone, not yet marked sent: claimed again after the lease
                assert row.status is ReminderStatus.CLAIMED and row.claimed_by == "kill-a", row
                assert row.message_id in seen
            queued = [
                r for r in at_kill if r.status is ReminderStatus.SENT and r.message_id not in seen
            ]
            assert queued, "no row was marked sent with its message still queued"
            ids_at_kill = {r.id: r.message_id for r in at_kill if r.message_id is not None}

            async with worker(
                nursery, folder, database_url, redis_prefix, world_path, "kill-b"
            ) as second:
                await second.ready()
                with trio.fail_after(SEND_WAIT):
                    while not await settled(storage, companies):  # noqa: ASYNC110 -- processes
                        await trio.sleep(0.1)
                logs = second.logs()
            rows = await all_rows(storage, companies)
            outbound = [
                m
                for company_id in companies.values()
                for m in await storage.messages.recent(company_id, 500)
                if m.direction == Direction.OUTBOUND
            ]
            nursery.cancel_scope.cancel()

        delivered = on_phones(world, companies)
        message_ids = [r.message_id for r in rows]
        # every reminder reached its phone once, with the id its row holds
        assert len(rows) == TOTAL
        assert all(r.status is ReminderStatus.SENT for r in rows)
        assert len(set(message_ids)) == TOTAL
        assert set(message_ids) == set(delivered), logs
        assert sum(len(world.delivered(c)) for c in companies.values()) == TOTAL
        for row in rows:
            assert row.message_id is not None
            assert delivered[row.message_id].to_phone == row.phone
        for salon, company_id in companies.items():
            for n in range(VISITS):
                assert len(world.chat(company_id, phone_of(salon, n))) == len(KINDS)
        # ids decided at the first claim were kept through the kill
        assert all(ids_at_kill[r.id] == r.message_id for r in rows if r.id in ids_at_kill)
        # the stuck rows were claimed again by the second process, with the same ids
        assert all(r.attempts == 2 for r in rows if r.phone in held_phones)
        # the messages table: one outbound row per reminder, each handed to WhatsApp
        assert sorted((m.company_id, m.wa_message_id) for m in outbound) == sorted(
            (r.company_id, r.message_id) for r in rows
        )
        assert all(m.status == "sent" for m in outbound)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
