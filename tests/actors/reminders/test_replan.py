"""Re-planning a salon's stored visits after its settings changed: ``replan_company`` on the
in-memory twin and on PostgreSQL (every visit, page by page, reviews of visits that just ended
too, rows already sent kept), and the background service ``ReminderReplanner`` (coalescing,
a failure logged and counted without stopping it).

The salon is in Asia/Yekaterinburg (UTC+5); "now" is Monday 2 March 2026, 10:00 local.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator

import pytest
import trio

from actors import _node as node_module
from actors.reminders import (
    ReminderPlanner,
    ReminderReplanner,
    ReminderSettings,
    affects_planning,
)
from actors.reminders import _replan as replan_module
from actors.reminders._planner import REPLAN_LOOKBACK
from actors.reminders._replan import PLANNING_FIELDS
from metrics import MetricsRegistry
from storage import Company, Reminder, ReminderStatus, Storage, StorageUnavailable, open_storage
from tests.actors.reminders.test_planner import NOW, ZONE, local, record
from tests.support.clock import FakeWallClock


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock(NOW.astimezone(dt.UTC))


@pytest.fixture
async def memory(wall: FakeWallClock) -> AsyncIterator[Storage]:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as st:
        yield st


async def salon(storage: Storage) -> Company:
    return (await storage.companies.create(5151, timezone=ZONE.key)).company


async def rows_of(storage: Storage, company: Company, record_id: int) -> dict[str, Reminder]:
    return {r.kind: r for r in await storage.reminders.for_visit(company.id, record_id)}


def due(row: Reminder) -> dt.datetime:
    """The row's due moment on the salon's clock."""
    assert row.due_at is not None
    return row.due_at.astimezone(ZONE)


async def change(storage: Storage, company: Company, **fields: object) -> None:
    current = await storage.reminder_settings.get(company.id) or {}
    await storage.reminder_settings.put(company.id, {**current, **fields})


async def test_every_stored_visit_follows_the_new_hour_page_by_page(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    same = local(9, 15)
    starts = {501: same, 502: same, 503: same, 504: local(10, 12), 505: local(11, 16)}
    records = [record(start, record_id=rid, company_id=company.id) for rid, start in starts.items()]
    records.append(record(local(4, 11), record_id=506, company_id=company.id, deleted=True))
    # long past (before the look-back): not read again
    records.append(
        record(
            NOW.astimezone(dt.UTC) - REPLAN_LOOKBACK - dt.timedelta(hours=1),
            record_id=507,
            company_id=company.id,
        )
    )
    for rec in records:
        assert await storage.records.apply(rec)
    assert await planner.plan_records(company, records[:5]) == 5
    for rid, start in starts.items():
        day_before = (await rows_of(storage, company, rid))["day_before"]
        local_due = due(day_before)
        assert (local_due.date(), local_due.hour) == (
            start.astimezone(ZONE).date() - dt.timedelta(days=1),
            18,
        )

    await change(storage, company, day_before_at="19:00", two_hours_before_minutes=180)
    assert await planner.replan_company(company, page=2) == 5
    for rid, start in starts.items():
        rows = await rows_of(storage, company, rid)
        moment = due(rows["day_before"])
        assert rows["day_before"].status is ReminderStatus.PLANNED
        assert (moment.date(), moment.time()) == (
            start.astimezone(ZONE).date() - dt.timedelta(days=1),
            dt.time(19, 0),
        ), rid
        assert rows["two_hours"].due_at == start - dt.timedelta(hours=3)
    assert await rows_of(storage, company, 507) == {}


async def test_a_kind_switched_off_is_skipped_and_a_sent_one_stays(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    visits = [
        record(local(9, 15), company_id=company.id),
        record(local(10, 15), record_id=502, company_id=company.id),
    ]
    for rec in visits:
        await storage.records.apply(rec)
    await planner.plan_records(company, visits)
    first = (await rows_of(storage, company, 501))["day_before"]
    # the first visit's day-before reminder went out (a scheduler claimed and sent it)
    claimed = await storage.reminders.claim_due(due(first), "node-a", 60.0, limit=1)
    assert [r.id for r in claimed] == [first.id]
    assert await storage.reminders.mark_sent(company.id, first.id, "node-a")

    await change(storage, company, day_before_at="19:30")
    assert await planner.replan_company(company) == 2
    sent = (await rows_of(storage, company, 501))["day_before"]
    assert (sent.status, sent.due_at, sent.id) == (ReminderStatus.SENT, first.due_at, first.id)
    moved = (await rows_of(storage, company, 502))["day_before"]
    assert moved.status is ReminderStatus.PLANNED and moved.due_at == local(9, 19, 30)

    await change(storage, company, two_hours_enabled=False)
    assert await planner.replan_company(company) == 2
    for rid in (501, 502):
        off = (await rows_of(storage, company, rid))["two_hours"]
        assert (off.status, off.reason) == (ReminderStatus.SKIPPED, "disabled")
    assert (await rows_of(storage, company, 501))["day_before"].status is ReminderStatus.SENT
    # switched on again: planned again
    await change(storage, company, two_hours_enabled=True)
    await planner.replan_company(company)
    assert (await rows_of(storage, company, 502))["two_hours"].status is ReminderStatus.PLANNED


async def test_the_review_of_a_visit_that_just_ended_follows_too(
    memory: Storage, wall: FakeWallClock
) -> None:
    storage = memory
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await change(storage, company, review_after_minutes=240)
    visit = record(local(2, 7), company_id=company.id, created="2026-02-20 10:00:00")
    await storage.records.apply(visit)  # 07:00–08:00 today; now is 10:00
    await planner.plan_record(company, visit)
    assert (await rows_of(storage, company, 501))["review"].due_at == local(2, 12)
    await change(storage, company, review_after_minutes=300)
    assert await planner.replan_company(company) == 1
    assert (await rows_of(storage, company, 501))["review"].due_at == local(2, 13)


def test_the_planning_fields_are_settings_and_the_child_ids_agree() -> None:
    assert set(ReminderSettings().to_json()) >= PLANNING_FIELDS
    assert "texts" not in PLANNING_FIELDS and "review_link" not in PLANNING_FIELDS
    assert affects_planning(["texts.review", "quiet_end"])
    assert not affects_planning(["texts.review", "review_link", "high_rating"])
    assert node_module.REPLAN_CHILD == replan_module.REPLAN_CHILD


class GatedPlanner(ReminderPlanner):
    """A planner whose ``replan_company`` fails while ``fail`` says so and otherwise waits
    for ``gate`` (when set), recording each call."""

    def __init__(self, storage: Storage, wall: FakeWallClock) -> None:
        super().__init__(storage, wall_clock=wall)
        self.calls: list[int] = []
        self.fail = False
        self.gate: trio.Event | None = None

    async def replan_company(self, company: Company, *, page: int = 200) -> int:
        self.calls.append(company.id)
        if self.fail:
            raise StorageUnavailable("database down")
        if self.gate is not None:
            await self.gate.wait()
        return await super().replan_company(company, page=page)


async def test_the_service_coalesces_requests_and_survives_a_failure(
    memory: Storage,
    wall: FakeWallClock,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = memory
    first, second = await salon(storage), (await storage.companies.create(5152)).company
    planner = GatedPlanner(storage, wall)
    metrics = MetricsRegistry()
    service = ReminderReplanner(planner, concurrency=1, metrics=metrics)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        planner.fail = True
        with caplog.at_level(logging.ERROR):
            service.request(first.id)
            await service.settled()
        assert planner.calls == [first.id]
        assert "not planned again" in caplog.text
        assert 'aiadmin_reminders_replans_total{result="failed"} 1' in metrics.render()

        # requested again while it runs: once more after; a salon waiting takes one run
        planner.fail = False
        planner.gate = trio.Event()
        service.request(first.id)
        await trio.sleep(1)
        assert service.busy and planner.calls == [first.id, first.id]
        service.request(first.id)
        service.request(second.id)
        service.request(second.id)
        planner.gate.set()
        await service.settled()
        assert sorted(planner.calls[2:]) == sorted([first.id, second.id])
        assert len(planner.calls) == 4
        assert 'aiadmin_reminders_replans_total{result="ok"} 3' in metrics.render()
        # an unknown salon is counted, not re-planned
        service.request(99_999)
        await service.settled()
        assert len(planner.calls) == 4
        assert 'aiadmin_reminders_replans_total{result="no_company"} 1' in metrics.render()
        nursery.cancel_scope.cancel()
