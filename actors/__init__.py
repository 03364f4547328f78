"""The business: company actors, WhatsApp sessions, YClients, and the node that runs them."""

from ._node import Companies as Companies
from ._node import Node as Node
from ._node import build_companies as build_companies
from ._node import open_node as open_node
from ._phones import MAX_PHONE_TEXT as MAX_PHONE_TEXT
from ._phones import PHONE_TEXT_PATTERN as PHONE_TEXT_PATTERN
from ._phones import InvalidPhone as InvalidPhone
from ._phones import find_phone as find_phone
from ._phones import normalise_phone as normalise_phone
from ._placement import LEASE_TTL as LEASE_TTL
from ._placement import Placement as Placement
from ._services import NO_SERVICES as NO_SERVICES
from ._services import Services as Services
from ._viewer_wire import WATCH_EVERY as WATCH_EVERY
from ._viewer_wire import ViewerCommand as ViewerCommand
from ._viewer_wire import ViewerEvent as ViewerEvent
from ._viewer_wire import ViewerOp as ViewerOp
from ._viewer_wire import commands_channel as commands_channel
from ._viewer_wire import events_channel as events_channel

__all__ = [
    "LEASE_TTL",
    "MAX_PHONE_TEXT",
    "PHONE_TEXT_PATTERN",
    "NO_SERVICES",
    "WATCH_EVERY",
    "Companies",
    "InvalidPhone",
    "Node",
    "Placement",
    "Services",
    "ViewerCommand",
    "ViewerEvent",
    "ViewerOp",
    "build_companies",
    "commands_channel",
    "events_channel",
    "find_phone",
    "normalise_phone",
    "open_node",
]
