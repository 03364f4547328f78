"""Contract: neonize's sent-message ledger (``Storage.sent``, table ``whatsapp_sent``, issue 13)
on the in-memory twin and on PostgreSQL, and retention pruning it."""

from __future__ import annotations

import pytest

from storage import NotFound, Storage, ValidationError
from tests.support.clock import FakeWallClock

DAY = 86_400.0
KEEP = 30 * DAY


async def test_a_recorded_send_is_known_per_company_and_the_first_record_stays(
    storage: Storage,
) -> None:
    first = (await storage.companies.create(1)).company.id
    second = (await storage.companies.create(2)).company.id
    assert await storage.sent.sent(first, "m-1") is None
    await storage.sent.record(first, "m-1", "3EB0AAA")
    await storage.sent.record(first, "m-1", "3EB0BBB")  # a racing second record changes nothing
    assert await storage.sent.sent(first, "m-1") == "3EB0AAA"
    assert await storage.sent.sent(second, "m-1") is None  # another salon's ids are its own
    await storage.sent.record(second, "m-1", "3EB0CCC")
    assert await storage.sent.sent(second, "m-1") == "3EB0CCC"


async def test_recent_lists_the_newest_whatsapp_ids_first(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    for n in range(4):
        await storage.sent.record(company, f"m-{n}", f"WA{n}")
        wall.advance(1)
    assert await storage.sent.recent(company) == ["WA3", "WA2", "WA1", "WA0"]
    assert await storage.sent.recent(company, limit=2) == ["WA3", "WA2"]
    assert await storage.sent.recent(company + 1) == []


async def test_bad_input_is_refused(storage: Storage) -> None:
    company = (await storage.companies.create(1)).company.id
    with pytest.raises(NotFound):
        await storage.sent.record(company + 1, "m-1", "WA1")
    with pytest.raises(ValidationError):
        await storage.sent.record(company, "", "WA1")
    with pytest.raises(ValidationError):
        await storage.sent.record(company, "m-1", "")
    with pytest.raises(ValidationError):
        await storage.sent.sent(0, "m-1")
    with pytest.raises(ValidationError):
        await storage.sent.recent(company, limit=0)


async def test_retention_prunes_old_rows_but_keeps_those_of_queued_messages(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    # Three old sends: one marked sent, one whose message is still queued (its outcome was
    # lost: the resend is still to come), one with no message row at all.
    done = await storage.messages.record_outbound(company, "79000000001", "a", wa_message_id="d")
    await storage.messages.set_status(done.id, "sent")
    await storage.messages.record_outbound(company, "79000000001", "b", wa_message_id="q")
    for ours in ("d", "q", "x"):
        await storage.sent.record(company, ours, f"WA-{ours}")
    wall.advance(20 * DAY)
    await storage.sent.record(company, "young", "WA-young")
    wall.advance(15 * DAY)

    pruned = await storage.retention.prune(KEEP)
    assert pruned.sent == 2 and pruned.total >= 2
    assert await storage.sent.sent(company, "d") is None
    assert await storage.sent.sent(company, "x") is None
    assert await storage.sent.sent(company, "q") == "WA-q"  # a resend of it is still suppressed
    assert await storage.sent.sent(company, "young") == "WA-young"
    assert await storage.sent.recent(company) == ["WA-young", "WA-q"]
    assert (await storage.retention.prune(KEEP)).sent == 0


async def test_ledger_pruning_goes_in_bounded_batches(
    storage: Storage, wall: FakeWallClock
) -> None:
    company = (await storage.companies.create(1)).company.id
    for n in range(5):
        await storage.sent.record(company, f"m-{n}", f"WA{n}")
        wall.advance(60)
    wall.advance(KEEP)
    counts = [(await storage.retention.prune(KEEP, limit=2)).sent for _ in range(4)]
    assert counts == [2, 2, 1, 0]
    assert await storage.sent.recent(company) == []
