"""In-memory twins of the PostgreSQL repositories, for the embedded default and fast tests.

Each method does all of its work synchronously after one checkpoint, so it is atomic with
respect to other trio tasks exactly like one PostgreSQL transaction. Times come from an
injectable wall clock so tests can move time (leases, retries) deterministically.
"""

from __future__ import annotations

import copy
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import trio

from . import _secrets
from . import _validate as v
from ._by_company import ByCompany
from ._due_index import DueIndex
from ._errors import Conflict, NotFound, ValidationError
from ._fields import (
    Clock,
    clean_company_fields,
    key_text,
    limit_value,
    status_value,
    status_values,
    utc_now,
)
from ._model_usage import SalonModelSettings, TokenUsage
from ._models import (
    LINKED_STATUSES,
    AttemptOutcome,
    AuditEvent,
    BackendHealth,
    Catalog,
    Company,
    CompanyStatus,
    Conversation,
    Direction,
    InboxEvent,
    InboxStatus,
    Message,
    MessageStatus,
    NewCompany,
    OutboxItem,
    OutboxStatus,
    PutResult,
    Reminder,
    ReminderKey,
    Review,
    SalonCategory,
    SalonDetails,
    SalonRecord,
    SalonService,
    SalonStaff,
    SyncState,
)
from ._protocols import StatusLike
from ._status_ids import StatusIds
from ._sync_due import SyncDueIndex

#: Longest service description kept (YClients' comment), and most synonyms per service.
MAX_DESCRIPTION = 10_000
MAX_SYNONYMS = 50


class CompanyCounts:
    """Companies by status and linked ones, kept by every row change (``count*`` read them)."""

    def __init__(self) -> None:
        self.by_status: dict[str, int] = {}
        self.connected = 0
        #: Called with ``(company id, old status, new status)`` when a status changes.
        self.moved: Callable[[int, str, str], None] | None = None

    def add(self, company: Company, sign: int) -> None:
        status = company.integration_status
        left = self.by_status.get(status, 0) + sign
        if left:
            self.by_status[status] = left
        else:
            self.by_status.pop(status, None)
        if company.whatsapp_connected:
            self.connected += sign


class _CompanyRow:
    """A stored company and its credential hashes; setting ``company`` updates the counts."""

    __slots__ = ("_company", "_counts", "api_key_hash", "webhook_secret_hash")

    def __init__(
        self,
        company: Company,
        api_key_hash: str | None,
        webhook_secret_hash: str | None,
        counts: CompanyCounts,
    ) -> None:
        self._company = company
        self._counts = counts
        self.api_key_hash = api_key_hash
        self.webhook_secret_hash = webhook_secret_hash
        counts.add(company, 1)

    @property
    def company(self) -> Company:
        return self._company

    @company.setter
    def company(self, company: Company) -> None:
        old = self._company
        self._counts.add(old, -1)
        self._company = company
        self._counts.add(company, 1)
        moved = self._counts.moved
        if moved is not None and old.integration_status != company.integration_status:
            moved(company.id, old.integration_status, company.integration_status)


class MemoryDatabase:
    """The tables, shared by the memory repositories of one :class:`Storage`.

    Beside each table sit the indexes PostgreSQL has (``companies`` by salon and by key hash,
    the open inbox and pending outbox items, messages by company): every lookup on a request
    path or in a periodic loop is a dict access or touches only the rows it returns, so cost
    does not grow with the number of salons or with history. Every write keeps them in step.
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.companies: dict[int, _CompanyRow] = {}
        self.company_counts = CompanyCounts()
        self.company_by_salon: dict[int, int] = {}  # yclients_id → company id (UNIQUE)
        self.company_by_key: dict[str, int] = {}  # api_key_hash → company id (UNIQUE)
        self.company_ids = StatusIds()  # companies_pkey, idx_companies_integration_status
        self.events: list[AuditEvent] = []
        self.events_of: dict[int | None, list[AuditEvent]] = {}
        self.inbox: dict[int, InboxEvent] = {}
        self.inbox_keys: dict[tuple[int, str], int] = {}
        # company → ids of its pending and failed events, in id order (idx_*_company_due)
        self.inbox_open: dict[int, dict[int, None]] = {}
        self.outbox: dict[int, OutboxItem] = {}
        self.outbox_keys: dict[str, int] = {}
        self.outbox_pending: dict[int, None] = {}  # ids of pending items (idx_outbox_due)
        # (updated_at, id) of finished items, a heap for retention (idx_outbox_finished);
        # an entry whose item changed since is stale and skipped
        self.outbox_finished: list[tuple[datetime, int]] = []
        # (company, kind) → id of its newest item, which retention keeps (idx_outbox_latest)
        self.outbox_latest: dict[tuple[int | None, str], int] = {}
        self.messages: dict[int, Message] = {}
        self.message_keys: dict[tuple[int, str], int] = {}
        self.messages_of: dict[int, dict[int, None]] = {}  # company → message ids, id order
        self.queued_out: dict[int, dict[int, None]] = {}  # company → queued outbound ids
        self.services: dict[int, dict[int, SalonService]] = {}
        self.staff: dict[int, dict[int, SalonStaff]] = {}
        self.sync: dict[int, SyncState] = {}
        self.sync_due = SyncDueIndex()  # list_sync_due's candidates by status
        self.company_counts.moved = self._company_moved
        self.records: ByCompany[int, SalonRecord] = ByCompany()
        self.categories: dict[int, dict[int, SalonCategory]] = {}
        # flagged: the conversations that hold a state (idx_conversations_idle)
        self.conversations: ByCompany[str, Conversation] = ByCompany(lambda c: bool(c.state))
        # Reminders and reviews (``_reminders``): rows by id, and the unique key's index.
        self.reminders: dict[int, Reminder] = {}
        self.reminder_keys: dict[tuple[int, ReminderKey], int] = {}
        self.reminder_visits: dict[tuple[int, int], list[int]] = {}  # (company, record) → ids
        self.reminders_of: dict[int, dict[int, None]] = {}  # company → ids, id order
        self.reminder_due = DueIndex()  # id → when it becomes claimable (idx on due_at)
        self.reviews: ByCompany[int, Review] = ByCompany()
        self.reminder_settings: dict[int, dict[str, Any]] = {}
        # The assistant's language model per salon and its tokens per local day (issue 15).
        self.model_settings: dict[int, SalonModelSettings] = {}
        self.token_usage: dict[tuple[int, date], TokenUsage] = {}
        self._ids: dict[str, int] = {}

    def next_id(self, table: str) -> int:
        self._ids[table] = self._ids.get(table, 0) + 1
        return self._ids[table]

    def _company_moved(self, company_id: int, old: str, new: str) -> None:
        self.company_ids.move(company_id, old, new)
        self.sync_due.leave(company_id, old)
        self.sync_due.place(company_id, new, self.sync.get(company_id))

    def attempted_in(self, status: str) -> list[tuple[datetime, int]]:
        """``(last sync attempt, id)`` of the companies in ``status`` that were attempted."""
        return [
            (state.last_attempt_at, cid)
            for cid, row in self.companies.items()
            if row.company.integration_status == status
            and (state := self.sync.get(cid)) is not None
            and state.last_attempt_at is not None
        ]

    def set_key_hash(self, row: _CompanyRow, digest: str | None) -> None:
        """Replace the row's API key hash, keeping :attr:`company_by_key` in step."""
        if row.api_key_hash is not None:
            self.company_by_key.pop(row.api_key_hash, None)
        row.api_key_hash = digest
        if digest is not None:
            self.company_by_key[digest] = row.company.id

    def put_inbox(self, event: InboxEvent) -> None:
        """Store ``event``; the open index holds it while it is pending or failed."""
        self.inbox[event.id] = event
        if event.status in (InboxStatus.PENDING.value, InboxStatus.FAILED.value):
            self.inbox_open.setdefault(event.company_id, {})[event.id] = None
            return
        open_ids = self.inbox_open.get(event.company_id)
        if open_ids is not None:
            open_ids.pop(event.id, None)
            if not open_ids:
                del self.inbox_open[event.company_id]

    def set_queued(self, message: Message) -> None:
        """Keep :attr:`queued_out` in step with ``message``'s direction and status."""
        queued = message.direction == Direction.OUTBOUND.value and (
            message.status == MessageStatus.QUEUED.value
        )
        if queued:
            self.queued_out.setdefault(message.company_id, {})[message.id] = None
            return
        ids = self.queued_out.get(message.company_id)
        if ids is not None:
            ids.pop(message.id, None)
            if not ids:
                del self.queued_out[message.company_id]

    def require_company(self, company_id: int) -> _CompanyRow:
        row = self.companies.get(company_id)
        if row is None:
            raise NotFound(f"company {company_id}")
        return row

    async def ping(self) -> BackendHealth:
        await trio.lowlevel.checkpoint()
        return BackendHealth(name="database", kind="memory", ok=True, latency_ms=0.0)


class MemoryCompanies:
    """:class:`CompanyRepository` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

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
        await trio.lowlevel.checkpoint()
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
        fields = clean_company_fields(given)
        if yclients_id in self._db.company_by_salon:
            raise Conflict(f"company for salon {yclients_id} exists")
        key = _secrets.issue_or_use(_secrets.API_KEY_PREFIX, api_key)
        secret = _secrets.issue_or_use(_secrets.WEBHOOK_SECRET_PREFIX, webhook_secret)
        now = self._db.clock()
        company = Company(
            id=self._db.next_id("companies"),
            yclients_id=yclients_id,
            company_id=fields["company_id"],
            title=fields["title"],
            phone=fields["phone"],
            email=fields["email"],
            address=fields["address"],
            timezone=fields.get("timezone", "Europe/Moscow"),
            whatsapp_enabled=False,
            whatsapp_connected=False,
            whatsapp_phone=None,
            whatsapp_jid=None,
            whatsapp_connected_at=None,
            connected_at=None,
            ai_enabled=True,
            sync_enabled=True,
            integration_status=CompanyStatus.PENDING.value,
            status_changed_at=now,
            last_error=None,
            api_key_prefix=key.display,
            webhook_secret_prefix=secret.display,
            raw_data=fields["raw_data"],
            created_at=now,
            updated_at=now,
            api_key_version=version,
            webhook_secret_version=version,
        )
        if key.digest in self._db.company_by_key:
            raise Conflict("api_key is in use")  # PostgreSQL: idx_companies_api_key_hash
        self._db.companies[company.id] = _CompanyRow(
            company, key.digest, secret.digest, self._db.company_counts
        )
        self._db.company_by_salon[yclients_id] = company.id
        self._db.company_ids.add(company.id, company.integration_status)
        self._db.sync_due.place(company.id, company.integration_status, None)
        self._db.company_by_key[key.digest] = company.id
        return NewCompany(company=company, api_key=key.plaintext, webhook_secret=secret.plaintext)

    async def get(self, company_id: int) -> Company | None:
        await trio.lowlevel.checkpoint()
        row = self._db.companies.get(company_id)
        return row.company if row else None

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, Company]:
        await trio.lowlevel.checkpoint()
        found = ((cid, self._db.companies.get(cid)) for cid in company_ids)
        return {cid: row.company for cid, row in found if row is not None}

    async def get_by_salon(self, yclients_id: int) -> Company | None:
        await trio.lowlevel.checkpoint()
        company_id = self._db.company_by_salon.get(yclients_id)
        return None if company_id is None else self._db.companies[company_id].company

    async def update(self, company_id: int, **fields: Any) -> Company:
        await trio.lowlevel.checkpoint()
        cleaned = clean_company_fields(fields)
        row = self._db.require_company(company_id)
        row.company = replace(row.company, **cleaned, updated_at=self._db.clock())
        return row.company

    async def transition(
        self,
        company_id: int,
        from_states: Iterable[StatusLike],
        to_state: StatusLike,
        **fields: Any,
    ) -> Company | None:
        await trio.lowlevel.checkpoint()
        allowed = status_values(from_states)
        target = status_value(to_state)
        cleaned = clean_company_fields(fields)
        row = self._db.companies.get(company_id)
        if row is None or row.company.integration_status not in allowed:
            return None
        now = self._db.clock()
        row.company = replace(
            row.company,
            **cleaned,
            integration_status=target,
            status_changed_at=now,
            updated_at=now,
        )
        return row.company

    async def list_by_status(
        self, status: StatusLike | None = None, *, limit: int = 100, after_id: int = 0
    ) -> list[Company]:
        await trio.lowlevel.checkpoint()
        wanted = None if status is None else status_value(status)
        limit_value(limit)
        page = self._db.company_ids.page(wanted, after_id, limit)  # read through the index
        return [self._db.companies[cid].company for cid in page]

    async def count(self, status: StatusLike | None = None) -> int:
        await trio.lowlevel.checkpoint()
        if status is None:
            return len(self._db.companies)
        return self._db.company_counts.by_status.get(status_value(status), 0)

    async def count_by_status(self) -> dict[str, int]:
        await trio.lowlevel.checkpoint()
        return dict(self._db.company_counts.by_status)

    async def count_linked(self) -> int:
        await trio.lowlevel.checkpoint()
        return self._db.company_counts.connected

    async def list_linked(self, *, limit: int | None = None, after_id: int = 0) -> list[Company]:
        await trio.lowlevel.checkpoint()
        if limit is not None:
            limit_value(limit)
        found = (
            r.company
            for r in self._db.companies.values()  # id order (ids only grow; rows stay)
            if r.company.id > after_id
            and r.company.whatsapp_jid is not None
            and r.company.integration_status in LINKED_STATUSES
        )
        return list(found if limit is None else itertools.islice(found, limit))

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

    async def _rotate(
        self, company_id: int, column: str, prefix: str, value: str | None, version: int | None
    ) -> str:
        """Store a new credential's hash and display prefix (and version, when given)."""
        await trio.lowlevel.checkpoint()
        issued = _secrets.issue_or_use(prefix, value)
        number = None if version is None else _secrets.check_version(version)
        row = self._db.require_company(company_id)
        if column == "api_key":
            holder = self._db.company_by_key.get(issued.digest)
            if holder is not None and holder != company_id:
                raise Conflict("api_key is in use")  # PostgreSQL: idx_companies_api_key_hash
            self._db.set_key_hash(row, issued.digest)
        else:
            row.webhook_secret_hash = issued.digest
        changes: dict[str, Any] = {
            f"{column}_prefix": issued.display,
            "updated_at": self._db.clock(),
        }
        if number is not None:
            changes[f"{column}_version"] = number
        row.company = replace(row.company, **changes)
        return issued.plaintext

    async def revoke_credentials(self, company_id: int) -> None:
        await trio.lowlevel.checkpoint()
        row = self._db.require_company(company_id)
        self._db.set_key_hash(row, None)
        row.webhook_secret_hash = None
        row.company = replace(
            row.company,
            api_key_prefix=None,
            webhook_secret_prefix=None,
            credentials_version=row.company.credentials_version + 1,
            updated_at=self._db.clock(),
        )

    async def bump_credentials_version(self, company_id: int) -> int:
        await trio.lowlevel.checkpoint()
        row = self._db.require_company(company_id)
        row.company = replace(
            row.company,
            credentials_version=row.company.credentials_version + 1,
            updated_at=self._db.clock(),
        )
        return row.company.credentials_version

    async def find_by_api_key(self, api_key: str) -> Company | None:
        await trio.lowlevel.checkpoint()
        if not isinstance(api_key, str) or not api_key or len(api_key) > 255:
            return None
        # One hash of the presented key, one dict lookup by it (PostgreSQL: the unique
        # index on api_key_hash); the stored hash is then compared in constant time.
        company_id = self._db.company_by_key.get(_secrets.hash_secret(api_key))
        row = None if company_id is None else self._db.companies.get(company_id)
        if row is None or not _secrets.matches(row.api_key_hash, api_key):
            return None
        return row.company

    async def verify_api_key(self, company_id: int, api_key: str) -> bool:
        await trio.lowlevel.checkpoint()
        row = self._db.companies.get(company_id)
        return row is not None and _secrets.matches(row.api_key_hash, api_key)

    async def verify_webhook_secret(self, company_id: int, secret: str) -> bool:
        await trio.lowlevel.checkpoint()
        row = self._db.companies.get(company_id)
        return row is not None and _secrets.matches(row.webhook_secret_hash, secret)


class MemoryAuditLog:
    """:class:`AuditLog` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def append(
        self, company_id: int | None, event_type: str, data: Mapping[str, Any] | None = None
    ) -> AuditEvent:
        await trio.lowlevel.checkpoint()
        kind = key_text("event_type", event_type)
        payload = v.json_object("data", data if data is not None else {})
        if company_id is not None:
            self._db.require_company(company_id)
        event = AuditEvent(
            id=self._db.next_id("events"),
            company_id=company_id,
            event_type=kind,
            data=payload,
            created_at=self._db.clock(),
        )
        self._db.events.append(event)
        self._db.events_of.setdefault(company_id, []).append(event)
        return event

    async def recent(self, company_id: int, limit: int = 50) -> list[AuditEvent]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        mine = list(self._db.events_of.get(company_id, ()))
        mine.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return [replace(e, data=copy.deepcopy(e.data)) for e in mine[:limit]]

    async def for_phone(self, company_id: int, phone: str, limit: int = 50) -> list[AuditEvent]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        peer = v.text("phone", phone, 32)
        mine = [e for e in self._db.events_of.get(company_id, ()) if e.data.get("phone") == peer]
        mine.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return [replace(e, data=copy.deepcopy(e.data)) for e in mine[:limit]]


def _claimable(claimed_until: datetime | None, now: datetime) -> bool:
    return claimed_until is None or claimed_until <= now


def _type_matches(event_type: str, prefix: str | None, exclude_prefix: str | None) -> bool:
    if prefix is not None and not event_type.startswith(prefix):
        return False
    return exclude_prefix is None or not event_type.startswith(exclude_prefix)


class MemoryWebhookInbox:
    """:class:`WebhookInbox` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def put(
        self, company_id: int, dedupe_key: str, event_type: str, payload: Mapping[str, Any]
    ) -> PutResult:
        await trio.lowlevel.checkpoint()
        key = key_text("dedupe_key", dedupe_key)
        kind = key_text("event_type", event_type)
        body = v.json_object("payload", payload)
        self._db.require_company(company_id)
        if (company_id, key) in self._db.inbox_keys:
            return PutResult.DUPLICATE
        now = self._db.clock()
        event = InboxEvent(
            id=self._db.next_id("inbox"),
            company_id=company_id,
            dedupe_key=key,
            event_type=kind,
            payload=body,
            status=InboxStatus.PENDING.value,
            attempts=0,
            last_error=None,
            received_at=now,
            next_attempt_at=now,
            claimed_until=None,
            processed_at=None,
        )
        self._db.put_inbox(event)
        self._db.inbox_keys[(company_id, key)] = event.id
        return PutResult.NEW

    def _due(
        self,
        now: datetime,
        company_id: int | None,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[InboxEvent]:
        """Due open events (of ``company_id``, or of every company), in id order.

        Only the open index is read: finished events cost nothing, however many are kept."""
        if company_id is None:
            groups: Iterable[dict[int, None]] = self._db.inbox_open.values()
        else:
            groups = (self._db.inbox_open.get(company_id, {}),)
        return sorted(
            (
                e
                for ids in groups
                for e in map(self._db.inbox.__getitem__, ids)
                if e.next_attempt_at <= now
                and _claimable(e.claimed_until, now)
                and _type_matches(e.event_type, prefix, exclude_prefix)
            ),
            key=lambda e: e.id,
        )

    def _take(self, events: list[InboxEvent], lease: float, now: datetime) -> list[InboxEvent]:
        until = now + timedelta(seconds=v.positive_seconds("lease", lease))
        taken = []
        for event in events:
            claimed = replace(event, claimed_until=until, attempts=event.attempts + 1)
            self._db.put_inbox(claimed)
            taken.append(claimed)
        return taken

    async def claim(self, limit: int = 10, *, lease: float = 60.0) -> list[InboxEvent]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        now = self._db.clock()
        return self._take(self._due(now, None)[:limit], lease, now)

    async def claim_for_company(
        self,
        company_id: int,
        limit: int = 10,
        *,
        lease: float = 60.0,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[InboxEvent]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        now = self._db.clock()
        busy = any(
            not _claimable(self._db.inbox[i].claimed_until, now)
            for i in self._db.inbox_open.get(company_id, ())
        )
        if busy:
            return []
        due = self._due(now, company_id, prefix, exclude_prefix)
        return self._take(due[:limit], lease, now)

    async def due_companies(
        self,
        limit: int = 100,
        *,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[int]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        companies: list[int] = []
        for event in self._due(self._db.clock(), None, prefix, exclude_prefix):
            if event.company_id not in companies:
                companies.append(event.company_id)
                if len(companies) == limit:
                    break
        return companies

    def _require(self, event_id: int) -> InboxEvent:
        event = self._db.inbox.get(event_id)
        if event is None:
            raise NotFound(f"webhook event {event_id}")
        return event

    async def mark_done(self, event_id: int) -> None:
        await trio.lowlevel.checkpoint()
        event = self._require(event_id)
        self._db.put_inbox(
            replace(
                event,
                status=InboxStatus.DONE.value,
                claimed_until=None,
                processed_at=self._db.clock(),
            )
        )

    async def mark_failed(
        self, event_id: int, error: str, *, retry_in: float | None = 60.0
    ) -> None:
        await trio.lowlevel.checkpoint()
        message = v.clipped("error", error, 2000)
        event = self._require(event_id)
        now = self._db.clock()
        if retry_in is None:
            status, due = InboxStatus.DEAD.value, event.next_attempt_at
        else:
            status = InboxStatus.FAILED.value
            due = now + timedelta(seconds=max(0.0, float(retry_in)))
        self._db.put_inbox(
            replace(
                event, status=status, last_error=message, claimed_until=None, next_attempt_at=due
            )
        )

    async def get(self, event_id: int) -> InboxEvent | None:
        await trio.lowlevel.checkpoint()
        return self._db.inbox.get(event_id)

    async def pending_count(self) -> int:
        await trio.lowlevel.checkpoint()
        return sum(len(ids) for ids in self._db.inbox_open.values())


class MemoryOutbox:
    """:class:`Outbox` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def enqueue(
        self,
        kind: str,
        idempotency_key: str,
        company_id: int | None,
        payload: Mapping[str, Any],
        *,
        delay: float = 0.0,
    ) -> OutboxItem:
        await trio.lowlevel.checkpoint()
        kind = key_text("kind", kind)
        key = key_text("idempotency_key", idempotency_key)
        body = v.json_object("payload", payload)
        wait = v.optional_number("delay", delay) or 0.0
        existing = self._db.outbox_keys.get(key)
        if existing is not None:
            return self._db.outbox[existing]
        if company_id is not None:
            self._db.require_company(company_id)
        now = self._db.clock()
        item = OutboxItem(
            id=self._db.next_id("outbox"),
            kind=kind,
            idempotency_key=key,
            company_id=company_id,
            payload=body,
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now + timedelta(seconds=max(0.0, wait)),
            claimed_until=None,
            last_error=None,
            created_at=now,
            updated_at=now,
            delivered_at=None,
        )
        self._db.outbox[item.id] = item
        self._db.outbox_keys[key] = item.id
        self._db.outbox_pending[item.id] = None
        before = self._db.outbox_latest.get((company_id, kind))
        self._db.outbox_latest[(company_id, kind)] = item.id
        older = None if before is None else self._db.outbox.get(before)
        if older is not None and older.status != OutboxStatus.PENDING.value:
            # superseded: retention may take it now (it skipped it while it was the newest)
            heapq.heappush(self._db.outbox_finished, (older.updated_at, older.id))
        return item

    async def claim_due(
        self, limit: int = 10, *, lease: float = 60.0, kind: str | None = None
    ) -> list[OutboxItem]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        wanted = None if kind is None else key_text("kind", kind)
        now = self._db.clock()
        until = now + timedelta(seconds=v.positive_seconds("lease", lease))
        due = sorted(
            (
                i
                for i in map(self._db.outbox.__getitem__, self._db.outbox_pending)
                if i.next_attempt_at <= now
                and _claimable(i.claimed_until, now)
                and (wanted is None or i.kind == wanted)
            ),
            key=lambda i: (i.next_attempt_at, i.id),
        )[:limit]
        taken = []
        for item in due:
            claimed = replace(item, claimed_until=until, updated_at=now)
            self._db.outbox[item.id] = claimed
            taken.append(claimed)
        return taken

    def _require(self, item_id: int) -> OutboxItem:
        item = self._db.outbox.get(item_id)
        if item is None:
            raise NotFound(f"outbox item {item_id}")
        return item

    async def record_attempt(
        self,
        item_id: int,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> OutboxItem:
        await trio.lowlevel.checkpoint()
        outcome = AttemptOutcome(outcome)
        message = v.clipped("error", error, 2000)
        item = self._require(item_id)
        now = self._db.clock()
        changes: dict[str, Any] = {
            "attempts": item.attempts + 1,
            "claimed_until": None,
            "updated_at": now,
            "last_error": message if message is not None else item.last_error,
        }
        if outcome is AttemptOutcome.DELIVERED:
            changes.update(status=OutboxStatus.DELIVERED.value, delivered_at=now)
        elif outcome is AttemptOutcome.FAILED:
            changes.update(status=OutboxStatus.FAILED.value)
        else:
            wait = max(0.0, v.optional_number("retry_in", retry_in) or 0.0)
            changes.update(next_attempt_at=now + timedelta(seconds=wait))
        updated = replace(item, **changes)
        self._db.outbox[item_id] = updated
        if updated.status != OutboxStatus.PENDING.value:
            self._db.outbox_pending.pop(item_id, None)
            heapq.heappush(self._db.outbox_finished, (now, item_id))
        return updated

    async def reopen(self, item_id: int) -> OutboxItem:
        await trio.lowlevel.checkpoint()
        item = self._require(item_id)
        now = self._db.clock()
        updated = replace(
            item,
            status=OutboxStatus.PENDING.value,
            next_attempt_at=now,
            claimed_until=None,
            delivered_at=None,
            updated_at=now,
        )
        self._db.outbox[item_id] = updated
        self._db.outbox_pending[item_id] = None
        return updated

    async def get(self, item_id: int) -> OutboxItem | None:
        await trio.lowlevel.checkpoint()
        return self._db.outbox.get(item_id)

    async def get_by_key(self, idempotency_key: str) -> OutboxItem | None:
        await trio.lowlevel.checkpoint()
        item_id = self._db.outbox_keys.get(idempotency_key)
        return None if item_id is None else self._db.outbox[item_id]

    async def backlog(self) -> int:
        await trio.lowlevel.checkpoint()
        return len(self._db.outbox_pending)


def _message_status(status: object) -> str:
    try:
        return MessageStatus(str(status)).value
    except ValueError:
        raise ValidationError("status", f"unknown message status {status!r}") from None


class MemoryMessageLog:
    """:class:`MessageLog` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def record_inbound(
        self, company_id: int, wa_message_id: str, peer_phone: str, text: str
    ) -> bool:
        await trio.lowlevel.checkpoint()
        wa_id = key_text("wa_message_id", wa_message_id)
        peer = v.text("peer_phone", peer_phone, 32)
        body = v.text("text", text, 65536)
        self._db.require_company(company_id)
        if (company_id, wa_id) in self._db.message_keys:
            return False
        self._insert(company_id, Direction.INBOUND, wa_id, peer, body, MessageStatus.RECEIVED)
        return True

    async def record_inbound_many(
        self, company_id: int, messages: Sequence[tuple[str, str, str]]
    ) -> list[bool]:
        await trio.lowlevel.checkpoint()
        rows = [
            (
                key_text("wa_message_id", wa_id),
                v.text("peer_phone", peer, 32),
                v.text("text", text, 65536),
            )
            for wa_id, peer, text in messages
        ]  # every row is checked before any is stored: all or none
        self._db.require_company(company_id)
        fresh: list[bool] = []
        for wa_id, peer, body in rows:
            new = (company_id, wa_id) not in self._db.message_keys
            if new:
                self._insert(
                    company_id, Direction.INBOUND, wa_id, peer, body, MessageStatus.RECEIVED
                )
            fresh.append(new)
        return fresh

    def _insert(
        self,
        company_id: int,
        direction: Direction,
        wa_id: str | None,
        peer: str,
        body: str,
        status: MessageStatus,
    ) -> Message:
        now = self._db.clock()
        message = Message(
            id=self._db.next_id("messages"),
            company_id=company_id,
            direction=direction.value,
            wa_message_id=wa_id,
            peer_phone=peer,
            text=body,
            status=status.value,
            created_at=now,
            updated_at=now,
        )
        self._db.messages[message.id] = message
        if wa_id is not None:
            self._db.message_keys[(company_id, wa_id)] = message.id
        self._db.messages_of.setdefault(company_id, {})[message.id] = None
        self._db.set_queued(message)
        return message

    async def record_outbound(
        self,
        company_id: int,
        peer_phone: str,
        text: str,
        *,
        wa_message_id: str | None = None,
    ) -> Message:
        await trio.lowlevel.checkpoint()
        wa_id = None if wa_message_id is None else key_text("wa_message_id", wa_message_id)
        peer = v.text("peer_phone", peer_phone, 32)
        body = v.text("text", text, 65536)
        self._db.require_company(company_id)
        if wa_id is not None and (company_id, wa_id) in self._db.message_keys:
            raise Conflict(f"message {wa_id} exists")
        return self._insert(company_id, Direction.OUTBOUND, wa_id, peer, body, MessageStatus.QUEUED)

    async def set_status(
        self, message_id: int, status: str, *, wa_message_id: str | None = None
    ) -> Message:
        await trio.lowlevel.checkpoint()
        new_status = _message_status(status)
        wa_id = None if wa_message_id is None else key_text("wa_message_id", wa_message_id)
        message = self._db.messages.get(message_id)
        if message is None:
            raise NotFound(f"message {message_id}")
        if wa_id is not None and wa_id != message.wa_message_id:
            if (message.company_id, wa_id) in self._db.message_keys:
                raise Conflict(f"message {wa_id} exists")
            if message.wa_message_id is not None:  # the row's old id is free again
                self._db.message_keys.pop((message.company_id, message.wa_message_id), None)
            self._db.message_keys[(message.company_id, wa_id)] = message.id
        updated = replace(
            message,
            status=new_status,
            wa_message_id=wa_id if wa_id is not None else message.wa_message_id,
            updated_at=self._db.clock(),
        )
        self._db.messages[message_id] = updated
        self._db.set_queued(updated)
        return updated

    async def count_attempt(self, message_id: int) -> int:
        await trio.lowlevel.checkpoint()
        message = self._db.messages.get(message_id)
        if message is None or message.direction != "out":
            raise NotFound(f"outbound message {message_id}")
        updated = replace(message, attempts=message.attempts + 1, updated_at=self._db.clock())
        self._db.messages[message_id] = updated
        return updated.attempts

    async def get_by_wa_id(self, company_id: int, wa_message_id: str) -> Message | None:
        await trio.lowlevel.checkpoint()
        message_id = self._db.message_keys.get((company_id, wa_message_id))
        return None if message_id is None else self._db.messages[message_id]

    async def recent(
        self, company_id: int, limit: int = 50, *, peer_phone: str | None = None
    ) -> list[Message]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        mine = [
            m
            for m in map(self._db.messages.__getitem__, self._db.messages_of.get(company_id, ()))
            if peer_phone is None or m.peer_phone == peer_phone
        ]
        mine.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        return mine[:limit]

    async def latest_by_peer(
        self, company_id: int, peer_phones: Sequence[str]
    ) -> dict[str, Message]:
        await trio.lowlevel.checkpoint()
        wanted = {v.text("peer_phone", p, 32) for p in peer_list(peer_phones)}
        latest: dict[str, Message] = {}
        for m in map(self._db.messages.__getitem__, self._db.messages_of.get(company_id, ())):
            if m.peer_phone in wanted:
                seen = latest.get(m.peer_phone)
                if seen is None or (m.created_at, m.id) > (seen.created_at, seen.id):
                    latest[m.peer_phone] = m
        return latest

    async def pending_outbound(self, company_id: int, limit: int = 1000) -> list[Message]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        ids = sorted(self._db.queued_out.get(company_id, ()))[:limit]
        return [self._db.messages[i] for i in ids]


#: The most phones one :meth:`MessageLog.latest_by_peer` call takes (a list page's worth).
MAX_PEERS = 500


def peer_list(peer_phones: Sequence[str]) -> Sequence[str]:
    """``peer_phones`` checked as a list of at most :data:`MAX_PEERS` (shared with PostgreSQL)."""
    if isinstance(peer_phones, str) or len(peer_phones) > MAX_PEERS:
        raise ValidationError("peer_phones", f"must be a list of at most {MAX_PEERS} phones")
    return peer_phones


def check_service(service: SalonService) -> SalonService:
    """Validate one service row (shared with the PostgreSQL adapter)."""
    v.positive_int("service_id", service.service_id)
    v.text("service.title", service.title, 255)
    v.optional_int("service.category_id", service.category_id)
    v.optional_number("service.price_min", service.price_min)
    v.optional_number("service.price_max", service.price_max)
    if service.duration is not None and (
        isinstance(service.duration, bool)
        or not isinstance(service.duration, int)
        or service.duration < 0
    ):
        raise ValidationError("service.duration", "must be a non-negative number of seconds")
    v.boolean("service.active", service.active)
    v.optional_text("service.description", service.description, MAX_DESCRIPTION)
    staff_ids = tuple(service.staff_ids)
    for staff_id in staff_ids:
        v.positive_int("service.staff_ids", staff_id)
    check_unique(staff_ids, "service.staff_ids")
    synonyms = tuple(service.synonyms)
    if len(synonyms) > MAX_SYNONYMS:
        raise ValidationError("service.synonyms", f"must be at most {MAX_SYNONYMS}")
    for word in synonyms:
        if not v.text("service.synonyms", word, 255).strip():
            raise ValidationError("service.synonyms", "must not hold empty words")
    return replace(service, staff_ids=staff_ids, synonyms=synonyms)


def check_category(category: SalonCategory) -> SalonCategory:
    """Validate one category row (shared with the PostgreSQL adapter)."""
    v.positive_int("category_id", category.category_id)
    v.text("category.title", category.title, 255)
    v.boolean("category.active", category.active)
    return category


def check_staff(member: SalonStaff) -> SalonStaff:
    """Validate one staff row (shared with the PostgreSQL adapter)."""
    v.positive_int("staff_id", member.staff_id)
    v.text("staff.name", member.name, 255)
    v.optional_text("staff.specialization", member.specialization, 255)
    v.boolean("staff.bookable", member.bookable)
    v.optional_number("staff.rating", member.rating)
    v.boolean("staff.active", member.active)
    return member


def details_fields(details: SalonDetails | None) -> dict[str, Any]:
    """The company columns a catalog refresh sets (``None`` values are left unchanged)."""
    if details is None:
        return {}
    given = {
        "title": details.title,
        "phone": details.phone,
        "email": details.email,
        "address": details.address,
        "timezone": details.timezone,
    }
    fields = clean_company_fields({k: val for k, val in given.items() if val is not None})
    if details.schedule is not None:
        fields.update(opening_fields(details))
    elif details.opens_at is not None or details.closes_at is not None:
        raise ValidationError("schedule", "is required with opening hours")
    return fields


def opening_fields(details: SalonDetails) -> dict[str, Any]:
    """``schedule``, ``opens_at``, ``closes_at``: written together (the span may be unknown)."""
    schedule = v.text("schedule", details.schedule, 500)
    opens, closes = details.opens_at, details.closes_at
    if (opens is None) != (closes is None):
        raise ValidationError("opens_at", "must be given with closes_at")
    for name, value in (("opens_at", opens), ("closes_at", closes)):
        if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
            raise ValidationError(name, "must be a local time of day (no zone)")
    return {"schedule": schedule, "opens_at": opens, "closes_at": closes}


def check_unique(ids: Sequence[int], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise ValidationError(what, "has duplicate ids")


class MemorySalonCatalog:
    """:class:`SalonCatalog` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def replace_catalog(
        self,
        company_id: int,
        details: SalonDetails | None,
        services: Sequence[SalonService],
        staff: Sequence[SalonStaff],
        categories: Sequence[SalonCategory] | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        services = [check_service(s) for s in services]
        staff = [check_staff(s) for s in staff]
        check_unique([s.service_id for s in services], "services")
        check_unique([s.staff_id for s in staff], "staff")
        groups = None if categories is None else [check_category(c) for c in categories]
        if groups is not None:
            check_unique([c.category_id for c in groups], "categories")
        fields = details_fields(details)
        row = self._db.require_company(company_id)
        now = self._db.clock()
        old_services = self._db.services.setdefault(company_id, {})
        old_staff = self._db.staff.setdefault(company_id, {})
        fresh_services = {s.service_id: replace(s, updated_at=now) for s in services}
        fresh_staff = {s.staff_id: replace(s, updated_at=now) for s in staff}
        for sid, svc in old_services.items():
            if sid not in fresh_services:
                fresh_services[sid] = replace(svc, active=False, updated_at=now)
        for sid, member in old_staff.items():
            if sid not in fresh_staff:
                fresh_staff[sid] = replace(member, active=False, updated_at=now)
        self._db.services[company_id] = fresh_services
        self._db.staff[company_id] = fresh_staff
        if groups is not None:
            old_groups = self._db.categories.get(company_id, {})
            fresh_groups = {c.category_id: replace(c, updated_at=now) for c in groups}
            for gid, group in old_groups.items():
                if gid not in fresh_groups:
                    fresh_groups[gid] = replace(group, active=False, updated_at=now)
            self._db.categories[company_id] = fresh_groups
        if fields:
            row.company = replace(row.company, **fields, updated_at=now)

    async def get_catalog(self, company_id: int, *, active_only: bool = True) -> Catalog:
        await trio.lowlevel.checkpoint()
        services = sorted(
            self._db.services.get(company_id, {}).values(), key=lambda s: s.service_id
        )
        staff = sorted(self._db.staff.get(company_id, {}).values(), key=lambda s: s.staff_id)
        groups = sorted(
            self._db.categories.get(company_id, {}).values(), key=lambda c: c.category_id
        )
        if active_only:
            services = [s for s in services if s.active]
            staff = [s for s in staff if s.active]
            groups = [c for c in groups if c.active]
        return Catalog(services=services, staff=staff, categories=groups)

    async def record_sync(
        self, company_id: int, *, ok: bool, error: str | None = None
    ) -> SyncState:
        await trio.lowlevel.checkpoint()
        message = v.clipped("error", error, 2000)
        self._db.require_company(company_id)
        now = self._db.clock()
        old = self._db.sync.get(company_id)
        state = SyncState(
            company_id=company_id,
            last_success_at=now if ok else (old.last_success_at if old else None),
            last_error=None if ok else message,
            last_attempt_at=now,
        )
        self._db.sync[company_id] = state
        status = self._db.companies[company_id].company.integration_status
        self._db.sync_due.leave(company_id, status)
        self._db.sync_due.place(company_id, status, state)
        return state

    async def get_sync_state(self, company_id: int) -> SyncState | None:
        await trio.lowlevel.checkpoint()
        return self._db.sync.get(company_id)

    async def list_sync_due(
        self,
        statuses: Iterable[StatusLike],
        *,
        succeeded_before: datetime,
        failed_before: datetime,
        limit: int = 100,
    ) -> list[int]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        wanted = set(status_values(statuses))
        due: list[tuple[bool, datetime | None, int]] = []
        candidates = self._db.sync_due.candidates(
            sorted(wanted),
            max(succeeded_before, failed_before),
            lambda status: self._db.company_counts.by_status.get(status, 0),
            self._db.attempted_in,
        )
        for cid in candidates:  # a superset of the due companies, each checked below
            company = self._db.companies[cid].company
            if company.integration_status not in wanted or not company.sync_enabled:
                continue
            state = self._db.sync.get(cid)
            if state is None or state.last_attempt_at is None:
                due.append((False, None, cid))
                continue
            stale = state.last_success_at is None or state.last_success_at < succeeded_before
            if stale if state.last_error is None else state.last_attempt_at < failed_before:
                due.append((True, state.last_attempt_at, cid))
        due.sort(key=lambda d: (d[0], d[1] or succeeded_before, d[2]))
        return [cid for _, _, cid in due[:limit]]
