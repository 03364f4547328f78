"""Contract: retention deletes finished inbox/outbox rows and old messages, keeps pending work
(memory and PostgreSQL, issue 17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from storage import AttemptOutcome, PutResult, Storage, ValidationError
from tests.support.clock import FakeWallClock

DAY = 86_400.0
KEEP = 30 * DAY


async def _seed(storage: Storage, company: int) -> dict[str, int]:
    """One row of every kind the rule distinguishes; returns their ids by name."""
    ids: dict[str, int] = {}
    for key in ("done", "dead", "pending", "failed"):
        await storage.inbox.put(company, key, "record", {"k": key})
    for event in await storage.inbox.claim_for_company(company, 10, lease=60):
        ids[event.dedupe_key] = event.id
    await storage.inbox.mark_done(ids["done"])
    await storage.inbox.mark_failed(ids["dead"], "gave up", retry_in=None)
    await storage.inbox.mark_failed(ids["failed"], "later", retry_in=5)
    for key in ("delivered", "refused", "waiting", "in_flight"):
        ids[key] = (await storage.outbox.enqueue("cb", key, company, {"k": key})).id
    await storage.outbox.record_attempt(ids["delivered"], AttemptOutcome.DELIVERED)
    await storage.outbox.record_attempt(ids["refused"], AttemptOutcome.FAILED, error="400")
    claimed = await storage.outbox.claim_due(10, lease=60)
    assert ids["in_flight"] in {i.id for i in claimed}
    await storage.outbox.record_attempt(ids["waiting"], AttemptOutcome.RETRY, retry_in=5)
    assert await storage.messages.record_inbound(company, "wa-in", "79000000001", "hi")
    ids["queued"] = (await storage.messages.record_outbound(company, "79000000001", "q")).id
    sent = await storage.messages.record_outbound(company, "79000000001", "s")
    await storage.messages.set_status(sent.id, "sent", wa_message_id="wa-out")
    ids["sent"] = sent.id
    return ids


async def test_old_finished_rows_go_and_pending_work_stays(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    ids = await _seed(storage, company)
    pending_before = await storage.inbox.pending_count()
    backlog_before = await storage.outbox.backlog()
    wall.advance(10 * DAY)
    assert (await storage.retention.prune(KEEP)).total == 0  # nothing is 30 days old yet

    wall.advance(25 * DAY)
    await storage.inbox.put(company, "recent", "fresh", {})
    recent = await storage.inbox.claim_for_company(company, 10, lease=60, prefix="fresh")
    await storage.inbox.mark_done(recent[0].id)
    pruned = await storage.retention.prune(KEEP)
    assert (pruned.inbox, pruned.outbox, pruned.messages) == (2, 2, 2)

    assert await storage.inbox.get(ids["done"]) is None
    assert await storage.inbox.get(ids["dead"]) is None
    assert await storage.inbox.get(ids["pending"]) is not None
    assert await storage.inbox.get(ids["failed"]) is not None
    assert await storage.inbox.get(recent[0].id) is not None
    assert await storage.inbox.pending_count() == pending_before
    assert await storage.outbox.get(ids["delivered"]) is None
    assert await storage.outbox.get_by_key("refused") is None
    assert await storage.outbox.get(ids["waiting"]) is not None
    assert await storage.outbox.get(ids["in_flight"]) is not None
    assert await storage.outbox.backlog() == backlog_before
    assert await storage.messages.get_by_wa_id(company, "wa-in") is None
    assert await storage.messages.get_by_wa_id(company, "wa-out") is None
    assert [m.id for m in await storage.messages.pending_outbound(company)] == [ids["queued"]]
    assert [m.id for m in await storage.messages.recent(company)] == [ids["queued"]]
    # The unique keys of deleted rows are free again, as after a DELETE.
    assert await storage.inbox.put(company, "done", "record", {}) is PutResult.NEW
    assert await storage.messages.record_inbound(company, "wa-in", "79000000001", "hi")
    assert (await storage.retention.prune(KEEP)).total == 0


async def test_prune_goes_in_bounded_batches_oldest_first(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    for n in range(5):
        await storage.inbox.put(company, f"e{n}", "record", {})
        wall.advance(60)
    for event in await storage.inbox.claim_for_company(company, 10, lease=60):
        await storage.inbox.mark_done(event.id)
    wall.advance(KEEP)
    counts = [(await storage.retention.prune(KEEP, limit=2)).inbox for _ in range(4)]
    assert counts == [2, 2, 1, 0]

    for n in range(3):
        await storage.inbox.put(company, f"f{n}", "record", {})
        wall.advance(60)
    for event in await storage.inbox.claim_for_company(company, 10, lease=60):
        await storage.inbox.mark_done(event.id)
    wall.advance(KEEP - 90)  # f0 and f1 are past the cutoff, f2 is not
    pruned = await storage.retention.prune(KEEP, limit=1)
    assert pruned.inbox == 1 and pruned.full(1)
    assert await storage.inbox.put(company, "f0", "record", {}) is PutResult.NEW
    assert await storage.inbox.put(company, "f1", "record", {}) is PutResult.DUPLICATE


async def test_outbox_age_counts_from_the_last_change(
    storage: Storage, wall: FakeWallClock
) -> None:
    early = await storage.outbox.enqueue("cb", "early", None, {})
    late = await storage.outbox.enqueue("cb", "late", None, {})
    reopened = await storage.outbox.enqueue("cb", "reopened", None, {})
    await storage.outbox.record_attempt(early.id, AttemptOutcome.DELIVERED)
    await storage.outbox.record_attempt(reopened.id, AttemptOutcome.FAILED)
    wall.advance(20 * DAY)
    await storage.outbox.record_attempt(late.id, AttemptOutcome.DELIVERED)
    await storage.outbox.reopen(reopened.id)
    wall.advance(15 * DAY)
    assert (await storage.retention.prune(KEEP)).outbox == 1
    assert await storage.outbox.get(early.id) is None
    assert await storage.outbox.get(late.id) is not None  # created 35 days ago, done 15
    assert await storage.outbox.get(reopened.id) is not None  # pending again


async def test_prune_refuses_nonsense(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        await storage.retention.prune(0)
    with pytest.raises(ValidationError):
        await storage.retention.prune(KEEP, limit=0)


async def test_the_newest_outbox_item_of_a_company_and_kind_stays(
    storage: Storage, wall: FakeWallClock
) -> None:
    # A company actor re-enqueues its activation callback by key at every start: the key
    # must still be there, or the callback would be sent again.
    first = (await storage.companies.create(1)).company.id
    second = (await storage.companies.create(2)).company.id
    marker = await storage.outbox.enqueue("activation", "act:1:a", first, {})
    other = await storage.outbox.enqueue("activation", "act:2:a", second, {})
    other_kind = await storage.outbox.enqueue("other", "x:1", first, {})
    for item in (marker, other, other_kind):
        await storage.outbox.record_attempt(item.id, AttemptOutcome.DELIVERED)
    wall.advance(KEEP + DAY)
    assert (await storage.retention.prune(KEEP)).outbox == 0
    again = await storage.outbox.enqueue("activation", "act:1:a", first, {})
    assert again.id == marker.id and again.status == "delivered"  # a no-op, as before

    relinked = await storage.outbox.enqueue("activation", "act:1:b", first, {})
    assert (await storage.retention.prune(KEEP)).outbox == 1  # superseded by the relink
    assert await storage.outbox.get(marker.id) is None
    assert await storage.outbox.get(relinked.id) is not None
    assert await storage.outbox.get(other.id) is not None
    assert await storage.outbox.get(other_kind.id) is not None


async def test_token_usage_days_older_than_the_retention_go(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    other = (await storage.companies.create(2)).company.id
    today = wall().date()  # 15 January 2026
    old, kept = today - dt.timedelta(days=31), today - dt.timedelta(days=29)
    for day in (old - dt.timedelta(days=1), old, kept, today):
        await storage.model_usage.add_usage(company, day, 100, 10)
    await storage.model_usage.add_usage(other, old, 7, 1)
    first = await storage.retention.prune(KEEP, limit=2)  # oldest first, a batch at a time
    assert first.token_usage == 2 and first.full(2)
    assert (await storage.retention.prune(KEEP, limit=2)).token_usage == 1
    assert (await storage.retention.prune(KEEP, limit=2)).token_usage == 0
    history = await storage.model_usage.history(company, old - dt.timedelta(days=1), today)
    assert [u.day for u in history] == [today, kept]  # the spending of the kept days stays
    assert await storage.model_usage.history(other, old, today) == []
    assert (await storage.model_usage.usage(company, kept)).prompt_tokens == 100


async def test_postgres_token_usage_prune_reads_the_day_index(real_storage: Storage) -> None:
    """20,000 salon-days, ten of them past the cutoff: a prune batch finds those ten through
    the day index (migration 0013), not by scanning every salon-day kept."""
    import storage._retention as retention

    assert real_storage.pg is not None

    async def plan(conn: Any) -> str:
        company = await conn.fetchval(
            "INSERT INTO companies (yclients_id, integration_status) VALUES (99001, 'active') "
            "RETURNING id"
        )
        await conn.execute(
            """INSERT INTO assistant_token_usage (company_id, day, prompt_tokens)
               SELECT $1, DATE '2026-10-22' + g, 1 FROM generate_series(0, 19999) g""",
            company,
        )
        await conn.execute("ANALYZE assistant_token_usage")
        rows = await conn.fetch(
            "EXPLAIN (COSTS OFF) " + retention._TOKEN_USAGE_SQL,
            dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
            dt.timedelta(days=30).total_seconds(),  # the cutoff's day: 2026-11-01
            500,
        )
        return "\n".join(r[0] for r in rows)

    found: str = await real_storage.pg.run(plan)  # type: ignore[arg-type]
    assert "idx_assistant_token_usage_day" in found, found
    assert "Seq Scan on assistant_token_usage" not in found, found
