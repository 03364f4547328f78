"""A salon's opening hours from its own words: YClients' free-text ``schedule``.

YClients gives the salon's hours only as text ("Ежедневно 10:00–21:00", "Пн–Пт 9:00-20:00,
Сб–Вс 10:00–18:00", "с 10 до 22", "Круглосуточно"). :func:`opening_hours` reads the daily
span the assistant needs (to read "на 3" as 15:00 and to bound "вечером"): the one span
named, or, when several days have different hours, from the earliest opening to the latest
closing. Text it cannot read gives ``None`` (the assistant then falls back to its defaults);
the text itself is kept and shown to clients as it is.
"""

from __future__ import annotations

import re
from datetime import time

__all__ = ["opening_hours"]

_DASH = r"\s*(?:-|–|—|−|до)\s*"
_CLOCK = r"([01]?\d|2[0-4])[:.]([0-5]\d)"
#: "10:00–21:00", "9.30 - 20.00", "10:00 до 21:00".
_SPAN = re.compile(rf"(?<![\d:.]){_CLOCK}{_DASH}{_CLOCK}(?![\d:.])")
#: "с 10 до 21" (whole hours).
_FROM_TO = re.compile(r"(?<![\w])с\s*([01]?\d|2[0-4])\s*до\s*([01]?\d|2[0-4])(?![\d:.])", re.I)
_ALL_DAY = re.compile(r"круглосуточно|24\s*/\s*7|24\s*часа", re.I)

_END_OF_DAY = time(23, 59)


def _clock(hour: str, minute: str = "0") -> time | None:
    h, m = int(hour), int(minute)
    if h == 24:
        return _END_OF_DAY if m == 0 else None
    return time(h, m)


def opening_hours(schedule: str | None) -> tuple[time, time] | None:
    """``(opens, closes)`` local time named by the schedule text, or ``None``.

    Spans that close before they open (past midnight) are not read: the assistant's windows
    are within one day.
    """
    if not schedule:
        return None
    if _ALL_DAY.search(schedule):
        return time(0, 0), _END_OF_DAY
    spans: list[tuple[time, time]] = []
    for found in _SPAN.finditer(schedule):
        opens, closes = _clock(*found.group(1, 2)), _clock(*found.group(3, 4))
        if opens is not None and closes is not None and opens < closes:
            spans.append((opens, closes))
    for found in _FROM_TO.finditer(schedule):
        opens, closes = _clock(found.group(1)), _clock(found.group(2))
        if opens is not None and closes is not None and opens < closes:
            spans.append((opens, closes))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)
