"""Company ids in id order, all and per integration status, for the in-memory twin's
``list_by_status``: PostgreSQL pages through ``companies_pkey`` and
``idx_companies_integration_status (integration_status, id)``; this is the same two indexes.

A page is a binary search for ``after_id`` and a slice of ``limit`` ids, so reading page
after page of 20,000 salons costs the page, not the table. Company ids only grow and rows are
never deleted, so :attr:`StatusIds.all` is appended to; a status change moves one id between
two sorted lists (``bisect``).
"""

from __future__ import annotations

import bisect


class StatusIds:
    """Sorted company ids: every one (:attr:`all`) and those of each status."""

    def __init__(self) -> None:
        self.all: list[int] = []
        self._by_status: dict[str, list[int]] = {}

    def add(self, company_id: int, status: str) -> None:
        """A new company (its id is larger than every id before it)."""
        if self.all and company_id <= self.all[-1]:
            bisect.insort(self.all, company_id)
        else:
            self.all.append(company_id)
        bisect.insort(self._by_status.setdefault(status, []), company_id)

    def move(self, company_id: int, old: str, new: str) -> None:
        """``company_id``'s status changed from ``old`` to ``new``."""
        ids = self._by_status.get(old)
        if ids is not None:
            at = bisect.bisect_left(ids, company_id)
            if at < len(ids) and ids[at] == company_id:
                del ids[at]
            if not ids:
                del self._by_status[old]
        bisect.insort(self._by_status.setdefault(new, []), company_id)

    def page(self, status: str | None, after_id: int, limit: int) -> list[int]:
        """Up to ``limit`` ids above ``after_id`` (of ``status``, when given), ascending."""
        ids = self.all if status is None else self._by_status.get(status, [])
        start = bisect.bisect_right(ids, after_id)
        return ids[start : start + limit]
