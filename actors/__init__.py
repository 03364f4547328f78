"""The business: company actors, WhatsApp sessions, YClients, and the node that runs them."""

from ._node import Node as Node
from ._node import open_node as open_node
from ._placement import LEASE_TTL as LEASE_TTL
from ._placement import WATCH_EVERY as WATCH_EVERY
from ._placement import Placement as Placement
from ._placement import commands_channel as commands_channel
from ._placement import events_channel as events_channel

__all__ = [
    "LEASE_TTL",
    "WATCH_EVERY",
    "Node",
    "Placement",
    "commands_channel",
    "events_channel",
    "open_node",
]
