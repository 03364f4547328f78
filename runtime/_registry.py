"""``Registry``: virtual actors by key (``company_id → actor``), Orleans-style.

- **Activation on first message.** ``registry.ref(key)`` costs nothing; the first ``tell`` or
  ``ask`` through it (or ``await registry.activate(key)``) builds the actor from
  ``factory(key)`` as a dynamic child of the registry's own ``one_for_one`` supervisor. The
  activation is synchronous inside the send (mailbox opened, message queued, ``on_start``
  scheduled), so concurrent first messages always activate exactly one actor and none is lost.
- **Supervision.** A crashing actor is restarted with backoff; one that exhausts its restart
  intensity is quarantined (state ``failed``; its refs raise ``ActorUnavailable`` with the
  reason) and retried slowly. It never takes the registry down.
- **Passivation.** An actor that handled nothing for ``idle_timeout`` seconds (and has an empty
  mailbox and is not busy) is stopped gracefully (``on_stop``) unless its ``keep_alive()``
  returns ``True``. One sweeper task checks every ``sweep_interval`` (default
  ``idle_timeout / 4``), so an idle actor costs no timer. A message that arrives while an actor
  is passivating activates a successor, whose ``on_start`` waits until the old ``on_stop`` has
  finished (no two incarnations of one key overlap in ``on_start``/``on_stop``).
- **Stop.** ``await registry.stop(key)`` deactivates now (the next message activates again).
  When the registry itself stops, every ref it gave out raises ``ActorUnavailable``.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import trio

from ._actor import Actor
from ._cell import Cell, Halt
from ._errors import ActorUnavailable
from ._mailbox import Reply
from ._ref import ActorRef
from ._snapshot import ChildState, NodeSnapshot
from ._spec import ChildSpec, OnExhausted, Restart, RestartPolicy
from ._supervisor import Supervisor

__all__ = ["Registry"]

log = logging.getLogger("runtime.registry")

K = TypeVar("K", bound=Hashable)


class _KeyTarget(Generic[K]):
    """What a registry ref points at: a key, resolved (and activated) on every send."""

    __slots__ = ("key", "registry")

    def __init__(self, registry: Registry[K], key: K) -> None:
        self.registry = registry
        self.key = key

    @property
    def path(self) -> str:
        return f"{self.registry.id}/{self.key}"

    def deliver(self, message: Any, reply: Reply | None) -> None:
        self.registry._deliver(self.key, message, reply)

    def offer(self, message: Any) -> bool:
        return self.registry._resolve(self.key).offer(message)

    async def wait_room(self) -> None:
        # The key's current cell; a passivated one wakes its senders when its mailbox closes,
        # and the retry then activates the successor.
        await self.registry._resolve(self.key).wait_room()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _KeyTarget)
            and other.registry is self.registry
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((id(self.registry), self.key))


class Registry(Generic[K]):
    """Virtual actors keyed by ``K``; run it as a child of a supervisor (it is a ``Service``).

    ``factory(key)`` builds the actor (sync, cheap). ``idle_timeout`` ``None`` disables
    passivation. ``policy``/``restart``/``shutdown``/``mailbox_capacity`` apply to every actor;
    exhausted actors are always quarantined. ``rng`` seeds backoff jitter.
    """

    def __init__(
        self,
        id: str,
        factory: Callable[[K], Actor],
        *,
        idle_timeout: float | None = 600.0,
        sweep_interval: float | None = None,
        policy: RestartPolicy | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float = 5.0,
        mailbox_capacity: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 (or None)")
        self.id = id
        self._factory = factory
        self._idle_timeout = idle_timeout
        self._sweep_interval = (
            sweep_interval
            if sweep_interval is not None
            else (idle_timeout / 4 if idle_timeout is not None else None)
        )
        self._restart = restart
        self._shutdown = shutdown
        self._capacity = mailbox_capacity
        self._policy = policy
        self._rng = rng
        self._supervisor = self._new_supervisor()
        self._cells: dict[K, Cell] = {}

    # -- public API ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; on cancellation stop every actor (concurrently, each within
        its shutdown budget). May run again after it returned (refs stay valid); not twice at
        once."""
        if self._supervisor.state not in (ChildState.STOPPED, ChildState.FAILED):
            raise RuntimeError(f"registry {self.id} is already running")
        self._supervisor = self._new_supervisor()
        self._cells.clear()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._supervisor.run)
            if self._idle_timeout is not None and self._sweep_interval is not None:
                nursery.start_soon(self._sweep, self._idle_timeout, self._sweep_interval)
            task_status.started()

    def ref(self, key: K) -> ActorRef:
        """A ref to the actor of ``key``; sending through it activates the actor if needed.

        Sends raise like any ``ActorRef`` (``MailboxFull``, ``ActorUnavailable`` while
        restarting/quarantined or when the registry is not running).
        """
        return ActorRef(_KeyTarget(self, key))

    async def activate(self, key: K) -> ActorRef:
        """Activate ``key`` now (if needed) and wait until its ``on_start`` has returned.

        Raises ``ActorUnavailable`` if it crashed on start (it is being restarted or is
        quarantined) or the registry is not running.
        """
        while True:
            cell = self._cells.get(key)
            if cell is None or cell.halt is Halt.STOP:
                cell = self._activate_nowait(key, cell)
            if cell.state is ChildState.RUNNING:
                return self.ref(key)
            if cell.state is not ChildState.STARTING:
                raise cell.unavailable()
            await cell.wait_changed()

    def lookup(self, key: K) -> ActorRef | None:
        """The ref of ``key`` if it is activated now (in any state but passivating), else None."""
        cell = self._cells.get(key)
        if cell is None or cell.halt is Halt.STOP:
            return None
        return self.ref(key)

    async def stop(self, key: K) -> bool:
        """Deactivate ``key`` now (graceful, within the shutdown budget, ignoring
        ``keep_alive``); ``False`` if it was not active. A later message activates it again."""
        cell = self._cells.get(key)
        if cell is None or cell.halt is Halt.STOP:
            return False
        self._begin_stop(cell)
        await self._supervisor.stop_dynamic(cell)
        return True

    async def wait_stopped(self, key: K) -> None:
        """Wait until ``key``'s actor, if it is activated or still stopping, has finished
        (however its stop began: :meth:`stop` returns at once while another stop runs)."""
        cell = self._cells.get(key)
        if cell is not None and cell.halt is Halt.STOP:
            await cell.wait_finished()

    def stop_by(self, deadline: float) -> None:
        """Bound the registry's next stop: every actor's stop ends by ``deadline`` (trio time),
        cancelled then if it is still stopping (see ``Supervisor.stop_by``)."""
        self._supervisor.stop_by(deadline)

    def active_keys(self) -> list[K]:
        """Keys with an activated actor (starting, running, restarting or quarantined)."""
        return [key for key, cell in self._cells.items() if cell.halt is not Halt.STOP]

    def __len__(self) -> int:
        return len(self._cells)

    def snapshot(self) -> NodeSnapshot:
        inner = self._supervisor.snapshot()
        return NodeSnapshot(
            id=self.id,
            kind="registry",
            state=inner.state,
            started_at=inner.started_at,
            uptime=inner.uptime,
            children=inner.children,
        )

    # -- internals ----------------------------------------------------------------------------

    def _new_supervisor(self) -> Supervisor:
        return Supervisor(self.id, policy=self._policy, rng=self._rng, on_removed=self._on_removed)

    def _deliver(self, key: K, message: Any, reply: Reply | None) -> None:
        cell = self._cells.get(key)
        if cell is None or cell.halt is Halt.STOP:
            cell = self._activate_nowait(key, cell)
        cell.deliver(message, reply)

    def _resolve(self, key: K) -> Cell:
        """The key's live cell, activated if needed (``ActorUnavailable`` if not running)."""
        cell = self._cells.get(key)
        if cell is None or cell.halt is Halt.STOP:
            cell = self._activate_nowait(key, cell)
        return cell

    def _activate_nowait(self, key: K, predecessor: Cell | None) -> Cell:
        spec = ChildSpec(
            id=str(key),
            factory=functools.partial(self._factory, key),
            restart=self._restart,
            shutdown=self._shutdown,
            on_exhausted=OnExhausted.QUARANTINE,
            mailbox_capacity=self._capacity,
        )
        try:
            cell = self._supervisor.start_dynamic_nowait(
                spec, after=predecessor, tag=key, ref=self.ref(key)
            )
        except ActorUnavailable:
            raise ActorUnavailable(
                f"{self.id}/{key}", self._supervisor.state.value, "registry not running"
            ) from None
        self._cells[key] = cell
        return cell

    def _begin_stop(self, cell: Cell) -> None:
        """Synchronously refuse new messages for this incarnation and free its key."""
        cell.stop_accepting()
        self._supervisor.detach(cell)

    def _on_removed(self, cell: Cell) -> None:
        key = cell.tag
        if self._cells.get(key) is cell:
            del self._cells[key]

    async def _sweep(self, idle_timeout: float, interval: float) -> None:
        """Passivate idle actors; one task for the whole registry."""
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            for cell in list(self._cells.values()):
                if cell.state is not ChildState.RUNNING or cell.halt is not Halt.NONE:
                    continue
                if cell.idle_for(now) < idle_timeout:
                    continue
                try:
                    veto = isinstance(cell.instance, Actor) and cell.instance.keep_alive()
                except Exception:
                    log.exception("keep_alive() of %s failed; keeping it", cell.path)
                    veto = True
                if veto:
                    continue
                self._begin_stop(cell)
                self._supervisor.stop_dynamic_soon(cell)
