"""Redis losing the cluster's keys under two running nodes (a restart without persistence, or
its clock jumping past every TTL) never gives one salon two WhatsApp sessions (issue 13).

In-memory twins under MockClock, with :class:`~tests.test_lease_loss.WatchedWorld` counting
sessions that attach while another one of the same company is still connected. The loss is
made through the public lease API: both membership keys deleted (a clock jump), and also the
claim (a restart that lost everything). Node B heartbeats first: before the fix it recreated
its key, saw A gone and took A's salon while A still ran it (two sessions until A's next
heartbeat, or until the epoch fencing refused A's first write).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio
import trio.testing

from config import Settings
from tests.support.cluster import winning_name
from tests.support.databases import open_real_storage
from tests.support.startup import store_linked

from .test_company_actor import link
from .test_lease_loss import TICK, TTL, WatchedWorld, two_nodes, until
from .test_placement import quiet_settings, serving, start_node, until_async


@pytest.mark.parametrize("claims_lost", [False, True], ids=["clock-jump", "flush"])
async def test_no_two_sessions_when_redis_loses_the_membership_keys(
    settings: Settings, autojump_clock: trio.testing.MockClock, claims_lost: bool
) -> None:
    world = WatchedWorld()
    async with two_nodes(settings, world) as (a, b, _, storage, cid):
        assert a.placement is not None and b.placement is not None
        await link(a, world, cid)
        await trio.sleep(TTL)
        assert world.is_connected(cid) and await storage.leases.holder(cid) == a.node_id

        lost_at = trio.current_time()
        changes: list[tuple[float, bool]] = []  # (seconds after the loss, session connected)

        async def watch() -> None:
            connected = True
            while True:
                if world.is_connected(cid) != connected:
                    connected = not connected
                    changes.append((trio.current_time() - lost_at, connected))
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            for node in (a.node_id, b.node_id):
                await storage.leases.leave(node)
            if claims_lost:
                await storage.leases.release(cid, a.node_id)
            await b.placement.membership.beat()  # B heartbeats first
            await trio.sleep(TTL * 4)
            nursery.cancel_scope.cancel()

        assert world.overlaps == 0  # never two sessions of the salon at once
        assert b.placement.membership.lapses == 1 and a.placement.membership.lapses == 1
        # A stopped the session at its next heartbeat; it came back on A (which wins it) once
        # every node had had a TTL to count itself out, and stayed up: no bounce through B.
        assert [up for _, up in changes] == [False, True]
        (down, _), (back, _) = changes
        assert down <= TICK + 0.5
        assert back <= TICK + TTL + TICK + 1.0
        assert world.is_connected(cid)
        assert a.registry.lookup(cid) is not None and b.registry.lookup(cid) is None
        assert await storage.leases.holder(cid) == a.node_id
        assert set(await storage.leases.members()) == {a.node_id, b.node_id}
        print(f"session down {down:.2f} s after the loss, back after {back:.2f} s")


async def test_no_two_sessions_when_real_redis_is_flushed_under_two_nodes(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """The same on real PostgreSQL + Redis, in real time (a 1.2 s member TTL): every key under
    the test's own Redis prefix is deleted (a restart without persistence, as far as the
    cluster can tell) while A runs the salon. The salon never has two sessions, and it runs on
    A (its winner), alone, once both nodes rejoined."""
    ttl = 1.2
    settings = replace(quiet_settings(settings), member_ttl=ttl)
    world = WatchedWorld()
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 9700)
        a = await start_node(nursery, settings, storage, world, winning_name(cid, "a", ["b"]))
        b = await start_node(nursery, settings, storage, world, "b")
        await until_async(lambda: serving([a, b], world, [cid]), 10)
        assert a.running(cid)
        assert storage.redis is not None

        assert await storage.redis.delete_prefixed() > 0  # only this test's prefix
        a_placement, b_placement = a.node.placement, b.node.placement
        assert a_placement is not None and b_placement is not None
        await b_placement.membership.beat()  # B heartbeats first
        await until(lambda: a_placement.membership.lapses > 0, 10 * ttl)
        await until_async(lambda: serving([a, b], world, [cid]), 10 * ttl)
        assert world.overlaps == 0
        assert not b.running(cid)
        assert await storage.leases.holder(cid) == a.name
        await a.stop()
        await b.stop()
