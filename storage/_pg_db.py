# ruff: noqa: S608  -- f-strings splice only module constants and whitelisted column names
"""PostgreSQL repositories: each public method is one unit of work (one bridge crossing).

SQL is always parameterised; column names in dynamic ``SET`` lists come only from the
validated whitelist in ``_fields``. Times are ``COALESCE($1, now())``: the database clock,
unless the storage was given a wall clock (tests move time with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from . import _secrets
from . import _validate as v
from ._errors import NotFound
from ._fields import (
    Clock,
    clean_company_fields,
    key_text,
    limit_value,
    status_value,
    status_values,
)
from ._memory_db import (
    _message_status,
    check_category,
    check_service,
    check_staff,
    check_unique,
    details_fields,
    peer_list,
)
from ._models import (
    LINKED_STATUSES,
    AttemptOutcome,
    AuditEvent,
    Catalog,
    Company,
    Direction,
    InboxEvent,
    InboxStatus,
    Message,
    MessageStatus,
    NewCompany,
    OutboxItem,
    OutboxStatus,
    PutResult,
    SalonCategory,
    SalonDetails,
    SalonService,
    SalonStaff,
    SyncState,
)
from ._pg_pool import PgPool
from ._protocols import StatusLike

NOW = "COALESCE($1::timestamptz, now())"
COMPANY_COLUMNS = ", ".join(Company.__dataclass_fields__)
# list_by_status: one page through companies_pkey, or idx_companies_integration_status.
# The status page is a keyset on (integration_status, id) bounded above by the status, which
# means "integration_status = $1 AND id > $2": written so, a generic plan (what a statement
# cached by asyncpg gets after five runs) walks companies_pkey instead and filters, past
# every company of the other statuses (28 ms for a rare status among 100,000).
_PAGE_ALL = f"SELECT {COMPANY_COLUMNS} FROM companies WHERE id > $1 ORDER BY id LIMIT $2"
_PAGE_OF_STATUS = f"""SELECT {COMPANY_COLUMNS} FROM companies
    WHERE (integration_status, id) > ($1::text, $2::int) AND integration_status <= $1::text
    ORDER BY integration_status, id LIMIT $3"""
INBOX_COLUMNS = ", ".join(InboxEvent.__dataclass_fields__)
OUTBOX_COLUMNS = ", ".join(OutboxItem.__dataclass_fields__)
MESSAGE_COLUMNS = ", ".join(Message.__dataclass_fields__)
INBOX_LOCK_SPACE = 0x1B0C  # advisory-lock namespace for per-company inbox claims


def _company(rec: asyncpg.Record) -> Company:
    return Company(**dict(rec.items()))


def _inbox(rec: asyncpg.Record) -> InboxEvent:
    return InboxEvent(**dict(rec.items()))


def _outbox(rec: asyncpg.Record) -> OutboxItem:
    return OutboxItem(**dict(rec.items()))


def _message(rec: asyncpg.Record) -> Message:
    return Message(**dict(rec.items()))


def _num(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


class _Repo:
    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> Any:
        return None if self._clock is None else self._clock()


class PgCompanies(_Repo):
    """:class:`CompanyRepository` on PostgreSQL."""

    async def create(
        self,
        yclients_id: int,
        *,
        title: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        address: str | None = None,
        timezone: str | None = None,
        company_id: int | None = None,
        raw_data: Mapping[str, Any] | None = None,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        key_version: int = 0,
    ) -> NewCompany:
        v.positive_int("yclients_id", yclients_id)
        version = _secrets.check_version(key_version)
        given: dict[str, Any] = {
            "title": title,
            "phone": phone,
            "email": email,
            "address": address,
            "company_id": company_id,
            "raw_data": raw_data,
        }
        if timezone is not None:
            given["timezone"] = timezone
        f = clean_company_fields(given)
        key = _secrets.issue_or_use(_secrets.API_KEY_PREFIX, api_key)
        secret = _secrets.issue_or_use(_secrets.WEBHOOK_SECRET_PREFIX, webhook_secret)
        sql = f"""
            INSERT INTO companies (yclients_id, company_id, title, phone, email, address,
                timezone, raw_data, api_key_hash, api_key_prefix, webhook_secret_hash,
                webhook_secret_prefix, api_key_version, webhook_secret_version,
                status_changed_at, created_at, updated_at)
            VALUES ($2, $3, $4, $5, $6, $7, COALESCE($8, 'Europe/Moscow'), $9, $10, $11, $12,
                $13, $14, $14, {NOW}, {NOW}, {NOW})
            RETURNING {COMPANY_COLUMNS}"""
        rec = await self._pool.run(
            _fetchrow,
            sql,
            self._now(),
            yclients_id,
            f["company_id"],
            f["title"],
            f["phone"],
            f["email"],
            f["address"],
            f.get("timezone"),
            f["raw_data"],
            key.digest,
            key.display,
            secret.digest,
            secret.display,
            version,
        )
        return NewCompany(
            company=_company(rec), api_key=key.plaintext, webhook_secret=secret.plaintext
        )

    async def get(self, company_id: int) -> Company | None:
        rec = await self._pool.run(
            _fetchrow, f"SELECT {COMPANY_COLUMNS} FROM companies WHERE id = $1", company_id
        )
        return None if rec is None else _company(rec)

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, Company]:
        if not company_ids:
            return {}
        recs = await self._pool.run(
            _fetch,
            f"SELECT {COMPANY_COLUMNS} FROM companies WHERE id = ANY($1::int[])",
            list(company_ids),
        )
        found = (_company(rec) for rec in recs)
        return {company.id: company for company in found}

    async def get_by_salon(self, yclients_id: int) -> Company | None:
        rec = await self._pool.run(
            _fetchrow,
            f"SELECT {COMPANY_COLUMNS} FROM companies WHERE yclients_id = $1",
            yclients_id,
        )
        return None if rec is None else _company(rec)

    @staticmethod
    def _set_list(fields: Mapping[str, Any], first: int) -> tuple[str, list[Any]]:
        parts = [f"{name} = ${first + i}" for i, name in enumerate(fields)]
        return "".join(f", {p}" for p in parts), list(fields.values())

    async def update(self, company_id: int, **fields: Any) -> Company:
        cleaned = clean_company_fields(fields)
        sets, values = self._set_list(cleaned, 3)
        sql = f"""UPDATE companies SET updated_at = {NOW}{sets}
                  WHERE id = $2 RETURNING {COMPANY_COLUMNS}"""
        rec = await self._pool.run(_fetchrow, sql, self._now(), company_id, *values)
        if rec is None:
            raise NotFound(f"company {company_id}")
        return _company(rec)

    async def transition(
        self,
        company_id: int,
        from_states: Iterable[StatusLike],
        to_state: StatusLike,
        **fields: Any,
    ) -> Company | None:
        allowed = status_values(from_states)
        target = status_value(to_state)
        cleaned = clean_company_fields(fields)
        sets, values = self._set_list(cleaned, 5)
        sql = f"""UPDATE companies
                  SET integration_status = $3, status_changed_at = {NOW},
                      updated_at = {NOW}{sets}
                  WHERE id = $2 AND integration_status = ANY($4::text[])
                  RETURNING {COMPANY_COLUMNS}"""
        rec = await self._pool.run(
            _fetchrow, sql, self._now(), company_id, target, allowed, *values
        )
        return None if rec is None else _company(rec)

    async def list_by_status(
        self, status: StatusLike | None = None, *, limit: int = 100, after_id: int = 0
    ) -> list[Company]:
        limit_value(limit)
        # Two statements, each shaped for its index (see _PAGE_OF_STATUS), not one with
        # "$2 IS NULL OR ...", whose generic plan can use neither for the status.
        if status is None:
            recs = await self._pool.run(_fetch, _PAGE_ALL, after_id, limit)
        else:
            recs = await self._pool.run(
                _fetch, _PAGE_OF_STATUS, status_value(status), after_id, limit
            )
        return [_company(r) for r in recs]

    async def count(self, status: StatusLike | None = None) -> int:
        wanted = None if status is None else status_value(status)
        sql = "SELECT count(*) FROM companies WHERE $1::text IS NULL OR integration_status = $1"
        result: int = await self._pool.run(_fetchval, sql, wanted)
        return result

    async def count_by_status(self) -> dict[str, int]:
        recs = await self._pool.run(
            _fetch, "SELECT integration_status, count(*) FROM companies GROUP BY 1"
        )
        return {r[0]: r[1] for r in recs}

    async def count_linked(self) -> int:
        result: int = await self._pool.run(
            _fetchval, "SELECT count(*) FROM companies WHERE whatsapp_connected = true"
        )
        return result

    async def list_linked(self, *, limit: int | None = None, after_id: int = 0) -> list[Company]:
        if limit is not None:
            limit_value(limit)
        recs = await self._pool.run(
            _fetch,
            f"""SELECT {COMPANY_COLUMNS} FROM companies
                WHERE whatsapp_jid IS NOT NULL AND id > $2
                  AND integration_status = ANY($1::text[]) ORDER BY id LIMIT $3""",
            list(LINKED_STATUSES),
            after_id,
            limit,
        )
        return [_company(r) for r in recs]

    async def _rotate(
        self, company_id: int, column: str, prefix: str, given: str | None, version: int | None
    ) -> str:
        issued = _secrets.issue_or_use(prefix, given)
        number = None if version is None else _secrets.check_version(version)
        sql = f"""UPDATE companies SET {column}_hash = $3, {column}_prefix = $4,
                  {column}_version = COALESCE($5::integer, {column}_version),
                  updated_at = {NOW} WHERE id = $2 RETURNING id"""
        found = await self._pool.run(
            _fetchval, sql, self._now(), company_id, issued.digest, issued.display, number
        )
        if found is None:
            raise NotFound(f"company {company_id}")
        return issued.plaintext

    async def rotate_api_key(
        self, company_id: int, api_key: str | None = None, *, version: int | None = None
    ) -> str:
        return await self._rotate(company_id, "api_key", _secrets.API_KEY_PREFIX, api_key, version)

    async def rotate_webhook_secret(
        self, company_id: int, secret: str | None = None, *, version: int | None = None
    ) -> str:
        return await self._rotate(
            company_id, "webhook_secret", _secrets.WEBHOOK_SECRET_PREFIX, secret, version
        )

    async def revoke_credentials(self, company_id: int) -> None:
        sql = f"""UPDATE companies SET api_key_hash = NULL, api_key_prefix = NULL,
                  webhook_secret_hash = NULL, webhook_secret_prefix = NULL,
                  credentials_version = credentials_version + 1,
                  updated_at = {NOW} WHERE id = $2 RETURNING id"""
        if await self._pool.run(_fetchval, sql, self._now(), company_id) is None:
            raise NotFound(f"company {company_id}")

    async def bump_credentials_version(self, company_id: int) -> int:
        sql = f"""UPDATE companies SET credentials_version = credentials_version + 1,
                  updated_at = {NOW} WHERE id = $2 RETURNING credentials_version"""
        version: int | None = await self._pool.run(_fetchval, sql, self._now(), company_id)
        if version is None:
            raise NotFound(f"company {company_id}")
        return version

    async def find_by_api_key(self, api_key: str) -> Company | None:
        if not isinstance(api_key, str) or not api_key or len(api_key) > 255:
            return None
        digest = _secrets.hash_secret(api_key)
        sql = f"SELECT api_key_hash, {COMPANY_COLUMNS} FROM companies WHERE api_key_hash = $1"
        rec = await self._pool.run(_fetchrow, sql, digest)
        if rec is None or not _secrets.matches(rec["api_key_hash"], api_key):
            return None
        fields = dict(rec.items())
        del fields["api_key_hash"]
        return Company(**fields)

    async def _stored_hash(self, company_id: int, column: str) -> str | None:
        sql = f"SELECT {column} FROM companies WHERE id = $1"
        result: str | None = await self._pool.run(_fetchval, sql, company_id)
        return result

    async def verify_api_key(self, company_id: int, api_key: str) -> bool:
        if not isinstance(api_key, str) or "\x00" in api_key:
            return False
        return _secrets.matches(await self._stored_hash(company_id, "api_key_hash"), api_key)

    async def verify_webhook_secret(self, company_id: int, secret: str) -> bool:
        if not isinstance(secret, str) or "\x00" in secret:
            return False
        stored = await self._stored_hash(company_id, "webhook_secret_hash")
        return _secrets.matches(stored, secret)


class PgAuditLog(_Repo):
    """:class:`AuditLog` on PostgreSQL."""

    #: One client's events, newest first (read through idx_marketplace_events_phone, 0015).
    PHONE_EVENTS = """SELECT id, company_id, event_type, data, created_at FROM marketplace_events
                      WHERE company_id = $1 AND data->'phone' = to_jsonb($2::text)
                      ORDER BY created_at DESC, id DESC LIMIT $3"""

    async def append(
        self, company_id: int | None, event_type: str, data: Mapping[str, Any] | None = None
    ) -> AuditEvent:
        kind = key_text("event_type", event_type)
        payload = v.json_object("data", data if data is not None else {})
        sql = f"""INSERT INTO marketplace_events (company_id, event_type, data, created_at)
                  VALUES ($2, $3, $4, {NOW})
                  RETURNING id, company_id, event_type, data, created_at"""
        rec = await self._pool.run(_fetchrow, sql, self._now(), company_id, kind, payload)
        return AuditEvent(**dict(rec.items()))

    async def recent(self, company_id: int, limit: int = 50) -> list[AuditEvent]:
        limit_value(limit)
        sql = """SELECT id, company_id, event_type, data, created_at FROM marketplace_events
                 WHERE company_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"""
        recs = await self._pool.run(_fetch, sql, company_id, limit)
        return [AuditEvent(**dict(r.items())) for r in recs]

    async def for_phone(self, company_id: int, phone: str, limit: int = 50) -> list[AuditEvent]:
        limit_value(limit)
        peer = v.text("phone", phone, 32)
        recs = await self._pool.run(_fetch, self.PHONE_EVENTS, company_id, peer, limit)
        return [AuditEvent(**dict(r.items())) for r in recs]


_RETRYABLE = [InboxStatus.PENDING.value, InboxStatus.FAILED.value]


#: Event-type filters ($6 only this prefix, $7 not this prefix; NULL = no filter).
_TYPE_FILTER = """($6::text IS NULL OR starts_with(event_type, $6::text))
                  AND ($7::text IS NULL OR NOT starts_with(event_type, $7::text))"""


async def _claim_for_company(
    conn: asyncpg.Connection,
    now: Any,
    company_id: int,
    limit: int,
    lease: float,
    prefix: str | None = None,
    exclude_prefix: str | None = None,
) -> list[asyncpg.Record]:
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", INBOX_LOCK_SPACE, company_id)
    busy = await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM webhook_events
            WHERE company_id = $2 AND status = ANY($3::text[]) AND claimed_until > {NOW})""",
        now,
        company_id,
        _RETRYABLE,
    )
    if busy:
        return []
    recs: list[asyncpg.Record] = await conn.fetch(
        f"""WITH due AS (
                SELECT id FROM webhook_events
                WHERE company_id = $2 AND status = ANY($3::text[]) AND next_attempt_at <= {NOW}
                  AND {_TYPE_FILTER}
                ORDER BY id LIMIT $4 FOR UPDATE)
            UPDATE webhook_events w
            SET claimed_until = {NOW} + make_interval(secs => $5), attempts = w.attempts + 1
            FROM due WHERE w.id = due.id
            RETURNING {", ".join("w." + c for c in InboxEvent.__dataclass_fields__)}""",
        now,
        company_id,
        _RETRYABLE,
        limit,
        lease,
        prefix,
        exclude_prefix,
    )
    return recs


class PgWebhookInbox(_Repo):
    """:class:`WebhookInbox` on PostgreSQL (``FOR UPDATE SKIP LOCKED`` plus a lease)."""

    async def put(
        self, company_id: int, dedupe_key: str, event_type: str, payload: Mapping[str, Any]
    ) -> PutResult:
        key = key_text("dedupe_key", dedupe_key)
        kind = key_text("event_type", event_type)
        body = v.json_object("payload", payload)
        sql = f"""INSERT INTO webhook_events (company_id, dedupe_key, event_type, payload,
                      received_at, next_attempt_at)
                  VALUES ($2, $3, $4, $5, {NOW}, {NOW})
                  ON CONFLICT (company_id, dedupe_key) DO NOTHING RETURNING id"""
        new_id = await self._pool.run(_fetchval, sql, self._now(), company_id, key, kind, body)
        return PutResult.NEW if new_id is not None else PutResult.DUPLICATE

    async def claim(self, limit: int = 10, *, lease: float = 60.0) -> list[InboxEvent]:
        limit_value(limit)
        seconds = v.positive_seconds("lease", lease)
        sql = f"""WITH due AS (
                      SELECT id FROM webhook_events
                      WHERE status = ANY($2::text[]) AND next_attempt_at <= {NOW}
                        AND (claimed_until IS NULL OR claimed_until <= {NOW})
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                  UPDATE webhook_events w
                  SET claimed_until = {NOW} + make_interval(secs => $4),
                      attempts = w.attempts + 1
                  FROM due WHERE w.id = due.id
                  RETURNING {", ".join("w." + c for c in InboxEvent.__dataclass_fields__)}"""
        recs = await self._pool.run(_fetch, sql, self._now(), _RETRYABLE, limit, seconds)
        return sorted((_inbox(r) for r in recs), key=lambda e: e.id)

    async def claim_for_company(
        self,
        company_id: int,
        limit: int = 10,
        *,
        lease: float = 60.0,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[InboxEvent]:
        limit_value(limit)
        seconds = v.positive_seconds("lease", lease)
        recs = await self._pool.transaction(
            _claim_for_company, self._now(), company_id, limit, seconds, prefix, exclude_prefix
        )
        return sorted((_inbox(r) for r in recs), key=lambda e: e.id)

    async def due_companies(
        self,
        limit: int = 100,
        *,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[int]:
        limit_value(limit)
        sql = f"""SELECT company_id FROM webhook_events
                  WHERE status = ANY($2::text[]) AND next_attempt_at <= {NOW}
                    AND (claimed_until IS NULL OR claimed_until <= {NOW})
                    AND ($3::text IS NULL OR starts_with(event_type, $3::text))
                    AND ($4::text IS NULL OR NOT starts_with(event_type, $4::text))
                  GROUP BY company_id ORDER BY min(id) LIMIT $5"""
        recs = await self._pool.run(
            _fetch, sql, self._now(), _RETRYABLE, prefix, exclude_prefix, limit
        )
        return [r["company_id"] for r in recs]

    async def mark_done(self, event_id: int) -> None:
        sql = f"""UPDATE webhook_events SET status = 'done', claimed_until = NULL,
                  processed_at = {NOW} WHERE id = $2 RETURNING id"""
        if await self._pool.run(_fetchval, sql, self._now(), event_id) is None:
            raise NotFound(f"webhook event {event_id}")

    async def mark_failed(
        self, event_id: int, error: str, *, retry_in: float | None = 60.0
    ) -> None:
        message = v.clipped("error", error, 2000)
        dead = retry_in is None
        wait = 0.0 if retry_in is None else max(0.0, float(retry_in))
        sql = f"""UPDATE webhook_events
                  SET status = CASE WHEN $3 THEN 'dead' ELSE 'failed' END,
                      last_error = $4, claimed_until = NULL,
                      next_attempt_at = CASE WHEN $3 THEN next_attempt_at
                                        ELSE {NOW} + make_interval(secs => $5) END
                  WHERE id = $2 RETURNING id"""
        found = await self._pool.run(_fetchval, sql, self._now(), event_id, dead, message, wait)
        if found is None:
            raise NotFound(f"webhook event {event_id}")

    async def get(self, event_id: int) -> InboxEvent | None:
        rec = await self._pool.run(
            _fetchrow, f"SELECT {INBOX_COLUMNS} FROM webhook_events WHERE id = $1", event_id
        )
        return None if rec is None else _inbox(rec)

    async def pending_count(self) -> int:
        result: int = await self._pool.run(
            _fetchval,
            "SELECT count(*) FROM webhook_events WHERE status = ANY($1::text[])",
            _RETRYABLE,
        )
        return result


async def _enqueue(
    conn: asyncpg.Connection,
    now: Any,
    kind: str,
    key: str,
    company_id: int | None,
    body: dict[str, Any],
    delay: float,
) -> asyncpg.Record:
    rec: asyncpg.Record | None = await conn.fetchrow(
        f"""INSERT INTO outbox (kind, idempotency_key, company_id, payload, next_attempt_at,
                created_at, updated_at)
            VALUES ($2, $3, $4, $5, {NOW} + make_interval(secs => $6), {NOW}, {NOW})
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING {OUTBOX_COLUMNS}""",
        now,
        kind,
        key,
        company_id,
        body,
        delay,
    )
    if rec is None:
        # The other insert has committed (ON CONFLICT waited for it): read it.
        rec = await conn.fetchrow(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = $1", key
        )
    assert rec is not None
    return rec


class PgOutbox(_Repo):
    """:class:`Outbox` on PostgreSQL."""

    async def enqueue(
        self,
        kind: str,
        idempotency_key: str,
        company_id: int | None,
        payload: Mapping[str, Any],
        *,
        delay: float = 0.0,
    ) -> OutboxItem:
        kind = key_text("kind", kind)
        key = key_text("idempotency_key", idempotency_key)
        body = v.json_object("payload", payload)
        wait = max(0.0, v.optional_number("delay", delay) or 0.0)
        rec = await self._pool.run(_enqueue, self._now(), kind, key, company_id, body, wait)
        return _outbox(rec)

    async def claim_due(
        self, limit: int = 10, *, lease: float = 60.0, kind: str | None = None
    ) -> list[OutboxItem]:
        limit_value(limit)
        seconds = v.positive_seconds("lease", lease)
        wanted = None if kind is None else key_text("kind", kind)
        sql = f"""WITH due AS (
                      SELECT id FROM outbox
                      WHERE status = 'pending' AND next_attempt_at <= {NOW}
                        AND (claimed_until IS NULL OR claimed_until <= {NOW})
                        AND ($4::text IS NULL OR kind = $4)
                      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                  UPDATE outbox o
                  SET claimed_until = {NOW} + make_interval(secs => $3), updated_at = {NOW}
                  FROM due WHERE o.id = due.id
                  RETURNING {", ".join("o." + c for c in OutboxItem.__dataclass_fields__)}"""
        recs = await self._pool.run(_fetch, sql, self._now(), limit, seconds, wanted)
        return sorted((_outbox(r) for r in recs), key=lambda i: (i.next_attempt_at, i.id))

    async def record_attempt(
        self,
        item_id: int,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> OutboxItem:
        outcome = AttemptOutcome(outcome)
        message = v.clipped("error", error, 2000)
        wait = max(0.0, v.optional_number("retry_in", retry_in) or 0.0)
        status = {
            AttemptOutcome.DELIVERED: OutboxStatus.DELIVERED.value,
            AttemptOutcome.FAILED: OutboxStatus.FAILED.value,
            AttemptOutcome.RETRY: OutboxStatus.PENDING.value,
        }[outcome]
        sql = f"""UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL,
                      updated_at = {NOW},
                      status = CASE WHEN $5 THEN status ELSE $3::text END,
                      last_error = COALESCE($4, last_error),
                      delivered_at = CASE WHEN $3::text = 'delivered' THEN {NOW}
                                     ELSE delivered_at END,
                      next_attempt_at = CASE WHEN $5 THEN {NOW} + make_interval(secs => $6)
                                        ELSE next_attempt_at END
                  WHERE id = $2 RETURNING {OUTBOX_COLUMNS}"""
        rec = await self._pool.run(
            _fetchrow,
            sql,
            self._now(),
            item_id,
            status,
            message,
            outcome is AttemptOutcome.RETRY,
            wait,
        )
        if rec is None:
            raise NotFound(f"outbox item {item_id}")
        return _outbox(rec)

    async def reopen(self, item_id: int) -> OutboxItem:
        sql = f"""UPDATE outbox SET status = 'pending', next_attempt_at = {NOW},
                      claimed_until = NULL, delivered_at = NULL, updated_at = {NOW}
                  WHERE id = $2 RETURNING {OUTBOX_COLUMNS}"""
        rec = await self._pool.run(_fetchrow, sql, self._now(), item_id)
        if rec is None:
            raise NotFound(f"outbox item {item_id}")
        return _outbox(rec)

    async def get(self, item_id: int) -> OutboxItem | None:
        rec = await self._pool.run(
            _fetchrow, f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1", item_id
        )
        return None if rec is None else _outbox(rec)

    async def get_by_key(self, idempotency_key: str) -> OutboxItem | None:
        key = key_text("idempotency_key", idempotency_key)
        rec = await self._pool.run(
            _fetchrow, f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = $1", key
        )
        return None if rec is None else _outbox(rec)

    async def backlog(self) -> int:
        result: int = await self._pool.run(
            _fetchval, "SELECT count(*) FROM outbox WHERE status = 'pending'"
        )
        return result


class PgMessageLog(_Repo):
    """:class:`MessageLog` on PostgreSQL."""

    async def record_inbound(
        self, company_id: int, wa_message_id: str, peer_phone: str, text: str
    ) -> bool:
        wa_id = key_text("wa_message_id", wa_message_id)
        peer = v.text("peer_phone", peer_phone, 32)
        body = v.text("text", text, 65536)
        sql = f"""INSERT INTO messages (company_id, direction, wa_message_id, peer_phone, text,
                      status, created_at, updated_at)
                  VALUES ($2, 'in', $3, $4, $5, 'received', {NOW}, {NOW})
                  ON CONFLICT (company_id, wa_message_id) DO NOTHING RETURNING id"""
        new_id = await self._pool.run(_fetchval, sql, self._now(), company_id, wa_id, peer, body)
        return new_id is not None

    async def record_inbound_many(
        self, company_id: int, messages: Sequence[tuple[str, str, str]]
    ) -> list[bool]:
        if not messages:
            return []
        wa_ids = [key_text("wa_message_id", wa_id) for wa_id, _, _ in messages]
        peers = [v.text("peer_phone", peer, 32) for _, peer, _ in messages]
        bodies = [v.text("text", text, 65536) for _, _, text in messages]
        # One statement: atomic, and ids are drawn in the order of ``n`` (the burst's order).
        sql = f"""INSERT INTO messages (company_id, direction, wa_message_id, peer_phone, text,
                      status, created_at, updated_at)
                  SELECT $2, 'in', w, p, t, 'received', {NOW}, {NOW}
                  FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS b(w, p, t, n)
                  ORDER BY n
                  ON CONFLICT (company_id, wa_message_id) DO NOTHING RETURNING wa_message_id"""
        recs = await self._pool.run(_fetch, sql, self._now(), company_id, wa_ids, peers, bodies)
        stored = {r["wa_message_id"] for r in recs}
        fresh: list[bool] = []
        for wa_id in wa_ids:
            fresh.append(wa_id in stored)
            stored.discard(wa_id)  # a repeat later in the burst is not new
        return fresh

    async def record_outbound(
        self,
        company_id: int,
        peer_phone: str,
        text: str,
        *,
        wa_message_id: str | None = None,
    ) -> Message:
        wa_id = None if wa_message_id is None else key_text("wa_message_id", wa_message_id)
        peer = v.text("peer_phone", peer_phone, 32)
        body = v.text("text", text, 65536)
        sql = f"""INSERT INTO messages (company_id, direction, wa_message_id, peer_phone, text,
                      status, created_at, updated_at)
                  VALUES ($2, $3, $4, $5, $6, $7, {NOW}, {NOW}) RETURNING {MESSAGE_COLUMNS}"""
        rec = await self._pool.run(
            _fetchrow,
            sql,
            self._now(),
            company_id,
            Direction.OUTBOUND.value,
            wa_id,
            peer,
            body,
            MessageStatus.QUEUED.value,
        )
        return _message(rec)

    async def set_status(
        self, message_id: int, status: str, *, wa_message_id: str | None = None
    ) -> Message:
        new_status = _message_status(status)
        wa_id = None if wa_message_id is None else key_text("wa_message_id", wa_message_id)
        sql = f"""UPDATE messages SET status = $3, wa_message_id = COALESCE($4, wa_message_id),
                      updated_at = {NOW}
                  WHERE id = $2 RETURNING {MESSAGE_COLUMNS}"""
        rec = await self._pool.run(_fetchrow, sql, self._now(), message_id, new_status, wa_id)
        if rec is None:
            raise NotFound(f"message {message_id}")
        return _message(rec)

    async def count_attempt(self, message_id: int) -> int:
        sql = f"""UPDATE messages SET attempts = attempts + 1, updated_at = {NOW}
                  WHERE id = $2 AND direction = 'out' RETURNING attempts"""
        attempts = await self._pool.run(_fetchval, sql, self._now(), message_id)
        if attempts is None:
            raise NotFound(f"outbound message {message_id}")
        return int(attempts)

    async def get_by_wa_id(self, company_id: int, wa_message_id: str) -> Message | None:
        wa_id = key_text("wa_message_id", wa_message_id)
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE company_id = $1 AND wa_message_id = $2"
        rec = await self._pool.run(_fetchrow, sql, company_id, wa_id)
        return None if rec is None else _message(rec)

    async def recent(
        self, company_id: int, limit: int = 50, *, peer_phone: str | None = None
    ) -> list[Message]:
        limit_value(limit)
        peer = None if peer_phone is None else v.text("peer_phone", peer_phone, 32)
        sql = f"""SELECT {MESSAGE_COLUMNS} FROM messages
                  WHERE company_id = $1 AND ($2::text IS NULL OR peer_phone = $2)
                  ORDER BY created_at DESC, id DESC LIMIT $3"""
        recs = await self._pool.run(_fetch, sql, company_id, peer, limit)
        return [_message(r) for r in recs]

    async def latest_by_peer(
        self, company_id: int, peer_phones: Sequence[str]
    ) -> dict[str, Message]:
        peers = sorted({v.text("peer_phone", p, 32) for p in peer_list(peer_phones)})
        if not peers:
            return {}
        recs = await self._pool.run(_fetch, _LATEST_BY_PEER, company_id, peers)
        return {r["peer_phone"]: _message(r) for r in recs}

    async def pending_outbound(self, company_id: int, limit: int = 1000) -> list[Message]:
        limit_value(limit)
        sql = f"""SELECT {MESSAGE_COLUMNS} FROM messages
                  WHERE company_id = $1 AND direction = 'out' AND status = 'queued'
                  ORDER BY id LIMIT $2"""
        recs = await self._pool.run(_fetch, sql, company_id, limit)
        return [_message(r) for r in recs]


#: Each phone's latest message: one probe per phone of idx_messages_peer_recent (0015).
_LATEST_BY_PEER = f"""SELECT m.* FROM unnest($2::text[]) AS p(phone)
                      CROSS JOIN LATERAL (
                          SELECT {MESSAGE_COLUMNS} FROM messages
                          WHERE company_id = $1 AND peer_phone = p.phone
                          ORDER BY created_at DESC, id DESC LIMIT 1) AS m"""


async def _replace_catalog(
    conn: asyncpg.Connection,
    now: Any,
    company_id: int,
    details: dict[str, Any],
    services: list[SalonService],
    staff: list[SalonStaff],
    categories: list[SalonCategory] | None,
) -> None:
    locked = await conn.fetchval("SELECT id FROM companies WHERE id = $1 FOR UPDATE", company_id)
    if locked is None:
        raise NotFound(f"company {company_id}")
    # One JSON array of rows: the array columns (staff_ids, synonyms) cannot go through
    # unnest, which flattens nested arrays.
    await conn.execute(
        f"""INSERT INTO salon_services (company_id, service_id, title, category_id, price_min,
                price_max, duration, active, description, staff_ids, synonyms, updated_at)
            SELECT $2, s.service_id, s.title, s.category_id, s.price_min, s.price_max,
                s.duration, s.active, s.description, s.staff_ids, s.synonyms, {NOW}
            FROM jsonb_to_recordset($3::jsonb) AS s(service_id int, title text,
                category_id int, price_min numeric, price_max numeric, duration int,
                active bool, description text, staff_ids int[], synonyms text[])
            ON CONFLICT (company_id, service_id) DO UPDATE SET
                title = EXCLUDED.title, category_id = EXCLUDED.category_id,
                price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
                duration = EXCLUDED.duration, active = EXCLUDED.active,
                description = EXCLUDED.description, staff_ids = EXCLUDED.staff_ids,
                synonyms = EXCLUDED.synonyms, updated_at = EXCLUDED.updated_at""",
        now,
        company_id,
        [
            {
                "service_id": s.service_id,
                "title": s.title,
                "category_id": s.category_id,
                "price_min": s.price_min,
                "price_max": s.price_max,
                "duration": s.duration,
                "active": s.active,
                "description": s.description,
                "staff_ids": list(s.staff_ids),
                "synonyms": list(s.synonyms),
            }
            for s in services
        ],
    )
    await conn.execute(
        f"""UPDATE salon_services SET active = false, updated_at = {NOW}
            WHERE company_id = $2 AND active AND NOT (service_id = ANY($3::int[]))""",
        now,
        company_id,
        [s.service_id for s in services],
    )
    await conn.execute(
        f"""INSERT INTO salon_staff (company_id, staff_id, name, specialization, bookable,
                rating, active, updated_at)
            SELECT $2, s.*, {NOW} FROM unnest($3::int[], $4::text[], $5::text[], $6::bool[],
                $7::float8[], $8::bool[]) AS s
            ON CONFLICT (company_id, staff_id) DO UPDATE SET
                name = EXCLUDED.name, specialization = EXCLUDED.specialization,
                bookable = EXCLUDED.bookable, rating = EXCLUDED.rating,
                active = EXCLUDED.active, updated_at = EXCLUDED.updated_at""",
        now,
        company_id,
        [s.staff_id for s in staff],
        [s.name for s in staff],
        [s.specialization for s in staff],
        [s.bookable for s in staff],
        [s.rating for s in staff],
        [s.active for s in staff],
    )
    await conn.execute(
        f"""UPDATE salon_staff SET active = false, updated_at = {NOW}
            WHERE company_id = $2 AND active AND NOT (staff_id = ANY($3::int[]))""",
        now,
        company_id,
        [s.staff_id for s in staff],
    )
    if categories is not None:
        await conn.execute(
            f"""INSERT INTO salon_categories (company_id, category_id, title, active,
                    updated_at)
                SELECT $2, c.*, {NOW} FROM unnest($3::int[], $4::text[], $5::bool[]) AS c
                ON CONFLICT (company_id, category_id) DO UPDATE SET
                    title = EXCLUDED.title, active = EXCLUDED.active,
                    updated_at = EXCLUDED.updated_at""",
            now,
            company_id,
            [c.category_id for c in categories],
            [c.title for c in categories],
            [c.active for c in categories],
        )
        await conn.execute(
            f"""UPDATE salon_categories SET active = false, updated_at = {NOW}
                WHERE company_id = $2 AND active AND NOT (category_id = ANY($3::int[]))""",
            now,
            company_id,
            [c.category_id for c in categories],
        )
    if details:
        sets = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(details))
        await conn.execute(
            f"UPDATE companies SET updated_at = {NOW}, {sets} WHERE id = $2",
            now,
            company_id,
            *details.values(),
        )


async def _get_catalog(
    conn: asyncpg.Connection, company_id: int, active_only: bool
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    services = await conn.fetch(
        """SELECT service_id, title, category_id, price_min, price_max, duration, active,
                  updated_at, description, staff_ids, synonyms
           FROM salon_services WHERE company_id = $1 AND (active OR NOT $2)
           ORDER BY service_id""",
        company_id,
        active_only,
    )
    staff = await conn.fetch(
        """SELECT staff_id, name, specialization, bookable, rating, active, updated_at
           FROM salon_staff WHERE company_id = $1 AND (active OR NOT $2) ORDER BY staff_id""",
        company_id,
        active_only,
    )
    categories = await conn.fetch(
        """SELECT category_id, title, active, updated_at FROM salon_categories
           WHERE company_id = $1 AND (active OR NOT $2) ORDER BY category_id""",
        company_id,
        active_only,
    )
    return services, staff, categories


class PgSalonCatalog(_Repo):
    """:class:`SalonCatalog` on PostgreSQL."""

    async def replace_catalog(
        self,
        company_id: int,
        details: SalonDetails | None,
        services: Sequence[SalonService],
        staff: Sequence[SalonStaff],
        categories: Sequence[SalonCategory] | None = None,
    ) -> None:
        checked_services = [check_service(s) for s in services]
        checked_staff = [check_staff(s) for s in staff]
        check_unique([s.service_id for s in checked_services], "services")
        check_unique([s.staff_id for s in checked_staff], "staff")
        groups = None if categories is None else [check_category(c) for c in categories]
        if groups is not None:
            check_unique([c.category_id for c in groups], "categories")
        fields = details_fields(details)
        await self._pool.transaction(
            _replace_catalog,
            self._now(),
            company_id,
            fields,
            checked_services,
            checked_staff,
            groups,
        )

    async def get_catalog(self, company_id: int, *, active_only: bool = True) -> Catalog:
        services, staff, groups = await self._pool.run(_get_catalog, company_id, active_only)
        return Catalog(
            services=[
                SalonService(
                    service_id=r["service_id"],
                    title=r["title"],
                    category_id=r["category_id"],
                    price_min=_num(r["price_min"]),
                    price_max=_num(r["price_max"]),
                    duration=r["duration"],
                    active=r["active"],
                    updated_at=r["updated_at"],
                    description=r["description"],
                    staff_ids=tuple(r["staff_ids"]),
                    synonyms=tuple(r["synonyms"]),
                )
                for r in services
            ],
            staff=[SalonStaff(**dict(r.items())) for r in staff],
            categories=[SalonCategory(**dict(r.items())) for r in groups],
        )

    async def record_sync(
        self, company_id: int, *, ok: bool, error: str | None = None
    ) -> SyncState:
        message = None if ok else v.clipped("error", error, 2000)
        sql = f"""INSERT INTO salon_sync_state (company_id, last_success_at, last_error,
                      last_attempt_at)
                  VALUES ($2, CASE WHEN $3 THEN {NOW} END, $4, {NOW})
                  ON CONFLICT (company_id) DO UPDATE SET
                      last_success_at = CASE WHEN $3 THEN {NOW}
                                        ELSE salon_sync_state.last_success_at END,
                      last_error = $4, last_attempt_at = {NOW}
                  RETURNING company_id, last_success_at, last_error, last_attempt_at"""
        rec = await self._pool.run(_fetchrow, sql, self._now(), company_id, ok, message)
        return SyncState(**dict(rec.items()))

    async def get_sync_state(self, company_id: int) -> SyncState | None:
        rec = await self._pool.run(
            _fetchrow,
            """SELECT company_id, last_success_at, last_error, last_attempt_at
               FROM salon_sync_state WHERE company_id = $1""",
            company_id,
        )
        return None if rec is None else SyncState(**dict(rec.items()))

    async def list_sync_due(
        self,
        statuses: Iterable[StatusLike],
        *,
        succeeded_before: datetime,
        failed_before: datetime,
        limit: int = 100,
    ) -> list[int]:
        limit_value(limit)
        v.timestamp("succeeded_before", succeeded_before)
        v.timestamp("failed_before", failed_before)
        sql = """SELECT c.id FROM companies c
                 LEFT JOIN salon_sync_state s ON s.company_id = c.id
                 WHERE c.integration_status = ANY($1::text[]) AND c.sync_enabled
                   AND (s.last_attempt_at IS NULL
                        OR (s.last_error IS NULL
                            AND (s.last_success_at IS NULL OR s.last_success_at < $2))
                        OR (s.last_error IS NOT NULL AND s.last_attempt_at < $3))
                 ORDER BY s.last_attempt_at NULLS FIRST, c.id LIMIT $4"""
        recs = await self._pool.run(
            _fetch, sql, status_values(statuses), succeeded_before, failed_before, limit
        )
        return [r["id"] for r in recs]


# -- unit helpers: one statement per crossing ---------------------------------------------


async def _fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchrow(sql, *args)


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    result: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return result


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)
