"""The salon's clock: local wall time ⇄ UTC, "the day before at HH:MM", quiet hours.

Pure (standard library ``zoneinfo`` only; no trio, no storage), so every rule is tested without
an event loop. Inside the service every moment is an aware UTC ``datetime``; a wall time (naive
``datetime`` or ``time``) means the salon's local clock and is turned into a moment here only.

Daylight saving time. Russian zones keep no DST, but the rules hold in any IANA zone and are
tested in Europe/Berlin, deterministically:

- a **nonexistent** wall time (the clocks jump over it, e.g. 02:30 on Berlin's spring-forward
  day) is read as the first moment after the jump (03:00 CEST there): the first moment at
  which the clock shows that time or later. So "quiet from 02:30" on that night starts when
  the clock jumps, and a reminder "at 02:30" goes out at that moment, never an hour late;
- an **ambiguous** wall time (the clocks show it twice, e.g. 02:30 on the fall-back day) is
  read as its first occurrence (still summer time): a reminder goes out the earlier of the
  two, never after its moment.

Quiet hours are a span of the local clock, ``[start, end)``: a moment is quiet when the clock
shows a time from ``start`` (inclusive) to ``end`` (exclusive). When ``start > end`` the span
crosses midnight (the default, 21:00–09:00); when they are equal there are no quiet hours.
Because the rule reads only the clock's face, it holds on DST days too (the quiet night of a
fall-back day is an hour longer). The span helpers (``quiet_span_start``, ``quiet_span_end``)
find the stretch of quiet moments around a quiet moment; they assume the hours for sending are
longer than a DST jump, which the settings guarantee (at least 6 h), so a night never runs
into the next one through a gap.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = [
    "UTC",
    "QuietHours",
    "day_before_at",
    "is_quiet",
    "local_date",
    "next_quiet_start",
    "quiet_span_end",
    "quiet_span_start",
    "to_local",
    "to_utc",
]

UTC = dt.UTC

_DAY = dt.timedelta(days=1)
_SECOND = dt.timedelta(seconds=1)


def _require_aware(moment: dt.datetime, what: str) -> None:
    """Refuse a naive ``datetime`` where a moment is meant (a wall time here is a bug)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def to_local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The salon's clock at ``moment`` (an aware datetime in ``zone``)."""
    _require_aware(moment, "moment")
    return moment.astimezone(zone)


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The salon's calendar day at ``moment``."""
    return to_local(moment, zone).date()


def to_utc(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The UTC moment at which the salon's clock shows ``wall`` (a naive datetime).

    Nonexistent wall times give the first moment after the clocks' jump; ambiguous ones their
    first occurrence (see the module docstring).
    """
    if wall.tzinfo is not None:
        raise ValueError("wall must be a naive datetime (the salon's local clock)")
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first occurrence of an ambiguous time
    # In a gap fold=0 reads the wall time with the offset before the jump, which lands after
    # the jump; fold=1 reads it with the offset after, which lands before. The jump lies in
    # (late, early]: find it to the second (offsets change on whole seconds).
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    jump = _offset_change(min(first, early), max(first, early), zone)
    assert jump is not None, "a nonexistent wall time lies in a jump of the offset"
    return jump


def _offset_change(low: dt.datetime, high: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The moment in ``(low, high]`` at which ``zone``'s offset changes (to the second), or
    ``None`` when it is the same at both ends (at most one change is assumed between them:
    a zone changes its offset at most a few times a year)."""
    before = low.astimezone(zone).utcoffset()
    if high.astimezone(zone).utcoffset() == before:
        return None
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + dt.timedelta(seconds=1)
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def day_before_at(visit: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC moment the salon's clock shows ``at`` on the calendar day before ``visit``'s.

    A visit on January 1 gives December 31 of the year before; March 1 gives February 29 in a
    leap year and February 28 otherwise.
    """
    day = local_date(visit, zone) - _DAY
    return to_utc(dt.datetime.combine(day, at), zone)


class QuietHours:
    """The salon's quiet span of the local clock, ``[start, end)``; see the module docstring.

    A small immutable value; equal spans compare equal. ``QuietHours(t, t)`` has no quiet
    time at all.
    """

    __slots__ = ("_end", "_start")

    def __init__(self, start: dt.time, end: dt.time) -> None:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("quiet hours are local clock times without a zone")
        self._start = start
        self._end = end

    @property
    def start(self) -> dt.time:
        """When the quiet span begins (local clock, inclusive)."""
        return self._start

    @property
    def end(self) -> dt.time:
        """When the quiet span ends (local clock, exclusive)."""
        return self._end

    @property
    def empty(self) -> bool:
        """Whether there are no quiet hours at all (``start == end``)."""
        return self._start == self._end

    @property
    def crosses_midnight(self) -> bool:
        """Whether the span runs over midnight (e.g. 21:00–09:00)."""
        return self._start > self._end

    def covers(self, clock: dt.time) -> bool:
        """Whether the local clock time ``clock`` is quiet."""
        if self.empty:
            return False
        if self.crosses_midnight:
            return clock >= self._start or clock < self._end
        return self._start <= clock < self._end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuietHours):
            return NotImplemented
        return (self._start, self._end) == (other._start, other._end)

    def __hash__(self) -> int:
        return hash((self._start, self._end))

    def __repr__(self) -> str:
        return f"QuietHours({self._start.isoformat('minutes')}–{self._end.isoformat('minutes')})"


def is_quiet(moment: dt.datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    """Whether nothing may be sent at ``moment`` (the salon's clock is in its quiet span)."""
    return quiet.covers(to_local(moment, zone).time().replace(tzinfo=None))


def _occurrences(wall: dt.datetime, zone: ZoneInfo) -> list[dt.datetime]:
    """Every UTC moment at which the salon's clock shows ``wall``, earliest first: two on a
    fall-back night, one otherwise, and for a nonexistent ``wall`` the moment of the jump."""
    first = to_utc(wall, zone)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second != first and second.astimezone(zone).replace(tzinfo=None) == wall:
        return [first, second]
    return [first]


def quiet_span_start(moment: dt.datetime, quiet: QuietHours, zone: ZoneInfo) -> dt.datetime:
    """The UTC moment the quiet stretch holding ``moment`` began (``moment`` must be quiet):
    the moment the clock last turned to ``quiet.start`` from a time that was not quiet."""
    if not is_quiet(moment, quiet, zone):
        raise ValueError("moment is not in quiet hours")
    local = to_local(moment, zone)
    day = local.date()
    if quiet.crosses_midnight and local.time().replace(tzinfo=None) < quiet.end:
        day -= _DAY  # the after-midnight part of a span that began the evening before
    starts = [
        start
        for start in _occurrences(dt.datetime.combine(day, quiet.start), zone)
        if start <= moment
    ]
    # On a fall-back night the clock may show ``start`` a second time while still quiet
    # (quiet 01:00–02:00, clocks back from 02:00 to 01:00): the stretch began the first time.
    for start in reversed(starts):
        if not is_quiet(start - _SECOND, quiet, zone):
            return start
    return starts[0]


def quiet_span_end(moment: dt.datetime, quiet: QuietHours, zone: ZoneInfo) -> dt.datetime:
    """The UTC moment the quiet stretch holding ``moment`` ends (``moment`` must be quiet):
    the first moment after it at which the clock shows ``quiet.end``, when sending is allowed
    again."""
    if not is_quiet(moment, quiet, zone):
        raise ValueError("moment is not in quiet hours")
    local = to_local(moment, zone)
    day = local.date()
    if quiet.crosses_midnight and local.time().replace(tzinfo=None) >= quiet.start:
        day += _DAY  # the evening part: the span ends the next morning
    ends = _occurrences(dt.datetime.combine(day, quiet.end), zone)
    return min(end for end in ends if end > moment)


def next_quiet_start(moment: dt.datetime, quiet: QuietHours, zone: ZoneInfo) -> dt.datetime | None:
    """The first moment after ``moment`` (which must not be quiet) at which quiet hours begin;
    ``None`` when the salon has no quiet hours."""
    if quiet.empty:
        return None
    if is_quiet(moment, quiet, zone):
        raise ValueError("moment is in quiet hours")
    day = local_date(moment, zone)
    for offset in (0, 1, 2):
        for start in _occurrences(dt.datetime.combine(day + offset * _DAY, quiet.start), zone):
            # A span lying wholly in a DST gap (02:00–02:15 on a spring-forward night) never
            # happens that day: its start maps past the jump, where the clock is not quiet.
            if start > moment and is_quiet(start, quiet, zone):
                # Falling back can put the clock into the quiet span before that (01:59 EDT
                # → 01:00 EST with quiet hours until 01:30): the change is then the start.
                change = _offset_change(moment, start, zone)
                if change is not None and is_quiet(change, quiet, zone):
                    return change
                return start
    raise AssertionError("a quiet span begins within two days of any moment")
