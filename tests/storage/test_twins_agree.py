"""The in-memory twins behave like PostgreSQL: random operation sequences, same observations.

Hypothesis draws sequences of inbox and outbox operations (with clock moves); each is applied
to a memory storage and a PostgreSQL storage sharing one fake wall clock, and every result is
compared in a backend-neutral form (keys and states rather than ids, which PostgreSQL's
sequences may skip).
"""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import AttemptOutcome, Storage, open_storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage

KEYS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 1), KEYS),
    st.tuples(st.just("claim"), st.integers(1, 3), st.sampled_from([10.0, 30.0])),
    st.tuples(st.just("claim_company"), st.integers(0, 1), st.integers(1, 3)),
    st.tuples(st.just("done"), st.integers(0, 1), KEYS),
    st.tuples(st.just("fail"), st.integers(0, 1), KEYS, st.sampled_from([None, 5.0, 20.0])),
    st.tuples(st.just("enqueue"), KEYS, st.sampled_from([0.0, 15.0])),
    st.tuples(st.just("claim_due"), st.integers(1, 3)),
    st.tuples(
        st.just("attempt"),
        KEYS,
        st.sampled_from(list(AttemptOutcome)),
        st.sampled_from([None, 5.0]),
    ),
    st.tuples(st.just("reopen"), KEYS),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 6.0, 31.0])),
)


async def _apply(st_: Storage, companies: list[int], op: tuple[Any, ...]) -> Any:
    """Run one operation; return what a caller could observe, without backend ids."""
    kind = op[0]
    if kind == "put":
        return (await st_.inbox.put(companies[op[1]], op[2], "t", {"k": op[2]})).value
    if kind == "claim":
        events = await st_.inbox.claim(op[1], lease=op[2])
        return [(e.company_id == companies[1], e.dedupe_key, e.attempts) for e in events]
    if kind == "claim_company":
        events = await st_.inbox.claim_for_company(companies[op[1]], op[2], lease=30)
        return [(e.dedupe_key, e.attempts) for e in events]
    if kind in ("done", "fail"):
        found = await _inbox_event(st_, companies[op[1]], op[2])
        if found is None:
            return "missing"
        if kind == "done":
            await st_.inbox.mark_done(found)
        else:
            await st_.inbox.mark_failed(found, "boom", retry_in=op[3])
        event = await st_.inbox.get(found)
        assert event is not None
        return (event.status, event.attempts, event.next_attempt_at, event.last_error)
    if kind == "enqueue":
        item = await st_.outbox.enqueue("cb", op[1], None, {"k": op[1]}, delay=op[2])
        return (item.idempotency_key, item.status, item.next_attempt_at, item.payload)
    if kind == "claim_due":
        return [(i.idempotency_key, i.attempts) for i in await st_.outbox.claim_due(op[1])]
    if kind in ("attempt", "reopen"):
        existing = await st_.outbox.get_by_key(op[1])
        if existing is None:
            return "missing"
        if kind == "attempt":
            item = await st_.outbox.record_attempt(existing.id, op[2], error="e", retry_in=op[3])
        else:
            item = await st_.outbox.reopen(existing.id)
        return (item.status, item.attempts, item.next_attempt_at, item.last_error)
    raise AssertionError(kind)


async def _inbox_event(st_: Storage, company_id: int, key: str) -> int | None:
    # Find by key through public calls only: claim nothing, look at ids 1..N.
    for event_id in range(1, 64):
        event = await st_.inbox.get(event_id)
        if event is not None and event.company_id == company_id and event.dedupe_key == key:
            return event_id
    return None


async def _observe(st_: Storage) -> tuple[int, int]:
    return (await st_.inbox.pending_count(), await st_.outbox.backlog())


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=25))
async def test_memory_and_postgres_agree(database_url: str, ops: list[tuple[Any, ...]]) -> None:
    wall = FakeWallClock()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as memory,
        open_real_storage(database_url, redis_url=None, wall_clock=wall) as real,
    ):
        companies = {}
        for name, st_ in (("memory", memory), ("real", real)):
            companies[name] = [(await st_.companies.create(salon)).company.id for salon in (1, 2)]
        for op in ops:
            if op[0] == "advance":
                wall.advance(op[1])
                continue
            seen_memory = await _apply(memory, companies["memory"], op)
            seen_real = await _apply(real, companies["real"], op)
            assert seen_memory == seen_real, op
            assert await _observe(memory) == await _observe(real)
