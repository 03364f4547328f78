# ruff: noqa: S608  -- f-strings splice only module constants
"""``salon_synonyms`` on PostgreSQL (issue 16): the rules are :mod:`storage._synonyms`'s; a
change of several services is one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ._errors import NotFound
from ._fields import Clock
from ._pg_pool import PgPool
from ._synonyms import check_changes, check_company

__all__ = ["PgSynonyms"]

NOW = "COALESCE($1::timestamptz, now())"
_SELECT = "SELECT service_id, words FROM salon_synonyms WHERE company_id = $1 ORDER BY service_id"


def _mapping(recs: list[asyncpg.Record]) -> dict[int, tuple[str, ...]]:
    """``{service_id: words}`` of the rows read."""
    return {int(r["service_id"]): tuple(r["words"]) for r in recs}


async def _require_company(conn: asyncpg.Connection, company_id: int, *, lock: bool) -> None:
    """:class:`NotFound` unless the company exists (``lock``: held for the transaction)."""
    sql = "SELECT id FROM companies WHERE id = $1" + (" FOR SHARE" if lock else "")
    if await conn.fetchval(sql, company_id) is None:
        raise NotFound(f"company {company_id}")


async def _get(conn: asyncpg.Connection, company_id: int) -> list[asyncpg.Record]:
    """The company's rows; :class:`NotFound` for an unknown company."""
    recs: list[asyncpg.Record] = await conn.fetch(_SELECT, company_id)
    if not recs:
        await _require_company(conn, company_id, lock=False)
    return recs


async def _replace(
    conn: asyncpg.Connection, now: Any, company_id: int, changes: dict[int, tuple[str, ...]]
) -> list[asyncpg.Record]:
    """One transaction: drop the emptied services' rows, upsert the others, read all back."""
    await _require_company(conn, company_id, lock=True)
    gone = [sid for sid, words in changes.items() if not words]
    kept = [{"service_id": sid, "words": list(w)} for sid, w in changes.items() if w]
    if gone:
        await conn.execute(
            "DELETE FROM salon_synonyms WHERE company_id = $1 AND service_id = ANY($2::int[])",
            company_id,
            gone,
        )
    if kept:
        # One JSON array of rows: a text[] column cannot go through unnest (it flattens).
        await conn.execute(
            f"""INSERT INTO salon_synonyms (company_id, service_id, words, updated_at)
                SELECT $2, s.service_id, s.words, {NOW}
                  FROM jsonb_to_recordset($3::jsonb) AS s(service_id int, words text[])
                ON CONFLICT (company_id, service_id) DO UPDATE SET
                    words = EXCLUDED.words, updated_at = EXCLUDED.updated_at""",
            now,
            company_id,
            kept,
        )
    recs: list[asyncpg.Record] = await conn.fetch(_SELECT, company_id)
    return recs


class PgSynonyms:
    """:class:`SalonSynonyms` on PostgreSQL (one unit of work per call)."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        """The repository over ``pool``; ``clock`` overrides ``now()`` (tests)."""
        self._pool = pool
        self._clock = clock

    async def get(self, company_id: int) -> dict[int, tuple[str, ...]]:
        """See :meth:`SalonSynonyms.get`."""
        cid = check_company(company_id)
        return _mapping(await self._pool.run(_get, cid))

    async def replace(
        self, company_id: int, changes: Mapping[int, Sequence[str]]
    ) -> dict[int, tuple[str, ...]]:
        """See :meth:`SalonSynonyms.replace`."""
        cid = check_company(company_id)
        checked = check_changes(changes)
        now = None if self._clock is None else self._clock()
        return _mapping(await self._pool.transaction(_replace, now, cid, checked))
