"""Fixtures of the reminder tests: the planner's storage on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from storage import Storage, open_storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage


@pytest.fixture(params=["memory", "real"])
async def storage(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str, wall: FakeWallClock
) -> AsyncIterator[Storage]:
    """The same repositories in memory or on PostgreSQL + Redis, on the module's ``wall``
    clock (each module using it defines the ``wall`` fixture)."""
    if request.param == "memory":
        async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as st:
            yield st
    else:
        async with open_real_storage(
            database_url, redis_prefix=redis_prefix, wall_clock=wall
        ) as st:
            yield st
