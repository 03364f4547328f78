# ruff: noqa: S608  -- f-strings splice only module constants
"""Retention: finished inbox and outbox rows, old messages and old audit events are deleted,
in bounded batches.

The same rule in both backends (``Storage.retention``), oldest first, at most ``limit`` rows
of each table per call, so no call holds a lock or the event loop for long:

- ``webhook_events``: ``done`` or ``dead``, received before the cutoff (a redelivery of the
  same webhook after that is new; YClients retries within hours, the retention is days);
- ``outbox``: ``delivered`` or ``failed``, last changed before the cutoff, and not the newest
  item of its company and kind: that one stays as the record that it went out, because
  callers enqueue it again by its idempotency key to make sure (a company actor re-enqueues
  its activation callback at every start; a deleted key would send the callback again);
- ``messages``: created before the cutoff, except outbound ones still ``queued`` (those are
  the actor's unsent work);
- ``whatsapp_sent`` (neonize's ledger of sent messages, ``_sent``): recorded before the
  cutoff, except the rows of outbound messages still ``queued`` (their resend is to come);
- ``assistant_token_usage`` (a salon's model tokens per local day, ``_model_usage``): days
  before the cutoff's UTC date (a salon's day is its date: at most a day's difference);
- ``marketplace_events`` (the audit log): created before a cutoff of its own,
  ``audit_older_than`` seconds (``AIADMIN_AUDIT_RETENTION_DAYS``, longer than the other
  tables' since the salon page's results count audit events of up to 90 days); kept when
  ``audit_older_than`` is not given.

Pending and in-flight rows are never deleted. The cutoff is the storage's clock (the wall
clock tests move, or the database's ``now()``) minus ``older_than`` seconds. The in-memory
twin is :mod:`storage._memory_retention`; this module loads neither trio nor a driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from . import _validate as v
from ._fields import Clock, limit_value

if TYPE_CHECKING:  # the embedded default never loads asyncpg
    import asyncpg

    from ._pg_pool import PgPool

_NOW = "COALESCE($1::timestamptz, now())"
_CUTOFF = f"{_NOW} - make_interval(secs => $2)"
_INBOX_SQL = f"""WITH gone AS (
    DELETE FROM webhook_events WHERE id IN (
        SELECT id FROM webhook_events
        WHERE status IN ('done', 'dead') AND received_at < {_CUTOFF}
        ORDER BY received_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""
_OUTBOX_SQL = f"""WITH gone AS (
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox
        WHERE status IN ('delivered', 'failed') AND updated_at < {_CUTOFF}
          AND EXISTS (SELECT 1 FROM outbox newer
                      WHERE newer.kind = outbox.kind
                        AND COALESCE(newer.company_id, 0) = COALESCE(outbox.company_id, 0)
                        AND newer.id > outbox.id)
        ORDER BY updated_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""
_MESSAGES_SQL = f"""WITH gone AS (
    DELETE FROM messages WHERE id IN (
        SELECT id FROM messages
        WHERE created_at < {_CUTOFF} AND NOT (direction = 'out' AND status = 'queued')
        ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""
_SENT_SQL = f"""WITH gone AS (
    DELETE FROM whatsapp_sent WHERE (company_id, message_id) IN (
        SELECT s.company_id, s.message_id FROM whatsapp_sent s
        WHERE s.sent_at < {_CUTOFF} AND NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.company_id = s.company_id AND m.wa_message_id = s.message_id
              AND m.direction = 'out' AND m.status = 'queued')
        ORDER BY s.sent_at, s.company_id, s.message_id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""
_TOKEN_USAGE_SQL = f"""WITH gone AS (
    DELETE FROM assistant_token_usage WHERE (company_id, day) IN (
        SELECT company_id, day FROM assistant_token_usage
        WHERE day < (({_CUTOFF}) AT TIME ZONE 'UTC')::date
        ORDER BY day, company_id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

# The audit cutoff is its own ($2: audit_older_than); events are append-only: none is in flight.
_AUDIT_SQL = f"""WITH gone AS (
    DELETE FROM marketplace_events WHERE id IN (
        SELECT id FROM marketplace_events
        WHERE created_at < {_CUTOFF}
        ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""


@dataclass(frozen=True)
class Pruned:
    """How many rows one :meth:`Retention.prune` call deleted, per table."""

    inbox: int = 0
    outbox: int = 0
    messages: int = 0
    sent: int = 0  # rows of neonize's sent-message ledger
    token_usage: int = 0  # salon-days of model token counts
    audit: int = 0  # audit events (marketplace_events)

    @property
    def total(self) -> int:
        return self.inbox + self.outbox + self.messages + self.sent + self.token_usage + self.audit

    def full(self, limit: int) -> bool:
        """Whether some table gave a whole batch (so there may be more to delete)."""
        counts = (self.inbox, self.outbox, self.messages, self.sent, self.token_usage, self.audit)
        return max(counts) >= limit


class Retention(Protocol):
    """Deletes what the retention rule allows (see the module docstring)."""

    async def prune(
        self, older_than: float, *, limit: int = 500, audit_older_than: float | None = None
    ) -> Pruned:
        """Delete at most ``limit`` rows of each table that are older than ``older_than``
        seconds and finished, and of audit events older than ``audit_older_than`` seconds
        (none when it is ``None``); returns the counts."""
        ...


def older_than_seconds(older_than: float) -> float:
    return v.positive_seconds("older_than", older_than)


class PgRetention:
    """:class:`Retention` on PostgreSQL: six short statements in one bridge crossing."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    async def prune(
        self, older_than: float, *, limit: int = 500, audit_older_than: float | None = None
    ) -> Pruned:
        age = older_than_seconds(older_than)
        audit_age = None if audit_older_than is None else older_than_seconds(audit_older_than)
        limit_value(limit)
        now = None if self._clock is None else self._clock()
        counts: tuple[int, ...] = await self._pool.run(_prune_pg, now, age, limit, audit_age)
        return Pruned(*counts)


async def _prune_pg(
    conn: asyncpg.Connection, now: datetime | None, age: float, limit: int, audit: float | None
) -> tuple[int, int, int, int, int, int]:
    """Each DELETE is its own short transaction (autocommit): no lock outlives its batch."""
    inbox = await conn.fetchval(_INBOX_SQL, now, age, limit)
    outbox = await conn.fetchval(_OUTBOX_SQL, now, age, limit)
    messages = await conn.fetchval(_MESSAGES_SQL, now, age, limit)
    sent = await conn.fetchval(_SENT_SQL, now, age, limit)
    token_usage = await conn.fetchval(_TOKEN_USAGE_SQL, now, age, limit)
    events = 0 if audit is None else await conn.fetchval(_AUDIT_SQL, now, audit, limit)
    return int(inbox), int(outbox), int(messages), int(sent), int(token_usage), int(events)
