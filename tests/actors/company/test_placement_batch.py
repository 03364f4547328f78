"""A take-over in batches (in-memory twins, MockClock): the survivors of a killed node claim
its salons in one Redis call and bump their epochs in one statement, then activate them with
those epochs (no claim or epoch bump per salon); fencing holds as before."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
import trio
import trio.testing

from actors._placement import rendezvous
from config import Settings
from storage import LeaseEpochs, StaleEpoch, open_storage
from tests.support.startup import store_linked

from .test_lease_loss import WatchedWorld
from .test_placement import TICK, quiet_settings, serving, start_node, until_async


class CountedEpochs:
    """:class:`storage.LeaseEpochs` counting its takes (one per call, however many salons)."""

    def __init__(self, inner: LeaseEpochs) -> None:
        self.inner = inner
        self.takes = 0
        self.batches = 0

    async def take(self, company_id: int) -> int:
        self.takes += 1
        return await self.inner.take(company_id)

    async def take_many(self, company_ids: Sequence[int]) -> dict[int, int]:
        self.batches += 1
        return await self.inner.take_many(company_ids)

    async def current(self, company_id: int) -> int:
        return await self.inner.current(company_id)


async def test_a_killed_nodes_salons_are_taken_in_one_claim_and_one_epoch_call(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """Three nodes share 40 salons; B is killed. A and C take B's salons over with one
    ``claim_many`` and one epoch statement each (no single claim, no single epoch take), each
    salon's epoch is B's plus one, B's handles are refused, and no salon ever had two live
    sessions."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        epochs = CountedEpochs(storage.epochs)
        storage = replace(storage, epochs=epochs)
        ids = await store_linked(storage, world, 40, 16000)
        a = await start_node(nursery, settings, storage, world, "node-a")
        b = await start_node(nursery, settings, storage, world, "node-b")
        c = await start_node(nursery, settings, storage, world, "node-c")
        await until_async(lambda: serving([a, b, c], world, ids), 10)
        of_b = [cid for cid in ids if rendezvous(cid, ["node-a", "node-b", "node-c"]) == "node-b"]
        assert len(of_b) >= 5
        before = {cid: await storage.epochs.current(cid) for cid in of_b}
        singles = a.leases.calls["claim"] + c.leases.calls["claim"]
        batches = a.leases.calls["claim_many"] + c.leases.calls["claim_many"]
        takes, epoch_batches = epochs.takes, epochs.batches
        await b.kill()
        await until_async(lambda: serving([a, c], world, ids), 6.0 + TICK * 3)
        assert a.leases.calls["claim"] + c.leases.calls["claim"] == singles
        assert a.leases.calls["claim_many"] + c.leases.calls["claim_many"] - batches == 2
        assert epochs.takes == takes
        assert epochs.batches - epoch_batches == 2
        for cid in of_b:
            assert await storage.epochs.current(cid) == before[cid] + 1
            with pytest.raises(StaleEpoch):
                await storage.fenced(cid, before[cid]).audit.append(cid, "linked", {})
        assert world.overlaps == 0
        await a.stop()
        await c.stop()


class SlowBatchEpochs(CountedEpochs):
    """:class:`CountedEpochs` whose batches wait a second first (a loaded database)."""

    async def take_many(self, company_ids: Sequence[int]) -> dict[int, int]:
        await trio.sleep(1.0)
        return await super().take_many(company_ids)


async def test_a_request_during_a_batch_waits_for_it_and_claims_nothing_itself(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A ``place`` of a salon whose batch take is under way waits for that batch (one
    second of slow epochs here), then finds it owned: no claim or epoch bump of its own, one
    epoch for the salon. A claim the batch took for a company that no longer exists is given
    back."""
    settings = quiet_settings(settings)
    world = WatchedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await store_linked(storage, world, 3, 17000)
        a = await start_node(nursery, settings, storage, world, "node-a", restore=False)
        placement = a.node.placement
        assert placement is not None
        epochs = SlowBatchEpochs(storage.epochs)
        placement.storage = replace(placement.storage, epochs=epochs)
        placed: list[str | None] = []

        async def request() -> None:
            await trio.sleep(0.5)  # the batch's claims are in, its epochs are on their way
            placed.append(await placement.place(ids[1]))

        started = trio.current_time()
        async with trio.open_nursery() as inner:
            inner.start_soon(request)
            await placement.take_many([*ids, 999_999])
        assert placed == [None]
        assert trio.current_time() - started < 1.5
        assert a.leases.calls["claim"] == 0 and epochs.takes == 0
        assert set(placement.owned) == set(ids)
        assert [await storage.epochs.current(cid) for cid in ids] == [1, 1, 1]
        assert await storage.leases.holder(ids[1]) == "node-a"
        assert await storage.leases.holder(999_999) is None  # no such company: given back
        await a.stop()
