"""The in-memory twin of :class:`~storage._retention.PgRetention` (the rule: ``_retention``)."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta

import trio

from ._fields import limit_value
from ._memory_db import MemoryDatabase
from ._memory_sent import MemorySentLedger
from ._models import (
    Direction,
    InboxEvent,
    InboxStatus,
    Message,
    MessageStatus,
    OutboxStatus,
)
from ._retention import Pruned, older_than_seconds


class MemoryRetention:
    """:class:`Retention` in memory: walks each table from its oldest row and stops at the
    first row newer than the cutoff, so a call touches about ``limit`` rows plus the old ones
    it must keep; every index of the deleted rows is updated in the same step."""

    def __init__(self, db: MemoryDatabase, sent: MemorySentLedger | None = None) -> None:
        self._db = db
        self._sent = sent

    async def prune(
        self, older_than: float, *, limit: int = 500, audit_older_than: float | None = None
    ) -> Pruned:
        await trio.lowlevel.checkpoint()
        now = self._db.clock()
        cutoff = now - timedelta(seconds=older_than_seconds(older_than))
        audit_cutoff = (
            None
            if audit_older_than is None
            else now - timedelta(seconds=older_than_seconds(audit_older_than))
        )
        limit_value(limit)
        return Pruned(
            inbox=self._prune_inbox(cutoff, limit),
            outbox=self._prune_outbox(cutoff, limit),
            messages=self._prune_messages(cutoff, limit),
            sent=0 if self._sent is None else self._sent.prune(cutoff, limit),
            token_usage=self._prune_token_usage(cutoff, limit),
            audit=0 if audit_cutoff is None else self._prune_audit(audit_cutoff, limit),
        )

    def _prune_audit(self, cutoff: datetime, limit: int) -> int:
        """The oldest audit events before the cutoff. Events are appended in time order, so
        they are a prefix of the log and of each company's list: both lose a prefix."""
        events = self._db.events
        gone = 0
        while gone < len(events) and gone < limit and events[gone].created_at < cutoff:
            gone += 1
        per_company: dict[int | None, int] = {}
        for event in events[:gone]:
            per_company[event.company_id] = per_company.get(event.company_id, 0) + 1
        del events[:gone]
        for company_id, count in per_company.items():
            mine = self._db.events_of[company_id]
            del mine[:count]
            if not mine:
                del self._db.events_of[company_id]
        return gone

    def _prune_token_usage(self, cutoff: datetime, limit: int) -> int:
        """The oldest salon-days before the cutoff's UTC date (one row per salon and day:
        a scan of them is small)."""
        before = cutoff.astimezone(UTC).date()
        usage = self._db.token_usage
        old = sorted((day, company) for company, day in usage if day < before)
        for day, company in old[:limit]:
            del usage[(company, day)]
        return min(len(old), limit)

    def _prune_inbox(self, cutoff: datetime, limit: int) -> int:
        finished = (InboxStatus.DONE.value, InboxStatus.DEAD.value)
        gone: list[InboxEvent] = []
        for event in self._db.inbox.values():  # id order: received_at order
            if event.received_at >= cutoff or len(gone) == limit:
                break
            if event.status in finished:
                gone.append(event)
        for event in gone:
            del self._db.inbox[event.id]
            self._db.inbox_keys.pop((event.company_id, event.dedupe_key), None)
        return len(gone)

    def _prune_outbox(self, cutoff: datetime, limit: int) -> int:
        finished = (OutboxStatus.DELIVERED.value, OutboxStatus.FAILED.value)
        heap, gone = self._db.outbox_finished, 0
        while heap and heap[0][0] < cutoff and gone < limit:
            at, item_id = heapq.heappop(heap)
            item = self._db.outbox.get(item_id)
            if item is None or item.status not in finished or item.updated_at != at:
                continue  # stale: reopened, changed again since, or gone
            if self._db.outbox_latest.get((item.company_id, item.kind)) == item_id:
                continue  # the newest of its company and kind stays; pushed again if superseded
            del self._db.outbox[item_id]
            if self._db.outbox_keys.get(item.idempotency_key) == item_id:
                del self._db.outbox_keys[item.idempotency_key]
            gone += 1
        return gone

    def _prune_messages(self, cutoff: datetime, limit: int) -> int:
        gone: list[Message] = []
        for message in self._db.messages.values():  # id order: created_at order
            if message.created_at >= cutoff or len(gone) == limit:
                break
            unsent = message.direction == Direction.OUTBOUND.value and (
                message.status == MessageStatus.QUEUED.value
            )
            if not unsent:
                gone.append(message)
        for message in gone:
            del self._db.messages[message.id]
            if message.wa_message_id is not None:
                key = (message.company_id, message.wa_message_id)
                if self._db.message_keys.get(key) == message.id:
                    del self._db.message_keys[key]
            mine = self._db.messages_of.get(message.company_id)
            if mine is not None:
                mine.pop(message.id, None)
                if not mine:
                    del self._db.messages_of[message.company_id]
        return len(gone)
