"""Marks of the writes, made in this process, of what a company's status shows beside its
actor's own state — the salon's sync state and the assistant switch — so the actor can tell
whether the copy it read is still current without reading again.

Writers bracket each such write with :meth:`CompanyChanges.changing`: every ``record_sync``
made through a :class:`~storage.Storage` built by ``open_storage`` does (through
:class:`TrackedCatalog`), and so does the one writer of ``companies.ai_enabled`` (the assistant
switch route). A reader takes :meth:`CompanyChanges.mark` *before* it reads; its copy stays
current while :meth:`CompanyChanges.unchanged_since` that mark holds. A write in flight, or
one that began after the mark, makes it false, so a copy read while a write ran is never kept.

Only writes in this process are seen: where another process may write the same rows (cluster
mode), a holder must read again instead of trusting its copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from ._models import Catalog, SalonCategory, SalonDetails, SalonService, SalonStaff, SyncState
from ._protocols import SalonCatalog, StatusLike


class CompanyChanges:
    """A counter that moves at the start and the end of every tracked write, and per
    company the counter's value at its last such move (plus its writes in flight).

    Size: one entry per company this process ever wrote tracked rows of (bounded by the
    number of companies; an entry must outlive every copy read before it).
    """

    def __init__(self) -> None:
        self._clock = 0
        self._last: dict[int, int] = {}
        self._writing: dict[int, int] = {}

    def mark(self) -> int:
        """Take before reading: the copy is current while ``unchanged_since(id, mark)``."""
        return self._clock

    def unchanged_since(self, company_id: int, mark: int) -> bool:
        """No tracked write of the company's rows runs now or began since ``mark`` was taken."""
        return company_id not in self._writing and self._last.get(company_id, 0) <= mark

    def _move(self, company_id: int) -> None:
        self._clock += 1
        self._last[company_id] = self._clock

    @contextmanager
    def changing(self, company_id: int) -> Iterator[None]:
        """Bracket one tracked write of the company's rows (cancelled or failed ones too: a
        write that failed may still have committed, so copies are dropped either way)."""
        self._writing[company_id] = self._writing.get(company_id, 0) + 1
        self._move(company_id)
        try:
            yield
        finally:
            left = self._writing[company_id] - 1
            if left:
                self._writing[company_id] = left
            else:
                del self._writing[company_id]
            self._move(company_id)


class TrackedCatalog:
    """A :class:`SalonCatalog` whose ``record_sync`` is marked in :class:`CompanyChanges`;
    everything else is the wrapped catalog's."""

    def __init__(self, inner: SalonCatalog, changes: CompanyChanges) -> None:
        self.inner = inner
        self.changes = changes

    async def replace_catalog(
        self,
        company_id: int,
        details: SalonDetails | None,
        services: Sequence[SalonService],
        staff: Sequence[SalonStaff],
        categories: Sequence[SalonCategory] | None = None,
    ) -> None:
        await self.inner.replace_catalog(company_id, details, services, staff, categories)

    async def get_catalog(self, company_id: int, *, active_only: bool = True) -> Catalog:
        return await self.inner.get_catalog(company_id, active_only=active_only)

    async def record_sync(
        self, company_id: int, *, ok: bool, error: str | None = None
    ) -> SyncState:
        with self.changes.changing(company_id):
            return await self.inner.record_sync(company_id, ok=ok, error=error)

    async def get_sync_state(self, company_id: int) -> SyncState | None:
        return await self.inner.get_sync_state(company_id)

    async def list_sync_due(
        self,
        statuses: Iterable[StatusLike],
        *,
        succeeded_before: datetime,
        failed_before: datetime,
        limit: int = 100,
    ) -> list[int]:
        return await self.inner.list_sync_due(
            statuses, succeeded_before=succeeded_before, failed_before=failed_before, limit=limit
        )
