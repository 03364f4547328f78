"""Where visits come from: record webhooks (the inbox worker), our own bookings and cancels (the
running assistant) and the periodic sync (``CatalogSync``), each planning the visit's
reminders through the one ``ReminderPlanner``.

The fake YClients runs in process (httpx's ASGI transport, no socket). The Lotos salon is moved
to Asia/Yekaterinburg (UTC+5); "now" is Monday 2 March 2026, 10:00 there. The assistant's part
runs on ``booking_stand`` (Moscow, Wednesday 11 March, trio's mock clock).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors.reminders import ReminderOptions, ReminderPlanner
from actors.yclients import (
    CatalogSync,
    InboxOutcome,
    InboxPolicy,
    RecordInboxWorker,
    RetryPolicy,
    YClientsClient,
)
from actors.yclients import _sync as sync_module
from metrics import MetricsRegistry
from storage import (
    Company,
    Reminder,
    ReminderStatus,
    SalonRecord,
    Storage,
    StorageUnavailable,
    open_storage,
)
from tests.fakes.yclients import LOTOS_ID, PARTNER_TOKEN, FakeYClients, seed_salons
from tests.fakes.yclients._booking import make_record
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage

from ..assistant.booking_stand import CLAIM, MSK, open_stand, to_summary
from ..assistant.booking_stand import wall as stand_wall

ZONE = ZoneInfo("Asia/Yekaterinburg")
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZONE)
PHONE = "79161234567"


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A wall time of the salon, in UTC."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=ZONE).astimezone(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """YClients' change time text, on the salon's clock."""
    return moment.astimezone(ZONE).isoformat()


@dataclass
class Bench:
    """In-memory or PostgreSQL storage, the fake YClients in process, our client to it, a
    wall clock the test moves, and the planner over them."""

    storage: Storage
    fake: FakeYClients
    client: YClientsClient
    wall: FakeWallClock
    planner: ReminderPlanner
    metrics: MetricsRegistry
    company: Company

    def visit(
        self, when: dt.datetime, *, master: int = 0, booked: dt.datetime | None = None
    ) -> dict[str, Any]:
        """A record Мария booked in the fake (a haircut, 60 min) at ``booked`` (now)."""
        salon = self.fake.salons[LOTOS_ID]
        record = make_record(
            self.fake.state,
            salon,
            master=salon.staff[master],
            service_ids=[1001],
            client=salon.clients[3001],
            when=when.astimezone(ZONE),
            length=3600,
        )
        record["create_date"] = record["last_change_date"] = stamp(booked or self.wall.now)
        return record

    def change(self, record: dict[str, Any], **fields: Any) -> None:
        """Change the fake's record as the salon would, now."""
        record.update(fields)
        record["last_change_date"] = stamp(self.wall.now)

    async def webhook(self, record: dict[str, Any], status: str = "update") -> None:
        """Store the webhook YClients sends for the record (its data as the fake holds it)."""
        payload = {
            "company_id": LOTOS_ID,
            "resource": "record",
            "resource_id": record["id"],
            "status": status,
            "data": copy.deepcopy(record),
        }
        key = f"{record['id']}:{status}:{record['last_change_date']}"
        await self.storage.inbox.put(self.company.id, key, f"record:{status}", payload)

    async def rows(self, record_id: int) -> dict[tuple[str, dt.datetime], Reminder]:
        rows = await self.storage.reminders.for_visit(self.company.id, record_id)
        return {(r.kind, r.visit_time): r for r in rows}


@asynccontextmanager
async def open_bench(backend: str, database_url: str, redis_prefix: str) -> AsyncIterator[Bench]:
    wall = FakeWallClock(NOW.astimezone(dt.UTC))
    salons = seed_salons()
    salons[LOTOS_ID].timezone = ZONE.key
    fake = FakeYClients(rate_limits=None, salons=salons, now=NOW)
    metrics = MetricsRegistry()
    opener = (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time)
        if backend == "memory"
        else open_real_storage(database_url, redis_prefix=redis_prefix, wall_clock=wall)
    )
    async with (
        opener as storage,
        YClientsClient(
            "http://yclients.test",
            PARTNER_TOKEN,
            transport=httpx.ASGITransport(app=fake),
            timeout=5.0,
            retry=RetryPolicy(attempts=1),
        ) as client,
    ):
        company = (await storage.companies.create(LOTOS_ID, timezone=ZONE.key)).company
        planner = ReminderPlanner(storage, wall_clock=wall, metrics=metrics)
        yield Bench(storage, fake, client, wall, planner, metrics, company)


@pytest.fixture(params=["memory", "real"])
async def bench(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Bench]:
    async with open_bench(request.param, database_url, redis_prefix) as b:
        yield b


def worker(bench: Bench, planner: Any = None) -> RecordInboxWorker:
    return RecordInboxWorker(
        bench.storage,
        bench.client,
        policy=InboxPolicy(backoff_initial=10.0, backoff_max=20.0),
        rng=random.Random(1),
        planner=planner if planner is not None else bench.planner,
    )


def due(rows: dict[tuple[str, dt.datetime], Reminder]) -> dict[str, dt.datetime | None]:
    """Each planned kind's due time."""
    return {k: r.due_at for (k, _), r in rows.items() if r.status is ReminderStatus.PLANNED}


# -- record webhooks -----------------------------------------------------------------------


async def test_a_webhook_for_a_visit_a_week_ahead_plans_two_reminders_and_the_review(
    bench: Bench,
) -> None:
    visit = bench.visit(local(9, 15))
    await bench.webhook(visit, "create")
    assert await worker(bench).drain_company(bench.company.id) == 1
    rows = await bench.rows(visit["id"])
    assert due(rows) == {
        "day_before": local(8, 18),  # 18:00 local the day before
        "two_hours": local(9, 13),  # 2 h before
        "review": local(9, 18),  # 2 h after the end
    }
    assert {r.visit_id for r in rows.values()} == {visit["visit_id"]}
    assert {r.phone for r in rows.values()} == {PHONE}
    assert rows[("day_before", local(9, 15))].details["master_name"] == "Анна Смирнова"


async def test_a_move_webhook_replans_and_a_delete_webhook_drops(bench: Bench) -> None:
    visit = bench.visit(local(9, 15))
    await bench.webhook(visit, "create")
    inbox = worker(bench)
    await inbox.drain_company(bench.company.id)
    bench.wall.now = local(3, 9)
    bench.change(visit, datetime=stamp(local(10, 17)))
    await bench.webhook(visit)
    await inbox.drain_company(bench.company.id)
    rows = await bench.rows(visit["id"])
    assert {(r.status, r.reason) for (_, t), r in rows.items() if t == local(9, 15)} == {
        (ReminderStatus.DROPPED, "moved")
    }
    assert due({k: r for k, r in rows.items() if k[1] == local(10, 17)}) == {
        "day_before": local(9, 18),
        "two_hours": local(10, 15),
        "review": local(10, 20),
    }
    bench.wall.now = local(4, 9)
    bench.change(visit, deleted=True)
    await bench.webhook(visit, "delete")
    await inbox.drain_company(bench.company.id)
    rows = await bench.rows(visit["id"])
    assert {(r.status, r.reason) for (_, t), r in rows.items() if t == local(10, 17)} == {
        (ReminderStatus.DROPPED, "deleted")
    }
    assert await bench.storage.reminders.next_due() is None


@pytest.mark.parametrize(
    ("attendance", "review"),
    [(1, (ReminderStatus.PLANNED, None)), (-1, (ReminderStatus.SKIPPED, "no_show"))],
    ids=["attended", "no-show"],
)
async def test_an_attendance_webhook_brings_the_review_forward_or_skips_it(
    bench: Bench, attendance: int, review: tuple[ReminderStatus, str | None]
) -> None:
    visit = bench.visit(local(9, 15), booked=local(1, 12))
    await bench.webhook(visit, "create")
    inbox = worker(bench)
    await inbox.drain_company(bench.company.id)
    bench.wall.now = local(9, 15, 55)
    bench.change(visit, attendance=attendance)
    await bench.webhook(visit)
    await inbox.drain_company(bench.company.id)
    row = (await bench.rows(visit["id"]))[("review", local(9, 15))]
    assert (row.status, row.reason) == review
    if attendance == 1:
        assert row.due_at == local(9, 16)  # the visit's end, daytime


async def test_a_webhook_applied_but_not_planned_is_planned_on_its_retry(bench: Bench) -> None:
    class Down:
        """The planner's storage fails once, after the record was stored."""

        def __init__(self) -> None:
            self.calls = 0

        async def plan_record(self, company: Company, record: SalonRecord) -> None:
            self.calls += 1
            if self.calls == 1:
                raise StorageUnavailable("postgres", "connection lost")
            await bench.planner.plan_record(company, record)

    flaky = Down()
    visit = bench.visit(local(9, 15))
    await bench.webhook(visit, "create")
    inbox = worker(bench, flaky)
    assert await inbox.drain_company(bench.company.id) == 0  # retried later
    assert await bench.storage.records.get(bench.company.id, visit["id"]) is not None
    assert await bench.rows(visit["id"]) == {}
    # meanwhile a newer change of the visit (a move) is stored, but not planned
    bench.wall.advance(30)
    bench.change(visit, datetime=stamp(local(10, 17)))
    assert await bench.storage.records.apply(_stored(bench, visit))
    # the retry's own data is older now (stale), yet it plans the visit as stored
    assert await inbox.drain_company(bench.company.id) == 1
    assert inbox.statistics().count(InboxOutcome.STALE) == 1
    rows = await bench.rows(visit["id"])
    assert set(due(rows)) == {"day_before", "two_hours", "review"}
    assert {t for (_, t) in rows} == {local(10, 17)}


async def test_a_planning_bug_does_not_hold_up_the_webhooks(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def plan_record(self, company: Company, record: SalonRecord) -> None:
            raise RuntimeError("a bug")

    visit = bench.visit(local(9, 15))
    await bench.webhook(visit, "create")
    with caplog.at_level(logging.ERROR, logger="actors.yclients.inbox"):
        assert await worker(bench, Broken()).drain_company(bench.company.id) == 1
    assert "planning reminders failed" in caplog.text
    assert await bench.storage.records.get(bench.company.id, visit["id"]) is not None


# -- the periodic sync -----------------------------------------------------------------------


def visit_failures(metrics: MetricsRegistry) -> float:
    found = re.search(r"^aiadmin_sync_visit_failures_total (\S+)$", metrics.render(), re.M)
    return float(found.group(1)) if found else 0.0


async def test_the_sync_plans_the_visits_yclients_lists(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "VISITS_PAGE", 2)  # five visits: three pages
    ahead = [bench.visit(local(day, 15)) for day in (2, 3, 5, 9)]
    later = bench.visit(local(20, 15))  # beyond today + 8 days: not read
    gone = bench.visit(local(4, 12))
    deleted = bench.visit(local(6, 12))
    # a visit we hold that YClients no longer lists: left alone
    await bench.storage.records.apply(_stored(bench, gone))
    await bench.planner.plan_record(bench.company, await _get(bench, gone["id"]))
    del bench.fake.salons[LOTOS_ID].records[gone["id"]]
    deleted["deleted"] = True  # the fake leaves deleted records out of its list
    sync = CatalogSync(
        bench.storage,
        bench.client,
        metrics=bench.metrics,
        wall_clock=bench.wall,
        planner=bench.planner,
        visits_ahead_days=8,
    )
    result = await sync.sync_now(bench.company.id)
    assert result.ok and result.visits == 4 and result.visits_error is None
    today = await bench.rows(ahead[0]["id"])  # today 15:00, booked at 10:00
    assert due(today) == {"two_hours": local(2, 13), "review": local(2, 18)}
    assert today[("day_before", local(2, 15))].reason == "booked_late"
    for record in ahead[1:]:
        assert set(due(await bench.rows(record["id"]))) == {"day_before", "two_hours", "review"}
        assert await bench.storage.records.get(bench.company.id, record["id"]) is not None
    assert await bench.rows(later["id"]) == {}
    assert await bench.rows(deleted["id"]) == {}
    assert set(due(await bench.rows(gone["id"]))) == {"day_before", "two_hours", "review"}
    # YClients fails: the catalog result stands, the visit sync's failure is noted and counted
    bench.fake.fail(f"/api/v1/records/{LOTOS_ID}", 500, times=None)
    failed = await sync.sync_now(bench.company.id)
    assert failed.ok and failed.visits_error is not None and "500" in failed.visits_error
    assert visit_failures(bench.metrics) == 1


async def test_the_sync_reads_a_bounded_number_of_pages(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "VISITS_PAGE", 2)
    monkeypatch.setattr(sync_module, "MAX_VISIT_PAGES", 2)
    visits = [bench.visit(local(5, hour)) for hour in (10, 11, 12, 13, 14)]
    sync = CatalogSync(bench.storage, bench.client, wall_clock=bench.wall, planner=bench.planner)
    result = await sync.sync_now(bench.company.id)
    assert result.visits == 4
    planned = [bool(await bench.rows(v["id"])) for v in visits]
    assert planned == [True, True, True, True, False]
    assert len(bench.fake.requests_to(f"/api/v1/records/{LOTOS_ID}")) == 2


def _stored(bench: Bench, raw: dict[str, Any]) -> SalonRecord:
    from actors.yclients import record_from_api

    return record_from_api(bench.company.id, raw, timezone=ZONE.key)


async def _get(bench: Bench, record_id: int) -> SalonRecord:
    record = await bench.storage.records.get(bench.company.id, record_id)
    assert record is not None
    return record


# -- our own bookings (the running assistant) --------------------------------------------------

CLIENT = "79990001122"


async def until_rows(
    stand_storage: Storage, company_id: int, record_id: int, count: int
) -> list[Reminder]:
    """The record's rows once there are ``count`` (bounded, virtual time)."""
    with trio.fail_after(60):
        while True:
            rows = await stand_storage.reminders.for_visit(company_id, record_id)
            if len(rows) >= count:
                return rows
            await trio.sleep(0.1)


async def test_our_own_booking_plans_its_reminders_and_our_cancel_drops_them(
    autojump_clock: MockClock,
) -> None:
    async with open_stand(reminders=ReminderOptions(wall_clock=stand_wall)) as stand:
        summary = await to_summary(stand, CLIENT, "Мужская стрижка к Игорю послезавтра в 15:00")
        assert "Записать" in summary, summary
        booked = await stand.say(CLIENT, "да")
        assert CLAIM in booked
        [record] = stand.records()
        rows = await until_rows(stand.storage, stand.company_id, record["id"], 3)
        start = dt.datetime(2026, 3, 13, 15, 0, tzinfo=MSK)
        end = start + dt.timedelta(seconds=int(record["seance_length"]))
        assert {r.kind: (r.status, r.due_at) for r in rows} == {
            "day_before": (ReminderStatus.PLANNED, dt.datetime(2026, 3, 12, 18, 0, tzinfo=MSK)),
            "two_hours": (ReminderStatus.PLANNED, start - dt.timedelta(hours=2)),
            "review": (ReminderStatus.PLANNED, end + dt.timedelta(hours=2)),
        }
        assert {r.visit_id for r in rows} == {record["visit_id"]}
        stored = await stand.storage.records.get(stand.company_id, record["id"])
        assert stored is not None and stored.starts_at == start
        # the client cancels it through the assistant
        asked = await stand.say(CLIENT, "отмените мою запись")
        assert "Отменить" in asked, asked
        done = await stand.say(CLIENT, "да")
        assert "отменила" in done, done
        with trio.fail_after(60):
            while True:
                rows = await stand.storage.reminders.for_visit(stand.company_id, record["id"])
                if all(r.status is ReminderStatus.DROPPED for r in rows):
                    break
                await trio.sleep(0.1)
        assert {r.reason for r in rows} == {"cancelled"}
