"""The node's start-up restore runs in the background: the node is up before it ends, a
bounded number of companies start at once, a salon asked for first answers at once (one
actor, counted as restored), and failures are counted without stopping the rest.

In-memory storage and the simulated WhatsApp, under trio's mock clock (autojump): company
starts are slowed by patched ``on_start`` sleeps, so every duration here is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors.company import messages as m
from actors.whatsapp import SimulatedWorld
from storage import Company, StorageTimeout, StorageUnavailable, open_storage
from tests.support.startup import Starts, counted_starts, store_linked

from .conftest import make_settings, running_node


async def test_the_node_is_up_before_a_slow_restore_ends_and_starts_a_bounded_number_at_once(
    autojump_clock: MockClock, world: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(restore_concurrency=4)
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        ids = await store_linked(storage, world, 40, first=500_000)
        with counted_starts(monkeypatch, Starts(delay=1.0)) as starts:
            began = trio.current_time()
            async with running_node(settings, storage, world) as node:
                assert trio.current_time() == began  # up at once, not after 40 slow starts
                assert not node.restore.done
                await trio.sleep(2.5)  # two rounds of 4 done, the third under way
                assert (node.restore.restored, node.restore.total) == (8, 40)
                assert not node.restore.done
                await node.restore_done()
                assert trio.current_time() - began == pytest.approx(10.0, abs=0.5)  # 40 / 4 x 1 s
                assert starts.most == 4  # never more than the limit at once
                assert node.restore.to_json() == {
                    "done": True,
                    "restored": 40,
                    "total": 40,
                    "failed": 0,
                    "elsewhere": 0,
                }
                assert node.restored == 40
                await world.wait_until(lambda: all(world.is_connected(cid) for cid in ids))
                assert set(starts.calls.values()) == {1}


async def test_a_salon_asked_for_during_the_restore_answers_at_once_and_counts_as_restored(
    autojump_clock: MockClock, world: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(restore_concurrency=2)
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        ids = await store_linked(storage, world, 11, first=510_000)
        asked = ids[-1]  # the last in the restore's order
        slow = set(ids[:-1])
        with counted_starts(monkeypatch, Starts(delay=60.0, slow=slow)) as starts:
            async with running_node(settings, storage, world) as node:
                began = trio.current_time()
                view = await node.company(asked).ask(m.GetStatus())
                assert trio.current_time() == began  # not after its turn (5 x 60 s later)
                assert view.integration_status == "active"
                assert not node.restore.done and node.restore.restored == 0
                await node.restore_done()
                assert (node.restore.restored, node.restore.total) == (11, 11)
                assert starts.calls[asked] == 1  # the restore found it running: no second start
                assert node.registry.active_keys().count(asked) == 1


async def test_failed_starts_are_counted_and_do_not_stop_the_restore(
    autojump_clock: MockClock, world: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(restore_concurrency=3)
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        ids = await store_linked(storage, world, 12, first=520_000)
        failing = {ids[0], ids[5], ids[6]}
        with counted_starts(monkeypatch, Starts(delay=1.0, failing=failing)):
            async with running_node(settings, storage, world) as node:
                await node.restore_done()
                progress = node.restore
                assert (progress.restored, progress.failed, progress.total) == (9, 3, 12)
                assert node.healthy
                running = [cid for cid in ids if cid not in failing]
                await world.wait_until(lambda: all(world.is_connected(cid) for cid in running))


async def test_a_node_opened_without_a_restore_is_done_at_once(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        await store_linked(storage, world, 2, first=530_000)
        async with running_node(make_settings(), storage, world, restore=False) as node:
            await node.restore_done()
            assert node.restore.done and node.restored == 0
            assert node.registry.active_keys() == []


async def test_listing_is_retried_while_storage_cannot_be_read(
    autojump_clock: MockClock, world: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        ids = await store_linked(storage, world, 3, first=550_000)
        original = storage.companies.list_linked
        refusals = [StorageUnavailable("redis", "down"), StorageTimeout("database", "slow")]

        async def list_linked(**page: Any) -> list[Company]:
            if refusals:
                raise refusals.pop(0)
            return await original(**page)

        monkeypatch.setattr(storage.companies, "list_linked", list_linked)
        async with running_node(make_settings(), storage, world) as node:
            began = trio.current_time()
            await node.restore_done()
            assert trio.current_time() - began == pytest.approx(1.5)  # waited 0.5 s, then 1 s
            assert (node.restored, node.restore.total) == (3, 3)
            assert node.registry.lookup(ids[0]) is not None


async def test_a_bug_in_the_restore_marks_the_node_failed_instead_of_stopping_it(
    autojump_clock: MockClock, world: SimulatedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        await store_linked(storage, world, 1, first=560_000)

        async def broken(**page: Any) -> list[Company]:
            raise RuntimeError("a bug in listing")

        monkeypatch.setattr(storage.companies, "list_linked", broken)
        async with running_node(make_settings(), storage, world) as node:
            await trio.testing.wait_all_tasks_blocked()
            assert isinstance(node.failure, RuntimeError)
            assert not node.healthy and not node.restore.done
            cid = (await storage.companies.create(560_100)).company.id
            assert (await node.company(cid).ask(m.GetStatus())).company_id == cid  # serving
