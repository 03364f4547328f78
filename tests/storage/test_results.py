"""Contract: a salon's results per local day (``Storage.results``, issue 16) on both backends —
every day of the span present, each source counted on the salon's own day (a moment just
before and just after its midnight land on two days), the assistant's answers told apart from
reminders and from what the salon wrote, and the ratings' summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage import (
    MAX_RESULT_DAYS,
    DailyResults,
    NotFound,
    PlannedReminder,
    RatingSummary,
    Storage,
    ValidationError,
)
from tests.support.clock import FakeWallClock

#: UTC+5 all year: the salon's midnight is 19:00 UTC.
ZONE = ZoneInfo("Asia/Yekaterinburg")
#: 2026-01-14 23:59 in the salon (18:59 UTC) and two minutes later, 00:01 on the 15th.
BEFORE_MIDNIGHT = datetime(2026, 1, 14, 18, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 1, 14, 19, 1, tzinfo=UTC)
#: The salon's "today" in these tests: 2026-01-15 (17:00 local).
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CLIENT = "79161234567"
OWNER = "node-a/scheduler"


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


def _day(results: list[DailyResults], day: date) -> dict[str, int]:
    return next(d.counts() for d in results if d.day == day)


async def test_every_day_of_the_span_is_there_oldest_first_with_zeros(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    wall.now = NOW
    got = await storage.results.daily(cid, ZONE, 30)
    assert [d.day for d in got.days] == [date(2026, 1, 15) - timedelta(days=n) for n in range(30)][
        ::-1
    ]
    assert all(set(d.counts().values()) == {0} for d in got.days)
    assert got.totals() == dict.fromkeys(got.days[0].counts(), 0)
    assert got.ratings == RatingSummary()
    assert (got.ratings.count, got.ratings.average) == (0, None)
    # "today" is the salon's date, not UTC's: 20:00 UTC on the 15th is the 16th in the salon
    wall.now = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    assert (await storage.results.daily(cid, ZONE, 1)).days[0].day == date(2026, 1, 16)
    last = await storage.results.daily(cid, ZONE, 3, last=date(2025, 12, 31))
    assert [d.day for d in last.days] == [
        date(2025, 12, 29),
        date(2025, 12, 30),
        date(2025, 12, 31),
    ]


async def test_audit_events_count_on_the_salons_day_across_its_midnight(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid, other = await _company(storage, 1), await _company(storage, 2)
    audit = storage.audit
    wall.now = BEFORE_MIDNIGHT  # 23:59 on the 14th in the salon
    await audit.append(cid, "assistant.booked", {"phone": CLIENT, "record_id": 1})
    # a hand-over is audited twice: the stored mode change (counted) and the decision's entry
    await audit.append(cid, "assistant.handoff", {"phone": CLIENT, "mode": "handoff"})
    await audit.append(cid, "assistant.handoff", {"phone": CLIENT, "reason": "asked"})
    wall.now = AFTER_MIDNIGHT  # 00:01 on the 15th in the salon, still the 14th in UTC
    await audit.append(cid, "assistant.booked", {"phone": CLIENT, "record_id": 2})
    await audit.append(cid, "assistant.moved", {"phone": CLIENT, "record_id": 2})
    await audit.append(cid, "assistant.cancelled", {"phone": CLIENT, "record_id": 1})
    await audit.append(cid, "assistant.visit_confirmed", {"phone": CLIENT, "record_id": 3})
    await audit.append(cid, "assistant.booking_failed", {"phone": CLIENT})  # not a result
    await audit.append(cid, "sync_requested", {})  # not a result
    await audit.append(other, "assistant.booked", {"phone": CLIENT})  # another salon's
    wall.now = NOW
    got = await storage.results.daily(cid, ZONE, 2)
    assert [d.day for d in got.days] == [date(2026, 1, 14), date(2026, 1, 15)]
    assert got.days[0] == DailyResults(date(2026, 1, 14), booked=1, handed_over=1)
    assert got.days[1] == DailyResults(
        date(2026, 1, 15), booked=1, moved=1, cancelled=1, reminders_confirmed=1
    )
    assert got.totals()["booked"] == 2
    # The same moments in UTC's days (a salon in London) fall on one day: the zone decides.
    london = await storage.results.daily(cid, ZoneInfo("Europe/London"), 2)
    assert london.days[0].booked == 2 and london.days[1].booked == 0
    # A span that ends before them counts none.
    before = await storage.results.daily(cid, ZONE, 5, last=date(2026, 1, 13))
    assert before.totals() == dict.fromkeys(before.totals(), 0)


async def test_answered_counts_the_assistants_replies_only(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid, other = await _company(storage, 1), await _company(storage, 2)
    messages = storage.messages
    wall.now = BEFORE_MIDNIGHT
    await messages.record_inbound(cid, "IN1", CLIENT, "Здравствуйте")  # the client's: not counted
    await messages.record_outbound(cid, CLIENT, "Добрый вечер!", wa_message_id="3EB0AA")
    wall.now = AFTER_MIDNIGHT
    await messages.record_outbound(cid, CLIENT, "Записал вас", wa_message_id="3EB0AB")
    failed = await messages.record_outbound(cid, CLIENT, "не ушло", wa_message_id="3EB0AC")
    await messages.set_status(failed.id, "failed")  # never reached the client: not counted
    # The salon wrote this one from its page: not the assistant's answer.
    await messages.record_outbound(cid, CLIENT, "Это Анна из салона", wa_message_id="3EB0AD")
    await storage.audit.append(cid, "salon.message_sent", {"phone": CLIENT, "message_id": "3EB0AD"})
    await messages.record_outbound(other, CLIENT, "другой салон", wa_message_id="3EB0AE")
    # A reminder and a review request, claimed (their message ids decided) and sent.
    visit = datetime(2026, 1, 16, 10, 0, tzinfo=UTC)
    await storage.reminders.plan(
        cid,
        [
            PlannedReminder(
                record_id=501,
                kind="day_before",
                visit_time=visit,
                due_at=AFTER_MIDNIGHT,
                phone=CLIENT,
            ),
            PlannedReminder(
                record_id=502, kind="review", visit_time=visit, due_at=AFTER_MIDNIGHT, phone=CLIENT
            ),
            PlannedReminder(
                record_id=503,
                kind="two_hours",
                visit_time=visit,
                due_at=AFTER_MIDNIGHT,
                phone=CLIENT,
            ),
        ],
    )
    claimed = await storage.reminders.claim_due(AFTER_MIDNIGHT, OWNER, 60.0)
    assert len(claimed) == 3
    for row in claimed:
        assert row.message_id is not None
        await messages.record_outbound(cid, CLIENT, "Напоминаем", wa_message_id=row.message_id)
        if row.kind != "two_hours":  # the two-hours one is still in flight: not sent yet
            assert await storage.reminders.mark_sent(cid, row.id, OWNER)
    wall.now = NOW
    got = await storage.results.daily(cid, ZONE, 2)
    assert (got.days[0].answered, got.days[1].answered) == (1, 1)
    # the day-before reminder was sent; the review request is not a reminder
    assert (got.days[0].reminders_sent, got.days[1].reminders_sent) == (0, 1)
    assert got.totals()["answered"] == 2 and got.totals()["reminders_sent"] == 1


async def test_ratings_count_on_the_day_given_with_their_summary(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid, other = await _company(storage, 1), await _company(storage, 2)
    reviews = storage.reviews
    wall.now = BEFORE_MIDNIGHT
    await reviews.save_rating(cid, 1, None, CLIENT, 5, None)
    await reviews.save_rating(cid, 2, None, CLIENT, 2, "долго ждала")
    wall.now = AFTER_MIDNIGHT
    await reviews.save_rating(cid, 3, None, CLIENT, 5, None)
    await reviews.save_rating(cid, 4, None, CLIENT, 4, None)
    await reviews.save_rating(other, 1, None, CLIENT, 1, None)
    wall.now = NOW
    # visit 2 is rated again today: its current rating counts, on the day it was given
    await reviews.save_rating(cid, 2, None, CLIENT, 3, None)
    got = await storage.results.daily(cid, ZONE, 2)
    assert [d.ratings for d in got.days] == [1, 3]
    assert got.ratings == RatingSummary((0, 0, 1, 1, 2))
    assert got.ratings.count == 4
    assert got.ratings.average == pytest.approx(17 / 4)
    # a span of the 14th alone: the first two ratings as they were then are gone (replaced)
    only = await storage.results.daily(cid, ZONE, 1, last=date(2026, 1, 14))
    assert only.ratings == RatingSummary((0, 0, 0, 0, 1))


async def test_unknown_company_and_bad_spans_are_refused(storage: Storage) -> None:
    cid = await _company(storage)
    with pytest.raises(NotFound):
        await storage.results.daily(999, ZONE, 7)
    for days in (0, MAX_RESULT_DAYS + 1, True, 1.5):
        with pytest.raises(ValidationError):
            await storage.results.daily(cid, ZONE, days)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await storage.results.daily(cid, "Asia/Yekaterinburg", 7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await storage.results.daily(cid, ZONE, 7, last=datetime(2026, 1, 1, tzinfo=UTC))
    assert len((await storage.results.daily(cid, ZONE, MAX_RESULT_DAYS)).days) == MAX_RESULT_DAYS


async def test_postgres_reads_one_salons_span_through_indexes(real_storage: Storage) -> None:
    """200 salons with 100 events, messages, reminders and ratings each: every grouped query
    reads the one salon's rows of the span through the indexes of migration 0014 (and the
    messages' own), none scans a whole table."""
    import storage._pg_results as queries
    import storage._results as results

    assert real_storage.pg is not None
    bounds = [datetime(2026, 1, 10, 19, tzinfo=UTC) + timedelta(days=n) for n in range(6)]

    async def plans(conn: Any) -> dict[str, str]:
        await conn.execute(
            """INSERT INTO companies (yclients_id, integration_status)
               SELECT 99000 + g, 'active' FROM generate_series(1, 200) g"""
        )
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM companies ORDER BY id")]
        await conn.execute(
            """INSERT INTO marketplace_events (company_id, event_type, data, created_at)
               SELECT c, (ARRAY['assistant.booked', 'assistant.handoff', 'sync_requested',
                                'salon.message_sent'])[1 + g % 4],
                      jsonb_build_object('message_id', 'M' || c || '-' || g, 'mode', 'handoff'),
                      TIMESTAMPTZ '2026-01-08' + g * INTERVAL '2 hours'
                 FROM unnest($1::int[]) c, generate_series(1, 100) g""",
            ids,
        )
        await conn.execute(
            """INSERT INTO messages (company_id, direction, wa_message_id, peer_phone, text,
                                     status, created_at)
               SELECT c, 'out', 'M' || c || '-' || g, '79161234567', 'x', 'sent',
                      TIMESTAMPTZ '2026-01-08' + g * INTERVAL '2 hours'
                 FROM unnest($1::int[]) c, generate_series(1, 100) g""",
            ids,
        )
        await conn.execute(
            """INSERT INTO reminders (company_id, record_id, kind, visit_time, due_at, status,
                                      message_id, updated_at)
               SELECT c, g, 'day_before', TIMESTAMPTZ '2026-01-20' + g * INTERVAL '2 hours',
                      TIMESTAMPTZ '2026-01-08' + g * INTERVAL '2 hours', 'sent', 'R' || c || g,
                      TIMESTAMPTZ '2026-01-08' + g * INTERVAL '2 hours'
                 FROM unnest($1::int[]) c, generate_series(1, 100) g""",
            ids,
        )
        await conn.execute(
            """INSERT INTO reviews (company_id, record_id, phone, rating, updated_at)
               SELECT c, g, '79161234567', 1 + g % 5,
                      TIMESTAMPTZ '2026-01-08' + g * INTERVAL '2 hours'
                 FROM unnest($1::int[]) c, generate_series(1, 100) g""",
            ids,
        )
        for table in ("marketplace_events", "messages", "reminders", "reviews"):
            await conn.execute(f"ANALYZE {table}")
        span = (ids[7], bounds, bounds[0], bounds[-1])
        found: dict[str, str] = {}
        for name, sql, extra in (
            ("answered", queries._ANSWERED, (results.SALON_SENT_EVENT,)),
            (
                "events",
                queries._EVENTS,
                (list(results.AUDIT_COUNTS), results.HANDOFF_EVENT, results.HANDOFF_MODE),
            ),
            ("reminders", queries._REMINDERS, (results.REVIEW_KIND,)),
            ("ratings", queries._RATINGS, ()),
        ):
            rows = await conn.fetch("EXPLAIN (COSTS OFF) " + sql, *span, *extra)
            found[name] = "\n".join(r[0] for r in rows)
        return found

    found: dict[str, str] = await real_storage.pg.run(plans)  # type: ignore[arg-type]
    for name, plan in found.items():
        assert "Seq Scan" not in plan, (name, plan)
    assert "idx_marketplace_events_company_type" in found["events"], found["events"]
    assert "idx_reminders_sent" in found["reminders"], found["reminders"]
    assert "idx_reviews_company_updated" in found["ratings"], found["ratings"]
    assert "idx_reminders_message" in found["answered"], found["answered"]
    assert "idx_marketplace_events_salon_sent" in found["answered"], found["answered"]
