"""A graceful stop with a slow actor (issue 13): the node drains, so a salon whose actor is
still stopping stays its own (no second WhatsApp session elsewhere) while its other salons move
at once. In-memory twins under MockClock; :class:`~tests.test_lease_loss.WatchedWorld` counts
sessions that attach while another one of the same company is still connected."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.company import CompanyActor
from config import Settings
from storage import open_storage
from tests.support.cluster import winning_name
from tests.support.startup import store_linked

from .test_lease_loss import WatchedWorld
from .test_placement import quiet_settings, serving, start_node, until_async

SLOW_STOP = 5.0


async def test_a_slow_actor_delays_only_its_own_salon_and_never_runs_twice(
    settings: Settings, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 12, 8400)
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, "node-b")
        await until_async(lambda: serving([a, b], world, ids), 30)
        theirs = sorted(a.owned())
        assert len(theirs) >= 2
        slow = theirs[0]

        # The slow salon's actor takes SLOW_STOP to stop (its session still connected
        # meanwhile), the others stop at once.
        real_on_stop = CompanyActor.on_stop
        stopped_at: dict[int, float] = {}

        async def slow_on_stop(actor: CompanyActor) -> None:
            try:
                if actor.company_id == slow and slow not in stopped_at:
                    await trio.sleep(SLOW_STOP)
                await real_on_stop(actor)
            finally:
                stopped_at.setdefault(actor.company_id, trio.current_time())

        monkeypatch.setattr(CompanyActor, "on_stop", slow_on_stop)
        taken_at: dict[int, float] = {}

        async def watch_b() -> None:
            while True:
                for company_id in theirs:
                    if company_id not in taken_at and b.running(company_id):
                        taken_at[company_id] = trio.current_time()
                await trio.sleep(0.01)

        nursery.start_soon(watch_b)
        began = trio.current_time()
        nursery.start_soon(a.stop)
        await until_async(lambda: serving([b], world, ids), 20)
        await trio.sleep(0.05)  # the watcher's next look

        assert world.overlaps == 0  # never two sessions of one salon
        assert taken_at[slow] >= stopped_at[slow]  # B ran it only once A's actor stopped
        fast = {c: taken_at[c] - began for c in theirs if c != slow}
        assert max(fast.values()) < 1.0  # the others moved at once
        assert taken_at[slow] - stopped_at[slow] < 0.5  # and the slow one right after its stop
        print(
            f"drain: {len(fast)} salons moved in {max(fast.values()):.3f} s; the slow one "
            f"stopped after {stopped_at[slow] - began:.2f} s and moved "
            f"{taken_at[slow] - stopped_at[slow]:.3f} s later"
        )
        await a.done.wait()
        await b.stop()
        nursery.cancel_scope.cancel()


async def test_a_handover_waits_for_an_actor_another_stop_is_already_stopping(
    settings: Settings, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A salon's actor is already stopping (here: an explicit stop; also a passivation, or the
    node's tree) and slow about it when a joining node wins the salon: the handover releases
    the claim only once that actor finished (``Registry.stop`` returns at once while another
    stop runs, so it used to release at once and the winner opened a second session)."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        [cid] = await store_linked(storage, world, 1, 8500)
        a = await start_node(nursery, settings, storage, world, "node-a")
        await until_async(lambda: serving([a], world, [cid]), 10)
        real_on_stop = CompanyActor.on_stop
        stopped_at: list[float] = []

        async def slow_on_stop(actor: CompanyActor) -> None:
            try:
                if not stopped_at:
                    await trio.sleep(SLOW_STOP)
                await real_on_stop(actor)
            finally:
                stopped_at.append(trio.current_time())

        monkeypatch.setattr(CompanyActor, "on_stop", slow_on_stop)
        nursery.start_soon(a.node.registry.stop, cid)
        await trio.sleep(0.1)
        b = await start_node(nursery, settings, storage, world, winning_name(cid, "b", [a.name]))
        await until_async(lambda: serving([a, b], world, [cid]), 20)
        assert world.overlaps == 0
        assert stopped_at and b.running(cid)
        await a.stop()
        await b.stop()
