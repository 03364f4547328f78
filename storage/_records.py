# ruff: noqa: S608  -- f-strings splice only module constants
"""``salon_records``: our copy of each salon's YClients records, on PostgreSQL and in memory.

Webhooks can arrive twice and out of order, so a write is applied only when it is not older
than what is stored (:func:`supersedes`, mirrored in SQL):

- both sides carry a change time (YClients' ``last_change_date``): the newer one wins; on a
  tie the write is applied (a redelivery of the same change is harmless) unless it would
  bring a deleted record back;
- either side lacks a change time: the write is applied unless it would bring a deleted
  record back (a deletion is sticky until a strictly newer change proves otherwise).

A stored change time is never replaced by "unknown" (``COALESCE``). Rows are never deleted.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from . import _validate as v
from ._errors import ValidationError
from ._fields import Clock, limit_value
from ._models import SalonRecord

if TYPE_CHECKING:  # annotations only: the in-memory twin loads no PostgreSQL driver
    import asyncpg

    from ._memory_db import MemoryDatabase
    from ._pg_pool import PgPool

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = "COALESCE($1::timestamptz, now())"
RECORD_COLUMNS = (
    "company_id, record_id, client_id, client_phone, client_name, staff_id, services, "
    "starts_at, seance_length, attendance, deleted, api_id, changed_at, raw, updated_at"
)

# A keyset page of :meth:`list_for_company` from ``starting_after`` ($2), after ``after_id``
# ($3) at that very moment: "starts_at >= $2" is what the (company_id, starts_at) index reads.
_FROM = f"""SELECT {RECORD_COLUMNS} FROM salon_records
    WHERE company_id = $1 AND {{deleted}}
      AND starts_at >= $2 AND (starts_at > $2 OR record_id > $3)
    ORDER BY starts_at, record_id LIMIT $4"""
_FROM_LIVE = _FROM.format(deleted="NOT deleted")
_FROM_ALL = _FROM.format(deleted="true")

# The rule of :func:`supersedes` with ``r`` the stored row and ``EXCLUDED`` the write.
_APPLIES = """(
    (r.changed_at IS NOT NULL AND EXCLUDED.changed_at IS NOT NULL AND (
        EXCLUDED.changed_at > r.changed_at
        OR (EXCLUDED.changed_at = r.changed_at AND (EXCLUDED.deleted OR NOT r.deleted))))
    OR ((r.changed_at IS NULL OR EXCLUDED.changed_at IS NULL)
        AND (EXCLUDED.deleted OR NOT r.deleted)))"""


def supersedes(
    new_changed: datetime | None,
    new_deleted: bool,
    old_changed: datetime | None,
    old_deleted: bool,
) -> bool:
    """Whether a write (``new_*``) may replace the stored row (``old_*``); see the module."""
    if new_changed is not None and old_changed is not None and new_changed != old_changed:
        return new_changed > old_changed
    return new_deleted or not old_deleted


def _from_moment(starting_after: datetime | None, after_id: int | None) -> datetime | None:
    """``starting_after`` checked (aware; ``after_id``, a cursor within it, needs it)."""
    if starting_after is None:
        if after_id is not None:
            raise ValidationError("after_id", "needs starting_after")
        return None
    v.timestamp("starting_after", starting_after)
    if after_id is not None:
        v.positive_int("after_id", after_id, high=v.MAX_BIGINT)
    return starting_after


def check_record(record: SalonRecord) -> SalonRecord:
    """Validate a record before it reaches a backend (shared by both)."""
    v.positive_int("company_id", record.company_id)
    v.positive_int("record_id", record.record_id, high=v.MAX_BIGINT)
    if record.client_id is not None:
        v.positive_int("client_id", record.client_id, high=v.MAX_BIGINT)
    v.optional_text("client_phone", record.client_phone, 32)
    v.optional_text("client_name", record.client_name, 255)
    if record.staff_id is not None:
        v.positive_int("staff_id", record.staff_id, high=v.MAX_BIGINT)
    if not isinstance(record.services, list) or not all(
        isinstance(s, dict) for s in record.services
    ):
        raise ValidationError("services", "must be a list of JSON objects")
    services = v.json_object("services", {"items": record.services})["items"]
    v.timestamp("starts_at", record.starts_at)
    v.timestamp("changed_at", record.changed_at)
    for name in ("seance_length", "attendance"):
        value = getattr(record, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or abs(value) > v.MAX_INT32
        ):
            raise ValidationError(name, "must be an integer")
    if record.attendance is not None and not -32768 <= record.attendance <= 32767:
        raise ValidationError("attendance", "is out of range")
    v.boolean("deleted", record.deleted)
    v.optional_text("api_id", record.api_id, 255)
    raw = v.json_object("raw", record.raw)
    return replace(record, services=services, raw=raw)


class PgSalonRecords:
    """:class:`SalonRecords` on PostgreSQL (one statement per call)."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> Any:
        return None if self._clock is None else self._clock()

    async def apply(self, record: SalonRecord) -> bool:
        r = check_record(record)
        sql = f"""INSERT INTO salon_records AS r ({RECORD_COLUMNS})
                  VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, {NOW})
                  ON CONFLICT (company_id, record_id) DO UPDATE SET
                      client_id = EXCLUDED.client_id, client_phone = EXCLUDED.client_phone,
                      client_name = EXCLUDED.client_name, staff_id = EXCLUDED.staff_id,
                      services = EXCLUDED.services, starts_at = EXCLUDED.starts_at,
                      seance_length = EXCLUDED.seance_length,
                      attendance = EXCLUDED.attendance, deleted = EXCLUDED.deleted,
                      api_id = EXCLUDED.api_id,
                      changed_at = COALESCE(EXCLUDED.changed_at, r.changed_at),
                      raw = EXCLUDED.raw, updated_at = EXCLUDED.updated_at
                  WHERE {_APPLIES}
                  RETURNING r.record_id"""
        applied = await self._pool.run(
            _fetchval,
            sql,
            self._now(),
            r.company_id,
            r.record_id,
            r.client_id,
            r.client_phone,
            r.client_name,
            r.staff_id,
            r.services,
            r.starts_at,
            r.seance_length,
            r.attendance,
            r.deleted,
            r.api_id,
            r.changed_at,
            r.raw,
        )
        return applied is not None

    async def mark_deleted(
        self,
        company_id: int,
        record_id: int,
        *,
        changed_at: datetime | None = None,
        raw: dict[str, Any] | None = None,
    ) -> bool:
        r = check_record(
            SalonRecord(company_id, record_id, deleted=True, changed_at=changed_at, raw=raw or {})
        )
        sql = f"""INSERT INTO salon_records AS r (company_id, record_id, deleted, changed_at,
                      raw, updated_at)
                  VALUES ($2, $3, true, $4, $5, {NOW})
                  ON CONFLICT (company_id, record_id) DO UPDATE SET deleted = true,
                      changed_at = COALESCE(EXCLUDED.changed_at, r.changed_at),
                      updated_at = EXCLUDED.updated_at
                  WHERE {_APPLIES}
                  RETURNING r.record_id"""
        applied = await self._pool.run(
            _fetchval, sql, self._now(), r.company_id, r.record_id, r.changed_at, r.raw
        )
        return applied is not None

    async def get(self, company_id: int, record_id: int) -> SalonRecord | None:
        rec = await self._pool.run(
            _fetchrow,
            f"""SELECT {RECORD_COLUMNS} FROM salon_records
                WHERE company_id = $1 AND record_id = $2""",
            company_id,
            record_id,
        )
        return None if rec is None else SalonRecord(**dict(rec.items()))

    async def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], SalonRecord]:
        if not keys:
            return {}
        companies = [company_id for company_id, _ in keys]
        records = [record_id for _, record_id in keys]
        recs = await self._pool.run(
            _fetch,
            f"""SELECT {RECORD_COLUMNS} FROM salon_records
                WHERE (company_id, record_id) IN (
                    SELECT * FROM unnest($1::bigint[], $2::bigint[]))""",
            companies,
            records,
        )
        found = (SalonRecord(**dict(rec.items())) for rec in recs)
        return {(r.company_id, r.record_id): r for r in found}

    async def list_for_company(
        self,
        company_id: int,
        *,
        include_deleted: bool = False,
        limit: int = 100,
        starting_after: datetime | None = None,
        after_id: int | None = None,
    ) -> list[SalonRecord]:
        limit_value(limit)
        if _from_moment(starting_after, after_id) is None:
            recs = await self._pool.run(
                _fetch,
                f"""SELECT {RECORD_COLUMNS} FROM salon_records
                    WHERE company_id = $1 AND (NOT deleted OR $2)
                    ORDER BY starts_at NULLS LAST, record_id LIMIT $3""",
                company_id,
                include_deleted,
                limit,
            )
        else:  # keyset page on (starts_at, record_id); NOT deleted reads the partial index
            sql = _FROM_ALL if include_deleted else _FROM_LIVE
            recs = await self._pool.run(
                _fetch, sql, company_id, starting_after, after_id or 0, limit
            )
        return [SalonRecord(**dict(r.items())) for r in recs]


class MemorySalonRecords:
    """:class:`SalonRecords` in memory (atomic after one checkpoint)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def _write(self, record: SalonRecord, *, keep_fields: bool) -> bool:
        self._db.require_company(record.company_id)
        key = (record.company_id, record.record_id)
        old = self._db.records.get(key)
        now = self._db.clock()
        if old is None:
            self._db.records[key] = replace(record, updated_at=now)
            return True
        if not supersedes(record.changed_at, record.deleted, old.changed_at, old.deleted):
            return False
        changed = record.changed_at if record.changed_at is not None else old.changed_at
        if keep_fields:  # a bare deletion: everything else stays as it was
            fresh = replace(old, deleted=True, changed_at=changed, updated_at=now)
        else:
            fresh = replace(record, changed_at=changed, updated_at=now)
        self._db.records[key] = fresh
        return True

    async def apply(self, record: SalonRecord) -> bool:
        await trio.lowlevel.checkpoint()
        return self._write(check_record(record), keep_fields=False)

    async def mark_deleted(
        self,
        company_id: int,
        record_id: int,
        *,
        changed_at: datetime | None = None,
        raw: dict[str, Any] | None = None,
    ) -> bool:
        await trio.lowlevel.checkpoint()
        r = check_record(
            SalonRecord(company_id, record_id, deleted=True, changed_at=changed_at, raw=raw or {})
        )
        return self._write(r, keep_fields=True)

    async def get(self, company_id: int, record_id: int) -> SalonRecord | None:
        await trio.lowlevel.checkpoint()
        return self._db.records.get((company_id, record_id))

    async def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], SalonRecord]:
        await trio.lowlevel.checkpoint()
        found = ((key, self._db.records.get(key)) for key in dict.fromkeys(keys))
        return {key: record for key, record in found if record is not None}

    async def list_for_company(
        self,
        company_id: int,
        *,
        include_deleted: bool = False,
        limit: int = 100,
        starting_after: datetime | None = None,
        after_id: int | None = None,
    ) -> list[SalonRecord]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        start = _from_moment(starting_after, after_id)
        rows = [r for r in self._db.records.of(company_id) if include_deleted or not r.deleted]
        if start is not None:
            cursor = (start, after_id or 0)
            page = [
                r for r in rows if r.starts_at is not None and (r.starts_at, r.record_id) > cursor
            ]
            return heapq.nsmallest(limit, page, key=lambda r: (r.starts_at, r.record_id))
        rows.sort(key=lambda r: (r.starts_at is None, r.starts_at or _EPOCH, r.record_id))
        return rows[:limit]


async def _fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchrow(sql, *args)


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    result: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return result


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)
