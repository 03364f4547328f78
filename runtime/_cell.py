"""``Cell``: a supervisor's slot for one child, alive across the child's incarnations.

The cell holds what must survive a restart (the spec, the mailbox object, counters, the last
error, the restart history) and the live parts of the current incarnation (the instance, the
cancel scope of the task that runs it). Refs point at cells.

The cell is the only writer of its fields: the actor loop, the supervisor and the registry read
them through properties and change them through the transition methods below, each of which
keeps the invariants together (e.g. leaving the accepting states wakes waiting senders; the
scope a stop cancels is always the one the child waits in). Everything here is synchronous.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any

import trio

from ._errors import ActorCrashed, ActorUnavailable, MailboxFull
from ._mailbox import Envelope, Mailbox, Reply
from ._ref import ActorRef
from ._snapshot import ChildState, ErrorInfo, NodeSnapshot

if TYPE_CHECKING:
    from ._actor import Actor
    from ._spec import ChildSpec, OnExhausted, RestartPolicy, Service

__all__ = ["Cell", "Halt"]

_ACCEPTING = (ChildState.RUNNING, ChildState.STARTING)


class Halt(enum.IntEnum):
    """Why the current incarnation should end (checked by the actor loop after each message).

    Ordered: a stronger request replaces a weaker one, never the other way round.
    """

    NONE = 0
    EXIT = 1  # the actor called ``stop()``: a normal exit, restart type decides
    RESTART = 2  # a sibling restart (rest_for_one) stops it to start it again
    STOP = 3  # terminal stop: stop_child, passivation, supervisor shutdown


class Cell:
    """One supervised child. Internal: callers only see it through :class:`ActorRef`."""

    __slots__ = (
        "__weakref__",
        "_busy",
        "_changed",
        "_consecutive",
        "_done",
        "_dynamic",
        "_finished",
        "_generation",
        "_halt",
        "_handled",
        "_history",
        "_idle_since",
        "_incarnation",
        "_inflight",
        "_instance",
        "_is_actor",
        "_last_error",
        "_mailbox",
        "_next_restart_at",
        "_on_exhausted",
        "_path",
        "_public_ref",
        "_quarantined",
        "_restarts",
        "_scope",
        "_spec",
        "_started_at",
        "_started_at_wall",
        "_state",
        "_stop_timed_out",
        "_sweep_mark",
        "_tag",
    )

    def __init__(
        self,
        spec: ChildSpec,
        path: str,
        *,
        dynamic: bool,
        on_exhausted: OnExhausted,
        tag: Any = None,
        ref: ActorRef | None = None,
    ) -> None:
        self._spec = spec
        self._path = path
        self._dynamic = dynamic
        self._on_exhausted = on_exhausted
        self._tag = tag
        self._public_ref = ref
        self._state = ChildState.STOPPED
        self._instance: Actor | Service | None = None
        self._is_actor = False
        self._mailbox: Mailbox | None = None
        self._scope = trio.CancelScope()
        self._finished = True
        self._generation = 0
        self._done: trio.Event | None = None
        self._halt = Halt.NONE
        self._incarnation = 0
        self._restarts = 0
        self._history: list[float] = []
        self._consecutive = 0
        self._quarantined = False
        self._last_error: ErrorInfo | None = None
        self._started_at: float | None = None
        self._started_at_wall: float | None = None
        self._next_restart_at: float | None = None
        self._stop_timed_out = False
        self._handled = 0
        self._busy = False
        self._inflight: Reply | None = None
        self._sweep_mark = -1
        self._idle_since = 0.0
        self._changed: trio.Event | None = None

    # -- reads --------------------------------------------------------------------------------

    @property
    def spec(self) -> ChildSpec:
        return self._spec

    @property
    def path(self) -> str:
        """``supervisor/child``, for errors and logs."""
        return self._path

    @property
    def dynamic(self) -> bool:
        """Added at run time (``start_child``, registry) rather than listed at construction."""
        return self._dynamic

    @property
    def on_exhausted(self) -> OnExhausted:
        return self._on_exhausted

    @property
    def tag(self) -> Any:
        """What the owner filed the cell under (the registry's key)."""
        return self._tag

    @property
    def state(self) -> ChildState:
        return self._state

    @property
    def halt(self) -> Halt:
        return self._halt

    @property
    def halted(self) -> bool:
        """Whether the supervisor wants the child's task to end (stop or sibling restart)."""
        return self._halt is Halt.STOP or self._halt is Halt.RESTART

    @property
    def instance(self) -> Actor | Service | None:
        return self._instance

    @property
    def is_actor(self) -> bool:
        return self._is_actor

    @property
    def mailbox(self) -> Mailbox | None:
        return self._mailbox

    @property
    def finished(self) -> bool:
        """No task runs this child (never started, or its run ended)."""
        return self._finished

    @property
    def generation(self) -> int:
        """Counts runs (an incarnation task and the ones its restarts start), so a stale run
        never ends its successor's."""
        return self._generation

    @property
    def incarnation(self) -> int:
        """Counts instances built by the factory."""
        return self._incarnation

    @property
    def restarts(self) -> int:
        return self._restarts

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def stop_timed_out(self) -> bool:
        return self._stop_timed_out

    def ref(self) -> ActorRef:
        """The ref callers get for this cell (made once; a registry passes its key's ref)."""
        if self._public_ref is None:
            self._public_ref = ActorRef(self)
        return self._public_ref

    def depth(self) -> int:
        return 0 if self._mailbox is None else self._mailbox.depth()

    # -- delivery (called by ActorRef, must never block) ---------------------------------------

    def deliver(self, message: Any, reply: Reply | None) -> None:
        state = self._state
        mailbox = self._mailbox
        if mailbox is not None and (state is ChildState.RUNNING or state is ChildState.STARTING):
            try:
                mailbox.send_nowait((message, reply))
            except trio.WouldBlock:
                raise MailboxFull(self._path, mailbox.capacity) from None
            except trio.ClosedResourceError:
                pass
            else:
                return
        raise self.unavailable()

    def offer(self, message: Any) -> bool:
        """Queue a tell if there is room (``False`` when full); raise ``ActorUnavailable`` like
        :meth:`deliver`. The waiting half of ``ActorRef.send``."""
        mailbox = self._mailbox
        if mailbox is not None and self._state in _ACCEPTING:
            try:
                return mailbox.offer((message, None))
            except trio.ClosedResourceError:
                pass
        raise self.unavailable()

    async def wait_room(self) -> None:
        """Wait until the mailbox that refused an :meth:`offer` may have room, or this cell's
        state changed (see ``Mailbox.wait_room``)."""
        mailbox = self._mailbox
        if mailbox is None:
            await trio.lowlevel.checkpoint()
        else:
            await mailbox.wait_room()

    def unavailable(self) -> ActorUnavailable:
        reason = None
        if self._mailbox is None and self._instance is not None:
            reason = "not an actor"
        elif self._last_error is not None and self._state in (
            ChildState.FAILED,
            ChildState.RESTARTING,
        ):
            reason = f"{self._last_error.type}: {self._last_error.message}"
        state = self._state.value if self._state not in _ACCEPTING else "stopping"
        return ActorUnavailable(self._path, state, reason)

    # -- the actor loop ------------------------------------------------------------------------

    def begin_message(self, reply: Reply | None) -> None:
        self._busy = True
        self._inflight = reply

    def end_message(self) -> None:
        self._inflight = None
        self._busy = False
        self._handled += 1

    def request_exit(self) -> None:
        """``Actor.stop()``: end this incarnation normally after the current message."""
        if self._halt is Halt.NONE:
            self._halt = Halt.EXIT
            if self._mailbox is not None:
                self._mailbox.wake()

    def close_incarnation(
        self,
        error: BaseException | None,
        owner: trio.MemoryReceiveChannel[Envelope] | None = None,
    ) -> None:
        """Close the mailbox and fail the in-flight and queued asks (synchronously, so no ask
        can slip into a dead incarnation). With ``owner``, only if that channel is still the
        current one (a stale incarnation that outlived its stop leaves its successor alone)."""
        mailbox = self._mailbox
        if owner is not None and mailbox is not None and not mailbox.owns(owner):
            return
        if error is not None:
            self._state = ChildState.RESTARTING
        elif self._state in _ACCEPTING:
            self._state = ChildState.STOPPING
        left = mailbox.close(owner) if mailbox is not None else []
        inflight, self._inflight = self._inflight, None
        self._busy = False
        if inflight is None and not left:
            return
        path = self._path

        def failure() -> BaseException:
            if error is not None:
                return ActorCrashed(path, error)
            return ActorUnavailable(path, "stopped", "stopped before handling the message")

        if inflight is not None:
            inflight.fail(failure())
        for _, reply in left:
            if reply is not None:
                reply.fail(failure())

    # -- scopes: the one the child waits in is the one a stop cancels -------------------------

    def enter_scope(self, scope: trio.CancelScope) -> None:
        """Publish the scope the child waits in now: its incarnation's one scope (an actor's
        nursery scope, the scope around a service), which ``nursery.start`` also hands back
        once it is ready, or a guard around a wait between incarnations. Cancel it at once if
        a stop is already pending, so no stop request can fall between two scopes."""
        self._scope = scope
        if self._halt is Halt.STOP or self._halt is Halt.RESTART:
            scope.cancel()

    def guard(self) -> trio.CancelScope:
        """A new shielded scope for the child's next wait, published by :meth:`enter_scope`."""
        scope = trio.CancelScope(shield=True)
        self.enter_scope(scope)
        return scope

    def cancel(self) -> None:
        """Cancel whatever the child waits in now."""
        self._scope.cancel()

    # -- incarnations (driven by the supervisor) ------------------------------------------------

    def reset_for_run(self) -> None:
        """A supervisor starting (again) forgets earlier stop requests on its static cells."""
        self._halt = Halt.NONE
        self._stop_timed_out = False

    def before_build(self) -> None:
        """Clear the previous incarnation's start time and non-terminal stop request."""
        self._started_at = None
        if self._halt is not Halt.STOP:
            self._halt = Halt.NONE

    def build_failed(self, error: BaseException) -> None:
        """The factory raised: recorded like a crash of an incarnation that never ran."""
        self._last_error = ErrorInfo.from_exception(error)
        self._state = ChildState.RESTARTING

    def begin_incarnation(
        self, instance: Actor | Service, *, is_actor: bool
    ) -> trio.MemoryReceiveChannel[Envelope] | None:
        """Install a freshly built instance; for an actor open the mailbox (so refs can queue
        before its task runs) and return the receiving end."""
        self._instance = instance
        self._incarnation += 1
        self._is_actor = is_actor
        receive = None
        if is_actor:
            if self._mailbox is None:
                self._mailbox = Mailbox(self._spec.mailbox_capacity)
            receive = self._mailbox.open()
        if self._halt is Halt.NONE:
            self._state = ChildState.STARTING
        return receive

    def mark_running(self) -> None:
        """The incarnation is ready (``on_start`` returned / ``started()`` called)."""
        if self._halt is not Halt.STOP and self._halt is not Halt.RESTART:
            self._state = ChildState.RUNNING
        self._started_at = trio.current_time()
        self._started_at_wall = time.time()
        self._idle_since = self._started_at
        self._sweep_mark = self._handled
        self._next_restart_at = None
        self.notify()

    def crashed(self, error: BaseException) -> None:
        """The incarnation ended with ``error``: keep it, and wait to restart unless stopping."""
        self._last_error = ErrorInfo.from_exception(error)
        if self._state is not ChildState.STOPPING:
            self._state = ChildState.RESTARTING
        self.notify()

    def record_error(self, error: BaseException) -> None:
        self._last_error = ErrorInfo.from_exception(error)

    def count_end(self, now: float, policy: RestartPolicy) -> int | None:
        """Book an end that may be restarted under ``policy``: the backoff attempt of the
        restart, or ``None`` when the child exceeded its intensity (or crashed again while on
        quarantine probation). ``stable_after`` seconds of uptime start a new streak."""
        if self._started_at is not None and now - self._started_at >= policy.stable_after:
            self._consecutive = 0
            self._quarantined = False
        if self._quarantined:
            return None
        horizon = now - policy.period
        self._history = [t for t in self._history if t > horizon]
        self._history.append(now)
        if len(self._history) > policy.max_restarts:
            return None
        attempt = self._consecutive
        self._consecutive += 1
        return attempt

    def mark_stopped(self) -> None:
        self._state = ChildState.STOPPED

    def mark_failed(self) -> None:
        """Given up on (escalated) or ended before it was ever ready."""
        self._state = ChildState.FAILED

    def wait_restart(self, at: float) -> None:
        """Waiting out a backoff until ``at`` (trio clock)."""
        self._state = ChildState.RESTARTING
        self._next_restart_at = at

    def quarantine(self, until: float) -> None:
        """Parked as ``failed`` until ``until``, then retried on probation."""
        self._state = ChildState.FAILED
        self._next_restart_at = until

    def end_quarantine(self) -> None:
        self._quarantined = True
        self._history = []
        self._consecutive = 0

    def count_restart(self) -> None:
        self._restarts += 1

    def restart_by_sibling(self) -> None:
        """rest_for_one: start again after being stopped for a sibling's restart."""
        self._restarts += 1
        self._halt = Halt.NONE

    def retire(self) -> None:
        """A temporary child stopped by a sibling's restart is not started again."""
        self._halt = Halt.STOP
        self._state = ChildState.STOPPED

    # -- stopping -------------------------------------------------------------------------------

    def request_halt(self, halt: Halt) -> None:
        """Ask the child to end (a stronger request replaces a weaker one)."""
        if halt > self._halt:
            self._halt = halt

    def stop_accepting(self) -> None:
        """A terminal stop that refuses new messages at once (passivation, registry stop)."""
        self._halt = Halt.STOP
        if self._state in _ACCEPTING:
            self._state = ChildState.STOPPING

    def stopped_while_idle(self) -> None:
        """A stop found no task running: a terminal one settles the state (failed stays)."""
        if self._halt is Halt.STOP and self._state is not ChildState.FAILED:
            self._state = ChildState.STOPPED

    def begin_stopping(self) -> bool:
        """Mark the child ``stopping``; return whether it can stop gracefully (a running actor:
        it is woken to notice the request, and so are senders waiting for room)."""
        graceful = (
            self._is_actor
            and self._mailbox is not None
            and self._state
            in (
                ChildState.RUNNING,
                ChildState.STARTING,
                ChildState.STOPPING,
            )
        )
        self._state = ChildState.STOPPING
        if graceful:
            assert self._mailbox is not None
            self._mailbox.wake()
        return graceful

    def mark_stop_timed_out(self) -> None:
        self._stop_timed_out = True

    # -- the runner task ------------------------------------------------------------------------

    def begin_runner(self) -> None:
        """A run of this cell is about to start (its first incarnation task). Each incarnation
        publishes its own scope before its first wait; until then cancelling this placeholder
        only needs to be seen (``halt`` is checked on entry)."""
        self._scope = trio.CancelScope(shield=True)
        self._generation += 1
        self._finished = False
        self._done = None

    def runner_ended(self) -> bool:
        """The run ended (no incarnation follows): settle the state, wake waiters; ``True`` if
        stopped for good."""
        if self._mailbox is not None:
            self.close_incarnation(None)
        if self._halt is Halt.STOP:
            self._state = ChildState.STOPPED
        elif self._halt is Halt.RESTART:
            self._state = ChildState.RESTARTING
        if self._state is not ChildState.RESTARTING:
            self._next_restart_at = None
        self._finished = True
        if self._done is not None:
            self._done.set()
        self.notify()
        return self._state is ChildState.STOPPED

    async def wait_finished(self) -> None:
        if self._finished:
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    def notify(self) -> None:
        """Wake :meth:`wait_changed` callers (readiness reached, crashed or ended)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_changed(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    # -- passivation ----------------------------------------------------------------------------

    def idle_for(self, now: float) -> float:
        """Seconds this running actor has handled nothing, as seen by the registry's sweeps:
        any activity since the previous sweep (busy, queued, handled) restarts the count."""
        if self._busy or self.depth() > 0 or self._handled != self._sweep_mark:
            self._sweep_mark = self._handled
            self._idle_since = now
            return 0.0
        return now - self._idle_since

    # -- health ---------------------------------------------------------------------------------

    def snapshot(self) -> NodeSnapshot:
        now = trio.current_time()
        inner = getattr(self._instance, "snapshot", None)
        kind = "actor" if self._is_actor else "service"
        children: tuple[NodeSnapshot, ...] = ()
        if callable(inner) and not self._is_actor:
            nested = inner()
            if isinstance(nested, NodeSnapshot):
                kind = nested.kind
                children = nested.children
        running = self._state in (ChildState.RUNNING, ChildState.STOPPING)
        started_at = self._started_at
        return NodeSnapshot(
            id=self._spec.id,
            kind=kind,
            state=self._state,
            restarts=self._restarts,
            last_error=self._last_error,
            started_at=started_at if running else None,
            started_at_wall=self._started_at_wall if running else None,
            uptime=(now - started_at) if running and started_at is not None else None,
            mailbox=None if self._mailbox is None else self._mailbox.statistics(),
            handled=self._handled,
            next_restart_in=(
                None if self._next_restart_at is None else max(0.0, self._next_restart_at - now)
            ),
            stop_timed_out=self._stop_timed_out,
            children=children,
        )
