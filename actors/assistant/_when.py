"""When a client wants a visit, read from Russian free text: ``parse_when(text, now)``.

Pure and synchronous (standard library and pymorphy3 only); some tens of µs per typical
message once the word cache is warm. ``now`` is an aware datetime in the SALON's time zone;
every date and time returned is local to that zone, so at 00:30 "сегодня" is the day that has
just begun.

How a message is read:

1. ``_tokens.tokenise`` turns the text into canonical tokens that remember their spans
   (case, ё, typos, glued words, spelt numbers, phones and prices masked).
2. Left to right, at each token the first rule that matches consumes its tokens: a negation
   (``не завтра``: consumed, ignored), then ``через N часов / минут / полчаса`` (now + that,
   rounded up to 5 minutes, approximate), then the day rules of ``_days``, then the time rules
   below. A bare number right after a day (``завтра 15``, ``в пятницу 11``) is an hour.
3. Days: every point day said (сегодня, в пятницу, 14 марта, через 2 дня…) is a candidate,
   in ascending order ("завтра или послезавтра" gives two); a range said with them (на
   следующей неделе, на выходных) narrows them — a weekday is then taken inside the range.
   Ranges alone give their days (intersected when several overlap). ``day_kind`` is the kind
   of the first point day, else of the first range.
4. Times (rules and the 12-hour resolution in ``_clock``):
   - exact: ``в/к/на X`` (``к 15`` = 15:00), ``X`` written as a time (``15:00``, ``15ч``,
     ``10 утра``, ``полседьмого``, ``в полдень``); approximate: ``около X``, ``где-то в X``,
     ``в районе X``, ``часа в X``;
   - windows: утром / днём / вечером / в обед / до обеда / после обеда / с утра / ближе к
     вечеру; ``после X``, ``позже X``, ``не раньше X``, ``с X`` = X–close; ``до X``,
     ``раньше X``, ``не позже X`` = open–X; ``с X до Y``, ``от X до Y``, ``между X и Y``,
     ``X-Y`` (``14-16``) = X–Y;
   - a part of the day said anywhere qualifies an ambiguous hour (``утро 10`` = 10:00,
     ``вечером, часов в 7`` = 19:00, ``в понедельник утром в 10``) and is then no window;
   - a bare number is an hour only after a preposition, a part of the day or a day, and
     never when a count, price or unit follows (``на 2 услуги``, ``до 2000 руб``,
     ``на 30 минут``, ``на 2 дня``); a number alone (``2``) or an ordinal (``второй``,
     ``2-й``) is never a time, so an option number stays an option number;
   - the first exact time wins and then there is no window; several windows intersect
     (``вечером после 18`` = 18:00–close) or else the first is kept.
5. ``spans`` lists every consumed character range of the ORIGINAL text (also of rejected and
   negated parts), so the caller does not read "10" in "утро 10" as the 10th or as an option.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from ._clock import (
    QUALIFIERS,
    Clock,
    clip_window,
    period_window,
    read_clock,
    resolve,
    to_minutes,
)
from ._days import DayHit, DayKind, read_day
from ._morph import is_counted_by
from ._tokens import Token, tokenise

__all__ = ["TimeKind", "When", "parse_when"]

Opening = tuple[dt.time, dt.time]
_DEFAULT_OPENING: Opening = (dt.time(9), dt.time(21))


class TimeKind(enum.Enum):
    """What kind of time the client gave."""

    EXACT = "exact"  # one time (``time``)
    PART_OF_DAY = "part_of_day"  # утром, днём, вечером, в обед, до/после обеда
    AFTER = "after"  # после 18, не раньше 18, с 18
    BEFORE = "before"  # до 12, не позже 12
    BETWEEN = "between"  # с 14 до 16, 14-16


@dataclass(frozen=True, slots=True)
class When:
    """What a message says about when: candidate days and an exact time or a window.

    ``dates`` are candidate local dates in ascending order (one date: ``date`` is it);
    ``time`` is an exact local time, else ``window`` a ``(start, end)`` with start < end.
    ``approximate`` marks "около 5", "часа в 4"; ``bare_hour`` marks a time read from a
    plain number after a preposition ("на 3", "в 2"), which the caller may prefer to read as
    an option number when it has just offered numbered options. ``spans`` are the consumed
    ``(start, end)`` ranges of the original text; ``rejected`` those that looked like a date
    or time but cannot be one ("31.02", "25:00", "вчера", a date beyond a year ahead).
    """

    dates: tuple[dt.date, ...] = ()
    day_kind: DayKind | None = None
    time: dt.time | None = None
    window: tuple[dt.time, dt.time] | None = None
    time_kind: TimeKind | None = None
    approximate: bool = False
    bare_hour: bool = False
    spans: tuple[tuple[int, int], ...] = ()
    rejected: tuple[tuple[int, int], ...] = ()

    @property
    def date(self) -> dt.date | None:
        """The one date meant, when exactly one candidate was found."""
        return self.dates[0] if len(self.dates) == 1 else None

    @property
    def has_day(self) -> bool:
        return bool(self.dates) or self.day_kind is DayKind.SAME_DAY

    @property
    def has_time(self) -> bool:
        return self.time is not None or self.window is not None

    @property
    def is_empty(self) -> bool:
        """Nothing about when was found (rejected parts do not count)."""
        return not self.has_day and not self.has_time

    def covers(self, start: int, end: int) -> bool:
        """Whether the text range ``[start, end)`` overlaps what was consumed."""
        return any(s < end and start < e for s, e in self.spans)

    def rest(self, text: str) -> str:
        """``text`` with every consumed range blanked, for readers of what is left."""
        chars = list(text)
        for s, e in self.spans:
            chars[s:e] = " " * (e - s)
        return "".join(chars)


@dataclass(frozen=True, slots=True)
class _TimeHit:
    kind: TimeKind
    clock: Clock | None = None  # EXACT time; AFTER/BETWEEN start; BEFORE end
    until: Clock | None = None  # BETWEEN end
    period: str | None = None  # PART_OF_DAY: a key of _clock.PERIODS
    qualifier: str | None = None  # a part of the day said with the time
    approximate: bool = False
    bare: bool = False
    fixed: int | None = None  # minutes since midnight, already resolved (через час)


@dataclass(slots=True)
class _Reading:
    days: list[DayHit] = field(default_factory=list)
    times: list[_TimeHit] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)


_NOT_AFTER_HOUR = frozenset(
    {"руб", "#", "мин", "дней", "неделя", "месяц", "год", "число", "пару", "день"}
)
_POINT_OR_PREP = frozenset({"в", "к", "на", "около"})
_PART_OF_DAY = {"утро": "утро", "днем": "днем", "вечер": "вечер", "ночь": "ночь"}
_AS_QUALIFIER = {"утро": "утро", "днем": "дня", "вечер": "вечер", "ночь": "ночь"}


def _bare_ok(tokens: list[Token], end: int, clock: Clock) -> bool:
    """Whether a bare number just read as an hour really is one (no count or unit after)."""
    if end >= len(tokens):
        return True
    nxt = tokens[end]
    if nxt.c in _NOT_AFTER_HOUR or nxt.c.startswith("mon") or nxt.c == "дня":
        return False
    if nxt.c == "_":
        return not is_counted_by(nxt.raw.lower(), clock.hour)
    return True


def _clock_at(
    tokens: list[Token], cs: list[str], i: int, prev: str | None, *, bare: bool
) -> tuple[int, Clock] | None:
    """A clock at ``i``; a bare number only when ``bare`` and nothing after makes it a count."""
    if i >= len(cs):
        return None
    found = read_clock(cs, i, prev=prev)
    if found is None:
        return None
    end, clock = found
    if not clock.strong and (not bare or not _bare_ok(tokens, end, clock)):
        return None
    return end, clock


def _window_token(c: str) -> tuple[Clock, Clock] | None:
    """``14-16`` (hours, start before end) as a window."""
    head, sep, tail = c.partition("-")
    if not sep or not head.isdigit() or not tail.isdigit() or len(head) > 2 or len(tail) > 2:
        return None
    start, end = int(head), int(tail)
    if not 0 <= start < end <= 23:
        return None
    return Clock(start, 0, explicit=start > 12), Clock(end, 0, explicit=end > 12)


def _read_time(tokens: list[Token], cs: list[str], i: int) -> tuple[int, _TimeHit] | None:
    """One time expression at token ``i`` (rules: module docstring, step 4)."""
    n = len(cs)
    c = cs[i]
    nxt = cs[i + 1] if i + 1 < n else None
    if c == "не" and nxt in {"раньше", "позже"}:
        found = _clock_at(tokens, cs, i + 2, nxt, bare=True)
        if found:
            kind = TimeKind.AFTER if nxt == "раньше" else TimeKind.BEFORE
            return found[0], _TimeHit(kind, found[1], bare=not found[1].strong)
        return None
    if c in {"с", "от", "между"}:
        if c == "с" and nxt == "утро":
            return i + 2, _TimeHit(TimeKind.PART_OF_DAY, period="утро")
        if nxt is not None and (pair := _window_token(nxt)) is not None:
            return i + 2, _TimeHit(TimeKind.BETWEEN, pair[0], pair[1])
        found = _clock_at(tokens, cs, i + 1, "с", bare=True)
        if found is None:
            return None
        end, start = found
        if end + 1 < n and cs[end] in {"до", "и", "по"}:
            until = _clock_at(tokens, cs, end + 1, "до", bare=True)
            if until is not None:
                return until[0], _TimeHit(TimeKind.BETWEEN, start, until[1])
        if c == "между" or (c == "от" and not start.strong):
            return None
        return end, _TimeHit(TimeKind.AFTER, start, bare=not start.strong)
    if c in {"после", "позже"}:
        if nxt == "обед":
            return i + 2, _TimeHit(TimeKind.PART_OF_DAY, period="после обед")
        found = _clock_at(tokens, cs, i + 1, "после", bare=True)
        if found:
            return found[0], _TimeHit(TimeKind.AFTER, found[1], bare=not found[1].strong)
        return None
    if c in {"до", "раньше"}:
        if nxt == "обед":
            return i + 2, _TimeHit(TimeKind.PART_OF_DAY, period="до обед")
        found = _clock_at(tokens, cs, i + 1, "до", bare=True)
        if found:
            return found[0], _TimeHit(TimeKind.BEFORE, found[1], bare=not found[1].strong)
        return None
    approx_at = _approximate_prefix(cs, i)
    if approx_at is not None:
        found = _clock_at(tokens, cs, approx_at, "около", bare=True)
        if found:
            end, clock = found
            return end, _TimeHit(TimeKind.EXACT, clock, approximate=True)  # plainly a time
    if c == "ближе" and nxt == "к" and i + 2 < n and cs[i + 2] in {"вечер", "обед", "утро"}:
        return i + 3, _TimeHit(TimeKind.PART_OF_DAY, period=cs[i + 2])
    if c in {"в", "к", "на"}:
        if nxt in {"обед", "утро", "вечер", "днем"}:
            return i + 2, _TimeHit(TimeKind.PART_OF_DAY, period=nxt)
        if nxt is not None and c == "в" and (pair := _window_token(nxt)) is not None:
            return i + 2, _TimeHit(TimeKind.BETWEEN, pair[0], pair[1])
        found = _clock_at(tokens, cs, i + 1, c, bare=True)
        if found and not (c == "на" and cs[i + 1] == "час"):
            return found[0], _TimeHit(TimeKind.EXACT, found[1], bare=not found[1].strong)
        return None
    if c in _PART_OF_DAY:
        return _read_part_of_day(tokens, cs, i)
    found = _clock_at(tokens, cs, i, cs[i - 1] if i else None, bare=False)
    if found:
        return found[0], _TimeHit(TimeKind.EXACT, found[1])
    return None


def _approximate_prefix(cs: list[str], i: int) -> int | None:
    """Where the clock starts after около / где-то (в) / в районе / часа в; else None."""
    n = len(cs)
    c = cs[i]
    if c == "около":
        return i + 2 if i + 1 < n and cs[i + 1] == "в" else i + 1
    if c == "где" and i + 1 < n and cs[i + 1] == "то":
        return i + 3 if i + 2 < n and cs[i + 2] in {"в", "около"} else i + 2
    if c == "в" and i + 1 < n and cs[i + 1] == "районе":
        return i + 2
    if c == "час" and i + 1 < n and cs[i + 1] == "в" and (i == 0 or not cs[i - 1].isdigit()):
        return i + 2
    return None


def _read_part_of_day(tokens: list[Token], cs: list[str], i: int) -> tuple[int, _TimeHit] | None:
    """``утром`` alone (a window) or qualifying what follows (``утро 10``, ``вечером в 7``,
    ``вечером после 6``)."""
    n = len(cs)
    period = _PART_OF_DAY[cs[i]]
    qualifier = _AS_QUALIFIER[period]
    j = i + 1
    if j < n:
        following = _read_time(tokens, cs, j) if cs[j] not in _PART_OF_DAY else None
        if following is not None and following[1].kind is not TimeKind.PART_OF_DAY:
            end, hit = following
            return end, _with_qualifier(hit, qualifier)
        bare = _clock_at(tokens, cs, j, cs[i], bare=True)
        if bare is not None:
            return bare[0], _TimeHit(TimeKind.EXACT, bare[1], qualifier=qualifier)
    if period == "ночь":
        return None
    return j, _TimeHit(TimeKind.PART_OF_DAY, period=period)


def _with_qualifier(hit: _TimeHit, qualifier: str) -> _TimeHit:
    return _TimeHit(
        hit.kind,
        hit.clock,
        hit.until,
        hit.period,
        hit.qualifier or qualifier,
        hit.approximate,
        False,  # a part of the day said with it: plainly a time, not an option number
        hit.fixed,
    )


def _read_in_minutes(cs: list[str], i: int) -> tuple[int, int] | None:
    """``через час``, ``через 2 часа``, ``через полчаса``, ``через 40 минут`` → minutes."""
    n = len(cs)
    if cs[i] != "через" or i + 1 >= n:
        return None
    j = i + 1
    if cs[j] == "полчаса":
        return j + 1, 30
    count = 1
    if cs[j].isdigit() and len(cs[j]) <= 3:
        count, j = int(cs[j]), j + 1
    elif cs[j] == "пару":
        count, j = 2, j + 1
    if j < n and cs[j] == "час" and count <= 24:
        return j + 1, 60 * count
    if j < n and cs[j] == "мин" and j > i + 1 and count <= 24 * 60:
        return j + 1, count
    return None


def _valid(clock: Clock | None) -> bool:
    return clock is None or (0 <= clock.hour <= 23 and 0 <= clock.minute <= 59)


def _read(tokens: list[Token], now: dt.datetime) -> _Reading:
    cs = [t.c for t in tokens]
    n = len(cs)
    today = now.date()
    reading = _Reading()
    i = 0
    while i < n:
        c = cs[i]
        if c in {"_", "|", "#"}:
            i += 1
            continue
        negated = c == "не" and i + 1 < n and cs[i + 1] not in {"раньше", "позже"}
        at = i + 1 if negated else i
        day_hit: DayHit | None = None
        time_hit: _TimeHit | None = None
        end = at
        relative = _read_in_minutes(cs, at)
        if relative is not None:
            end, minutes = relative
            moment = now + dt.timedelta(minutes=minutes)
            moment += dt.timedelta(minutes=(-moment.minute) % 5, seconds=-moment.second)
            day_hit = DayHit(end, DayKind.LATER, (moment.date(),))
            fixed = moment.hour * 60 + moment.minute
            time_hit = _TimeHit(TimeKind.EXACT, approximate=True, fixed=fixed)
        elif (day_hit := read_day(cs, at, today)) is not None:
            end = day_hit.end
            if not day_hit.kind.is_range and end < n and cs[end].isdigit():
                after = _clock_at(tokens, cs, end, cs[end - 1], bare=True)
                if after is not None:
                    end, clock = after
                    time_hit = _TimeHit(TimeKind.EXACT, clock, bare=not clock.strong)
        elif (found := _read_time(tokens, cs, at)) is not None:
            end, time_hit = found
        if end == at:
            i += 1
            continue
        span = (tokens[i].start, tokens[end - 1].end)
        reading.spans.append(span)
        bad_time = time_hit is not None and not (_valid(time_hit.clock) and _valid(time_hit.until))
        if (day_hit is not None and day_hit.rejected) or bad_time:
            reading.rejected.append(span)
        elif not negated:
            if day_hit is not None:
                reading.days.append(day_hit)
            if time_hit is not None:
                reading.times.append(time_hit)
        i = end
    return reading


def _combine_days(days: list[DayHit]) -> tuple[tuple[dt.date, ...], DayKind | None]:
    points = [d for d in days if not d.kind.is_range and d.kind is not DayKind.SAME_DAY]
    ranges = [d for d in days if d.kind.is_range]
    if not points and not ranges:
        return (), (DayKind.SAME_DAY if days else None)
    in_range: set[dt.date] | None = None
    for r in ranges:
        in_range = set(r.dates) if in_range is None else in_range & set(r.dates)
    if in_range == set() and ranges:
        in_range = set(ranges[0].dates)
    if not points:
        return tuple(sorted(in_range or ())), ranges[0].kind
    said_dates = {d.weekday() for p in points if p.kind is DayKind.DATE for d in p.dates}
    points = [p for p in points if p.weekday is None or p.weekday not in said_dates]
    chosen: set[dt.date] = set()
    for p in points:
        if in_range is not None and p.weekday is not None:
            inside = {d for d in in_range if d.weekday() == p.weekday}
            chosen |= inside or set(p.dates)
        else:
            chosen |= set(p.dates)
    if in_range is not None and chosen & in_range:
        chosen &= in_range
    return tuple(sorted(chosen)), points[0].kind


def _minutes_to_time(minutes: int) -> dt.time:
    return dt.time(minutes // 60 % 24, minutes % 60)


def _combine_times(
    times: list[_TimeHit], opening: Opening
) -> tuple[dt.time | None, tuple[dt.time, dt.time] | None, TimeKind | None, bool, bool]:
    """(time, window, kind, approximate, bare) from the time expressions found."""
    periods = [t for t in times if t.kind is TimeKind.PART_OF_DAY and t.period in QUALIFIERS]
    periods += [t for t in times if t.kind is TimeKind.PART_OF_DAY and t.period == "днем"]
    clocked = [t for t in times if t.kind is not TimeKind.PART_OF_DAY]
    said = periods[0].period if periods else None
    message_qualifier = _AS_QUALIFIER.get(said) if said else None
    exact = next((t for t in clocked if t.kind is TimeKind.EXACT), None)
    if exact is not None:
        if exact.fixed is not None:
            minutes = exact.fixed
        else:
            assert exact.clock is not None
            minutes = resolve(exact.clock, opening, exact.qualifier or message_qualifier)
        return _minutes_to_time(minutes), None, TimeKind.EXACT, exact.approximate, exact.bare
    windows: list[tuple[tuple[int, int], TimeKind]] = []
    for t in clocked:
        qualifier = t.qualifier or message_qualifier
        window = _window_of(t, opening, qualifier)
        if window is not None:
            windows.append((window, t.kind))
    qualified = bool(windows) and message_qualifier is not None
    for t in times:
        if t.kind is TimeKind.PART_OF_DAY and t.period is not None:
            window = period_window(t.period, opening)
            if window is not None and not (qualified and t.period == said):
                windows.append((window, TimeKind.PART_OF_DAY))
    if not windows:
        return None, None, None, False, False
    (begin, end), kind = windows[0]
    for (b, e), _ in windows[1:]:
        if max(begin, b) < min(end, e):
            begin, end = max(begin, b), min(end, e)
    return None, (_minutes_to_time(begin), _minutes_to_time(end)), kind, False, False


def _window_of(t: _TimeHit, opening: Opening, qualifier: str | None) -> tuple[int, int] | None:
    assert t.clock is not None
    start, close = to_minutes(opening[0]), to_minutes(opening[1])
    if close <= start:
        close = 24 * 60
    at = resolve(t.clock, opening, qualifier)
    if t.kind is TimeKind.AFTER:
        return clip_window((at, close if at < close else 24 * 60), opening)
    if t.kind is TimeKind.BEFORE:
        return clip_window((start if start < at else 0, at), opening)
    assert t.until is not None
    until = resolve(t.until, opening, qualifier)
    if until <= at and not t.until.explicit and until + 12 * 60 > at:
        until += 12 * 60
    return clip_window((at, min(until, 24 * 60)), opening)


def _merged(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def parse_when(text: str, now: dt.datetime, *, opening: Opening = _DEFAULT_OPENING) -> When:
    """When the client of a salon wants a visit, read from ``text`` (rules: module docstring).

    ``now`` must be aware and in the salon's zone (``ValueError`` otherwise); ``opening`` is
    the salon's opening hours that day, used to resolve 12-hour times and clip windows.
    Never raises on any text; returns an empty ``When`` when nothing was found.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_when needs an aware datetime in the salon's time zone")
    reading = _read(tokenise(text), now)
    dates, day_kind = _combine_days(reading.days)
    exact, window, time_kind, approximate, bare = _combine_times(reading.times, opening)
    return When(
        dates=dates,
        day_kind=day_kind,
        time=exact,
        window=window,
        time_kind=time_kind,
        approximate=approximate,
        bare_hour=bare,
        spans=_merged(reading.spans),
        rejected=_merged(reading.rejected),
    )
