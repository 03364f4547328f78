"""Fencing by lease epoch, the same on PostgreSQL and in memory: a company actor's handle
(``Storage.fenced``) writes while its epoch is the company's current one, and once another
node took the lease (``epochs.take``) every call with the old epoch is refused with
``StaleEpoch`` and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from storage import NotFound, StaleEpoch, Storage


async def test_epochs_start_at_zero_and_only_grow(storage: Storage) -> None:
    cid = (await storage.companies.create(301)).company.id
    assert await storage.epochs.current(cid) == 0
    assert await storage.epochs.take(cid) == 1
    assert await storage.epochs.take(cid) == 2
    assert await storage.epochs.current(cid) == 2
    with pytest.raises(NotFound):
        await storage.epochs.take(999_999)


async def test_take_many_bumps_each_epoch_in_one_call(storage: Storage) -> None:
    """``take_many`` (a take-over's epoch bumps, one statement): each company's epoch grows
    by one (1 the first time), as ``take`` would; a company that does not exist is left out;
    the handles of the epochs it replaced are refused, those of the new ones write."""
    first = (await storage.companies.create(311)).company.id
    second = (await storage.companies.create(312)).company.id
    old = await storage.epochs.take(first)
    assert await storage.epochs.take_many([]) == {}
    assert await storage.epochs.take_many([second, first, 999_999]) == {first: 2, second: 1}
    assert await storage.epochs.take_many([first]) == {first: 3}
    assert await storage.epochs.current(first) == 3 and await storage.epochs.current(second) == 1
    with pytest.raises(StaleEpoch):
        await storage.fenced(first, old).audit.append(first, "linked", {})
    await storage.fenced(first, 3).audit.append(first, "linked", {})
    await storage.fenced(second, 1).audit.append(second, "linked", {})


async def test_the_current_epoch_writes(storage: Storage) -> None:
    cid = (await storage.companies.create(302)).company.id
    epoch = await storage.epochs.take(cid)
    mine = storage.fenced(cid, epoch)
    moved = await mine.companies.transition(cid, ["pending"], "linking", last_error=None)
    assert moved is not None and moved.integration_status == "linking"
    await mine.audit.append(cid, "linked", {"from": "pending"})
    await mine.outbox.enqueue("activation", f"activation:{cid}", cid, {"company_id": cid})
    row = await mine.messages.record_outbound(cid, "79001234567", "hi", wa_message_id="W1")
    assert await mine.messages.count_attempt(row.id) == 1
    await mine.messages.set_status(row.id, "sent")
    assert await mine.messages.record_inbound(cid, "W2", "79001234567", "hello")
    stored = await storage.companies.get(cid)
    assert stored is not None and stored.integration_status == "linking"
    assert (await storage.messages.get_by_wa_id(cid, "W1")) is not None


async def test_a_stale_epoch_is_refused_and_changes_nothing(storage: Storage) -> None:
    cid = (await storage.companies.create(303)).company.id
    old_epoch = await storage.epochs.take(cid)
    refused: list[tuple[int, int]] = []
    old = storage.fenced(cid, old_epoch, lambda c, e: refused.append((c, e)))
    row = await old.messages.record_outbound(cid, "79001234567", "queued", wa_message_id="W0")
    new_epoch = await storage.epochs.take(cid)  # another node took the lease
    assert new_epoch == old_epoch + 1
    new = storage.fenced(cid, new_epoch)
    await new.companies.update(cid, last_error="new owner")

    writes: list[Callable[[], Awaitable[Any]]] = [
        lambda: old.companies.update(cid, last_error="old owner"),
        lambda: old.companies.transition(cid, ["pending"], "linking"),
        lambda: old.companies.revoke_credentials(cid),
        lambda: old.audit.append(cid, "stale", {}),
        lambda: old.outbox.enqueue("activation", f"activation:{cid}", cid, {}),
        lambda: old.messages.record_inbound(cid, "W9", "79001234567", "late"),
        lambda: old.messages.record_outbound(cid, "79001234567", "late", wa_message_id="W8"),
        lambda: old.messages.set_status(row.id, "failed"),
        lambda: old.messages.count_attempt(row.id),
        lambda: old.companies.get(cid),  # an old owner cannot even read on as if it still owned
    ]
    for write in writes:
        with pytest.raises(StaleEpoch) as info:
            await write()
        assert (info.value.company_id, info.value.epoch, info.value.current) == (
            cid,
            old_epoch,
            new_epoch,
        )
    assert refused == [(cid, old_epoch)] * len(writes)

    company = await storage.companies.get(cid)
    assert company is not None
    assert company.last_error == "new owner"
    assert company.integration_status == "pending"
    assert company.api_key_prefix is not None  # credentials not revoked
    assert await storage.audit.recent(cid) == []
    assert await storage.outbox.get_by_key(f"activation:{cid}") is None
    assert await storage.messages.get_by_wa_id(cid, "W9") is None
    assert await storage.messages.get_by_wa_id(cid, "W8") is None
    kept = await storage.messages.get_by_wa_id(cid, "W0")
    assert kept is not None and kept.status == "queued" and kept.attempts == 0
    # The new owner writes on.
    assert await new.messages.record_inbound(cid, "W10", "79001234567", "fresh")


async def test_an_epoch_of_another_company_is_no_pass(storage: Storage) -> None:
    first = (await storage.companies.create(304)).company.id
    second = (await storage.companies.create(305)).company.id
    await storage.epochs.take(first)
    await storage.epochs.take(first)
    epoch = await storage.epochs.take(second)  # 1: not the first company's 2
    with pytest.raises(StaleEpoch):
        await storage.fenced(first, epoch).companies.update(first, last_error="x")


async def test_a_take_racing_a_fenced_write_never_lets_the_write_land_after(
    storage: Storage,
) -> None:
    """Many writes of the old owner race the new owner's take: each either landed before the
    take or was refused; none lands after it (every later read sees the new owner's state)."""
    cid = (await storage.companies.create(306)).company.id
    old = storage.fenced(cid, await storage.epochs.take(cid))
    outcomes: list[str] = []

    async def write(n: int) -> None:
        try:
            await old.messages.record_inbound(cid, f"R{n}", "79001234567", str(n))
        except StaleEpoch:
            outcomes.append("refused")
        else:
            outcomes.append("landed")

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(write, n)
            new_epoch = await storage.epochs.take(cid)
        after = [m.wa_message_id for m in await storage.messages.recent(cid, 100)]
        assert len(after) == outcomes.count("landed")
        with pytest.raises(StaleEpoch):
            await write_after(old, cid)
        assert await storage.epochs.current(cid) == new_epoch
        assert [m.wa_message_id for m in await storage.messages.recent(cid, 100)] == after


async def write_after(old: Storage, cid: int) -> None:
    await old.messages.record_inbound(cid, "LATE", "79001234567", "late")
