"""Times of day in canonical tokens (see ``_tokens``): clock readings, windows, and the rules
that turn a said hour into a 24-hour time inside the salon's opening hours.

Clock readings (``read_clock``), each as said, before resolution:

- ``15:00``; ``15.00``/``15.30`` (a time when the minutes are ``00`` or above 12, or after
  в/к/с/до/после/около); ``15-00``/``15-30`` (minutes 00, 15, 30 or 45);
- a number 0–23 with optional ``час`` and minutes (``15 час 30 мин``, ``15ч30``, ``в 9 30``);
- ``час`` alone after в/к/около/после/до = one o'clock (``в час дня`` = 13:00);
- ``полдень`` = 12:00, ``полночь`` = 00:00;
- ``пол`` + ordinal or number: ``полседьмого``, ``пол 7``, ``в половине седьмого`` = 6:30;
  ``четверть седьмого`` = 6:15; ``без четверти шесть``, ``без 15 шесть``,
  ``без десяти минут шесть`` = 5:45/5:50;
- a qualifier right after the hour: ``утра`` (AM), ``дня`` (1–7 → PM), ``вечера`` (PM),
  ``ночи`` (1–5 as said, 6–11 → PM, 12 → 00:00).

``resolve`` picks the 24-hour time. A clock is *explicit* when written with a leading zero
(``08:00``), as 0 or 13–23, or as полдень/полночь: it is kept as said. Otherwise hours 1–12
are ambiguous; a qualifier decides (also one said elsewhere in the message: ``вечером … в 7``);
with none, 1–8 mean PM and 9–12 as said (``на 3`` = 15:00, ``в 8`` = 20:00, ``в 9`` = 09:00,
``в 12`` = 12:00) — unless that reading falls outside the opening hours and the other one is
inside, which then wins (open 10–22: ``в 9`` = 21:00; open 7–15: ``в 8`` = 08:00).

Windows (``period_window``), clipped to the opening hours; when clipping leaves nothing the
unclipped window is kept (the caller will find no free time there and say so):
утром 06:00–12:00, днём 12:00–17:00, вечером 17:00–23:59, в обед 12:00–14:00, до обеда
open–13:00, после обеда 14:00–close; ``после X`` X–close, ``до X`` open–X, ``с X до Y`` X–Y.
A close of 00:00 means midnight (open until the end of the day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

__all__ = [
    "Clock",
    "clip_window",
    "period_window",
    "read_clock",
    "resolve",
    "to_minutes",
]

PREPOSITIONS_OF_TIME = frozenset({"в", "к", "с", "до", "после", "около", "от", "позже", "раньше"})
QUALIFIERS = frozenset({"утро", "дня", "вечер", "ночь"})
_DAY_AS_PM = frozenset({"в", "к", "около", "после", "до", "с"})
_HYPHEN_MINUTES = frozenset({"00", "15", "30", "45"})
_DAY_END = 24 * 60 - 1  # 23:59, the latest end of a window

PERIODS: dict[str, tuple[int, int]] = {
    "утро": (6 * 60, 12 * 60),
    "днем": (12 * 60, 17 * 60),
    "вечер": (17 * 60, _DAY_END),
    "обед": (12 * 60, 14 * 60),
    "до обед": (0, 13 * 60),
    "после обед": (14 * 60, _DAY_END),
}


@dataclass(frozen=True, slots=True)
class Clock:
    """An hour and minute as said, before the 12-hour ambiguity is resolved."""

    hour: int
    minute: int
    explicit: bool = False  # kept as said: leading zero, 0 or 13–23, полдень, полночь
    strong: bool = True  # written as a time (colon, час, a word); False for a bare number
    qualifier: str | None = None  # "утро" | "дня" | "вечер" | "ночь"


def to_minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _opening_minutes(opening: tuple[time, time]) -> tuple[int, int]:
    start, close = to_minutes(opening[0]), to_minutes(opening[1])
    if close <= start:
        close = 24 * 60  # 00:00 (or anything not after the start) closes at midnight
    return start, close


def resolve(clock: Clock, opening: tuple[time, time], qualifier: str | None = None) -> int:
    """Minutes since midnight for ``clock`` (see the module docstring for the rules)."""
    hour, minute = clock.hour, clock.minute
    said = clock.qualifier or qualifier
    if clock.explicit or hour > 12:
        return hour * 60 + minute
    if said == "утро":
        return hour * 60 + minute
    if said == "дня":
        return (hour + 12 if 1 <= hour <= 7 else hour) * 60 + minute
    if said == "вечер":
        return ((hour + 12) % 24 if hour >= 1 else hour) * 60 + minute
    if said == "ночь":
        if hour == 12:
            return minute
        return (hour + 12 if hour >= 6 else hour) * 60 + minute
    start, close = _opening_minutes(opening)
    pm = (hour % 12 + 12) * 60 + minute
    am = (hour % 12) * 60 + minute
    if hour == 12:
        am, pm = pm, am  # "в 12" is noon; midnight only if noon is closed and midnight open
    first, other = (pm, am) if 1 <= hour <= 8 else (am, pm)
    if not start <= first < close and start <= other < close:
        return other
    return first


def clip_window(window: tuple[int, int], opening: tuple[time, time]) -> tuple[int, int] | None:
    """``window`` cut to the opening hours, or as given when that leaves nothing; ``None``
    when the window itself is empty."""
    begin, end = window
    if end <= begin:
        return None
    start, close = _opening_minutes(opening)
    clipped = (max(begin, start), min(end, close, _DAY_END))
    return clipped if clipped[0] < clipped[1] else (begin, min(end, _DAY_END))


def period_window(name: str, opening: tuple[time, time]) -> tuple[int, int] | None:
    """The window of a part of the day (``утро``, ``днем``, ``вечер``, ``обед``, …)."""
    return clip_window(PERIODS[name], opening)


def _int(c: str) -> int | None:
    return int(c) if c.isdigit() and len(c) <= 2 else None


def _ordinal_hour(c: str) -> int | None:
    """``g7`` (седьмого) → 7, for hours 1–12."""
    if c[:1] == "g" and c[1:].isdigit() and 1 <= int(c[1:]) <= 12:
        return int(c[1:])
    return None


def _split_minutes(c: str, separator: str) -> tuple[int, int, bool] | None:
    head, sep, tail = c.partition(separator)
    if not sep or not head.isdigit() or not tail.isdigit() or len(head) > 2 or len(tail) != 2:
        return None
    return int(head), int(tail), head.startswith("0") or int(head) == 0 or int(head) > 12


def dotted_is_time(c: str, prev: str | None) -> bool:
    """Whether ``15.30``-like ``c`` is a time rather than a date (``14.03``)."""
    parts = _split_minutes(c, ".")
    if parts is None:
        return False
    hour, minute, _ = parts
    if hour > 23 or minute > 59:
        return False
    return minute == 0 or minute > 12 or (prev in PREPOSITIONS_OF_TIME)


def read_clock(cs: list[str], i: int, *, prev: str | None) -> tuple[int, Clock] | None:
    """A clock reading starting at token ``i``: ``(end index, Clock)``, or ``None``.

    Rejects numbers that cannot be hours (24 and above); a caller decides whether a bare
    number (``strong=False``) is a time in its context. Impossible written times such as
    ``25:00`` come back with ``hour`` 24+ so the caller can reject and consume them.
    """
    n = len(cs)
    c = cs[i]
    reading: Clock | None = None
    j = i + 1
    if ":" in c or "-" in c or "." in c:
        sep = ":" if ":" in c else "-" if "-" in c else "."
        parts = _split_minutes(c, sep)
        if parts is None:
            return None
        hour, minute, explicit = parts
        if sep == "-" and c.partition("-")[2] not in _HYPHEN_MINUTES:
            return None
        if sep == "." and not dotted_is_time(c, prev):
            return None
        reading = Clock(hour, minute, explicit=explicit)
        if j < n and cs[j] == "час":
            j += 1
    elif c == "полдень":
        reading = Clock(12, 0, explicit=True)
    elif c == "полночь":
        reading = Clock(0, 0, explicit=True)
    elif c == "пол" and j < n:
        half_of = _ordinal_hour(cs[j]) or _int(cs[j])
        if half_of is None or not 1 <= half_of <= 12:
            return None
        reading = Clock((half_of - 1) or 12, 30)
        j += 1
    elif c == "четверть" and j < n and (quarter_of := _ordinal_hour(cs[j])) is not None:
        reading = Clock((quarter_of - 1) or 12, 15)
        j += 1
    elif c == "без" and j + 1 < n:
        before, k = (15, j + 1) if cs[j] == "четверть" else (_int(cs[j]), j + 1)
        if k < n and cs[k] == "мин":
            k += 1
        to_hour = (1 if cs[k] == "час" else _int(cs[k])) if k < n else None
        if before is None or not 1 <= before <= 30 or to_hour is None or not 1 <= to_hour <= 12:
            return None
        reading = Clock((to_hour - 1) or 12, 60 - before)
        j = k + 1
    elif c == "час" and prev in {"в", "к", "около", "после", "до"}:
        reading = Clock(1, 0)
    elif c.isdigit() and len(c) <= 2:
        hour = int(c)
        explicit = c.startswith("0") or hour == 0 or hour > 12
        strong = False
        minute = 0
        if j < n and cs[j] == "час":
            strong = True
            j += 1
            if j < n and (m := _int(cs[j])) is not None and len(cs[j]) == 2 and m <= 59:
                minute, j = m, j + 1
                if j < n and cs[j] == "мин":
                    j += 1
        elif (
            j < n
            and len(cs[j]) == 2
            and (m := _int(cs[j])) is not None
            and m <= 59
            and (j + 1 >= n or cs[j + 1] in {"|", "час", "мин", "утро", "вечер", "дня"})
        ):
            minute, strong, j = m, True, j + 1
            if j < n and cs[j] == "мин":
                j += 1
        if hour > 23:
            return None
        reading = Clock(hour, minute, explicit=explicit, strong=strong)
    if reading is None:
        return None
    if j < n and cs[j] == "час" and c in {"пол", "без", "четверть"}:
        j += 1
    if j < n and cs[j] in QUALIFIERS and (cs[j] != "дня" or prev in _DAY_AS_PM or reading.strong):
        # "в 2 дня" is 14:00, but "на 2 дня" is two days: "дня" qualifies only after these.
        if not reading.explicit:
            reading = Clock(reading.hour, reading.minute, False, True, cs[j])
        j += 1
    return j, reading
