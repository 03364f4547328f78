"""The business: company actors, WhatsApp sessions, YClients, and the node that runs them."""

from ._metrics import MetricsRegistry as MetricsRegistry
from ._node import Node as Node
from ._node import open_node as open_node

__all__ = ["MetricsRegistry", "Node", "open_node"]
