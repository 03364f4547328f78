"""Cluster placement through a Redis blip (in-memory twins, MockClock): a claim whose answer
was lost still reaches its winner, and a salon a rebalance could not take because Redis failed
once is tried again at the next tick rather than left without an owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
import trio
import trio.testing

from actors._placement import Placement
from config import Settings
from storage import LeaseEpochs, StorageUnavailable, open_storage
from tests.support.cluster import winning_name
from tests.support.startup import store_linked

from .test_lease_loss import WatchedWorld
from .test_placement import TICK, Running, quiet_settings, serving, start_node, until_async


def fail_next_claim(running: Running, *, after_it_ran: bool) -> None:
    """The node's next claim fails as a Redis blip does: before it reached Redis, or (with
    ``after_it_ran``) after Redis ran it but before its answer came back (a timeout)."""
    leases = running.leases
    real = leases.claim

    async def blip(company_id: int, node: str) -> str | None:
        leases.claim = real  # type: ignore[method-assign]
        if after_it_ran:
            await real(company_id, node)
        raise StorageUnavailable("redis", "no answer (test)")

    leases.claim = blip  # type: ignore[method-assign]


def fail_next_claim_many(running: Running) -> None:
    """The node's next batch of claims (a take-over's) fails as a Redis blip does, before it
    reached Redis."""
    leases = running.leases
    real = leases.claim_many

    async def blip(company_ids: Sequence[int], node: str) -> dict[int, str] | None:
        leases.claim_many = real  # type: ignore[method-assign]
        raise StorageUnavailable("redis", "no answer (test)")

    leases.claim_many = blip  # type: ignore[method-assign]


class SlowEpochs:
    """:class:`storage.LeaseEpochs` whose takes wait a second first (a loaded database)."""

    def __init__(self, inner: LeaseEpochs) -> None:
        self.inner = inner

    async def take(self, company_id: int) -> int:
        await trio.sleep(1.0)
        return await self.inner.take(company_id)

    async def current(self, company_id: int) -> int:
        return await self.inner.current(company_id)


async def test_a_claim_whose_answer_was_lost_is_handed_to_its_winner(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A's claim ran in Redis but A never heard back, so A does not know it holds it. B wins
    the salon: A gives the claim back and B serves the salon within two ticks (it used to wait
    until A left the cluster)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 14000)
        b_name = winning_name(cid, "node-b", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a", restore=False)
        fail_next_claim(a, after_it_ran=True)
        with pytest.raises(StorageUnavailable):
            await a.node.place(cid)
        assert await storage.leases.holder(cid) == "node-a"  # A holds it without knowing
        assert cid not in a.owned()
        b = await start_node(nursery, settings, storage, world, b_name)
        await until_async(lambda: serving([a, b], world, [cid]), TICK * 4)
        assert await storage.leases.holder(cid) == b_name
        assert world.overlaps == 0
        await a.stop()
        await b.stop()


async def test_a_salon_a_rebalance_could_not_take_is_tried_again_next_tick(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """B, the owner, is killed; A's rebalance meets a Redis blip on its batch of claims and
    again on that salon's own claim. A tries again at its next tick and serves it (it used to
    stay without an owner until the members changed again)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 15000)
        b_name = winning_name(cid, "node-b", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, b_name)
        await until_async(lambda: serving([a, b], world, [cid]), 10)
        fail_next_claim_many(a)
        fail_next_claim(a, after_it_ran=False)
        await b.kill()
        await until_async(lambda: serving([a], world, [cid]), 6.0 + TICK * 3)
        assert world.overlaps == 0
        await a.stop()


async def test_a_graceful_stop_waits_for_a_take_in_flight_before_leaving(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A is taking a salon it wins (its epoch bump slow in PostgreSQL) when it is stopped. The
    take ends before A leaves, so B, which wins the salon then, takes the last epoch: its actor
    can write (a late bump from A used to fence B's actor out, leaving the salon ownerless)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 16000)
        a_name = winning_name(cid, "node-a", ["node-b"])
        a = await start_node(nursery, settings, storage, world, a_name, restore=False)
        b = await start_node(nursery, settings, storage, world, "node-b", restore=False)
        assert a.node.placement is not None and b.node.placement is not None
        a_placement = a.node.placement
        a_placement.storage = replace(storage, leases=a.leases, epochs=SlowEpochs(storage.epochs))
        nursery.start_soon(a_placement.place, cid)
        await trio.sleep(0.1)
        assert cid in a_placement._taking
        await a.stop()
        b_placement = b.node.placement
        await until_async(lambda: serving([b], world, [cid]), TICK * 3)
        await trio.sleep(2.0)  # whatever A still had in flight has landed
        assert await storage.epochs.current(cid) == b_placement.owned[cid].epoch
        assert await storage.leases.holder(cid) == "node-b"
        await b.stop()


async def test_one_failed_heartbeat_does_not_cost_a_node_its_salons(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """With a network's few milliseconds per heartbeat, one heartbeat that fails (a Redis blip
    shorter than a heartbeat period) leaves the owner current: its actor and its session keep
    running (it used to count itself out and close every session it ran)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 17000)
        a = await start_node(nursery, settings, storage, world, "node-a")
        await until_async(lambda: serving([a], world, [cid]), 10)
        assert a.node.placement is not None
        leases = a.leases
        real = leases.heartbeat
        failures = [1]

        async def over_the_network(
            node: str, address: str, ttl: float, *, renew: bool = False, draining: bool = False
        ) -> dict[str, str]:
            await trio.sleep(0.005)
            if failures[0]:
                failures[0] -= 1
                raise StorageUnavailable("redis", "connection reset (test)")
            return await real(node, address, ttl, renew=renew, draining=draining)

        leases.heartbeat = over_the_network  # type: ignore[method-assign]
        await trio.sleep(TICK * 6)
        assert failures == [0]
        assert a.node.placement.stopped_owners == 0
        assert cid in a.owned() and a.running(cid) and world.is_connected(cid)
        await a.stop()


async def test_giving_back_a_stale_claim_does_not_drop_a_take_made_meanwhile(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A holds a claim it does not know about (a lost answer) for a salon B wins, and gives it
    back at its tick; while that release is on its way, B leaves A's view and a request makes A
    take the salon. The take waits for the release, so the salon A then runs is claimed in
    Redis by A (the release used to delete the claim of the take that just ran, leaving a
    running salon any node could claim)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 18000)
        b_name = winning_name(cid, "node-b", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a", restore=False)
        b = await start_node(nursery, settings, storage, world, b_name, restore=False)
        placement = a.node.placement
        assert placement is not None
        assert await storage.leases.claim(cid, "node-a") == "node-a"
        placement._stale.add(cid)  # as after a claim whose answer was lost
        leases = a.leases
        real = leases.release_all
        raced = trio.Event()

        async def release_all(company_ids: Sequence[int], node: str) -> int:
            if cid in company_ids and not raced.is_set():
                raced.set()
                b.leases.cut = True  # B dies: gone from Redis and from A's view, A wins
                await storage.leases.leave(b_name)
                placement.membership.members.pop(b_name)
                nursery.start_soon(placement.place, cid)
                await trio.sleep(0.05)  # the release is slow; the take runs meanwhile
            return await real(company_ids, node)

        leases.release_all = release_all  # type: ignore[method-assign]
        await until_async(lambda: _settled(placement, cid, raced), TICK * 2)
        assert cid in a.owned()
        assert await storage.leases.holder(cid) == "node-a"
        await a.stop()
        await b.kill()


async def _settled(placement: Placement, cid: int, raced: trio.Event) -> bool:
    await trio.sleep(0.2)
    return raced.is_set() and cid not in placement._taking and cid not in placement._moving


async def test_a_take_during_a_handover_of_the_same_salon_waits_for_it(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A salon this node wins again while its handover is still under way (the members changed
    back meanwhile): the take waits for the handover, then takes the salon (it used to raise
    NotImplementedError, a trio.Event asked for a truth value)."""
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 19000)
        a = await start_node(nursery, settings, storage, world, "node-a", restore=False)
        placement = a.node.placement
        assert placement is not None
        handover = placement._moving[cid] = trio.Event()  # its actor still stopping
        taken: list[str | None] = []

        async def take() -> None:
            taken.append(await placement.place(cid))

        nursery.start_soon(take)
        await trio.sleep(0.5)
        assert taken == []  # waits for the handover
        del placement._moving[cid]
        handover.set()
        await trio.sleep(0.1)
        assert taken == [None] and cid in a.owned()
        assert await storage.leases.holder(cid) == "node-a"
        await a.stop()
