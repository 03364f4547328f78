"""Contract: audit log, webhook inbox, outbox, message log (memory and PostgreSQL)."""

from __future__ import annotations

import pytest
import trio

from storage import (
    AttemptOutcome,
    NotFound,
    PutResult,
    Storage,
    ValidationError,
)
from tests.support.clock import FakeWallClock


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


# -- audit log ------------------------------------------------------------------------------


async def test_audit_append_and_recent(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    other = await _company(storage, 2)
    for i in range(3):
        await storage.audit.append(cid, "registered" if i == 0 else "status", {"i": i})
        wall.advance(1)
    await storage.audit.append(other, "registered")
    recent = await storage.audit.recent(cid)
    assert [e.data["i"] for e in recent] == [2, 1, 0]
    assert recent[-1].event_type == "registered"
    assert [e.data for e in await storage.audit.recent(cid, limit=1)] == [{"i": 2}]
    assert (await storage.audit.recent(other))[0].data == {}


async def test_audit_unknown_company_and_bad_data(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.audit.append(424242, "x")
    cid = await _company(storage)
    with pytest.raises(ValidationError):
        await storage.audit.append(cid, "x", {"bad": "\x00"})
    assert await storage.audit.recent(cid) == []


# -- webhook inbox ----------------------------------------------------------------------------


async def test_inbox_dedupes(storage: Storage) -> None:
    cid = await _company(storage)
    other = await _company(storage, 2)
    assert await storage.inbox.put(cid, "evt-1", "booking_created", {"id": 1}) is PutResult.NEW
    assert (
        await storage.inbox.put(cid, "evt-1", "booking_created", {"id": 1}) is PutResult.DUPLICATE
    )
    assert await storage.inbox.put(other, "evt-1", "booking_created", {"id": 1}) is PutResult.NEW
    assert await storage.inbox.pending_count() == 2


async def test_inbox_claim_lease_and_expiry(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    for i in range(5):
        await storage.inbox.put(cid, f"e{i}", "record_updated", {"n": i})
    first = await storage.inbox.claim(3, lease=30)
    assert [e.payload["n"] for e in first] == [0, 1, 2]
    assert all(e.attempts == 1 for e in first)
    second = await storage.inbox.claim(10, lease=30)
    assert [e.payload["n"] for e in second] == [3, 4]
    assert await storage.inbox.claim(10) == []
    wall.advance(31)  # the claimer "crashed": its leases run out
    again = await storage.inbox.claim(10, lease=30)
    assert [e.payload["n"] for e in again] == [0, 1, 2, 3, 4]
    assert all(e.attempts == 2 for e in again)


async def test_inbox_done_and_failed(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    await storage.inbox.put(cid, "a", "t", {})
    await storage.inbox.put(cid, "b", "t", {})
    await storage.inbox.put(cid, "c", "t", {})
    a, b, c = await storage.inbox.claim(10)
    await storage.inbox.mark_done(a.id)
    await storage.inbox.mark_failed(b.id, "YClients said 500", retry_in=60)
    await storage.inbox.mark_failed(c.id, "malformed", retry_in=None)
    done = await storage.inbox.get(a.id)
    assert done is not None and done.status == "done" and done.processed_at == wall()
    failed = await storage.inbox.get(b.id)
    assert failed is not None and failed.status == "failed"
    assert failed.last_error == "YClients said 500" and failed.claimed_until is None
    assert await storage.inbox.pending_count() == 1
    wall.advance(59)
    assert await storage.inbox.claim(10) == []
    wall.advance(2)
    retried = await storage.inbox.claim(10)
    assert [e.id for e in retried] == [b.id]
    assert retried[0].attempts == 2
    dead = await storage.inbox.get(c.id)
    assert dead is not None and dead.status == "dead" and dead.last_error == "malformed"
    with pytest.raises(NotFound):
        await storage.inbox.mark_done(999999)


async def test_inbox_claim_for_company_keeps_order(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    other = await _company(storage, 2)
    for i in range(4):
        await storage.inbox.put(cid, f"k{i}", "t", {"n": i})
    await storage.inbox.put(other, "o", "t", {"n": 99})
    batch = await storage.inbox.claim_for_company(cid, 2, lease=30)
    assert [e.payload["n"] for e in batch] == [0, 1]
    # While the company has a live claim nobody else gets its later events...
    assert await storage.inbox.claim_for_company(cid, 10) == []
    # ...but other companies are unaffected.
    assert [e.payload["n"] for e in await storage.inbox.claim_for_company(other)] == [99]
    for event in batch:
        await storage.inbox.mark_done(event.id)
    rest = await storage.inbox.claim_for_company(cid, 10)
    assert [e.payload["n"] for e in rest] == [2, 3]


async def test_inbox_rejects_bad_input(storage: Storage) -> None:
    cid = await _company(storage)
    with pytest.raises(ValidationError):
        await storage.inbox.put(cid, "", "t", {})
    with pytest.raises(ValidationError):
        await storage.inbox.put(cid, "k", "t", {"x": "\x00"})
    with pytest.raises(NotFound):
        await storage.inbox.put(777777, "k", "t", {})


# -- outbox ---------------------------------------------------------------------------------


async def test_outbox_enqueue_is_idempotent(storage: Storage) -> None:
    cid = await _company(storage)
    item = await storage.outbox.enqueue("activation_callback", "cb:1", cid, {"salon_id": 1})
    again = await storage.outbox.enqueue("activation_callback", "cb:1", cid, {"salon_id": 2})
    assert again == item and again.payload == {"salon_id": 1}
    assert await storage.outbox.backlog() == 1
    assert await storage.outbox.get_by_key("cb:1") == item
    assert await storage.outbox.get(item.id) == item


async def test_outbox_claim_attempts_and_terminal_states(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    now_item = await storage.outbox.enqueue("cb", "k1", cid, {})
    later = await storage.outbox.enqueue("cb", "k2", None, {}, delay=120)
    claimed = await storage.outbox.claim_due(10, lease=30)
    assert [i.id for i in claimed] == [now_item.id]
    assert await storage.outbox.claim_due(10) == []  # leased
    retry = await storage.outbox.record_attempt(
        now_item.id, AttemptOutcome.RETRY, error="HTTP 502", retry_in=10
    )
    assert retry.attempts == 1 and retry.status == "pending" and retry.last_error == "HTTP 502"
    assert await storage.outbox.claim_due(10) == []
    wall.advance(11)
    assert [i.id for i in await storage.outbox.claim_due(10)] == [now_item.id]
    delivered = await storage.outbox.record_attempt(now_item.id, AttemptOutcome.DELIVERED)
    assert delivered.status == "delivered" and delivered.attempts == 2
    assert delivered.delivered_at == wall()
    wall.advance(120)
    (due,) = await storage.outbox.claim_due(10)
    assert due.id == later.id
    failed = await storage.outbox.record_attempt(later.id, AttemptOutcome.FAILED, error="HTTP 403")
    assert failed.status == "failed" and failed.last_error == "HTTP 403"
    wall.advance(1000)
    assert await storage.outbox.claim_due(10) == []
    assert await storage.outbox.backlog() == 0
    reopened = await storage.outbox.reopen(later.id)
    assert reopened.status == "pending" and reopened.last_error == "HTTP 403"
    assert [i.id for i in await storage.outbox.claim_due(10)] == [later.id]
    with pytest.raises(NotFound):
        await storage.outbox.record_attempt(424242, AttemptOutcome.DELIVERED)


async def test_outbox_late_retry_report_never_reopens_a_finished_item(storage: Storage) -> None:
    """A worker whose lease ran out reports a retry after another delivered (or failed) the
    item: the finished item stays finished and is not claimed again."""
    delivered = await storage.outbox.enqueue("cb", "late-1", None, {})
    failed = await storage.outbox.enqueue("cb", "late-2", None, {})
    await storage.outbox.record_attempt(delivered.id, AttemptOutcome.DELIVERED)
    await storage.outbox.record_attempt(failed.id, AttemptOutcome.FAILED, error="HTTP 403")
    late = await storage.outbox.record_attempt(delivered.id, AttemptOutcome.RETRY, retry_in=0)
    assert late.status == "delivered" and late.attempts == 2
    late = await storage.outbox.record_attempt(failed.id, AttemptOutcome.RETRY, retry_in=0)
    assert late.status == "failed" and late.attempts == 2
    assert await storage.outbox.claim_due(10) == []


async def test_outbox_lease_expiry_returns_item(storage: Storage, wall: FakeWallClock) -> None:
    item = await storage.outbox.enqueue("cb", "lease", None, {"x": 1})
    assert len(await storage.outbox.claim_due(lease=5)) == 1
    wall.advance(6)
    (again,) = await storage.outbox.claim_due(lease=5)
    assert again.id == item.id


async def test_racing_enqueues_make_one_item(storage: Storage) -> None:
    results = []

    async def enqueue(n: int) -> None:
        results.append(await storage.outbox.enqueue("cb", "same-key", None, {"n": n}))

    async with trio.open_nursery() as nursery:
        for n in range(12):
            nursery.start_soon(enqueue, n)
    assert len({r.id for r in results}) == 1
    assert len({repr(r.payload) for r in results}) == 1
    assert await storage.outbox.backlog() == 1


# -- messages -------------------------------------------------------------------------------


async def test_messages_inbound_dedupe_and_outbound_status(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    assert await storage.messages.record_inbound(cid, "WAID1", "79001112233", "Здравствуйте!")
    assert not await storage.messages.record_inbound(cid, "WAID1", "79001112233", "Здравствуйте!")
    wall.advance(1)
    out = await storage.messages.record_outbound(cid, "79001112233", "Добрый день")
    assert out.status == "queued" and out.direction == "out" and out.wa_message_id is None
    wall.advance(1)
    sent = await storage.messages.set_status(out.id, "sent", wa_message_id="3EB0OUT")
    assert sent.status == "sent" and sent.wa_message_id == "3EB0OUT" and sent.updated_at == wall()
    assert await storage.messages.get_by_wa_id(cid, "3EB0OUT") == sent
    inbound = await storage.messages.get_by_wa_id(cid, "WAID1")
    assert inbound is not None and inbound.direction == "in" and inbound.status == "received"
    recent = await storage.messages.recent(cid)
    assert [m.id for m in recent] == [sent.id, inbound.id]
    assert await storage.messages.recent(cid, peer_phone="70000000000") == []
    with pytest.raises(ValidationError):
        await storage.messages.set_status(out.id, "exploded")
    with pytest.raises(NotFound):
        await storage.messages.set_status(999999, "sent")
    with pytest.raises(ValidationError):
        await storage.messages.record_inbound(cid, "W2", "7900", "nul\x00")


async def test_send_attempts_are_counted_and_survive_in_the_row(
    storage: Storage, wall: FakeWallClock
) -> None:
    """Each hand-over to WhatsApp is counted before it happens; a sent message with more than
    one attempt is one a client may have received twice."""
    cid = await _company(storage)
    out = await storage.messages.record_outbound(
        cid, "79001112233", "Напоминание", wa_message_id="W9"
    )
    assert out.attempts == 0
    wall.advance(1)
    assert [await storage.messages.count_attempt(out.id) for _ in range(3)] == [1, 2, 3]
    row = await storage.messages.get_by_wa_id(cid, "W9")
    assert row is not None and row.attempts == 3 and row.updated_at == wall()
    sent = await storage.messages.set_status(out.id, "sent")
    assert sent.attempts == 3  # the status write keeps the count
    assert [m.attempts for m in await storage.messages.recent(cid)] == [3]
    await storage.messages.record_inbound(cid, "IN9", "79001112233", "Спасибо")
    inbound = await storage.messages.get_by_wa_id(cid, "IN9")
    assert inbound is not None and inbound.attempts == 0
    with pytest.raises(NotFound):
        await storage.messages.count_attempt(inbound.id)  # only outbound messages are sent
    with pytest.raises(NotFound):
        await storage.messages.count_attempt(999999)


async def test_message_ids_are_per_company(storage: Storage) -> None:
    a = await _company(storage)
    b = await _company(storage, 2)
    assert await storage.messages.record_inbound(a, "SAME", "7900", "x")
    assert await storage.messages.record_inbound(b, "SAME", "7900", "x")


async def test_pending_outbound_is_the_queued_send_queue_in_order(storage: Storage) -> None:
    a = await _company(storage)
    b = await _company(storage, 2)
    first = await storage.messages.record_outbound(a, "79001112233", "первое", wa_message_id="W1")
    second = await storage.messages.record_outbound(a, "79001112233", "второе", wa_message_id="W2")
    third = await storage.messages.record_outbound(a, "79001112233", "третье", wa_message_id="W3")
    await storage.messages.record_outbound(b, "79001112233", "чужое", wa_message_id="W4")
    await storage.messages.record_inbound(a, "IN1", "79001112233", "входящее")
    await storage.messages.set_status(second.id, "sent")
    pending = await storage.messages.pending_outbound(a)
    assert [m.id for m in pending] == [first.id, third.id]
    assert [m.wa_message_id for m in pending] == ["W1", "W3"]
