"""Which companies ``list_sync_due`` must look at, for the in-memory catalog twin.

The catalog sync polls ``list_sync_due`` every 30 s; reading every company each time costs
~9 ms at 20,000 salons. This index narrows the read to the companies that can be due, per
integration status (the poll asks for a few statuses):

- ``never``: companies of the status without a sync attempt (always due), in id order;
- a min-heap of ``(last_attempt_at, id)``: a company is due only if its last attempt is older
  than one of the poll's two cutoffs, so only entries below the later cutoff are visited;
- ``odd``: the few companies whose last attempt failed without an error text (their last
  success, not their last attempt, decides), looked at every time.

Entries are never trusted: the caller checks each candidate against the stored rows exactly
as before, so a stale entry (the company synced again, or changed status) costs a visit, never
a wrong answer. A heap is rebuilt from the live rows once it holds more than twice as many
entries as its status has companies.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime

from ._models import SyncState

#: Slack before a heap is rebuilt (so a small status is not rebuilt at every push).
_SLACK = 64


def attempted(state: SyncState | None) -> datetime | None:
    """The moment of the last sync attempt, ``None`` when there was none."""
    return None if state is None else state.last_attempt_at


def is_odd(state: SyncState | None) -> bool:
    """A failed attempt without an error text: its last success decides, not the attempt."""
    return (
        state is not None
        and state.last_attempt_at is not None
        and state.last_error is None
        and state.last_success_at != state.last_attempt_at
    )


class SyncDueIndex:
    """Candidates for ``list_sync_due`` by status (see the module docstring)."""

    def __init__(self) -> None:
        self._never: dict[str, dict[int, None]] = {}
        self._heaps: dict[str, list[tuple[datetime, int]]] = {}
        self.odd: dict[int, None] = {}

    def place(self, company_id: int, status: str, state: SyncState | None) -> None:
        """Record ``company_id`` under ``status`` with its current sync state (a new company,
        a sync just recorded, or a status change)."""
        moment = attempted(state)
        if moment is None:
            self._never.setdefault(status, {})[company_id] = None
        else:
            heapq.heappush(self._heaps.setdefault(status, []), (moment, company_id))
        if is_odd(state):
            self.odd[company_id] = None
        else:
            self.odd.pop(company_id, None)

    def leave(self, company_id: int, status: str) -> None:
        """``company_id`` is no longer under ``status`` or was attempted since (heap entries
        go stale by themselves)."""
        never = self._never.get(status)
        if never is not None:
            never.pop(company_id, None)

    def candidates(
        self,
        statuses: Iterable[str],
        before: datetime,
        companies_in: Callable[[str], int],
        rebuild: Callable[[str], list[tuple[datetime, int]]],
    ) -> dict[int, None]:
        """Every company of ``statuses`` that may be due with cutoffs up to ``before`` (and
        some that are not: the caller checks each). ``companies_in(status)`` counts the
        status's companies; ``rebuild(status)`` lists its live heap entries."""
        found: dict[int, None] = dict.fromkeys(self.odd)
        for status in statuses:
            found.update(self._never.get(status, {}))
            heap = self._heaps.get(status)
            if not heap:
                continue
            if len(heap) > 2 * companies_in(status) + _SLACK:
                heap = self._heaps[status] = rebuild(status)
                heapq.heapify(heap)
            stack = [0]
            while stack:
                at = stack.pop()
                if at >= len(heap) or heap[at][0] >= before:
                    continue
                found[heap[at][1]] = None
                stack.extend((2 * at + 1, 2 * at + 2))
        return found
