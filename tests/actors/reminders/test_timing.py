"""The salon's clock: local time ⇄ UTC, the day before at HH:MM, quiet hours, across DST days
(Europe/Berlin) and at month and year ends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from actors.reminders._timing import (
    QuietHours,
    day_before_at,
    is_quiet,
    local_date,
    next_quiet_start,
    quiet_span_end,
    quiet_span_start,
    to_local,
    to_utc,
)

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
YEKATERINBURG = ZoneInfo("Asia/Yekaterinburg")
MOSCOW = ZoneInfo("Europe/Moscow")
NIGHT = QuietHours(dt.time(21), dt.time(9))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


# --------------------------------------------------------------------------- to_utc / to_local


def test_a_plain_wall_time_is_the_zone_offset_away() -> None:
    assert to_utc(dt.datetime(2026, 12, 10, 15, 0), YEKATERINBURG) == utc(2026, 12, 10, 10, 0)
    assert to_local(utc(2026, 12, 10, 10, 0), YEKATERINBURG).hour == 15
    assert local_date(utc(2026, 12, 31, 20, 0), YEKATERINBURG) == dt.date(2027, 1, 1)


def test_berlin_summer_and_winter_offsets() -> None:
    assert to_utc(dt.datetime(2026, 7, 1, 12, 0), BERLIN) == utc(2026, 7, 1, 10, 0)
    assert to_utc(dt.datetime(2026, 1, 15, 12, 0), BERLIN) == utc(2026, 1, 15, 11, 0)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # 2026-03-29: Berlin's clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
        (dt.datetime(2026, 3, 29, 2, 0), utc(2026, 3, 29, 1, 0)),
        (dt.datetime(2026, 3, 29, 2, 30), utc(2026, 3, 29, 1, 0)),
        (dt.datetime(2026, 3, 29, 2, 59), utc(2026, 3, 29, 1, 0)),
        # the minutes either side of the gap exist as shown
        (dt.datetime(2026, 3, 29, 1, 59), utc(2026, 3, 29, 0, 59)),
        (dt.datetime(2026, 3, 29, 3, 0), utc(2026, 3, 29, 1, 0)),
        (dt.datetime(2026, 3, 29, 3, 1), utc(2026, 3, 29, 1, 1)),
    ],
)
def test_a_nonexistent_wall_time_is_the_first_moment_after_the_jump(
    wall: dt.datetime, expected: dt.datetime
) -> None:
    assert to_utc(wall, BERLIN) == expected


def test_an_ambiguous_wall_time_is_its_first_occurrence() -> None:
    # 2026-10-25: Berlin's clocks fall back from 03:00 CEST to 02:00 CET; 02:30 happens twice,
    # at 00:30 UTC (summer time) and 01:30 UTC (winter time). The earlier one is meant.
    moment = to_utc(dt.datetime(2026, 10, 25, 2, 30), BERLIN)
    assert moment == utc(2026, 10, 25, 0, 30)
    assert to_local(moment, BERLIN).utcoffset() == dt.timedelta(hours=2)


def test_to_utc_refuses_an_aware_datetime_and_to_local_a_naive_one() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_utc(utc(2026, 1, 1), BERLIN)
    with pytest.raises(ValueError, match="aware"):
        to_local(dt.datetime(2026, 1, 1), BERLIN)


# --------------------------------------------------------------------------- the day before


@pytest.mark.parametrize(
    ("visit_local", "expected_local"),
    [
        # year end: a visit on January 1 → December 31 of the year before
        (dt.datetime(2027, 1, 1, 10, 0), dt.datetime(2026, 12, 31, 18, 0)),
        # month end
        (dt.datetime(2026, 5, 1, 0, 15), dt.datetime(2026, 4, 30, 18, 0)),
        # March 1 in a leap year → February 29; otherwise February 28
        (dt.datetime(2028, 3, 1, 12, 0), dt.datetime(2028, 2, 29, 18, 0)),
        (dt.datetime(2027, 3, 1, 12, 0), dt.datetime(2027, 2, 28, 18, 0)),
        # a visit just before midnight: still the calendar day before, not 24 h before
        (dt.datetime(2026, 12, 10, 23, 45), dt.datetime(2026, 12, 9, 18, 0)),
    ],
)
def test_day_before_is_the_calendar_day_before_on_the_salon_clock(
    visit_local: dt.datetime, expected_local: dt.datetime
) -> None:
    visit = to_utc(visit_local, YEKATERINBURG)
    assert day_before_at(visit, dt.time(18, 0), YEKATERINBURG) == to_utc(
        expected_local, YEKATERINBURG
    )


def test_day_before_counts_the_salon_day_not_the_utc_day() -> None:
    # 01:00 on Dec 11 in Yekaterinburg is still Dec 10 in UTC; the day before is Dec 10.
    visit = to_utc(dt.datetime(2026, 12, 11, 1, 0), YEKATERINBURG)
    assert visit.date() == dt.date(2026, 12, 10)
    due = day_before_at(visit, dt.time(18, 0), YEKATERINBURG)
    assert to_local(due, YEKATERINBURG) == dt.datetime(2026, 12, 10, 18, 0, tzinfo=YEKATERINBURG)


def test_day_before_across_berlin_dst_days() -> None:
    # Visit on the day after spring-forward: the day before at 18:00 is CEST (16:00 UTC).
    visit = to_utc(dt.datetime(2026, 3, 30, 10, 0), BERLIN)
    assert day_before_at(visit, dt.time(18, 0), BERLIN) == utc(2026, 3, 29, 16, 0)
    # The day before a visit on Mar 29 is Mar 28, still CET.
    visit = to_utc(dt.datetime(2026, 3, 29, 10, 0), BERLIN)
    assert day_before_at(visit, dt.time(18, 0), BERLIN) == utc(2026, 3, 28, 17, 0)
    # Visit the day after fall-back: 18:00 on Oct 25 is CET (17:00 UTC).
    visit = to_utc(dt.datetime(2026, 10, 26, 10, 0), BERLIN)
    assert day_before_at(visit, dt.time(18, 0), BERLIN) == utc(2026, 10, 25, 17, 0)


def test_day_before_at_a_nonexistent_and_an_ambiguous_local_time() -> None:
    # 02:30 on Mar 29 does not exist in Berlin: the reminder goes out when the clocks jump.
    visit = to_utc(dt.datetime(2026, 3, 30, 12, 0), BERLIN)
    assert day_before_at(visit, dt.time(2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    # 02:30 on Oct 25 happens twice: the first time (summer time).
    visit = to_utc(dt.datetime(2026, 10, 26, 12, 0), BERLIN)
    assert day_before_at(visit, dt.time(2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


# --------------------------------------------------------------------------- quiet hours


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        (dt.time(20, 59), False),
        (dt.time(21, 0), True),
        (dt.time(23, 59), True),
        (dt.time(0, 0), True),
        (dt.time(8, 59), True),
        (dt.time(9, 0), False),
        (dt.time(14, 0), False),
    ],
)
def test_quiet_hours_crossing_midnight_are_half_open(clock: dt.time, quiet: bool) -> None:
    assert NIGHT.covers(clock) is quiet


def test_quiet_hours_within_one_day_and_none_at_all() -> None:
    siesta = QuietHours(dt.time(13), dt.time(15))
    assert not siesta.crosses_midnight
    assert siesta.covers(dt.time(13)) and siesta.covers(dt.time(14, 59))
    assert not siesta.covers(dt.time(15)) and not siesta.covers(dt.time(12, 59))
    never = QuietHours(dt.time(21), dt.time(21))
    assert never.empty
    assert not any(never.covers(dt.time(h, m)) for h in range(24) for m in (0, 30))
    assert next_quiet_start(utc(2026, 12, 10, 10, 0), never, MOSCOW) is None


def test_quiet_hours_compare_hash_and_show() -> None:
    assert QuietHours(dt.time(21), dt.time(9)) == NIGHT
    assert len({NIGHT, QuietHours(dt.time(21), dt.time(9))}) == 1
    assert QuietHours(dt.time(22), dt.time(9)) != NIGHT
    assert repr(NIGHT) == "QuietHours(21:00–09:00)"
    with pytest.raises(ValueError, match="without a zone"):
        QuietHours(dt.time(21, tzinfo=UTC), dt.time(9))


def test_is_quiet_reads_the_salon_clock() -> None:
    # 16:30 UTC is 21:30 in Yekaterinburg (quiet) and 19:30 in Moscow (not).
    moment = utc(2026, 12, 10, 16, 30)
    assert is_quiet(moment, NIGHT, YEKATERINBURG)
    assert not is_quiet(moment, NIGHT, MOSCOW)


def test_quiet_span_start_and_end_around_midnight() -> None:
    # 23:00 and 07:00 local belong to the same night: 21:00 on Dec 9 → 09:00 on Dec 10.
    for local in (dt.datetime(2026, 12, 9, 23, 0), dt.datetime(2026, 12, 10, 7, 0)):
        moment = to_utc(local, YEKATERINBURG)
        assert quiet_span_start(moment, NIGHT, YEKATERINBURG) == to_utc(
            dt.datetime(2026, 12, 9, 21, 0), YEKATERINBURG
        )
        assert quiet_span_end(moment, NIGHT, YEKATERINBURG) == to_utc(
            dt.datetime(2026, 12, 10, 9, 0), YEKATERINBURG
        )


def test_quiet_span_of_a_same_day_span_and_errors_outside_quiet() -> None:
    siesta = QuietHours(dt.time(13), dt.time(15))
    moment = to_utc(dt.datetime(2026, 12, 10, 14, 0), MOSCOW)
    assert quiet_span_start(moment, siesta, MOSCOW) == to_utc(
        dt.datetime(2026, 12, 10, 13, 0), MOSCOW
    )
    assert quiet_span_end(moment, siesta, MOSCOW) == to_utc(
        dt.datetime(2026, 12, 10, 15, 0), MOSCOW
    )
    daytime = to_utc(dt.datetime(2026, 12, 10, 12, 0), MOSCOW)
    with pytest.raises(ValueError, match="not in quiet"):
        quiet_span_start(daytime, siesta, MOSCOW)
    with pytest.raises(ValueError, match="not in quiet"):
        quiet_span_end(daytime, siesta, MOSCOW)
    with pytest.raises(ValueError, match="in quiet"):
        next_quiet_start(moment, siesta, MOSCOW)


def test_next_quiet_start_is_tonight_or_tomorrow_night() -> None:
    morning = to_utc(dt.datetime(2026, 12, 31, 10, 0), YEKATERINBURG)
    assert next_quiet_start(morning, NIGHT, YEKATERINBURG) == to_utc(
        dt.datetime(2026, 12, 31, 21, 0), YEKATERINBURG
    )
    early = QuietHours(dt.time(1), dt.time(6))
    assert next_quiet_start(morning, early, YEKATERINBURG) == to_utc(
        dt.datetime(2027, 1, 1, 1, 0), YEKATERINBURG
    )


def test_the_fall_back_night_is_an_hour_longer_and_spring_forward_an_hour_shorter() -> None:
    evening = to_utc(dt.datetime(2026, 10, 24, 22, 0), BERLIN)
    start = quiet_span_start(evening, NIGHT, BERLIN)
    assert quiet_span_end(evening, NIGHT, BERLIN) - start == dt.timedelta(hours=13)
    evening = to_utc(dt.datetime(2026, 3, 28, 22, 0), BERLIN)
    start = quiet_span_start(evening, NIGHT, BERLIN)
    assert quiet_span_end(evening, NIGHT, BERLIN) - start == dt.timedelta(hours=11)


def test_quiet_span_starting_at_a_nonexistent_time_starts_when_the_clocks_jump() -> None:
    quiet = QuietHours(dt.time(2, 30), dt.time(6, 0))
    jump = utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the first moment after the gap
    assert is_quiet(jump, quiet, BERLIN)
    assert not is_quiet(jump - dt.timedelta(seconds=1), quiet, BERLIN)  # 01:59:59 CET
    assert quiet_span_start(jump, quiet, BERLIN) == jump
    before = utc(2026, 3, 28, 12, 0)
    assert next_quiet_start(before, quiet, BERLIN) == jump


def test_a_quiet_span_wholly_in_the_spring_forward_gap_does_not_happen_that_night() -> None:
    # 02:00–02:15 never shows on Berlin's clock on 2024-03-31 (02:00 CET jumps to 03:00 CEST):
    # the next quiet moment is the following night's 02:00, not the jump (03:00, not quiet).
    gap_only = QuietHours(dt.time(2, 0), dt.time(2, 15))
    moment = utc(2024, 3, 31, 0, 59) + dt.timedelta(seconds=59)  # 01:59:59 CET, before the jump
    start = next_quiet_start(moment, gap_only, BERLIN)
    assert start == to_utc(dt.datetime(2024, 4, 1, 2, 0), BERLIN)
    assert is_quiet(start, gap_only, BERLIN)


def test_falling_back_into_the_tail_of_quiet_hours_starts_them_again() -> None:
    # New York, 2024-11-03: 01:59:59 EDT is followed by 01:00 EST. With quiet hours
    # 08:00–01:30 the clock re-enters them at the change, before the next 08:00.
    new_york = ZoneInfo("America/New_York")
    quiet = QuietHours(dt.time(8, 0), dt.time(1, 30))
    moment = utc(2024, 11, 3, 5, 59) + dt.timedelta(seconds=59)  # 01:59:59 EDT
    assert not is_quiet(moment, quiet, new_york)
    change = utc(2024, 11, 3, 6, 0)  # 01:00 EST
    assert next_quiet_start(moment, quiet, new_york) == change
    assert is_quiet(change, quiet, new_york)
