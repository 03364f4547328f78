"""No split brain in cluster mode, under MockClock on the in-memory twins: an owner that cannot
renew its lease stops the company's actor (and WhatsApp session) before the lease can expire,
and an owner that lost its lease without noticing has its writes refused and stops.

Both nodes share one storage and one simulated WhatsApp (the phone's account is one); node A
sees Redis through :class:`Partition`, which refuses every lease call while ``cut``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import trio
import trio.testing

from actors import Node, open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.whatsapp._world import Sink, WorldConnection
from config import Settings
from storage import Leases, Storage, StorageUnavailable, open_storage

from .test_company_actor import link, register

TTL = 30.0


async def until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    """Wait (bounded, on the mock clock) until ``check()`` holds; the actors' state and the
    simulated phone have no event to wait on."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 -- polling state that has no event
            await trio.sleep(step)


class Partition:
    """:class:`storage.Leases` as a node cut from Redis sees them while ``cut``."""

    def __init__(self, inner: Leases) -> None:
        self.inner = inner
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise StorageUnavailable("redis", "partitioned (test)")

    async def acquire(self, company_id: int, owner: str, ttl: float) -> str:
        self._check()
        return await self.inner.acquire(company_id, owner, ttl)

    async def renew(self, company_id: int, owner: str, ttl: float) -> bool:
        self._check()
        return await self.inner.renew(company_id, owner, ttl)

    async def release(self, company_id: int, owner: str) -> bool:
        self._check()
        return await self.inner.release(company_id, owner)

    async def holder(self, company_id: int) -> str | None:
        self._check()
        return await self.inner.holder(company_id)


class WatchedWorld(SimulatedWorld):
    """The simulated WhatsApp, counting sessions that attach while another one of the same
    company is still connected (two processes running one account)."""

    def __init__(self) -> None:
        super().__init__()
        self.overlaps = 0

    def attach(self, company_id: int, sink: Sink) -> WorldConnection:
        if self.is_connected(company_id):
            self.overlaps += 1
        return super().attach(company_id, sink)


@asynccontextmanager
async def two_nodes(
    settings: Settings, world: SimulatedWorld
) -> AsyncIterator[tuple[Node, Node, Partition, Storage]]:
    settings = replace(settings, lease_seconds=TTL, passivate_after=3600.0)
    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_storage(monotonic_clock=trio.current_time))
        partition = Partition(storage.leases)
        nodes = []
        for name, seen in (("node-a", replace(storage, leases=partition)), ("node-b", storage)):
            gateway = await stack.enter_async_context(open_gateway(settings, world=world))
            nodes.append(
                await stack.enter_async_context(
                    open_node(
                        settings, seen, gateway, rng=random.Random(3), cluster=True, node_id=name
                    )
                )
            )
        yield nodes[0], nodes[1], partition, storage


async def test_an_owner_that_cannot_renew_stops_its_actor_before_the_lease_expires(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    world = WatchedWorld()
    async with two_nodes(settings, world) as (a, b, partition, storage):
        cid = await register(a)
        await link(a, world, cid)
        await trio.sleep(TTL * 3)  # renewed all along: still A's, session live
        assert a.registry.lookup(cid) is not None and world.is_connected(cid)
        assert await storage.leases.holder(cid) == "node-a"

        cut_at = trio.current_time()
        partition.cut = True
        await until(lambda: a.registry.lookup(cid) is None, TTL)
        stopped_after = trio.current_time() - cut_at
        # Stopped, session closed, while A's lease was still valid: no one else could run it.
        assert not world.is_connected(cid)
        assert await storage.leases.holder(cid) == "node-a"
        assert stopped_after < TTL * 2 / 3 + 1.0
        assert b.registry.lookup(cid) is None

        # Once the lease expired, B takes the company over and restores its session.
        with trio.fail_after(TTL):
            while await b.place(cid) is not None:  # noqa: ASYNC110 -- the lease expires
                await trio.sleep(0.5)
        await b.registry.activate(cid)
        await until(lambda: world.is_connected(cid), 10)
        assert world.overlaps == 0

        # Healed: A learns the company is B's and does not run it again.
        partition.cut = False
        assert await a.place(cid) == "node-b"
        await trio.sleep(TTL)
        assert a.registry.lookup(cid) is None
        assert world.overlaps == 0
        assert await storage.leases.holder(cid) == "node-b"


async def test_an_owner_whose_lease_was_taken_has_its_writes_refused_and_stops(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A lost its lease without noticing (it was paused; here the lease is simply handed to B):
    the first write A's actor makes is refused, changes nothing, and A's actor stops."""
    world = WatchedWorld()
    async with two_nodes(settings, world) as (a, b, _, storage):
        cid = await register(a)
        await link(a, world, cid)
        old_epoch = await storage.epochs.current(cid)
        assert await storage.leases.release(cid, "node-a")  # A's lease ran out unseen
        assert await b.place(cid) is None  # B takes it: a new epoch
        assert await storage.epochs.current(cid) == old_epoch + 1
        await storage.companies.update(cid, last_error="B's state")

        message_id = world.send_inbound(cid, "79005550000", "still there?")
        # long before A's next renewal would notice
        await until(lambda: a.registry.lookup(cid) is None, TTL / 5, step=0.01)
        assert not world.is_connected(cid)
        assert await storage.messages.get_by_wa_id(cid, message_id) is None
        company = await storage.companies.get(cid)
        assert company is not None and company.last_error == "B's state"
        assert a.placement is not None and cid not in a.placement.owned
        assert await a.place(cid) == "node-b"
