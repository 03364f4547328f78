"""The retention service: deletes finished inbox and outbox rows, old messages, old rows of
neonize's sent-message ledger, old days of the salons' model token counts and, on a longer
retention of their own, old audit events, hourly.

Without it the webhook inbox, the outbox and the message log only grow (issue 17): every
event ever received stays, in memory for the embedded default and in PostgreSQL otherwise.
:class:`RetentionService` is a node child (``storage.retention``) that calls
``Storage.retention.prune`` every ``interval`` seconds; each call deletes at most ``batch``
rows of each table (one short statement per table on PostgreSQL, one synchronous step in
memory), and a pass repeats calls, yielding between them, until a call finds less than a full
batch. So no pass holds a lock or the event loop for long. Several nodes of a cluster may run
it at once: PostgreSQL batches skip rows another node is deleting.
"""

from __future__ import annotations

import logging

import trio

from storage import Storage

__all__ = ["RETENTION_BATCH", "RETENTION_INTERVAL", "RetentionService"]

log = logging.getLogger(__name__)

#: Seconds between two passes (rows live days: hourly is plenty).
RETENTION_INTERVAL = 3600.0
#: Rows of each table deleted per storage call.
RETENTION_BATCH = 500
DAY = 86_400.0


class RetentionService:
    """Prunes ``storage`` every ``interval`` seconds, keeping ``keep_days`` of history and
    ``audit_keep_days`` of audit events (all of them when ``None``)."""

    def __init__(
        self,
        storage: Storage,
        *,
        keep_days: float,
        audit_keep_days: float | None = None,
        interval: float = RETENTION_INTERVAL,
        batch: int = RETENTION_BATCH,
    ) -> None:
        if keep_days <= 0 or interval <= 0 or batch <= 0:
            raise ValueError("keep_days, interval and batch must be > 0")
        if audit_keep_days is not None and audit_keep_days <= 0:
            raise ValueError("audit_keep_days must be > 0")
        self.storage = storage
        self.keep_days = keep_days
        self.audit_keep_days = audit_keep_days
        self.interval = interval
        self.batch = batch
        self.passes = 0
        self.deleted = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Prune now and then every ``interval`` seconds, until cancelled. A storage error
        crashes the pass (the node restarts the service)."""
        task_status.started()
        while True:
            await self.prune()
            await trio.sleep(self.interval)

    async def prune(self) -> int:
        """One pass: delete everything the retention rule allows; returns how many rows."""
        total = 0
        audit = None if self.audit_keep_days is None else self.audit_keep_days * DAY
        while True:
            pruned = await self.storage.retention.prune(
                self.keep_days * DAY, limit=self.batch, audit_older_than=audit
            )
            total += pruned.total
            if not pruned.full(self.batch):
                break  # (each prune call is a checkpoint: requests run between batches)
        self.passes += 1
        self.deleted += total
        if total:
            log.info("retention: deleted %d rows older than %g days", total, self.keep_days)
        return total
