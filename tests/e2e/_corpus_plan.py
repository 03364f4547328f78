"""Is a dialogue set satisfiable by its catalog, whatever weekday the run falls on?

The run's date is arbitrary, so a booking "послезавтра к Тимуру" fails on the runs where that
day is one of Тимур's days off, and one dialogue's booking can take the time a later one asks
for. :func:`plan_problems` replays the set's expected changes, salon by salon in file order,
once for each weekday "today" may be, against the catalog's masters (services, days off, off
days, hours) and records, and says which expected booking or move could not happen.

Bookings with an exact time take that slot on every candidate master free then (the assistant
may pick any of them); bookings with a window take the earliest free slot in it on each
candidate (they are the first option offered, or near it). That is stricter than the run, so
a clean plan is a corpus that does not depend on the day it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._dialogues import WEEKDAYS, Dialogue, DialogueSet, weekdays

DAY = 24 * 60


@dataclass
class _Master:
    id: int
    days_off: frozenset[int]
    off_days: frozenset[int]
    start: int
    end: int
    services: set[int] = field(default_factory=set)
    busy: list[tuple[int, int, int, str]] = field(default_factory=list)  # day, start, end, tag

    def works(self, day: int, weekday_today: int) -> bool:
        return (weekday_today + day) % 7 not in self.days_off and day not in self.off_days

    def free(self, day: int, start: int, length: int, weekday_today: int) -> bool:
        if not self.works(day, weekday_today) or start < self.start or start + length > self.end:
            return False
        return all(d != day or e <= start or s >= start + length for d, s, e, _ in self.busy)


def _clock(value: Any) -> int:
    if isinstance(value, int):
        return value * 60
    hours, _, minutes = str(value).partition(":")
    return int(hours) * 60 + int(minutes or 0)


def plan_problems(dialogue_set: DialogueSet) -> list[str]:
    """Every expected booking or move that some run weekday makes impossible."""
    found: set[str] = set()
    for salon_id, salon in dialogue_set.salons.items():
        chain = [d for d in dialogue_set.dialogues if d.salon_id == salon_id]
        for weekday_today in range(7):
            for problem in _plan_salon(salon, chain, weekday_today):
                found.add(problem)
    return sorted(found)


def _plan_salon(salon: Mapping[str, Any], chain: Sequence[Dialogue], today: int) -> list[str]:
    opens, closes = _clock(salon.get("open_hour", 10)), _clock(salon.get("close_hour", 21))
    step = int(salon.get("step", 30))
    minutes = {int(s["id"]): int(s.get("minutes", 60)) for s in salon["services"]}
    masters: dict[int, _Master] = {}
    for m in salon["staff"]:
        hours = m.get("hours")
        masters[m["id"]] = _Master(
            m["id"],
            frozenset(WEEKDAYS.index(w) for w in m.get("days_off", [])),
            frozenset(m.get("off_days", [])),
            _clock(hours[0]) if hours else opens,
            _clock(hours[1]) if hours else closes,
        )
    for s in salon["services"]:
        for mid in s.get("staff", list(masters)):
            masters[mid].services.add(int(s["id"]))
    records: dict[str, tuple[int, int]] = {}  # key -> (master, length)
    for r in salon.get("records", []):
        length = sum(minutes[s] for s in r["services"])
        start = _clock(r["time"])
        masters[r["staff_id"]].busy.append((r["day"], start, start + length, r["key"]))
        records[r["key"]] = (r["staff_id"], length)
    problems: list[str] = []
    where = f"when today is {WEEKDAYS[today]}"
    for d in chain:
        expect = d.expect
        for key in expect.get("cancelled", []):
            master = masters[records[key][0]]
            master.busy = [b for b in master.busy if b[3] != key]
        move = expect.get("moved")
        if move is not None:
            mid, length = records[move["record"]]
            master = masters[mid]
            master.busy = [b for b in master.busy if b[3] != move["record"]]
            start = _clock(move["time"])
            if not master.free(move["day"], start, length, today):
                problems.append(f"{d.name}: the move's time is not free {where}")
            master.busy.append((move["day"], start, start + length, move["record"]))
        booked = expect.get("booked")
        if booked is not None:
            problem = _book(d, booked, masters, minutes, opens, closes, step, today)
            if problem:
                problems.append(f"{d.name}: {problem} {where}")
    return problems


def _book(
    d: Dialogue,
    booked: Mapping[str, Any],
    masters: Mapping[int, _Master],
    minutes: Mapping[int, int],
    opens: int,
    closes: int,
    step: int,
    today: int,
) -> str | None:
    services = booked.get("services") or booked.get("services_any") or []
    length = (
        sum(minutes[s] for s in services)
        if "services" in booked
        else max(minutes[s] for s in services)
    )
    if "day" in booked:
        days = [booked["day"]]
    elif "day_any" in booked:
        days = list(booked["day_any"])
    elif booked.get("weekend"):
        days = [d for d in range(1, 8) if (today + d) % 7 >= 5]
    elif "weekday" in booked:
        days = [(WEEKDAYS.index(w) - today - 1) % 7 + 1 for w in weekdays(booked["weekday"])]
    else:
        return "the booking names no day"
    if any(day < 1 for day in days) and "day_any" not in booked:
        return "a booking today depends on the hour the run starts"
    candidates = [booked["staff"]] if "staff" in booked else list(booked.get("staff_any", masters))
    wanted = booked.get("time", {"from": "00:00", "to": "23:59"})
    if isinstance(wanted, str):
        starts = [_clock(wanted)]
    else:
        first, last = _clock(wanted["from"]), _clock(wanted["to"])
        starts = [t for t in range(opens, closes, step) if first <= t <= last]
    taken = False
    for mid in candidates:
        master = masters[mid]
        if "services" in booked and not set(services) <= master.services:
            continue
        if "services_any" in booked and not set(services) & master.services:
            continue
        slot = next(
            (
                (day, start)
                for day in days
                for start in starts
                if master.free(day, start, length, today)
            ),
            None,
        )
        if slot is not None:
            master.busy.append((slot[0], slot[1], slot[1] + length, f"booked by {d.name}"))
            taken = True
    return None if taken else "no candidate master is free for the booking"
