"""Indexed lookups (issue 17): ``sk_`` authentication, registration and the queues' polls.

The contract part runs on both backends. The memory-only part checks that the in-memory twin
answers through its indexes: the company table (or inbox, outbox, messages, reminders) is
swapped for a dict that refuses to be walked, and the hash function is counted, so a lookup
that touched other companies' rows fails by behaviour, not by timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from storage import AttemptOutcome, Conflict, PlannedReminder, Storage, _secrets
from storage._memory_db import MemoryDatabase
from tests.support.clock import FakeWallClock


async def test_sk_key_found_unknown_revoked_and_reissued(storage: Storage) -> None:
    first = await storage.companies.create(101)
    second = await storage.companies.create(102)
    found = await storage.companies.find_by_api_key(first.api_key)
    assert found is not None and found.id == first.company.id
    found = await storage.companies.find_by_api_key(second.api_key)
    assert found is not None and found.id == second.company.id
    for wrong in ("sk_" + "x" * 43, first.api_key[:-1], "", "sk_" + "y" * 300):
        assert await storage.companies.find_by_api_key(wrong) is None

    fresh = await storage.companies.rotate_api_key(first.company.id)
    assert await storage.companies.find_by_api_key(first.api_key) is None
    found = await storage.companies.find_by_api_key(fresh)
    assert found is not None and found.id == first.company.id

    await storage.companies.revoke_credentials(first.company.id)
    assert await storage.companies.find_by_api_key(fresh) is None
    again = await storage.companies.rotate_api_key(first.company.id)
    found = await storage.companies.find_by_api_key(again)
    assert found is not None and found.id == first.company.id
    found = await storage.companies.find_by_api_key(second.api_key)
    assert found is not None and found.id == second.company.id


async def test_a_key_held_by_one_company_is_refused_to_another(storage: Storage) -> None:
    key = "sk_" + "k" * 40
    await storage.companies.create(1, api_key=key)
    with pytest.raises(Conflict):
        await storage.companies.create(2, api_key=key)
    other = (await storage.companies.create(3)).company.id
    with pytest.raises(Conflict):
        await storage.companies.rotate_api_key(other, key)
    found = await storage.companies.find_by_api_key(key)
    assert found is not None and found.yclients_id == 1


async def test_register_is_unique_per_salon_among_many(storage: Storage) -> None:
    for salon in range(1, 41):
        await storage.companies.create(salon)
    with pytest.raises(Conflict):
        await storage.companies.create(17)
    company = await storage.companies.get_by_salon(17)
    assert company is not None and company.yclients_id == 17
    assert await storage.companies.get_by_salon(41) is None
    assert await storage.companies.count() == 40


# -- the in-memory twin reads through its indexes ------------------------------------------


class NoScan(dict[Any, Any]):
    """A table that may be read by key but never walked."""

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("the table was scanned")

    def values(self) -> Any:
        raise AssertionError("the table was scanned")

    def items(self) -> Any:
        raise AssertionError("the table was scanned")


def _db(storage: Storage) -> MemoryDatabase:
    assert storage.memory_db is not None
    return storage.memory_db


#: The ``storage`` fixture on its in-memory twin only.
memory_only = pytest.mark.parametrize("storage", ["memory"], indirect=True)


@memory_only
async def test_sk_auth_hashes_once_and_reads_no_other_company(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [(await storage.companies.create(salon)).api_key for salon in range(1, 201)]
    db = _db(storage)
    db.companies = NoScan(db.companies)
    hashed: list[str] = []
    real_hash = _secrets.hash_secret

    def counting(plaintext: str) -> str:
        hashed.append(plaintext)
        return real_hash(plaintext)

    monkeypatch.setattr(_secrets, "hash_secret", counting)
    found = await storage.companies.find_by_api_key(keys[150])
    assert found is not None and found.yclients_id == 151
    assert set(hashed) == {keys[150]} and len(hashed) <= 2  # the lookup, the constant-time check
    hashed.clear()
    assert await storage.companies.find_by_api_key("sk_" + "z" * 43) is None
    assert len(hashed) == 1
    # Registration and the salon lookup read the index too.
    with pytest.raises(Conflict):
        await storage.companies.create(77)
    await storage.companies.create(1000)
    company = await storage.companies.get_by_salon(1000)
    assert company is not None and company.yclients_id == 1000
    # The counts (/metrics, marketplace stats) are kept by every write, not counted.
    await storage.companies.transition(company.id, ["pending"], "active")
    await storage.companies.update(company.id, whatsapp_connected=True)
    assert await storage.companies.count_by_status() == {"pending": 200, "active": 1}
    assert await storage.companies.count("active") == 1
    assert await storage.companies.count() == 201
    assert await storage.companies.count_linked() == 1


@memory_only
async def test_queue_polls_read_only_open_rows(storage: Storage, wall: FakeWallClock) -> None:
    ids = [(await storage.companies.create(s)).company.id for s in (1, 2)]
    for n in range(30):  # history: finished events, delivered items, sent messages
        await storage.inbox.put(ids[0], f"old{n}", "record", {})
        item = await storage.outbox.enqueue("cb", f"old{n}", ids[0], {})
        await storage.outbox.record_attempt(item.id, AttemptOutcome.DELIVERED)
        sent = await storage.messages.record_outbound(ids[0], "79000000001", f"m{n}")
        await storage.messages.set_status(sent.id, "sent")
    for event in await storage.inbox.claim_for_company(ids[0], 100, lease=5):
        await storage.inbox.mark_done(event.id)
    await storage.inbox.put(ids[1], "new", "record", {})
    await storage.outbox.enqueue("cb", "new", ids[1], {})
    queued = await storage.messages.record_outbound(ids[1], "79000000002", "hello")
    db = _db(storage)
    db.inbox = NoScan(db.inbox)
    db.outbox = NoScan(db.outbox)
    db.messages = NoScan(db.messages)

    assert await storage.inbox.due_companies() == [ids[1]]
    assert await storage.inbox.pending_count() == 1
    assert await storage.inbox.claim_for_company(ids[0], 10) == []
    taken = await storage.inbox.claim_for_company(ids[1], 10)
    assert [e.dedupe_key for e in taken] == ["new"]
    await storage.inbox.mark_done(taken[0].id)
    assert await storage.inbox.due_companies() == []
    assert await storage.outbox.backlog() == 1
    assert [i.idempotency_key for i in await storage.outbox.claim_due(10)] == ["new"]
    assert await storage.messages.pending_outbound(ids[0]) == []
    assert [m.id for m in await storage.messages.pending_outbound(ids[1])] == [queued.id]
    await storage.messages.set_status(queued.id, "sent")
    assert await storage.messages.pending_outbound(ids[1]) == []
    assert len(await storage.messages.recent(ids[0], limit=100)) == 30


@memory_only
async def test_reminder_polls_read_only_due_rows(storage: Storage, wall: FakeWallClock) -> None:
    company = (await storage.companies.create(1)).company.id
    now = wall()
    rows = [
        PlannedReminder(
            record_id=n,
            kind="day_before",
            visit_time=now + timedelta(days=2),
            due_at=now + timedelta(hours=n),
            send_by=now + timedelta(days=2),
            visit_id=None,
            phone="79000000001",
            details={},
        )
        for n in range(1, 41)
    ]
    await storage.reminders.plan(company, rows)
    db = _db(storage)
    db.reminders = NoScan(db.reminders)
    assert await storage.reminders.next_due() == now + timedelta(hours=1)
    at = now + timedelta(hours=3, minutes=30)
    assert await storage.reminders.backlog(at) == 3
    claimed = await storage.reminders.claim_due(at, "node-a", 60.0, limit=2)
    assert [r.record_id for r in claimed] == [1, 2]
    assert await storage.reminders.backlog(at) == 1
    # A lapsed claim is due again at its lease's end.
    assert await storage.reminders.next_due() == now + timedelta(hours=3)
    later = at + timedelta(seconds=61)
    assert await storage.reminders.backlog(later) == 3
    assert [r.record_id for r in await storage.reminders.claim_due(later, "b", 60.0)] == [1, 2, 3]


# -- PostgreSQL answers the same lookups from its indexes -----------------------------------

PLANS = {
    "idx_companies_api_key_hash": "SELECT id FROM companies WHERE api_key_hash = $1",
    "idx_webhook_events_finished": "SELECT id FROM webhook_events"
    " WHERE status IN ('done', 'dead') AND received_at < $1 ORDER BY received_at, id LIMIT 10",
    "idx_outbox_finished": "SELECT id FROM outbox"
    " WHERE status IN ('delivered', 'failed') AND updated_at < $1 ORDER BY updated_at, id"
    " LIMIT 10",
    "idx_messages_created": "SELECT id FROM messages WHERE created_at < $1"
    " ORDER BY created_at, id LIMIT 10",
}


async def test_postgres_plans_use_the_indexes(real_storage: Storage, wall: FakeWallClock) -> None:
    assert real_storage.pg is not None

    async def plans(conn: Any) -> dict[str, str]:
        # Tables this small are scanned whatever the indexes; forbid that to see the index.
        await conn.execute("SET enable_seqscan = off")
        try:
            found = {}
            for index, sql in PLANS.items():
                arg: Any = "0" * 64 if "api_key_hash" in sql else wall()
                rows = await conn.fetch("EXPLAIN " + sql, arg)
                found[index] = "\n".join(r[0] for r in rows)
            return found
        finally:
            await conn.execute("RESET enable_seqscan")

    for index, plan in (await real_storage.pg.run(plans)).items():  # type: ignore[arg-type]
        assert index in plan, plan


async def test_a_finished_event_failed_again_is_polled_again(storage: Storage) -> None:
    # A worker whose lease lapsed may report a failure after another finished the event:
    # the event is retryable again in both backends, so the open index must take it back.
    company = (await storage.companies.create(1)).company.id
    await storage.inbox.put(company, "k", "record", {})
    (event,) = await storage.inbox.claim_for_company(company, 1, lease=5)
    await storage.inbox.mark_done(event.id)
    assert await storage.inbox.pending_count() == 0
    await storage.inbox.mark_failed(event.id, "late report", retry_in=0)
    assert await storage.inbox.pending_count() == 1
    assert await storage.inbox.due_companies() == [company]
    assert [e.id for e in await storage.inbox.claim_for_company(company, 5)] == [event.id]


async def test_sync_due_through_status_changes_and_odd_failures(
    storage: Storage, wall: FakeWallClock
) -> None:
    """``list_sync_due`` (the in-memory twin reads an index of candidates): never synced
    first, then by last attempt; a failure is due after the retry cutoff, a success after the
    interval, a failure without an error text by its last success; a status change moves a
    company in and out; a disabled one never."""
    ids = {}
    for salon in range(1, 7):
        ids[salon] = (await storage.companies.create(salon)).company.id
        await storage.companies.transition(ids[salon], ["pending"], "active")
    await storage.catalog.record_sync(ids[1], ok=True)
    await storage.catalog.record_sync(ids[2], ok=False, error="boom")
    await storage.catalog.record_sync(ids[3], ok=True)
    await storage.catalog.record_sync(ids[4], ok=False)  # no error text: by its last success
    await storage.companies.update(ids[5], sync_enabled=False)
    await storage.companies.transition(ids[6], ["active"], "frozen")
    wall.advance(30)

    async def due(succeeded_ago: float, failed_ago: float) -> list[int]:
        now = wall()
        found = await storage.catalog.list_sync_due(
            ["active", "reconnecting"],
            succeeded_before=now - timedelta(seconds=succeeded_ago),
            failed_before=now - timedelta(seconds=failed_ago),
        )
        salon_of = {cid: salon for salon, cid in ids.items()}
        return [salon_of[cid] for cid in found]

    assert await due(600, 0) == [2, 4]  # the failure is past its retry cutoff; 1, 3 fresh
    assert await due(600, 300) == [4]
    assert await due(0, 300) == [1, 3, 4]  # the successes are past the interval
    await storage.companies.transition(ids[6], ["frozen"], "reconnecting")
    assert await due(600, 300) == [6, 4]  # never synced comes first
    await storage.companies.transition(ids[3], ["active"], "frozen")
    assert await due(0, 0) == [6, 1, 2, 4]
    await storage.catalog.record_sync(ids[4], ok=True)
    wall.advance(1)
    assert await due(600, 300) == [6]


@memory_only
async def test_sync_poll_reads_only_candidates(storage: Storage, wall: FakeWallClock) -> None:
    ids = [(await storage.companies.create(salon)).company.id for salon in range(1, 201)]
    for cid in ids:
        await storage.companies.transition(cid, ["pending"], "active")
        await storage.catalog.record_sync(cid, ok=True)
    for _ in range(300):  # one salon synced over and over: its stale entries are compacted
        wall.advance(1)
        await storage.catalog.record_sync(ids[7], ok=True)
    now = wall()
    assert (
        await storage.catalog.list_sync_due(
            ["active"], succeeded_before=now - timedelta(seconds=200), failed_before=now
        )
        == ids[:7] + ids[8:101]
    )  # the default limit of 100, oldest attempts first
    db = _db(storage)
    db.companies = NoScan(db.companies)
    await storage.companies.create(1000)  # never synced, not active: not a candidate
    assert (
        await storage.catalog.list_sync_due(
            ["active"], succeeded_before=now - timedelta(seconds=250), failed_before=now, limit=3
        )
        == ids[:3]
    )
