"""Storage: repositories on PostgreSQL and Redis, their in-memory twins, and migrations.

Open everything with :func:`open_storage` (an async context manager yielding a
:class:`Storage`). Interfaces are the Protocols below; rows are frozen dataclasses.

Errors (see ``_errors``)::

    StorageError → StorageUnavailable | StorageTimeout | Conflict | NotFound | ValidationError
                 | StaleEpoch

A refused status transition is not an error: ``CompanyRepository.transition`` returns ``None``.
"""

import importlib
import typing

from ._errors import Conflict as Conflict
from ._errors import NotFound as NotFound
from ._errors import StaleEpoch as StaleEpoch
from ._errors import StorageError as StorageError
from ._errors import StorageTimeout as StorageTimeout
from ._errors import StorageUnavailable as StorageUnavailable
from ._errors import ValidationError as ValidationError
from ._errors import map_exceptions as map_exceptions
from ._fields import COMPANY_FIELDS as COMPANY_FIELDS
from ._fields import utc_now as utc_now
from ._model_usage import MAX_DAILY_TOKEN_CAP as MAX_DAILY_TOKEN_CAP
from ._model_usage import MAX_HISTORY_DAYS as MAX_HISTORY_DAYS
from ._model_usage import MAX_MODEL_NAME as MAX_MODEL_NAME
from ._model_usage import ModelUsageStore as ModelUsageStore
from ._model_usage import SalonModelSettings as SalonModelSettings
from ._model_usage import TokenUsage as TokenUsage
from ._models import LINKED_STATUSES as LINKED_STATUSES
from ._models import AttemptOutcome as AttemptOutcome
from ._models import AuditEvent as AuditEvent
from ._models import BackendHealth as BackendHealth
from ._models import Catalog as Catalog
from ._models import Company as Company
from ._models import CompanyStatus as CompanyStatus
from ._models import Conversation as Conversation
from ._models import ConversationMode as ConversationMode
from ._models import Direction as Direction
from ._models import InboxEvent as InboxEvent
from ._models import InboxStatus as InboxStatus
from ._models import Message as Message
from ._models import MessageStatus as MessageStatus
from ._models import NewCompany as NewCompany
from ._models import OutboxItem as OutboxItem
from ._models import OutboxStatus as OutboxStatus
from ._models import PlannedReminder as PlannedReminder
from ._models import PoolStats as PoolStats
from ._models import PutResult as PutResult
from ._models import QrCode as QrCode
from ._models import RateDecision as RateDecision
from ._models import Reminder as Reminder
from ._models import ReminderKey as ReminderKey
from ._models import ReminderStatus as ReminderStatus
from ._models import Review as Review
from ._models import SalonCategory as SalonCategory
from ._models import SalonDetails as SalonDetails
from ._models import SalonRecord as SalonRecord
from ._models import SalonService as SalonService
from ._models import SalonStaff as SalonStaff
from ._models import SyncState as SyncState
from ._protocols import AuditLog as AuditLog
from ._protocols import CompanyRepository as CompanyRepository
from ._protocols import ConnectTokens as ConnectTokens
from ._protocols import Conversations as Conversations
from ._protocols import LeaseEpochs as LeaseEpochs
from ._protocols import Leases as Leases
from ._protocols import MessageLog as MessageLog
from ._protocols import Outbox as Outbox
from ._protocols import PubSub as PubSub
from ._protocols import QrCodes as QrCodes
from ._protocols import RateLimiter as RateLimiter
from ._protocols import Reminders as Reminders
from ._protocols import ReminderSettingsStore as ReminderSettingsStore
from ._protocols import Reviews as Reviews
from ._protocols import SalonCatalog as SalonCatalog
from ._protocols import SalonRecords as SalonRecords
from ._protocols import SalonSessions as SalonSessions
from ._protocols import WebhookInbox as WebhookInbox
from ._results import MAX_RESULT_DAYS as MAX_RESULT_DAYS
from ._results import DailyResults as DailyResults
from ._results import PeriodResults as PeriodResults
from ._results import RatingSummary as RatingSummary
from ._results import SalonResults as SalonResults
from ._retention import Pruned as Pruned
from ._retention import Retention as Retention
from ._secrets import API_KEY_PREFIX as API_KEY_PREFIX
from ._secrets import WEBHOOK_SECRET_PREFIX as WEBHOOK_SECRET_PREFIX
from ._sent import SentLedger as SentLedger
from ._storage import Storage as Storage
from ._storage import StorageHealth as StorageHealth
from ._storage import open_storage as open_storage
from ._synonyms import MAX_WORD as MAX_SYNONYM_CHARS
from ._synonyms import MAX_WORDS as MAX_SYNONYMS_PER_SERVICE
from ._synonyms import SalonSynonyms as SalonSynonyms
from ._synonyms import merge_synonyms as merge_synonyms
from ._validate import MAX_ID as MAX_ID

# Names bound to a backend (asyncpg, the in-memory key-value store on trio) load on first use,
# so that importing ``storage`` for its models and Protocols loads no backend.
_BACKEND_NAMES = {
    "MemoryKeyValue": "._memory_kv",
    "PgPool": "._pg_pool",
    "migrate": "._migrate",
    "migration_files": "._migrate",
}

if typing.TYPE_CHECKING:
    from ._memory_kv import MemoryKeyValue as MemoryKeyValue
    from ._migrate import migrate as migrate
    from ._migrate import migration_files as migration_files
    from ._pg_pool import PgPool as PgPool
else:

    def __getattr__(name: str) -> object:
        """Import a backend-bound name on first use (PEP 562) and keep it."""
        if name not in _BACKEND_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_BACKEND_NAMES[name], __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_BACKEND_NAMES})


__all__ = [
    "API_KEY_PREFIX",
    "COMPANY_FIELDS",
    "LINKED_STATUSES",
    "MAX_DAILY_TOKEN_CAP",
    "MAX_HISTORY_DAYS",
    "MAX_ID",
    "MAX_MODEL_NAME",
    "MAX_RESULT_DAYS",
    "MAX_SYNONYMS_PER_SERVICE",
    "MAX_SYNONYM_CHARS",
    "WEBHOOK_SECRET_PREFIX",
    "AttemptOutcome",
    "AuditEvent",
    "AuditLog",
    "BackendHealth",
    "Catalog",
    "Company",
    "CompanyRepository",
    "CompanyStatus",
    "Conflict",
    "ConnectTokens",
    "Conversation",
    "ConversationMode",
    "Conversations",
    "DailyResults",
    "Direction",
    "InboxEvent",
    "InboxStatus",
    "LeaseEpochs",
    "Leases",
    "MemoryKeyValue",
    "Message",
    "MessageLog",
    "MessageStatus",
    "ModelUsageStore",
    "NewCompany",
    "NotFound",
    "Outbox",
    "OutboxItem",
    "OutboxStatus",
    "PeriodResults",
    "PgPool",
    "PlannedReminder",
    "PoolStats",
    "Pruned",
    "PubSub",
    "PutResult",
    "QrCode",
    "QrCodes",
    "RateDecision",
    "RateLimiter",
    "RatingSummary",
    "Reminder",
    "ReminderKey",
    "ReminderSettingsStore",
    "ReminderStatus",
    "Reminders",
    "Retention",
    "Review",
    "Reviews",
    "SalonCatalog",
    "SalonCategory",
    "SalonDetails",
    "SalonModelSettings",
    "SalonRecord",
    "SalonRecords",
    "SalonResults",
    "SalonService",
    "SalonSessions",
    "SalonStaff",
    "SalonSynonyms",
    "SentLedger",
    "StaleEpoch",
    "Storage",
    "StorageError",
    "StorageHealth",
    "StorageTimeout",
    "StorageUnavailable",
    "SyncState",
    "TokenUsage",
    "ValidationError",
    "WebhookInbox",
    "map_exceptions",
    "merge_synonyms",
    "migrate",
    "migration_files",
    "open_storage",
    "utc_now",
]
