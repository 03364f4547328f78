"""plan_visit: which reminders and review request a visit gets, at which moments, and why not."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from actors.reminders import (
    MessageKind,
    PlannedMessage,
    ReminderSettings,
    SkippedMessage,
    SkipReason,
    VisitFacts,
    VisitStatus,
    plan_visit,
)
from actors.reminders._plan import Plan
from actors.reminders._timing import to_local, to_utc

UTC = dt.UTC
YEKATERINBURG = ZoneInfo("Asia/Yekaterinburg")
BERLIN = ZoneInfo("Europe/Berlin")
DEFAULTS = ReminderSettings()
DAY, TWO, REVIEW = MessageKind.DAY_BEFORE, MessageKind.TWO_HOURS, MessageKind.REVIEW


def local(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    zone: ZoneInfo = YEKATERINBURG,
) -> dt.datetime:
    """A moment given on the salon's clock."""
    return to_utc(dt.datetime(year, month, day, hour, minute), zone)


def visit(
    starts: dt.datetime,
    booked: dt.datetime,
    *,
    minutes: int = 60,
    status: VisitStatus = VisitStatus.UPCOMING,
) -> VisitFacts:
    return VisitFacts(
        company_id=1,
        record_id=501,
        visit_id=9001,
        client_phone="79001234567",
        client_name="Анна",
        service_titles=("Стрижка",),
        master_name="Марина",
        starts_at=starts,
        ends_at=starts + dt.timedelta(minutes=minutes),
        booked_at=booked,
        status=status,
    )


def by_kind(plan: list[Plan]) -> dict[MessageKind, Plan]:
    assert [entry.kind for entry in plan] == [DAY, TWO, REVIEW]
    return {entry.kind: entry for entry in plan}


def due_local(entry: Plan, zone: ZoneInfo = YEKATERINBURG) -> dt.datetime:
    assert isinstance(entry, PlannedMessage), entry
    return to_local(entry.due_at, zone).replace(tzinfo=None)


def reason(entry: Plan) -> SkipReason:
    assert isinstance(entry, SkippedMessage), entry
    return entry.reason


def plan(
    v: VisitFacts,
    settings: ReminderSettings = DEFAULTS,
    zone: ZoneInfo = YEKATERINBURG,
    now: dt.datetime | None = None,
) -> dict[MessageKind, Plan]:
    return by_kind(plan_visit(v, settings, zone, v.booked_at if now is None else now))


# --------------------------------------------------------------------------- the basic case


def test_a_visit_booked_a_week_ahead_gets_exactly_two_reminders_at_local_times() -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 3, 11, 20))
    entries = plan_visit(v, DEFAULTS, YEKATERINBURG, v.booked_at)
    reminders = [e for e in entries if e.kind is not REVIEW]
    assert all(isinstance(e, PlannedMessage) for e in reminders)
    assert len(reminders) == 2
    got = by_kind(entries)
    assert due_local(got[DAY]) == dt.datetime(2026, 12, 9, 18, 0)
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 13, 0)
    # in UTC (Yekaterinburg is UTC+5 all year)
    assert got[DAY].due_at == dt.datetime(2026, 12, 9, 13, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert got[TWO].due_at == dt.datetime(2026, 12, 10, 8, 0, tzinfo=UTC)  # type: ignore[union-attr]
    # every entry is keyed by the visit's start in UTC
    assert {e.visit_time for e in entries} == {dt.datetime(2026, 12, 10, 10, 0, tzinfo=UTC)}
    assert all(e.visit_time.tzinfo is UTC for e in entries)
    # the review: 2 h after the visit ends (16:00 + 2 h)
    assert due_local(got[REVIEW]) == dt.datetime(2026, 12, 10, 18, 0)


def test_send_by_bounds_each_planned_message() -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 3, 11, 20))
    got = plan(v)
    day, two, review = got[DAY], got[TWO], got[REVIEW]
    assert isinstance(day, PlannedMessage)
    assert isinstance(two, PlannedMessage)
    assert isinstance(review, PlannedMessage)
    assert day.send_by == local(2026, 12, 9, 21, 0)  # 18:00 + 3 h, and quiet from 21:00
    assert two.send_by == local(2026, 12, 10, 14, 0)  # 13:00 + 1 h
    assert review.send_by == local(2026, 12, 10, 21, 0)  # quiet hours cut 12 h short


def test_plans_are_utc_and_independent_of_the_moment_it_is_asked() -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 3, 11, 20))
    early = plan_visit(v, DEFAULTS, YEKATERINBURG, v.booked_at)
    later = plan_visit(v, DEFAULTS, YEKATERINBURG, local(2026, 12, 9, 12, 0))
    assert early == later


# --------------------------------------------------------------------------- day-before


def test_day_before_skipped_when_booked_after_the_reminder_moment() -> None:
    # Booked at 18:30 for noon the next day: 17.5 h ahead, but after the 18:00 moment.
    v = visit(local(2026, 12, 10, 12, 0), booked=local(2026, 12, 9, 18, 30))
    got = plan(v)
    assert reason(got[DAY]) is SkipReason.BOOKED_LATE
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 10, 0)


def test_day_before_skipped_when_booked_exactly_at_the_reminder_moment() -> None:
    v = visit(local(2026, 12, 10, 12, 0), booked=local(2026, 12, 9, 18, 0))
    assert reason(plan(v)[DAY]) is SkipReason.BOOKED_LATE


def test_day_before_skipped_when_booked_less_than_12_hours_ahead() -> None:
    # A salon without quiet hours; booked at 17:00 for 04:30 the next morning: before the
    # 18:00 moment but only 11.5 h ahead → too close.
    no_quiet = dataclasses.replace(DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0))
    v = visit(local(2026, 12, 10, 4, 30), booked=local(2026, 12, 9, 17, 0))
    got = plan(v, no_quiet)
    assert reason(got[DAY]) is SkipReason.TOO_CLOSE
    # exactly 12 h ahead is enough
    v = visit(local(2026, 12, 10, 5, 0), booked=local(2026, 12, 9, 17, 0))
    assert due_local(plan(v, no_quiet)[DAY]) == dt.datetime(2026, 12, 9, 18, 0)


def test_day_before_at_a_configured_hour() -> None:
    settings = dataclasses.replace(DEFAULTS, day_before_at=dt.time(11, 30))
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 3, 11, 20))
    assert due_local(plan(v, settings)[DAY]) == dt.datetime(2026, 12, 9, 11, 30)


@pytest.mark.parametrize(
    ("visit_local", "expected"),
    [
        ((2027, 1, 1, 12, 0), dt.datetime(2026, 12, 31, 18, 0)),
        ((2028, 3, 1, 12, 0), dt.datetime(2028, 2, 29, 18, 0)),
        ((2027, 3, 1, 12, 0), dt.datetime(2027, 2, 28, 18, 0)),
        ((2026, 12, 1, 12, 0), dt.datetime(2026, 11, 30, 18, 0)),
    ],
)
def test_day_before_at_month_and_year_ends(
    visit_local: tuple[int, int, int, int, int], expected: dt.datetime
) -> None:
    starts = local(*visit_local)
    v = visit(starts, booked=starts - dt.timedelta(days=20))
    assert due_local(plan(v)[DAY]) == expected


# --------------------------------------------------------------------------- two-hours


@pytest.mark.parametrize(
    ("hours_ahead", "planned"),
    [(2.5, False), (2.99, False), (3.0, True), (5.0, True)],
)
def test_two_hours_skipped_when_booked_less_than_3_hours_ahead(
    hours_ahead: float, planned: bool
) -> None:
    starts = local(2026, 12, 10, 16, 0)
    v = visit(starts, booked=starts - dt.timedelta(hours=hours_ahead))
    got = plan(v)
    if planned:
        assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 14, 0)
    else:
        assert reason(got[TWO]) is SkipReason.TOO_CLOSE
    assert reason(got[DAY]) is SkipReason.BOOKED_LATE


def test_the_3_hour_rule_follows_a_configured_offset() -> None:
    settings = dataclasses.replace(DEFAULTS, two_hours_before=dt.timedelta(hours=4))
    starts = local(2026, 12, 10, 18, 0)
    assert reason(plan(visit(starts, starts - dt.timedelta(hours=4.5)), settings)[TWO]) is (
        SkipReason.TOO_CLOSE
    )
    got = plan(visit(starts, starts - dt.timedelta(hours=5)), settings)
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 14, 0)


# --------------------------------------------------------------------------- quiet hours


def test_a_two_hours_reminder_in_quiet_hours_moves_to_the_evening_before() -> None:
    # Visit at 10:30: 08:30 is quiet. The day-before reminder was skipped (booked at 19:00),
    # so the two-hours one moves to 20:30 the evening before.
    v = visit(local(2026, 12, 10, 10, 30), booked=local(2026, 12, 9, 19, 0))
    got = plan(v)
    assert reason(got[DAY]) is SkipReason.BOOKED_LATE
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 9, 20, 30)
    planned = got[TWO]
    assert isinstance(planned, PlannedMessage)
    assert planned.send_by == local(2026, 12, 9, 21, 0)  # before quiet hours begin


def test_a_shifted_two_hours_reminder_is_skipped_when_the_day_before_one_went_that_evening() -> (
    None
):
    v = visit(local(2026, 12, 10, 10, 30), booked=local(2026, 12, 1, 12, 0))
    got = plan(v)
    assert due_local(got[DAY]) == dt.datetime(2026, 12, 9, 18, 0)
    assert reason(got[TWO]) is SkipReason.QUIET_HOURS


def test_a_shifted_two_hours_reminder_is_skipped_when_too_soon_after_booking() -> None:
    # Booked at 20:00 for 10:30: 20:30 is only half an hour after the booking.
    v = visit(local(2026, 12, 10, 10, 30), booked=local(2026, 12, 9, 20, 0))
    assert reason(plan(v)[TWO]) is SkipReason.QUIET_HOURS


def test_a_shifted_two_hours_reminder_before_an_evening_day_before_one_is_skipped() -> None:
    settings = dataclasses.replace(DEFAULTS, day_before_at=dt.time(20, 45))
    v = visit(local(2026, 12, 10, 10, 30), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, settings)
    assert due_local(got[DAY]) == dt.datetime(2026, 12, 9, 20, 45)
    assert reason(got[TWO]) is SkipReason.QUIET_HOURS


def test_a_two_hours_reminder_just_outside_quiet_hours_stays() -> None:
    v = visit(local(2026, 12, 10, 11, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v)
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 9, 0)
    v = visit(local(2026, 12, 10, 22, 59), booked=local(2026, 12, 1, 12, 0))
    assert due_local(plan(v)[TWO]) == dt.datetime(2026, 12, 10, 20, 59)


def test_a_late_evening_visit_two_hours_reminder_moves_earlier_the_same_day() -> None:
    # Visit at 23:30: 21:30 is quiet, the reminder moves to 20:30 the same evening (a day
    # after the day-before reminder, so no duplicate).
    v = visit(local(2026, 12, 10, 23, 30), booked=local(2026, 12, 1, 12, 0))
    got = plan(v)
    assert due_local(got[DAY]) == dt.datetime(2026, 12, 9, 18, 0)
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 20, 30)


def test_a_day_before_reminder_in_quiet_hours_moves_earlier() -> None:
    # An old stored setting (validation now refuses it): day-before at 22:00 → 20:30.
    settings = dataclasses.replace(DEFAULTS, day_before_at=dt.time(22, 0))
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    assert due_local(plan(v, settings)[DAY]) == dt.datetime(2026, 12, 9, 20, 30)
    # ... skipped when that is before the booking (booked at 20:15; 22:00 is still after).
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 9, 20, 15))
    assert reason(plan(v, settings)[DAY]) is SkipReason.QUIET_HOURS


def test_custom_quiet_hours_move_reminders_out_of_them() -> None:
    settings = dataclasses.replace(DEFAULTS, quiet_start=dt.time(22), quiet_end=dt.time(10))
    v = visit(local(2026, 12, 10, 11, 0), booked=local(2026, 12, 9, 19, 0))
    got = plan(v, settings)
    # 09:00 is quiet until 10:00 → 21:30 the evening before
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 9, 21, 30)


def test_without_quiet_hours_nothing_moves() -> None:
    settings = dataclasses.replace(DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0))
    v = visit(local(2026, 12, 10, 8, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, settings)
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 10, 6, 0)
    assert due_local(got[DAY]) == dt.datetime(2026, 12, 9, 18, 0)


# --------------------------------------------------------------------------- review


def test_review_is_due_after_the_visit_ends() -> None:
    v = visit(local(2026, 12, 10, 12, 0), booked=local(2026, 12, 1, 12, 0), minutes=90)
    assert due_local(plan(v)[REVIEW]) == dt.datetime(2026, 12, 10, 15, 30)
    settings = dataclasses.replace(DEFAULTS, review_after=dt.timedelta(minutes=45))
    assert due_local(plan(v, settings)[REVIEW]) == dt.datetime(2026, 12, 10, 14, 15)


def test_review_falling_in_quiet_hours_moves_to_the_morning() -> None:
    v = visit(local(2026, 12, 10, 19, 0), booked=local(2026, 12, 1, 12, 0))  # ends 20:00
    got = plan(v)
    assert due_local(got[REVIEW]) == dt.datetime(2026, 12, 11, 9, 0)
    review = got[REVIEW]
    assert isinstance(review, PlannedMessage)
    assert review.send_by == local(2026, 12, 11, 21, 0)


def test_an_attended_visit_gets_its_review_when_it_ends_and_no_reminders() -> None:
    v = visit(
        local(2026, 12, 10, 12, 0),
        booked=local(2026, 12, 1, 12, 0),
        status=VisitStatus.ATTENDED,
    )
    got = plan(v, now=local(2026, 12, 10, 12, 5))
    assert due_local(got[REVIEW]) == dt.datetime(2026, 12, 10, 13, 0)
    assert reason(got[DAY]) is SkipReason.ATTENDED
    assert reason(got[TWO]) is SkipReason.ATTENDED


def test_attended_after_the_visit_makes_the_review_due_at_once() -> None:
    v = visit(
        local(2026, 12, 10, 12, 0),
        booked=local(2026, 12, 1, 12, 0),
        status=VisitStatus.ATTENDED,
    )
    now = local(2026, 12, 10, 13, 20)
    review = plan(v, now=now)[REVIEW]
    assert isinstance(review, PlannedMessage)
    assert review.due_at <= now < review.send_by


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (VisitStatus.CANCELLED, SkipReason.CANCELLED),
        (VisitStatus.DELETED, SkipReason.CANCELLED),
        (VisitStatus.NO_SHOW, SkipReason.NO_SHOW),
    ],
)
def test_cancelled_deleted_and_no_show_visits_get_nothing(
    status: VisitStatus, why: SkipReason
) -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0), status=status)
    got = plan(v)
    assert [reason(got[kind]) for kind in (DAY, TWO, REVIEW)] == [why, why, why]


def test_switched_off_kinds_are_disabled() -> None:
    settings = dataclasses.replace(
        DEFAULTS, day_before_enabled=False, two_hours_enabled=False, reviews_enabled=False
    )
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, settings)
    assert {reason(entry) for entry in got.values()} == {SkipReason.DISABLED}
    only_review = dataclasses.replace(DEFAULTS, day_before_enabled=False, two_hours_enabled=False)
    got = plan(v, only_review)
    assert isinstance(got[REVIEW], PlannedMessage)
    # the two-hours reminder alone is planned when the day-before one is off
    only_two = dataclasses.replace(DEFAULTS, day_before_enabled=False)
    got = plan(visit(local(2026, 12, 10, 10, 30), booked=local(2026, 12, 1, 12, 0)), only_two)
    assert reason(got[DAY]) is SkipReason.DISABLED
    assert due_local(got[TWO]) == dt.datetime(2026, 12, 9, 20, 30)


# --------------------------------------------------------------------------- late and past


def test_a_reminder_whose_moment_passed_is_still_planned_until_send_by() -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, now=local(2026, 12, 9, 19, 0))  # an hour after 18:00, scheduler was down
    day = got[DAY]
    assert isinstance(day, PlannedMessage)
    assert day.due_at < local(2026, 12, 9, 19, 0) < day.send_by
    got = plan(v, now=local(2026, 12, 9, 21, 1))  # quiet hours have begun
    assert reason(got[DAY]) is SkipReason.PAST
    assert isinstance(got[TWO], PlannedMessage)


def test_everything_is_past_once_the_visit_and_its_review_time_are_over() -> None:
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, now=local(2026, 12, 12, 12, 0))
    assert {reason(entry) for entry in got.values()} == {SkipReason.PAST}


def test_a_two_hours_reminder_never_later_than_half_an_hour_before_the_visit() -> None:
    settings = dataclasses.replace(DEFAULTS, two_hours_before=dt.timedelta(hours=1))
    v = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    two = plan(v, settings)[TWO]
    assert isinstance(two, PlannedMessage)
    assert two.send_by == local(2026, 12, 10, 14, 30)


def test_a_day_before_reminder_after_the_visits_last_useful_moment_is_too_close() -> None:
    # No quiet hours, day-before at 23:50 and a visit at 00:10: its moment is after the
    # last moment a reminder may go out (30 min before the visit).
    settings = dataclasses.replace(
        DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0), day_before_at=dt.time(23, 50)
    )
    v = visit(local(2026, 12, 10, 0, 10), booked=local(2026, 12, 1, 12, 0))
    assert reason(plan(v, settings)[DAY]) is SkipReason.TOO_CLOSE


def test_a_two_hours_reminder_within_an_hour_of_the_day_before_one_is_too_close() -> None:
    # No quiet hours, day-before at 23:00 and a visit at 01:00: both would go out at 23:00.
    settings = dataclasses.replace(
        DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0), day_before_at=dt.time(23, 0)
    )
    v = visit(local(2026, 12, 10, 1, 0), booked=local(2026, 12, 1, 12, 0))
    got = plan(v, settings)
    assert isinstance(got[DAY], PlannedMessage)
    assert got[DAY].due_at == local(2026, 12, 9, 23, 0)
    assert reason(got[TWO]) is SkipReason.TOO_CLOSE
    # at 02:00 the two are an hour apart: both go
    later = plan(visit(local(2026, 12, 10, 2, 0), booked=local(2026, 12, 1, 12, 0)), settings)
    assert isinstance(later[TWO], PlannedMessage)
    assert later[TWO].due_at == local(2026, 12, 10, 0, 0)


# --------------------------------------------------------------------------- DST (Berlin)


def test_reminders_on_berlin_spring_forward_day() -> None:
    # Visit on Mon Mar 30 at 12:00 CEST: the day-before at 18:00 CEST on Sunday Mar 29, the
    # spring-forward day (16:00 UTC, not 17:00 as the day before would be); the two-hours one
    # at 10:00 CEST (08:00 UTC).
    v = visit(local(2026, 3, 30, 12, 0, zone=BERLIN), booked=local(2026, 3, 20, 12, 0, zone=BERLIN))
    got = plan(v, zone=BERLIN)
    day, two = got[DAY], got[TWO]
    assert isinstance(day, PlannedMessage) and isinstance(two, PlannedMessage)
    assert day.due_at == dt.datetime(2026, 3, 29, 16, 0, tzinfo=UTC)
    assert two.due_at == dt.datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert due_local(day, BERLIN) == dt.datetime(2026, 3, 29, 18, 0)


def test_a_visit_during_the_spring_forward_night_with_quiet_hours_off() -> None:
    settings = dataclasses.replace(
        DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0), day_before_at=dt.time(2, 30)
    )
    # A visit at 04:00 CEST on Mar 30 with the day-before reminder set to 02:30, a time
    # Berlin's clocks skip on Mar 29.
    starts = local(2026, 3, 30, 4, 0, zone=BERLIN)
    v = visit(starts, booked=local(2026, 3, 1, 12, 0, zone=BERLIN))
    got = plan(v, settings, zone=BERLIN)
    # day-before at 02:30 on Mar 29, which does not exist: when the clocks jump (01:00 UTC)
    day = got[DAY]
    assert isinstance(day, PlannedMessage)
    assert day.due_at == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    two = got[TWO]
    assert isinstance(two, PlannedMessage)
    assert two.due_at == starts - dt.timedelta(hours=2)


def test_two_hours_before_is_elapsed_time_across_the_jump() -> None:
    settings = dataclasses.replace(DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0))
    starts = local(2026, 3, 29, 4, 0, zone=BERLIN)  # 02:00 UTC
    v = visit(starts, booked=local(2026, 3, 1, 12, 0, zone=BERLIN))
    two = plan(v, settings, zone=BERLIN)[TWO]
    assert isinstance(two, PlannedMessage)
    assert two.due_at == dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 01:00 CET on the clock
    assert due_local(two, BERLIN) == dt.datetime(2026, 3, 29, 1, 0)


def test_day_before_at_an_ambiguous_time_on_fall_back_day() -> None:
    settings = dataclasses.replace(
        DEFAULTS, quiet_start=dt.time(0), quiet_end=dt.time(0), day_before_at=dt.time(2, 30)
    )
    v = visit(
        local(2026, 10, 26, 12, 0, zone=BERLIN), booked=local(2026, 10, 1, 12, 0, zone=BERLIN)
    )
    day = plan(v, settings, zone=BERLIN)[DAY]
    assert isinstance(day, PlannedMessage)
    assert day.due_at == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30


def test_quiet_hours_on_the_fall_back_night() -> None:
    # Visit Sun Oct 25 at 10:00 CET; the two-hours reminder at 08:00 CET is quiet and moves to
    # 20:30 CEST on Oct 24, the same evening as the day-before reminder: skipped.
    v = visit(
        local(2026, 10, 25, 10, 0, zone=BERLIN), booked=local(2026, 10, 1, 12, 0, zone=BERLIN)
    )
    got = plan(v, zone=BERLIN)
    day = got[DAY]
    assert isinstance(day, PlannedMessage)
    assert day.due_at == dt.datetime(2026, 10, 24, 16, 0, tzinfo=UTC)  # 18:00 CEST
    assert reason(got[TWO]) is SkipReason.QUIET_HOURS
    # booked after 18:00 the evening before: the two-hours reminder goes at 20:30 CEST
    v = visit(
        local(2026, 10, 25, 10, 0, zone=BERLIN), booked=local(2026, 10, 24, 18, 30, zone=BERLIN)
    )
    two = plan(v, zone=BERLIN)[TWO]
    assert isinstance(two, PlannedMessage)
    assert two.due_at == dt.datetime(2026, 10, 24, 18, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- inputs


def test_visit_facts_refuse_naive_times_and_an_end_before_the_start() -> None:
    starts = local(2026, 12, 10, 15, 0)
    with pytest.raises(ValueError, match="aware"):
        visit(starts.replace(tzinfo=None), booked=local(2026, 12, 1, 12, 0))
    with pytest.raises(ValueError, match="ends_at"):
        dataclasses.replace(visit(starts, booked=starts), ends_at=starts - dt.timedelta(1))
    with pytest.raises(ValueError, match="now"):
        plan_visit(visit(starts, booked=starts), DEFAULTS, YEKATERINBURG, dt.datetime(2026, 1, 1))


def test_a_moved_visit_is_keyed_by_its_new_time() -> None:
    before = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    moved = dataclasses.replace(
        before,
        starts_at=local(2026, 12, 12, 11, 0),
        ends_at=local(2026, 12, 12, 12, 0),
        booked_at=local(2026, 12, 5, 9, 0),
    )
    old_keys = {
        (e.kind, e.visit_time)
        for e in plan_visit(before, DEFAULTS, YEKATERINBURG, before.booked_at)
    }
    new = plan(moved)
    assert not old_keys & {(e.kind, e.visit_time) for e in new.values()}
    assert due_local(new[DAY]) == dt.datetime(2026, 12, 11, 18, 0)
    assert due_local(new[TWO]) == dt.datetime(2026, 12, 12, 9, 0)


def test_a_visit_changed_at_the_same_time_keeps_its_keys_and_moments() -> None:
    before = visit(local(2026, 12, 10, 15, 0), booked=local(2026, 12, 1, 12, 0))
    renamed = dataclasses.replace(before, service_titles=("Окрашивание",), master_name="Ольга")
    assert plan_visit(before, DEFAULTS, YEKATERINBURG, before.booked_at) == plan_visit(
        renamed, DEFAULTS, YEKATERINBURG, before.booked_at
    )
