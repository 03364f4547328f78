"""No split brain on real PostgreSQL + Redis: two nodes (each with its own connections) share
one salon; node A reaches Redis through a TCP proxy that cuts it off, then heals.

At no moment do both nodes run the salon's WhatsApp session (one simulated WhatsApp for both,
counting a session that attaches while another is connected), the old owner's writes after
the new owner took over are refused, and once healed A (which wins the salon) gets it back by
a handover.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import pytest
import trio

from actors import Node, open_node
from actors.whatsapp import open_gateway
from config import Settings
from storage import StaleEpoch, Storage
from tests.support.cluster import winning_name
from tests.support.databases import REDIS_URL, open_real_storage, with_port
from tests.support.proxy import TcpProxy, open_tcp_proxy

from .test_company_actor import link
from .test_lease_loss import WatchedWorld

TTL = 3.0  # seconds of membership: A gives up 2 s after its last heartbeat, a second before


@asynccontextmanager
async def partitionable_nodes(
    settings: Settings, database_url: str, redis_prefix: str, world: WatchedWorld
) -> AsyncIterator[tuple[Node, Node, Storage, TcpProxy, int]]:
    """Node A (its Redis behind a proxy) and node B, over one database and Redis prefix, and
    a registered salon that A wins while both are members."""
    settings = replace(settings, member_ttl=TTL, passivate_after=3600.0)
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
        cid = (await b_storage.companies.create(962302, title="Салон")).company.id
        nodes = []
        a_name = winning_name(cid, "node-a", ["node-b"])
        for name, storage in ((a_name, a_storage), ("node-b", b_storage)):
            gateway = await stack.enter_async_context(open_gateway(settings, world=world))
            nodes.append(
                await stack.enter_async_context(
                    open_node(
                        settings, storage, gateway, rng=random.Random(5), cluster=True, node_id=name
                    )
                )
            )
        yield nodes[0], nodes[1], b_storage, proxy, cid


async def wait_for(check: Callable[[], bool], timeout: float) -> None:
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 -- real time, no event
            await trio.sleep(0.01)


async def test_an_owner_cut_from_redis_stops_before_another_takes_over_then_gets_it_back(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    world = WatchedWorld()
    async with partitionable_nodes(settings, database_url, redis_prefix, world) as (
        a,
        b,
        storage,
        proxy,
        cid,
    ):
        with trio.fail_after(10):
            await link(a, world, cid)
        # What A's actor writes through: fenced by the epoch A took with the claim.
        old = a.storage.fenced(cid, await a.storage.epochs.current(cid))
        await trio.sleep(TTL)  # heartbeats all along
        assert a.registry.lookup(cid) is not None and world.is_connected(cid)

        proxy.block()  # A is cut from Redis (live connections dropped, new ones refused)
        await wait_for(lambda: a.registry.lookup(cid) is None, TTL)
        # A's session is closed while A is still a member: nobody else may take it yet. (The
        # registry forgets the actor a moment before the gateway has closed the session.)
        await wait_for(lambda: not world.is_connected(cid), TTL / 3)
        assert await storage.leases.holder(cid) == a.node_id
        assert b.registry.lookup(cid) is None

        # A's membership expires: B's heartbeat sees it gone, B restores the linked salon.
        await wait_for(lambda: b.registry.lookup(cid) is not None, TTL * 2)
        await wait_for(lambda: world.is_connected(cid), 10)
        assert await storage.leases.holder(cid) == "node-b"

        # The old owner's handle can no longer write (nor read as if it still owned it).
        await b.storage.companies.update(cid, last_error="B owns it")
        with pytest.raises(StaleEpoch):
            await old.companies.update(cid, last_error="A, after the takeover")
        with pytest.raises(StaleEpoch):
            await old.messages.record_inbound(cid, "A-LATE", "79005550000", "late")
        company = await storage.companies.get(cid)
        assert company is not None and company.last_error == "B owns it"

        # Healed: A is a member again and wins the salon; B hands it over first (stops its
        # actor, releases the claim), then A takes it under a newer epoch.
        epoch_b = await storage.epochs.current(cid)
        proxy.allow()
        await wait_for(lambda: a.registry.lookup(cid) is not None, TTL * 3)
        await wait_for(lambda: world.is_connected(cid), 10)
        assert b.registry.lookup(cid) is None
        assert await storage.leases.holder(cid) == a.node_id
        assert await storage.epochs.current(cid) > epoch_b
        with pytest.raises(StaleEpoch):
            await old.companies.update(cid, last_error="A's first incarnation, still stale")
        assert world.overlaps == 0
        assert await storage.messages.get_by_wa_id(cid, "A-LATE") is None
