"""The YClients rate limiter: one per process, its counters shared through Redis.

YClients allows **5 requests per second and 200 per minute per IP**. Every process that talks
to YClients from the same address must therefore draw from the same budget, so the limiter
keeps no counts itself: it asks a ``RateCounter`` (a Redis one in production, an in-memory one
in the embedded mode; both come from ``storage``) for a slot in each of its windows and waits
(``trio.sleep``) until every window has one. It never lets a request through past a window.

Why the default windows are not simply "5 per 1 s" and "200 per 60 s": the shared counter is a
*fixed* window, and two fixed 1-second windows back to back let 10 requests through within a
few milliseconds of each other (5 at the end of one window, 5 at the start of the next). We do
not know whether YClients counts in fixed or sliding windows (or as a leaky bucket), and the
request reaches YClients some network latency after we take the slot. So the default paces
requests: **one slot per 0.31 s** in a shared fixed window. A span of 1 s of arrival times
corresponds to at most 1.2 s of slot times (allowing 200 ms of latency jitter), which touches at
most 5 pace windows: ≤ 5 requests in *any* second. A span of 60.2 s touches at most 196 pace
windows: ≤ 196 in any minute. Throughput is 3.2 requests/s (193/min, 97 % of the published
minute budget, which is the binding one for sustained load anyway). The second window,
200 per 60 s, is the published minute cap kept as a guard for when the pace is relaxed (for
example to ``RateLimit(5, 1.0)`` against an API known to count fixed windows).

Waiters in one process queue on a FIFO ``trio.Lock``, so they are served in arrival order and
only one of them polls the shared counter at a time.

Cancellation: ``acquire()`` may be cancelled at any point; a slot already taken is simply
spent. Errors from the counter (Redis down) propagate unchanged; the client maps them to
``YClientsUnavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from config import RateLimit
from storage import RateDecision

#: The pace window (binding) and the published per-minute cap (guard); see the module docs.
YCLIENTS_WINDOWS: tuple[RateLimit, ...] = (RateLimit(1, 0.31), RateLimit(200, 60.0))

#: Never sleep less than this between polls, so float rounding at a window edge cannot spin.
MIN_WAIT = 0.005


class RateCounter(Protocol):
    """A fixed-window counter shared by every process (``storage.RateLimiter`` fits as is).

    It answers with storage's :class:`~storage.RateDecision` (the one type for a counter's
    answer, also used by the web layer's request limits).

    ``hit`` counts one attempt against ``key`` in the current window of ``window`` seconds and
    says whether it is within ``limit``; when it is not, ``retry_after`` is the time until the
    window resets. A denied hit must not push the reset further away. Windows may be aligned
    or start at the first hit; either way they do not overlap, which is all the pacing
    argument above needs.
    """

    async def hit(self, key: str, limit: int, window: float) -> RateDecision: ...


@dataclass(frozen=True)
class LimiterStatistics:
    """A snapshot for health views: slots granted, how often and how long callers waited."""

    granted: int
    denied_polls: int
    waited_seconds: float
    waiting: int


class YClientsRateLimiter:
    """Waits until every window has a free slot, then returns; never lets a request past.

    ``windows`` are ``RateLimit(limit, window)`` values, checked in order (put the tightest
    first, so denials there do not spend slots in the wider windows). ``key`` prefixes the
    counter keys; every process talking to YClients from one IP must use the same key.
    ``sleep`` is injectable for tests; it defaults to ``trio.sleep``.
    """

    def __init__(
        self,
        counter: RateCounter,
        *,
        key: str = "yclients:api",
        windows: Sequence[RateLimit] = YCLIENTS_WINDOWS,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
    ) -> None:
        if not windows:
            raise ValueError("a rate limiter needs at least one window")
        for w in windows:
            if w.limit < 1 or w.window <= 0:
                raise ValueError(f"invalid rate window {w!r}")
        self._counter = counter
        self._key = key
        self._windows = tuple(windows)
        self._sleep = sleep
        self._lock = trio.Lock()
        self._granted = 0
        self._denied = 0
        self._waited = 0.0
        self._waiting = 0

    @property
    def windows(self) -> tuple[RateLimit, ...]:
        """The windows this limiter enforces, tightest first."""
        return self._windows

    def _window_key(self, w: RateLimit) -> str:
        return f"{self._key}:{w.limit}/{w.window:g}s"

    async def acquire(self) -> None:
        """Block until a request may be sent now; FIFO among this process's callers."""
        self._waiting += 1
        try:
            async with self._lock:
                await self._take_slot()
        finally:
            self._waiting -= 1
        self._granted += 1

    async def _take_slot(self) -> None:
        index = 0
        while index < len(self._windows):
            w = self._windows[index]
            decision = await self._counter.hit(self._window_key(w), w.limit, w.window)
            if decision.allowed:
                index += 1
                continue
            # Denied: wait for this window to reset, then start over from the tightest one
            # (the earlier windows' slots may have expired meanwhile).
            self._denied += 1
            wait = max(decision.retry_after, MIN_WAIT)
            self._waited += wait
            await self._sleep(wait)
            index = 0

    def statistics(self) -> LimiterStatistics:
        """Counts since this limiter was made (this process only)."""
        return LimiterStatistics(
            granted=self._granted,
            denied_polls=self._denied,
            waited_seconds=self._waited,
            waiting=self._waiting,
        )

    def __repr__(self) -> str:
        windows = ", ".join(f"{w.limit}/{w.window:g}s" for w in self._windows)
        return f"<YClientsRateLimiter key={self._key!r} windows=[{windows}]>"
