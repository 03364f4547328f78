"""The in-memory twin of :class:`~storage._synonyms.SalonSynonyms` (issue 16)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import trio

from ._synonyms import check_changes, check_company

if TYPE_CHECKING:
    from ._memory_db import MemoryDatabase

__all__ = ["MemorySynonyms"]


class MemorySynonyms:
    """:class:`SalonSynonyms` in memory: ``{(company, service): words}`` beside the twin
    database, whose companies it checks (each call atomic after one checkpoint)."""

    def __init__(self, db: MemoryDatabase) -> None:
        """The twin over ``db`` (whose companies it checks), with no words yet."""
        self._db = db
        self._words: dict[int, dict[int, tuple[str, ...]]] = {}

    async def get(self, company_id: int) -> dict[int, tuple[str, ...]]:
        """See :meth:`SalonSynonyms.get`."""
        await trio.lowlevel.checkpoint()
        cid = check_company(company_id)
        self._db.require_company(cid)
        return dict(sorted(self._words.get(cid, {}).items()))

    async def replace(
        self, company_id: int, changes: Mapping[int, Sequence[str]]
    ) -> dict[int, tuple[str, ...]]:
        """See :meth:`SalonSynonyms.replace`."""
        await trio.lowlevel.checkpoint()
        cid = check_company(company_id)
        checked = check_changes(changes)
        self._db.require_company(cid)
        held = self._words.setdefault(cid, {})
        for service_id, words in checked.items():
            if words:
                held[service_id] = words
            else:
                held.pop(service_id, None)
        return dict(sorted(held.items()))
