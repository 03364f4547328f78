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
    ``id`` (unique, no ``/``), ``factory`` (sync, called per incarnation: a new actor, or a
    long-lived service whose ``run`` is entered again), ``restart`` (``permanent``),
    ``shutdown`` (5 s; ``math.inf`` for supervisors), ``on_exhausted`` (``None`` = by
    placement), ``mailbox_capacity`` (64, actors only).

Start order
    ``run()`` starts static children one at a time, each ready (``Actor.on_start`` returned /
    ``task_status.started()`` called) before the next, then reports itself started. If a static
    child fails to start, the ones already started are stopped and ``run()`` raises that error
    (the child is not retried: a boot error is a configuration error). ``start_child`` waits for
    readiness too; ``start_child_nowait`` does not (messages queue meanwhile).
    ``start_dynamic_nowait`` / ``stop_dynamic`` / ``detach`` are the same by cell, for the
    registry: a detached cell frees its id for a successor (which may wait for it to end first)
    and is still stopped at shutdown.

Stop order and shutdown timeouts
    On cancellation of ``run()`` (or :meth:`Supervisor.aclose`, or escalation) dynamic children
    are stopped concurrently, then static children one by one in reverse start order. Stopping a
    child: an actor is asked to stop after its current message and runs ``on_stop`` (new messages
    are refused, queued asks fail with ``ActorUnavailable``); a service is cancelled. After
    ``shutdown`` seconds the actor is cancelled and given :data:`CANCEL_GRACE` more. A child
    still alive then (it shields itself from cancellation) is logged, marked ``stop_timed_out``
    in the snapshot and not waited for by the stop sequence; trio's structured concurrency still
    joins its task before ``run()`` returns.

Stop deadline (the bound of the whole stop)
    ``stop(deadline=...)`` or :meth:`Supervisor.stop_by` bounds the whole stop, not one child:
    every child's budget is cut to what is left until the deadline (``math.inf`` budgets too),
    so children still running at the deadline are cancelled then (an actor skips ``on_stop``
    if its turn comes after the deadline). A service child that offers ``stop_by`` (a nested
    supervisor, a registry) is told the deadline of its own budget before it is cancelled, so
    the bound reaches the leaves; a service cancelled early by the deadline gets
    :data:`CANCEL_GRACE` more, as a cancelled actor does. Without a deadline (the default) the
    budgets apply as they are.

Internals
    An incarnation is a task (``_run_incarnation``) that runs the child in its one cancel scope
    (an actor's own nursery scope, or the scope around a service's ``run``), shielded so a
    parent's cancellation never reaches a child: the supervisor stops it. Boot, ``start_child``,
    rest_for_one restarts and restarts after a backoff or quarantine start it as STYLE 4 and
    hypercorn's restartable task do, ``scope = await nursery.start(...)``: it hands the scope
    back once ready (``_NotReady`` if it ended first), and a restart cancels a live scope
    (``_stop_cell``) and starts a new incarnation. Registry activations and
    ``start_child_nowait`` use ``start_soon`` (they must return at once), so an incarnation also
    publishes its scope to its cell as it opens it; that is also how a stop reaches a child
    still starting. After a crash the ended incarnation's task makes the restart decision and
    waits out a backoff in a guard the cell publishes; escalation and rest_for_one go to the
    supervisor's own task as small frozen commands handled by type.

    Exception, measured: the immediate first restart of a crash streak runs the next
    incarnation in the same task, in the scheduling step of the crash (no sender sees a gap).
    Starting a new task there with ``nursery.start`` doubled the restart latency (median
    0.024 to 0.050 ms, p99 ratio to a bare task respawn 0.38-0.65 to 0.13-2.05 over three
    interleaved runs; BENCHMARKS.md), so that one path keeps the cheaper design.

Errors out of ``run()``
    ``RestartIntensityExceeded`` (escalation) or a static child's start error; never a child's
    ordinary crash. Use :func:`run_root` to run the root supervisor inside someone else's
    nursery (Quart's ``app.nursery``) so even those are logged and contained.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import trio

from ._actor import Actor, run_actor
from ._cell import Cell, Halt
from ._errors import (
    ActorCrashed,
    ActorUnavailable,
    RestartIntensityExceeded,
    describe,
    unwrap,
)
from ._mailbox import Envelope
from ._ref import ActorRef
from ._snapshot import ChildState, ErrorInfo, NodeSnapshot
from ._spec import ChildSpec, OnExhausted, Restart, RestartPolicy, Service, Strategy

__all__ = ["CANCEL_GRACE", "Supervisor"]

log = logging.getLogger("runtime.supervisor")

#: Seconds a child gets to end after being cancelled at the end of its shutdown budget.
CANCEL_GRACE = 1.0


@runtime_checkable
class _BoundedStop(Protocol):
    """A service whose next stop can be bounded (a nested supervisor, a registry)."""

    def stop_by(self, deadline: float) -> None: ...


class _Action(enum.Enum):
    STOP = enum.auto()
    RESTART = enum.auto()
    REST = enum.auto()
    QUARANTINE = enum.auto()
    ESCALATE = enum.auto()


@dataclass(frozen=True, slots=True)
class _Escalate:
    """A static child exceeded its intensity: the supervisor stops everything and fails."""

    cell: Cell
    cause: BaseException


@dataclass(frozen=True, slots=True)
class _RestartRest:
    """rest_for_one: restart ``cell`` (ended as ``incarnation``) and the children after it."""

    cell: Cell
    incarnation: int
    delay: float


_Command = _Escalate | _RestartRest


class _Mode(enum.Enum):
    """How an incarnation was started: what an end before it was ready means."""

    NOWAIT = enum.auto()  # ``start_soon``, nobody waits (registry activation, a nowait child)
    AWAITED = enum.auto()  # ``nursery.start``: the starter gets the scope, or ``_NotReady``
    BOOT = enum.auto()  # a static child at boot: ``_NotReady`` and no retry (a config error)


class _NotReady(Exception):
    """Raised out of ``nursery.start`` by an incarnation that ended before it was ready;
    ``error`` is its crash (``None``: it was stopped or ended normally first)."""

    def __init__(self, error: BaseException | None) -> None:
        super().__init__("ended before it was ready" if error is None else describe(error))
        self.error = error


class _Ready:
    """The ``task_status`` an incarnation's actor or service sees. ``started()`` marks the cell
    running and hands the incarnation's cancel scope back to the starter, then drops trio's
    status object (it holds the starter's nursery, which an idle actor must not keep)."""

    __slots__ = ("cell", "outer", "ready")

    def __init__(self, cell: Cell, outer: trio.TaskStatus[trio.CancelScope]) -> None:
        self.cell = cell
        self.outer: trio.TaskStatus[trio.CancelScope] | None = outer
        self.ready = False

    def started(self, value: object = None) -> None:
        self.ready = True
        self.cell.mark_running()
        outer, self.outer = self.outer, None
        if outer is not None:
            outer.started(self._scope(value))

    @staticmethod
    def for_(cell: Cell, prepared: _Prepared, outer: trio.TaskStatus[trio.CancelScope]) -> _Ready:
        """The status for running ``prepared``: a service's comes with the scope it runs in."""
        if isinstance(prepared, tuple) and prepared[1] is None:
            return _ServiceReady(cell, outer, trio.CancelScope(shield=True))
        return _Ready(cell, outer)

    def _scope(self, value: object) -> trio.CancelScope:
        assert isinstance(value, trio.CancelScope), "run_actor hands back its nursery scope"
        return value


class _ServiceReady(_Ready):
    """:class:`_Ready` for a service, which calls ``started()`` with its own value (or none):
    the scope handed back is the one the supervisor runs the service in."""

    __slots__ = ("scope",)

    def __init__(
        self, cell: Cell, outer: trio.TaskStatus[trio.CancelScope], scope: trio.CancelScope
    ) -> None:
        super().__init__(cell, outer)
        self.scope = scope

    def _scope(self, value: object) -> trio.CancelScope:
        return self.scope


@dataclass(frozen=True, slots=True)
class _Later:
    """A restart that waits ``delay`` seconds first (a backoff, or a quarantine)."""

    delay: float
    quarantine: bool


_Prepared = tuple[Actor | Service, trio.MemoryReceiveChannel[Envelope] | None] | BaseException


class Supervisor:
    """Supervises an ordered list of children; see the module docstring for the contract.

    ``run()`` may be called again after it returned — typically by a parent restarting it
    (``ChildSpec("infra", lambda: infra_supervisor)``): the static children keep their cells,
    so refs handed out before stay valid and reach the new incarnations; counters carry on.
    It cannot run twice at the same time.

    ``on_removed`` is called with a dynamic child's cell once it has ended for good (the
    registry uses it to free the key).
    """

    def __init__(
        self,
        id: str,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        policy: RestartPolicy | None = None,
        rng: random.Random | None = None,
        on_removed: Callable[[Cell], object] | None = None,
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
        self._commands_send, self._commands = trio.open_memory_channel[_Command](math.inf)
        self._serve_scope = trio.CancelScope()
        self._failure: BaseException | None = None
        self._last_error: ErrorInfo | None = None
        self._started_at: float | None = None
        self._started_at_wall: float | None = None
        self._closed = trio.Event()
        self._on_removed = on_removed
        self._stop_deadline = math.inf

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
        self._commands_send, self._commands = trio.open_memory_channel[_Command](math.inf)
        self._closed = trio.Event()
        self._stop_deadline = math.inf
        for cell in self._cells.values():  # a re-run (restart by the parent) starts afresh
            cell.reset_for_run()
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
        child was stopped while starting, ``ValueError`` if the id is taken. Cancelling the
        caller does not cut the child's start short: it waits until the child is ready or ended.
        """
        self._require_running()
        cell = self._add(spec, dynamic=True)
        prepared = self._prepare(cell)
        cell.begin_runner()
        try:
            await self._start(cell, prepared, _Mode.AWAITED)
        except _NotReady as failed:
            error = failed.error
        else:
            return self.ref(spec.id)
        if error is None:
            raise ActorUnavailable(cell.path, cell.state.value, "stopped while starting")
        raise ActorCrashed(cell.path, error)

    def start_child_nowait(self, spec: ChildSpec) -> ActorRef:
        """Add a dynamic child without waiting: its mailbox accepts messages at once and they
        are handled once ``on_start`` returns. Same errors as ``start_child`` except crashes."""
        return self.start_dynamic_nowait(spec).ref()

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
        return self._cells[child_id].ref()

    def child_ids(self) -> list[str]:
        """Children in start order."""
        return list(self._cells)

    def stop(self, *, deadline: float | None = None) -> None:
        """Ask ``run()`` to stop its children and return (no-op when not running); with a
        ``deadline`` (trio time) the whole stop ends by then (see :meth:`stop_by`)."""
        if deadline is not None:
            self.stop_by(deadline)
        self._serve_scope.cancel()

    def stop_by(self, deadline: float) -> None:
        """Bound this run's stop, whoever starts it (a cancellation, :meth:`stop`, a parent):
        every child's budget ends by ``deadline`` (trio time), nested supervisors and
        registries included, and children still running then are cancelled (see the module
        docstring). Stops nothing by itself; an earlier deadline wins; a new run forgets it."""
        self._stop_deadline = min(self._stop_deadline, deadline)

    async def aclose(self, *, deadline: float | None = None) -> None:
        """:meth:`stop` and wait until ``run()`` has finished (idempotent). Do not call it from
        a task this supervisor owns: it would wait for itself."""
        self.stop(deadline=deadline)
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

    # -- dynamic children by cell (the registry's API) ----------------------------------------

    def start_dynamic_nowait(
        self,
        spec: ChildSpec,
        *,
        after: Cell | None = None,
        tag: object = None,
        ref: ActorRef | None = None,
    ) -> Cell:
        """Add a dynamic child without waiting and return its cell (messages queue at once).

        ``after``: a detached predecessor whose task must end before this one starts (the
        registry's successor of a passivating actor). ``tag`` and ``ref`` are kept on the cell
        for its owner (the registry's key and key ref). ``ActorUnavailable`` if not running.
        """
        nursery = self._require_running()
        cell = self._add(spec, dynamic=True, tag=tag, ref=ref)
        prepared = self._prepare(cell)
        cell.begin_runner()
        nursery.start_soon(self._run_incarnation, cell, prepared, after, _Mode.NOWAIT)
        return cell

    async def stop_dynamic(self, cell: Cell) -> None:
        """Stop ``cell`` for good within its shutdown budget (see the contract)."""
        await self._stop_cell(cell, Halt.STOP)

    def stop_dynamic_soon(self, cell: Cell) -> None:
        """:meth:`stop_dynamic` in the background (no-op when the supervisor is not running:
        its shutdown stops every child anyway)."""
        if self._nursery is not None:
            self._nursery.start_soon(self._stop_cell, cell, Halt.STOP)

    def detach(self, cell: Cell) -> None:
        """Forget ``cell``'s id (a successor may take it) but keep stopping it on shutdown."""
        if self._cells.get(cell.spec.id) is cell:
            del self._cells[cell.spec.id]
        if not cell.finished:
            self._detached.add(cell)

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None or self._state is not ChildState.RUNNING:
            raise ActorUnavailable(self.id, self._state.value, "supervisor not running")
        return self._nursery

    # -- lifecycle ----------------------------------------------------------------------------

    def _add(
        self,
        spec: ChildSpec,
        *,
        dynamic: bool,
        tag: object = None,
        ref: ActorRef | None = None,
    ) -> Cell:
        if spec.id in self._cells:
            raise ValueError(f"supervisor {self.id} already has a child {spec.id!r}")
        if spec.on_exhausted is not None:
            on_exhausted = spec.on_exhausted
        else:
            on_exhausted = OnExhausted.QUARANTINE if dynamic else OnExhausted.ESCALATE
        cell = Cell(
            spec,
            f"{self.id}/{spec.id}",
            dynamic=dynamic,
            on_exhausted=on_exhausted,
            tag=tag,
            ref=ref,
        )
        self._cells[spec.id] = cell
        return cell

    def _remove(self, cell: Cell) -> None:
        if self._cells.get(cell.spec.id) is cell:
            del self._cells[cell.spec.id]
        self._detached.discard(cell)
        if self._on_removed is not None:
            self._on_removed(cell)

    def _prepare(self, cell: Cell) -> _Prepared:
        """Build the next instance and open its mailbox, synchronously (so a ref can queue
        messages before the incarnation's task even runs)."""
        cell.before_build()
        try:
            instance = cell.spec.factory()
        except Exception as exc:
            self._log_crash(cell, exc)
            cell.build_failed(exc)
            return exc
        if isinstance(instance, Actor):
            instance._rt_cell = cell
            return instance, cell.begin_incarnation(instance, is_actor=True)
        return instance, cell.begin_incarnation(instance, is_actor=False)

    async def _start_static(self) -> bool:
        assert self._nursery is not None
        for cell in list(self._cells.values()):
            if cell.dynamic:
                continue
            cell.begin_runner()
            try:
                await self._start(cell, self._prepare(cell), _Mode.BOOT)
            except _NotReady as failed:
                error = failed.error or RuntimeError(f"child {cell.path} failed to start")
                self._failure = error
                self._last_error = ErrorInfo.from_exception(error)
                log.error("supervisor %s: child %s failed to start", self.id, cell.path)
                return False
            # ``_start`` is shielded: a cancellation of ``run()`` ends the boot here
            await trio.lowlevel.checkpoint_if_cancelled()
        return True

    async def _serve(self) -> None:
        """Handle the children's commands until cancelled or an escalation."""
        with self._serve_scope:
            async for command in self._commands:
                if not await self._handlers[type(command)](self, command):
                    return

    async def _handle_escalate(self, command: _Escalate) -> bool:
        self._failure = RestartIntensityExceeded(
            command.cell.path, self.policy.max_restarts, self.policy.period, command.cause
        )
        self._last_error = ErrorInfo.from_exception(self._failure)
        log.error("supervisor %s escalates: %s", self.id, self._failure)
        return False

    async def _handle_restart_rest(self, command: _RestartRest) -> bool:
        await self._restart_rest(command.cell, command.incarnation, command.delay)
        return True

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
        """Stop one child within its budget (graceful, then cancel, then give up waiting); the
        budget is cut to what is left of the stop deadline, if one is set."""
        cell.request_halt(halt)
        if cell.finished:
            if halt is Halt.STOP:
                cell.stopped_while_idle()
            return
        budget = min(cell.spec.shutdown, max(0.0, self._stop_deadline - trio.current_time()))
        if cell.begin_stopping():
            with trio.move_on_after(budget):
                await cell.wait_finished()
            if not cell.finished:
                cell.cancel()
                with trio.move_on_after(CANCEL_GRACE):
                    await cell.wait_finished()
        else:
            instance = cell.instance
            if isinstance(instance, _BoundedStop) and not isinstance(instance, Actor):
                instance.stop_by(trio.current_time() + budget)
            cell.cancel()
            with trio.move_on_after(budget):
                await cell.wait_finished()
            if not cell.finished and budget < cell.spec.shutdown:
                with trio.move_on_after(CANCEL_GRACE):  # cut short by the deadline
                    await cell.wait_finished()
        if not cell.finished:
            cell.mark_stop_timed_out()
            log.error(
                "child %s ignored cancellation past its %g s shutdown budget; not waiting",
                cell.path,
                budget,
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
                child.retire()
                if child.dynamic:
                    self._remove(child)
                continue
            child.restart_by_sibling()
            child.begin_runner()
            with contextlib.suppress(_NotReady):  # crashed on start: its aftermath decides
                await self._start(child, self._prepare(child), _Mode.AWAITED)

    _handlers: ClassVar[dict[type[_Command], Callable[[Supervisor, Any], Awaitable[bool]]]] = {
        _Escalate: _handle_escalate,
        _RestartRest: _handle_restart_rest,
    }

    # -- one incarnation's task ---------------------------------------------------------------

    async def _start(self, cell: Cell, prepared: _Prepared, mode: _Mode) -> trio.CancelScope:
        """Start ``cell``'s next incarnation and wait until it serves; return its cancel scope
        (STYLE 4: a restartable child is a cancel scope handed back on start).

        ``_NotReady`` if it ended first. Shielded: the new task runs under this call until it
        is ready, and a cancelled starter would leave it there instead of in the nursery; the
        starter waits for the child's start (a stop reaches the child through its cell).
        """
        assert self._nursery is not None
        with trio.CancelScope(shield=True):
            scope: trio.CancelScope = await self._nursery.start(
                self._run_incarnation, cell, prepared, None, mode
            )
        return scope

    async def _run_incarnation(
        self,
        cell: Cell,
        prepared: _Prepared,
        predecessor: Cell | None,
        mode: _Mode,
        *,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The task of one incarnation: run it in its one cancel scope, then its aftermath.

        The scope is an actor's own nursery scope (so an idle actor pays for no other) or a
        scope around a service's ``run``; it is shielded (a parent's cancellation never
        reaches the child directly: the supervisor stops it) and handed back through
        ``task_status.started(scope)`` once the child is ready. The incarnation also publishes
        it to its cell as it opens it (``Cell.enter_scope``), before its first wait: a stop may
        come while it is still starting, and a nowait start has no caller to hand it back to.

        Ending before it was ready under ``nursery.start`` raises :class:`_NotReady` to the
        starter (the aftermath then goes on in a task of its own); otherwise this task carries
        on with the aftermath. A restart after a wait starts the next incarnation with
        ``nursery.start`` and ends once it serves; the immediate first restart of a crash streak
        runs the next incarnation in this very task, in the scheduling step of the crash (a new
        task there doubled the restart latency, see BENCHMARKS.md).
        """
        generation = cell.generation
        ready = _Ready.for_(cell, prepared, task_status)
        del task_status  # ``ready`` drops it once started: an idle actor keeps no status
        if predecessor is not None:
            with cell.guard():
                await predecessor.wait_finished()
            predecessor = None  # do not keep the old incarnation's cell alive
        while True:
            error: BaseException | None = None
            try:
                if cell.halted:
                    pass  # stopped before it could start
                elif isinstance(prepared, BaseException):
                    error = prepared  # the factory failed
                else:
                    instance, receive = prepared
                    del prepared  # one tuple less per idle actor
                    if receive is not None:
                        assert isinstance(instance, Actor)
                        error = await run_actor(cell, instance, receive, ready)
                    else:
                        assert isinstance(ready, _ServiceReady)
                        assert not isinstance(instance, Actor)
                        cell.enter_scope(ready.scope)
                        with ready.scope:
                            try:
                                await instance.run(task_status=ready)
                            except Exception as exc:
                                error = unwrap(exc)
            except Exception as exc:  # a crash that raced with cancellation: the scope ate it
                error = unwrap(exc)
                self._log_crash(cell, error)
                cell.record_error(error)
                self._end_runner(cell, generation)
                if not ready.ready and mode is not _Mode.NOWAIT:
                    raise _NotReady(error) from None
                return
            if error is not None:
                self._log_crash(cell, error)
                cell.crashed(error)
            if not ready.ready and mode is not _Mode.NOWAIT:
                if mode is _Mode.BOOT:
                    if error is None:
                        error = RuntimeError(f"child {cell.path} ended before it was ready")
                    cell.mark_failed()
                    self._end_runner(cell, generation)
                else:
                    assert self._nursery is not None
                    self._nursery.start_soon(self._aftermath_apart, cell, error, generation)
                raise _NotReady(error)
            following = self._after(cell, error, generation)
            if following is None:
                return
            if isinstance(following, _Later):
                await self._restart_later(cell, following, generation)
                return
            prepared = following
            if type(ready) is _Ready and not (isinstance(prepared, tuple) and prepared[1] is None):
                ready.ready = False  # an actor's status, reused (its outer is spent or ignored)
            else:
                ready = _Ready.for_(cell, prepared, trio.TASK_STATUS_IGNORED)
            mode = _Mode.NOWAIT

    def _after(
        self, cell: Cell, error: BaseException | None, generation: int
    ) -> _Prepared | _Later | None:
        """After an incarnation ended with ``error`` (None: normally): the restart decision.

        Returns the next incarnation when it is the immediate first restart of a streak, for the
        caller to run in the same task: the new instance and its mailbox are made synchronously,
        in the scheduling step of the crash, so no sender sees a gap. Returns a :class:`_Later`
        when the restart waits (:meth:`_restart_later`), None when the child's run ended.
        Synchronous and allocation-light on purpose: it is on the restart latency's path.
        """
        if cell.halted:
            self._end_runner(cell, generation)
            return None
        action, delay = self._decide(cell, error)
        now = trio.current_time()
        if action is _Action.RESTART and delay <= 0:
            cell.count_restart()
            return self._prepare(cell)
        if action is _Action.STOP:
            cell.mark_stopped()
        elif action is _Action.ESCALATE:
            cell.mark_failed()
            cause = error if error is not None else RuntimeError("exited too often")
            self._commands_send.send_nowait(_Escalate(cell, cause))
        elif action is _Action.REST:
            cell.wait_restart(now + delay)
            self._commands_send.send_nowait(_RestartRest(cell, cell.incarnation, delay))
        elif action is _Action.QUARANTINE:
            policy = self.policy
            cell.quarantine(now + policy.quarantine_retry)
            log.error(
                "child %s quarantined for %g s after %d restarts in %g s",
                cell.path,
                policy.quarantine_retry,
                policy.max_restarts,
                policy.period,
            )
            return _Later(policy.quarantine_retry, quarantine=True)
        else:
            cell.wait_restart(now + delay)
            return _Later(delay, quarantine=False)
        self._end_runner(cell, generation)
        return None

    async def _restart_later(self, cell: Cell, later: _Later, generation: int) -> None:
        """Wait out a backoff or quarantine in a guard the cell publishes (a stop cancels it),
        then start the next incarnation with ``nursery.start``; it takes the child over."""
        handed_over = False
        try:
            with cell.guard():
                await trio.sleep(later.delay)
            if later.quarantine:
                cell.end_quarantine()
            if cell.halted:
                return
            cell.count_restart()
            prepared = self._prepare(cell)
            handed_over = True
            with contextlib.suppress(_NotReady):  # its own aftermath took over
                await self._start(cell, prepared, _Mode.AWAITED)
        finally:
            if not handed_over:
                self._end_runner(cell, generation)

    async def _aftermath_apart(
        self, cell: Cell, error: BaseException | None, generation: int
    ) -> None:
        """The aftermath in a task of its own (the incarnation raised to its starter); an
        immediate restart gets a new task too (its mailbox is open already)."""
        following = self._after(cell, error, generation)
        if isinstance(following, _Later):
            await self._restart_later(cell, following, generation)
        elif following is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._run_incarnation, cell, following, None, _Mode.NOWAIT)

    def _end_runner(self, cell: Cell, generation: int) -> None:
        """The child's run ended (no incarnation follows): settle the cell; a dynamic child
        stopped for good is removed. A stale run never ends its successor's."""
        if cell.generation == generation and cell.runner_ended() and cell.dynamic:
            self._remove(cell)

    def _decide(self, cell: Cell, error: BaseException | None) -> tuple[_Action, float]:
        """The restart decision for an incarnation that ended with ``error`` (None: normal)."""
        restart = cell.spec.restart
        if restart is Restart.TEMPORARY or (error is None and restart is Restart.TRANSIENT):
            return _Action.STOP, 0.0
        attempt = cell.count_end(trio.current_time(), self.policy)
        if attempt is None:
            if cell.on_exhausted is OnExhausted.ESCALATE:
                return _Action.ESCALATE, 0.0
            return _Action.QUARANTINE, 0.0
        delay = self.policy.backoff(attempt, self._rng)
        if self.strategy is Strategy.REST_FOR_ONE:
            return _Action.REST, delay
        return _Action.RESTART, delay

    @staticmethod
    def _log_crash(cell: Cell, error: BaseException) -> None:
        log.warning("child %s crashed: %s", cell.path, describe(error), exc_info=error)
