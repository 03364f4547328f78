"""Twenty salons asked to sync at once: the sync service runs all twenty concurrently, and
the client's shared limiter (Redis-backed, as in production) keeps the traffic the fake
YClients sees under 5 requests in any second and 200 in any minute — with no 429.

Real time by nature: 80 requests at the limiter's pace of one per 0.31 s take about 25 s.
"""

from __future__ import annotations

import re

import pytest
import trio

from actors.yclients import SyncPolicy
from storage import SyncState

from .test_inbox import database_url, many_salons, open_stack, redis_prefix, until

__all__ = ["database_url", "redis_prefix"]  # fixtures used here

COMPANIES = 20
FIRST_SALON = 300_001


@pytest.mark.slow
async def test_twenty_companies_sync_at_once_within_yclients_limits(
    database_url: str, redis_prefix: str
) -> None:
    policy = SyncPolicy(poll_interval=0.1, concurrency=COMPANIES, retry_failed=600.0)
    salons = many_salons(COMPANIES, FIRST_SALON)
    with trio.fail_after(60):
        async with open_stack(
            database_url, redis_prefix, sync_policy=policy, salons=salons
        ) as stack:
            ids = [(await stack.company(FIRST_SALON + n)).company.id for n in range(COMPANIES)]
            started = trio.current_time()
            sync = stack.node.services.sync
            assert sync is not None
            for cid in ids:  # all twenty at once (pending companies: no scheduled sync)
                sync.request(cid)

            async def all_synced() -> bool:
                states = [await stack.storage.catalog.get_sync_state(cid) for cid in ids]
                return all(s is not None and s.last_attempt_at is not None for s in states)

            await until(all_synced, wait=45)
            elapsed = trio.current_time() - started
            states: list[SyncState | None] = [
                await stack.storage.catalog.get_sync_state(cid) for cid in ids
            ]
            catalogs = [await stack.storage.catalog.get_catalog(cid) for cid in ids]
            peak = sync.statistics()
            requests = list(stack.fake.requests)

    assert all(s is not None and s.last_error is None for s in states)
    assert all(len(c.services) == 6 and len(c.staff) == 3 for c in catalogs)
    assert peak.succeeded == COMPANIES and peak.failed == 0
    # Four calls per salon (company, its services, categories, staff), every one answered
    # (the fake answers 429 past its limits).
    assert len(requests) == 4 * COMPANIES
    assert {r.status for r in requests} == {200}
    assert stack.fake.max_requests_in_window(1.0) <= 5
    assert stack.fake.max_requests_in_window(60.0) <= 200
    # They ran at once: most salons' first-to-last-call spans overlap (one after another,
    # at most one span would be open at any time).
    spans: dict[str, list[float]] = {}
    for r in requests:
        salon = re.search(r"/(\d+)(?:/|$)", r.path)
        assert salon is not None, r.path
        spans.setdefault(salon.group(1), []).append(r.time)
    overlap = max(
        sum(1 for times in spans.values() if times[0] <= r.time <= times[-1]) for r in requests
    )
    assert overlap >= COMPANIES // 2
    assert len(spans) == COMPANIES
    assert elapsed >= (4 * COMPANIES - 1) * 0.31 - 0.5
