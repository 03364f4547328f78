"""The bounded mailbox of an actor, and the one-shot reply slot used by ``ask``.

A :class:`Mailbox` keeps trio's channel semantics (STYLE 5): a bounded buffer
(``trio.open_memory_channel(capacity)``), ``send_nowait`` raises instead of blocking, and a
frozen :class:`MailboxStatistics` record for health views. One ``Mailbox`` lives as long as the
actor's supervisor slot; every incarnation gets a fresh channel (:meth:`Mailbox.open`), and when
an incarnation ends the undelivered envelopes are taken out (:meth:`Mailbox.close`) so their
asks can be failed at once instead of waiting for their timeout.

A :class:`Reply` costs one small object per ``ask`` and no task: the asker parks with
``trio.lowlevel.wait_task_rescheduled`` and the actor (or the runtime, when the actor dies)
reschedules it with the outcome.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Final

import outcome
import trio

__all__ = ["Envelope", "Mailbox", "MailboxStatistics", "Reply"]


class Reply:
    """A one-shot slot an ``ask`` waits on. Setting it twice is a no-op (first outcome wins)."""

    __slots__ = ("_outcome", "_task")

    def __init__(self) -> None:
        self._outcome: outcome.Outcome[Any] | None = None
        self._task: trio.lowlevel.Task | None = None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def set(self, value: Any) -> None:
        """Answer with ``value`` (ignored when already answered or the asker gave up)."""
        if self._outcome is None:
            self._complete(outcome.Value(value))

    def fail(self, error: BaseException) -> None:
        """Answer with an exception raised in the asker."""
        if self._outcome is None:
            self._complete(outcome.Error(error))

    def _complete(self, result: outcome.Outcome[Any]) -> None:
        self._outcome = result
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task, result)

    async def wait(self) -> Any:
        """Wait for the answer; cancellation abandons the slot (a later answer is dropped)."""
        if self._outcome is not None:
            await trio.lowlevel.checkpoint()
            return self._outcome.unwrap()
        self._task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)


#: What travels through a mailbox: the message and, for an ``ask``, its reply slot.
Envelope = tuple[Any, Reply | None]

#: Posted to wake an idle actor so it notices a stop request; never handed to ``receive``.
WAKE: Final = (None, None)


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A point-in-time view of one mailbox (what ``/health/tree`` shows).

    ``depth`` messages wait out of ``capacity``; ``accepted`` counts every message ever put in,
    ``rejected`` the ``MailboxFull`` refusals, ``dropped`` the messages thrown away because
    their incarnation ended before handling them (their asks were failed at once).
    """

    capacity: int
    depth: int
    accepted: int
    rejected: int
    dropped: int


class Mailbox:
    """A bounded FIFO of :data:`Envelope` built on a trio memory channel.

    Only the actor's own task receives. :meth:`send_nowait` never blocks: it raises
    ``trio.WouldBlock`` when full and ``trio.ClosedResourceError`` between incarnations. The
    waiting counterpart is :meth:`offer` plus :meth:`wait_room` (used by ``ActorRef.send``).
    """

    __slots__ = (
        "_accepted",
        "_capacity",
        "_dropped",
        "_recv",
        "_rejected",
        "_send",
        "senders",
        "taken",
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._accepted = 0
        self._rejected = 0
        self._dropped = 0
        #: Messages the actor has taken out (incremented by the actor loop, not by receive).
        self.taken = 0
        self._send: trio.MemorySendChannel[Envelope] | None = None
        self._recv: trio.MemoryReceiveChannel[Envelope] | None = None
        #: Tasks of ``ActorRef.send`` waiting for room, made on first use (an idle actor pays
        #: nothing for it). The actor loop unparks one per message it takes; closing or a stop
        #: request unparks all (they retry and meet the new state).
        self.senders: trio.lowlevel.ParkingLot | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    def open(self) -> trio.MemoryReceiveChannel[Envelope]:
        """Start a fresh channel for a new incarnation and return its receiving end."""
        self._send, self._recv = trio.open_memory_channel[Envelope](self._capacity)
        return self._recv

    def owns(self, receive: trio.MemoryReceiveChannel[Envelope]) -> bool:
        """Whether ``receive`` is the current incarnation's channel."""
        return receive is self._recv

    def send_nowait(self, envelope: Envelope) -> None:
        """Queue ``envelope``; ``trio.WouldBlock`` if full (counted as rejected),
        ``ClosedResourceError`` if closed."""
        if not self.offer(envelope):
            self._rejected += 1
            raise trio.WouldBlock

    def offer(self, envelope: Envelope) -> bool:
        """Queue ``envelope`` if there is room (``False`` if full: not counted as rejected, the
        caller waits in :meth:`wait_room`); ``ClosedResourceError`` if closed."""
        send = self._send
        if send is None:
            raise trio.ClosedResourceError
        try:
            send.send_nowait(envelope)
        except trio.WouldBlock:
            return False
        self._accepted += 1
        return True

    async def wait_room(self) -> None:
        """Park until the actor takes a message, the channel closes or a stop is requested
        (a wake-up is a reason to try again, not a promise of room)."""
        if self.senders is None:
            self.senders = trio.lowlevel.ParkingLot()
        await self.senders.park()

    def wake(self) -> None:
        """Post :data:`WAKE` if there is room (a full mailbox means the actor is not idle), and
        wake the parked senders so they see a stop request."""
        if self.senders is not None:
            self.senders.unpark_all()
        if self._send is not None:
            with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                self._send.send_nowait(WAKE)

    def close(self, owner: trio.MemoryReceiveChannel[Envelope] | None = None) -> list[Envelope]:
        """Close the channel and return the envelopes nobody will handle (their asks to fail).

        With ``owner``, only if that is still the current channel (an incarnation that outlived
        its stop never closes its successor's mailbox).
        """
        if owner is not None and owner is not self._recv:
            return []
        send, recv = self._send, self._recv
        self._send = self._recv = None
        left: list[Envelope] = []
        if recv is not None:
            while True:
                try:
                    envelope = recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if envelope is not WAKE:
                    left.append(envelope)
            recv.close()
        if send is not None:
            send.close()
        if self.senders is not None:
            self.senders.unpark_all()
        self._dropped += len(left)
        return left

    def depth(self) -> int:
        """Messages accepted and neither taken by the actor nor dropped (includes one handed
        straight to a waiting actor that has not run yet, which the channel no longer counts)."""
        return self._accepted - self.taken - self._dropped

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            capacity=self._capacity,
            depth=self.depth(),
            accepted=self._accepted,
            rejected=self._rejected,
            dropped=self._dropped,
        )
