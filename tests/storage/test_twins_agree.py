"""The in-memory twins behave like PostgreSQL: random operation sequences, same observations.

Hypothesis draws sequences of inbox and outbox operations, and of conversation operations
(with clock moves); each is applied to a memory storage and a PostgreSQL storage sharing one
fake wall clock, and every result is compared in a backend-neutral form (keys and states
rather than ids, which PostgreSQL's sequences may skip).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    AttemptOutcome,
    CompanyStatus,
    Conflict,
    Conversation,
    ConversationMode,
    Storage,
    ValidationError,
    open_storage,
)
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
    # Retention: finished rows older than 0.5 or 5 s, one or two a table (issue 17).
    st.tuples(st.just("prune"), st.sampled_from([0.5, 5.0]), st.integers(1, 2)),
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
    if kind == "prune":
        pruned = await st_.retention.prune(op[1], limit=op[2])
        return (pruned.inbox, pruned.outbox, pruned.messages)
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


PHONES = st.sampled_from(["79000000001", "79000000002", "74950000003"])
CONVERSATION_OPS = st.one_of(
    st.tuples(
        st.just("save"),
        PHONES,
        # The version read, mostly right, sometimes off by one (a stale or a future read).
        st.sampled_from([0, 0, 0, -1, 1]),
        st.sampled_from([None, "Анна", "АННА Петрова"]),
        st.sampled_from([None, 0.0, 30.0]),  # last message: seconds before now
    ),
    st.tuples(
        st.just("mode"),
        PHONES,
        st.sampled_from(list(ConversationMode)),
        st.sampled_from([None, True, False]),
        st.sampled_from([None, 600.0]),
    ),
    st.tuples(
        st.just("list"),
        st.integers(1, 3),
        st.sampled_from([None, ConversationMode.HANDOFF, ConversationMode.ASSISTANT]),
        st.sampled_from([None, True]),
        st.sampled_from([None, "анн", "петрова", "7900", "+7 495"]),
    ),
    st.tuples(st.just("expire"), st.sampled_from([0.0, 45.0, 300.0]), st.integers(1, 2)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 20.0, 120.0])),
)


def _seen(c: Conversation | None) -> Any:
    """A conversation without its company id (ids may differ between backends)."""
    if c is None:
        return None
    return (
        c.phone,
        c.mode,
        c.state,
        c.version,
        c.client_name,
        c.mode_until,
        c.needs_person,
        c.last_message_at,
        c.created_at,
        c.updated_at,
    )


async def _apply_conversation(
    st_: Storage, company: int, op: tuple[Any, ...], now: datetime
) -> Any:
    kind = op[0]
    if kind == "save":
        _, phone, off, name, ago = op
        stored = await st_.conversations.get(company, phone)
        version = (0 if stored is None else stored.version) + off
        at = None if ago is None else now - timedelta(seconds=ago)
        try:
            saved = await st_.conversations.save(
                company,
                phone,
                state={"v": version, "name": name},
                expected_version=version,
                client_name=name,
                last_message_at=at,
            )
        except Conflict:
            return "conflict"
        except ValidationError:
            return "invalid"
        return _seen(saved)
    if kind == "mode":
        _, phone, mode, person, until = op
        ends = None if until is None else now + timedelta(seconds=until)
        return _seen(
            await st_.conversations.set_mode(company, phone, mode, until=ends, needs_person=person)
        )
    if kind == "list":
        _, size, mode, person, search = op
        pages: list[Any] = []
        cursor: tuple[datetime, str] | None = None
        while True:
            page = await st_.conversations.list(
                company, limit=size, before=cursor, mode=mode, needs_person=person, search=search
            )
            if not page:
                return pages
            pages.append([_seen(c) for c in page])
            stamp = page[-1].last_message_at or page[-1].updated_at
            assert stamp is not None
            cursor = (stamp, page[-1].phone)
    if kind == "expire":
        count = await st_.conversations.expire_idle(now - timedelta(seconds=op[1]), limit=op[2])
        return count, sorted(
            _seen(c) for c in await st_.conversations.list(company) if c is not None
        )
    raise AssertionError(kind)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(CONVERSATION_OPS, min_size=1, max_size=25))
async def test_conversations_agree(database_url: str, ops: list[tuple[Any, ...]]) -> None:
    wall = FakeWallClock()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as memory,
        open_real_storage(database_url, redis_url=None, wall_clock=wall) as real,
    ):
        company = {
            name: (await st_.companies.create(1)).company.id
            for name, st_ in (("memory", memory), ("real", real))
        }
        for op in ops:
            if op[0] == "advance":
                wall.advance(op[1])
                continue
            seen_memory = await _apply_conversation(memory, company["memory"], op, wall())
            seen_real = await _apply_conversation(real, company["real"], op, wall())
            assert seen_memory == seen_real, op


# Text that cannot be encoded as UTF-8 (a lone surrogate, as ``json.loads("\"\\ud800\"")``
# gives it). PostgreSQL refuses it; the in-memory twin once stored it, and a connect page
# rendering that title then answered 500 forever. Both must refuse it the same way.
UNENCODABLE = ["\ud800", "Salon \udfff", "\udc00\ud800", "ok \U0001f600 \ud83d"]


async def _outcome(call: Any) -> str:
    try:
        await call()
    except ValidationError as exc:
        return f"refused: {exc.field}"
    return "stored"


async def _unencodable_outcomes(st_: Storage) -> list[str]:
    """What each write of unencodable text does on ``st_`` (all should be refused)."""
    company = (await st_.companies.create(1, title="Fine \U0001f600")).company.id
    outcomes = []
    for bad in UNENCODABLE:
        outcomes += [
            await _outcome(lambda b=bad: st_.companies.create(2, title=b)),
            await _outcome(lambda b=bad: st_.companies.update(company, title=b)),
            await _outcome(lambda b=bad: st_.companies.update(company, address=b)),
            await _outcome(lambda b=bad: st_.inbox.put(company, "k" + b, "t", {})),
            await _outcome(lambda b=bad: st_.inbox.put(company, "k", "t", {"x": b})),
            await _outcome(lambda b=bad: st_.inbox.put(company, "k2", "t", {b: 1})),
            await _outcome(lambda b=bad: st_.audit.append(company, "e", {"x": b})),
        ]
    stored = await st_.companies.get(company)
    assert stored is not None and stored.title == "Fine \U0001f600"
    assert await st_.companies.get_by_salon(2) is None
    return outcomes


async def test_twins_refuse_unencodable_text_alike(database_url: str) -> None:
    wall = FakeWallClock()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as memory,
        open_real_storage(database_url, redis_url=None, wall_clock=wall) as real,
    ):
        seen_memory = await _unencodable_outcomes(memory)
        seen_real = await _unencodable_outcomes(real)
        assert seen_memory == seen_real
        assert all(o.startswith("refused") for o in seen_memory), seen_memory


async def test_unencodable_token_resolves_to_nothing(storage: Storage) -> None:
    """A client's token with a lone surrogate is simply not a token, on Redis as in memory."""
    company = (await storage.companies.create(3)).company.id
    token = await storage.tokens.issue(company)
    for bad in ("\ud800" * 20, token[:-1] + "\udfff"):
        assert await storage.tokens.resolve(bad) is None
    assert await storage.tokens.resolve(token) == company


MSG_IDS = st.sampled_from(["w1", "w2", "w3"])
RETENTION_OPS = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 1), KEYS),
    st.tuples(st.just("done"), st.integers(0, 1), KEYS),
    st.tuples(st.just("fail"), st.integers(0, 1), KEYS, st.sampled_from([None, 5.0])),
    st.tuples(st.just("enqueue"), KEYS, st.just(0.0)),
    st.tuples(st.just("attempt"), KEYS, st.sampled_from(list(AttemptOutcome)), st.just(None)),
    st.tuples(st.just("reopen"), KEYS),
    st.tuples(st.just("inbound"), st.integers(0, 1), MSG_IDS),
    st.tuples(st.just("outbound"), st.integers(0, 1)),
    st.tuples(st.just("sent"), st.integers(0, 1)),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 6.0])),
    st.tuples(st.just("prune"), st.sampled_from([0.5, 5.0]), st.integers(1, 2)),
)


async def _apply_retention(st_: Storage, companies: list[int], op: tuple[Any, ...]) -> Any:
    """The queue operations plus messages; what a caller sees, without backend ids."""
    kind = op[0]
    if kind == "inbound":
        return await st_.messages.record_inbound(companies[op[1]], op[2], "79000000001", "t")
    if kind == "outbound":
        message = await st_.messages.record_outbound(companies[op[1]], "79000000001", "t")
        return message.status
    if kind == "sent":
        queued = await st_.messages.pending_outbound(companies[op[1]], limit=1)
        if not queued:
            return "none"
        return (await st_.messages.set_status(queued[0].id, "sent")).status
    return await _apply(st_, companies, op)


async def _observe_messages(st_: Storage, companies: list[int]) -> list[Any]:
    seen: list[Any] = []
    for company in companies:
        recent = await st_.messages.recent(company, limit=100)
        seen.append(sorted((m.direction, m.wa_message_id, m.status) for m in recent))
        seen.append(len(await st_.messages.pending_outbound(company)))
    return seen


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(RETENTION_OPS, min_size=4, max_size=30))
async def test_retention_agrees(database_url: str, ops: list[tuple[Any, ...]]) -> None:
    """Prune between queue and message operations: both backends delete the same rows."""
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
            seen_memory = await _apply_retention(memory, companies["memory"], op)
            seen_real = await _apply_retention(real, companies["real"], op)
            assert seen_memory == seen_real, op
            assert await _observe(memory) == await _observe(real)
            assert await _observe_messages(memory, companies["memory"]) == (
                await _observe_messages(real, companies["real"])
            )


SALONS = st.integers(1, 4)
SYNC_OPS = st.one_of(
    st.tuples(st.just("create"), SALONS),
    st.tuples(
        st.just("status"), SALONS, st.sampled_from(["active", "reconnecting", "pending", "frozen"])
    ),
    st.tuples(st.just("sync"), SALONS, st.booleans(), st.sampled_from([None, "boom"])),
    st.tuples(st.just("enable"), SALONS, st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 30.0, 400.0])),
    st.tuples(
        st.just("due"),
        st.sampled_from([0.0, 60.0, 600.0]),  # succeeded_before: seconds before now
        st.sampled_from([0.0, 20.0, 300.0]),  # failed_before: seconds before now
        st.integers(1, 4),
    ),
)


async def _apply_sync(st_: Storage, ids: dict[int, int], op: tuple[Any, ...], now: datetime) -> Any:
    """One company/sync operation by salon; ``ids`` maps salons to this backend's ids."""
    kind = op[0]
    if kind == "create":
        if op[1] in ids:
            return "exists"
        ids[op[1]] = (await st_.companies.create(op[1])).company.id
        return "created"
    if kind == "due":
        due = await st_.catalog.list_sync_due(
            ["active", "reconnecting"],
            succeeded_before=now - timedelta(seconds=op[1]),
            failed_before=now - timedelta(seconds=op[2]),
            limit=op[3],
        )
        salon_of = {cid: salon for salon, cid in ids.items()}
        return [salon_of[cid] for cid in due]
    if op[1] not in ids:
        return "missing"
    cid = ids[op[1]]
    if kind == "status":
        moved = await st_.companies.transition(cid, list(CompanyStatus), op[2])
        return None if moved is None else moved.integration_status
    if kind == "sync":
        state = await st_.catalog.record_sync(cid, ok=op[2], error=op[3])
        return (state.last_success_at, state.last_error, state.last_attempt_at)
    if kind == "enable":
        return (await st_.companies.update(cid, sync_enabled=op[2])).sync_enabled
    raise AssertionError(kind)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(SYNC_OPS, min_size=3, max_size=30))
async def test_sync_due_agrees(database_url: str, ops: list[tuple[Any, ...]]) -> None:
    """The in-memory ``list_sync_due`` reads an index of candidates; PostgreSQL reads the
    tables: both name the same salons in the same order after any sequence of changes."""
    wall = FakeWallClock()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as memory,
        open_real_storage(database_url, redis_url=None, wall_clock=wall) as real,
    ):
        ids: dict[str, dict[int, int]] = {"memory": {}, "real": {}}
        prelude = [("create", salon) for salon in (1, 2, 3, 4)]
        prelude += [("status", salon, "active") for salon in (1, 2, 3)]
        for op in prelude + ops:
            if op[0] == "advance":
                wall.advance(op[1])
                continue
            seen_memory = await _apply_sync(memory, ids["memory"], op, wall())
            seen_real = await _apply_sync(real, ids["real"], op, wall())
            assert seen_memory == seen_real, op
