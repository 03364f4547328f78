"""``sent``: neonize's ledger of sent messages, per company (table ``whatsapp_sent``, issue 13).

neonize's ``send_message`` cannot carry our message id, so WhatsApp cannot tell a resend from a
new message. The session records ``our id → WhatsApp id`` the moment WhatsApp took a message
and answers a resend of a recorded id from the ledger, without sending. Resends come after an
outcome was lost: a session host died or a command timed out after the send, or the owning
process died before it marked the message sent, and the salon's next owner sends its queue
again with the same ids.

:class:`PgSentLedger` keeps it in PostgreSQL (``AIADMIN_WHATSAPP_STORE=postgres``), so it moves
with the salon: a session started on another process or machine sees what the previous owner
sent. :class:`~storage._memory_sent.MemorySentLedger` is the in-memory twin of the embedded
default. (The ``files``
store keeps a file per company beside its credentials: ``actors.whatsapp._ledger``.)
Retention (``Storage.retention``) deletes rows older than its cutoff, except those of outbound
messages still queued: their resend is still to come. This module loads neither trio nor a
driver.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from . import _validate as v
from ._fields import Clock, key_text, limit_value

if TYPE_CHECKING:  # the embedded default never loads asyncpg
    import asyncpg

    from ._pg_pool import PgPool


class SentLedger(Protocol):
    """Which of a company's message ids WhatsApp already took, and as which WhatsApp id."""

    async def sent(self, company_id: int, message_id: str) -> str | None:
        """The WhatsApp id ``message_id`` went out as, or ``None`` when it never went out."""
        ...

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        """Record that ``message_id`` went out as ``wa_id``; a second record of the same id
        keeps the first. :class:`NotFound` for an unknown company."""
        ...

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        """The WhatsApp ids of the company's newest ``limit`` sends, newest first (a session
        recognises its own messages echoed back by them)."""
        ...


def checked(company_id: int, message_id: str) -> tuple[int, str]:
    """The ledger's key, validated (:class:`ValidationError` for a bad id, before any I/O)."""
    return v.positive_int("company_id", company_id), key_text("message_id", message_id)


class PgSentLedger:
    """:class:`SentLedger` on PostgreSQL: one short statement per call."""

    def __init__(self, pool: PgPool, clock: Clock | None = None) -> None:
        self._pool = pool
        self._clock = clock

    async def sent(self, company_id: int, message_id: str) -> str | None:
        company, ours = checked(company_id, message_id)
        wa_id: str | None = await self._pool.run(_sent_pg, company, ours)
        return wa_id

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        company, ours = checked(company_id, message_id)
        theirs = key_text("wa_id", wa_id)
        now = None if self._clock is None else self._clock()
        await self._pool.run(_record_pg, company, ours, theirs, now)

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        company = v.positive_int("company_id", company_id)
        ids: list[str] = await self._pool.run(_recent_pg, company, limit_value(limit))
        return ids


async def _sent_pg(conn: asyncpg.Connection, company_id: int, message_id: str) -> str | None:
    wa_id: str | None = await conn.fetchval(
        "SELECT wa_id FROM whatsapp_sent WHERE company_id = $1 AND message_id = $2",
        company_id,
        message_id,
    )
    return wa_id


async def _record_pg(
    conn: asyncpg.Connection, company_id: int, message_id: str, wa_id: str, now: datetime | None
) -> None:
    await conn.execute(
        """INSERT INTO whatsapp_sent (company_id, message_id, wa_id, sent_at)
           VALUES ($1, $2, $3, COALESCE($4::timestamptz, now()))
           ON CONFLICT (company_id, message_id) DO NOTHING""",
        company_id,
        message_id,
        wa_id,
        now,
    )


async def _recent_pg(conn: asyncpg.Connection, company_id: int, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT wa_id FROM whatsapp_sent WHERE company_id = $1 ORDER BY sent_at DESC LIMIT $2",
        company_id,
        limit,
    )
    return [str(r["wa_id"]) for r in rows]
