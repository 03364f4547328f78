"""The company actor: one salon's WhatsApp session, QR timer, send queue and viewers."""

import importlib
import typing

from . import _messages as messages
from ._errors import CompanyError as CompanyError
from ._errors import CompanyNotFound as CompanyNotFound
from ._errors import OutboundQueueFull as OutboundQueueFull
from ._errors import OwnedElsewhere as OwnedElsewhere
from ._errors import SendingUnavailable as SendingUnavailable
from ._messages import ACTIVATION_KIND as ACTIVATION_KIND
from ._messages import CommandResult as CommandResult
from ._messages import CompanyView as CompanyView
from ._messages import CurrentQr as CurrentQr
from ._messages import Viewer as Viewer

# The actor runs on trio with the WhatsApp backends and the QR renderer: it loads on first
# use, so that the pure decisions (``_transitions``) and the messages import nothing heavy.
_ACTOR_NAMES = (
    "CompanyActor",
    "CompanyDeps",
    "CompanyMetrics",
    "InboundHandler",
    "record_only",
)

if typing.TYPE_CHECKING:
    from ._actor import CompanyActor as CompanyActor
    from ._actor import CompanyDeps as CompanyDeps
    from ._actor import CompanyMetrics as CompanyMetrics
    from ._actor import InboundHandler as InboundHandler
    from ._actor import record_only as record_only
else:

    def __getattr__(name: str) -> object:
        """Import a name of the actor module on first use (PEP 562) and keep it."""
        if name not in _ACTOR_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module("._actor", __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_ACTOR_NAMES})


__all__ = [
    "ACTIVATION_KIND",
    "CommandResult",
    "CompanyActor",
    "CompanyDeps",
    "CompanyError",
    "CompanyMetrics",
    "CompanyNotFound",
    "CompanyView",
    "CurrentQr",
    "InboundHandler",
    "OutboundQueueFull",
    "OwnedElsewhere",
    "SendingUnavailable",
    "Viewer",
    "messages",
    "record_only",
]
