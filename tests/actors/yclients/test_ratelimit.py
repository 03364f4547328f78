"""YClientsRateLimiter under trio's MockClock: never past a window, FIFO, cancellable.

The burst tests check the *sliding* windows YClients may count in (any 1 s, any 60 s), which is
stricter than the fixed windows of the shared counter.
"""

from __future__ import annotations

import bisect
import random
from functools import partial

import httpx
import pytest
import trio
import trio.testing

from actors.yclients import (
    YCLIENTS_WINDOWS,
    RetryPolicy,
    YClientsClient,
    YClientsRateLimiter,
    YClientsUnavailable,
)
from config import RateLimit
from storage import RateDecision, open_storage
from tests.fakes.yclients import LOTOS_ID, PARTNER_TOKEN, FakeYClients

from .conftest import MemoryRateCounter


def max_in_window(times: list[float], seconds: float) -> int:
    """The most events inside any half-open span of ``seconds``."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0
    )


async def _burst(limiter: YClientsRateLimiter, tasks: int, total: int) -> list[float]:
    granted: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            granted.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for i in range(tasks):
            nursery.start_soon(worker, total // tasks + (1 if i < total % tasks else 0))
    return granted


async def test_burst_of_300_stays_under_5_per_second_and_200_per_minute(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = YClientsRateLimiter(MemoryRateCounter())
    start = trio.current_time()
    granted = await _burst(limiter, tasks=6, total=300)
    assert len(granted) == 300
    assert max_in_window(granted, 1.0) <= 5
    assert max_in_window(granted, 60.0) <= 200
    # Paced at one slot per 0.31 s: not slower than that either.
    elapsed = trio.current_time() - start
    assert 299 * 0.31 - 0.01 <= elapsed <= 300 * 0.31 + 1
    stats = limiter.statistics()
    assert stats.granted == 300
    assert stats.waiting == 0


async def test_default_windows_leave_room_for_latency_jitter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Callers arriving at odd times: any 1.2 s of slot times holds at most 5 grants, so up to
    200 ms of latency jitter still keeps YClients' view at ≤ 5 per second."""
    limiter = YClientsRateLimiter(MemoryRateCounter())
    rng = random.Random(7)
    granted: list[float] = []

    async def caller(delay: float) -> None:
        await trio.sleep(delay)
        await limiter.acquire()
        granted.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(120):
            nursery.start_soon(caller, rng.uniform(0, 30))
    assert len(granted) == 120
    assert max_in_window(granted, 1.2) <= 5
    assert max_in_window(granted, 60.2) <= 196
    assert (RateLimit(1, 0.31), RateLimit(200, 60.0)) == YCLIENTS_WINDOWS


async def test_minute_window_binds_when_the_pace_is_relaxed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = YClientsRateLimiter(
        MemoryRateCounter(), windows=(RateLimit(5, 1.0), RateLimit(200, 60.0))
    )
    granted = sorted(await _burst(limiter, tasks=4, total=260))
    assert granted[199] < 60.0 <= granted[200]
    assert sum(1 for t in granted if t < 60.0) == 200


async def test_waiters_are_served_in_arrival_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = YClientsRateLimiter(MemoryRateCounter())
    order: list[int] = []

    async def waiter(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(waiter, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == list(range(8))


async def test_cancelled_waiter_leaves_the_others_working(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = YClientsRateLimiter(MemoryRateCounter())
    await limiter.acquire()  # the first slot is taken
    with trio.move_on_after(0.1) as scope:
        await limiter.acquire()  # must wait ~0.31 s: cancelled
    assert scope.cancelled_caught
    assert limiter.statistics().waiting == 0
    with trio.fail_after(1):
        await limiter.acquire()
    assert limiter.statistics().granted == 2


class _FlakyCounter:
    """Denies the first ``denials`` hits of each key with a tiny retry_after, then allows."""

    def __init__(self, denials: int) -> None:
        self.denials = denials
        self.seen: dict[str, int] = {}

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        await trio.lowlevel.checkpoint()
        n = self.seen[key] = self.seen.get(key, 0) + 1
        if n <= self.denials:
            return RateDecision(False, 0, 0.0)  # a zero retry_after must not spin
        return RateDecision(True, limit - 1, 0.0)


async def test_zero_retry_after_does_not_spin(autojump_clock: trio.testing.MockClock) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await trio.sleep(seconds)

    limiter = YClientsRateLimiter(_FlakyCounter(3), windows=(RateLimit(1, 0.31),), sleep=sleep)
    await limiter.acquire()
    assert len(slept) == 3
    assert all(s > 0 for s in slept)
    assert limiter.statistics().denied_polls == 3


class _BrokenCounter:
    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        raise ConnectionError("redis is down")


async def test_counter_failure_propagates_and_the_client_maps_it() -> None:
    limiter = YClientsRateLimiter(_BrokenCounter())
    with pytest.raises(ConnectionError):
        await limiter.acquire()
    fake = FakeYClients(rate_limits=None)
    async with YClientsClient(
        "http://yclients.test",
        PARTNER_TOKEN,
        rate_limiter=limiter,
        retry=RetryPolicy(attempts=1),
        transport=httpx.ASGITransport(app=fake),
    ) as client:
        with pytest.raises(YClientsUnavailable, match="rate limiter unavailable") as info:
            await client.get_company(LOTOS_ID)
    assert not info.value.outcome_unknown
    assert fake.requests == []  # nothing was sent


def test_invalid_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one window"):
        YClientsRateLimiter(MemoryRateCounter(), windows=())
    with pytest.raises(ValueError, match="invalid rate window"):
        YClientsRateLimiter(MemoryRateCounter(), windows=(RateLimit(0, 1.0),))


def test_repr_names_key_and_windows() -> None:
    limiter = YClientsRateLimiter(MemoryRateCounter(), key="aiadmin:yclients")
    assert (
        repr(limiter) == "<YClientsRateLimiter key='aiadmin:yclients' windows=[1/0.31s, 200/60s]>"
    )


async def test_client_burst_through_the_fake_is_never_rate_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """300 requests from 6 tasks, counted by the fake itself (its own sliding 5/s, 200/min).

    The fake runs in-process (httpx's ASGI transport) so the whole path runs on the mock clock.
    """
    fake = FakeYClients()  # enforces 5/s and 200/min, answers 429 past them
    limiter = YClientsRateLimiter(MemoryRateCounter())
    async with YClientsClient(
        "http://yclients.test",
        PARTNER_TOKEN,
        rate_limiter=limiter,
        transport=httpx.ASGITransport(app=fake),
    ) as client:

        async def worker(n: int) -> None:
            for _ in range(n):
                await client.get_company(LOTOS_ID)

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(partial(worker, 50))
    assert len(fake.requests) == 300
    assert [r.status for r in fake.requests] == [200] * 300
    assert fake.max_requests_in_window(1.0) <= 5
    assert fake.max_requests_in_window(60.0) <= 200


async def test_storage_memory_counter_plugs_in(autojump_clock: trio.testing.MockClock) -> None:
    """The storage package's counter (in-memory twin of the Redis one) is a RateCounter."""
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        limiter = YClientsRateLimiter(storage.rate_limiter, key="yclients")
        granted = await _burst(limiter, tasks=4, total=60)
    assert len(granted) == 60
    assert max_in_window(granted, 1.2) <= 5
