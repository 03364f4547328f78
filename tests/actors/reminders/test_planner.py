"""The reminder planner: a stored YClients record read as a visit (pure), and what planning
writes into the durable schedule, on the in-memory twin and on PostgreSQL.

The salon is in Asia/Yekaterinburg (UTC+5). "Now" starts on Monday 2 March 2026, 10:00 local;
the visit is a week later, Monday 9 March, 15:00–16:00.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio

from actors.reminders import ReminderPlanner, VisitStatus
from actors.reminders._planner import booked_at, visit_from_record
from metrics import MetricsRegistry
from storage import (
    Company,
    Reminder,
    ReminderStatus,
    SalonRecord,
    Storage,
)
from tests.support.clock import FakeWallClock

ZONE = ZoneInfo("Asia/Yekaterinburg")
PHONE = "79161234567"
RECORD = 501
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZONE)


def local(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    """A wall time of the salon, in UTC."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(dt.UTC)


VISIT = local(9, 15)


def record(
    starts: dt.datetime | None = VISIT,
    *,
    record_id: int = RECORD,
    company_id: int = 1,
    created: str | None = "2026-03-02 10:00:00",
    changed: dt.datetime | None = None,
    attendance: int | None = 0,
    deleted: bool = False,
    phone: str | None = PHONE,
    length: int | None = 3600,
    master: str = "Анна",
) -> SalonRecord:
    """The record as ``storage.records`` holds it (``created``: YClients' naive local text)."""
    raw: dict[str, Any] = {"id": record_id, "visit_id": record_id + 1000}
    raw["staff"] = {"id": 7, "name": master}
    if created is not None:
        raw["create_date"] = created
    return SalonRecord(
        company_id=company_id,
        record_id=record_id,
        client_phone=phone,
        client_name="Мария",
        services=[{"id": 1, "title": "Стрижка"}, {"id": 2, "title": " Укладка "}, {"id": 3}],
        starts_at=starts,
        seance_length=length,
        attendance=attendance,
        deleted=deleted,
        changed_at=changed or NOW.astimezone(dt.UTC),
        raw=raw,
    )


def row(
    visit_time: dt.datetime,
    *,
    status: ReminderStatus = ReminderStatus.PLANNED,
    reason: str | None = None,
    booked: dt.datetime | None = None,
    kind: str = "two_hours",
) -> Reminder:
    details = {} if booked is None else {"booked_at": booked.isoformat()}
    return Reminder(
        id=1,
        company_id=1,
        record_id=RECORD,
        kind=kind,
        visit_time=visit_time,
        status=status,
        reason=reason,
        details=details,
    )


# -- a record read as a visit (pure) -----------------------------------------------------------


def test_a_record_reads_as_its_visit() -> None:
    visit = visit_from_record(record(length=5400), zone=ZONE, now=local(3, 12))
    assert visit is not None
    assert (visit.company_id, visit.record_id, visit.visit_id) == (1, RECORD, RECORD + 1000)
    assert visit.client_phone == PHONE and visit.client_name == "Мария"
    assert visit.service_titles == ("Стрижка", "Укладка")
    assert visit.master_name == "Анна"
    assert visit.starts_at == VISIT and visit.ends_at == VISIT + dt.timedelta(minutes=90)
    assert visit.booked_at == NOW  # create_date, a naive text on the salon's clock
    assert visit.status is VisitStatus.UPCOMING


@pytest.mark.parametrize(
    ("deleted", "attendance", "status"),
    [
        (False, 0, VisitStatus.UPCOMING),
        (False, None, VisitStatus.UPCOMING),
        (False, 2, VisitStatus.UPCOMING),  # confirmed
        (False, 1, VisitStatus.ATTENDED),
        (False, -1, VisitStatus.NO_SHOW),
        (True, 1, VisitStatus.DELETED),
    ],
)
def test_the_status_comes_from_deleted_and_attendance(
    deleted: bool, attendance: int | None, status: VisitStatus
) -> None:
    visit = visit_from_record(
        record(deleted=deleted, attendance=attendance), zone=ZONE, now=local(3, 12)
    )
    assert visit is not None and visit.status is status


@pytest.mark.parametrize(
    "bare",
    [record(phone=None), record(phone=""), record(phone="not a phone"), record(starts=None)],
    ids=["no phone", "empty phone", "bad phone", "no time"],
)
def test_nothing_to_plan_without_a_phone_or_a_time(bare: SalonRecord) -> None:
    assert visit_from_record(bare, zone=ZONE, now=local(3, 12)) is None


@pytest.mark.parametrize("length", [None, 0])
def test_a_visit_without_a_length_takes_an_hour(length: int | None) -> None:
    visit = visit_from_record(record(length=length), zone=ZONE, now=local(3, 12))
    assert visit is not None and visit.ends_at == VISIT + dt.timedelta(hours=1)


def test_booked_at_falls_back_to_the_change_then_now_and_is_never_later_than_now() -> None:
    now = local(3, 12)
    changed = local(2, 11)
    assert booked_at(record(created=None, changed=changed), VISIT, (), ZONE, now) == changed
    bare = SalonRecord(company_id=1, record_id=RECORD, starts_at=VISIT)
    assert booked_at(bare, VISIT, (), ZONE, now) == now
    ahead = record(created="2026-03-05T10:00:00+05:00")  # YClients' clock ahead of ours
    assert booked_at(ahead, VISIT, (), ZONE, now) == now
    with_offset = record(created="2026-03-02T08:00:00+03:00")
    assert booked_at(with_offset, VISIT, (), ZONE, now) == local(2, 10)


def test_a_move_seen_in_the_schedule_counts_from_the_change() -> None:
    now = local(8, 20)
    moved_at = local(8, 19)
    rec = record(changed=moved_at)
    earlier = local(10, 15)
    # rows only at the old time: the visit moved, just now
    assert booked_at(rec, VISIT, [row(earlier)], ZONE, now) == moved_at
    # rows at this time keep the moment first planned for it (a later change keeps it)
    later = record(changed=local(8, 19, 50))
    here = [
        row(earlier, status=ReminderStatus.DROPPED, reason="moved"),
        row(VISIT, booked=moved_at),
    ]
    assert booked_at(later, VISIT, here, ZONE, now) == moved_at
    # rows at this time that were all dropped as moved: the visit came back, now
    back = [row(earlier), row(VISIT, status=ReminderStatus.DROPPED, reason="moved", booked=NOW)]
    assert booked_at(later, VISIT, back, ZONE, now) == local(8, 19, 50)
    # no rows elsewhere: the booking, whatever the rows here say
    assert booked_at(later, VISIT, [row(VISIT, booked=moved_at)], ZONE, now) == NOW


# -- planning into the schedule (both backends) ------------------------------------------------


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock(NOW.astimezone(dt.UTC))


class Wakes:
    """Counts the planner's wake-ups of the scheduler."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        await trio.lowlevel.checkpoint()
        self.count += 1


async def salon(storage: Storage) -> Company:
    return (await storage.companies.create(5151, timezone=ZONE.key)).company


def planned_count(metrics: MetricsRegistry, kind: str) -> float:
    found = re.search(
        rf'^aiadmin_reminders_planned_total\{{kind="{kind}"\}} (\S+)$', metrics.render(), re.M
    )
    return float(found.group(1)) if found else 0.0


def rows_by_kind(rows: list[Reminder]) -> dict[tuple[str, dt.datetime], Reminder]:
    found = {(r.kind, r.visit_time): r for r in rows}
    assert len(found) == len(rows)
    return found


async def test_a_visit_a_week_ahead_gets_two_reminders_and_the_review(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    metrics = MetricsRegistry()
    wakes = Wakes()
    planner = ReminderPlanner(storage, wall_clock=wall, notify=wakes, metrics=metrics)
    await planner.plan_record(company, record(company_id=company.id))
    rows = await storage.reminders.for_visit(company.id, RECORD)
    assert [(r.kind, r.status, r.due_at) for r in rows] == [
        ("day_before", ReminderStatus.PLANNED, local(8, 18)),
        ("review", ReminderStatus.PLANNED, local(9, 18)),
        ("two_hours", ReminderStatus.PLANNED, local(9, 13)),
    ]
    for r in rows:
        assert r.visit_time == VISIT and r.phone == PHONE and r.visit_id == RECORD + 1000
        assert r.send_by is not None and r.due_at is not None and r.send_by > r.due_at
        assert r.details["master_name"] == "Анна"
        assert r.details["service_titles"] == ["Стрижка", "Укладка"]
        assert r.details["booked_at"] == NOW.astimezone(dt.UTC).isoformat()
    assert wakes.count == 1
    assert [planned_count(metrics, k) for k in ("day_before", "two_hours", "review")] == [1, 1, 1]
    # planned again (the periodic sync, a duplicate webhook): nothing is written again
    wall.advance(3600)
    await planner.plan_record(company, record(company_id=company.id))
    again = await storage.reminders.for_visit(company.id, RECORD)
    assert [(r.due_at, r.updated_at) for r in again] == [(r.due_at, r.updated_at) for r in rows]
    assert wakes.count == 1
    assert [planned_count(metrics, k) for k in ("day_before", "two_hours", "review")] == [1, 1, 1]


async def test_a_moved_visit_replans_from_the_moment_it_moved(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    first = local(10, 15)  # booked on Monday for Tuesday 10 March
    await planner.plan_record(company, record(first, company_id=company.id))
    # on Sunday 8 March at 19:00 the visit moves to Monday 9 March, 15:00
    wall.now = local(8, 19)
    await planner.plan_record(company, record(VISIT, company_id=company.id, changed=wall.now))
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    for kind in ("day_before", "two_hours", "review"):
        old = rows[(kind, first)]
        assert (old.status, old.reason) == (ReminderStatus.DROPPED, "moved")
    # booked (moved) after 18:00 the day before: no day-before reminder for the new time
    day_before = rows[("day_before", VISIT)]
    assert (day_before.status, day_before.reason) == (ReminderStatus.SKIPPED, "booked_late")
    assert rows[("two_hours", VISIT)].status is ReminderStatus.PLANNED
    assert rows[("two_hours", VISIT)].due_at == local(9, 13)
    assert rows[("review", VISIT)].due_at == local(9, 18)
    # the client confirms on Monday at 12:30 (attendance 2): the visit still counts as
    # moved on Sunday, so its two-hours reminder at 13:00 stays
    wall.now = local(9, 12, 30)
    confirmed = record(VISIT, company_id=company.id, changed=wall.now, attendance=2)
    await planner.plan_record(company, confirmed)
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    assert rows[("two_hours", VISIT)].status is ReminderStatus.PLANNED
    assert rows[("two_hours", VISIT)].due_at == local(9, 13)


@pytest.mark.parametrize("how", ["deleted in YClients", "cancelled by us"])
async def test_a_deleted_or_cancelled_visit_drops_its_rows(
    storage: Storage, wall: FakeWallClock, how: str
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await planner.plan_record(company, record(company_id=company.id))
    wall.advance(600)
    if how == "cancelled by us":
        await planner.drop_record(company.id, RECORD)
        reason = "cancelled"
    else:
        await planner.plan_record(company, record(company_id=company.id, deleted=True))
        reason = "deleted"
    rows = await storage.reminders.for_visit(company.id, RECORD)
    assert len(rows) == 3
    assert {(r.status, r.reason) for r in rows} == {(ReminderStatus.DROPPED, reason)}
    assert await storage.reminders.next_due() is None


async def test_a_visit_changed_after_its_reminder_went_out_gets_no_second_one(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await planner.plan_record(company, record(company_id=company.id))
    wall.now = local(8, 18)
    [claimed] = await storage.reminders.claim_due(wall.now, "node/test", 60.0)
    assert claimed.kind == "day_before"
    assert await storage.reminders.mark_sent(company.id, claimed.id, "node/test")
    # the salon changes the master, then moves the visit to 17:00 and back to 15:00
    wall.now = local(8, 19)
    await planner.plan_record(
        company, record(company_id=company.id, master="Ольга", changed=wall.now)
    )
    wall.now = local(8, 19, 10)
    await planner.plan_record(
        company, record(local(9, 17), company_id=company.id, master="Ольга", changed=wall.now)
    )
    wall.now = local(8, 19, 20)
    await planner.plan_record(
        company, record(company_id=company.id, master="Ольга", changed=wall.now)
    )
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    sent = rows[("day_before", VISIT)]
    assert (sent.id, sent.status, sent.message_id) == (
        claimed.id,
        ReminderStatus.SENT,
        claimed.message_id,
    )
    assert [
        r
        for r in rows.values()
        if r.kind == "day_before"
        and r.status
        in (
            ReminderStatus.PLANNED,
            ReminderStatus.CLAIMED,
        )
    ] == []
    assert rows[("two_hours", VISIT)].status is ReminderStatus.PLANNED
    assert rows[("two_hours", VISIT)].details["master_name"] == "Ольга"
    assert await storage.reminders.claim_due(local(9, 12), "node/test", 60.0) == []


@pytest.mark.parametrize(
    ("ends", "due"),
    [(local(9, 16), local(9, 16)), (local(9, 21, 30), local(10, 9))],
    ids=["daytime", "evening: the next morning"],
)
async def test_an_attended_visit_gets_its_review_at_its_end_and_no_more_reminders(
    storage: Storage, wall: FakeWallClock, ends: dt.datetime, due: dt.datetime
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    starts = ends - dt.timedelta(hours=1)
    await planner.plan_record(company, record(starts, company_id=company.id))
    wall.now = starts + dt.timedelta(minutes=50)
    await planner.plan_record(
        company, record(starts, company_id=company.id, attendance=1, changed=wall.now)
    )
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    review = rows[("review", starts)]
    assert (review.status, review.due_at) == (ReminderStatus.PLANNED, due)
    two_hours = rows[("two_hours", starts)]
    assert (two_hours.status, two_hours.reason) == (ReminderStatus.SKIPPED, "attended")


async def test_a_no_show_gets_no_review(storage: Storage, wall: FakeWallClock) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await planner.plan_record(company, record(company_id=company.id))
    wall.now = local(9, 16)
    await planner.plan_record(
        company, record(company_id=company.id, attendance=-1, changed=wall.now)
    )
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    review = rows[("review", VISIT)]
    assert (review.status, review.reason) == (ReminderStatus.SKIPPED, "no_show")
    assert await storage.reminders.claim_due(local(9, 20), "node/test", 60.0) == []


async def test_the_salons_settings_apply_and_unreadable_ones_are_the_defaults(
    storage: Storage, wall: FakeWallClock, caplog: pytest.LogCaptureFixture
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await storage.reminder_settings.put(
        company.id, {"day_before_at": "17:00", "reviews_enabled": False}
    )
    await planner.plan_record(company, record(company_id=company.id))
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    assert rows[("day_before", VISIT)].due_at == local(8, 17)
    assert (rows[("review", VISIT)].status, rows[("review", VISIT)].reason) == (
        ReminderStatus.SKIPPED,
        "disabled",
    )
    await storage.reminder_settings.put(company.id, {"day_before_at": 1700})
    with caplog.at_level(logging.WARNING, logger="actors.reminders._planner"):
        await planner.plan_record(company, record(company_id=company.id))
    assert "unreadable" in caplog.text
    rows = rows_by_kind(await storage.reminders.for_visit(company.id, RECORD))
    assert rows[("day_before", VISIT)].due_at == local(8, 18)
    assert rows[("review", VISIT)].status is ReminderStatus.PLANNED


async def test_a_visit_without_a_phone_is_not_planned_and_loses_its_rows(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = await salon(storage)
    planner = ReminderPlanner(storage, wall_clock=wall)
    await planner.plan_record(company, record(company_id=company.id, record_id=600, phone=None))
    assert await storage.reminders.for_visit(company.id, 600) == []
    await planner.plan_record(company, record(company_id=company.id))
    await planner.plan_record(company, record(company_id=company.id, phone=None))
    rows = await storage.reminders.for_visit(company.id, RECORD)
    assert {(r.status, r.reason) for r in rows} == {(ReminderStatus.DROPPED, "no_phone")}


async def test_an_uninstalled_salon_is_not_planned(storage: Storage, wall: FakeWallClock) -> None:
    company = await salon(storage)
    moved = await storage.companies.transition(company.id, ["pending"], "uninstalled")
    assert moved is not None
    planner = ReminderPlanner(storage, wall_clock=wall)
    await planner.plan_record(moved, record(company_id=company.id))
    assert await storage.reminders.for_visit(company.id, RECORD) == []
