"""Supervisor: starts, watches, restarts and stops children — OTP's ``supervisor`` on trio.

Contract
========

Purpose
    A supervisor owns a trio nursery and runs each child (an :class:`Actor` or any
    :class:`Service` such as a nested supervisor or a registry) in one task of it. It starts
    children in order, restarts them when they end according to their spec and its strategy,
    gives up on a child that restarts too often, and stops them all in reverse order. A child's
    crash never propagates through the nursery: it is caught, recorded (``last_error``, log) and
    turned into a restart decision.

Strategies (:class:`Strategy`, default ``one_for_one``)
    ``one_for_one``   only the child that ended is restarted (tenants);
    ``rest_for_one``  the child that ended and every child started after it: the later ones are
                      stopped in reverse order, then all are started again in order.

Restart types (:class:`Restart`, default ``permanent``)
    ``permanent`` always restarted (also after a normal exit); ``transient`` restarted only
    after a crash; ``temporary`` never restarted (a dynamic one is removed when it ends).

Intensity and backoff (:class:`RestartPolicy`, defaults as ``config.SupervisorLimits``)
    Counted **per child** (one bad tenant does not use up the budget of the others): more than
    ``max_restarts`` (5) restarts within ``period`` (60 s) exhausts the child. The first restart of
    a crash streak is immediate; later ones wait ``backoff_initial`` (0.1 s) doubling up to
    ``backoff_max`` (30 s), with ±``jitter`` (20 %), drawn from the supervisor's
    ``random.Random`` (inject a seeded one in tests). ``stable_after`` (60 s) of uptime ends a
    streak.

Exhausted children (:class:`OnExhausted`; default by placement)
    Static children (listed at construction: infrastructure) **escalate**: the supervisor stops
    every child and ``run()`` raises :class:`RestartIntensityExceeded` to its parent, which
    treats it as its own child's crash. Dynamic children (``start_child``: tenants) are
    **quarantined**: state ``failed`` with the reason kept, retried every ``quarantine_retry``
    (300 s); a retried child that crashes before it is stable goes straight back.

Child spec (:class:`ChildSpec`)
    ``id`` (unique, no ``/``), ``factory`` (sync, a new instance per incarnation), ``restart``
    (``permanent``), ``shutdown`` (5 s; ``math.inf`` for supervisors), ``on_exhausted``
    (``None`` = by placement), ``mailbox_capacity`` (64, actors only).

Start order
    ``run()`` starts static children one at a time, each ready (``Actor.on_start`` returned /
    ``task_status.started()`` called) before the next, then reports itself started. If a static
    child fails to start, the ones already started are stopped and ``run()`` raises that error
    (the child is not retried: a boot error is a configuration error). ``start_child`` waits for
    readiness too; ``start_child_nowait`` does not (messages queue meanwhile).

Stop order and shutdown timeouts
    On cancellation of ``run()`` (or :meth:`Supervisor.aclose`, or escalation) dynamic children
    are stopped concurrently, then static children one by one in reverse start order. Stopping a
    child: an actor is asked to stop after its current message and runs ``on_stop`` (new messages
    are refused, queued asks fail with ``ActorUnavailable``); a service is cancelled. After
    ``shutdown`` seconds the actor is cancelled and given :data:`CANCEL_GRACE` more. A child
    still alive then (it shields itself from cancellation) is logged, marked ``stop_timed_out``
    in the snapshot and not waited for by the stop sequence; trio's structured concurrency still
    joins its task before ``run()`` returns.

Errors out of ``run()``
    ``RestartIntensityExceeded`` (escalation) or a static child's start error; never a child's
    ordinary crash. Use :func:`run_root` to run the root supervisor inside someone else's
    nursery (Quart's ``app.nursery``) so even those are logged and contained.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import trio

from ._actor import Actor, run_actor, settle
from ._cell import Cell, Halt
from ._errors import (
    ActorCrashed,
    ActorUnavailable,
    RestartIntensityExceeded,
    describe,
    unwrap,
)
from ._mailbox import Envelope, Mailbox
from ._ref import ActorRef
from ._snapshot import ChildState, ErrorInfo, NodeSnapshot
from ._spec import ChildSpec, OnExhausted, Restart, RestartPolicy, Service, Strategy

__all__ = ["CANCEL_GRACE", "Supervisor"]

log = logging.getLogger("runtime.supervisor")

#: Seconds a child gets to end after being cancelled at the end of its shutdown budget.
CANCEL_GRACE = 1.0


class _Action(enum.Enum):
    STOP = enum.auto()
    RESTART = enum.auto()
    REST = enum.auto()
    QUARANTINE = enum.auto()
    ESCALATE = enum.auto()


def _halted(cell: Cell) -> bool:
    """Whether the supervisor wants the child's task to end (terminal stop or sibling restart)."""
    return cell.halt is Halt.STOP or cell.halt is Halt.RESTART


class _Status:
    """The ``task_status`` handed to an incarnation: marks the cell running on every
    incarnation and reports readiness to the starter once."""

    __slots__ = ("cell", "outer", "reported")

    def __init__(self, cell: Cell, outer: trio.TaskStatus[BaseException | None]) -> None:
        self.cell = cell
        self.outer = outer
        self.reported = False

    def started(self, value: object = None) -> None:
        self.cell.mark_running()
        self.report(None)

    def report(self, error: BaseException | None) -> None:
        if not self.reported:
            self.reported = True
            self.outer.started(error)


_Prepared = tuple[Actor | Service, trio.MemoryReceiveChannel[Envelope] | None] | BaseException


class Supervisor:
    """Supervises an ordered list of children; see the module docstring for the contract.

    ``run()`` may be called again after it returned — typically by a parent restarting it
    (``ChildSpec("infra", lambda: infra_supervisor)``): the static children keep their cells,
    so refs handed out before stay valid and reach the new incarnations; counters carry on.
    It cannot run twice at the same time.
    """

    def __init__(
        self,
        id: str,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        policy: RestartPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.id = id
        self.strategy = strategy
        self.policy = policy if policy is not None else RestartPolicy()
        self._rng = rng if rng is not None else random.Random()
        self._cells: dict[str, Cell] = {}
        self._detached: set[Cell] = set()
        for spec in children:
            self._add(spec, dynamic=False)
        self._state = ChildState.STOPPED
        self._running = False
        self._nursery: trio.Nursery | None = None
        self._commands_send, self._commands = trio.open_memory_channel[tuple[Any, ...]](math.inf)
        self._serve_scope = trio.CancelScope()
        self._failure: BaseException | None = None
        self._last_error: ErrorInfo | None = None
        self._started_at: float | None = None
        self._started_at_wall: float | None = None
        self._closed = trio.Event()
        #: Called with a dynamic cell once it has ended for good (used by ``Registry``).
        self.on_removed: Any = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def state(self) -> ChildState:
        """``starting``, ``running``, ``stopping``, ``stopped`` or ``failed`` (escalated)."""
        return self._state

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the static children in order, supervise until cancelled, stop in reverse.

        Ready (``task_status.started()``) once every static child is ready. Cancellation stops
        the children gracefully within their shutdown budgets (the stop is shielded).
        """
        if self._running:
            raise RuntimeError(f"supervisor {self.id} is already running")
        self._running = True
        self._failure = None
        self._serve_scope = trio.CancelScope()
        self._commands_send, self._commands = trio.open_memory_channel[tuple[Any, ...]](math.inf)
        self._closed = trio.Event()
        for cell in self._cells.values():  # a re-run (restart by the parent) starts afresh
            cell.halt = Halt.NONE
            cell.stop_timed_out = False
        self._state = ChildState.STARTING
        self._started_at = trio.current_time()
        self._started_at_wall = time.time()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    if await self._start_static():
                        self._state = ChildState.RUNNING
                        task_status.started()
                        await self._serve()
                finally:
                    self._state = ChildState.STOPPING
                    with trio.CancelScope(shield=True):
                        await self._stop_all()
        finally:
            self._nursery = None
            self._running = False
            self._state = ChildState.FAILED if self._failure is not None else ChildState.STOPPED
            self._closed.set()
        if self._failure is not None:
            raise self._failure

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Add a dynamic child and wait until it is ready; returns a ref to it.

        Raises ``ActorCrashed`` if its first start fails (it stays supervised: restarted or
        quarantined per its spec), ``ActorUnavailable`` if the supervisor is not running or the
        child was stopped while starting, ``ValueError`` if the id is taken.
        """
        nursery = self._require_running()
        cell = self._add(spec, dynamic=True)
        prepared = self._prepare(cell)
        cell.begin_runner()
        try:
            error = await nursery.start(self._run_child, cell, False, prepared, None)
        except RuntimeError:  # ended (stopped) before it was ready
            raise ActorUnavailable(cell.path, cell.state.value, "stopped while starting") from None
        if error is not None:
            raise ActorCrashed(cell.path, error)
        return self.ref(spec.id)

    def start_child_nowait(self, spec: ChildSpec) -> ActorRef:
        """Add a dynamic child without waiting: its mailbox accepts messages at once and they
        are handled once ``on_start`` returns. Same errors as ``start_child`` except crashes."""
        cell = self._start_cell_nowait(spec, None)
        return self.ref(cell.spec.id)

    async def stop_child(self, child_id: str) -> None:
        """Stop a child for good within its shutdown budget (see the contract).

        A dynamic child is removed; a static one stays listed as ``stopped``. Its refs raise
        ``ActorUnavailable`` from now on. ``KeyError`` if there is no such child.
        """
        cell = self._cells[child_id]
        await self._stop_cell(cell, Halt.STOP)
        if cell.dynamic:
            self._remove(cell)

    def ref(self, child_id: str) -> ActorRef:
        """The ref of child ``child_id`` (``KeyError`` if unknown); valid across restarts."""
        cell = self._cells[child_id]
        if cell.public_ref is None:
            cell.public_ref = ActorRef(cell)
        return cell.public_ref

    def child_ids(self) -> list[str]:
        """Children in start order."""
        return list(self._cells)

    def stop(self) -> None:
        """Ask ``run()`` to stop its children and return (no-op when not running)."""
        self._serve_scope.cancel()

    async def aclose(self) -> None:
        """:meth:`stop` and wait until ``run()`` has finished (idempotent). Do not call it from
        a task this supervisor owns: it would wait for itself."""
        self.stop()
        if self._running:
            await self._closed.wait()

    def snapshot(self) -> NodeSnapshot:
        """This supervisor and its children, JSON-ready via ``to_json()``."""
        now = trio.current_time() if self._started_at is not None else None
        cells = list(self._cells.values()) + [c for c in self._detached if not c.finished]
        return NodeSnapshot(
            id=self.id,
            kind="supervisor",
            state=self._state,
            last_error=self._last_error,
            started_at=self._started_at,
            started_at_wall=self._started_at_wall,
            uptime=None if now is None or self._started_at is None else now - self._started_at,
            children=tuple(cell.snapshot() for cell in cells),
        )

    # -- internals used by Registry -----------------------------------------------------------

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None or self._state is not ChildState.RUNNING:
            raise ActorUnavailable(self.id, self._state.value, "supervisor not running")
        return self._nursery

    def _start_cell_nowait(self, spec: ChildSpec, predecessor: Cell | None) -> Cell:
        nursery = self._require_running()
        cell = self._add(spec, dynamic=True)
        prepared = self._prepare(cell)
        cell.begin_runner()
        nursery.start_soon(self._run_child, cell, False, prepared, predecessor)
        return cell

    def _detach(self, cell: Cell) -> None:
        """Forget ``cell``'s id (a successor may take it) but keep stopping it on shutdown."""
        if self._cells.get(cell.spec.id) is cell:
            del self._cells[cell.spec.id]
        if not cell.finished:
            self._detached.add(cell)

    # -- lifecycle ----------------------------------------------------------------------------

    def _add(self, spec: ChildSpec, *, dynamic: bool) -> Cell:
        if spec.id in self._cells:
            raise ValueError(f"supervisor {self.id} already has a child {spec.id!r}")
        if spec.on_exhausted is not None:
            on_exhausted = spec.on_exhausted
        else:
            on_exhausted = OnExhausted.QUARANTINE if dynamic else OnExhausted.ESCALATE
        cell = Cell(spec, f"{self.id}/{spec.id}", dynamic=dynamic, on_exhausted=on_exhausted)
        self._cells[spec.id] = cell
        return cell

    def _remove(self, cell: Cell) -> None:
        if self._cells.get(cell.spec.id) is cell:
            del self._cells[cell.spec.id]
        self._detached.discard(cell)
        if self.on_removed is not None:
            self.on_removed(cell)

    def _prepare(self, cell: Cell) -> _Prepared:
        """Build the next instance and open its mailbox, synchronously (so a ref can queue
        messages before the incarnation's task even runs)."""
        cell.started_at = None
        if cell.halt is not Halt.STOP:
            cell.halt = Halt.NONE
        try:
            instance = cell.spec.factory()
        except Exception as exc:
            self._record(cell, exc)
            cell.state = ChildState.RESTARTING
            return exc
        cell.instance = instance
        cell.incarnation += 1
        receive = None
        if isinstance(instance, Actor):
            cell.is_actor = True
            if cell.mailbox is None:
                cell.mailbox = Mailbox(cell.spec.mailbox_capacity)
            receive = cell.mailbox.open()
            instance._rt_cell = cell
        else:
            cell.is_actor = False
        if cell.halt is Halt.NONE:
            cell.state = ChildState.STARTING
        return instance, receive

    async def _start_static(self) -> bool:
        assert self._nursery is not None
        for cell in list(self._cells.values()):
            if cell.dynamic:
                continue
            cell.begin_runner()
            error = await self._nursery.start(self._run_child, cell, True, None, None)
            if error is not None:
                self._failure = error
                self._last_error = ErrorInfo.from_exception(error)
                log.error("supervisor %s: child %s failed to start", self.id, cell.path)
                return False
        return True

    async def _serve(self) -> None:
        with self._serve_scope:
            async for command in self._commands:
                if command[0] == "escalate":
                    _, cell, error = command
                    self._failure = RestartIntensityExceeded(
                        cell.path, self.policy.max_restarts, self.policy.period, error
                    )
                    self._last_error = ErrorInfo.from_exception(self._failure)
                    log.error("supervisor %s escalates: %s", self.id, self._failure)
                    return
                _, cell, incarnation, delay = command
                await self._restart_rest(cell, incarnation, delay)

    async def _stop_all(self) -> None:
        cells = list(self._cells.values())
        dynamic = [c for c in cells if c.dynamic] + list(self._detached)
        if dynamic:
            async with trio.open_nursery() as nursery:
                for cell in dynamic:
                    nursery.start_soon(self._stop_cell, cell, Halt.STOP)
        for cell in reversed([c for c in cells if not c.dynamic]):
            await self._stop_cell(cell, Halt.STOP)

    async def _stop_cell(self, cell: Cell, halt: Halt) -> None:
        """Stop one child within its budget (graceful, then cancel, then give up waiting)."""
        if halt > cell.halt:
            cell.halt = halt
        if cell.finished:
            if halt is Halt.STOP and cell.state is not ChildState.FAILED:
                cell.state = ChildState.STOPPED
            return
        graceful = cell.is_actor and cell.state in (
            ChildState.RUNNING,
            ChildState.STARTING,
            ChildState.STOPPING,
        )
        cell.state = ChildState.STOPPING
        if graceful and cell.mailbox is not None:
            cell.mailbox.wake()
            with trio.move_on_after(cell.spec.shutdown):
                await cell.wait_finished()
            if not cell.finished:
                cell.scope.cancel()
                with trio.move_on_after(CANCEL_GRACE):
                    await cell.wait_finished()
        else:
            cell.scope.cancel()
            with trio.move_on_after(cell.spec.shutdown):
                await cell.wait_finished()
        if not cell.finished:
            cell.stop_timed_out = True
            log.error(
                "child %s ignored cancellation past its %g s shutdown budget; not waiting",
                cell.path,
                cell.spec.shutdown,
            )

    async def _restart_rest(self, cell: Cell, incarnation: int, delay: float) -> None:
        """rest_for_one: stop the children after ``cell`` in reverse, restart all in order."""
        if cell.incarnation != incarnation or cell.halt is Halt.STOP:
            return
        cells = list(self._cells.values())
        if cell not in cells:
            return
        later = cells[cells.index(cell) + 1 :]
        for sibling in reversed(later):
            await self._stop_cell(sibling, Halt.RESTART)
        if delay > 0:
            await trio.sleep(delay)
        assert self._nursery is not None
        for child in [cell, *later]:
            if child.halt is Halt.STOP:
                continue
            if child is not cell and child.spec.restart is Restart.TEMPORARY:
                child.halt = Halt.STOP
                child.state = ChildState.STOPPED
                if child.dynamic:
                    self._remove(child)
                continue
            child.restarts += 1
            child.halt = Halt.NONE
            child.begin_runner()
            await self._nursery.start(self._run_child, child, False, None, None)

    # -- one child's task ---------------------------------------------------------------------

    async def _run_child(
        self,
        cell: Cell,
        strict: bool,
        prepared: _Prepared | None,
        predecessor: Cell | None,
        *,
        task_status: trio.TaskStatus[BaseException | None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The child's task: incarnations, restart decisions and backoff, until it ends.

        Every wait runs inside a shielded scope published as ``cell.scope`` (the incarnation's
        own nursery scope for an actor, so an idle actor costs one scope): a parent's
        cancellation never reaches the child directly, the supervisor stops it by cancelling
        ``cell.scope``. One flat frame on purpose: each coroutine frame costs memory per idle
        actor.
        """
        generation = cell.generation
        status = _Status(cell, task_status)
        policy = self.policy
        try:
            if predecessor is not None:
                with self._guard(cell):
                    await predecessor.wait_finished()
            while not _halted(cell):
                if prepared is None:
                    prepared = self._prepare(cell)
                # -- one incarnation
                error: BaseException | None
                if isinstance(prepared, BaseException):
                    error = prepared
                else:
                    instance, receive = prepared
                    if receive is not None:
                        assert isinstance(instance, Actor)
                        error = await run_actor(cell, instance, receive, status)
                    else:
                        assert not isinstance(instance, Actor)
                        error = None
                        with self._guard(cell):
                            try:
                                await instance.run(task_status=status)
                            except Exception as exc:
                                error = unwrap(exc)
                prepared = None
                if error is not None:
                    self._record(cell, error)
                    if cell.state is not ChildState.STOPPING:
                        cell.state = ChildState.RESTARTING
                    cell.notify()
                if not status.reported:
                    if strict and error is None:
                        error = RuntimeError(f"child {cell.path} ended before it was ready")
                    status.report(error)
                    if strict:
                        cell.state = ChildState.FAILED if error is not None else ChildState.STOPPED
                        return
                if _halted(cell):
                    return
                # -- the restart decision
                action, delay = self._decide(cell, error)
                now = trio.current_time()
                if action is _Action.STOP:
                    cell.state = ChildState.STOPPED
                    return
                if action is _Action.ESCALATE:
                    cell.state = ChildState.FAILED
                    cause = error if error is not None else RuntimeError("exited too often")
                    self._commands_send.send_nowait(("escalate", cell, cause))
                    return
                if action is _Action.REST:
                    cell.state = ChildState.RESTARTING
                    cell.next_restart_at = now + delay
                    self._commands_send.send_nowait(("rest", cell, cell.incarnation, delay))
                    return
                if action is _Action.QUARANTINE:
                    cell.state = ChildState.FAILED
                    cell.next_restart_at = now + policy.quarantine_retry
                    log.error(
                        "child %s quarantined for %g s after %d restarts in %g s",
                        cell.path,
                        policy.quarantine_retry,
                        policy.max_restarts,
                        policy.period,
                    )
                    with self._guard(cell):
                        await trio.sleep(policy.quarantine_retry)
                    cell.quarantined = True
                    cell.history = []
                    cell.consecutive = 0
                elif delay > 0:
                    cell.state = ChildState.RESTARTING
                    cell.next_restart_at = now + delay
                    with self._guard(cell):
                        await trio.sleep(delay)
                # else: the first restart of a streak is immediate and synchronous: the new
                # mailbox opens in the same scheduling step as the crash, so no sender sees a gap.
                if not _halted(cell):
                    cell.restarts += 1
        except Exception as exc:  # a crash that raced with cancellation; the scope ate the rest
            self._record(cell, unwrap(exc))
        finally:
            if cell.generation == generation:
                self._runner_ended(cell)

    @staticmethod
    def _guard(cell: Cell) -> trio.CancelScope:
        """A shielded scope for the child's next wait, published as ``cell.scope``; born
        cancelled if a stop is already pending (no stop request can fall between two scopes)."""
        scope = trio.CancelScope(shield=True)
        cell.scope = scope
        if _halted(cell):
            scope.cancel()
        return scope

    def _runner_ended(self, cell: Cell) -> None:
        if cell.mailbox is not None:
            settle(cell, None)
        if cell.halt is Halt.STOP:
            cell.state = ChildState.STOPPED
        elif cell.halt is Halt.RESTART:
            cell.state = ChildState.RESTARTING
        if cell.state is not ChildState.RESTARTING:
            cell.next_restart_at = None
        cell.end_runner()
        if cell.dynamic and cell.state is ChildState.STOPPED:
            self._remove(cell)

    def _decide(self, cell: Cell, error: BaseException | None) -> tuple[_Action, float]:
        """The restart decision for an incarnation that ended with ``error`` (None: normal)."""
        restart = cell.spec.restart
        if restart is Restart.TEMPORARY or (error is None and restart is Restart.TRANSIENT):
            return _Action.STOP, 0.0
        policy = self.policy
        now = trio.current_time()
        if cell.started_at is not None and now - cell.started_at >= policy.stable_after:
            cell.consecutive = 0
            cell.quarantined = False
        exhausted = _Action.QUARANTINE
        if cell.on_exhausted is OnExhausted.ESCALATE:
            exhausted = _Action.ESCALATE
        if cell.quarantined:
            return exhausted, 0.0
        horizon = now - policy.period
        cell.history = [t for t in cell.history if t > horizon]
        cell.history.append(now)
        if len(cell.history) > policy.max_restarts:
            return exhausted, 0.0
        delay = policy.backoff(cell.consecutive, self._rng)
        cell.consecutive += 1
        if self.strategy is Strategy.REST_FOR_ONE:
            return _Action.REST, delay
        return _Action.RESTART, delay

    def _record(self, cell: Cell, error: BaseException) -> None:
        cell.last_error = ErrorInfo.from_exception(error)
        log.warning("child %s crashed: %s", cell.path, describe(error), exc_info=error)
