"""The assistant that answers a salon's clients on WhatsApp: books, moves and cancels visits in
YClients and answers questions, in Russian as clients write it.

Pure parts (standard library and pymorphy3/rapidfuzz; no trio, storage backend or HTTP, safe
from any thread): ``parse_when`` (dates and times, ``_when``/``_days``/``_clock``),
``understand_rules`` (text → typed commands, ``_understand``), ``decide`` (state + event →
state + effects, ``_decide``) and the reply wording (``_templates``). Running parts, loaded on
first use: the conversation actor (``Assistant``, ``_conversation``) and the YClients
operations that carry out the effects (``YClientsOperations``, ``_operations``).
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
    # reminders and review requests as the conversation keeps them (issue 11)
    "Prompt": "._prompts",
    "PromptKind": "._prompts",
    "may_prompt": "._prompts",
}

if typing.TYPE_CHECKING:
    from ._conversation import Assistant as Assistant
    from ._conversation import AssistantOptions as AssistantOptions
    from ._decide import decide as decide
    from ._operations import YClientsOperations as YClientsOperations
    from ._policy import Policy as Policy
    from ._prompts import Prompt as Prompt
    from ._prompts import PromptKind as PromptKind
    from ._prompts import may_prompt as may_prompt
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
    "Prompt",
    "PromptKind",
    "RuleUnderstander",
    "TimeKind",
    "When",
    "YClientsOperations",
    "decide",
    "may_prompt",
    "parse_when",
    "understand_rules",
]
