"""PostgreSQL pool behaviour: cancellation safety, error mapping, health (real server)."""

from __future__ import annotations

import time

import asyncpg
import pytest
import trio

from storage import (
    Conflict,
    PgPool,
    Storage,
    StorageTimeout,
    StorageUnavailable,
    ValidationError,
    open_storage,
)
from tests.support.databases import open_real_storage


async def _sleep(conn: asyncpg.Connection, seconds: float) -> None:
    await conn.execute("SELECT pg_sleep($1)", seconds)


async def _backends(conn: asyncpg.Connection) -> int:
    """Our other sessions still running a query (a leaked/cancelled one would show here)."""
    result: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND pid <> pg_backend_pid()"
    )
    return result


async def test_cancel_mid_query_leaves_pool_healthy(database_url: str) -> None:
    async with open_real_storage(database_url, redis_url=None, pool_max_size=3) as st:
        pg = st.pg
        assert pg is not None
        with trio.move_on_after(0.2) as scope:
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(pg.run, _sleep, 30.0)
        assert scope.cancelled_caught
        with trio.fail_after(5):
            await pg.settle()
        stats = pg.stats()
        assert stats.releasing == 0
        assert stats.idle == stats.size  # every connection is back and idle
        # The server cancelled the sleeps too: each backend takes the cancel signal when the
        # OS schedules it (a moment on a loaded machine); a leaked sleep would run for 30 s.
        for _ in range(100):  # up to 5 s
            if await pg.run(_backends) == 0:
                break
            await trio.sleep(0.05)
        assert await pg.run(_backends) == 0
        assert (await st.companies.create(1)).company.id == 1  # still serves
        started = time.perf_counter()
        with trio.fail_after(3):
            await pg.aclose()
        assert time.perf_counter() - started < 2


async def test_cancel_while_waiting_for_a_connection(database_url: str) -> None:
    async with open_real_storage(database_url, redis_url=None, pool_max_size=1) as st:
        pg = st.pg
        assert pg is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pg.run, _sleep, 0.3)
            await trio.sleep(0.05)  # real I/O: the one connection is now busy
            with trio.move_on_after(0.05) as scope:
                await pg.run(_sleep, 0)  # waits in acquire, then is cancelled
            assert scope.cancelled_caught
        with trio.fail_after(5):
            await pg.settle()
            assert await st.companies.count() == 0  # the connection came back
        stats = pg.stats()
        assert (stats.size, stats.idle, stats.releasing) == (1, 1, 0)


async def test_close_returns_quickly_with_a_query_in_flight(database_url: str) -> None:
    async with open_real_storage(database_url, redis_url=None) as st:
        pg = st.pg
        assert pg is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pg.run, _sleep, 30.0)
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        with trio.fail_after(3):
            await pg.aclose()
        with pytest.raises(StorageUnavailable):
            await st.companies.count()


async def test_statement_timeout_is_storage_timeout(database_url: str) -> None:
    # Emptied first with the usual timeout: TRUNCATE of every table can take longer than the
    # 0.2 s under test on a loaded machine, which is not what this test is about.
    async with open_real_storage(database_url, redis_url=None):
        pass
    async with open_real_storage(
        database_url, redis_url=None, command_timeout=0.2, truncate=False
    ) as st:
        assert st.pg is not None
        with trio.fail_after(5), pytest.raises(StorageTimeout):
            await st.pg.run(_sleep, 5.0)
        assert await st.companies.count() == 0


async def test_server_side_statement_timeout_is_storage_timeout(real_storage: Storage) -> None:
    async def slow(conn: asyncpg.Connection) -> None:
        await conn.execute("SET LOCAL statement_timeout = 50")
        await conn.execute("SELECT pg_sleep(2)")

    assert real_storage.pg is not None
    with trio.fail_after(5), pytest.raises(StorageTimeout):
        await real_storage.pg.transaction(slow)


async def test_errors_are_ours(real_storage: Storage) -> None:
    assert real_storage.pg is not None

    async def dup(conn: asyncpg.Connection) -> None:
        await conn.execute("INSERT INTO companies (yclients_id) VALUES (5), (5)")

    with pytest.raises(Conflict) as info:
        await real_storage.pg.run(dup)
    assert not isinstance(info.value, asyncpg.PostgresError)

    async def nul(conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT $1::text", "a\x00b")

    with pytest.raises(ValidationError):
        await real_storage.pg.run(nul)


async def test_unreachable_database_is_unavailable_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(StorageUnavailable) as info:
        async with open_storage(
            database_url="postgresql://postgres:secret@127.0.0.1:1/nope", connect_timeout=2
        ):
            pass  # pragma: no cover
    assert time.perf_counter() - started < 5
    assert "secret" not in str(info.value)


async def test_pg_needs_a_trio_asyncio_loop(database_url: str) -> None:
    with pytest.raises(RuntimeError, match="trio_asyncio"):
        await PgPool.open(database_url)


async def test_health_reports_both_backends(real_storage: Storage) -> None:
    health = await real_storage.health()
    assert health.ok
    assert (health.database.kind, health.redis.kind) == ("postgres", "redis")
    assert real_storage.pool_stats() is not None
