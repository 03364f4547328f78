"""``Cell``: a supervisor's slot for one child, alive across the child's incarnations.

The cell holds what must survive a restart (the spec, the mailbox object, counters, the last
error, the restart history) and the live parts of the current incarnation (the instance, the
cancel scope of the task that runs it). Refs point at cells. Everything here is synchronous;
the supervisor drives the cell from the child's task.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any

import trio

from ._errors import ActorUnavailable, MailboxFull
from ._mailbox import Mailbox, Reply
from ._snapshot import ChildState, ErrorInfo, NodeSnapshot

if TYPE_CHECKING:
    from ._actor import Actor
    from ._ref import ActorRef
    from ._spec import ChildSpec, OnExhausted, Service

__all__ = ["Cell", "Halt"]

_ACCEPTING = (ChildState.RUNNING, ChildState.STARTING)


class Halt(enum.IntEnum):
    """Why the current incarnation should end (checked by the actor loop after each message)."""

    NONE = 0
    EXIT = 1  # the actor called ``stop()``: a normal exit, restart type decides
    RESTART = 2  # a sibling restart (rest_for_one) stops it to start it again
    STOP = 3  # terminal stop: stop_child, passivation, supervisor shutdown


class Cell:
    """One supervised child. Internal: callers only see it through :class:`ActorRef`."""

    __slots__ = (
        "__weakref__",
        "_changed",
        "_done",
        "busy",
        "consecutive",
        "dynamic",
        "finished",
        "generation",
        "halt",
        "handled",
        "history",
        "idle_since",
        "incarnation",
        "inflight",
        "instance",
        "is_actor",
        "last_error",
        "mailbox",
        "next_restart_at",
        "on_exhausted",
        "path",
        "public_ref",
        "quarantined",
        "restarts",
        "scope",
        "spec",
        "started_at",
        "started_at_wall",
        "state",
        "stop_timed_out",
        "sweep_mark",
        "tag",
    )

    def __init__(
        self, spec: ChildSpec, path: str, *, dynamic: bool, on_exhausted: OnExhausted
    ) -> None:
        self.spec = spec
        self.path = path
        self.dynamic = dynamic
        self.on_exhausted = on_exhausted
        self.state = ChildState.STOPPED
        self.instance: Actor | Service | None = None
        self.is_actor = False
        self.mailbox: Mailbox | None = None
        self.scope = trio.CancelScope()
        self.finished = True
        self.generation = 0
        self._done: trio.Event | None = None
        self.halt = Halt.NONE
        self.incarnation = 0
        self.restarts = 0
        self.history: list[float] = []
        self.consecutive = 0
        self.quarantined = False
        self.last_error: ErrorInfo | None = None
        self.started_at: float | None = None
        self.started_at_wall: float | None = None
        self.next_restart_at: float | None = None
        self.stop_timed_out = False
        self.handled = 0
        self.busy = False
        self.inflight: Reply | None = None
        self.sweep_mark = -1
        self.idle_since = 0.0
        self.public_ref: ActorRef | None = None
        self.tag: Any = None
        self._changed: trio.Event | None = None

    # -- delivery (called by ActorRef, must never block) ---------------------------------------

    def deliver(self, message: Any, reply: Reply | None) -> None:
        state = self.state
        mailbox = self.mailbox
        if mailbox is not None and (state is ChildState.RUNNING or state is ChildState.STARTING):
            try:
                mailbox.send_nowait((message, reply))
            except trio.WouldBlock:
                raise MailboxFull(self.path, mailbox.capacity) from None
            except trio.ClosedResourceError:
                pass
            else:
                return
        raise self.unavailable()

    def offer(self, message: Any) -> bool:
        """Queue a tell if there is room (``False`` when full); raise ``ActorUnavailable`` like
        :meth:`deliver`. The waiting half of ``ActorRef.send``."""
        mailbox = self.mailbox
        if mailbox is not None and self.state in _ACCEPTING:
            try:
                return mailbox.offer((message, None))
            except trio.ClosedResourceError:
                pass
        raise self.unavailable()

    async def wait_room(self) -> None:
        """Wait until the mailbox that refused an :meth:`offer` may have room, or this cell's
        state changed (see ``Mailbox.wait_room``)."""
        mailbox = self.mailbox
        if mailbox is None:
            await trio.lowlevel.checkpoint()
        else:
            await mailbox.wait_room()

    def unavailable(self) -> ActorUnavailable:
        reason = None
        if self.mailbox is None and self.instance is not None:
            reason = "not an actor"
        elif self.last_error is not None and self.state in (
            ChildState.FAILED,
            ChildState.RESTARTING,
        ):
            reason = f"{self.last_error.type}: {self.last_error.message}"
        state = self.state.value if self.state not in _ACCEPTING else "stopping"
        return ActorUnavailable(self.path, state, reason)

    # -- lifecycle helpers --------------------------------------------------------------------

    def mark_running(self) -> None:
        if self.halt is not Halt.STOP and self.halt is not Halt.RESTART:
            self.state = ChildState.RUNNING
        self.started_at = trio.current_time()
        self.started_at_wall = time.time()
        self.idle_since = self.started_at
        self.sweep_mark = self.handled
        self.next_restart_at = None
        self.notify()

    def notify(self) -> None:
        """Wake :meth:`wait_changed` callers (readiness reached, crashed or ended)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_changed(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    def begin_runner(self) -> None:
        # The runner replaces ``scope`` with the shielded scope of whatever it waits in; until
        # then cancelling this one only needs to be seen (``halt`` is checked on entry).
        self.scope = trio.CancelScope(shield=True)
        self.generation += 1
        self.finished = False
        self._done = None

    def end_runner(self) -> None:
        self.finished = True
        if self._done is not None:
            self._done.set()
        self.notify()

    async def wait_finished(self) -> None:
        if self.finished:
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    def depth(self) -> int:
        return 0 if self.mailbox is None else self.mailbox.depth()

    def snapshot(self) -> NodeSnapshot:
        now = trio.current_time()
        inner = getattr(self.instance, "snapshot", None)
        kind = "actor" if self.is_actor else "service"
        children: tuple[NodeSnapshot, ...] = ()
        if callable(inner) and not self.is_actor:
            nested = inner()
            if isinstance(nested, NodeSnapshot):
                kind = nested.kind
                children = nested.children
        running = self.state in (ChildState.RUNNING, ChildState.STOPPING)
        return NodeSnapshot(
            id=self.spec.id,
            kind=kind,
            state=self.state,
            restarts=self.restarts,
            last_error=self.last_error,
            started_at=self.started_at if running else None,
            started_at_wall=self.started_at_wall if running else None,
            uptime=(now - self.started_at) if running and self.started_at is not None else None,
            mailbox=None if self.mailbox is None else self.mailbox.statistics(),
            handled=self.handled,
            next_restart_in=(
                None if self.next_restart_at is None else max(0.0, self.next_restart_at - now)
            ),
            stop_timed_out=self.stop_timed_out,
            children=children,
        )
