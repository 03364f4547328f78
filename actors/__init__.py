"""The business: company actors, WhatsApp sessions, YClients, and the node that runs them."""

import importlib
import typing

from ._business_log import EVENTS_LOGGER as EVENTS_LOGGER
from ._business_log import BusinessEvent as BusinessEvent
from ._business_log import FromRequest as FromRequest
from ._business_log import current_request_id as current_request_id
from ._business_log import log_event as log_event
from ._business_log import mask_phone as mask_phone
from ._business_log import request_id_var as request_id_var
from ._business_log import serving_request as serving_request
from ._phones import MAX_PHONE_TEXT as MAX_PHONE_TEXT
from ._phones import PHONE_TEXT_PATTERN as PHONE_TEXT_PATTERN
from ._phones import InvalidPhone as InvalidPhone
from ._phones import find_phone as find_phone
from ._phones import normalise_phone as normalise_phone
from ._services import NO_SERVICES as NO_SERVICES
from ._services import Services as Services
from ._viewer_wire import WATCH_EVERY as WATCH_EVERY
from ._viewer_wire import ViewerCommand as ViewerCommand
from ._viewer_wire import ViewerEvent as ViewerEvent
from ._viewer_wire import ViewerOp as ViewerOp
from ._viewer_wire import commands_channel as commands_channel
from ._viewer_wire import events_channel as events_channel

# The node and placement run on trio, the runtime and every backend: they load on first use,
# so that importing a pure module below ``actors`` (``actors.company._transitions``) does not.
_RUNNING_NAMES = {
    "Companies": "._node",
    "Node": "._node",
    "build_companies": "._node",
    "open_node": "._node",
    "MEMBER_TTL": "._placement",
    "Placement": "._placement",
    "RetentionService": "._retention",
}

if typing.TYPE_CHECKING:
    from ._node import Companies as Companies
    from ._node import Node as Node
    from ._node import build_companies as build_companies
    from ._node import open_node as open_node
    from ._placement import MEMBER_TTL as MEMBER_TTL
    from ._placement import Placement as Placement
    from ._retention import RetentionService as RetentionService
else:

    def __getattr__(name: str) -> object:
        """Import a name of the running node on first use (PEP 562) and keep it."""
        if name not in _RUNNING_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_RUNNING_NAMES[name], __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_RUNNING_NAMES})


__all__ = [
    "EVENTS_LOGGER",
    "MAX_PHONE_TEXT",
    "MEMBER_TTL",
    "NO_SERVICES",
    "PHONE_TEXT_PATTERN",
    "WATCH_EVERY",
    "BusinessEvent",
    "Companies",
    "FromRequest",
    "InvalidPhone",
    "Node",
    "Placement",
    "RetentionService",
    "Services",
    "ViewerCommand",
    "ViewerEvent",
    "ViewerOp",
    "build_companies",
    "commands_channel",
    "current_request_id",
    "events_channel",
    "find_phone",
    "log_event",
    "mask_phone",
    "normalise_phone",
    "open_node",
    "request_id_var",
    "serving_request",
]
