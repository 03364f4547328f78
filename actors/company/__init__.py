"""The company actor: one salon's WhatsApp session, QR timer, send queue and viewers."""

from . import _messages as messages
from ._actor import ACTIVATION_KIND as ACTIVATION_KIND
from ._actor import CompanyActor as CompanyActor
from ._actor import CompanyDeps as CompanyDeps
from ._actor import CompanyMetrics as CompanyMetrics
from ._actor import InboundHandler as InboundHandler
from ._actor import record_only as record_only
from ._errors import CompanyError as CompanyError
from ._errors import CompanyNotFound as CompanyNotFound
from ._errors import OutboundQueueFull as OutboundQueueFull
from ._errors import OwnedElsewhere as OwnedElsewhere
from ._errors import SendingUnavailable as SendingUnavailable
from ._messages import CommandResult as CommandResult
from ._messages import CompanyView as CompanyView
from ._messages import Viewer as Viewer

__all__ = [
    "ACTIVATION_KIND",
    "CommandResult",
    "CompanyActor",
    "CompanyDeps",
    "CompanyError",
    "CompanyMetrics",
    "CompanyNotFound",
    "CompanyView",
    "InboundHandler",
    "OutboundQueueFull",
    "OwnedElsewhere",
    "SendingUnavailable",
    "Viewer",
    "messages",
    "record_only",
]
