"""Properties of the salon's clock and of plan_visit that hold for any moment, zone, settings
and visit (hypothesis), DST zones included (Berlin, New York, Lord Howe's 30-minute shift)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actors.reminders import (
    InvalidReminderSettings,
    MessageKind,
    PlannedMessage,
    ReminderSettings,
    SkippedMessage,
    SkipReason,
    VisitFacts,
    VisitStatus,
    plan_visit,
)
from actors.reminders._plan import MIN_NOTICE
from actors.reminders._timing import (
    QuietHours,
    is_quiet,
    next_quiet_start,
    quiet_span_end,
    quiet_span_start,
    to_local,
    to_utc,
)

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)
# Pure and fast, but the machine may be busy: no per-example deadline.
RELAXED = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Yekaterinburg",
        "Europe/Moscow",
    )
]


def _transitions(zone: ZoneInfo) -> list[dt.datetime]:
    """The moments ``zone`` changed its offset in 2024–2030 (to the minute)."""
    found = []
    moment = dt.datetime(2024, 1, 1, tzinfo=UTC)
    while moment.year < 2031:
        following = moment + dt.timedelta(days=1)
        if moment.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = moment, following
            while high - low > dt.timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        moment = following
    return found


TRANSITIONS = {zone: _transitions(zone) for zone in ZONES}
zones = st.sampled_from(ZONES)
any_moment = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 12, 31), timezones=st.just(UTC)
).map(lambda m: m.replace(microsecond=0))


@st.composite
def zoned_moments(draw: st.DrawFn, spread_hours: int = 36) -> tuple[dt.datetime, ZoneInfo]:
    """A zone and a moment, half the time within ``spread_hours`` of one of its DST changes."""
    zone = draw(zones)
    if draw(st.booleans()) and TRANSITIONS[zone]:
        change = draw(st.sampled_from(TRANSITIONS[zone]))
        offset = draw(st.integers(-spread_hours * 3600, spread_hours * 3600))
        return change + dt.timedelta(seconds=offset), zone
    return draw(any_moment), zone


@st.composite
def zoned_walls(draw: st.DrawFn) -> tuple[dt.datetime, ZoneInfo]:
    """A zone and a wall time, half the time within 3 h of a DST change's wall time (so often
    in a gap or a repeated hour)."""
    zone = draw(zones)
    if draw(st.booleans()) and TRANSITIONS[zone]:
        change = wall_of(draw(st.sampled_from(TRANSITIONS[zone])), zone)
        return change + dt.timedelta(seconds=draw(st.integers(-3 * 3600, 3 * 3600))), zone
    return wall_of(draw(any_moment), zone), zone


# Times of day that include DST transition hours (01:00–03:00) often.
clocks = st.one_of(
    st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    st.builds(dt.time, st.integers(1, 3), st.integers(0, 59)),
)


def _quiet_minutes(quiet: QuietHours) -> int:
    start, end = quiet.start, quiet.end
    return (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % 1440


# Quiet hours as settings allow them: at most 18 h, so the hours for sending outlast any jump.
quiet_hours = st.builds(QuietHours, clocks, clocks).filter(lambda q: _quiet_minutes(q) <= 18 * 60)


def wall_of(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return to_local(moment, zone).replace(tzinfo=None)


# --------------------------------------------------------------------------- the clock


@RELAXED
@given(zoned_walls())
def test_to_utc_is_the_first_moment_the_clock_shows_the_wall_time_or_later(
    case: tuple[dt.datetime, ZoneInfo],
) -> None:
    wall, zone = case
    moment = to_utc(wall, zone)
    assert moment.tzinfo is UTC
    assert wall_of(moment, zone) >= wall
    assert wall_of(moment - SECOND, zone) < wall


@RELAXED
@given(zoned_moments(spread_hours=3))
def test_a_moment_read_on_the_clock_and_back_is_that_moment_or_its_earlier_twin(
    case: tuple[dt.datetime, ZoneInfo],
) -> None:
    moment, zone = case
    back = to_utc(wall_of(moment, zone), zone)
    assert wall_of(back, zone) == wall_of(moment, zone)
    assert back <= moment
    assert moment - back <= dt.timedelta(hours=2)  # the largest fall-back shift


@RELAXED
@given(zoned_moments(), quiet_hours)
def test_quiet_stretches_begin_and_end_where_the_clock_says(
    case: tuple[dt.datetime, ZoneInfo], quiet: QuietHours
) -> None:
    moment, zone = case
    assume(is_quiet(moment, quiet, zone))
    start = quiet_span_start(moment, quiet, zone)
    end = quiet_span_end(moment, quiet, zone)
    assert start <= moment < end
    assert is_quiet(start, quiet, zone) and not is_quiet(start - SECOND, quiet, zone)
    assert not is_quiet(end, quiet, zone) and is_quiet(end - SECOND, quiet, zone)


@RELAXED
@given(zoned_moments(), quiet_hours)
def test_next_quiet_start_is_the_first_quiet_moment(
    case: tuple[dt.datetime, ZoneInfo], quiet: QuietHours
) -> None:
    moment, zone = case
    assume(not quiet.empty and not is_quiet(moment, quiet, zone))
    start = next_quiet_start(moment, quiet, zone)
    assert start is not None and start > moment
    assert is_quiet(start, quiet, zone) and not is_quiet(start - SECOND, quiet, zone)
    step = (start - moment) / 16
    assert not any(is_quiet(moment + step * k, quiet, zone) for k in range(16))


# --------------------------------------------------------------------------- plan_visit


def _valid(candidate: ReminderSettings) -> bool:
    try:
        candidate.validate()
    except InvalidReminderSettings:
        return False
    return True


reminder_settings = st.builds(
    ReminderSettings,
    day_before_enabled=st.booleans(),
    day_before_at=clocks,
    two_hours_enabled=st.booleans(),
    two_hours_before=st.integers(60, 720).map(lambda m: dt.timedelta(minutes=m)),
    quiet_start=clocks,
    quiet_end=clocks,
    reviews_enabled=st.booleans(),
    review_after=st.integers(0, 2880).map(lambda m: dt.timedelta(minutes=m)),
).filter(_valid)


@st.composite
def zoned_visits(draw: st.DrawFn) -> tuple[VisitFacts, ZoneInfo]:
    """A zone and a visit in it, half the time within three days of a DST change."""
    starts, zone = draw(zoned_moments(spread_hours=72))
    starts = starts.replace(second=0)
    ahead = draw(
        st.one_of(
            st.integers(0, 48 * 60),  # booked shortly before: the edge rules
            st.integers(0, 60 * 24 * 30),
        )
    )
    visit = VisitFacts(
        company_id=1,
        record_id=draw(st.integers(1, 10**9)),
        visit_id=None,
        client_phone="79001234567",
        starts_at=starts,
        ends_at=starts + dt.timedelta(minutes=draw(st.integers(0, 600))),
        booked_at=starts - dt.timedelta(minutes=ahead),
        status=draw(st.sampled_from(VisitStatus)),
    )
    return visit, zone


@settings(RELAXED, max_examples=150)
@given(zoned_visits(), reminder_settings)
def test_every_planned_message_is_sendable(
    case: tuple[VisitFacts, ZoneInfo], salon: ReminderSettings
) -> None:
    visit, zone = case
    plan = plan_visit(visit, salon, zone, visit.booked_at)
    assert [entry.kind for entry in plan] == list(MessageKind)
    assert {entry.visit_time for entry in plan} == {visit.starts_at}
    quiet = salon.quiet
    for entry in plan:
        if not isinstance(entry, PlannedMessage):
            continue
        assert entry.due_at < entry.send_by
        assert not is_quiet(entry.due_at, quiet, zone)
        if not quiet.empty:  # nothing quiet between due_at and send_by
            limit = next_quiet_start(entry.due_at, quiet, zone)
            assert limit is not None and entry.send_by <= limit
        if entry.kind is MessageKind.REVIEW:
            assert entry.due_at >= visit.ends_at
            assert visit.status not in (VisitStatus.CANCELLED, VisitStatus.NO_SHOW)
        else:
            assert visit.status is VisitStatus.UPCOMING
            assert visit.booked_at < entry.due_at
            assert entry.send_by <= visit.starts_at - MIN_NOTICE
    day, two = plan[0], plan[1]
    if isinstance(day, PlannedMessage) and isinstance(two, PlannedMessage):
        assert day.due_at < two.due_at


@settings(RELAXED, max_examples=150)
@given(zoned_visits(), reminder_settings, st.integers(0, 60 * 24 * 40))
def test_now_only_turns_planned_messages_into_past(
    case: tuple[VisitFacts, ZoneInfo], salon: ReminderSettings, minutes_later: int
) -> None:
    visit, zone = case
    now = visit.booked_at + dt.timedelta(minutes=minutes_later)
    at_booking = plan_visit(visit, salon, zone, visit.booked_at)
    later = plan_visit(visit, salon, zone, now)
    for first, then in zip(at_booking, later, strict=True):
        if first == then:
            continue
        assert isinstance(first, PlannedMessage)
        assert isinstance(then, SkippedMessage) and then.reason is SkipReason.PAST
        assert now > first.send_by


@RELAXED
@given(zoned_visits(), reminder_settings)
def test_cancelled_visits_get_nothing(
    case: tuple[VisitFacts, ZoneInfo], salon: ReminderSettings
) -> None:
    visit, zone = case
    cancelled = dataclasses.replace(visit, status=VisitStatus.CANCELLED)
    plan = plan_visit(cancelled, salon, zone, visit.booked_at)
    assert all(
        isinstance(entry, SkippedMessage) and entry.reason is SkipReason.CANCELLED for entry in plan
    )


@RELAXED
@given(reminder_settings)
def test_valid_settings_survive_their_json_form(salon: ReminderSettings) -> None:
    assert ReminderSettings.from_json(salon.to_json()) == salon
