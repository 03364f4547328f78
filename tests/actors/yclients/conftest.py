"""Fixtures: a fake YClients on a loopback port, a client pointed at it, a sleep recorder."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
import trio

from actors.yclients import RetryPolicy, YClientsClient
from storage import RateDecision
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients


class SleepRecorder:
    """Stands in for ``trio.sleep`` in the client: records each wait, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await trio.lowlevel.checkpoint()


class MemoryRateCounter:
    """A fixed-window counter on trio's clock, windows aligned on multiples of ``window``.

    The same contract as storage's counters: a denied hit does not move the reset.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self.calls = 0

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        now = trio.current_time()
        bucket = math.floor(now / window)
        count = self._counts.get((key, bucket), 0)
        if count >= limit:
            return RateDecision(False, 0, (bucket + 1) * window - now)
        self._counts[(key, bucket)] = count + 1
        return RateDecision(True, limit - count - 1, 0.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    """A fake YClients without its 5/s limit (tests of the limit turn it on)."""
    with trio.fail_after(10):
        async with running_fake_yclients(rate_limits=None) as server:
            yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def client(fake: FakeYClients, sleeps: SleepRecorder) -> AsyncIterator[YClientsClient]:
    async with YClientsClient(
        fake.base_url,
        PARTNER_TOKEN,
        timeout=5.0,
        retry=RetryPolicy(attempts=3, backoff_initial=0.2, backoff_max=1.0),
        sleep=sleeps,
    ) as c:
        yield c
