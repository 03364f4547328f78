"""Days in canonical tokens (see ``_tokens``): which local dates a client means.

``read_day(cs, i, today)`` reads one day expression at token ``i`` (a leading в/на/к is part of
it) and returns a ``DayHit``; ``today`` is the date in the salon's time zone, so just after
midnight "сегодня" is already the new day. Rules (weeks run Monday to Sunday):

- ``сегодня`` today; ``завтра`` +1; ``послезавтра``/``после завтра`` +2;
  ``послепослезавтра`` +3; ``вчера``/``позавчера`` are past: rejected.
- ``в пятницу`` the nearest Friday AFTER today (on a Friday: the next one, a week on);
  ``в эту пятницу``/``в ближайшую пятницу`` the nearest Friday, today included;
  ``в следующую пятницу`` the Friday of next week (Monday–Sunday); ``в пятницу на этой /
  следующей неделе`` that week's Friday (this week's, if already past, is rejected).
- ``на выходных``/``в выходные`` this week's Saturday and Sunday from today on (on a Sunday:
  next week's pair); ``на этих выходных`` this week's, today included; ``на следующих
  выходных`` next week's; ``в будни`` the working days (Mon–Fri) left this week, else next
  week's.
- ``на этой неделе``/``на неделе``/``до конца недели`` today..Sunday; ``на следующей неделе``
  next Monday..Sunday.
- ``через N дней`` +N (``через пару дней`` +2; ``через день`` is the idiom for the day after
  tomorrow, +2); ``через неделю`` +7, ``через N недель`` +7N; ``через месяц`` the same day
  next month (or that month's last day), ``через N месяцев`` likewise.
- Calendar dates: ``14.03``, ``14/03``, ``14.03.2027``, ``14.03.27``, ``14-03-2027``,
  ``14 марта``, ``14-го марта``, ``четырнадцатого марта``, ``14 марта 2027 года``; without a
  year, this year's date if not past, else next year's. ``14.03`` is a date, ``15.00`` and
  ``15.30`` times (see ``_clock.dotted_is_time``).
- A day of the month alone: ``14-го``, ``на 14-е``, ``14 числа``, ``четырнадцатого
  (числа)``, ``на пятнадцатое число``: this month's if not past, else the next month that
  has that day.
- ``в тот же день``/``в этот же день``: the same day as something else in the conversation
  (no dates; the caller knows which).
- Impossible dates (``31.02``, ``32 марта``, a past year) and dates more than ``HORIZON``
  ahead are rejected: consumed, so no other rule reads their numbers, but give no date.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, timedelta

from ._clock import dotted_is_time

__all__ = ["HORIZON", "DayHit", "DayKind", "read_day"]

HORIZON = timedelta(days=366)


class DayKind(enum.Enum):
    """Which kind of day expression the client used."""

    TODAY = "today"
    TOMORROW = "tomorrow"
    DAY_AFTER_TOMORROW = "day_after_tomorrow"
    LATER = "later"  # через N дней / недель / месяцев, послепослезавтра
    WEEKDAY = "weekday"  # в пятницу: the nearest after today
    THIS_WEEKDAY = "this_weekday"  # в эту / ближайшую пятницу: today included
    NEXT_WEEKDAY = "next_weekday"  # в следующую пятницу: next week's
    DATE = "date"  # a calendar date or a day of the month
    WEEKEND = "weekend"
    NEXT_WEEKEND = "next_weekend"
    WORKING_DAYS = "working_days"  # в будни
    THIS_WEEK = "this_week"
    NEXT_WEEK = "next_week"
    SAME_DAY = "same_day"  # в тот же день: resolved by the caller

    @property
    def is_range(self) -> bool:
        """A span of days the client would accept any of, rather than one day."""
        return self in _RANGES


_RANGES = frozenset(
    {
        DayKind.WEEKEND,
        DayKind.NEXT_WEEKEND,
        DayKind.WORKING_DAYS,
        DayKind.THIS_WEEK,
        DayKind.NEXT_WEEK,
    }
)


@dataclass(frozen=True, slots=True)
class DayHit:
    """One day expression: tokens ``[start, end)``, its kind and its candidate dates."""

    end: int
    kind: DayKind
    dates: tuple[date, ...] = ()
    weekday: int | None = None  # 0 = Monday, for the weekday kinds
    rejected: bool = False


_W1 = timedelta(days=1)
_W6 = timedelta(days=6)
_DAY_PREPOSITIONS = frozenset({"в", "на", "к"})
_RELATIVE = {"сегодня": 0, "завтра": 1, "послезавтра": 2, "послепослезавтра": 3}
_RELATIVE_KIND = {
    0: DayKind.TODAY,
    1: DayKind.TOMORROW,
    2: DayKind.DAY_AFTER_TOMORROW,
    3: DayKind.LATER,
}


def _weekday(c: str) -> int | None:
    return int(c[2]) - 1 if len(c) == 3 and c.startswith("wd") else None


def _month(c: str) -> int | None:
    return int(c[3:]) if c.startswith("mon") else None


def _day_number(c: str) -> int | None:
    """1–31 from ``14``, ``14-го``, ``14-е``, ``g14`` or ``e14``."""
    if c.isdigit() and len(c) <= 2:
        value = int(c)
    elif c.endswith(("-го", "-е")) and c.split("-")[0].isdigit():
        value = int(c.split("-")[0])
    elif c[:1] in {"g", "e"} and c[1:].isdigit():
        value = int(c[1:])
    else:
        return None
    return value if 1 <= value <= 31 else None


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _span(first: date, last: date, today: date) -> tuple[date, ...]:
    first = max(first, today)
    return tuple(first + timedelta(days=k) for k in range((last - first).days + 1))


def _hit(
    end: int, kind: DayKind, dates: tuple[date, ...], today: date, weekday: int | None = None
) -> DayHit:
    """A hit for ``dates``, rejected when there are none or any is past or beyond HORIZON."""
    if not dates or any(d < today or d - today > HORIZON for d in dates):
        return DayHit(end, kind, (), weekday, rejected=True)
    return DayHit(end, kind, dates, weekday)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _calendar_date(day: int, month: int, year: int | None, today: date) -> date | None:
    """``day.month[.year]``; without a year the first such date from today on."""
    years = [year] if year is not None else [today.year, today.year + 1]
    for y in years:
        try:
            found = date(y, month, day)
        except ValueError:
            continue
        if year is not None or found >= today:
            return found
    return None


def _month_day(day: int, today: date) -> date | None:
    """The first date from today on that is the ``day``-th of its month."""
    for k in range(13):
        first = _add_months(today.replace(day=1), k)
        if day <= calendar.monthrange(first.year, first.month)[1]:
            found = first.replace(day=day)
            if found >= today:
                return found
    return None


def _year(c: str) -> int | None:
    if c.isdigit() and len(c) == 4:
        return int(c)
    return None


def _numeric_date(c: str, prev: str | None) -> tuple[int, int, int | None] | None:
    """``14.03``, ``14/03``, ``14.03.2027``, ``14-03-2027`` → (day, month, year or None)."""
    for sep in "./-":
        parts = c.split(sep)
        if len(parts) not in {2, 3} or not all(p.isdigit() for p in parts):
            continue
        if sep == "-" and len(parts) == 2:
            return None  # 15-00 is a time, 14-16 a window
        if sep == "." and len(parts) == 2 and dotted_is_time(c, prev):
            return None
        if len(parts[0]) > 2 or len(parts[1]) > 2:
            return None
        year: int | None = None
        if len(parts) == 3:
            if len(parts[2]) == 2:
                year = 2000 + int(parts[2])
            elif len(parts[2]) == 4:
                year = int(parts[2])
            else:
                return None
        return int(parts[0]), int(parts[1]), year
    return None


def read_day(cs: list[str], i: int, today: date) -> DayHit | None:
    """The day expression starting at token ``i``, or ``None`` (rules: module docstring)."""
    prev = cs[i - 1] if i else None
    start = i
    if cs[i] in _DAY_PREPOSITIONS and i + 1 < len(cs):
        hit = _read_day_at(cs, i + 1, today, cs[i])
        if hit is not None:
            return hit
    return _read_day_at(cs, start, today, prev)


def _read_day_at(cs: list[str], i: int, today: date, prev: str | None) -> DayHit | None:
    n = len(cs)
    c = cs[i]
    nxt = cs[i + 1] if i + 1 < n else None
    if c in _RELATIVE:
        offset = _RELATIVE[c]
        return _hit(i + 1, _RELATIVE_KIND[offset], (today + timedelta(days=offset),), today)
    if c == "после" and nxt in {"завтра", "послезавтра"}:
        offset = 2 if nxt == "завтра" else 3
        return _hit(i + 2, _RELATIVE_KIND[offset], (today + timedelta(days=offset),), today)
    if c == "вчера":
        return DayHit(i + 1, DayKind.DATE, (), rejected=True)
    if c == "через":
        return _read_later(cs, i, today)
    if c in {"этот", "след", "ближ", "тот"} or _weekday(c) is not None:
        found = _read_weekday_or_week(cs, i, today)
        if found is not None:
            return found
    if c == "неделя" and prev == "на":
        return _hit(i + 1, DayKind.THIS_WEEK, _span(today, _week_start(today) + _W6, today), today)
    if c == "до" and nxt == "конец" and i + 2 < n and cs[i + 2] == "неделя":
        week = _span(today, _week_start(today) + _W6, today)
        return _hit(i + 3, DayKind.THIS_WEEK, week, today)
    if c == "выходные":
        return _weekend(i + 1, today, None)
    if c == "будни":
        monday = _week_start(today)
        days = _span(today, monday + timedelta(days=4), today) if today.weekday() < 5 else ()
        if not days:
            days = _span(monday + _W1 * 7, monday + timedelta(days=11), today)
        return _hit(i + 1, DayKind.WORKING_DAYS, days, today)
    return _read_calendar(cs, i, today, prev)


def _one(day: date | None) -> tuple[date, ...]:
    return (day,) if day is not None else ()


def _read_calendar(cs: list[str], i: int, today: date, prev: str | None) -> DayHit | None:
    """``14.03``, ``14 марта (2027 года)``, ``14-го``, ``14 числа``, ``пятнадцатого``."""
    n = len(cs)
    c = cs[i]
    nxt = cs[i + 1] if i + 1 < n else None
    numeric = _numeric_date(c, prev) if c[:1].isdigit() else None
    if numeric is not None:
        day_of_month, month, year = numeric
        on = _calendar_date(day_of_month, month, year, today) if 1 <= month <= 12 else None
        return _hit(i + 1, DayKind.DATE, _one(on), today)
    day_number = _day_number(c)
    if day_number is None:
        if c.isdigit() and nxt is not None and _month(nxt) is not None:
            return DayHit(i + 2, DayKind.DATE, (), rejected=True)  # 32 марта
        return None
    month_said = _month(nxt) if nxt is not None else None
    if month_said is not None:
        end = i + 2
        year_said = _year(cs[end]) if end < n else None
        if year_said is not None:
            end += 1
            if end < n and cs[end] == "год":
                end += 1
        return _hit(
            end, DayKind.DATE, _one(_calendar_date(day_number, month_said, year_said, today)), today
        )
    said_as_date = c.endswith(("-го", "-е")) or (c.startswith("g") and nxt != "_")
    if nxt == "число" or said_as_date:
        end = i + 2 if nxt == "число" else i + 1
        return _hit(end, DayKind.DATE, _one(_month_day(day_number, today)), today)
    return None


def _read_later(cs: list[str], i: int, today: date) -> DayHit | None:
    """``через N дней / недель / месяцев`` (``i`` is at ``через``)."""
    n = len(cs)
    j = i + 1
    count = 1
    if j < n and cs[j] == "пару":
        count, j = 2, j + 1
    elif j < n and cs[j].isdigit() and len(cs[j]) <= 3:
        count, j = int(cs[j]), j + 1
    if j >= n:
        return None
    unit = cs[j]
    if unit in {"день", "дня", "дней"}:
        days = 2 if (count == 1 and j == i + 1) else count
        return _hit(j + 1, DayKind.LATER, (today + timedelta(days=days),), today)
    if unit == "неделя":
        return _hit(j + 1, DayKind.LATER, (today + timedelta(days=7 * count),), today)
    if unit == "месяц":
        return _hit(j + 1, DayKind.LATER, (_add_months(today, min(count, 24)),), today)
    return None


def _weekend(end: int, today: date, which: str | None) -> DayHit:
    monday = _week_start(today)
    saturday = monday + timedelta(days=5)
    if which == "след" or (which is None and today.weekday() == 6):
        saturday += timedelta(days=7)
    kind = DayKind.NEXT_WEEKEND if which == "след" else DayKind.WEEKEND
    return _hit(end, kind, _span(saturday, saturday + _W1, today), today)


def _read_weekday_or_week(cs: list[str], i: int, today: date) -> DayHit | None:
    """``(этот|след|ближ)? wdN (на этой/следующей неделе)?``, ``(этот|след) неделя``,
    ``(этот|след) выходные``, ``(тот|этот) же день``."""
    n = len(cs)
    which: str | None = None
    j = i
    if cs[j] in {"этот", "след", "ближ", "тот"}:
        which, j = cs[j], j + 1
        if j >= n:
            return None
    if cs[j] == "же" and which in {"тот", "этот"} and j + 1 < n and cs[j + 1] == "день":
        return DayHit(j + 2, DayKind.SAME_DAY)
    if which == "тот":
        return None
    monday = _week_start(today)
    if cs[j] == "неделя" and which in {"этот", "след"}:
        if which == "этот":
            return _hit(j + 1, DayKind.THIS_WEEK, _span(today, monday + _W6, today), today)
        next_monday = monday + timedelta(days=7)
        return _hit(j + 1, DayKind.NEXT_WEEK, _span(next_monday, next_monday + _W6, today), today)
    if cs[j] == "выходные" and which in {"этот", "след"}:
        if which == "этот":
            saturday = monday + timedelta(days=5)
            return _hit(j + 1, DayKind.WEEKEND, _span(saturday, saturday + _W1, today), today)
        return _weekend(j + 1, today, which)
    weekday = _weekday(cs[j])
    if weekday is None:
        return None
    j += 1
    week: str | None = None
    if j + 2 < n and cs[j] == "на" and cs[j + 1] in {"этот", "след"} and cs[j + 2] == "неделя":
        week, j = cs[j + 1], j + 3
    elif j + 1 < n and cs[j] == "след" and cs[j + 1] == "неделя":
        week, j = "след", j + 2
    if which == "след" or week == "след":
        day = monday + timedelta(days=7 + weekday)
        return _hit(j, DayKind.NEXT_WEEKDAY, (day,), today, weekday=weekday)
    if week == "этот":
        day = monday + timedelta(days=weekday)
        return _hit(j, DayKind.THIS_WEEKDAY, (day,), today, weekday=weekday)
    ahead = (weekday - today.weekday()) % 7
    if which in {"этот", "ближ"}:
        day = today + timedelta(days=ahead)
        return _hit(j, DayKind.THIS_WEEKDAY, (day,), today, weekday=weekday)
    day = today + timedelta(days=ahead or 7)
    return _hit(j, DayKind.WEEKDAY, (day,), today, weekday=weekday)
