"""Cluster placement on the in-memory twins under MockClock (and the heartbeat's Redis traffic
on real Redis): membership heartbeats cost one call per tick whatever the number of salons,
salons are placed by rendezvous hashing (a join or a leave moves only its share), a killed
node's salons are served elsewhere within one member TTL and a tick, a graceful stop hands
them over in well under 3 s without losing a queued message, and across a schedule of joins,
leaves, kills and partitions no salon ever has two owners."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import pytest
import trio
import trio.testing

from actors import EVENTS_LOGGER, MEMBER_TTL, Node, open_node
from actors._placement import rendezvous
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from config import SendPacing, Settings
from storage import Storage, open_storage
from tests.support.cluster import WatchedLeases, winning_name
from tests.support.databases import open_real_storage
from tests.support.startup import Starts, counted_starts, store_linked

from .test_lease_loss import WatchedWorld, until

T = TypeVar("T")
TICK = MEMBER_TTL / 3


@dataclass
class Running:
    """A node running in its own task: ``kill`` ends it as kill -9 would (nothing it says
    reaches Redis any more, its sessions drop), ``stop`` as a graceful shutdown."""

    node: Node
    leases: WatchedLeases
    scope: trio.CancelScope
    done: trio.Event

    @property
    def name(self) -> str:
        return self.node.node_id

    def owned(self) -> set[int]:
        assert self.node.placement is not None
        return set(self.node.placement.owned)

    def running(self, company_id: int) -> bool:
        return self.node.registry.lookup(company_id) is not None

    async def kill(self) -> None:
        self.leases.cut = True
        self.scope.cancel()
        await self.done.wait()

    async def stop(self) -> None:
        self.scope.cancel()  # the node's context exits: Placement.leave hands over first
        await self.done.wait()


async def start_node(
    nursery: trio.Nursery,
    settings: Settings,
    storage: Storage,
    world: SimulatedWorld,
    name: str,
    *,
    restore: bool = True,
) -> Running:
    """Open node ``name`` (its own view of the leases) in a task of ``nursery``."""

    async def run(task_status: trio.TaskStatus[Running]) -> None:
        leases = WatchedLeases(storage.leases)
        done = trio.Event()
        try:
            with trio.CancelScope() as scope:
                async with (
                    open_gateway(settings, world=world) as gateway,
                    open_node(
                        settings,
                        replace(storage, leases=leases),
                        gateway,
                        rng=random.Random(name),
                        cluster=True,
                        node_id=name,
                        restore=restore,
                    ) as node,
                ):
                    task_status.started(Running(node, leases, scope, done))
                    await trio.sleep_forever()
        finally:
            done.set()

    running: Running = await nursery.start(run)
    return running


def quiet_settings(settings: Settings) -> Settings:
    return replace(settings, passivate_after=3600.0)


async def serving(nodes: list[Running], world: SimulatedWorld, companies: list[int]) -> bool:
    """Whether every company runs on the node that wins it among ``nodes``, session live."""
    names = [n.name for n in nodes]
    for company_id in companies:
        winner = next(n for n in nodes if n.name == rendezvous(company_id, names))
        if not (company_id in winner.owned() and winner.running(company_id)):
            return False
        if not world.is_connected(company_id):
            return False
    return True


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Wait (bounded, mock clock) until ``await check()``; returns how long it took."""
    started = trio.current_time()
    with trio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 -- the actors' state has no event
            await trio.sleep(0.01)
    return trio.current_time() - started


# -- rendezvous ------------------------------------------------------------------------------


def test_a_join_or_a_leave_moves_only_its_share() -> None:
    companies = range(1, 3001)
    three = ["node-a", "node-b", "node-c"]
    before = {c: rendezvous(c, three) for c in companies}
    for node in three:  # an even share each, within 10 %
        assert abs(list(before.values()).count(node) - 1000) < 100

    joined = {c: rendezvous(c, [*three, "node-d"]) for c in companies}
    moved = [c for c in companies if joined[c] != before[c]]
    assert all(joined[c] == "node-d" for c in moved)  # only to the newcomer
    assert 0.2 * len(companies) < len(moved) < 0.3 * len(companies)  # about a quarter

    left = {c: rendezvous(c, ["node-a", "node-c"]) for c in companies}
    moved = [c for c in companies if left[c] != before[c]]
    assert all(before[c] == "node-b" for c in moved)  # only what the leaver owned
    assert sorted(moved) == sorted(c for c in companies if before[c] == "node-b")
    assert rendezvous(1, []) is None


async def test_a_node_joining_or_leaving_moves_only_its_share_of_running_salons(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """Salons that stay where they are keep their actor (their epoch does not change); each
    salon that moves is taken once (its epoch bumped once)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 60, 11000)

        async def epochs() -> dict[int, int]:
            return {c: await storage.epochs.current(c) for c in ids}

        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, "node-b")
        await until_async(lambda: serving([a, b], world, ids), 30)
        before = await epochs()

        c = await start_node(nursery, settings, storage, world, "node-c")
        await until_async(lambda: serving([a, b, c], world, ids), 10)
        joined = await epochs()
        to_c = {i for i in ids if rendezvous(i, ["node-a", "node-b", "node-c"]) == "node-c"}
        assert 10 < len(to_c) < 30
        assert {i for i in ids if joined[i] != before[i]} == to_c
        assert all(joined[i] == before[i] + 1 for i in to_c)

        await b.stop()
        await until_async(lambda: serving([a, c], world, ids), 3)
        left = await epochs()
        from_b = {i for i in ids if rendezvous(i, ["node-a", "node-b", "node-c"]) == "node-b"}
        assert {i for i in ids if left[i] != joined[i]} == from_b
        assert all(left[i] == joined[i] + 1 for i in from_b)
        assert world.overlaps == 0
        await a.stop()
        await c.stop()


# -- renewal traffic ---------------------------------------------------------------------------


async def calls_in_30_ticks(settings: Settings, salons: int) -> dict[str, int]:
    """The leases calls of a node owning ``salons`` active salons in 30 heartbeat periods."""
    world = SimulatedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, salons, 5000)
        node = await start_node(nursery, settings, storage, world, "node-a")
        await node.node.restore_done()
        assert node.node.restored == salons and node.owned() == set(ids)
        beats = node.leases.calls["heartbeat"]
        await until(lambda: node.leases.calls["heartbeat"] > beats, TICK * 2, step=0.001)
        before = dict(node.leases.calls)  # just after a heartbeat: 30 more in 30.5 ticks
        await trio.sleep(TICK * 30.5)
        assert all(node.running(c) for c in ids)
        calls = {k: v - before.get(k, 0) for k, v in node.leases.calls.items()}
        await node.stop()
    return {k: v for k, v in calls.items() if v}


async def test_heartbeat_calls_per_tick_do_not_grow_with_salons(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    settings = quiet_settings(settings)
    # one heartbeat a tick, nothing per salon (no claim, no renewal), for 3 or 120 salons
    assert await calls_in_30_ticks(settings, 3) == {"heartbeat": 30}
    assert await calls_in_30_ticks(settings, 120) == {"heartbeat": 30}


async def test_heartbeat_redis_operations_do_not_grow_with_salons(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """The same on real Redis, counting every command the node's Redis client sends while it
    owns 40 active salons (real time: a 1.2 s TTL, so a heartbeat every 0.4 s)."""
    settings = replace(quiet_settings(settings), member_ttl=1.2)
    world = SimulatedWorld()
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 40, 6000)
        node = await start_node(nursery, settings, storage, world, "node-a")
        await node.node.restore_done()
        assert node.owned() == set(ids)
        backend = storage.redis
        assert backend is not None
        commands: list[str] = []
        call = backend.call

        async def counted(request: Awaitable[T]) -> T:
            commands.append(type(request).__name__)
            return await call(request)

        backend.call = counted  # type: ignore[method-assign]
        beats = node.leases.calls["heartbeat"]
        await trio.sleep(2.0)
        beats = node.leases.calls["heartbeat"] - beats
        backend.call = call  # type: ignore[method-assign]
        assert 3 <= beats <= 6
        assert len(commands) == beats  # one EVALSHA per heartbeat, none per salon
        await node.stop()


# -- failover -----------------------------------------------------------------------------------


async def test_a_killed_node_salons_are_served_elsewhere_within_a_ttl_and_a_tick(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 24, 7000)
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, "node-b")
        await until_async(lambda: serving([a, b], world, ids), 30)
        theirs = sorted(a.owned())
        assert theirs and b.owned() and not a.owned() & b.owned()

        assert a.node.placement is not None
        last_beat = a.node.placement.membership.beaten
        assert last_beat is not None
        await a.kill()
        await until_async(lambda: serving([b], world, ids), MEMBER_TTL * 3)
        failover = trio.current_time() - last_beat
        print(f"failover after kill: {failover:.2f} s (member TTL {MEMBER_TTL} s)")
        assert failover <= MEMBER_TTL + TICK + 0.5
        assert world.overlaps == 0
        await b.stop()


async def test_a_rebalance_activates_as_many_salons_at_once_as_its_setting(
    settings: Settings, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed node's salons are started by the survivor ``rebalance_concurrency`` at a time
    (``AIADMIN_REBALANCE_CONCURRENCY``), not the start-up restore's ``restore_concurrency``."""
    settings = replace(quiet_settings(settings), restore_concurrency=2, rebalance_concurrency=5)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 40, 15000)
        with counted_starts(monkeypatch, Starts()) as starts:
            a = await start_node(nursery, settings, storage, world, "node-a")
            b = await start_node(nursery, settings, storage, world, "node-b")
            await until_async(lambda: serving([a, b], world, ids), 30)
            theirs = b.owned()
            assert len(theirs) > 10
            starts.delay, starts.most = 1.0, 0
            await b.kill()
            took = await until_async(lambda: serving([a], world, ids), MEMBER_TTL * 4)
            assert starts.most == 5  # never more at once, and no fewer while salons wait
            assert set(starts.calls) >= theirs
            print(f"{len(theirs)} salons taken over in {took:.1f} s, 5 at a time")
        assert world.overlaps == 0
        await a.stop()


async def test_a_graceful_stop_hands_over_in_under_3_s_and_loses_no_queued_message(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    # Paced: the three messages of each salon take 4 s to go out, so the stop lands mid-way.
    settings = replace(
        quiet_settings(settings), pacing=SendPacing(min_gap=2.0, jitter=0.0, per_minute=600)
    )
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 16, 8000)
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, "node-b")
        await until_async(lambda: serving([a, b], world, ids), 30)
        theirs = sorted(a.owned())
        assert theirs
        for company_id in theirs:
            for n in range(3):
                await a.node.company(company_id).ask(m.SendText("79005550000", f"visit {n}"))
        await trio.sleep(1.0)
        assert all(len(world.delivered(c)) == 1 for c in theirs)  # one out, two waiting

        stopped = trio.current_time()
        await a.stop()
        handover = await until_async(lambda: serving([b], world, ids), 10)
        handover = trio.current_time() - stopped
        print(f"graceful handover: {handover:.3f} s")
        assert handover < 3.0
        await until(lambda: all(len(world.delivered(c)) == 3 for c in theirs), 30)
        await trio.sleep(10)
        for company_id in theirs:
            sent = world.delivered(company_id)
            assert sorted(d.text for d in sent) == ["visit 0", "visit 1", "visit 2"]
            assert len({d.message_id for d in sent}) == 3
        assert world.overlaps == 0
        await b.stop()


async def test_a_move_logs_ownership_moved_once_on_each_side_and_a_first_take_nothing(
    settings: Settings, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The operators' log: a salon's first owner logs nothing; a join that moves it logs one
    ``ownership_moved`` on the node that handed it over and one on the node that took it (with
    the new epoch); a graceful stop moving it back does the same."""
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    settings = quiet_settings(settings)
    world = WatchedWorld()

    def moved() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == EVENTS_LOGGER and r.getMessage().startswith("event=ownership_moved")
        ]

    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 14000)
        c_name = winning_name(cid, "node-c", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a")
        await until_async(lambda: serving([a], world, [cid]), 10)
        assert await storage.epochs.current(cid) == 1
        assert moved() == []  # a first-ever take is no move

        c = await start_node(nursery, settings, storage, world, c_name)
        await until_async(lambda: serving([a, c], world, [cid]), 10)
        await trio.sleep(TICK)
        assert sorted(moved()) == sorted(
            [
                f"event=ownership_moved company_id={cid} from_node=node-a reason=handover"
                " request_id=-",
                f"event=ownership_moved company_id={cid} to_node={c_name} epoch=2 request_id=-",
            ]
        )

        caplog.clear()
        await c.stop()
        await until_async(lambda: serving([a], world, [cid]), 3)
        await trio.sleep(TICK)
        assert sorted(moved()) == sorted(
            [
                f"event=ownership_moved company_id={cid} from_node={c_name} reason=leave"
                " request_id=-",
                f"event=ownership_moved company_id={cid} to_node=node-a epoch=3 request_id=-",
            ]
        )
        assert world.overlaps == 0
        await a.stop()


async def test_a_node_back_within_its_ttl_gives_up_claims_it_no_longer_wins(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A counted itself out (cut from Redis past two thirds of its TTL) but is back before its
    membership expired; meanwhile C joined and wins the salon. A's claim, left in Redis when
    A stopped the actor, is given back at once: C serves the salon while A is still a member."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 12000)
        c_name = winning_name(cid, "node-c", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a")
        await until_async(lambda: serving([a], world, [cid]), 10)
        assert a.node.placement is not None
        beaten = a.node.placement.membership.beaten
        assert beaten is not None
        a.leases.cut = True
        await until(lambda: not a.running(cid), MEMBER_TTL)  # counted out: actor stopped
        c = await start_node(nursery, settings, storage, world, c_name)
        assert await storage.leases.holder(cid) == "node-a"  # C waits for it
        await trio.sleep_until(beaten + MEMBER_TTL * 5 / 6)  # before A's membership expires
        a.leases.cut = False
        a.node.placement.membership.poke()
        healed = trio.current_time()
        await until_async(lambda: serving([a, c], world, [cid]), TICK * 2)
        assert trio.current_time() - healed < TICK * 1.5
        assert "node-a" in await storage.leases.members()
        assert await storage.leases.holder(cid) == c_name
        assert world.overlaps == 0
        await a.stop()
        await c.stop()


async def test_an_actor_started_for_a_salon_owned_elsewhere_does_not_linger(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """An activation without a message (one that raced a handover) of a salon another node
    owns is stopped within a second; when this node later wins the salon it runs it for real
    (its session connects), not that empty actor."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 13000)
        b_name = winning_name(cid, "node-b", ["node-a"])
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, b_name)
        await until_async(lambda: serving([a, b], world, [cid]), 10)
        await a.node.registry.activate(cid)  # refuses: B owns it
        assert a.running(cid)
        await until(lambda: not a.running(cid), 1.5)
        await b.stop()
        await until_async(lambda: serving([a], world, [cid]), 3)
        assert world.overlaps == 0
        await a.stop()


async def test_company_claimed_by_a_live_member_is_not_restored_here(
    settings: Settings, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        [cid] = await store_linked(storage, world, 1, 4242)
        other = winning_name(cid, "node-b", ["node-a"])
        await storage.leases.heartbeat(other, "http://10.0.0.2:3000", 3600)
        async with trio.open_nursery() as nursery:
            a = await start_node(nursery, settings, storage, world, "node-a")
            await a.node.restore_done()
            assert a.node.restored == 0 and a.node.restore.elsewhere == 1
            assert not a.running(cid)
            assert await a.node.place(cid) == other
            assert a.node.placement is not None
            assert a.node.placement.address_of(other) == "http://10.0.0.2:3000"
            assert a.node.placement.address_of("node-a") == settings.advertise_url
            assert await a.node.placement.owner_of(cid) == other
            # The other member leaves: A's next heartbeat sees it and A takes the salon.
            await storage.leases.leave(other)
            await until(lambda: a.running(cid) and world.is_connected(cid), TICK * 2)
            assert await storage.leases.holder(cid) == "node-a"
            assert a.node.placement.address_of(other) is None
            await a.stop()
        assert await storage.leases.holder(cid) is None  # released when the node stopped
        assert await storage.leases.members() == {}


# -- never two owners ---------------------------------------------------------------------------


async def test_no_salon_has_two_owners_across_joins_leaves_kills_and_partitions(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    settings = quiet_settings(settings)
    world = WatchedWorld()
    violations: list[str] = []
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 30, 10000)
        nodes: list[Running] = []

        async def watch() -> None:
            while True:
                seen: dict[int, str] = {}
                for node in nodes:
                    if node.done.is_set():
                        continue
                    for company_id in node.owned():
                        if company_id in seen:
                            violations.append(f"{company_id}: {seen[company_id]} and {node.name}")
                        seen[company_id] = node.name
                await trio.sleep(0.01)

        nursery.start_soon(watch)

        async def start(name: str) -> Running:
            node = await start_node(nursery, settings, storage, world, name)
            nodes.append(node)
            return node

        def live() -> list[Running]:
            return [n for n in nodes if not n.done.is_set()]

        async def settled(within: float) -> None:
            await until_async(lambda: serving(live(), world, ids), within)

        a = await start("node-a")
        await settled(10)
        b = await start("node-b")
        c = await start("node-c")
        await settled(10)
        await b.stop()  # graceful
        await settled(3)
        await a.kill()
        await settled(MEMBER_TTL + TICK + 1)
        d = await start("node-d")
        await settled(10)
        c.leases.cut = True  # partitioned: d takes everything once c is gone
        await until_async(lambda: serving([d], world, ids), MEMBER_TTL * 2)
        c.leases.cut = False  # healed: c gets its share back
        await settled(MEMBER_TTL * 2)
        await c.stop()
        await settled(3)
        await d.stop()
        nursery.cancel_scope.cancel()
    assert violations == []
    assert world.overlaps == 0
