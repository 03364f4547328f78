# ruff: noqa: S608  -- f-strings splice only module constants
"""``reminders``, ``reviews`` and ``reminder_settings`` on PostgreSQL: the rules (open and
closed rows, moved visits, leases) are in ``_reminders``; each call here is one unit of work
(one bridge crossing), the writes of ``plan`` and ``skip`` one transaction.

Claims lock their rows with ``FOR UPDATE SKIP LOCKED``: two schedulers (two processes) never
claim the same row, and neither waits for the other's rows. Under ``READ COMMITTED`` a row
another transaction changed meanwhile is re-checked against the claim's condition after the
lock, so a row just claimed, dropped or sent elsewhere is never taken again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from . import _validate as v
from ._conversations import check_phone
from ._errors import NotFound
from ._fields import Clock, limit_value
from ._models import PlannedReminder, Reminder, ReminderKey, ReminderStatus, Review
from ._pg_pool import PgPool
from ._reminders import (
    MAX_UPCOMING,
    MOVED,
    check_comment,
    check_company,
    check_id,
    check_key,
    check_lease,
    check_moment,
    check_owner,
    check_plan,
    check_rating,
    check_reason,
    check_record_id,
    new_message_id,
    optional_moment,
    optional_record_id,
)

NOW = "COALESCE($1::timestamptz, now())"
COLUMNS = (
    "id, company_id, record_id, kind, visit_time, status, due_at, send_by, visit_id, phone, "
    "details, reason, message_id, claimed_by, claim_until, attempts, created_at, updated_at"
)
REVIEW_COLUMNS = "company_id, record_id, visit_id, phone, rating, comment, created_at, updated_at"
#: The earliest moment a row becomes claimable (both partial indexes answer it).
NEXT_DUE = """LEAST(
    (SELECT min(due_at) FROM reminders WHERE status = 'planned'),
    (SELECT min(claim_until) FROM reminders WHERE status = 'claimed'))"""
#: Rows ``claim_due`` at ``$T`` takes (``$T`` replaced by the parameter's number).
CLAIMABLE = "((status = 'planned' AND due_at <= $T) OR (status = 'claimed' AND claim_until <= $T))"
#: Rows ``skip``/``drop`` may still change besides the open ones: claims whose lease ran out.
LAPSED = f"(status = 'claimed' AND claim_until <= {NOW})"
OPEN = "('planned', 'skipped', 'dropped')"


def _reminder(rec: asyncpg.Record) -> Reminder:
    fields = dict(rec.items())
    fields["status"] = ReminderStatus(fields["status"])
    return Reminder(**fields)


def _review(rec: asyncpg.Record) -> Review:
    return Review(**dict(rec.items()))


async def _company_exists(conn: asyncpg.Connection, company_id: int) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)", company_id)
    )


async def _require_company(conn: asyncpg.Connection, company_id: int) -> None:
    if not await _company_exists(conn, company_id):
        raise NotFound(f"company {company_id}")


async def _drop_moved(
    conn: asyncpg.Connection, now: Any, company_id: int, keys: Sequence[ReminderKey]
) -> None:
    """Other visit times of each key's ``(record, kind)``, still planned (or a lapsed
    claim), become ``dropped`` as ``moved`` (one statement for all keys)."""
    await conn.execute(
        f"""UPDATE reminders r SET status = 'dropped', reason = $6, claimed_by = NULL,
                claim_until = NULL, updated_at = {NOW}
            FROM unnest($3::bigint[], $4::text[], $5::timestamptz[]) AS k(record_id, kind, at)
            WHERE r.company_id = $2 AND r.record_id = k.record_id AND r.kind = k.kind
              AND r.visit_time <> k.at
              AND (r.status = 'planned' OR (r.status = 'claimed' AND r.claim_until <= {NOW}))""",
        now,
        company_id,
        [k.record_id for k in keys],
        [k.kind for k in keys],
        [k.visit_time for k in keys],
        MOVED,
    )


async def _plan(
    conn: asyncpg.Connection, now: Any, company_id: int, rows: list[PlannedReminder]
) -> bool:
    """All rows in one statement (keys are unique within ``rows``: ``check_plan``)."""
    await _require_company(conn, company_id)
    if not rows:
        return False
    before: datetime | None = await conn.fetchval(f"SELECT {NEXT_DUE}")
    written: list[datetime] = [
        rec["due_at"]
        for rec in await conn.fetch(
            f"""INSERT INTO reminders AS r (company_id, record_id, kind, visit_time, status,
                    due_at, send_by, visit_id, phone, details, created_at, updated_at)
                SELECT $2, t.record_id, t.kind, t.visit_time, 'planned', t.due_at, t.send_by,
                    t.visit_id, t.phone, t.details::jsonb, {NOW}, {NOW}
                FROM unnest($3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                    $7::timestamptz[], $8::bigint[], $9::text[], $10::text[])
                    AS t(record_id, kind, visit_time, due_at, send_by, visit_id, phone, details)
                ON CONFLICT (company_id, record_id, kind, visit_time) DO UPDATE SET
                    status = 'planned', due_at = EXCLUDED.due_at, send_by = EXCLUDED.send_by,
                    visit_id = COALESCE(EXCLUDED.visit_id, r.visit_id),
                    phone = COALESCE(EXCLUDED.phone, r.phone),
                    details = EXCLUDED.details, reason = NULL, updated_at = EXCLUDED.updated_at
                WHERE r.status IN {OPEN}
                RETURNING r.due_at""",
            now,
            company_id,
            [r.record_id for r in rows],
            [r.kind for r in rows],
            [r.visit_time for r in rows],
            [r.due_at for r in rows],
            [r.send_by for r in rows],
            [r.visit_id for r in rows],
            [r.phone for r in rows],
            [_dumps(r.details) for r in rows],
        )
    ]
    await _drop_moved(conn, now, company_id, [r.key for r in rows])
    return bool(written) and (before is None or min(written) < before)


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def _skip(
    conn: asyncpg.Connection, now: Any, company_id: int, key: ReminderKey, reason: str
) -> asyncpg.Record:
    await _require_company(conn, company_id)
    rec = await conn.fetchrow(
        f"""INSERT INTO reminders AS r (company_id, record_id, kind, visit_time, status,
                reason, created_at, updated_at)
            VALUES ($2, $3, $4, $5, 'skipped', $6, {NOW}, {NOW})
            ON CONFLICT (company_id, record_id, kind, visit_time) DO UPDATE SET
                status = 'skipped', reason = EXCLUDED.reason, claimed_by = NULL,
                claim_until = NULL, updated_at = EXCLUDED.updated_at
            WHERE r.status IN {OPEN}
               OR (r.status = 'claimed' AND r.claim_until <= {NOW})
            RETURNING {COLUMNS}""",
        now,
        company_id,
        key.record_id,
        key.kind,
        key.visit_time,
        reason,
    )
    if rec is None:  # claimed (lease holding) or sent: stays as it is
        rec = await conn.fetchrow(
            f"""SELECT {COLUMNS} FROM reminders
                WHERE company_id = $1 AND record_id = $2 AND kind = $3 AND visit_time = $4""",
            company_id,
            key.record_id,
            key.kind,
            key.visit_time,
        )
    await _drop_moved(conn, now, company_id, [key])
    return rec


async def _drop_visit(
    conn: asyncpg.Connection, now: Any, company_id: int, record_id: int, reason: str
) -> int:
    await _require_company(conn, company_id)
    recs = await conn.fetch(
        f"""UPDATE reminders SET status = 'dropped', reason = $4, claimed_by = NULL,
                claim_until = NULL, updated_at = {NOW}
            WHERE company_id = $2 AND record_id = $3 AND (status = 'planned' OR {LAPSED})
            RETURNING id""",
        now,
        company_id,
        record_id,
        reason,
    )
    return len(recs)


async def _claim(
    conn: asyncpg.Connection,
    now: Any,
    at: datetime,
    owner: str,
    lease: float,
    limit: int,
    ids: list[str],
) -> list[Reminder]:
    recs = await conn.fetch(
        f"""WITH locked AS (
                SELECT id, due_at FROM reminders WHERE {CLAIMABLE.replace("$T", "$2")}
                ORDER BY due_at, id LIMIT $5 FOR UPDATE SKIP LOCKED),
            numbered AS (
                SELECT id, row_number() OVER (ORDER BY due_at, id) AS n FROM locked)
            UPDATE reminders r SET status = 'claimed', claimed_by = $3,
                claim_until = $2 + make_interval(secs => $4), attempts = r.attempts + 1,
                message_id = COALESCE(r.message_id, ($6::text[])[numbered.n]),
                updated_at = {NOW}
            FROM numbered WHERE r.id = numbered.id
            RETURNING {", ".join("r." + c for c in COLUMNS.split(", "))}""",
        now,
        at,
        owner,
        lease,
        limit,
        ids,
    )
    return sorted((_reminder(r) for r in recs), key=lambda r: (r.due_at or at, r.id))


async def _update_claimed(conn: asyncpg.Connection, sql: str, company_id: int, *args: Any) -> bool:
    """One change of a row claimed by its owner; ``False`` when it is not (or not ours)."""
    done = await conn.fetchval(sql, *args)
    if done is None:
        await _require_company(conn, company_id)
        return False
    return True


async def _fetch_for_company(
    conn: asyncpg.Connection, sql: str, company_id: int, *args: Any
) -> list[asyncpg.Record]:
    """Rows of one company; :class:`NotFound` when there are none and no such company."""
    recs: list[asyncpg.Record] = await conn.fetch(sql, company_id, *args)
    if not recs:
        await _require_company(conn, company_id)
    return recs


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    recs: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return recs


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


#: ``mark_sent`` / ``mark_skipped`` / ``release``: $2 company, $3 row, $4 owner.
_OWNED = "WHERE company_id = $2 AND id = $3 AND status = 'claimed' AND claimed_by = $4"


class PgReminders:
    """:class:`Reminders` on PostgreSQL (one unit of work per call)."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> Any:
        return None if self._clock is None else self._clock()

    async def plan(self, company_id: int, rows: Sequence[PlannedReminder]) -> bool:
        company_id = check_company(company_id)
        wanted = check_plan(rows)
        return await self._pool.transaction(_plan, self._now(), company_id, wanted)

    async def skip(self, company_id: int, key: ReminderKey, reason: str) -> Reminder:
        company_id = check_company(company_id)
        wanted = check_key(key)
        why = check_reason(reason)
        rec = await self._pool.transaction(_skip, self._now(), company_id, wanted, why)
        return _reminder(rec)

    async def drop_visit(self, company_id: int, record_id: int, reason: str) -> int:
        company_id = check_company(company_id)
        record = check_record_id("record_id", record_id)
        why = check_reason(reason)
        return await self._pool.run(_drop_visit, self._now(), company_id, record, why)

    async def next_due(self) -> datetime | None:
        moment: datetime | None = await self._pool.run(_fetchval, f"SELECT {NEXT_DUE}")
        return moment

    async def backlog(self, now: datetime) -> int:
        at = check_moment("now", now)
        sql = f"SELECT count(*) FROM reminders WHERE {CLAIMABLE.replace('$T', '$1')}"
        count: int = await self._pool.run(_fetchval, sql, at)
        return count

    async def claim_due(
        self, now: datetime, owner: str, lease: float, limit: int = 100
    ) -> list[Reminder]:
        at = check_moment("now", now)
        who = check_owner(owner)
        seconds = check_lease(lease)
        limit_value(limit)
        ids = [new_message_id() for _ in range(limit)]
        return await self._pool.run(_claim, self._now(), at, who, seconds, limit, ids)

    async def mark_sent(self, company_id: int, reminder_id: int, owner: str) -> bool:
        company_id = check_company(company_id)
        rid = check_id("reminder_id", reminder_id)
        who = check_owner(owner)
        sql = f"""UPDATE reminders SET status = 'sent', claim_until = NULL, updated_at = {NOW}
                  {_OWNED} RETURNING id"""
        return await self._pool.run(
            _update_claimed, sql, company_id, self._now(), company_id, rid, who
        )

    async def mark_sent_many(
        self, owner: str, keys: Sequence[tuple[int, int]]
    ) -> set[tuple[int, int]]:
        who = check_owner(owner)
        checked = [(check_company(c), check_id("reminder_id", r)) for c, r in keys]
        if not checked:
            return set()
        sql = f"""UPDATE reminders SET status = 'sent', claim_until = NULL, updated_at = {NOW}
                  WHERE (company_id, id) IN (SELECT * FROM unnest($2::int[], $3::bigint[]))
                    AND status = 'claimed' AND claimed_by = $4
                  RETURNING company_id, id"""
        companies = [company_id for company_id, _ in checked]
        ids = [rid for _, rid in checked]
        recs = await self._pool.run(_fetch, sql, self._now(), companies, ids, who)
        return {(rec["company_id"], rec["id"]) for rec in recs}

    async def mark_skipped(
        self, company_id: int, reminder_id: int, owner: str, reason: str
    ) -> bool:
        company_id = check_company(company_id)
        rid = check_id("reminder_id", reminder_id)
        who = check_owner(owner)
        why = check_reason(reason)
        sql = f"""UPDATE reminders SET status = 'skipped', reason = $5, claim_until = NULL,
                      updated_at = {NOW}
                  {_OWNED} RETURNING id"""
        return await self._pool.run(
            _update_claimed, sql, company_id, self._now(), company_id, rid, who, why
        )

    async def release(
        self, company_id: int, reminder_id: int, owner: str, *, retry_at: datetime | None = None
    ) -> bool:
        company_id = check_company(company_id)
        again = optional_moment("retry_at", retry_at)
        rid = check_id("reminder_id", reminder_id)
        who = check_owner(owner)
        sql = f"""UPDATE reminders SET status = 'planned', due_at = COALESCE($5, due_at),
                      claimed_by = NULL, claim_until = NULL, updated_at = {NOW}
                  {_OWNED} RETURNING id"""
        return await self._pool.run(
            _update_claimed, sql, company_id, self._now(), company_id, rid, who, again
        )

    async def get(self, company_id: int, reminder_id: int) -> Reminder | None:
        company_id = check_company(company_id)
        rid = check_id("reminder_id", reminder_id)
        sql = f"SELECT {COLUMNS} FROM reminders WHERE company_id = $1 AND id = $2"
        recs = await self._pool.run(_fetch_for_company, sql, company_id, rid)
        return _reminder(recs[0]) if recs else None

    async def for_visit(self, company_id: int, record_id: int) -> list[Reminder]:
        company_id = check_company(company_id)
        record = check_record_id("record_id", record_id)
        sql = f"""SELECT {COLUMNS} FROM reminders WHERE company_id = $1 AND record_id = $2
                  ORDER BY visit_time, kind, id"""
        recs = await self._pool.run(_fetch_for_company, sql, company_id, record)
        return [_reminder(r) for r in recs]

    async def upcoming(self, company_id: int, limit: int = 50) -> list[Reminder]:
        company_id = check_company(company_id)
        count = limit_value(limit, high=MAX_UPCOMING)
        sql = f"""SELECT {COLUMNS} FROM reminders
                  WHERE company_id = $1 AND status IN ('planned', 'claimed')
                  ORDER BY COALESCE(due_at, visit_time), id LIMIT $2"""
        recs = await self._pool.run(_fetch_for_company, sql, company_id, count)
        return [_reminder(r) for r in recs]


async def _save_rating(conn: asyncpg.Connection, now: Any, *args: Any) -> asyncpg.Record:
    await _require_company(conn, args[0])
    return await conn.fetchrow(
        f"""INSERT INTO reviews AS r (company_id, record_id, visit_id, phone, rating, comment,
                created_at, updated_at)
            VALUES ($2, $3, $4, $5, $6, $7, {NOW}, {NOW})
            ON CONFLICT (company_id, record_id) DO UPDATE SET
                visit_id = COALESCE(EXCLUDED.visit_id, r.visit_id), phone = EXCLUDED.phone,
                rating = EXCLUDED.rating, comment = EXCLUDED.comment,
                updated_at = EXCLUDED.updated_at
            RETURNING {REVIEW_COLUMNS}""",
        now,
        *args,
    )


class PgReviews:
    """:class:`Reviews` on PostgreSQL."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    async def save_rating(
        self,
        company_id: int,
        record_id: int,
        visit_id: int | None,
        phone: str,
        rating: int,
        comment: str | None,
    ) -> Review:
        company_id = check_company(company_id)
        record = check_record_id("record_id", record_id)
        visit = optional_record_id("visit_id", visit_id)
        number = check_phone(phone)
        stars = check_rating(rating)
        words = check_comment(comment)
        now = None if self._clock is None else self._clock()
        rec = await self._pool.run(
            _save_rating, now, company_id, record, visit, number, stars, words
        )
        return _review(rec)

    async def get(self, company_id: int, record_id: int) -> Review | None:
        company_id = check_company(company_id)
        record = check_record_id("record_id", record_id)
        sql = f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE company_id = $1 AND record_id = $2"
        recs = await self._pool.run(_fetch_for_company, sql, company_id, record)
        return _review(recs[0]) if recs else None

    async def list_low(
        self, company_id: int, since: datetime, *, max_rating: int = 3, limit: int = 100
    ) -> list[Review]:
        company_id = check_company(company_id)
        after = check_moment("since", since)
        top = check_rating(max_rating)
        limit_value(limit)
        sql = f"""SELECT {REVIEW_COLUMNS} FROM reviews
                  WHERE company_id = $1 AND rating <= $2 AND updated_at >= $3
                  ORDER BY updated_at DESC, record_id DESC LIMIT $4"""
        recs = await self._pool.run(_fetch_for_company, sql, company_id, top, after, limit)
        return [_review(r) for r in recs]


async def _put_settings(
    conn: asyncpg.Connection, now: Any, company_id: int, settings: dict[str, Any]
) -> None:
    await _require_company(conn, company_id)
    await conn.execute(
        f"""INSERT INTO reminder_settings (company_id, settings, updated_at)
            VALUES ($2, $3, {NOW})
            ON CONFLICT (company_id) DO UPDATE SET settings = EXCLUDED.settings,
                updated_at = EXCLUDED.updated_at""",
        now,
        company_id,
        settings,
    )


class PgReminderSettings:
    """:class:`ReminderSettingsStore` on PostgreSQL."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    async def get(self, company_id: int) -> dict[str, Any] | None:
        company_id = check_company(company_id)
        sql = "SELECT settings FROM reminder_settings WHERE company_id = $1"
        recs = await self._pool.run(_fetch_for_company, sql, company_id)
        if not recs:
            return None
        settings: dict[str, Any] = recs[0]["settings"]
        return settings

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        ids = [check_company(company_id) for company_id in company_ids]
        if not ids:
            return {}
        sql = "SELECT company_id, settings FROM reminder_settings WHERE company_id = ANY($1)"
        recs = await self._pool.run(_fetch, sql, ids)
        return {rec["company_id"]: rec["settings"] for rec in recs}

    async def put(self, company_id: int, settings: dict[str, Any]) -> None:
        company_id = check_company(company_id)
        body = v.json_object("settings", settings)
        now = None if self._clock is None else self._clock()
        await self._pool.run(_put_settings, now, company_id, body)
