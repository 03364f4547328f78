"""The in-memory twin of :class:`~storage._sent.PgSentLedger` (the rules: ``_sent``)."""

from __future__ import annotations

from datetime import datetime

import trio

from . import _validate as v
from ._fields import key_text, limit_value
from ._memory_db import MemoryDatabase
from ._models import Direction, MessageStatus
from ._sent import checked


class MemorySentLedger:
    """:class:`SentLedger` in memory: rows in the order they were recorded (``sent_at`` order,
    which retention walks from the oldest)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self._rows: dict[tuple[int, str], tuple[str, datetime]] = {}
        self._of: dict[int, dict[str, None]] = {}  # company → its message ids, oldest first

    async def sent(self, company_id: int, message_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        row = self._rows.get(checked(company_id, message_id))
        return None if row is None else row[0]

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        await trio.lowlevel.checkpoint()
        key = checked(company_id, message_id)
        theirs = key_text("wa_id", wa_id)
        self._db.require_company(key[0])
        if key not in self._rows:
            self._rows[key] = (theirs, self._db.clock())
            self._of.setdefault(key[0], {})[key[1]] = None

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        await trio.lowlevel.checkpoint()
        company = v.positive_int("company_id", company_id)
        newest = list(self._of.get(company, {}))[::-1][: limit_value(limit)]
        return [self._rows[(company, ours)][0] for ours in newest]

    def prune(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` rows recorded before ``cutoff``, oldest first, keeping
        those of outbound messages still queued (retention's rule for this table)."""
        gone: list[tuple[int, str]] = []
        for key, (_, sent_at) in self._rows.items():
            if sent_at >= cutoff or len(gone) == limit:
                break
            if not self._still_queued(*key):
                gone.append(key)
        for company, ours in gone:
            del self._rows[(company, ours)]
            mine = self._of[company]
            del mine[ours]
            if not mine:
                del self._of[company]
        return len(gone)

    def _still_queued(self, company_id: int, message_id: str) -> bool:
        row_id = self._db.message_keys.get((company_id, message_id))
        if row_id is None:
            return False
        message = self._db.messages[row_id]
        return (
            message.direction == Direction.OUTBOUND.value
            and message.status == MessageStatus.QUEUED.value
        )
