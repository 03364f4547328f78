"""Faults: a TCP proxy cuts PostgreSQL and Redis connections mid-operation.

Operations fail with StorageUnavailable, nothing half-written remains, and service resumes by
itself once traffic passes again.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import asyncpg
import pytest
import trio
import trio_asyncio

from storage import PgPool, SalonService, SalonStaff, StorageTimeout, StorageUnavailable
from tests.support.databases import REDIS_URL, open_real_storage, with_port
from tests.support.proxy import open_tcp_proxy

SERVICES_A = [SalonService(i, f"A{i}", price_min=100 * i) for i in range(1, 201)]
SERVICES_B = [SalonService(i, f"B{i}", price_min=100 * i) for i in range(101, 301)]
STAFF = [SalonStaff(i, f"S{i}") for i in range(1, 21)]


async def _eventually(probe: object, seconds: float = 10) -> None:
    """Retry ``probe`` (an async callable) on StorageUnavailable until it succeeds."""
    with trio.fail_after(seconds):
        while True:
            try:
                await probe()  # type: ignore[operator]
                return
            except StorageUnavailable:
                await trio.sleep(0.05)


async def test_pg_cut_mid_transaction_leaves_previous_copy(database_url: str) -> None:
    pg = urlsplit(database_url)
    async with open_tcp_proxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
        url = with_port(database_url, proxy.port)
        async with open_real_storage(url, redis_url=None, pool_max_size=1) as st:
            cid = (await st.companies.create(1)).company.id
            await st.catalog.replace_catalog(cid, None, SERVICES_A, STAFF)
            # Measure one replacement's upstream bytes (statements are prepared by now).
            await st.catalog.replace_catalog(cid, None, SERVICES_A, STAFF)
            before = proxy.statistics().upstream_bytes
            await st.catalog.replace_catalog(cid, None, SERVICES_A, STAFF)
            size = proxy.statistics().upstream_bytes - before
            assert size > 1000

            proxy.cut_after(size // 2)  # dies after the first statements, before COMMIT
            with trio.fail_after(10), pytest.raises(StorageUnavailable):
                await st.catalog.replace_catalog(cid, None, SERVICES_B, STAFF[:5])
            assert proxy.statistics().cut >= 1

            with trio.fail_after(10), pytest.raises(StorageUnavailable):
                await st.companies.get(cid)  # still down: fails fast, does not hang
            proxy.allow()
            await _eventually(lambda: st.companies.get(cid))  # resumes by itself

            catalog = await st.catalog.get_catalog(cid, active_only=False)
            assert [s.title for s in catalog.services] == [s.title for s in SERVICES_A]
            assert all(s.active for s in catalog.services + catalog.staff)
            await st.catalog.replace_catalog(cid, None, SERVICES_B, STAFF[:5])
            active = await st.catalog.get_catalog(cid)
            assert [s.service_id for s in active.services] == list(range(101, 301))


async def test_pg_refused_connections_fail_fast_then_recover(database_url: str) -> None:
    pg = urlsplit(database_url)
    async with open_tcp_proxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
        url = with_port(database_url, proxy.port)
        async with open_real_storage(url, redis_url=None, connect_timeout=1) as st:
            await st.companies.create(5)
            proxy.block()
            started = time.perf_counter()
            for _ in range(3):
                with pytest.raises(StorageUnavailable):
                    await st.companies.count()
            assert time.perf_counter() - started < 5
            assert not (await st.ping_database()).ok
            proxy.allow()
            await _eventually(st.companies.count)
            assert await st.companies.count() == 1
            assert (await st.ping_database()).ok


async def test_redis_down_fails_fast_and_recovers(redis_prefix: str) -> None:
    redis = urlsplit(REDIS_URL)
    async with open_tcp_proxy(redis.hostname or "127.0.0.1", redis.port or 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        async with open_real_storage(
            None, redis_url=url, redis_prefix=redis_prefix, redis_op_timeout=1.0
        ) as st:
            token = await st.tokens.issue(1)
            proxy.block()
            started = time.perf_counter()
            with pytest.raises(StorageUnavailable):
                await st.tokens.resolve(token)
            with pytest.raises(StorageUnavailable):
                await st.rate_limiter.hit("k", 5, 60)
            assert time.perf_counter() - started < 4
            assert not (await st.ping_redis()).ok
            proxy.allow()
            await _eventually(lambda: st.tokens.resolve(token))
            assert await st.tokens.resolve(token) == 1
            assert (await st.rate_limiter.hit("k", 5, 60)).allowed


async def test_redis_connection_cut_is_transparent_or_unavailable(redis_prefix: str) -> None:
    redis = urlsplit(REDIS_URL)
    async with open_tcp_proxy(redis.hostname or "127.0.0.1", redis.port or 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        async with open_real_storage(None, redis_url=url, redis_prefix=redis_prefix) as st:
            await st.qr.put(1, "2@qr")
            proxy.cut()  # a Redis restart: the next call reconnects by itself
            with trio.fail_after(5):
                code = await st.qr.get(1)
            assert code is not None and code.qr == "2@qr"


async def test_pg_hung_server_times_out_then_recovers(database_url: str) -> None:
    pg = urlsplit(database_url)
    async with open_tcp_proxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
        url = with_port(database_url, proxy.port)
        async with trio_asyncio.open_loop():
            pool = await PgPool.open(url, command_timeout=0.3, acquire_timeout=0.3)
            try:
                assert await pool.run(_one) == 1
                proxy.stall()  # the server stops answering: no error, just silence
                started = time.perf_counter()
                with trio.fail_after(10), pytest.raises(StorageTimeout):
                    await pool.run(_one)
                assert time.perf_counter() - started < 3
                proxy.allow()
                with trio.fail_after(15):
                    while True:
                        try:
                            assert await pool.run(_one) == 1
                            break
                        except (StorageUnavailable, StorageTimeout):
                            await trio.sleep(0.05)
            finally:
                with trio.fail_after(10):
                    await pool.aclose()


async def _one(conn: asyncpg.Connection) -> int:
    result: int = await conn.fetchval("SELECT 1")
    return result
