"""open_storage: backend choice from settings, loop handling, errors passing through bare."""

from __future__ import annotations

import pytest
import trio

from config import Settings
from storage import Storage, open_storage
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix


async def test_defaults_to_memory() -> None:
    async with open_storage(Settings()) as st:
        assert (st.database_kind, st.redis_kind) == ("memory", "memory")
        assert st.pool_stats() is None
        health = await st.health()
        assert health.ok and health.database.kind == "memory" and health.redis.kind == "memory"


async def test_settings_select_postgres_and_redis_without_a_loop_around(
    database_url: str,
) -> None:
    prefix = new_redis_prefix("open")
    settings = Settings(database_url=database_url, redis_url=REDIS_URL, redis_prefix=prefix)
    try:
        # No trio_asyncio.open_loop() here: open_storage runs one for its lifetime.
        async with open_storage(settings) as st:
            assert (st.database_kind, st.redis_kind) == ("postgres", "redis")
            assert (await st.health()).ok
            token = await st.tokens.issue(1)
            assert st.redis is not None
            assert await st.redis.client.exists([f"{prefix}marketplace:token:{token}"]) == 1
            await st.companies.count()
    finally:
        await delete_redis_prefix(prefix)


class Boom(Exception):
    pass


@pytest.mark.parametrize("kind", ["memory", "real"])
async def test_callers_exceptions_are_not_wrapped(kind: str, database_url: str) -> None:
    options = {} if kind == "memory" else {"database_url": database_url, "redis_url": REDIS_URL}
    prefix = new_redis_prefix("open")
    try:
        with pytest.raises(Boom):
            async with open_storage(redis_prefix=prefix, **options):  # type: ignore[arg-type]
                raise Boom
    finally:
        await delete_redis_prefix(prefix)


async def test_rate_limit_is_shared_between_clients(real_storage: Storage) -> None:
    # A second storage on the same prefix stands for another process: one budget for both.
    assert real_storage.redis is not None
    async with open_storage(redis_url=REDIS_URL, redis_prefix=real_storage.redis.prefix) as other:
        allowed = 0

        async def hit(st: Storage) -> None:
            nonlocal allowed
            if (await st.rate_limiter.hit("shared", 10, 60)).allowed:
                allowed += 1

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(hit, (real_storage, other)[i % 2])
        assert allowed == 10
