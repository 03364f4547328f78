"""One short real-clock test: the limiter keeps real HTTP traffic within YClients' 5/s.

Everything else about the limiter runs under MockClock (test_ratelimit.py); this one checks
the wiring over real sockets, with the fake enforcing the limit and timing the arrivals.
"""

from __future__ import annotations

import pytest
import trio

from actors.yclients import YClientsClient, YClientsRateLimiter
from tests.fakes.yclients import LOTOS_ID, PARTNER_TOKEN, running_fake_yclients

from .conftest import MemoryRateCounter


@pytest.mark.slow
async def test_seven_concurrent_calls_never_exceed_5_per_second() -> None:
    limiter = YClientsRateLimiter(MemoryRateCounter())
    with trio.fail_after(15):
        async with (
            running_fake_yclients() as fake,  # enforces 5/s and 200/min with 429s
            YClientsClient(fake.base_url, PARTNER_TOKEN, rate_limiter=limiter) as client,
        ):
            started = trio.current_time()
            async with trio.open_nursery() as nursery:
                for _ in range(7):
                    nursery.start_soon(client.get_company, LOTOS_ID)
            elapsed = trio.current_time() - started
    assert [r.status for r in fake.requests] == [200] * 7
    assert fake.max_requests_in_window(1.0) <= 5
    assert elapsed >= 6 * 0.31 - 0.35  # the first slot may come at the end of its window
