"""YClients' answers about free time, kept briefly: a master's free starts on a date
(``SlotKey``, one ``book_times``) and the dates a master has free time in a window
(``DaysKey``, one ``book_dates``).

Every salon of the partner shares one YClients limit (5/s, 200/min), so two clients asking
about the same master's Friday within a minute cost one ``book_times`` call, not two. An
entry lives ``ttl`` seconds at most; a record webhook for the salon, and every move or
cancellation of ours, drops the salon's entries (or one master's day) at once, so a time
someone just took, or just freed, is seen. A booking (ours, or one YClients refused because
someone else took the time) only takes time away: it drops the times of that master's day
and keeps the days lists (``times_only``), which can then only hold a day too many (that
day's ``book_times`` says it is full), never miss one. The cache is bounded: the oldest
entries go first when it is full.

A fetch is announced with :meth:`SlotCache.begin`; an invalidation meanwhile marks its
ticket stale, and :meth:`SlotCache.put` ignores a stale answer (it may predate the change),
so a caller can share one fetch among concurrent askers (``ticket.stale`` says whether to
join it) without caching what changed under it.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheKey", "DaysKey", "SlotCache", "SlotKey", "Ticket"]

DEFAULT_TTL = 60.0
DEFAULT_MAX_ENTRIES = 20_000


@dataclass(frozen=True, slots=True)
class SlotKey:
    """One ``book_times`` question: a master's free starts on a day for these services."""

    salon_id: int
    staff_id: int
    day: dt.date
    service_ids: tuple[int, ...]

    @classmethod
    def of(
        cls, salon_id: int, staff_id: int, day: dt.date, service_ids: tuple[int, ...]
    ) -> SlotKey:
        """The key with the services in a canonical order (the same question, the same key)."""
        return cls(salon_id, staff_id, day, tuple(sorted(set(service_ids))))

    def covers(self, day: dt.date) -> bool:
        return self.day == day


@dataclass(frozen=True, slots=True)
class DaysKey:
    """One ``book_dates`` question: the dates from ``first`` to ``last`` on which a master
    has free time for these services."""

    salon_id: int
    staff_id: int
    service_ids: tuple[int, ...]
    first: dt.date
    last: dt.date

    @classmethod
    def of(
        cls,
        salon_id: int,
        staff_id: int,
        service_ids: tuple[int, ...],
        first: dt.date,
        last: dt.date,
    ) -> DaysKey:
        """The key with the services in a canonical order."""
        return cls(salon_id, staff_id, tuple(sorted(set(service_ids))), first, last)

    def covers(self, day: dt.date) -> bool:
        return self.first <= day <= self.last


CacheKey = SlotKey | DaysKey


@dataclass(eq=False, slots=True)
class Ticket:
    """A fetch in flight for ``key``; ``stale`` once an invalidation touched it."""

    key: CacheKey
    stale: bool = False


class SlotCache:
    """A small TTL cache of ``book_times`` and ``book_dates`` answers (see the module
    docstring).

    ``clock`` returns seconds (monotonic); the node passes trio's clock so tests under
    ``MockClock`` see entries expire.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: collections.OrderedDict[CacheKey, tuple[float, tuple[Any, ...]]] = (
            collections.OrderedDict()
        )
        self._by_salon: dict[int, set[CacheKey]] = {}  # so a webhook scans one salon's keys
        self._flying: dict[int, set[Ticket]] = {}  # fetches in flight, by salon
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> tuple[Any, ...] | None:
        """The cached answer, or ``None`` when absent or older than ``ttl``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def begin(self, key: CacheKey) -> Ticket:
        """Announce a fetch for ``key``: pass the ticket to :meth:`put` (or :meth:`end` when
        the fetch failed)."""
        ticket = Ticket(key)
        self._flying.setdefault(key.salon_id, set()).add(ticket)
        return ticket

    def end(self, ticket: Ticket) -> None:
        """The fetch is over (answered or not)."""
        tickets = self._flying.get(ticket.key.salon_id)
        if tickets is not None:
            tickets.discard(ticket)
            if not tickets:
                del self._flying[ticket.key.salon_id]

    def put(self, key: CacheKey, times: tuple[Any, ...], *, ticket: Ticket | None = None) -> None:
        """Keep ``times`` for ``key`` for ``ttl`` seconds (evicting the oldest when full);
        with the fetch's ``ticket``, not when an invalidation made it stale."""
        if ticket is not None:
            self.end(ticket)
            if ticket.stale:
                return
        if self.ttl == 0:
            return
        self._entries[key] = (self._clock() + self.ttl, times)
        self._entries.move_to_end(key)
        self._by_salon.setdefault(key.salon_id, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: CacheKey) -> None:
        del self._entries[key]
        keys = self._by_salon.get(key.salon_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_salon[key.salon_id]

    def invalidate(
        self,
        salon_id: int,
        *,
        staff_id: int | None = None,
        day: dt.date | None = None,
        times_only: bool = False,
    ) -> int:
        """Drop the salon's entries (only one master's, or those covering one day, when
        given; only the free times, not the days lists, with ``times_only``) and make the
        matching fetches in flight stale; returns how many entries went."""

        def hit(key: CacheKey) -> bool:
            return (
                (staff_id is None or key.staff_id == staff_id)
                and (day is None or key.covers(day))
                and not (times_only and isinstance(key, DaysKey))
            )

        for ticket in [t for t in self._flying.get(salon_id, ()) if hit(t.key)]:
            ticket.stale = True
            self.end(ticket)
        doomed = [key for key in self._by_salon.get(salon_id, ()) if hit(key)]
        for key in doomed:
            self._drop(key)
        return len(doomed)
