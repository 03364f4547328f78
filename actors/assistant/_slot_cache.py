"""Free start times as YClients gave them, kept briefly per (salon, master, date, services).

Every salon of the partner shares one YClients limit (5/s, 200/min), so two clients asking
about the same master's Friday within a minute cost one ``book_times`` call, not two. An
entry lives ``ttl`` seconds at most; a record webhook for the salon, and every booking, move
or cancellation of ours, drops the salon's entries (or one master's day) at once, so a time
someone just took is not offered from the cache. The cache is bounded: the oldest entries go
first when it is full.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SlotCache", "SlotKey"]

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


class SlotCache:
    """A small TTL cache of ``book_times`` answers (see the module docstring).

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
        self._entries: collections.OrderedDict[SlotKey, tuple[float, tuple[Any, ...]]] = (
            collections.OrderedDict()
        )
        self._by_salon: dict[int, set[SlotKey]] = {}  # so a webhook scans one salon's keys
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: SlotKey) -> tuple[Any, ...] | None:
        """The cached answer, or ``None`` when absent or older than ``ttl``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, key: SlotKey, times: tuple[Any, ...]) -> None:
        """Keep ``times`` for ``key`` for ``ttl`` seconds (evicting the oldest when full)."""
        if self.ttl == 0:
            return
        self._entries[key] = (self._clock() + self.ttl, times)
        self._entries.move_to_end(key)
        self._by_salon.setdefault(key.salon_id, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: SlotKey) -> None:
        del self._entries[key]
        keys = self._by_salon.get(key.salon_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_salon[key.salon_id]

    def invalidate(
        self, salon_id: int, *, staff_id: int | None = None, day: dt.date | None = None
    ) -> int:
        """Drop the salon's entries (only one master's, or one day's, when given); returns
        how many went."""
        doomed = [
            key
            for key in self._by_salon.get(salon_id, ())
            if (staff_id is None or key.staff_id == staff_id) and (day is None or key.day == day)
        ]
        for key in doomed:
            self._drop(key)
        return len(doomed)
