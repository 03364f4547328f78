# ruff: noqa: S608  -- f-strings splice only module constants
"""``assistant_model_settings`` and ``assistant_token_usage`` on PostgreSQL (issue 15): the
rules are :mod:`storage._model_usage`'s; adding a call's tokens is one upsert, and so is a
partial change of the settings (only its fields, only when they differ)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from . import _validate as v
from ._errors import NotFound
from ._fields import Clock
from ._model_usage import (
    SalonModelSettings,
    TokenUsage,
    check_fields,
    check_settings,
    check_span,
    check_usage,
)
from ._pg_pool import PgPool

__all__ = ["PgModelUsage"]

NOW = "COALESCE($1::timestamptz, now())"


def _settings(rec: asyncpg.Record) -> SalonModelSettings | None:
    if rec["enabled"] is None:
        return None
    return SalonModelSettings(rec["enabled"], rec["model"], rec["daily_token_cap"])


def _usage(day: date, rec: asyncpg.Record | None) -> TokenUsage:
    if rec is None or rec["prompt_tokens"] is None:
        return TokenUsage(day)
    return TokenUsage(day, rec["prompt_tokens"], rec["completion_tokens"], rec["calls"])


# One row per existing company (none: no such company), the settings and the day's usage
# joined on (NULLs when absent).
_CURRENT = """SELECT m.enabled, m.model, m.daily_token_cap,
                     u.prompt_tokens, u.completion_tokens, u.calls
                FROM companies c
                LEFT JOIN assistant_model_settings m ON m.company_id = c.id
                LEFT JOIN assistant_token_usage u ON u.company_id = c.id AND u.day = $2
               WHERE c.id = $1"""


async def _one(conn: asyncpg.Connection, company_id: int, day: date) -> asyncpg.Record:
    rec = await conn.fetchrow(_CURRENT, company_id, day)
    if rec is None:
        raise NotFound(f"company {company_id}")
    return rec


async def _settings_row(conn: asyncpg.Connection, company_id: int) -> asyncpg.Record:
    rec = await conn.fetchrow(
        """SELECT m.enabled, m.model, m.daily_token_cap
             FROM companies c
             LEFT JOIN assistant_model_settings m ON m.company_id = c.id
            WHERE c.id = $1""",
        company_id,
    )
    if rec is None:
        raise NotFound(f"company {company_id}")
    return rec


async def _history(
    conn: asyncpg.Connection, company_id: int, first: date, last: date
) -> list[asyncpg.Record]:
    recs: list[asyncpg.Record] = await conn.fetch(
        """SELECT day, prompt_tokens, completion_tokens, calls FROM assistant_token_usage
            WHERE company_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day DESC""",
        company_id,
        first,
        last,
    )
    if not recs:
        await _settings_row(conn, company_id)  # NotFound for an unknown company
    return recs


async def _put(conn: asyncpg.Connection, now: Any, company_id: int, s: SalonModelSettings) -> None:
    try:
        await conn.execute(
            f"""INSERT INTO assistant_model_settings
                    (company_id, enabled, model, daily_token_cap, updated_at)
                VALUES ($2, $3, $4, $5, {NOW})
                ON CONFLICT (company_id) DO UPDATE SET enabled = EXCLUDED.enabled,
                    model = EXCLUDED.model, daily_token_cap = EXCLUDED.daily_token_cap,
                    updated_at = EXCLUDED.updated_at""",
            now,
            company_id,
            s.enabled,
            s.model,
            s.daily_token_cap,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"company {company_id}") from None


# Insert the whole choice (defaults + change) for a salon that never chose; else set only the
# given fields ($6-$8), and only when one of them differs: no row back means nothing changed.
_UPDATE = f"""INSERT INTO assistant_model_settings AS m
                  (company_id, enabled, model, daily_token_cap, updated_at)
              VALUES ($2, $3, $4, $5, {NOW})
              ON CONFLICT (company_id) DO UPDATE SET
                  enabled = CASE WHEN $6 THEN EXCLUDED.enabled ELSE m.enabled END,
                  model = CASE WHEN $7 THEN EXCLUDED.model ELSE m.model END,
                  daily_token_cap = CASE WHEN $8 THEN EXCLUDED.daily_token_cap
                                         ELSE m.daily_token_cap END,
                  updated_at = EXCLUDED.updated_at
              WHERE ($6 AND m.enabled IS DISTINCT FROM EXCLUDED.enabled)
                 OR ($7 AND m.model IS DISTINCT FROM EXCLUDED.model)
                 OR ($8 AND m.daily_token_cap IS DISTINCT FROM EXCLUDED.daily_token_cap)
              RETURNING m.enabled, m.model, m.daily_token_cap"""


async def _update(
    conn: asyncpg.Connection,
    now: Any,
    company_id: int,
    s: SalonModelSettings,
    fields: frozenset[str],
) -> tuple[asyncpg.Record, bool]:
    try:
        rec = await conn.fetchrow(
            _UPDATE,
            now,
            company_id,
            s.enabled,
            s.model,
            s.daily_token_cap,
            "enabled" in fields,
            "model" in fields,
            "daily_token_cap" in fields,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"company {company_id}") from None
    if rec is not None:
        return rec, True
    return await _settings_row(conn, company_id), False  # unchanged: the row as it is


async def _add(
    conn: asyncpg.Connection, now: Any, company_id: int, day: date, prompt: int, completion: int
) -> asyncpg.Record:
    try:
        rec: asyncpg.Record = await conn.fetchrow(
            f"""INSERT INTO assistant_token_usage AS t
                    (company_id, day, prompt_tokens, completion_tokens, calls, updated_at)
                VALUES ($2, $3, $4, $5, 1, {NOW})
                ON CONFLICT (company_id, day) DO UPDATE SET
                    prompt_tokens = t.prompt_tokens + EXCLUDED.prompt_tokens,
                    completion_tokens = t.completion_tokens + EXCLUDED.completion_tokens,
                    calls = t.calls + 1, updated_at = EXCLUDED.updated_at
                RETURNING prompt_tokens, completion_tokens, calls""",
            now,
            company_id,
            day,
            prompt,
            completion,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"company {company_id}") from None
    return rec


class PgModelUsage:
    """:class:`~storage._model_usage.ModelUsageStore` on PostgreSQL."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> Any:
        return None if self._clock is None else self._clock()

    async def get_settings(self, company_id: int) -> SalonModelSettings | None:
        company_id = v.positive_int("company_id", company_id)
        rec = await self._pool.run(_settings_row, company_id)
        return _settings(rec)

    async def put_settings(self, company_id: int, settings: SalonModelSettings) -> None:
        company_id = v.positive_int("company_id", company_id)
        check_settings(settings)
        await self._pool.run(_put, self._now(), company_id, settings)

    async def update_settings(
        self, company_id: int, settings: SalonModelSettings, fields: frozenset[str]
    ) -> tuple[SalonModelSettings, bool]:
        company_id = v.positive_int("company_id", company_id)
        check_settings(settings)
        check_fields(fields)
        rec, changed = await self._pool.run(_update, self._now(), company_id, settings, fields)
        # the row exists once the upsert ran (inserted, updated, or found unchanged)
        return SalonModelSettings(rec["enabled"], rec["model"], rec["daily_token_cap"]), changed

    async def current(
        self, company_id: int, day: date
    ) -> tuple[SalonModelSettings | None, TokenUsage]:
        company_id = v.positive_int("company_id", company_id)
        day = check_usage(day, 0, 0)
        rec = await self._pool.run(_one, company_id, day)
        return _settings(rec), _usage(day, rec)

    async def usage(self, company_id: int, day: date) -> TokenUsage:
        _, used = await self.current(company_id, day)
        return used

    async def add_usage(
        self, company_id: int, day: date, prompt_tokens: int, completion_tokens: int
    ) -> TokenUsage:
        company_id = v.positive_int("company_id", company_id)
        day = check_usage(day, prompt_tokens, completion_tokens)
        rec = await self._pool.run(
            _add, self._now(), company_id, day, prompt_tokens, completion_tokens
        )
        return _usage(day, rec)

    async def history(self, company_id: int, first: date, last: date) -> list[TokenUsage]:
        company_id = v.positive_int("company_id", company_id)
        start, end = check_span(first, last)
        recs = await self._pool.run(_history, company_id, start, end)
        return [_usage(rec["day"], rec) for rec in recs]
