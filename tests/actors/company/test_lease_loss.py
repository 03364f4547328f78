"""No split brain in cluster mode, under MockClock on the in-memory twins: an owner that cannot
heartbeat its membership stops the company's actor (and WhatsApp session) before the others
may count it gone, and an owner that lost its claim without noticing has its writes refused and
stops.

Both nodes share one storage and one simulated WhatsApp (the phone's account is one); node A
sees Redis through :class:`~tests.support.cluster.WatchedLeases`, which refuses every call while
``cut``. Node A is named so that it wins the salon while both are members.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import trio
import trio.testing

from actors import MEMBER_TTL, Node, open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.whatsapp._world import Sink, WorldConnection
from config import Settings
from storage import Storage, open_storage
from tests.support.cluster import WatchedLeases, winning_name

from .test_company_actor import link

TTL = MEMBER_TTL
TICK = TTL / 3


async def until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    """Wait (bounded, on the mock clock) until ``check()`` holds; the actors' state and the
    simulated phone have no event to wait on."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 -- polling state that has no event
            await trio.sleep(step)


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
) -> AsyncIterator[tuple[Node, Node, WatchedLeases, Storage, int]]:
    """Nodes A and B over one storage, and a salon (registered, not linked) that A wins."""
    settings = replace(settings, passivate_after=3600.0)
    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_storage(monotonic_clock=trio.current_time))
        cid = (await storage.companies.create(962302, title="Салон «Лотос»")).company.id
        partition = WatchedLeases(storage.leases)
        a_name = winning_name(cid, "node-a", ["node-b"])
        nodes = []
        for name, seen in ((a_name, replace(storage, leases=partition)), ("node-b", storage)):
            gateway = await stack.enter_async_context(open_gateway(settings, world=world))
            nodes.append(
                await stack.enter_async_context(
                    open_node(
                        settings, seen, gateway, rng=random.Random(3), cluster=True, node_id=name
                    )
                )
            )
        yield nodes[0], nodes[1], partition, storage, cid


async def test_an_owner_that_cannot_heartbeat_stops_its_actor_before_it_counts_as_gone(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    world = WatchedWorld()
    async with two_nodes(settings, world) as (a, b, partition, storage, cid):
        await link(a, world, cid)
        await trio.sleep(TTL * 3)  # heartbeats all along: still A's, session live
        assert a.registry.lookup(cid) is not None and world.is_connected(cid)
        assert await storage.leases.holder(cid) == a.node_id

        cut_at = trio.current_time()
        partition.cut = True
        await until(lambda: a.registry.lookup(cid) is None, TTL)
        stopped_after = trio.current_time() - cut_at
        # Stopped, session closed, while A was still a member: no one else could take it.
        assert not world.is_connected(cid)
        assert await storage.leases.holder(cid) == a.node_id
        assert a.node_id in await storage.leases.members()
        assert await b.place(cid) == a.node_id
        assert stopped_after < TTL * 2 / 3 + 1.0
        assert b.registry.lookup(cid) is None

        # Once A's membership expired, B's next heartbeat sees it gone and B restores the salon.
        await until(lambda: b.registry.lookup(cid) is not None and world.is_connected(cid), TTL)
        assert trio.current_time() - cut_at <= TTL + TICK + 0.5
        assert await storage.leases.holder(cid) == "node-b"
        assert world.overlaps == 0

        # Healed: A is a member again and wins the salon; B hands it over (stops, releases)
        # before A runs it, so the session never runs twice.
        partition.cut = False
        await until(lambda: a.registry.lookup(cid) is not None and world.is_connected(cid), TTL)
        assert b.registry.lookup(cid) is None
        assert await storage.leases.holder(cid) == a.node_id
        assert world.overlaps == 0


async def test_an_owner_whose_claim_was_taken_has_its_writes_refused_and_stops(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A lost its claim without noticing (it was paused past its membership; here its
    membership is simply ended under it and B takes the claim): the first write A's actor
    makes is refused, changes nothing, and A's actor stops."""
    world = WatchedWorld()
    async with two_nodes(settings, world) as (a, b, _, storage, cid):
        await link(a, world, cid)
        old_epoch = await storage.epochs.current(cid)
        assert b.placement is not None
        b.placement.restore = None  # B takes the claim only: its actor does not start
        assert await storage.leases.leave(a.node_id)  # A's membership ran out unseen
        assert await b.placement.membership.beat()
        assert await b.place(cid) is None  # B takes it: a new epoch
        assert await storage.leases.holder(cid) == "node-b"
        assert await storage.epochs.current(cid) == old_epoch + 1
        await storage.companies.update(cid, last_error="B's state")

        message_id = world.send_inbound(cid, "79005550000", "still there?")
        # long before A's next heartbeat could tell it anything
        await until(lambda: a.registry.lookup(cid) is None, TICK / 2, step=0.01)
        assert not world.is_connected(cid)
        assert await storage.messages.get_by_wa_id(cid, message_id) is None
        company = await storage.companies.get(cid)
        assert company is not None and company.last_error == "B's state"
        assert a.placement is not None and cid not in a.placement.owned
        assert world.overlaps == 0
