"""Contract (memory and PostgreSQL): salon records, newest change wins; the inbox's event-type
filters and ``due_companies``; ``list_sync_due`` for the catalog sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import NotFound, SalonRecord, Storage, ValidationError
from storage._records import supersedes
from tests.support.clock import FakeWallClock

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


def _record(cid: int, rid: int = 5001, *, minute: int | None = 0, **fields: object) -> SalonRecord:
    base: dict[str, object] = {
        "client_id": 3001,
        "client_phone": "79161234567",
        "client_name": "Мария Петрова",
        "staff_id": 2001,
        "services": [{"id": 1001, "title": "Стрижка женская", "cost": 1500}],
        "starts_at": datetime(2026, 1, 20, 11, 0, tzinfo=UTC),
        "seance_length": 3600,
        "attendance": 0,
        "api_id": "aiadmin-1",
        "changed_at": None if minute is None else T0 + timedelta(minutes=minute),
        "raw": {"id": rid},
    }
    base.update(fields)
    return SalonRecord(cid, rid, **base)  # type: ignore[arg-type]


# -- records --------------------------------------------------------------------------------


async def test_apply_inserts_and_reads_back(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    assert await storage.records.apply(_record(cid)) is True
    got = await storage.records.get(cid, 5001)
    assert got is not None
    assert got.client_phone == "79161234567" and got.client_name == "Мария Петрова"
    assert got.services == [{"id": 1001, "title": "Стрижка женская", "cost": 1500}]
    assert got.starts_at == datetime(2026, 1, 20, 11, 0, tzinfo=UTC)
    assert got.changed_at == T0 and got.deleted is False and got.updated_at == wall.now
    assert await storage.records.get(cid, 5002) is None


async def test_get_many_reads_records_of_several_companies_by_key(storage: Storage) -> None:
    mine = await _company(storage, 1)
    theirs = await _company(storage, 2)
    await storage.records.apply(_record(mine, 5001))
    await storage.records.apply(_record(mine, 5002, deleted=True))
    await storage.records.apply(_record(theirs, 5001, staff_id=2009))
    got = await storage.records.get_many(
        [(mine, 5001), (mine, 5002), (theirs, 5001), (theirs, 5002), (mine, 5001)]
    )
    assert set(got) == {(mine, 5001), (mine, 5002), (theirs, 5001)}
    for (cid, rid), record in got.items():
        assert record == await storage.records.get(cid, rid)
    assert got[(theirs, 5001)].staff_id == 2009 and got[(mine, 5002)].deleted is True
    assert await storage.records.get_many([]) == {}
    assert await storage.records.get_many([(theirs + 100, 5001)]) == {}


async def test_newer_change_wins_in_any_order(storage: Storage) -> None:
    cid = await _company(storage)
    newer = _record(cid, minute=10, staff_id=2003, attendance=2)
    older = _record(cid, minute=5, staff_id=2002)
    assert await storage.records.apply(newer) is True
    assert await storage.records.apply(older) is False  # late delivery: ignored
    got = await storage.records.get(cid, 5001)
    assert got is not None and got.staff_id == 2003 and got.attendance == 2
    assert got.changed_at == T0 + timedelta(minutes=10)
    # The same change again (a redelivery) is applied harmlessly.
    assert await storage.records.apply(newer) is True
    newest = _record(cid, minute=11, staff_id=2001)
    assert await storage.records.apply(newest) is True
    got = await storage.records.get(cid, 5001)
    assert got is not None and got.staff_id == 2001


async def test_deletion_is_sticky_against_older_or_timeless_writes(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.records.apply(_record(cid, minute=0))
    assert await storage.records.mark_deleted(cid, 5001, changed_at=T0 + timedelta(minutes=3))
    got = await storage.records.get(cid, 5001)
    # A bare deletion keeps what we knew about the visit.
    assert got is not None and got.deleted and got.client_name == "Мария Петрова"
    assert got.changed_at == T0 + timedelta(minutes=3)
    # An update from before the deletion, at the same second, or without a time: ignored.
    assert await storage.records.apply(_record(cid, minute=1)) is False
    assert await storage.records.apply(_record(cid, minute=3)) is False
    assert await storage.records.apply(_record(cid, minute=None)) is False
    got = await storage.records.get(cid, 5001)
    assert got is not None and got.deleted
    # A deletion without a time keeps the stored time.
    assert await storage.records.mark_deleted(cid, 5001) is True
    got = await storage.records.get(cid, 5001)
    assert got is not None and got.changed_at == T0 + timedelta(minutes=3)


async def test_old_deletion_does_not_hide_a_newer_state(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.records.apply(_record(cid, minute=10))
    assert await storage.records.mark_deleted(cid, 5001, changed_at=T0) is False
    got = await storage.records.get(cid, 5001)
    assert got is not None and not got.deleted


async def test_deletion_of_an_unknown_record_stores_a_tombstone(storage: Storage) -> None:
    cid = await _company(storage)
    assert await storage.records.mark_deleted(cid, 777, raw={"id": 777}) is True
    got = await storage.records.get(cid, 777)
    assert got is not None and got.deleted and got.raw == {"id": 777} and got.services == []
    # The create that was delivered after the delete does not resurrect it.
    assert await storage.records.apply(_record(cid, 777, minute=0)) is False


async def test_list_for_company(storage: Storage) -> None:
    cid = await _company(storage)
    other = await _company(storage, 2)
    await storage.records.apply(_record(cid, 1, starts_at=datetime(2026, 1, 21, tzinfo=UTC)))
    await storage.records.apply(_record(cid, 2, starts_at=datetime(2026, 1, 20, tzinfo=UTC)))
    await storage.records.apply(_record(cid, 3, starts_at=None))
    await storage.records.apply(_record(other, 4))
    await storage.records.mark_deleted(cid, 1)
    assert [r.record_id for r in await storage.records.list_for_company(cid)] == [2, 3]
    listed = await storage.records.list_for_company(cid, include_deleted=True)
    assert [r.record_id for r in listed] == [2, 1, 3]


async def test_list_for_company_pages_from_a_moment(storage: Storage) -> None:
    """``starting_after`` keeps records starting at or after it (none without a start), by
    (start, id); ``after_id`` continues a page within one start time, so equal starts are
    neither skipped nor repeated; deleted ones only when asked."""
    cid = await _company(storage)
    other = await _company(storage, 2)
    at = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
    starts = {
        10: at - timedelta(seconds=1),  # before: left out
        14: at,
        12: at,
        13: at,
        11: at + timedelta(hours=1),
        15: None,  # no start: left out
        16: at + timedelta(hours=2),
    }
    for rid, start in starts.items():
        await storage.records.apply(_record(cid, rid, starts_at=start))
    await storage.records.apply(_record(other, 17, starts_at=at))
    await storage.records.mark_deleted(cid, 16)

    async def ids(**kw: object) -> list[int]:
        got = await storage.records.list_for_company(cid, **kw)  # type: ignore[arg-type]
        return [r.record_id for r in got]

    assert await ids(starting_after=at) == [12, 13, 14, 11]
    assert await ids(starting_after=at, include_deleted=True) == [12, 13, 14, 11, 16]
    # bounded pages, each continuing after the last one's (start, id)
    pages: list[list[int]] = []
    cursor: dict[str, object] = {"starting_after": at}
    while page := await storage.records.list_for_company(cid, limit=2, **cursor):  # type: ignore[arg-type]
        pages.append([r.record_id for r in page])
        cursor = {"starting_after": page[-1].starts_at, "after_id": page[-1].record_id}
    assert pages == [[12, 13], [14, 11]]
    assert await ids(starting_after=at, after_id=13) == [14, 11]
    assert await ids(starting_after=at + timedelta(minutes=1)) == [11]
    with pytest.raises(ValidationError):
        await ids(after_id=12)  # a cursor without its moment
    with pytest.raises(ValidationError):
        await ids(starting_after=datetime(2026, 1, 20, 10, 0))  # naive


async def test_records_reject_bad_input(storage: Storage) -> None:
    cid = await _company(storage)
    with pytest.raises(NotFound):
        await storage.records.apply(_record(cid + 100))
    with pytest.raises(ValidationError):
        await storage.records.apply(_record(cid, 0))
    with pytest.raises(ValidationError):
        await storage.records.apply(_record(cid, changed_at=datetime(2026, 1, 1)))  # naive
    with pytest.raises(ValidationError):
        await storage.records.apply(_record(cid, client_name="x\x00y"))
    assert await storage.records.get(cid, 5001) is None
    # Record ids beyond 32 bits fit.
    assert await storage.records.apply(_record(cid, 2**40))
    assert await storage.records.get(cid, 2**40) is not None


def test_supersedes_rule() -> None:
    a, b = T0, T0 + timedelta(seconds=1)
    assert supersedes(b, False, a, False) and not supersedes(a, False, b, False)
    assert supersedes(a, False, a, False)  # redelivery
    assert supersedes(a, True, a, False) and not supersedes(a, False, a, True)
    assert supersedes(b, False, a, True)  # a strictly newer change may follow a deletion
    assert supersedes(None, False, a, False) and not supersedes(None, False, a, True)
    assert supersedes(a, True, None, False)


# -- inbox filters --------------------------------------------------------------------------


async def test_claim_for_company_type_filters(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.inbox.put(cid, "a", "record:create", {"n": 0})
    await storage.inbox.put(cid, "b", "lifecycle:freeze", {"n": 1})
    await storage.inbox.put(cid, "c", "client:update", {"n": 2})
    batch = await storage.inbox.claim_for_company(cid, 10, exclude_prefix="lifecycle:")
    assert [e.payload["n"] for e in batch] == [0, 2]
    # One claimer per company whatever the types: the lifecycle event waits for this claim.
    assert await storage.inbox.claim_for_company(cid, 10, prefix="lifecycle:") == []
    for event in batch:
        await storage.inbox.mark_done(event.id)
    assert await storage.inbox.claim_for_company(cid, 10, exclude_prefix="lifecycle:") == []
    only = await storage.inbox.claim_for_company(cid, 10, prefix="lifecycle:")
    assert [e.event_type for e in only] == ["lifecycle:freeze"]


async def test_due_companies(storage: Storage, wall: FakeWallClock) -> None:
    first = await _company(storage, 1)
    second = await _company(storage, 2)
    third = await _company(storage, 3)
    await storage.inbox.put(second, "a", "record:create", {})
    await storage.inbox.put(first, "b", "record:update", {})
    await storage.inbox.put(third, "c", "lifecycle:uninstall", {})
    await storage.inbox.put(second, "d", "record:delete", {})
    assert await storage.inbox.due_companies() == [second, first, third]
    assert await storage.inbox.due_companies(exclude_prefix="lifecycle:") == [second, first]
    assert await storage.inbox.due_companies(prefix="lifecycle:") == [third]
    assert await storage.inbox.due_companies(1) == [second]
    # Claimed events are not due; failed ones are due again when their time comes.
    [event] = await storage.inbox.claim_for_company(first, 10)
    assert await storage.inbox.due_companies(exclude_prefix="lifecycle:") == [second]
    await storage.inbox.mark_failed(event.id, "YClients down", retry_in=30)
    assert first not in await storage.inbox.due_companies()
    wall.advance(31)
    assert first in await storage.inbox.due_companies()


# -- sync due -------------------------------------------------------------------------------


async def test_list_sync_due(storage: Storage, wall: FakeWallClock) -> None:
    never = await _company(storage, 1)
    fresh = await _company(storage, 2)
    stale = await _company(storage, 3)
    failing = await _company(storage, 4)
    pending = await _company(storage, 5)
    disabled = await _company(storage, 6)
    for cid in (never, fresh, stale, failing, disabled):
        await storage.companies.transition(cid, ["pending"], "active")
    await storage.companies.update(disabled, sync_enabled=False)
    await storage.catalog.record_sync(stale, ok=True)
    await storage.catalog.record_sync(failing, ok=False, error="YClients down")
    wall.advance(600)
    await storage.catalog.record_sync(fresh, ok=True)
    now = wall.now

    async def due(succeeded: float, failed: float, limit: int = 100) -> list[int]:
        return await storage.catalog.list_sync_due(
            ["active"],
            succeeded_before=now - timedelta(seconds=succeeded),
            failed_before=now - timedelta(seconds=failed),
            limit=limit,
        )

    # Never attempted first, then the longest waiting.
    assert await due(300, 300) == [never, stale, failing]
    assert await due(3600, 300) == [never, failing]
    assert await due(3600, 3600) == [never]
    assert await due(0, 0, limit=2) == [never, stale]
    assert pending in await storage.catalog.list_sync_due(
        ["active", "pending"], succeeded_before=now, failed_before=now
    )
