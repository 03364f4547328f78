"""Storage fixtures: one contract suite over the in-memory twins and real PostgreSQL + Redis.

Each session gets its own database (migrated, dropped at the end) and Redis key prefix (keys
deleted at the end); each test gets empty tables and a fresh sub-prefix.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from storage import Storage, open_storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage, pg_database, redis_prefix_session


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_session_prefix() -> Iterator[str]:
    with redis_prefix_session("storage") as prefix:
        yield prefix


@pytest.fixture
def redis_prefix(redis_session_prefix: str) -> str:
    return f"{redis_session_prefix}{uuid.uuid4().hex[:8]}:"


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
