"""A min-heap of "becomes due at" moments by row id, for the in-memory reminders twin.

PostgreSQL answers ``next_due``/``backlog``/``claim_due`` from an index on the due moment; this
is the same for the twin, so the scheduler's loop touches only the rows that are due instead
of every reminder ever planned. Entries are replaced lazily: :meth:`set` records a row's
current moment and pushes it; an entry whose moment is no longer the row's is stale, skipped
when met and dropped when the heap is rebuilt (once stale entries outnumber live ones).
"""

from __future__ import annotations

import heapq
from datetime import datetime

#: Rebuild once the heap holds this many more entries than twice the live rows.
_SLACK = 64


class DueIndex:
    """Row ids by the moment they become due (one live entry per id)."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int]] = []
        self._moment: dict[int, datetime] = {}

    def __len__(self) -> int:
        return len(self._moment)

    def set(self, row_id: int, moment: datetime | None) -> None:
        """Record that ``row_id`` becomes due at ``moment`` (``None``: never by itself)."""
        if moment is None:
            self._moment.pop(row_id, None)
            return
        if self._moment.get(row_id) == moment:
            return
        self._moment[row_id] = moment
        heapq.heappush(self._heap, (moment, row_id))
        if len(self._heap) > 2 * len(self._moment) + _SLACK:
            self._heap = [(m, i) for i, m in self._moment.items()]
            heapq.heapify(self._heap)

    def _live(self, entry: tuple[datetime, int]) -> bool:
        return self._moment.get(entry[1]) == entry[0]

    def first(self) -> datetime | None:
        """The earliest moment of any row, dropping stale entries on the way."""
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: datetime) -> list[int]:
        """Ids of the rows due by ``now`` (any order), visiting only heap entries ≤ ``now``."""
        heap, stack = self._heap, [0]
        found: dict[int, None] = {}  # a moment set again after a change may sit twice
        while stack:
            at = stack.pop()
            if at >= len(heap) or heap[at][0] > now:
                continue
            if self._live(heap[at]):
                found[heap[at][1]] = None
            stack.extend((2 * at + 1, 2 * at + 2))
        return list(found)
