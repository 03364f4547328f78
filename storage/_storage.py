"""The :class:`Storage` bundle and :func:`open_storage`, the one way to get repositories.

PostgreSQL when a database URL is given (else in-memory); Redis when a Redis URL is given
(else in-memory). Both kinds satisfy the same Protocols, so callers never know which they got.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ._company_changes import CompanyChanges, TrackedCatalog
from ._groups import BodyError, unwrap_single
from ._model_usage import ModelUsageStore
from ._models import BackendHealth, PoolStats
from ._protocols import (
    AuditLog,
    CompanyRepository,
    ConnectTokens,
    Conversations,
    LeaseEpochs,
    Leases,
    MessageLog,
    Outbox,
    PubSub,
    QrCodes,
    RateLimiter,
    Reminders,
    ReminderSettingsStore,
    Reviews,
    SalonCatalog,
    SalonRecords,
    SalonSessions,
    WebhookInbox,
)
from ._results import SalonResults
from ._retention import Retention
from ._sent import SentLedger
from ._synonyms import SalonSynonyms

if TYPE_CHECKING:
    # The backends are imported where they are chosen (``open_storage``), so importing
    # ``storage`` for its models loads neither asyncpg, trio-asyncio nor coredis.
    from config import Settings

    from ._fencing import MemoryLeaseEpochs, OnRefused
    from ._fields import Clock
    from ._memory_db import MemoryDatabase
    from ._memory_kv import MemoryKeyValue
    from ._pg_pool import PgPool
    from ._redis import RedisBackend


@dataclass(frozen=True)
class StorageHealth:
    """Readiness of both backends (``ok`` only if both are)."""

    database: BackendHealth
    redis: BackendHealth

    @property
    def ok(self) -> bool:
        return self.database.ok and self.redis.ok


#: Builds a company's fenced repositories (companies, audit, outbox, messages) for an epoch.
FenceFactory = Callable[
    [int, int, "OnRefused"], tuple[CompanyRepository, AuditLog, Outbox, MessageLog]
]


@dataclass
class Storage:
    """Every repository, as one object handed to actors and the web app.

    ``database_kind`` / ``redis_kind`` say ``"postgres"``/``"redis"`` or ``"memory"``.
    ``pg`` and ``redis`` expose the live backends (``None`` for in-memory) for health views.
    """

    companies: CompanyRepository
    audit: AuditLog
    inbox: WebhookInbox
    outbox: Outbox
    messages: MessageLog
    catalog: SalonCatalog
    records: SalonRecords
    #: The assistant's conversations, one per (company, client phone).
    conversations: Conversations
    #: Reminders and review requests (the durable schedule), clients' ratings, and each
    #: salon's reminder settings (issue 11).
    reminders: Reminders
    reviews: Reviews
    reminder_settings: ReminderSettingsStore
    tokens: ConnectTokens
    qr: QrCodes
    rate_limiter: RateLimiter
    #: Logged-out salon page sessions, refused until their cookies' expiry (issue 16).
    salon_sessions: SalonSessions
    pubsub: PubSub
    #: Company-actor ownership between nodes (``owner:{id}``); see :class:`Leases`.
    leases: Leases
    #: Fencing tokens of those leases (``lease_epochs``); see :meth:`fenced`.
    epochs: LeaseEpochs
    #: Deletes finished inbox/outbox rows and old messages in batches (issue 17).
    retention: Retention
    #: neonize's ledger of sent messages (``whatsapp_sent``), so a resend is never a second
    #: copy, on whichever process the salon's session runs (issue 13).
    sent: SentLedger
    #: Each salon's language-model choice and its tokens per local day (issue 15).
    model_usage: ModelUsageStore
    #: Each salon's own words for its services, kept apart from the synced catalog (issue 16).
    synonyms: SalonSynonyms
    #: Each salon's results per local day, for its page (issue 16).
    results: SalonResults
    database_kind: str
    redis_kind: str
    pg: PgPool | None = field(default=None, repr=False)
    redis: RedisBackend | None = field(default=None, repr=False)
    memory_db: MemoryDatabase | None = field(default=None, repr=False)
    memory_kv: MemoryKeyValue | None = field(default=None, repr=False)
    fence_factory: FenceFactory | None = field(default=None, repr=False)
    #: Marks of this process's writes of the sync state (``open_storage`` wraps ``catalog``
    #: to keep them) and of the assistant switch (see :class:`CompanyChanges`); ``None`` when
    #: the storage was not built by ``open_storage``.
    changes: CompanyChanges | None = field(default=None, repr=False)

    def fenced(self, company_id: int, epoch: int, on_refused: OnRefused | None = None) -> Storage:
        """This storage as a company's actor holding lease ``epoch`` writes through it.

        Every call of its ``companies``, ``audit``, ``outbox`` and ``messages`` first checks,
        atomically with its work, that ``epoch`` is still the company's current one
        (:meth:`LeaseEpochs.take`); otherwise it changes nothing, calls ``on_refused(company_id,
        epoch)`` and raises :class:`StaleEpoch`. The other repositories are shared as they are.
        """
        if self.fence_factory is None:
            raise RuntimeError("this Storage was not built by open_storage: no fencing")
        companies, audit, outbox, messages = self.fence_factory(
            company_id, epoch, on_refused or _ignore_refusal
        )
        return replace(self, companies=companies, audit=audit, outbox=outbox, messages=messages)

    async def ping_database(self) -> BackendHealth:
        """PostgreSQL (or the in-memory twin) answers? Never raises."""
        if self.pg is not None:
            return await self.pg.ping()
        assert self.memory_db is not None
        return await self.memory_db.ping()

    async def ping_redis(self) -> BackendHealth:
        """Redis (or the in-memory twin) answers? Never raises."""
        if self.redis is not None:
            return await self.redis.ping()
        assert self.memory_kv is not None
        return await self.memory_kv.ping()

    async def health(self) -> StorageHealth:
        """Both pings, for ``/health/ready``."""
        return StorageHealth(database=await self.ping_database(), redis=await self.ping_redis())

    def pool_stats(self) -> PoolStats | None:
        """PostgreSQL pool occupancy, or ``None`` for in-memory storage."""
        return None if self.pg is None else self.pg.stats()


@asynccontextmanager
async def open_storage(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    redis_password: str | None = None,
    redis_prefix: str | None = None,
    apply_migrations: bool = True,
    pool_min_size: int = 1,
    pool_max_size: int = 10,
    connect_timeout: float = 5.0,
    command_timeout: float = 30.0,
    redis_op_timeout: float = 3.0,
    storage_timeout: float | None = None,
    wall_clock: Clock | None = None,
    monotonic_clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Storage]:
    """Open the storage for the block's lifetime and close everything on exit.

    Values come from ``settings`` unless given as keywords. PostgreSQL runs in the caller's
    trio-asyncio loop (the server opens ``trio_asyncio.open_loop()`` around everything); when
    none is running, one is opened for the storage's lifetime. Migrations are applied at open
    unless ``apply_migrations=False``. ``storage_timeout`` (default: ``settings.storage_timeout``
    when settings are given) bounds every PostgreSQL unit and Redis command. ``wall_clock``
    overrides the database's ``now()`` (tests move time with it); ``monotonic_clock`` drives
    in-memory expiry.

    Raises :class:`StorageUnavailable` if PostgreSQL cannot be reached at open. Redis may be
    down at open: its calls fail with ``StorageUnavailable`` until it comes back.
    """
    if settings is not None:
        database_url = database_url or settings.database_url
        redis_url = redis_url or settings.redis_url
        redis_password = redis_password or settings.redis_password
        redis_prefix = redis_prefix if redis_prefix is not None else settings.redis_prefix
        if storage_timeout is None:
            storage_timeout = settings.storage_timeout
    if storage_timeout is not None:
        redis_op_timeout = storage_timeout
    prefix = redis_prefix if redis_prefix is not None else "aiadmin:"

    body = BodyError()
    async with AsyncExitStack() as stack:
        # Each backend is imported here, where it is chosen: the embedded default never loads
        # asyncpg, trio-asyncio or coredis, and importing ``storage`` loads none of them.
        if database_url:
            import trio_asyncio

            if trio_asyncio.current_loop.get() is None:
                # No trio-asyncio loop around us: run one for the storage's lifetime. Its
                # nursery must not wrap the caller's own exceptions in a group.
                await stack.enter_async_context(unwrap_single(body))
                await stack.enter_async_context(trio_asyncio.open_loop())
        try:
            pg: PgPool | None = None
            memory_db: MemoryDatabase | None = None
            if database_url:
                from ._fencing import PgLeaseEpochs
                from ._migrate import migrate
                from ._pg_conversations import PgConversations
                from ._pg_db import (
                    PgAuditLog,
                    PgCompanies,
                    PgMessageLog,
                    PgOutbox,
                    PgSalonCatalog,
                    PgWebhookInbox,
                )
                from ._pg_model_usage import PgModelUsage
                from ._pg_pool import PgPool
                from ._pg_reminders import PgReminders, PgReminderSettings, PgReviews
                from ._pg_results import PgResults
                from ._pg_synonyms import PgSynonyms
                from ._records import PgSalonRecords
                from ._retention import PgRetention
                from ._sent import PgSentLedger

                if apply_migrations:
                    await migrate(database_url, connect_timeout=connect_timeout)
                pg = await PgPool.open(
                    database_url,
                    min_size=pool_min_size,
                    max_size=pool_max_size,
                    connect_timeout=connect_timeout,
                    command_timeout=command_timeout,
                    op_timeout=storage_timeout,
                )
                stack.push_async_callback(pg.aclose)
                companies: CompanyRepository = PgCompanies(pg, wall_clock)
                audit: AuditLog = PgAuditLog(pg, wall_clock)
                inbox: WebhookInbox = PgWebhookInbox(pg, wall_clock)
                outbox: Outbox = PgOutbox(pg, wall_clock)
                messages: MessageLog = PgMessageLog(pg, wall_clock)
                catalog: SalonCatalog = PgSalonCatalog(pg, wall_clock)
                records: SalonRecords = PgSalonRecords(pg, wall_clock)
                conversations: Conversations = PgConversations(pg, wall_clock)
                reminders: Reminders = PgReminders(pg, wall_clock)
                reviews: Reviews = PgReviews(pg, wall_clock)
                reminder_settings: ReminderSettingsStore = PgReminderSettings(pg, wall_clock)
                epochs: LeaseEpochs = PgLeaseEpochs(pg)
                retention: Retention = PgRetention(pg, wall_clock)
                sent: SentLedger = PgSentLedger(pg, wall_clock)
                model_usage: ModelUsageStore = PgModelUsage(pg, wall_clock)
                synonyms: SalonSynonyms = PgSynonyms(pg, wall_clock)
                results: SalonResults = PgResults(pg, wall_clock)
                fence_factory = _pg_fence(pg, wall_clock)
            else:
                from ._conversations import MemoryConversations
                from ._fencing import MemoryLeaseEpochs
                from ._memory_db import (
                    MemoryAuditLog,
                    MemoryCompanies,
                    MemoryDatabase,
                    MemoryMessageLog,
                    MemoryOutbox,
                    MemorySalonCatalog,
                    MemoryWebhookInbox,
                )
                from ._memory_model_usage import MemoryModelUsage
                from ._memory_results import MemoryResults
                from ._memory_retention import MemoryRetention
                from ._memory_sent import MemorySentLedger
                from ._memory_synonyms import MemorySynonyms
                from ._records import MemorySalonRecords
                from ._reminders import MemoryReminders, MemoryReminderSettings, MemoryReviews

                memory_db = MemoryDatabase(wall_clock) if wall_clock else MemoryDatabase()
                companies = MemoryCompanies(memory_db)
                audit = MemoryAuditLog(memory_db)
                inbox = MemoryWebhookInbox(memory_db)
                outbox = MemoryOutbox(memory_db)
                messages = MemoryMessageLog(memory_db)
                catalog = MemorySalonCatalog(memory_db)
                records = MemorySalonRecords(memory_db)
                conversations = MemoryConversations(memory_db)
                reminders = MemoryReminders(memory_db)
                reviews = MemoryReviews(memory_db)
                reminder_settings = MemoryReminderSettings(memory_db)
                memory_epochs = MemoryLeaseEpochs(memory_db)
                memory_sent = MemorySentLedger(memory_db)
                model_usage = MemoryModelUsage(memory_db)
                synonyms = MemorySynonyms(memory_db)
                results = MemoryResults(memory_db)
                sent = memory_sent
                retention = MemoryRetention(memory_db, memory_sent)
                epochs = memory_epochs
                fence_factory = _memory_fence(memory_db, memory_epochs)

            redis: RedisBackend | None = None
            memory_kv: MemoryKeyValue | None = None
            if redis_url:
                from ._redis import (
                    RedisConnectTokens,
                    RedisLeases,
                    RedisPubSub,
                    RedisQrCodes,
                    RedisRateLimiter,
                    open_redis,
                )
                from ._salon_sessions import RedisSalonSessions

                redis = await stack.enter_async_context(
                    open_redis(
                        redis_url,
                        prefix=prefix,
                        password=redis_password,
                        op_timeout=redis_op_timeout,
                    )
                )
                tokens: ConnectTokens = RedisConnectTokens(redis)
                qr: QrCodes = RedisQrCodes(redis)
                rate_limiter: RateLimiter = RedisRateLimiter(redis)
                salon_sessions: SalonSessions = RedisSalonSessions(redis)
                pubsub: PubSub = RedisPubSub(redis)
                leases: Leases = RedisLeases(redis)
            else:
                from ._memory_kv import (
                    MemoryConnectTokens,
                    MemoryKeyValue,
                    MemoryLeases,
                    MemoryPubSub,
                    MemoryQrCodes,
                    MemoryRateLimiter,
                )
                from ._salon_sessions import MemorySalonSessions

                memory_kv = MemoryKeyValue(monotonic_clock, prefix)
                tokens = MemoryConnectTokens(memory_kv)
                qr = MemoryQrCodes(memory_kv)
                rate_limiter = MemoryRateLimiter(memory_kv)
                salon_sessions = MemorySalonSessions(memory_kv)
                pubsub = MemoryPubSub(memory_kv)
                leases = MemoryLeases(memory_kv)

            changes = CompanyChanges()
            storage = Storage(
                companies=companies,
                audit=audit,
                inbox=inbox,
                outbox=outbox,
                messages=messages,
                catalog=TrackedCatalog(catalog, changes),
                records=records,
                conversations=conversations,
                reminders=reminders,
                reviews=reviews,
                reminder_settings=reminder_settings,
                tokens=tokens,
                qr=qr,
                rate_limiter=rate_limiter,
                salon_sessions=salon_sessions,
                pubsub=pubsub,
                leases=leases,
                epochs=epochs,
                retention=retention,
                sent=sent,
                model_usage=model_usage,
                synonyms=synonyms,
                results=results,
                database_kind="postgres" if pg else "memory",
                redis_kind="redis" if redis else "memory",
                pg=pg,
                redis=redis,
                memory_db=memory_db,
                memory_kv=memory_kv,
                fence_factory=fence_factory,
                changes=changes,
            )
            yield storage
        except BaseException as exc:
            body.error = exc  # setup failures too: never let a nursery wrap them
            raise


def _ignore_refusal(company_id: int, epoch: int) -> None:
    """No hook: the caller learns of the refusal from :class:`StaleEpoch` alone."""


def _pg_fence(pg: PgPool, wall_clock: Clock | None) -> FenceFactory:
    """Fenced PostgreSQL repositories: each unit checks the epoch in its own transaction."""
    from ._fencing import fenced_pg_pool
    from ._pg_db import PgAuditLog, PgCompanies, PgMessageLog, PgOutbox

    def build(
        company_id: int, epoch: int, on_refused: OnRefused
    ) -> tuple[CompanyRepository, AuditLog, Outbox, MessageLog]:
        pool = fenced_pg_pool(pg, company_id, epoch, on_refused)
        return (
            PgCompanies(pool, wall_clock),
            PgAuditLog(pool, wall_clock),
            PgOutbox(pool, wall_clock),
            PgMessageLog(pool, wall_clock),
        )

    return build


def _memory_fence(db: MemoryDatabase, epochs: MemoryLeaseEpochs) -> FenceFactory:
    """Fenced in-memory repositories: every table access checks the epoch."""
    from ._fencing import fenced_memory_db
    from ._memory_db import MemoryAuditLog, MemoryCompanies, MemoryMessageLog, MemoryOutbox

    def build(
        company_id: int, epoch: int, on_refused: OnRefused
    ) -> tuple[CompanyRepository, AuditLog, Outbox, MessageLog]:
        view = fenced_memory_db(db, epochs, company_id, epoch, on_refused)
        return (
            MemoryCompanies(view),
            MemoryAuditLog(view),
            MemoryOutbox(view),
            MemoryMessageLog(view),
        )

    return build
