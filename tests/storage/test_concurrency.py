"""Real concurrency against PostgreSQL: separate connections racing for the same rows."""

from __future__ import annotations

import trio

from storage import Storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage


async def test_racing_inbox_claims_hand_each_event_to_one_worker(
    real_storage: Storage, database_url: str, wall: FakeWallClock
) -> None:
    cid = (await real_storage.companies.create(1)).company.id
    for i in range(60):
        await real_storage.inbox.put(cid, f"e{i}", "t", {"n": i})
    # A second storage = a second pool (as another process) on the same database and clock.
    async with open_real_storage(
        database_url, redis_url=None, truncate=False, wall_clock=wall
    ) as other:
        seen: list[int] = []

        async def worker(st: Storage) -> None:
            while batch := await st.inbox.claim(4, lease=60):
                seen.extend(e.id for e in batch)
                for event in batch:
                    await st.inbox.mark_done(event.id)

        async with trio.open_nursery() as nursery:
            for st in (real_storage, other, real_storage, other, real_storage, other):
                nursery.start_soon(worker, st)
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 60
    assert await real_storage.inbox.pending_count() == 0


async def test_racing_company_claims_never_overlap(real_storage: Storage) -> None:
    cid = (await real_storage.companies.create(1)).company.id
    for i in range(20):
        await real_storage.inbox.put(cid, f"e{i}", "t", {"n": i})
    order: list[int] = []

    async def worker() -> None:
        for _ in range(40):
            batch = await real_storage.inbox.claim_for_company(cid, 3, lease=60)
            order.extend(e.payload["n"] for e in batch)
            for event in batch:
                await real_storage.inbox.mark_done(event.id)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(worker)
    assert order == list(range(20))  # one claimer at a time, in id order


async def test_racing_outbox_claims(
    real_storage: Storage, database_url: str, wall: FakeWallClock
) -> None:
    for i in range(30):
        await real_storage.outbox.enqueue("cb", f"k{i}", None, {"n": i})
    async with open_real_storage(
        database_url, redis_url=None, truncate=False, wall_clock=wall
    ) as other:
        got: list[int] = []

        async def worker(st: Storage) -> None:
            while batch := await st.outbox.claim_due(3, lease=60):
                got.extend(i.id for i in batch)

        async with trio.open_nursery() as nursery:
            for st in (real_storage, other) * 3:
                nursery.start_soon(worker, st)
    assert sorted(got) == list(range(1, 31))


async def test_racing_enqueues_across_pools(real_storage: Storage, database_url: str) -> None:
    async with open_real_storage(database_url, redis_url=None, truncate=False) as other:
        items = []

        async def enqueue(st: Storage, n: int) -> None:
            items.append(await st.outbox.enqueue("cb", "one", None, {"n": n}))

        async with trio.open_nursery() as nursery:
            for n in range(16):
                nursery.start_soon(enqueue, (real_storage, other)[n % 2], n)
    assert len({i.id for i in items}) == 1
    assert await real_storage.outbox.backlog() == 1


async def test_outbox_survives_restart(database_url: str) -> None:
    async with open_real_storage(database_url, redis_url=None) as first:
        item = await first.outbox.enqueue("cb", "durable", None, {"x": 1})
        await first.outbox.claim_due(lease=60)
    async with open_real_storage(database_url, redis_url=None, truncate=False) as second:
        again = await second.outbox.get_by_key("durable")
        assert again is not None and again.id == item.id and again.claimed_until is not None
        assert await second.outbox.backlog() == 1
