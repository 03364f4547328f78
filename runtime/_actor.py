"""``Actor``: the base class business actors subclass, and the loop that runs one incarnation.

Writing an actor::

    class Counter(Actor):
        expected_errors = (ValueError,)      # answered to the asker, do not crash the actor

        async def on_start(self) -> None:    # load state; the actor is "ready" after it
            self.total = 0

        async def receive(self, message: object) -> object:
            match message:
                case ("add", int(n)):
                    if n < 0:
                        raise ValueError("negative")   # expected: the asker gets ValueError
                    self.total += n
                    return self.total
                case "tick-later":
                    self.nursery.start_soon(self._tick)   # a timer owned by this incarnation
                case _:
                    raise TypeError(message)           # unexpected: crash, restart per spec

        async def _tick(self) -> None:
            await trio.sleep(20)
            self.ref.tell("tick")

Contract:

- one message at a time, in mailbox order; ``receive``'s return value answers an ``ask`` and is
  discarded for a ``tell``;
- "let it crash": any exception from ``on_start``, ``receive`` or a task in ``self.nursery``
  that is not an instance of ``expected_errors`` crashes the incarnation. The message being
  handled (if an ask) and every ask still queued fail at once with ``ActorCrashed`` (cause
  chained); queued tells are dropped; the supervisor calls the factory again for the next
  incarnation (have it build a new actor: state is not carried over, reload it in ``on_start``);
- ``on_stop`` runs after a graceful end (``stop()``, ``stop_child``, passivation, supervisor
  shutdown) within the child's shutdown budget, not after a crash; cleanup that must also run
  after a crash belongs in ``try/finally`` or ``async with`` inside the nursery's tasks, which are
  cancelled when the incarnation ends;
- ``keep_alive()`` is asked by the registry before passivating an idle actor; return ``True``
  while the actor holds something live (a WhatsApp session, a viewer);
- the constructor is synchronous and cheap (it runs on every restart); do I/O in ``on_start``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Protocol

import trio

from ._cell import Cell, Halt
from ._errors import unwrap
from ._mailbox import WAKE, Envelope
from ._ref import ActorRef

__all__ = ["Actor", "run_actor"]

log = logging.getLogger("runtime.actor")


class Actor:
    """Base class of every actor; override :meth:`receive` (and optionally the hooks)."""

    #: Exceptions from ``receive`` that are the asker's problem, not the actor's: re-raised in
    #: the asker (logged and dropped for a tell) without crashing the actor.
    expected_errors: ClassVar[tuple[type[Exception], ...]] = ()

    _rt_cell: Cell | None = None
    _rt_nursery: trio.Nursery | None = None

    async def on_start(self) -> None:
        """Prepare state before the first message (messages sent meanwhile wait in the mailbox).

        Raising here is a crash. Runs inside the incarnation, so ``self.nursery`` is usable.
        """

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise NotImplementedError(f"{type(self).__name__} must implement receive()")

    async def on_stop(self) -> None:
        """Release resources after a graceful stop (not called after a crash)."""

    def keep_alive(self) -> bool:
        """Veto passivation while idle (``True`` keeps the actor activated)."""
        return False

    @property
    def nursery(self) -> trio.Nursery:
        """This incarnation's nursery, for timers; a crash in it crashes the actor."""
        if self._rt_nursery is None:
            raise RuntimeError("the actor is not running")
        return self._rt_nursery

    @property
    def ref(self) -> ActorRef:
        """A ref to this actor (stable across restarts) to hand to others or tell yourself."""
        return self._cell().ref()

    @property
    def id(self) -> str:
        """The child id in its supervisor (for a registry actor, ``str(key)``)."""
        return self._cell().spec.id

    def stop(self) -> None:
        """End this incarnation normally after the current message (then ``on_stop`` runs).

        Whether it is started again follows the child's restart type (``permanent``: yes).
        """
        self._cell().request_exit()

    def _cell(self) -> Cell:
        if self._rt_cell is None:
            raise RuntimeError("the actor is not attached to a supervisor")
        return self._rt_cell


class StartStatus(Protocol):
    def started(self, value: object = None) -> None: ...


async def run_actor(
    cell: Cell,
    actor: Actor,
    receive: trio.MemoryReceiveChannel[Envelope],
    status: StartStatus,
) -> BaseException | None:
    """Run one incarnation: ``on_start``, the message loop, ``on_stop`` on a graceful end.

    Returns the crash (``None`` after a normal end or a stop). The incarnation's nursery scope is
    its one cancel scope, and only the supervisor cancels it: shielded, published to the cell as
    it opens (``Cell.enter_scope``, so a stop reaches an actor still in ``on_start``), and handed
    back by ``status.started(scope)`` once ``on_start`` returned. Either way the mailbox is closed
    and every pending ask is failed before this returns. (The loop is inline: every coroutine
    frame on an idle actor's stack costs memory.)
    """
    error: BaseException | None = None
    mailbox = cell.mailbox
    assert mailbox is not None
    try:
        async with trio.open_nursery() as nursery:
            scope = nursery.cancel_scope
            scope.shield = True
            cell.enter_scope(scope)
            actor._rt_nursery = nursery
            await actor.on_start()
            status.started(scope)
            next_envelope = receive.receive
            handle = actor.receive
            expected = actor.expected_errors
            while cell.halt is Halt.NONE:
                envelope = await next_envelope()
                if mailbox.senders is not None:  # room for one ``send`` waiting for it
                    mailbox.senders.unpark()
                if envelope is WAKE:
                    continue
                mailbox.taken += 1
                message, reply = envelope
                cell.begin_message(reply)
                try:
                    result = await handle(message)
                except expected as exc:
                    if reply is not None:
                        reply.fail(exc)
                    else:
                        log.warning("actor %s: told message failed: %r", cell.path, exc)
                else:
                    if reply is not None:
                        reply.set(result)
                cell.end_message()
            await actor.on_stop()
            scope.cancel()
    except Exception as exc:
        error = unwrap(exc)
    finally:
        cell.close_incarnation(error, receive)
        actor._rt_nursery = None
    return error
