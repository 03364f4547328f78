"""YClients: the REST client, its shared rate limiter, and the marketplace helpers.

Errors (see ``_errors.py``)::

    YClientsError → YClientsUnavailable | YClientsRateLimited | YClientsRejected
                    | YClientsAuthError
    MarketplaceDataError → InvalidSignature | MalformedUserData | MalformedWebhook
"""

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
from ._marketplace import LIFECYCLE_DEDUPE_BUCKET as LIFECYCLE_DEDUPE_BUCKET
from ._marketplace import decode_user_data as decode_user_data
from ._marketplace import sign_user_data as sign_user_data
from ._marketplace import verify_partner_token as verify_partner_token
from ._marketplace import webhook_dedupe_key as webhook_dedupe_key
from ._models import Appointment as Appointment
from ._models import BookedRecord as BookedRecord
from ._models import SalonDetails as SalonDetails
from ._models import SalonService as SalonService
from ._models import SalonStaff as SalonStaff
from ._ratelimit import YCLIENTS_WINDOWS as YCLIENTS_WINDOWS
from ._ratelimit import LimiterStatistics as LimiterStatistics
from ._ratelimit import RateCounter as RateCounter
from ._ratelimit import RateDecision as RateDecision
from ._ratelimit import RateDecisionLike as RateDecisionLike
from ._ratelimit import YClientsRateLimiter as YClientsRateLimiter

__all__ = [
    "LIFECYCLE_DEDUPE_BUCKET",
    "YCLIENTS_WINDOWS",
    "Appointment",
    "BookedRecord",
    "InvalidSignature",
    "LimiterStatistics",
    "MalformedUserData",
    "MalformedWebhook",
    "MarketplaceDataError",
    "RateCounter",
    "RateDecision",
    "RateDecisionLike",
    "RetryPolicy",
    "SalonDetails",
    "SalonService",
    "SalonStaff",
    "YClientsAuthError",
    "YClientsClient",
    "YClientsError",
    "YClientsRateLimited",
    "YClientsRateLimiter",
    "YClientsRejected",
    "YClientsUnavailable",
    "decode_user_data",
    "sign_user_data",
    "verify_partner_token",
    "webhook_dedupe_key",
]
