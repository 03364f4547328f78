"""The per-company outbound WhatsApp queue: in order, paced, at least once.

Pacing keeps a number clear of WhatsApp's ban heuristics: a minimum gap plus random jitter
between two sends, and a cap per rolling minute. Sends wait while the session is not
connected (or sending is paused by a ban) and resume in order; a send whose outcome is unknown
(the session host died mid-call, a command timed out) is retried with the *same* message id,
which the backend deduplicates, so a message is delivered once. A send that fails without a
final answer is retried after a growing, jittered pause even if no session event follows (a
timed-out command on a healthy connection), or at once when the session reconnects; after
``MAX_UNCERTAIN_SENDS`` such failures in a row the message is marked ``unconfirmed`` (it may
have gone out), so one message that is never answered does not hold the salon's queue forever.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from config import SendPacing
from runtime import Backoff, Jitter

from ..whatsapp import SendFailed, SessionNotConnected, WhatsAppError

log = logging.getLogger(__name__)

# Pauses before retrying a send that failed without a final answer: 1, 2, 4 ... 60 s ± 30 %,
# drawn from the pacer's injected random generator.
RETRY_BACKOFF = Backoff(initial=1.0, maximum=60.0, jitter=0.3, mode=Jitter.SPREAD)
MAX_UNCERTAIN_SENDS = 8  # ~3 minutes of retries, then the message is marked unconfirmed


@dataclass(frozen=True)
class Outgoing:
    """One message waiting to be sent; ``log_id`` is its ``messages`` row."""

    log_id: int
    wa_message_id: str
    to_phone: str
    text: str


class Pacer:
    """When the next send may happen (trio clock): min gap + jitter, and a per-minute cap."""

    def __init__(self, pacing: SendPacing, rng: random.Random) -> None:
        self.pacing = pacing
        self.rng = rng
        self._sent: collections.deque[float] = collections.deque()
        self._last: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next send is allowed."""
        wait = 0.0
        if self._last is not None:
            gap = self.pacing.min_gap + self.rng.uniform(0.0, self.pacing.jitter)
            wait = max(wait, self._last + gap - now)
        while self._sent and self._sent[0] <= now - 60.0:
            self._sent.popleft()
        if len(self._sent) >= self.pacing.per_minute:
            wait = max(wait, self._sent[0] + 60.0 - now)
        return max(0.0, wait)

    def record(self, now: float) -> None:
        self._last = now
        self._sent.append(now)


SendFn = Callable[[Outgoing], Awaitable[None]]
# ``done(item, status, error)``: the final outcome, a ``messages`` status: "sent", "failed"
# (refused, e.g. a bad number) or "unconfirmed" (handed over again and again, never answered).
DoneFn = Callable[[Outgoing, str, str | None], Awaitable[None]]


class OutboundQueue:
    """A bounded FIFO drained by :meth:`run` while sending is possible."""

    def __init__(self, limit: int, pacer: Pacer) -> None:
        self.limit = limit
        self.pacer = pacer
        self.items: collections.deque[Outgoing] = collections.deque()
        self._open = False
        self._wake = trio.Event()
        self._reopened = trio.Event()
        self._failures = 0  # sends in a row that failed without a final answer
        self.sent = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def push(self, item: Outgoing) -> None:
        """Queue an item (the caller checked :attr:`full`)."""
        self.items.append(item)
        self._wake.set()

    def set_open(self, is_open: bool) -> None:
        """Open while the session is connected and sending is not paused."""
        if is_open and not self._open:
            self._reopened.set()
        self._open = is_open
        if is_open:
            self._wake.set()

    async def _pause_after_failure(self) -> None:
        """Wait before retrying the head of the queue: the retry delay, or until the session
        reconnects (also during the failed send), whichever comes first."""
        with trio.move_on_after(RETRY_BACKOFF.delay(self._failures, self.pacer.rng)):
            await self._reopened.wait()

    async def run(self, send: SendFn, done: DoneFn) -> None:
        """Send forever, one message at a time; ``done`` after each final outcome."""
        while True:
            while not (self._open and self.items):
                self._wake = trio.Event()
                await self._wake.wait()
            delay = self.pacer.delay(trio.current_time())
            if delay > 0:
                await trio.sleep(delay)
                continue  # the world may have changed while we waited
            item = self.items[0]
            self._reopened = trio.Event()  # a reconnect from here on cuts the pause short
            try:
                await send(item)
            except SendFailed as exc:  # a final answer: this message cannot be sent
                self._failures = 0
                self.items.popleft()
                await done(item, "failed", str(exc))
                continue
            except SessionNotConnected as exc:
                # Not handed over: keep it first in line until the session is back.
                log.info("send of %s deferred: %s", item.wa_message_id, exc)
                await self._pause_after_failure()
                continue
            except WhatsAppError as exc:  # OutcomeUnknown and the like: may or may not be sent
                self._failures += 1
                if self._failures >= MAX_UNCERTAIN_SENDS:
                    log.warning("send of %s given up: %s", item.wa_message_id, exc)
                    self._failures = 0
                    self.items.popleft()
                    await done(
                        item, "unconfirmed", f"no answer in {MAX_UNCERTAIN_SENDS} sends: {exc}"
                    )
                    continue
                log.info("send of %s uncertain, will retry: %s", item.wa_message_id, exc)
                await self._pause_after_failure()
                continue
            self._failures = 0
            self.pacer.record(trio.current_time())
            self.items.popleft()
            self.sent += 1
            await done(item, "sent", None)
