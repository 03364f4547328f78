"""The actor runtime: actors, mailboxes, refs, supervisors, a virtual-actor registry and the
supervision-tree snapshot. It knows nothing about salons and imports nothing of the project.

Errors: ``ActorError → ActorCrashed | ActorUnavailable | AskTimeout | MailboxFull |
RestartIntensityExceeded`` (see ``runtime._errors``). Contracts: ``runtime._actor`` (writing an
actor), ``runtime._supervisor`` (supervision), ``runtime._registry`` (virtual actors).

Usage::

    class Company(Actor):
        def __init__(self, company_id: int) -> None:
            self.company_id = company_id

        async def on_start(self) -> None:          # load state; ready afterwards
            self.status = "pending"

        async def receive(self, message: object) -> object:
            return self.status

        def keep_alive(self) -> bool:              # veto passivation while a session is live
            return self.status == "active"

    policy = RestartPolicy(**dataclasses.asdict(settings.supervisor))
    companies = Registry("companies", Company, idle_timeout=600, policy=policy)
    root = Supervisor("root", [ChildSpec("companies", lambda: companies, shutdown=math.inf)],
                      policy=policy)
    await app.nursery.start(run_root, root)        # failures logged and contained

    companies.ref(42).tell("hello")                # activates company 42 if needed
    await companies.ref(42).send("hello")          # the same, waiting out a full mailbox
    status = await companies.ref(42).ask("status", timeout=2.0)
    tree = root.snapshot().to_json()               # for /health/tree
"""

from __future__ import annotations

from ._actor import Actor as Actor
from ._backoff import Backoff as Backoff
from ._backoff import Jitter as Jitter
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
    "Backoff",
    "ChildSpec",
    "ChildState",
    "ErrorInfo",
    "Jitter",
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
