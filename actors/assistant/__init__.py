"""The assistant that answers a salon's clients on WhatsApp (issue 10), built up in pure parts.

So far: reading WHEN a client wants a visit from Russian free text (``parse_when``), with the
date and time rules documented in ``_when``, ``_days`` and ``_clock``. Everything here is pure
(standard library and pymorphy3, no trio, no storage) and safe to call from any thread.
"""

import importlib
import typing

from ._days import DayKind as DayKind
from ._understand import RuleUnderstander as RuleUnderstander
from ._understand import understand_rules as understand_rules
from ._when import TimeKind as TimeKind
from ._when import When as When
from ._when import parse_when as parse_when

# The running parts (the conversation actor on trio, storage, the YClients client) load on
# first use, so importing the pure parts above loads none of them.
_RUNNING_NAMES = {
    "Assistant": "._conversation",
    "AssistantOptions": "._conversation",
    "YClientsOperations": "._operations",
    # decide's state carries storage's ConversationMode: loaded on first use too
    "ConversationState": "._state",
    "Policy": "._policy",
    "decide": "._decide",
}

if typing.TYPE_CHECKING:
    from ._conversation import Assistant as Assistant
    from ._conversation import AssistantOptions as AssistantOptions
    from ._decide import decide as decide
    from ._operations import YClientsOperations as YClientsOperations
    from ._policy import Policy as Policy
    from ._state import ConversationState as ConversationState
else:

    def __getattr__(name: str) -> object:
        """Import a running part on first use (PEP 562) and keep it."""
        if name not in _RUNNING_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_RUNNING_NAMES[name], __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_RUNNING_NAMES})


__all__ = [
    "Assistant",
    "AssistantOptions",
    "ConversationState",
    "DayKind",
    "Policy",
    "RuleUnderstander",
    "TimeKind",
    "When",
    "YClientsOperations",
    "decide",
    "parse_when",
    "understand_rules",
]
