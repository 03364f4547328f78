"""Two nodes on one PostgreSQL (and one Redis prefix), each with its own reminder scheduler, in
cluster mode: every reminder is delivered once. Each node owns one salon (its claim); both
schedulers claim from the same schedule (``FOR UPDATE SKIP LOCKED``), a row of the other
node's salon is released for that node's scheduler, and the phones, the ``messages`` table
and the rows agree: one send per message id.

Real clocks (PostgreSQL and Redis answer in real time); rows are made due at once, pacing is
off, and every wait is bounded generously.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from contextlib import AsyncExitStack
from typing import Any

import trio

from actors._placement import rendezvous
from actors.reminders import ReminderOptions, ReminderSettings, visit_details
from actors.whatsapp import SimulatedWorld
from config import SendPacing
from storage import Direction, PlannedReminder, ReminderStatus, Storage
from tests.support.databases import open_real_storage

from ..company.test_company_actor import link
from .scheduler_stand import ZONE, running_node, stand_settings, visit

VISITS = 25  # per salon; two reminders each
KINDS = ("day_before", "two_hours")
#: No quiet hours: the test runs at whatever hour the machine's clock says.
NO_QUIET = {
    **ReminderSettings().to_json(),
    "quiet_start": "12:00",
    "quiet_end": "12:00",
}
DELIVERY_WAIT = 60.0


def real_wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def due_now(company_id: int, salon: int) -> list[PlannedReminder]:
    """Both reminders of ``VISITS`` visits tomorrow, due a second ago."""
    now = real_wall()
    rows = []
    for n in range(VISITS):
        facts = visit(
            salon * 1000 + n,
            f"7913{salon:03d}{n:04d}",
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
                    due_at=now - dt.timedelta(seconds=1),
                    send_by=now + dt.timedelta(hours=1),
                    visit_id=facts.visit_id,
                    phone=facts.client_phone,
                    details=visit_details(facts),
                )
            )
    return rows


async def salon(storage: Storage, yclients_id: int) -> int:
    """A salon registered, with no quiet hours."""
    created = await storage.companies.create(
        yclients_id, title=f"Салон {yclients_id}", timezone=ZONE.key
    )
    company_id = created.company.id
    await storage.reminder_settings.put(company_id, NO_QUIET)
    return company_id


def node_a_name(first: int, second: int) -> str:
    """A node id that wins ``first`` against ``node-b``, which wins ``second`` (rendezvous)."""
    return next(
        name
        for name in (f"node-a-{k}" for k in itertools.count())
        if rendezvous(first, [name, "node-b"]) == name
        and rendezvous(second, [name, "node-b"]) == "node-b"
    )


async def test_two_nodes_on_one_postgresql_deliver_each_reminder_once(
    database_url: str, redis_prefix: str
) -> None:
    settings = stand_settings(SendPacing(min_gap=0.0, jitter=0.0, per_minute=10_000))
    world = SimulatedWorld()
    options = ReminderOptions(wall_clock=real_wall, max_sleep=10.0)
    common: dict[str, Any] = {"options": options, "wall_clock": real_wall, "cluster": True}
    async with AsyncExitStack() as stack:
        storage_a = await stack.enter_async_context(
            open_real_storage(database_url, redis_prefix=redis_prefix)
        )
        storage_b = await stack.enter_async_context(
            open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False)
        )
        first = await salon(storage_a, 7101)
        second = await salon(storage_a, 7102)
        name_a = node_a_name(first, second)  # each node owns one salon
        a = await stack.enter_async_context(
            running_node(settings, storage_a, world, node_id=name_a, seed=1, **common)
        )
        b = await stack.enter_async_context(
            running_node(settings, storage_b, world, node_id="node-b", seed=2, **common)
        )
        assert a.reminders is not None and b.reminders is not None
        await link(a, world, first)
        await link(b, world, second)
        assert await storage_a.leases.holder(first) == name_a
        assert await storage_a.leases.holder(second) == "node-b"
        # each node plans one salon's rows and wakes every scheduler (pub/sub)
        rows = {first: due_now(first, 1), second: due_now(second, 2)}
        order = [(storage_a, a, first), (storage_b, b, second)]
        random.Random(3).shuffle(order)
        for storage, node, company_id in order:
            await storage.reminders.plan(company_id, rows[company_id])
            assert node.reminders is not None
            await node.reminders.announce()

        expected = 2 * VISITS * len(KINDS)
        with trio.fail_after(DELIVERY_WAIT):
            await world.wait_until(
                lambda: len(world.delivered(first)) + len(world.delivered(second)) >= expected
            )
        await trio.sleep(3.0)  # a second send, if any, would be made by now (retry is 2 s)

        for company_id in (first, second):
            delivered = world.delivered(company_id)
            assert len(delivered) == VISITS * len(KINDS)
            assert world.send_attempts(company_id) == VISITS * len(KINDS)  # none sent twice
            phones = [d.to_phone for d in delivered]
            assert all(phones.count(p) == len(KINDS) for p in phones)
            stored = [
                r
                for planned in rows[company_id][:: len(KINDS)]
                for r in await storage_a.reminders.for_visit(company_id, planned.record_id)
            ]
            assert len(stored) == VISITS * len(KINDS)
            assert all(r.status is ReminderStatus.SENT for r in stored)
            assert {r.message_id for r in stored} == {d.message_id for d in delivered}
            outbound = [
                m
                for m in await storage_a.messages.recent(company_id, 500)
                if m.direction == Direction.OUTBOUND
            ]
            assert sorted(m.wa_message_id or "" for m in outbound) == sorted(
                d.message_id for d in delivered
            )  # one row per message id
        # each salon's reminders went out through the node that owns it
        assert a.reminders.status().sent == VISITS * len(KINDS)
        assert b.reminders.status().sent == VISITS * len(KINDS)
