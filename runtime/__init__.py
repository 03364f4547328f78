"""The actor runtime: actors, mailboxes, refs, supervisors, a virtual-actor registry and the
supervision-tree snapshot. It knows nothing about salons and imports nothing of the project.

Errors: ``ActorError → ActorCrashed | ActorUnavailable | AskTimeout | MailboxFull |
RestartIntensityExceeded`` (see ``runtime._errors``). Contracts: ``runtime._actor`` (writing an
actor), ``runtime._supervisor`` (supervision), ``runtime._registry`` (virtual actors).
"""

from __future__ import annotations

from ._actor import Actor as Actor
from ._errors import ActorCrashed as ActorCrashed
from ._errors import ActorError as ActorError
from ._errors import ActorUnavailable as ActorUnavailable
from ._errors import AskTimeout as AskTimeout
from ._errors import MailboxFull as MailboxFull
from ._errors import RestartIntensityExceeded as RestartIntensityExceeded
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._ref import ActorRef as ActorRef
from ._registry import Registry as Registry
from ._root import run_root as run_root
from ._snapshot import ChildState as ChildState
from ._snapshot import ErrorInfo as ErrorInfo
from ._snapshot import NodeSnapshot as NodeSnapshot
from ._spec import ChildSpec as ChildSpec
from ._spec import OnExhausted as OnExhausted
from ._spec import Restart as Restart
from ._spec import RestartPolicy as RestartPolicy
from ._spec import Service as Service
from ._spec import Strategy as Strategy
from ._supervisor import CANCEL_GRACE as CANCEL_GRACE
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "CANCEL_GRACE",
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorRef",
    "ActorUnavailable",
    "AskTimeout",
    "ChildSpec",
    "ChildState",
    "ErrorInfo",
    "Mailbox",
    "MailboxFull",
    "MailboxStatistics",
    "NodeSnapshot",
    "OnExhausted",
    "Registry",
    "Restart",
    "RestartIntensityExceeded",
    "RestartPolicy",
    "Service",
    "Strategy",
    "Supervisor",
    "run_root",
]
