"""No split brain on real PostgreSQL + Redis: two nodes (each with its own connections) share
one salon; node A reaches Redis through a TCP proxy that cuts it off, then heals.

At no moment do both nodes run the salon's WhatsApp session (one simulated WhatsApp for both,
counting a session that attaches while another is connected), and the old owner's writes after
the new owner took over are refused.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import pytest
import trio

from actors import Node, open_node
from actors.whatsapp import open_gateway
from config import Settings
from storage import StaleEpoch, Storage, StorageError
from tests.support.databases import REDIS_URL, open_real_storage, with_port
from tests.support.proxy import TcpProxy, open_tcp_proxy

from .test_company_actor import link, register
from .test_lease_loss import WatchedWorld

TTL = 3.0  # seconds: A gives up 2 s after its last renewal, a second before the lease expires


@asynccontextmanager
async def partitionable_nodes(
    settings: Settings, database_url: str, redis_prefix: str, world: WatchedWorld
) -> AsyncIterator[tuple[Node, Node, Storage, TcpProxy]]:
    """Node A (its Redis behind a proxy) and node B, over one database and Redis prefix."""
    settings = replace(settings, lease_seconds=TTL, passivate_after=3600.0)
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(open_tcp_proxy("127.0.0.1", 6379))
        a_storage = await stack.enter_async_context(
            open_real_storage(
                database_url,
                redis_prefix=redis_prefix,
                redis_url=with_port(REDIS_URL, proxy.port),
                redis_op_timeout=0.5,
            )
        )
        b_storage = await stack.enter_async_context(
            open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False)
        )
        nodes = []
        for name, storage in (("node-a", a_storage), ("node-b", b_storage)):
            gateway = await stack.enter_async_context(open_gateway(settings, world=world))
            nodes.append(
                await stack.enter_async_context(
                    open_node(
                        settings, storage, gateway, rng=random.Random(5), cluster=True, node_id=name
                    )
                )
            )
        yield nodes[0], nodes[1], b_storage, proxy


async def test_an_owner_cut_from_redis_stops_before_another_takes_over_then_stays_out(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    world = WatchedWorld()
    async with partitionable_nodes(settings, database_url, redis_prefix, world) as (
        a,
        b,
        storage,
        proxy,
    ):
        cid = await register(a)
        with trio.fail_after(10):
            await link(a, world, cid)
        # What A's actor writes through: fenced by the epoch A took with the lease.
        old = a.storage.fenced(cid, await a.storage.epochs.current(cid))
        await trio.sleep(TTL)  # renewed all along
        assert a.registry.lookup(cid) is not None and world.is_connected(cid)

        proxy.block()  # A is cut from Redis (live connections dropped, new ones refused)
        with trio.fail_after(TTL):
            while a.registry.lookup(cid) is not None:  # noqa: ASYNC110 -- real time, no event
                await trio.sleep(0.01)
        # A's session is closed while its lease still runs: nobody else may take it yet. (The
        # registry forgets the actor a moment before the gateway has closed the session.)
        with trio.fail_after(TTL / 3):
            while world.is_connected(cid):  # noqa: ASYNC110 -- real time, no event
                await trio.sleep(0.01)
        assert await storage.leases.holder(cid) == "node-a"

        with trio.fail_after(TTL * 2):
            while await b.place(cid) is not None:  # noqa: ASYNC110 -- the lease expires
                await trio.sleep(0.05)
        await b.registry.activate(cid)
        with trio.fail_after(10):
            while not world.is_connected(cid):  # noqa: ASYNC110 -- real time, no event
                await trio.sleep(0.01)

        # The old owner's handle can no longer write (nor read as if it still owned it).
        await b.storage.companies.update(cid, last_error="B owns it")
        with pytest.raises(StaleEpoch):
            await old.companies.update(cid, last_error="A, after the takeover")
        with pytest.raises(StaleEpoch):
            await old.messages.record_inbound(cid, "A-LATE", "79005550000", "late")

        proxy.allow()  # healed: A learns the salon is B's and does not run it again
        with trio.fail_after(10):
            while True:
                try:
                    holder = await a.place(cid)
                    break
                except StorageError:
                    await trio.sleep(0.05)  # A's Redis client reconnecting
        assert holder == "node-b"
        await trio.sleep(TTL / 2)  # two renewal rounds of A
        assert a.registry.lookup(cid) is None
        assert b.registry.lookup(cid) is not None and world.is_connected(cid)
        assert world.overlaps == 0
        company = await storage.companies.get(cid)
        assert company is not None and company.last_error == "B owns it"
        assert await storage.messages.get_by_wa_id(cid, "A-LATE") is None
