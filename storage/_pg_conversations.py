# ruff: noqa: S608  -- f-strings splice only module constants
"""``conversations`` on PostgreSQL: the rules (optimistic versions, order, search) are in
``_conversations``; each call here is one unit of work (one bridge crossing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from . import _validate as v
from ._conversations import check_cursor, check_mode, check_phone, check_version, search_terms
from ._errors import Conflict, NotFound, ValidationError
from ._fields import Clock, limit_value
from ._models import Conversation, ConversationMode
from ._pg_pool import PgPool

NOW = "COALESCE($1::timestamptz, now())"
COLUMNS = (
    "company_id, phone, mode, state, version, client_name, mode_until, needs_person, "
    "last_message_at, created_at, updated_at"
)
#: The list's sort key (the expression ``idx_conversations_recent`` indexes).
RECENT = "COALESCE(last_message_at, updated_at)"


def _row(rec: asyncpg.Record) -> Conversation:
    fields = dict(rec.items())
    fields["mode"] = ConversationMode(fields["mode"])
    return Conversation(**fields)


async def _get(conn: asyncpg.Connection, company_id: int, phone: str) -> Any:
    return await conn.fetchrow(
        f"""SELECT c.id AS known, {", ".join("v." + n for n in COLUMNS.split(", "))}
            FROM companies c LEFT JOIN conversations v
              ON v.company_id = c.id AND v.phone = $2
            WHERE c.id = $1""",
        company_id,
        phone,
    )


async def _save(
    conn: asyncpg.Connection,
    now: Any,
    company_id: int,
    phone: str,
    state: dict[str, Any],
    expected: int,
    client_name: str | None,
    last_message_at: datetime | None,
) -> asyncpg.Record:
    if expected == 0:
        rec = await conn.fetchrow(
            f"""INSERT INTO conversations (company_id, phone, state, version, client_name,
                    last_message_at, created_at, updated_at)
                VALUES ($2, $3, $4, 1, $5, $6, {NOW}, {NOW})
                ON CONFLICT (company_id, phone) DO NOTHING
                RETURNING {COLUMNS}""",
            now,
            company_id,
            phone,
            state,
            client_name,
            last_message_at,
        )
    else:
        rec = await conn.fetchrow(
            f"""UPDATE conversations SET state = $4, version = version + 1,
                client_name = COALESCE($5, client_name),
                last_message_at = COALESCE($6, last_message_at), updated_at = {NOW}
            WHERE company_id = $2 AND phone = $3 AND version = $7
            RETURNING {COLUMNS}""",
            now,
            company_id,
            phone,
            state,
            client_name,
            last_message_at,
            expected,
        )
    if rec is None:
        if not await _company_exists(conn, company_id):
            raise NotFound(f"company {company_id}")
        raise Conflict(f"conversation {phone} is not at version {expected}")
    return rec


async def _company_exists(conn: asyncpg.Connection, company_id: int) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)", company_id)
    )


class PgConversations:
    """:class:`Conversations` on PostgreSQL (one unit of work per call)."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> Any:
        return None if self._clock is None else self._clock()

    async def get(self, company_id: int, phone: str) -> Conversation | None:
        rec = await self._pool.run(_get, company_id, check_phone(phone))
        if rec is None:
            raise NotFound(f"company {company_id}")
        if rec["phone"] is None:
            return None
        fields = dict(rec.items())
        del fields["known"]
        fields["mode"] = ConversationMode(fields["mode"])
        return Conversation(**fields)

    async def get_many(
        self, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Conversation]:
        checked = [(company_id, check_phone(phone)) for company_id, phone in keys]
        if not checked:
            return {}
        recs = await self._pool.run(
            _fetch,
            f"""SELECT {COLUMNS} FROM conversations
                WHERE (company_id, phone) IN (SELECT * FROM unnest($1::int[], $2::text[]))""",
            [company_id for company_id, _ in checked],
            [phone for _, phone in checked],
        )
        found = (_row(rec) for rec in recs)
        return {(row.company_id, row.phone): row for row in found}

    async def save(
        self,
        company_id: int,
        phone: str,
        *,
        state: dict[str, Any],
        expected_version: int,
        client_name: str | None = None,
        last_message_at: datetime | None = None,
    ) -> Conversation:
        number = check_phone(phone)
        body = v.json_object("state", state)
        expected = check_version(expected_version)
        name = v.optional_text("client_name", client_name, 255)
        at = v.timestamp("last_message_at", last_message_at)
        rec = await self._pool.run(_save, self._now(), company_id, number, body, expected, name, at)
        return _row(rec)

    async def set_mode(
        self,
        company_id: int,
        phone: str,
        mode: ConversationMode,
        *,
        until: datetime | None = None,
        needs_person: bool | None = None,
    ) -> Conversation:
        number = check_phone(phone)
        wanted = check_mode(mode)
        ends = v.timestamp("until", until)
        person = None if needs_person is None else v.boolean("needs_person", needs_person)
        sql = f"""INSERT INTO conversations AS c (company_id, phone, mode, mode_until,
                      needs_person, created_at, updated_at)
                  VALUES ($2, $3, $4, $5, COALESCE($6, false), {NOW}, {NOW})
                  ON CONFLICT (company_id, phone) DO UPDATE SET mode = EXCLUDED.mode,
                      mode_until = EXCLUDED.mode_until,
                      needs_person = COALESCE($6, c.needs_person),
                      version = c.version + 1, updated_at = EXCLUDED.updated_at
                  RETURNING {COLUMNS}"""
        rec = await self._pool.run(
            _fetchrow, sql, self._now(), company_id, number, wanted.value, ends, person
        )
        return _row(rec)

    async def list(
        self,
        company_id: int,
        *,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
        mode: ConversationMode | None = None,
        needs_person: bool | None = None,
        search: str | None = None,
    ) -> list[Conversation]:
        limit_value(limit)
        cursor = check_cursor(before)
        wanted = None if mode is None else check_mode(mode).value
        person = None if needs_person is None else v.boolean("needs_person", needs_person)
        digits, name = search_terms(search)
        sql = f"""SELECT {COLUMNS} FROM conversations
                  WHERE company_id = $1
                    AND ($2::timestamptz IS NULL OR ({RECENT}, phone) < ($2, $3::text))
                    AND ($4::text IS NULL OR mode = $4)
                    AND ($5::bool IS NULL OR needs_person = $5)
                    AND ($7::text IS NULL
                         OR ($6::text IS NOT NULL AND strpos(phone, $6) > 0)
                         OR strpos(lower(client_name), $7) > 0)
                  ORDER BY {RECENT} DESC, phone DESC LIMIT $8"""
        recs: list[Conversation] = await self._pool.run(
            _list,
            sql,
            company_id,
            None if cursor is None else cursor[0],
            None if cursor is None else cursor[1],
            wanted,
            person,
            digits,
            name,
            limit,
        )
        return recs

    async def expire_idle(self, idle_before: datetime, *, limit: int = 500) -> int:
        limit_value(limit)
        cutoff = v.timestamp("idle_before", idle_before)
        if cutoff is None:
            raise ValidationError("idle_before", "must be a timezone-aware datetime")
        sql = """WITH idle AS (
                     SELECT company_id, phone FROM conversations
                     WHERE updated_at < $1 AND state <> '{}'::jsonb
                     ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE conversations c SET state = '{}'::jsonb, version = c.version + 1
                 FROM idle WHERE c.company_id = idle.company_id AND c.phone = idle.phone
                 RETURNING c.phone"""
        recs = await self._pool.run(_fetch, sql, cutoff, limit)
        return len(recs)


async def _list(
    conn: asyncpg.Connection, sql: str, company_id: int, *args: Any
) -> list[Conversation]:
    """One crossing: the page, and whether the company exists when the page is empty."""
    recs = await conn.fetch(sql, company_id, *args)
    if not recs and not await _company_exists(conn, company_id):
        raise NotFound(f"company {company_id}")
    return [_row(r) for r in recs]


async def _fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchrow(sql, *args)


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    result: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return result
