"""Rows and value objects the repositories return: frozen dataclasses, no behaviour.

Timestamps are timezone-aware UTC ``datetime`` objects. Secrets never appear here: a company
carries only the short display prefixes of its API key and webhook secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any


class CompanyStatus(StrEnum):
    """``integration_status`` values (see DESIGN.md, company actor states)."""

    PENDING = "pending"
    LINKING = "linking"
    ACTIVE = "active"
    RECONNECTING = "reconnecting"
    LOGGED_OUT = "logged_out"
    FROZEN = "frozen"
    UNINSTALLED = "uninstalled"
    ACTIVATION_FAILED = "activation_failed"


#: Statuses in which a company holds WhatsApp credentials its session should run with: the
#: companies restored at node start (``list_linked``). Frozen ones keep credentials but stay off.
LINKED_STATUSES = ("active", "reconnecting", "activation_failed")


@dataclass(frozen=True)
class Company:
    """One salon (the later seed's ``companies`` row plus our columns)."""

    id: int
    yclients_id: int
    company_id: int | None
    title: str | None
    phone: str | None
    email: str | None
    address: str | None
    timezone: str
    whatsapp_enabled: bool
    whatsapp_connected: bool
    whatsapp_phone: str | None
    whatsapp_jid: str | None
    whatsapp_connected_at: datetime | None
    connected_at: datetime | None
    ai_enabled: bool
    sync_enabled: bool
    integration_status: str
    status_changed_at: datetime | None
    last_error: str | None
    api_key_prefix: str | None
    webhook_secret_prefix: str | None
    raw_data: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime | None
    #: Versions of the API key and webhook secret (bumped when a derived one is re-issued);
    #: not secret: without the server secret they derive nothing.
    api_key_version: int = 0
    webhook_secret_version: int = 0
    #: Version of the web credentials (connect link, company JWTs): bumped when the connect URL
    #: is re-issued and on uninstall; a JWT issued at an older version is refused.
    credentials_version: int = 0
    #: The WhatsApp session was opened elsewhere; kept stopped until taken back (request-qr).
    whatsapp_replaced: bool = False
    #: Opening hours as synced: the salon's own words (YClients' ``schedule``) and, when they
    #: name one daily span, its local opening and closing time.
    schedule: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None

    @property
    def status(self) -> CompanyStatus:
        """``integration_status`` as the enum."""
        return CompanyStatus(self.integration_status)


@dataclass(frozen=True)
class NewCompany:
    """What :meth:`CompanyRepository.create` returns: the row and its secrets, shown once."""

    company: Company
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)


@dataclass(frozen=True)
class AuditEvent:
    """One ``marketplace_events`` row (append-only audit log)."""

    id: int
    company_id: int | None
    event_type: str
    data: dict[str, Any]
    created_at: datetime


class PutResult(StrEnum):
    """Outcome of :meth:`WebhookInbox.put`."""

    NEW = "new"
    DUPLICATE = "duplicate"


class InboxStatus(StrEnum):
    """``webhook_events.status``: ``failed`` rows are retried at ``next_attempt_at``."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


@dataclass(frozen=True)
class InboxEvent:
    """One ``webhook_events`` row."""

    id: int
    company_id: int
    dedupe_key: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    next_attempt_at: datetime
    claimed_until: datetime | None
    processed_at: datetime | None


class OutboxStatus(StrEnum):
    """``outbox.status``; ``delivered`` and ``failed`` are terminal until :meth:`Outbox.reopen`."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AttemptOutcome(StrEnum):
    """What one delivery attempt ended with (see :meth:`Outbox.record_attempt`)."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboxItem:
    """One ``outbox`` row: a durable outbound call."""

    id: int
    kind: str
    idempotency_key: str
    company_id: int | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # handed to WhatsApp several times, never answered: may have gone


@dataclass(frozen=True)
class Message:
    """One ``messages`` row: a WhatsApp message in or out."""

    id: int
    company_id: int
    direction: str
    wa_message_id: str | None
    peer_phone: str
    text: str
    status: str
    created_at: datetime
    updated_at: datetime
    attempts: int = 0  # outbound: hand-overs to the WhatsApp session (> 1: may have gone twice)


@dataclass(frozen=True)
class SalonService:
    """A YClients service as synced (``salon_services``)."""

    service_id: int
    title: str
    category_id: int | None = None
    price_min: float | None = None
    price_max: float | None = None
    duration: int | None = None  # seconds
    active: bool = True
    updated_at: datetime | None = None
    #: YClients' ``comment``: what the service is, in the salon's words.
    description: str | None = None
    #: The masters who do it, in id order (empty: not known).
    staff_ids: tuple[int, ...] = ()
    #: The salon's own words for it ("шеллак"), in the order given.
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SalonCategory:
    """A YClients service category as synced (``salon_categories``)."""

    category_id: int
    title: str
    active: bool = True
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SalonStaff:
    """A YClients staff member as synced (``salon_staff``)."""

    staff_id: int
    name: str
    specialization: str | None = None
    bookable: bool = True
    rating: float | None = None
    active: bool = True
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SalonDetails:
    """Company details refreshed with the catalog (written to ``companies``)."""

    title: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    timezone: str | None = None
    #: Opening hours: the text (``schedule``) and the daily span it names (both or neither).
    #: ``None`` leaves the stored value; refreshed together, so a schedule without a span
    #: clears the span.
    schedule: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None


@dataclass(frozen=True)
class Catalog:
    """A salon's synced catalog (active and inactive rows, ordered by id)."""

    services: list[SalonService]
    staff: list[SalonStaff]
    categories: list[SalonCategory] = field(default_factory=list)


@dataclass(frozen=True)
class SyncState:
    """``salon_sync_state``: when a sync last succeeded or failed."""

    company_id: int
    last_success_at: datetime | None
    last_error: str | None
    last_attempt_at: datetime | None


@dataclass(frozen=True)
class SalonRecord:
    """A YClients record (a booked visit) as last seen (``salon_records``).

    ``starts_at`` is YClients' ``datetime``; ``changed_at`` its ``last_change_date`` (the
    order of changes: an older one never overwrites a newer one). ``raw`` is the record as
    YClients sent it. ``updated_at`` is set by the storage when the row is written.
    """

    company_id: int
    record_id: int
    client_id: int | None = None
    client_phone: str | None = None
    client_name: str | None = None
    staff_id: int | None = None
    services: list[dict[str, Any]] = field(default_factory=list)
    starts_at: datetime | None = None
    seance_length: int | None = None
    attendance: int | None = None
    deleted: bool = False
    api_id: str | None = None
    changed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class QrCode:
    """The current QR of a linking session (Redis ``marketplace:qr:{id}``)."""

    qr: str
    generated_at: float  # unix seconds
    lifetime: float = 20.0  # seconds the code stays valid (whatsmeow: 60 for the first, then 20)
    #: The company actor incarnation that showed it: a later incarnation (a restart, a crash, or
    #: another process) never serves it, since the session behind the code is gone.
    incarnation: str = ""


@dataclass(frozen=True)
class RateDecision:
    """Result of one rate-limit hit: allowed or not, hits left, seconds until the window ends."""

    allowed: bool
    remaining: int
    retry_after: float


@dataclass(frozen=True)
class BackendHealth:
    """One backend's readiness for ``/health/ready``."""

    name: str
    kind: str  # "postgres" | "redis" | "memory"
    ok: bool
    error: str | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class PoolStats:
    """PostgreSQL pool occupancy (for health views and the cancellation tests)."""

    size: int
    idle: int
    max_size: int
    releasing: int


class ConversationMode(StrEnum):
    """Who answers a client: the assistant, a person (``handoff``), or nobody (``opted_out``:
    the client asked us to stop writing)."""

    ASSISTANT = "assistant"
    HANDOFF = "handoff"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class Conversation:
    """One client's chat with a salon's assistant (``conversations``), keyed by
    ``(company_id, phone)``; ``phone`` is canonical digits.

    ``state`` is the assistant's own JSON (flow, details, offered options, pending
    confirmation): storage keeps it opaque. ``version`` grows by one on every save, so two
    writers cannot both win (:class:`Conflict`). ``mode_until``: when a ``handoff`` (or the
    silence after the salon's staff wrote from the linked phone) ends by itself; ``None`` =
    until changed. ``last_message_at`` is the last message either way, for the newest-first
    list.
    """

    company_id: int
    phone: str
    mode: ConversationMode
    state: dict[str, Any]
    version: int
    client_name: str | None = None
    mode_until: datetime | None = None
    needs_person: bool = False
    last_message_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ReminderStatus(StrEnum):
    """Where one planned message (``reminders`` row) stands.

    ``planned`` → ``claimed`` (a scheduler holds it until ``claim_until``) → ``sent`` or
    ``skipped``; ``planned`` → ``dropped`` (the visit was cancelled or moved) or ``skipped``
    (planning decided against it). A claimed row whose lease ran out is claimable again.
    """

    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"
    DROPPED = "dropped"


@dataclass(frozen=True)
class ReminderKey:
    """What makes a planned message unique within its company: at most one message per
    ``(record_id, kind, visit_time)``, ever. ``visit_time`` is the visit's start (UTC)."""

    record_id: int
    kind: str
    visit_time: datetime


@dataclass(frozen=True, kw_only=True)
class PlannedReminder:
    """One message planning wants sent (the input of ``Reminders.plan``).

    ``kind`` is ``day_before`` / ``two_hours`` / ``review`` (storage only checks its shape);
    ``send_by`` the last moment it is still worth sending (``None``: no limit); ``phone`` the
    client's canonical digits; ``details`` what the sender needs to word it (service, master,
    …), opaque JSON to storage, refreshed by every re-plan while the row is still planned.
    """

    record_id: int
    kind: str
    visit_time: datetime
    due_at: datetime
    send_by: datetime | None = None
    visit_id: int | None = None
    phone: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> ReminderKey:
        return ReminderKey(self.record_id, self.kind, self.visit_time)


@dataclass(frozen=True)
class Reminder:
    """One planned message (``reminders``), unique per ``(company_id, record_id, kind,
    visit_time)``.

    ``due_at`` is ``None`` only for a row that was skipped before it was ever planned.
    ``message_id`` is decided at the first claim and kept on every later claim, so a send
    retried after a crash carries the same id and the outbound queue deduplicates it.
    ``attempts`` counts claims. ``reason`` says why a row was skipped or dropped.
    """

    id: int
    company_id: int
    record_id: int
    kind: str
    visit_time: datetime
    status: ReminderStatus
    due_at: datetime | None = None
    send_by: datetime | None = None
    visit_id: int | None = None
    phone: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    message_id: str | None = None
    claimed_by: str | None = None
    claim_until: datetime | None = None
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> ReminderKey:
        return ReminderKey(self.record_id, self.kind, self.visit_time)


@dataclass(frozen=True)
class Review:
    """A client's rating of one visit (``reviews``), one per ``(company_id, record_id)``:
    a later rating of the same visit replaces the rating and the comment."""

    company_id: int
    record_id: int
    visit_id: int | None
    phone: str
    rating: int
    comment: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
