"""A PostgreSQL unit keeps nothing of its caller alive after it returns (real server).

Under trio-asyncio a cancelled asyncio timer stays in the loop's heap until its deadline (the
loop never prunes cancelled ones), holding the context it was scheduled in. asyncpg arms such
timers on every release (``asyncio.timeout``). A unit run in the caller's context would keep
the caller's context variables — in the web app the request, its body and its HTTP stream —
alive for seconds after the answer: memory that grows with the request rate (issue 17's soak).
"""

from __future__ import annotations

import contextvars
import gc
import weakref

import asyncpg
import trio

from tests.support.databases import open_real_storage

#: Stands for what a request handler holds in its context (Quart's request context).
held: contextvars.ContextVar[object] = contextvars.ContextVar("held")


class Payload:
    """An object only the caller's context refers to."""


async def _select_one(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT 1")
    return value


async def test_a_finished_unit_does_not_keep_its_callers_context_alive(
    database_url: str,
) -> None:
    async with open_real_storage(database_url, redis_url=None, pool_max_size=2) as st:
        pg = st.pg
        assert pg is not None
        alive: list[weakref.ref[Payload]] = []

        async def caller() -> None:
            payload = Payload()
            alive.append(weakref.ref(payload))
            held.set(payload)
            assert await pg.run(_select_one) == 1
            assert await pg.transaction(_select_one) == 1

        for _ in range(20):
            async with trio.open_nursery() as nursery:  # each caller in its own task
                nursery.start_soon(caller)
        await pg.settle()
        gc.collect()
        assert len(alive) == 20
        assert [ref for ref in alive if ref() is not None] == []
