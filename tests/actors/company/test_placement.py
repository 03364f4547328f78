"""Lease placement in one node (``cluster=True``) on the in-memory twins, under MockClock:
the lease is kept past its TTL while the actor lives, released once it passivated, and a
company leased by another node is neither activated here nor restored."""

from __future__ import annotations

import random
from dataclasses import replace

import trio
import trio.testing

from actors import LEASE_TTL, open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from config import Settings
from storage import open_storage

from .test_company_actor import link, register


async def test_lease_renewed_while_active_released_after_passivation(
    settings: Settings, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    settings = replace(settings, passivate_after=120.0)
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, cluster=True, node_id="node-a") as node,
    ):
        created = await storage.companies.create(4242, title="Салон")
        cid = created.company.id
        assert await node.place(cid) is None
        await node.registry.activate(cid)
        await trio.sleep(LEASE_TTL * 3)  # renewed every 10 s: still ours
        assert node.registry.lookup(cid) is not None
        assert await storage.leases.holder(cid) == "node-a"
        assert await storage.leases.acquire(cid, "node-b", LEASE_TTL) == "node-a"
        await trio.sleep(settings.passivate_after * 3)  # idle: passivated, lease given back
        assert node.registry.lookup(cid) is None
        assert await storage.leases.holder(cid) is None


async def test_company_leased_elsewhere_is_not_restored_here(
    settings: Settings, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
    ):
        async with open_node(settings, storage, gateway, rng=random.Random(1)) as alone:
            cid = await register(alone)
            await link(alone, world, cid)
        assert await storage.leases.acquire(cid, "node-b", LEASE_TTL) == "node-b"
        async with open_node(
            settings, storage, gateway, cluster=True, node_id="node-a", rng=random.Random(1)
        ) as node:
            await node.restore_done()
            assert node.restored == 0
            assert node.restore.elsewhere == 1
            assert node.registry.lookup(cid) is None
            assert await node.place(cid) == "node-b"
        # Without the other node's lease, the same node restores it (today's behaviour).
        assert await storage.leases.release(cid, "node-b")
        async with open_node(settings, storage, gateway, cluster=True, node_id="node-a") as node:
            await node.restore_done()
            assert node.restored == 1
            assert node.registry.lookup(cid) is not None
            assert await storage.leases.holder(cid) == "node-a"
        assert await storage.leases.holder(cid) is None  # released when the node stopped
