"""Storage fixtures: one contract suite over the in-memory twins and real PostgreSQL + Redis.

Each session gets its own database (migrated, dropped at the end) and Redis key prefix (keys
deleted at the end); each test gets empty tables and a fresh sub-prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from storage import Storage, open_storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture(params=["memory", "real"])
async def storage(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str, wall: FakeWallClock
) -> AsyncIterator[Storage]:
    """The same repositories on in-memory twins (``memory``) or PostgreSQL + Redis (``real``)."""
    if request.param == "memory":
        async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as st:
            yield st
    else:
        async with open_real_storage(
            database_url, redis_prefix=redis_prefix, wall_clock=wall
        ) as st:
            yield st


@pytest.fixture
async def real_storage(
    database_url: str, redis_prefix: str, wall: FakeWallClock
) -> AsyncIterator[Storage]:
    """PostgreSQL + Redis only, for tests of real concurrency and faults."""
    async with open_real_storage(database_url, redis_prefix=redis_prefix, wall_clock=wall) as st:
        yield st
