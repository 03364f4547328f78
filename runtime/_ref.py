"""``ActorRef``: the only handle callers hold on an actor.

A ref points at a supervisor slot (or, for a registry, at a key), not at an incarnation, so it
stays valid across restarts: messages sent after a restart reach the new incarnation. When the
slot is gone for good (stopped, removed, its supervisor/registry stopped) every send raises
:class:`ActorUnavailable`.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from ._errors import AskTimeout
from ._mailbox import Reply

__all__ = ["ActorRef"]


class Target(Protocol):
    """What a ref delivers to (a supervisor slot, or a registry key that activates on demand)."""

    @property
    def path(self) -> str: ...

    def deliver(self, message: Any, reply: Reply | None) -> None:
        """Queue without blocking; raise ``MailboxFull`` or ``ActorUnavailable``."""
        ...

    def offer(self, message: Any) -> bool:
        """Queue a tell if there is room (``False`` when full); raise ``ActorUnavailable``."""
        ...

    async def wait_room(self) -> None:
        """Return when an :meth:`offer` that found the mailbox full is worth trying again."""
        ...


class ActorRef:
    """Send messages to an actor: ``tell`` (fire and forget), ``send`` (``tell`` that waits for
    room in a full mailbox) or ``ask`` (request/reply).

    Both are safe to call from any trio task of the same run. Equality and hashing follow the
    target, so refs work as dict keys.
    """

    __slots__ = ("_target",)

    def __init__(self, target: Target) -> None:
        self._target = target

    @property
    def path(self) -> str:
        """``supervisor/child`` (or ``registry/key``) of the target, for logs."""
        return self._target.path

    def tell(self, message: Any) -> None:
        """Queue ``message``; never blocks and never waits for it to be handled.

        Raises :class:`MailboxFull` when the bounded mailbox is full (backpressure) and
        :class:`ActorUnavailable` when the actor is restarting, quarantined or stopped. A message
        queued before the actor crashes is dropped with the incarnation.
        """
        self._target.deliver(message, None)

    async def send(self, message: Any) -> None:
        """Queue ``message`` like :meth:`tell`, but wait for room instead of raising
        :class:`MailboxFull` (trio's ``send`` beside ``send_nowait``).

        Backpressure: a full mailbox parks the caller until the actor takes a message; waiting
        senders are woken one per message taken, so a sender that arrived later may still get
        the room first (no FIFO promise among them). Raises :class:`ActorUnavailable` when the
        actor is restarting, quarantined or stopped — also when that happens while waiting, so
        a stop never leaves a sender hanging. Cancellation while waiting leaves the message
        unsent; like any trio ``send`` it is a checkpoint even when there is room.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        target = self._target
        while not target.offer(message):
            await target.wait_room()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def ask(self, message: Any, timeout: float = 5.0) -> Any:
        """Send ``message`` and return what the actor's ``receive`` returns for it.

        Never waits longer than ``timeout`` seconds (trio clock): raises :class:`AskTimeout`
        then (the message may still be handled later; its reply is dropped). Raises at once
        :class:`MailboxFull` / :class:`ActorUnavailable` like :meth:`tell`, and
        :class:`ActorCrashed` as soon as the actor dies before answering (the crash cause is
        chained). Exceptions the actor lists in ``expected_errors`` are re-raised here as they
        are. Cancelling the caller abandons the reply.
        """
        reply = Reply()
        self._target.deliver(message, reply)
        with trio.CancelScope(deadline=trio.current_time() + timeout):
            return await reply.wait()
        raise AskTimeout(self._target.path, timeout)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._target == self._target

    def __hash__(self) -> int:
        return hash(self._target)

    def __repr__(self) -> str:
        return f"<ActorRef {self._target.path}>"
