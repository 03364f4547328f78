"""Repository interfaces. PostgreSQL/Redis adapters and in-memory twins implement them.

Every method is a trio-flavoured coroutine. Errors: :class:`StorageUnavailable` when the
backend cannot be reached, :class:`StorageTimeout` when it is too slow, :class:`ValidationError`
for values that cannot be stored, plus the method-specific ones named in each docstring.
Cancellation: a cancelled call either took effect completely or not at all (each call is one
transaction); the PostgreSQL connection it used goes back to the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ._models import (
    AttemptOutcome,
    AuditEvent,
    Catalog,
    Company,
    CompanyStatus,
    Conversation,
    ConversationMode,
    InboxEvent,
    Message,
    NewCompany,
    OutboxItem,
    PlannedReminder,
    PutResult,
    QrCode,
    RateDecision,
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

if TYPE_CHECKING:
    import trio  # annotations only: the Protocols load no event loop

StatusLike = str | CompanyStatus


class CompanyRepository(Protocol):
    """Salons (``companies``) and their credentials."""

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
        """Register a salon with a fresh API key and webhook secret (returned once).

        ``api_key`` / ``webhook_secret`` use the given secrets instead of random ones (only
        their hashes are stored; :class:`ValidationError` if one lacks its ``sk_`` / ``whs_``
        prefix or is too short); ``key_version`` is stored as both credentials' version.
        Raises :class:`Conflict` when a company for ``yclients_id`` already exists.
        """
        ...

    async def get(self, company_id: int) -> Company | None:
        """The company with our id, or ``None``."""
        ...

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, Company]:
        """The companies of ``company_ids`` in one read, by id; an unknown id is absent."""
        ...

    async def get_by_salon(self, yclients_id: int) -> Company | None:
        """The company registered for a YClients salon id, or ``None``."""
        ...

    async def update(self, company_id: int, **fields: Any) -> Company:
        """Set the named columns (see ``COMPANY_FIELDS``); raises :class:`NotFound`."""
        ...

    async def transition(
        self,
        company_id: int,
        from_states: Iterable[StatusLike],
        to_state: StatusLike,
        **fields: Any,
    ) -> Company | None:
        """Atomically move to ``to_state`` (and set ``fields``) if the status is in ``from_states``.

        Returns the updated company, or ``None`` when the status was elsewhere (or the company
        does not exist): of two racing transitions from the same state only one wins.
        """
        ...

    async def list_by_status(
        self, status: StatusLike | None = None, *, limit: int = 100, after_id: int = 0
    ) -> list[Company]:
        """Companies (all, or with one status) in id order, keyset-paginated by ``after_id``."""
        ...

    async def count(self, status: StatusLike | None = None) -> int:
        """How many companies (with the status, if given)."""
        ...

    async def count_by_status(self) -> dict[str, int]:
        """Company count per ``integration_status`` (statuses with no company are absent)."""
        ...

    async def count_linked(self) -> int:
        """How many companies have WhatsApp connected right now (``whatsapp_connected``)."""
        ...

    async def list_linked(self, *, limit: int | None = None, after_id: int = 0) -> list[Company]:
        """Companies holding WhatsApp credentials with a status in ``LINKED_STATUSES`` (not
        frozen, not uninstalled), to restore their sessions at start — connected or not; in
        id order, keyset-paginated by ``after_id`` (at most ``limit`` when given)."""
        ...

    async def rotate_api_key(
        self, company_id: int, api_key: str | None = None, *, version: int | None = None
    ) -> str:
        """Issue a new ``sk_`` key (returned once); the old one stops working. :class:`NotFound`.

        ``api_key`` stores that key instead of a random one; ``version`` (when given) is stored
        as ``api_key_version`` in the same write, else the version stays as it was.
        """
        ...

    async def rotate_webhook_secret(
        self, company_id: int, secret: str | None = None, *, version: int | None = None
    ) -> str:
        """Issue a new ``whs_`` secret (returned once); the old one stops working.

        ``secret`` and ``version`` as in :meth:`rotate_api_key`.
        """
        ...

    async def revoke_credentials(self, company_id: int) -> None:
        """Drop the API key and webhook secret (uninstall): nothing verifies afterwards.

        Also bumps ``credentials_version``, so the company's JWTs stop working too.
        """
        ...

    async def bump_credentials_version(self, company_id: int) -> int:
        """Move ``credentials_version`` on by one (the connect URL was re-issued) and return
        the new version: JWTs issued before are refused from now on. :class:`NotFound`."""
        ...

    async def find_by_api_key(self, api_key: str) -> Company | None:
        """The company owning this API key, or ``None`` (lookup by hash)."""
        ...

    async def verify_api_key(self, company_id: int, api_key: str) -> bool:
        """Whether ``api_key`` is this company's current key (constant-time compare)."""
        ...

    async def verify_webhook_secret(self, company_id: int, secret: str) -> bool:
        """Whether ``secret`` is this company's current webhook secret (constant-time)."""
        ...


class AuditLog(Protocol):
    """Append-only ``marketplace_events``."""

    async def append(
        self, company_id: int | None, event_type: str, data: Mapping[str, Any] | None = None
    ) -> AuditEvent:
        """Record one event; :class:`NotFound` if the company does not exist."""
        ...

    async def recent(self, company_id: int, limit: int = 50) -> list[AuditEvent]:
        """The company's latest events, newest first."""
        ...

    async def for_phone(self, company_id: int, phone: str, limit: int = 50) -> list[AuditEvent]:
        """The company's latest events about one client (``data["phone"] == phone``), newest
        first: what the assistant and the salon did in that client's chat."""
        ...


class WebhookInbox(Protocol):
    """Durable inbox of YClients webhooks (``webhook_events``): store first, handle later."""

    async def put(
        self, company_id: int, dedupe_key: str, event_type: str, payload: Mapping[str, Any]
    ) -> PutResult:
        """Store an event once: ``NEW`` for a new (company, key), else ``DUPLICATE``."""
        ...

    async def claim(self, limit: int = 10, *, lease: float = 60.0) -> list[InboxEvent]:
        """Claim up to ``limit`` due events of any company, oldest first, for ``lease`` seconds.

        Concurrent claimers never receive the same event while its lease runs; an event whose
        claimer crashed comes back when the lease ends. ``attempts`` counts claims.
        """
        ...

    async def claim_for_company(
        self,
        company_id: int,
        limit: int = 10,
        *,
        lease: float = 60.0,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[InboxEvent]:
        """Claim one company's due events in id order; empty while another claim of it is live.

        This keeps a company's events in order: at most one claimer per company at a time
        (whatever the event types). ``prefix`` claims only event types starting with it,
        ``exclude_prefix`` skips those starting with it (the record worker leaves
        ``lifecycle:`` events to their own handler).
        """
        ...

    async def due_companies(
        self,
        limit: int = 100,
        *,
        prefix: str | None = None,
        exclude_prefix: str | None = None,
    ) -> list[int]:
        """Companies with due, unclaimed events (filtered as in :meth:`claim_for_company`),
        the one with the oldest such event first: what a worker should claim next."""
        ...

    async def mark_done(self, event_id: int) -> None:
        """The event was handled; it is never claimed again."""
        ...

    async def mark_failed(
        self, event_id: int, error: str, *, retry_in: float | None = 60.0
    ) -> None:
        """Handling failed: retried after ``retry_in`` seconds, or never (``None``: dead)."""
        ...

    async def get(self, event_id: int) -> InboxEvent | None: ...

    async def pending_count(self) -> int:
        """Events still to handle (pending or failed-and-retryable)."""
        ...


class Outbox(Protocol):
    """Durable outbound calls (``outbox``) with attempts, backoff and terminal states."""

    async def enqueue(
        self,
        kind: str,
        idempotency_key: str,
        company_id: int | None,
        payload: Mapping[str, Any],
        *,
        delay: float = 0.0,
    ) -> OutboxItem:
        """Add an item due after ``delay`` seconds; an existing key returns the existing item."""
        ...

    async def claim_due(
        self, limit: int = 10, *, lease: float = 60.0, kind: str | None = None
    ) -> list[OutboxItem]:
        """Claim due pending items (oldest due first) for ``lease`` seconds, as the inbox does;
        only items of ``kind`` when given (each worker claims its own kind)."""
        ...

    async def record_attempt(
        self,
        item_id: int,
        outcome: AttemptOutcome,
        *,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> OutboxItem:
        """Count an attempt: delivered, failed for good, or retry after ``retry_in`` seconds.

        Releases the claim. A retry never changes the status: a late report from a worker
        whose lease ran out cannot reopen an item another worker finished.
        :class:`NotFound` for an unknown id.
        """
        ...

    async def reopen(self, item_id: int) -> OutboxItem:
        """Make a delivered/failed item pending and due now (manual re-send)."""
        ...

    async def get(self, item_id: int) -> OutboxItem | None: ...

    async def get_by_key(self, idempotency_key: str) -> OutboxItem | None: ...

    async def backlog(self) -> int:
        """Pending items (due or not)."""
        ...


class MessageLog(Protocol):
    """WhatsApp messages in and out (``messages``), unique per (company, WhatsApp id)."""

    async def record_inbound(
        self, company_id: int, wa_message_id: str, peer_phone: str, text: str
    ) -> bool:
        """Store an incoming message; ``False`` when this WhatsApp id was already recorded."""
        ...

    async def record_inbound_many(
        self, company_id: int, messages: Sequence[tuple[str, str, str]]
    ) -> list[bool]:
        """Store incoming messages ``(wa_message_id, peer_phone, text)`` in one atomic step,
        in the given order (a burst: all or none, never a gap or a reordering); one flag per
        message, ``False`` for a WhatsApp id already recorded (or earlier in ``messages``)."""
        ...

    async def record_outbound(
        self,
        company_id: int,
        peer_phone: str,
        text: str,
        *,
        wa_message_id: str | None = None,
    ) -> Message:
        """Store an outgoing message as ``queued``."""
        ...

    async def set_status(
        self, message_id: int, status: str, *, wa_message_id: str | None = None
    ) -> Message:
        """Update an outbound message's status (e.g. ``queued`` → ``sent``). :class:`NotFound`."""
        ...

    async def count_attempt(self, message_id: int) -> int:
        """Note one more send of an outbound message, written *before* the send is made, so a
        crash after it still shows; returns the count. :class:`NotFound`."""
        ...

    async def get_by_wa_id(self, company_id: int, wa_message_id: str) -> Message | None: ...

    async def recent(
        self, company_id: int, limit: int = 50, *, peer_phone: str | None = None
    ) -> list[Message]:
        """Latest messages of a company (optionally with one peer), newest first."""
        ...

    async def latest_by_peer(
        self, company_id: int, peer_phones: Sequence[str]
    ) -> dict[str, Message]:
        """Each of ``peer_phones``' latest message with the company, in or out (a phone with
        none is left out): the conversation list's last line, read in one go."""
        ...

    async def pending_outbound(self, company_id: int, limit: int = 1000) -> list[Message]:
        """Outbound messages still ``queued`` (not yet sent), oldest first: the send queue to
        restore after a restart or a crash."""
        ...


class SalonCatalog(Protocol):
    """YClients services and staff as last synced, and the sync's state."""

    async def replace_catalog(
        self,
        company_id: int,
        details: SalonDetails | None,
        services: Sequence[SalonService],
        staff: Sequence[SalonStaff],
        categories: Sequence[SalonCategory] | None = None,
    ) -> None:
        """Store a complete fresh copy in one transaction.

        Upserts the given rows, marks rows missing from it inactive (never deletes), updates
        the company's details (opening hours included). ``categories=None`` leaves the stored
        categories as they are (a caller that does not fetch them). If anything fails the
        previous copy stays as it was.
        """
        ...

    async def get_catalog(self, company_id: int, *, active_only: bool = True) -> Catalog:
        """The stored copy ordered by id (services with their description, masters and
        synonyms; categories); the salon's card and opening hours are on the company row."""
        ...

    async def record_sync(
        self, company_id: int, *, ok: bool, error: str | None = None
    ) -> SyncState:
        """Record a sync attempt: success time, or the error (the last success is kept)."""
        ...

    async def get_sync_state(self, company_id: int) -> SyncState | None: ...

    async def list_sync_due(
        self,
        statuses: Iterable[StatusLike],
        *,
        succeeded_before: datetime,
        failed_before: datetime,
        limit: int = 100,
    ) -> list[int]:
        """Companies with sync enabled and a status in ``statuses`` whose catalog needs a sync:
        never synced, last sync succeeded before ``succeeded_before``, or last sync failed
        before ``failed_before``. Never attempted first, then the longest waiting."""
        ...


class SalonRecords(Protocol):
    """YClients records (visits) as last seen (``salon_records``), newest change wins.

    Writes are never applied over a newer stored change (see ``storage/_records.py``): a
    duplicate or late webhook cannot roll a visit back. Both writes raise :class:`NotFound`
    for an unknown company.
    """

    async def apply(self, record: SalonRecord) -> bool:
        """Insert or replace the record unless the stored one is newer; ``True`` if written."""
        ...

    async def mark_deleted(
        self,
        company_id: int,
        record_id: int,
        *,
        changed_at: datetime | None = None,
        raw: dict[str, Any] | None = None,
    ) -> bool:
        """Flag the record deleted (its other fields stay), or store a tombstone for an
        unknown one; ``False`` when the stored record changed later than ``changed_at``."""
        ...

    async def get(self, company_id: int, record_id: int) -> SalonRecord | None: ...

    async def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], SalonRecord]:
        """The records of ``keys`` (``(company_id, record_id)`` pairs, of any companies) in
        one read, by key; a key we hold no record for is absent (no error)."""
        ...

    async def list_for_company(
        self,
        company_id: int,
        *,
        include_deleted: bool = False,
        limit: int = 100,
        starting_after: datetime | None = None,
        after_id: int | None = None,
    ) -> list[SalonRecord]:
        """The company's records by start time, then id (deleted ones only when asked).

        With ``starting_after`` only records starting at or after it (none without a start
        time); ``after_id`` (needs ``starting_after``) continues a page: the next page of a
        list ending with record ``r`` is ``starting_after=r.starts_at, after_id=r.record_id``.
        """
        ...


class ConnectTokens(Protocol):
    """Connect-page tokens: ``marketplace:token:{token}`` ↔ ``marketplace:company:{id}:token``."""

    async def issue(self, company_id: int, *, ttl: float = 86400.0) -> str:
        """A new random token for the company; the previous one stops resolving (atomically)."""
        ...

    async def resolve(self, token: str) -> int | None:
        """The company id of a live token, or ``None``."""
        ...

    async def current(self, company_id: int) -> str | None:
        """The company's live token, if any."""
        ...

    async def revoke(self, company_id: int) -> None:
        """Drop the company's token."""
        ...


class QrCodes(Protocol):
    """The current QR of a linking session (``marketplace:qr:{id}``, 20 s), tagged with the
    incarnation of the company actor that showed it (readers compare it with the live one)."""

    async def put(
        self,
        company_id: int,
        qr: str,
        *,
        ttl: float = 20.0,
        generated_at: float | None = None,
        incarnation: str = "",
    ) -> QrCode: ...

    async def get(self, company_id: int) -> QrCode | None: ...

    async def clear(self, company_id: int) -> None: ...


class SalonSessions(Protocol):
    """Logged-out salon page sessions (``salon:session:{id}:revoked``): a copy of a stateless
    cookie is refused once its session id is recorded here, in every process."""

    async def revoke(self, session_id: str, ttl: float) -> None:
        """Record ``session_id`` as revoked for ``ttl`` seconds (then the record expires; give
        at least as long as any copy of the cookie could still be valid). A later call for the
        same id sets its TTL again."""
        ...

    async def is_revoked(self, session_id: str) -> bool:
        """Whether ``session_id`` was revoked and its record has not expired yet."""
        ...


class RateLimiter(Protocol):
    """Fixed-window counters shared by every process using the same backend."""

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        """Count one hit of ``key`` and decide atomically whether it is within ``limit``/``window``.

        A refused hit is not counted against later windows; ``retry_after`` is the seconds left
        in the current window (0 when allowed and hits remain).
        """
        ...

    async def reset(self, key: str) -> None: ...


class PubSub(Protocol):
    """Fire-and-forget broadcast of JSON-able messages between processes."""

    async def publish(self, channel: str, message: Any) -> int:
        """Send ``message`` to current subscribers; returns how many received it (best effort)."""
        ...

    def subscribe(
        self, channel: str
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Any]]:
        """Receive messages published on ``channel`` while the context is open."""
        ...


class Leases(Protocol):
    """Cluster membership and company claims, shared by every process on the same Redis.

    Membership: each process heartbeats ``member:{node}`` (its advertised URL, with a TTL) and
    is listed in ``members``; one call per heartbeat, whatever number of salons it owns. A
    process that stops heartbeating is gone once its key expired.

    Claims: ``owner:{company_id}`` → the node whose actor runs the company, with no TTL of its
    own: a claim is valid while its node is a live member. A claim is taken with a
    compare-and-set that succeeds only if it is free, already the caller's, or held by a node
    that is no longer a member; and only while the caller itself is a live member.
    """

    async def heartbeat(
        self, node: str, address: str, ttl: float, *, renew: bool = False, draining: bool = False
    ) -> dict[str, str]:
        """Refresh ``node``'s membership for ``ttl`` seconds (``address`` is its advertised
        URL) and return the live members, ``node`` included: node id → address. One round
        trip; members whose key expired are dropped from the set on the way. With ``renew``
        a membership whose key no longer exists (it lapsed: Redis lost its data, or its clock
        jumped) is not created again: ``node`` is then missing from the result. With
        ``draining`` the node is handing its salons over (a graceful stop): it is left out of
        every node's list of live members (no salon is placed on it), but it still counts as
        a member for :meth:`claim`, so the claims it holds stay its own until it released them
        or left."""
        ...

    async def members(self) -> dict[str, str]:
        """The live members that are not draining (node id → address), without heartbeating."""
        ...

    async def leave(self, node: str) -> bool:
        """End ``node``'s membership now (its claims become free to take); ``True`` if it
        was a member."""
        ...

    async def claim(self, company_id: int, node: str) -> str | None:
        """Take the company's claim for ``node`` if it is free, already ``node``'s, or held by
        a node that is no longer a member. Returns the holder after the call (``node`` on
        success, another live member's id otherwise), or ``None`` when ``node`` itself is not
        a live member (it may take nothing)."""
        ...

    async def claim_many(self, company_ids: Sequence[int], node: str) -> dict[int, str] | None:
        """:meth:`claim` for each company (one round trip per 500, each batch atomic): the
        holder of each after the call, or ``None`` when ``node`` is not a live member (it
        took nothing). A node's take-over after another node died claims its share so."""
        ...

    async def release(self, company_id: int, node: str) -> bool:
        """Drop the claim only if ``node`` holds it; ``True`` if it did."""
        ...

    async def release_all(self, company_ids: Sequence[int], node: str) -> int:
        """Drop each of these claims that ``node`` holds (one round trip per 500); returns how
        many were dropped."""
        ...

    async def holder(self, company_id: int) -> str | None:
        """The node holding the company's claim (live or not), or ``None`` if it is free."""
        ...


class LeaseEpochs(Protocol):
    """Fencing tokens of company leases (``lease_epochs``): one increasing number per company.

    A node that takes a company's lease calls :meth:`take` and hands the result to its actor,
    which writes through ``Storage.fenced(company_id, epoch)``: once another node took the
    lease (a higher epoch), every write with the old epoch is refused with
    :class:`StaleEpoch`, so a paused or partitioned old owner cannot overwrite the new one.
    """

    async def take(self, company_id: int) -> int:
        """Bump the company's epoch and return it (1 the first time). :class:`NotFound`."""
        ...

    async def take_many(self, company_ids: Sequence[int]) -> dict[int, int]:
        """:meth:`take` for each company in one statement: company id → its new epoch;
        companies that do not exist (deleted meanwhile) are left out, not an error."""
        ...

    async def current(self, company_id: int) -> int:
        """The company's epoch now (0 before its lease was ever taken)."""
        ...


class Conversations(Protocol):
    """The assistant's conversations (``conversations``): one row per (company, client phone).

    Every method raises :class:`NotFound` for an unknown company and :class:`ValidationError`
    for a phone that is not canonical digits.
    """

    async def get(self, company_id: int, phone: str) -> Conversation | None: ...

    async def get_many(
        self, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Conversation]:
        """The conversations of ``keys`` (``(company_id, phone)`` pairs, of any companies) in
        one read, by key; a key with no conversation (or of no company) is absent."""
        ...

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
        """Write the assistant's state after a turn (``expected_version`` 0 creates the row).

        :class:`Conflict` when the stored version is not ``expected_version`` (someone else
        wrote in between). ``client_name`` / ``last_message_at`` are kept when ``None``.
        The mode is not changed here (see :meth:`set_mode`).
        """
        ...

    async def set_mode(
        self,
        company_id: int,
        phone: str,
        mode: ConversationMode,
        *,
        until: datetime | None = None,
        needs_person: bool | None = None,
    ) -> Conversation:
        """Switch who answers (creating the row with an empty state if needed); bumps the
        version. ``needs_person`` is kept when ``None``."""
        ...

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
        """Newest first by ``(last_message_at or updated_at, phone)``; ``before`` is the
        cursor of the last row of the previous page. ``search`` matches a phone substring
        (digits) or a client name (case-insensitive substring)."""
        ...

    async def expire_idle(self, idle_before: datetime, *, limit: int = 500) -> int:
        """Clear the state (keep mode and name) of conversations not updated since
        ``idle_before``; returns how many."""
        ...


class Reminders(Protocol):
    """The durable schedule of reminders and review requests (``reminders``): one row per
    ``(company, record, kind, visit_time)``, so a visit gets at most one message of a kind for
    one visit time, ever (see ``storage/_reminders.py`` for the rules).

    Company-scoped calls raise :class:`NotFound` for an unknown company and never see or
    change another company's rows. ``claim_due``, ``next_due`` and ``backlog`` span all
    companies (the scheduler's view). Times are timezone-aware; rows come back in UTC.
    """

    async def plan(self, company_id: int, rows: Sequence[PlannedReminder]) -> bool:
        """Upsert planned messages by key. A row already claimed or sent stays as it is; a
        planned, skipped or dropped one takes the new due time and details. Planning a
        ``(record, kind)`` at a visit time drops (reason ``moved``) its still-planned rows at
        other visit times. ``True`` when the earliest due time went earlier (wake the
        scheduler)."""
        ...

    async def skip(self, company_id: int, key: ReminderKey, reason: str) -> Reminder:
        """Record that planning skipped ``key`` (with ``reason``), for visibility; a claimed
        or sent row stays as it is. Other visit times of the same ``(record, kind)`` that are
        still planned are dropped as ``moved``, as in :meth:`plan`."""
        ...

    async def drop_visit(self, company_id: int, record_id: int, reason: str) -> int:
        """A cancelled or deleted visit: its planned rows (and claimed ones whose lease ran
        out) become ``dropped`` with ``reason``; in-flight and sent ones stay. Returns how
        many."""
        ...

    async def next_due(self) -> datetime | None:
        """When the earliest row becomes claimable (a planned row's ``due_at`` or a claimed
        row's ``claim_until``), across companies; ``None`` when nothing is pending."""
        ...

    async def backlog(self, now: datetime) -> int:
        """How many rows are claimable at ``now`` (due planned rows and expired claims)."""
        ...

    async def claim_due(
        self, now: datetime, owner: str, lease: float, limit: int = 100
    ) -> list[Reminder]:
        """Atomically claim up to ``limit`` claimable rows, earliest due first, for ``owner``
        until ``now + lease`` seconds; each claim bumps ``attempts`` and keeps (or, the first
        time, decides) ``message_id``. Two claimers never get the same row while its lease
        holds (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        ...

    async def mark_sent(self, company_id: int, reminder_id: int, owner: str) -> bool:
        """The message went to the outbound queue. ``False`` (nothing changed) unless the row
        is claimed by ``owner``."""
        ...

    async def mark_sent_many(
        self, owner: str, keys: Sequence[tuple[int, int]]
    ) -> set[tuple[int, int]]:
        """:meth:`mark_sent` for many rows (``(company_id, reminder_id)`` pairs, of any
        companies) in one write; returns the pairs marked (claimed by ``owner``), the others
        are left as they are."""
        ...

    async def mark_skipped(
        self, company_id: int, reminder_id: int, owner: str, reason: str
    ) -> bool:
        """The claimer decided not to send (opted out, too late, …). ``False`` (nothing
        changed) unless the row is claimed by ``owner``."""
        ...

    async def release(
        self, company_id: int, reminder_id: int, owner: str, *, retry_at: datetime | None = None
    ) -> bool:
        """Give a claimed row back (planned again, due at ``retry_at`` when given), keeping its
        ``message_id``. ``False`` (nothing changed) unless the row is claimed by ``owner``."""
        ...

    async def get(self, company_id: int, reminder_id: int) -> Reminder | None: ...

    async def for_visit(self, company_id: int, record_id: int) -> list[Reminder]:
        """A visit's rows, by visit time then kind."""
        ...

    async def upcoming(self, company_id: int, limit: int = 50) -> list[Reminder]:
        """The company's rows still to go out (``planned``, and ``claimed`` ones in flight),
        soonest due first (then by id), at most ``limit`` (1 … 1000): the salon's plan."""
        ...


class Reviews(Protocol):
    """Clients' ratings of their visits (``reviews``), one per ``(company, record)``.

    Every call raises :class:`NotFound` for an unknown company.
    """

    async def save_rating(
        self,
        company_id: int,
        record_id: int,
        visit_id: int | None,
        phone: str,
        rating: int,
        comment: str | None,
    ) -> Review:
        """Store a 1–5 rating (and an optional comment of at most 2,000 characters); a second
        call for the same visit replaces rating and comment. :class:`ValidationError` for a
        rating outside 1–5, a non-canonical phone or an unstorable comment."""
        ...

    async def get(self, company_id: int, record_id: int) -> Review | None: ...

    async def list_low(
        self, company_id: int, since: datetime, *, max_rating: int = 3, limit: int = 100
    ) -> list[Review]:
        """Ratings of at most ``max_rating`` given (or changed) at or after ``since``, newest
        first (the salon's attention list)."""
        ...


class ReminderSettingsStore(Protocol):
    """Each salon's reminder settings as JSON (``reminder_settings``). Storage only checks
    that the value is storable JSON; what it means is ``actors.reminders.ReminderSettings``'s
    business (``ReminderSettings.from_json``). Both calls raise :class:`NotFound` for an
    unknown company."""

    async def get(self, company_id: int) -> dict[str, Any] | None:
        """The stored settings, or ``None`` (the defaults apply)."""
        ...

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The stored settings of ``company_ids`` in one read, by id; a company with none
        stored (or no such company) is absent."""
        ...

    async def put(self, company_id: int, settings: dict[str, Any]) -> None:
        """Replace the company's settings."""
        ...
