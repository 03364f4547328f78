"""The assistant's housekeeping: old conversation state cleared on a schedule, and bookings a
stopped node left unsettled picked up again when a node starts.

Why either is needed. A conversation actor reads its state at every turn and treats state
older than ``AIADMIN_CONVERSATION_IDLE_DAYS`` as fresh, so nothing *reads* stale state; but
nothing removed it either, and a salon's chats pile up. :meth:`ConversationSweep.run` (a
node child after the ``conversations`` registry) clears it with
``Conversations.expire_idle`` every ``interval`` seconds, in batches, so one pass never holds
the database long.

A booking whose answer was lost when the whole node stopped (between the client's "да" and
the reply) is held in the stored state (``ConversationState.settle_due_on_start``), and the
actor settles it by ``api_id`` when it starts. But a virtual actor starts on a message: a
client who waits for the confirmation would wait for ever. :meth:`ConversationSweep.wake_pending`
(called by the node once it has restored its companies) activates those conversations, so
the booking is settled and the client told once, by the node that owns the salon.

Cancellation: both are cancelled with the node at any await; nothing is half-written (each
storage call is atomic, and a conversation woken twice settles once: the second start finds
the booking gone or its timer armed).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

import trio

from runtime import ActorUnavailable, Registry
from storage import Storage, StorageError

from ._state import ConversationState

__all__ = ["SWEEP_BATCH", "SWEEP_INTERVAL", "WAKE_PAGE", "ConversationSweep"]

log = logging.getLogger(__name__)

#: Seconds between two passes clearing idle state (state lives days: hourly is plenty).
SWEEP_INTERVAL = 3600.0
#: Conversations cleared per storage call; a pass repeats calls until one clears fewer.
SWEEP_BATCH = 500
#: Conversations read per page while looking for unsettled bookings at start.
WAKE_PAGE = 200


class ConversationSweep:
    """Clears idle conversation state every ``interval`` seconds (a node child, see the
    module docstring) and wakes conversations holding an unsettled booking (at node start).

    ``idle`` is how long untouched state lives; ``wall_clock`` is the clock the stored
    ``updated_at`` / ``last_message_at`` are compared with (aware UTC).
    """

    def __init__(
        self,
        storage: Storage,
        registry: Registry[tuple[int, str]],
        *,
        idle: dt.timedelta,
        wall_clock: Callable[[], dt.datetime],
        interval: float = SWEEP_INTERVAL,
        batch: int = SWEEP_BATCH,
    ) -> None:
        if interval <= 0:
            raise ValueError("the sweep interval must be > 0")
        self.storage = storage
        self.registry = registry
        self.idle = idle
        self.wall_clock = wall_clock
        self.interval = interval
        self.batch = batch
        self.passes = 0
        self.cleared = 0
        self.woken = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Clear idle state now and then every ``interval`` seconds, until cancelled. A storage
        error crashes the pass (the node restarts the service)."""
        task_status.started()
        while True:
            await self.expire_idle()
            await trio.sleep(self.interval)

    async def expire_idle(self) -> int:
        """One pass: clear the state of every conversation untouched for ``idle``; returns how
        many were cleared."""
        cutoff = self.wall_clock() - self.idle
        total = 0
        while True:
            cleared = await self.storage.conversations.expire_idle(cutoff, limit=self.batch)
            total += cleared
            if cleared < self.batch:
                break
        self.passes += 1
        self.cleared += total
        if total:
            log.info("assistant: cleared the state of %d idle conversations", total)
        return total

    async def wake_pending(self, company_ids: Iterable[int]) -> int:
        """Activate every conversation of these companies whose stored state holds a booking
        not yet settled (its actor settles it by ``api_id`` as it starts); returns how many.

        Only conversations touched within ``idle`` are read (older state counts as fresh, so
        holds nothing to settle), newest first, a page at a time."""
        cutoff = self.wall_clock() - self.idle
        woken = 0
        for company_id in company_ids:
            try:
                woken += await self._wake_company(company_id, cutoff)
            except StorageError as exc:  # the node starts anyway; the client's next message
                # activates the conversation, which settles the booking then
                log.warning("company %s: pending bookings not looked for: %s", company_id, exc)
        self.woken += woken
        if woken:
            log.info("assistant: woke %d conversations to settle their bookings", woken)
        return woken

    async def _wake_company(self, company_id: int, cutoff: dt.datetime) -> int:
        woken = 0
        before: tuple[dt.datetime, str] | None = None
        while True:
            page = await self.storage.conversations.list(company_id, limit=WAKE_PAGE, before=before)
            for row in page:
                touched = row.last_message_at or row.updated_at
                if touched is None or touched < cutoff:
                    return woken  # newest first: the rest are older still
                if not ConversationState.from_json(row.state).settle_due_on_start:
                    continue
                try:
                    await self.registry.activate((company_id, row.phone))
                except ActorUnavailable as exc:  # quarantined: this chat only
                    log.warning("company %s: a pending booking not woken: %s", company_id, exc)
                    continue
                woken += 1
            if len(page) < WAKE_PAGE:
                return woken
            last = page[-1]
            last_touched = last.last_message_at or last.updated_at
            assert last_touched is not None  # checked in the loop above
            before = (last_touched, last.phone)
