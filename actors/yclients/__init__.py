"""YClients: the REST client, its shared rate limiter, the marketplace helpers, derived company
credentials, and the node services that deliver activations and handle lifecycle webhooks
(built into the node's typed :class:`actors.Services` by ``yclients_services``).

Errors (see ``_errors.py``)::

    YClientsError → YClientsUnavailable | YClientsRateLimited | YClientsRejected
                    | YClientsAuthError
    MarketplaceDataError → InvalidSignature | MalformedUserData | MalformedWebhook
    LifecycleRejected → LifecycleUnauthorized | LifecycleForbidden
    SyncUnavailable       no YClients client configured: nothing can be synced

Workers of the node: ``RecordInboxWorker`` (record webhooks from the durable inbox, in order
per company) and ``CatalogSync`` (salon details, services and staff into the catalog).
"""

from ._activation import ActivationDelivery as ActivationDelivery
from ._activation import ActivationPolicy as ActivationPolicy
from ._activation import CompanyTeller as CompanyTeller
from ._activation import DeliveryStatistics as DeliveryStatistics
from ._activation import PartnerApi as PartnerApi
from ._client import RetryPolicy as RetryPolicy
from ._client import YClientsClient as YClientsClient
from ._errors import InvalidSignature as InvalidSignature
from ._errors import MalformedUserData as MalformedUserData
from ._errors import MalformedWebhook as MalformedWebhook
from ._errors import MarketplaceDataError as MarketplaceDataError
from ._errors import YClientsAuthError as YClientsAuthError
from ._errors import YClientsError as YClientsError
from ._errors import YClientsRateLimited as YClientsRateLimited
from ._errors import YClientsRejected as YClientsRejected
from ._errors import YClientsUnavailable as YClientsUnavailable
from ._inbox import LIFECYCLE_PREFIX as LIFECYCLE_PREFIX
from ._inbox import RECORD_EVENTS as RECORD_EVENTS
from ._inbox import InboxOutcome as InboxOutcome
from ._inbox import InboxPolicy as InboxPolicy
from ._inbox import InboxStatistics as InboxStatistics
from ._inbox import RecordInboxWorker as RecordInboxWorker
from ._keys import FIRST_VERSION as FIRST_KEY_VERSION
from ._keys import CompanyCredentials as CompanyCredentials
from ._keys import current_credentials as current_credentials
from ._keys import derive_api_key as derive_api_key
from ._keys import derive_webhook_secret as derive_webhook_secret
from ._keys import webhook_url as webhook_url
from ._lifecycle import LifecycleEvent as LifecycleEvent
from ._lifecycle import LifecycleForbidden as LifecycleForbidden
from ._lifecycle import LifecycleRejected as LifecycleRejected
from ._lifecycle import LifecycleStatistics as LifecycleStatistics
from ._lifecycle import LifecycleUnauthorized as LifecycleUnauthorized
from ._lifecycle import LifecycleWorker as LifecycleWorker
from ._lifecycle import check_lifecycle as check_lifecycle
from ._marketplace import LIFECYCLE_DEDUPE_BUCKET as LIFECYCLE_DEDUPE_BUCKET
from ._marketplace import WebhookSource as WebhookSource
from ._marketplace import decode_user_data as decode_user_data
from ._marketplace import record_event_type as record_event_type
from ._marketplace import sign_user_data as sign_user_data
from ._marketplace import verify_partner_token as verify_partner_token
from ._marketplace import webhook_dedupe_key as webhook_dedupe_key
from ._models import Appointment as Appointment
from ._models import Attendance as Attendance
from ._models import BookedRecord as BookedRecord
from ._models import SalonDetails as SalonDetails
from ._models import SalonService as SalonService
from ._models import SalonStaff as SalonStaff
from ._models import ServiceCategory as ServiceCategory
from ._ratelimit import YCLIENTS_WINDOWS as YCLIENTS_WINDOWS
from ._ratelimit import LimiterStatistics as LimiterStatistics
from ._ratelimit import RateCounter as RateCounter
from ._ratelimit import YClientsRateLimiter as YClientsRateLimiter
from ._records import record_from_api as record_from_api
from ._services import catalog_sync as catalog_sync
from ._services import company_teller as company_teller
from ._services import data_services as data_services
from ._services import record_inbox_worker as record_inbox_worker
from ._services import yclients_services as yclients_services
from ._sync import SYNC_STATUSES as SYNC_STATUSES
from ._sync import CatalogSync as CatalogSync
from ._sync import SyncPolicy as SyncPolicy
from ._sync import SyncResult as SyncResult
from ._sync import SyncStatistics as SyncStatistics
from ._sync import SyncUnavailable as SyncUnavailable
from ._sync import sync_company as sync_company

__all__ = [
    "FIRST_KEY_VERSION",
    "LIFECYCLE_DEDUPE_BUCKET",
    "LIFECYCLE_PREFIX",
    "RECORD_EVENTS",
    "SYNC_STATUSES",
    "YCLIENTS_WINDOWS",
    "ActivationDelivery",
    "ActivationPolicy",
    "Appointment",
    "Attendance",
    "BookedRecord",
    "CatalogSync",
    "CompanyCredentials",
    "CompanyTeller",
    "DeliveryStatistics",
    "InboxOutcome",
    "InboxPolicy",
    "InboxStatistics",
    "InvalidSignature",
    "LifecycleEvent",
    "LifecycleForbidden",
    "LifecycleRejected",
    "LifecycleStatistics",
    "LifecycleUnauthorized",
    "LifecycleWorker",
    "LimiterStatistics",
    "MalformedUserData",
    "MalformedWebhook",
    "MarketplaceDataError",
    "PartnerApi",
    "RateCounter",
    "RecordInboxWorker",
    "RetryPolicy",
    "SalonDetails",
    "SalonService",
    "SalonStaff",
    "ServiceCategory",
    "SyncPolicy",
    "SyncResult",
    "SyncStatistics",
    "SyncUnavailable",
    "WebhookSource",
    "YClientsAuthError",
    "YClientsClient",
    "YClientsError",
    "YClientsRateLimited",
    "YClientsRateLimiter",
    "YClientsRejected",
    "YClientsUnavailable",
    "catalog_sync",
    "check_lifecycle",
    "company_teller",
    "current_credentials",
    "data_services",
    "decode_user_data",
    "derive_api_key",
    "derive_webhook_secret",
    "record_event_type",
    "record_from_api",
    "record_inbox_worker",
    "sign_user_data",
    "sync_company",
    "verify_partner_token",
    "webhook_dedupe_key",
    "webhook_url",
    "yclients_services",
]
