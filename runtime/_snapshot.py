"""The supervision tree as frozen, JSON-ready records (``/health/tree``, ``aiadmin tree``)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from ._errors import describe
from ._mailbox import MailboxStatistics

__all__ = ["ChildState", "ErrorInfo", "NodeSnapshot"]


class ChildState(enum.StrEnum):
    """Lifecycle of a supervised child (and of a supervisor itself).

    ``starting`` (``on_start`` running; messages queue) → ``running`` → ``stopping`` (graceful
    stop requested; new messages refused) → ``stopped``. After a crash: ``restarting`` (waiting
    out the backoff) or ``failed`` (quarantined, or given up and escalated).
    """

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The last error of a node: exception type name and (truncated) message, no traceback."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        text = describe(exc)
        prefix = f"{type(exc).__name__}: "
        return cls(type(exc).__name__, text[len(prefix) :] if text.startswith(prefix) else "")


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """One supervisor, registry, service or actor, with its children.

    ``started_at`` is on trio's clock (``trio.current_time()``) and ``started_at_wall`` is Unix
    time, both of the current incarnation; ``uptime`` is measured when the snapshot was taken.
    ``stop_timed_out`` is set when the child ignored cancellation past its shutdown budget.
    """

    id: str
    kind: str
    state: ChildState
    restarts: int = 0
    last_error: ErrorInfo | None = None
    started_at: float | None = None
    started_at_wall: float | None = None
    uptime: float | None = None
    mailbox: MailboxStatistics | None = None
    handled: int = 0
    next_restart_in: float | None = None
    stop_timed_out: bool = False
    children: tuple[NodeSnapshot, ...] = ()

    def find(self, path: str) -> NodeSnapshot | None:
        """The node at ``a/b/c`` below this one (``path`` excludes this node's own id)."""
        node: NodeSnapshot | None = self
        for part in path.split("/"):
            if node is None:
                return None
            node = next((c for c in node.children if c.id == part), None)
        return node

    def walk(self) -> list[NodeSnapshot]:
        """This node and all below it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers only."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "restarts": self.restarts,
            "last_error": (
                None
                if self.last_error is None
                else {"type": self.last_error.type, "message": self.last_error.message}
            ),
            "started_at": (
                None
                if self.started_at_wall is None
                else dt.datetime.fromtimestamp(self.started_at_wall, dt.UTC).isoformat()
            ),
            "uptime_seconds": None if self.uptime is None else round(self.uptime, 3),
            "mailbox": (
                None
                if self.mailbox is None
                else {
                    "depth": self.mailbox.depth,
                    "capacity": self.mailbox.capacity,
                    "accepted": self.mailbox.accepted,
                    "rejected": self.mailbox.rejected,
                    "dropped": self.mailbox.dropped,
                }
            ),
            "handled": self.handled,
            "next_restart_in": (
                None if self.next_restart_in is None else round(self.next_restart_in, 3)
            ),
            "stop_timed_out": self.stop_timed_out,
            "children": [child.to_json() for child in self.children],
        }
