"""Contract: the durable schedule of reminders (plan, moves, drops, claims with leases, the
claimer's marks), clients' ratings and reminder settings, on both backends; and claims racing
between two PostgreSQL pools (two processes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
import trio

from storage import (
    NotFound,
    PlannedReminder,
    Reminder,
    ReminderKey,
    ReminderStatus,
    Storage,
    ValidationError,
)
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage

PHONE = "79161234567"
VISIT = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
OWNER = "node-a/scheduler"
MESSAGE_ID = re.compile(r"3EB0[0-9A-F]{18}")


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


def _row(
    kind: str = "day_before",
    *,
    record: int = 501,
    visit: datetime = VISIT,
    due: datetime | None = None,
    **extra: object,
) -> PlannedReminder:
    return PlannedReminder(
        record_id=record,
        kind=kind,
        visit_time=visit,
        due_at=due or visit - timedelta(hours=16),
        **extra,  # type: ignore[arg-type]
    )


def _by_kind(rows: list[Reminder]) -> dict[tuple[str, datetime], Reminder]:
    return {(r.kind, r.visit_time): r for r in rows}


async def test_plan_stores_rows_and_a_replan_updates_them(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    details = {"services": ["Стрижка"], "master": "Анна"}
    # In another zone on the way in; UTC on the way out (the key is the instant).
    local = VISIT.astimezone(timezone(timedelta(hours=5)))
    assert await storage.reminders.plan(
        cid,
        [
            _row(visit=local, visit_id=77, phone=PHONE, details=details),
            _row(
                "two_hours", due=VISIT - timedelta(hours=2), send_by=VISIT - timedelta(minutes=30)
            ),
        ],
    )
    rows = await storage.reminders.for_visit(cid, 501)
    assert [(r.kind, r.status, r.visit_time, r.due_at) for r in rows] == [
        ("day_before", ReminderStatus.PLANNED, VISIT, VISIT - timedelta(hours=16)),
        ("two_hours", ReminderStatus.PLANNED, VISIT, VISIT - timedelta(hours=2)),
    ]
    first = rows[0]
    assert (first.visit_id, first.phone, first.details, first.attempts, first.message_id) == (
        77,
        PHONE,
        details,
        0,
        None,
    )
    assert first.visit_time.tzinfo is not None and first.visit_time.utcoffset() == timedelta(0)
    assert (first.created_at, first.updated_at) == (wall(), wall())
    assert rows[1].send_by == VISIT - timedelta(minutes=30)

    # The same visit time again (the salon changed the service): same row, new details.
    wall.advance(60)
    later_due = VISIT - timedelta(hours=15)
    assert not await storage.reminders.plan(
        cid, [_row(due=later_due, visit_id=77, phone=PHONE, details={"services": ["Окрашивание"]})]
    )
    again = await storage.reminders.for_visit(cid, 501)
    assert len(again) == 2
    assert (again[0].id, again[0].due_at, again[0].details, again[0].updated_at) == (
        first.id,
        later_due,
        {"services": ["Окрашивание"]},
        wall(),
    )
    assert await storage.reminders.get(cid, first.id) == again[0]
    # A re-plan that does not know the visit id or the phone keeps the known ones.
    await storage.reminders.plan(cid, [_row(due=later_due)])
    kept = await storage.reminders.get(cid, first.id)
    assert kept is not None and (kept.visit_id, kept.phone, kept.details) == (77, PHONE, {})


async def test_plan_says_when_the_earliest_due_time_went_earlier(storage: Storage) -> None:
    cid = await _company(storage)
    assert await storage.reminders.next_due() is None
    assert await storage.reminders.plan(cid, [_row(due=VISIT - timedelta(hours=10))])
    assert await storage.reminders.next_due() == VISIT - timedelta(hours=10)
    # Later than what is pending: no need to wake the scheduler.
    assert not await storage.reminders.plan(
        cid, [_row("two_hours", due=VISIT - timedelta(hours=2))]
    )
    # Another visit due earlier: wake it.
    assert await storage.reminders.plan(cid, [_row(record=502, due=VISIT - timedelta(hours=20))])
    assert await storage.reminders.next_due() == VISIT - timedelta(hours=20)
    assert not await storage.reminders.plan(cid, [])


async def test_a_moved_visit_drops_its_old_rows_and_plans_new_ones(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(cid, [_row(), _row("two_hours", due=VISIT - timedelta(hours=2))])
    moved = VISIT + timedelta(days=1, hours=3)
    await storage.reminders.plan(
        cid, [_row(visit=moved), _row("two_hours", visit=moved, due=moved - timedelta(hours=2))]
    )
    rows = _by_kind(await storage.reminders.for_visit(cid, 501))
    assert len(rows) == 4
    for kind in ("day_before", "two_hours"):
        assert (rows[kind, VISIT].status, rows[kind, VISIT].reason) == (
            ReminderStatus.DROPPED,
            "moved",
        )
        assert rows[kind, moved].status is ReminderStatus.PLANNED
    # Moved back: the old rows are planned again, the new ones dropped.
    await storage.reminders.plan(cid, [_row()])
    rows = _by_kind(await storage.reminders.for_visit(cid, 501))
    assert rows["day_before", VISIT].status is ReminderStatus.PLANNED
    assert rows["day_before", VISIT].reason is None
    assert rows["day_before", moved].status is ReminderStatus.DROPPED
    # Only the planned visit time is due; each key is claimed once.
    claimed = await storage.reminders.claim_due(moved, OWNER, 60)
    assert sorted((r.kind, r.visit_time) for r in claimed) == [
        ("day_before", VISIT),
        ("two_hours", moved),
    ]


async def test_a_sent_reminder_is_never_planned_again_for_the_same_visit_time(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(cid, [_row(due=wall())])
    (claimed,) = await storage.reminders.claim_due(wall(), OWNER, 60)
    assert await storage.reminders.mark_sent(cid, claimed.id, OWNER)
    # The visit changed (service, master) after the reminder went: planned again, same time.
    assert not await storage.reminders.plan(cid, [_row(due=wall() + timedelta(hours=1))])
    assert await storage.reminders.skip(cid, claimed.key, "disabled") is not None
    rows = await storage.reminders.for_visit(cid, 501)
    assert len(rows) == 1
    assert (rows[0].status, rows[0].due_at, rows[0].message_id, rows[0].claimed_by) == (
        ReminderStatus.SENT,
        wall(),
        claimed.message_id,
        OWNER,
    )
    assert await storage.reminders.drop_visit(cid, 501, "cancelled") == 0
    wall.advance(7200)
    assert await storage.reminders.claim_due(wall(), OWNER, 60) == []
    assert await storage.reminders.next_due() is None


async def test_a_claimed_row_stays_as_it_is_while_its_lease_holds(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(cid, [_row(due=wall())])
    (claimed,) = await storage.reminders.claim_due(wall(), OWNER, 60)
    await storage.reminders.plan(cid, [_row(due=wall() + timedelta(hours=1))])
    await storage.reminders.plan(cid, [_row(visit=VISIT + timedelta(hours=1))])  # moved
    assert await storage.reminders.drop_visit(cid, 501, "cancelled") == 1  # the new one
    assert await storage.reminders.get(cid, claimed.id) == claimed
    assert await storage.reminders.mark_sent(cid, claimed.id, OWNER)


async def test_a_cancelled_visit_drops_its_planned_rows_and_lapsed_claims(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(
        cid,
        [_row(due=wall()), _row("two_hours", due=wall() + timedelta(hours=5))],
    )
    await storage.reminders.plan(cid, [_row(record=502, due=wall() + timedelta(hours=6))])
    (claimed,) = await storage.reminders.claim_due(wall(), "crashed", 60)
    wall.advance(61)  # the claimer died: its lease ran out
    assert await storage.reminders.drop_visit(cid, 501, "cancelled") == 2
    rows = await storage.reminders.for_visit(cid, 501)
    assert [(r.status, r.reason, r.claimed_by) for r in rows] == [
        (ReminderStatus.DROPPED, "cancelled", None),
        (ReminderStatus.DROPPED, "cancelled", None),
    ]
    assert not await storage.reminders.mark_sent(cid, claimed.id, "crashed")
    (other,) = await storage.reminders.for_visit(cid, 502)
    assert other.status is ReminderStatus.PLANNED
    wall.advance(86400)
    assert [r.record_id for r in await storage.reminders.claim_due(wall(), OWNER, 60)] == [502]


async def test_skip_records_the_reason_and_a_replan_may_revive_it(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    key = ReminderKey(501, "day_before", VISIT)
    skipped = await storage.reminders.skip(cid, key, "booked_late")
    assert (skipped.status, skipped.reason, skipped.due_at, skipped.key) == (
        ReminderStatus.SKIPPED,
        "booked_late",
        None,
        key,
    )
    assert await storage.reminders.next_due() is None
    assert await storage.reminders.backlog(VISIT) == 0
    # The salon moved its reminder hour: the same key is planned after all.
    assert await storage.reminders.plan(cid, [_row(due=wall())])
    (planned,) = await storage.reminders.for_visit(cid, 501)
    assert (planned.id, planned.status, planned.reason) == (
        skipped.id,
        ReminderStatus.PLANNED,
        None,
    )
    # Skipping a planned row keeps its due time for the record; a moved skip drops the old.
    again = await storage.reminders.skip(cid, key, "disabled")
    assert (again.status, again.reason, again.due_at) == (
        ReminderStatus.SKIPPED,
        "disabled",
        wall(),
    )
    await storage.reminders.plan(cid, [_row("two_hours", due=wall())])
    moved = ReminderKey(501, "two_hours", VISIT + timedelta(hours=2))
    await storage.reminders.skip(cid, moved, "too_close")
    rows = _by_kind(await storage.reminders.for_visit(cid, 501))
    assert rows["two_hours", VISIT].status is ReminderStatus.DROPPED
    assert rows["two_hours", VISIT].reason == "moved"
    assert await storage.reminders.backlog(wall() + timedelta(days=30)) == 0


async def test_claims_take_due_rows_in_order_with_a_lease_and_a_stable_message_id(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    now = wall()
    await storage.reminders.plan(
        cid,
        [
            _row(record=r, due=now + timedelta(minutes=m))
            for r, m in ((1, 5), (2, -10), (3, 0), (4, 60))
        ],
    )
    assert await storage.reminders.backlog(now) == 2
    assert await storage.reminders.next_due() == now - timedelta(minutes=10)
    first = await storage.reminders.claim_due(now, OWNER, 600, limit=1)
    assert [r.record_id for r in first] == [2]
    batch = await storage.reminders.claim_due(now + timedelta(minutes=5), OWNER, 600)
    assert [r.record_id for r in batch] == [3, 1]
    for row in first + batch:
        assert row.status is ReminderStatus.CLAIMED
        assert row.attempts == 1 and row.claimed_by == OWNER
        assert row.message_id is not None and MESSAGE_ID.fullmatch(row.message_id)
    assert first[0].claim_until == now + timedelta(minutes=10)
    assert len({r.message_id for r in first + batch}) == 3
    # Claimed rows are not due again while their lease holds...
    assert await storage.reminders.claim_due(now + timedelta(minutes=9), "other", 30) == []
    assert await storage.reminders.next_due() == now + timedelta(minutes=10)
    # ...and once it runs out (the claimer crashed) another claimer takes them, same ids.
    later = now + timedelta(minutes=15)
    assert await storage.reminders.backlog(later) == 3
    taken = await storage.reminders.claim_due(later, "other", 30)
    assert [(r.record_id, r.message_id, r.attempts, r.claimed_by) for r in taken] == [
        (2, first[0].message_id, 2, "other"),
        (3, batch[0].message_id, 2, "other"),
        (1, batch[1].message_id, 2, "other"),
    ]
    # The old claimer no longer may mark them; the new one may.
    assert not await storage.reminders.mark_sent(cid, taken[0].id, OWNER)
    assert await storage.reminders.mark_sent(cid, taken[0].id, "other")


async def test_only_the_claimer_marks_sent_skipped_or_releases(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    now = wall()
    await storage.reminders.plan(cid, [_row(record=r, due=now) for r in (1, 2, 3)])
    one, two, three = await storage.reminders.claim_due(now, OWNER, 60)
    for row in (one, two, three):
        assert not await storage.reminders.mark_sent(cid, row.id, "someone-else")
        assert not await storage.reminders.mark_skipped(cid, row.id, "someone-else", "x")
        assert not await storage.reminders.release(cid, row.id, "someone-else")
    assert await storage.reminders.mark_sent(cid, one.id, OWNER)
    assert not await storage.reminders.mark_sent(cid, one.id, OWNER)  # not claimed any more
    assert await storage.reminders.mark_skipped(cid, two.id, OWNER, "opted_out")
    retry = now + timedelta(minutes=5)
    assert await storage.reminders.release(cid, three.id, OWNER, retry_at=retry)
    got = {r.record_id: r for r in await storage.reminders.claim_due(retry, "b", 60)}
    assert list(got) == [3]
    assert (got[3].message_id, got[3].attempts) == (three.message_id, 2)
    sent = await storage.reminders.get(cid, one.id)
    skipped = await storage.reminders.get(cid, two.id)
    assert sent is not None and skipped is not None
    assert (sent.status, sent.claim_until) == (ReminderStatus.SENT, None)
    assert (skipped.status, skipped.reason) == (ReminderStatus.SKIPPED, "opted_out")
    assert not await storage.reminders.mark_sent(cid, 10**9, OWNER)


async def test_mark_sent_many_marks_only_the_owners_claimed_rows_of_each_company(
    storage: Storage, wall: FakeWallClock
) -> None:
    mine = await _company(storage, 1)
    theirs = await _company(storage, 2)
    now = wall()
    await storage.reminders.plan(mine, [_row(record=r, due=now) for r in (1, 2, 3)])
    await storage.reminders.plan(theirs, [_row(record=9, due=now)])
    claimed = {r.record_id: r for r in await storage.reminders.claim_due(now, OWNER, 60)}
    one, two, three, nine = (claimed[r] for r in (1, 2, 3, 9))
    assert await storage.reminders.mark_skipped(mine, three.id, OWNER, "opted_out")
    assert await storage.reminders.mark_sent_many("someone-else", [(mine, one.id)]) == set()
    keys = [
        (mine, one.id),
        (theirs, two.id),  # not their row: left as it is
        (mine, three.id),  # skipped already
        (theirs, nine.id),
        (mine, 10**9),
        (theirs + 100, one.id),
    ]
    assert await storage.reminders.mark_sent_many(OWNER, keys) == {
        (mine, one.id),
        (theirs, nine.id),
    }
    assert await storage.reminders.mark_sent_many(OWNER, keys) == set()  # sent already
    assert await storage.reminders.mark_sent_many(OWNER, []) == set()
    got = {r: await storage.reminders.get(c, r) for c, r in [(mine, one.id), (theirs, nine.id)]}
    for row in got.values():
        assert row is not None and (row.status, row.claim_until) == (ReminderStatus.SENT, None)
    left = await storage.reminders.get(mine, two.id)
    assert left is not None and (left.status, left.claimed_by) == (ReminderStatus.CLAIMED, OWNER)
    skipped = await storage.reminders.get(mine, three.id)
    assert skipped is not None and skipped.status is ReminderStatus.SKIPPED
    with pytest.raises(ValidationError):
        await storage.reminders.mark_sent_many(OWNER, [(mine, 0)])


async def test_a_company_never_sees_or_changes_another_companys_rows(
    storage: Storage, wall: FakeWallClock
) -> None:
    mine = await _company(storage, 1)
    theirs = await _company(storage, 2)
    await storage.reminders.plan(mine, [_row(due=wall())])
    await storage.reviews.save_rating(mine, 501, 77, PHONE, 2, "долго ждала")
    await storage.reminder_settings.put(mine, {"review_link": "https://example.org/a"})
    (row,) = await storage.reminders.claim_due(wall(), OWNER, 60)
    assert await storage.reminders.get(theirs, row.id) is None
    assert await storage.reminders.for_visit(theirs, 501) == []
    assert not await storage.reminders.mark_sent(theirs, row.id, OWNER)
    assert not await storage.reminders.mark_skipped(theirs, row.id, OWNER, "x")
    assert not await storage.reminders.release(theirs, row.id, OWNER)
    assert await storage.reminders.drop_visit(theirs, 501, "cancelled") == 0
    # Their plan for the same record id is their own row.
    await storage.reminders.plan(theirs, [_row(visit=VISIT + timedelta(hours=1))])
    assert (await storage.reminders.get(mine, row.id)) == row
    assert await storage.reviews.get(theirs, 501) is None
    assert await storage.reviews.list_low(theirs, wall() - timedelta(days=1)) == []
    assert await storage.reminder_settings.get(theirs) is None
    assert await storage.reminder_settings.get(mine) == {"review_link": "https://example.org/a"}
    unknown = theirs + 100
    for call in (
        storage.reminders.plan(unknown, [_row()]),
        storage.reminders.skip(unknown, row.key, "x"),
        storage.reminders.drop_visit(unknown, 501, "x"),
        storage.reminders.mark_sent(unknown, row.id, OWNER),
        storage.reminders.get(unknown, row.id),
        storage.reminders.for_visit(unknown, 501),
        storage.reviews.save_rating(unknown, 501, None, PHONE, 5, None),
        storage.reviews.get(unknown, 501),
        storage.reminder_settings.get(unknown),
        storage.reminder_settings.put(unknown, {}),
    ):
        with pytest.raises(NotFound):
            await call


async def test_ratings_one_per_visit_and_the_low_ones_listed(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    start = wall()
    first = await storage.reviews.save_rating(cid, 501, 77, PHONE, 5, None)
    assert (first.rating, first.comment, first.visit_id, first.created_at) == (5, None, 77, start)
    wall.advance(30)
    # The comment comes in the next message: rating and comment are replaced.
    second = await storage.reviews.save_rating(cid, 501, None, PHONE, 2, "Мастер опоздал 👎")
    assert second == await storage.reviews.get(cid, 501)
    assert (second.rating, second.comment, second.visit_id) == (2, "Мастер опоздал 👎", 77)
    assert (second.created_at, second.updated_at) == (start, wall())
    await storage.reviews.save_rating(cid, 502, None, PHONE, 3, None)
    await storage.reviews.save_rating(cid, 503, None, PHONE, 4, "ok")
    wall.advance(30)
    await storage.reviews.save_rating(cid, 504, None, PHONE, 1, None)
    low = await storage.reviews.list_low(cid, start)
    assert [r.record_id for r in low] == [504, 502, 501]
    assert [r.record_id for r in await storage.reviews.list_low(cid, wall())] == [504]
    assert [r.record_id for r in await storage.reviews.list_low(cid, start, max_rating=1)] == [504]
    assert await storage.reviews.get(cid, 999) is None


async def test_settings_are_stored_as_json(storage: Storage) -> None:
    cid = await _company(storage)
    assert await storage.reminder_settings.get(cid) is None
    settings = {"day_before_at": "18:00", "texts": {"review": "Оцените визит"}, "high_rating": 4}
    await storage.reminder_settings.put(cid, settings)
    assert await storage.reminder_settings.get(cid) == settings
    await storage.reminder_settings.put(cid, {"reviews_enabled": False})
    assert await storage.reminder_settings.get(cid) == {"reviews_enabled": False}


async def test_settings_of_many_companies_in_one_read(storage: Storage) -> None:
    mine = await _company(storage, 1)
    theirs = await _company(storage, 2)
    bare = await _company(storage, 3)
    await storage.reminder_settings.put(mine, {"high_rating": 4})
    await storage.reminder_settings.put(theirs, {"reviews_enabled": False})
    got = await storage.reminder_settings.get_many([mine, theirs, bare, bare + 100])
    assert got == {mine: {"high_rating": 4}, theirs: {"reviews_enabled": False}}
    assert await storage.reminder_settings.get_many([]) == {}


async def test_both_twins_refuse_the_same_values(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    refused = [
        ("comment", storage.reviews.save_rating(cid, 1, None, PHONE, 5, "bad \ud800 text")),
        ("comment", storage.reviews.save_rating(cid, 1, None, PHONE, 5, "x" * 2001)),
        ("comment", storage.reviews.save_rating(cid, 1, None, PHONE, 5, "nul\x00")),
        ("rating", storage.reviews.save_rating(cid, 1, None, PHONE, 0, None)),
        ("rating", storage.reviews.save_rating(cid, 1, None, PHONE, 6, None)),
        ("rating", storage.reviews.save_rating(cid, 1, None, PHONE, True, None)),
        ("phone", storage.reviews.save_rating(cid, 1, None, "+7 916", 5, None)),
        ("record_id", storage.reviews.save_rating(cid, 0, None, PHONE, 5, None)),
        ("kind", storage.reminders.plan(cid, [_row("Day-Before")])),
        ("visit_time", storage.reminders.plan(cid, [_row(visit=datetime(2026, 1, 20, 10))])),
        ("details", storage.reminders.plan(cid, [_row(details={"x": "\udfff"})])),
        ("details", storage.reminders.plan(cid, [_row(details={"x": "y" * 20_000})])),
        ("phone", storage.reminders.plan(cid, [_row(phone="12")])),
        ("rows", storage.reminders.plan(cid, [_row(), _row(visit=VISIT + timedelta(hours=1))])),
        ("reason", storage.reminders.skip(cid, ReminderKey(1, "review", VISIT), "")),
        ("reason", storage.reminders.drop_visit(cid, 1, "\ud800")),
        ("owner", storage.reminders.claim_due(wall(), "", 60)),
        ("lease", storage.reminders.claim_due(wall(), OWNER, 0)),
        ("now", storage.reminders.claim_due(datetime(2026, 1, 1), OWNER, 60)),
        ("settings", storage.reminder_settings.put(cid, {"text": "\ud800"})),
        ("company_id", storage.reminders.for_visit(2**31, 1)),
    ]
    for field, call in refused:
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.field == field
    assert await storage.reminders.for_visit(cid, 501) == []
    assert await storage.reviews.get(cid, 1) is None
    # The longest comment is kept whole.
    kept = await storage.reviews.save_rating(cid, 1, None, PHONE, 5, "я" * 2000)
    assert kept.comment == "я" * 2000


async def test_concurrent_claimers_get_each_row_once(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(cid, [_row(record=r, due=wall()) for r in range(1, 41)])
    got: list[int] = []

    async def claimer(name: str) -> None:
        while batch := await storage.reminders.claim_due(wall(), name, 60, limit=3):
            got.extend(r.id for r in batch)

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(claimer, f"c{n}")
    assert sorted(got) == sorted(set(got)) and len(got) == 40


async def test_two_pools_racing_claim_each_row_exactly_once(
    real_storage: Storage, database_url: str, wall: FakeWallClock
) -> None:
    cid = await _company(real_storage)
    await real_storage.reminders.plan(
        cid, [_row(record=r, due=wall() - timedelta(seconds=r)) for r in range(1, 201)]
    )
    # A second storage = a second pool (another process) on the same database and clock.
    async with open_real_storage(
        database_url, redis_url=None, truncate=False, wall_clock=wall, pool_max_size=4
    ) as other:
        got: dict[int, str] = {}
        doubles: list[int] = []

        async def claimer(st: Storage, name: str) -> None:
            while batch := await st.reminders.claim_due(wall(), name, 60, limit=4):
                for row in batch:
                    if row.id in got:
                        doubles.append(row.id)
                    got[row.id] = name
                    assert await st.reminders.mark_sent(cid, row.id, name)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for n in range(3):
                    nursery.start_soon(claimer, real_storage, f"a{n}")
                    nursery.start_soon(claimer, other, f"b{n}")
    assert doubles == []
    assert len(got) == 200
    assert {name[0] for name in got.values()} == {"a", "b"}  # both pools took part
    rows = [r for v in range(1, 201) for r in await real_storage.reminders.for_visit(cid, v)]
    assert {r.status for r in rows} == {ReminderStatus.SENT}
    assert all(r.attempts == 1 for r in rows)


async def test_deleting_a_company_removes_its_rows(real_storage: Storage) -> None:
    cid = await _company(real_storage)
    keep = await _company(real_storage, 2)
    for company in (cid, keep):
        await real_storage.reminders.plan(company, [_row()])
        await real_storage.reviews.save_rating(company, 501, None, PHONE, 1, None)
        await real_storage.reminder_settings.put(company, {"a": 1})

    async def delete(conn: asyncpg.Connection) -> list[int]:
        await conn.execute("DELETE FROM companies WHERE id = $1", cid)
        counts = []
        for table in ("reminders", "reviews", "reminder_settings"):
            counts.append(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        return counts

    assert real_storage.pg is not None
    assert await real_storage.pg.run(delete) == [1, 1, 1]
    assert len(await real_storage.reminders.for_visit(keep, 501)) == 1


async def test_the_planners_skip_catches_a_lapsed_claim_but_not_a_live_one(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    await storage.reminders.plan(cid, [_row(due=wall()), _row(record=502, due=wall())])
    live, lapsed = sorted(
        await storage.reminders.claim_due(wall(), OWNER, 60), key=lambda r: r.record_id
    )
    assert await storage.reminders.release(cid, live.id, OWNER)  # due as before
    (live,) = await storage.reminders.claim_due(wall(), OWNER, 600)
    wall.advance(61)
    assert (await storage.reminders.skip(cid, live.key, "disabled")) == live
    skipped = await storage.reminders.skip(cid, lapsed.key, "disabled")
    assert (skipped.status, skipped.claimed_by, skipped.message_id) == (
        ReminderStatus.SKIPPED,
        None,
        lapsed.message_id,
    )
    assert await storage.reminders.claim_due(wall() + timedelta(minutes=5), "b", 60) == []


async def test_a_sync_plans_many_visits_in_one_call(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    rows = [
        _row(kind, record=r, due=wall() + timedelta(minutes=r))
        for r in range(1, 301)
        for kind in ("day_before", "two_hours")
    ]
    with trio.fail_after(5):
        assert await storage.reminders.plan(cid, rows)
        assert not await storage.reminders.plan(cid, rows)  # nothing new, nothing earlier
    assert await storage.reminders.backlog(wall() + timedelta(minutes=300)) == 600
    claimed = await storage.reminders.claim_due(wall() + timedelta(minutes=10), OWNER, 60)
    assert [r.record_id for r in claimed] == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
        6,
        6,
        7,
        7,
        8,
        8,
        9,
        9,
        10,
        10,
    ]


async def test_upcoming_lists_a_companys_rows_still_to_go_soonest_first(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid, other = await _company(storage, 1), await _company(storage, 2)
    start = wall()
    await storage.reminders.plan(
        cid,
        [
            _row(record=10, visit=start + timedelta(days=3), due=start + timedelta(days=2)),
            _row(record=11, visit=start + timedelta(days=1), due=start + timedelta(hours=5)),
            _row(record=12, visit=start + timedelta(days=2), due=start + timedelta(hours=1)),
            _row(record=13, visit=start + timedelta(days=4), due=start + timedelta(days=3)),
            _row(record=14, visit=start + timedelta(days=5), due=start + timedelta(days=4)),
        ],
    )
    await storage.reminders.plan(other, [_row(record=99, due=start)])
    (claimed,) = await storage.reminders.claim_due(start, OWNER, 86_400)
    assert claimed.company_id == other
    await storage.reminders.drop_visit(cid, 13, "cancelled")
    sent = await storage.reminders.claim_due(start + timedelta(hours=1), OWNER, 600)
    assert [r.record_id for r in sent] == [12]
    assert await storage.reminders.mark_sent(cid, sent[0].id, OWNER)
    wall.advance(6 * 3600)  # record 11 is overdue but not claimed: still to go
    rows = await storage.reminders.upcoming(cid, 50)
    assert [(r.record_id, r.status) for r in rows] == [
        (11, ReminderStatus.PLANNED),
        (10, ReminderStatus.PLANNED),
        (14, ReminderStatus.PLANNED),
    ]
    assert [r.record_id for r in await storage.reminders.upcoming(cid, 2)] == [11, 10]
    # a row in flight is listed too, at the time it was due
    (taken,) = await storage.reminders.claim_due(start + timedelta(hours=6), OWNER, 600)
    assert taken.record_id == 11
    rows = await storage.reminders.upcoming(cid, 50)
    assert (rows[0].record_id, rows[0].status) == (11, ReminderStatus.CLAIMED)
    assert [r.record_id for r in await storage.reminders.upcoming(other, 50)] == [99]
    with pytest.raises(NotFound):
        await storage.reminders.upcoming(9999, 50)
    with pytest.raises(ValidationError):
        await storage.reminders.upcoming(cid, 0)
