"""The record worker's decisions one drain at a time (in-memory storage with a wall clock we
move, the fake YClients on loopback without its limits), and the record parsing it relies on.

``drain_company`` is called directly: no polling loop, no timers, so each test states exactly
which events were claimed and how each was settled.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import trio

from actors.yclients import (
    InboxOutcome,
    InboxPolicy,
    RecordInboxWorker,
    RetryPolicy,
    SalonDetails,
    SalonService,
    SalonStaff,
    ServiceCategory,
    YClientsClient,
    record_from_api,
)
from actors.yclients._records import is_complete
from actors.yclients._sync import (
    stored_categories,
    stored_details,
    stored_services,
    stored_staff,
)
from storage import Storage, open_storage
from tests.fakes.yclients import LOTOS_ID, ORCHID_ID, PARTNER_TOKEN, FakeYClients
from tests.support.clock import FakeWallClock

from .test_inbox import fake_record

POLICY = InboxPolicy(backoff_initial=10.0, backoff_max=80.0, auth_retry=3600.0)


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def memory(wall: FakeWallClock) -> AsyncIterator[Storage]:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage:
        yield storage


@pytest.fixture
async def yclients(fake: FakeYClients) -> AsyncIterator[YClientsClient]:
    async with YClientsClient(
        fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=RetryPolicy(attempts=1)
    ) as client:
        yield client


def worker_for(storage: Storage, client: YClientsClient | None) -> RecordInboxWorker:
    return RecordInboxWorker(storage, client, policy=POLICY, rng=random.Random(3))


def event(record_id: int, status: str, data: Any = None, salon: int = LOTOS_ID) -> dict[str, Any]:
    return {
        "company_id": salon,
        "resource": "record",
        "resource_id": record_id,
        "status": status,
        "data": data if data is not None else {"id": record_id},
    }


async def put(storage: Storage, cid: int, key: str, kind: str, payload: dict[str, Any]) -> None:
    await storage.inbox.put(cid, key, kind, payload)


# -- decisions ------------------------------------------------------------------------------


async def test_record_gone_in_yclients_is_flagged_deleted(
    memory: Storage, yclients: YClientsClient
) -> None:
    cid = (await memory.companies.create(LOTOS_ID)).company.id
    await put(memory, cid, "a", "record:update", event(404404, "update"))
    worker = worker_for(memory, yclients)
    assert await worker.drain_company(cid) == 1
    record = await memory.records.get(cid, 404404)
    assert record is not None and record.deleted
    assert worker.statistics().count(InboxOutcome.DELETED) == 1


async def test_permanent_problems_go_dead_and_the_next_events_go_on(
    memory: Storage, yclients: YClientsClient, fake: FakeYClients
) -> None:
    cid = (await memory.companies.create(LOTOS_ID)).company.id
    fake.salons[LOTOS_ID].records[71] = fake_record(71, changed="2026-01-15T12:00:00+03:00")
    await put(memory, cid, "a", "record:create", event(70, "create", salon=ORCHID_ID))
    await put(memory, cid, "b", "record:create", {"resource": "record", "status": "create"})
    fake.fail(f"/api/v1/record/{LOTOS_ID}/72", 422, message="Нельзя", times=1)
    await put(memory, cid, "c", "record:create", event(72, "create"))
    await put(memory, cid, "d", "record:create", event(71, "create"))
    worker = worker_for(memory, yclients)
    assert await worker.drain_company(cid) == 4
    states = [await memory.inbox.get(i) for i in (1, 2, 3, 4)]
    assert [e.status for e in states if e] == ["dead", "dead", "dead", "done"]
    errors = [e.last_error or "" for e in states if e]
    assert "salon 101002" in errors[0] and "resource_id" in errors[1] and "422" in errors[2]
    assert (await memory.records.get(cid, 71)) is not None


async def test_waiting_for_yclients_keeps_the_order(memory: Storage, wall: FakeWallClock) -> None:
    cid = (await memory.companies.create(LOTOS_ID)).company.id
    await put(memory, cid, "a", "record:create", event(81, "create"))
    complete = fake_record(82, changed="2026-01-15T12:00:00+03:00")
    await put(memory, cid, "b", "record:update", event(82, "update", complete))
    worker = worker_for(memory, None)  # YClients not configured
    assert await worker.drain_company(cid) == 0
    first, second = await memory.inbox.get(1), await memory.inbox.get(2)
    assert first is not None and second is not None
    assert (first.status, first.last_error) == ("failed", "the YClients client is not configured")
    assert (second.status, second.last_error) == ("failed", "waiting for event 1")
    delay = (first.next_attempt_at - wall.now).total_seconds()
    assert 5.0 <= delay <= 10.0  # first retry: [initial/2, initial]
    assert second.next_attempt_at == first.next_attempt_at
    assert await memory.records.get(cid, 82) is None  # not stored ahead of its turn
    wall.advance(delay)
    assert await worker.drain_company(cid) == 0  # still not configured: backoff grows
    first = await memory.inbox.get(1)
    assert first is not None and first.attempts == 2
    assert 10.0 <= (first.next_attempt_at - wall.now).total_seconds() <= 20.0


async def test_refused_credentials_wait_for_the_auth_retry(
    memory: Storage, yclients: YClientsClient, fake: FakeYClients, wall: FakeWallClock
) -> None:
    cid = (await memory.companies.create(LOTOS_ID)).company.id
    fake.fail(f"/api/v1/record/{LOTOS_ID}/*", 401, times=None)
    await put(memory, cid, "a", "record:create", event(91, "create"))
    assert await worker_for(memory, yclients).drain_company(cid) == 0
    first = await memory.inbox.get(1)
    assert first is not None and first.status == "failed"
    assert first.next_attempt_at == wall.now + timedelta(seconds=3600)


async def test_uninstalled_company_and_bare_deletions(memory: Storage) -> None:
    gone = (await memory.companies.create(LOTOS_ID)).company.id
    here = (await memory.companies.create(ORCHID_ID)).company.id
    await memory.companies.transition(gone, ["pending"], "uninstalled")
    await put(memory, gone, "a", "record:create", event(1, "create"))
    await put(memory, here, "b", "record:delete", event(2, "delete", salon=ORCHID_ID))
    worker = worker_for(memory, None)  # neither needs YClients
    assert await worker.drain_company(gone) == 1
    assert await worker.drain_company(here) == 1
    assert await memory.records.get(gone, 1) is None
    tomb = await memory.records.get(here, 2)
    assert tomb is not None and tomb.deleted
    stats = worker.statistics()
    assert stats.count(InboxOutcome.IGNORED) == 1 and stats.count(InboxOutcome.DELETED) == 1


# -- parsing --------------------------------------------------------------------------------


def test_record_from_api_reads_loose_shapes() -> None:
    raw = {
        "id": "501",
        "staff_id": "2001",
        "services": [{"id": 1001}, "junk"],
        "client": {"id": 3001, "name": " Мария ", "phone": "+7 (916) 123-45-67"},
        "datetime": "2026-01-20 14:00:00",  # naive: the salon's local time
        "length": "3600",
        "attendance": "-1",
        "deleted": "0",
        "api_id": 77,
        "last_change_date": "2026-01-15T12:00:00+03:00",
    }
    record = record_from_api(9, raw, timezone="Asia/Yekaterinburg")
    assert (record.company_id, record.record_id, record.staff_id) == (9, 501, 2001)
    assert record.starts_at == datetime(2026, 1, 20, 9, 0, tzinfo=UTC)  # UTC+5
    assert record.changed_at == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert (record.client_phone, record.client_name, record.client_id) == (
        "79161234567",
        "Мария",
        3001,
    )
    assert record.services == [{"id": 1001}]
    assert (record.seance_length, record.attendance, record.deleted) == (3600, -1, False)
    assert record.api_id == "77" and record.raw is raw
    assert record_from_api(9, {"id": 5}, deleted=True).deleted is True
    with pytest.raises(ValueError, match="id"):
        record_from_api(9, {"id": 0})


def test_is_complete_needs_the_whole_record_and_its_change_time() -> None:
    full = fake_record(5, changed="2026-01-15T12:00:00+03:00")
    assert is_complete(full, 5)
    assert not is_complete(full, 6)
    assert not is_complete({"id": 5}, 5)
    assert not is_complete({**full, "last_change_date": ""}, 5)
    assert not is_complete({k: v for k, v in full.items() if k != "client"}, 5)
    assert not is_complete(None, 5)


def test_backoff_doubles_within_bounds() -> None:
    rng = random.Random(1)
    for attempts, (low, high) in {1: (5, 10), 2: (10, 20), 4: (40, 80), 9: (40, 80)}.items():
        assert all(low <= POLICY.backoff(attempts, rng) <= high for _ in range(50))


def test_catalog_rows_fit_the_columns() -> None:
    services = [
        SalonService(7, "x" * 300, 0, Decimal("10.5"), None, 600, True),
        SalonService(7, "duplicate", 1, None, None, None, True),
        SalonService(8, "  ", 3, None, None, -5, False),
    ]
    rows = stored_services(services)
    assert [r.service_id for r in rows] == [7, 8]
    assert len(rows[0].title) == 255 and rows[0].category_id is None and rows[0].price_min == 10.5
    assert rows[1].title == "#8" and rows[1].duration is None and rows[1].active is False
    staff = stored_staff([SalonStaff(3, "", "", True), SalonStaff(3, "again", "", False)])
    assert [(m.staff_id, m.name, m.specialization) for m in staff] == [(3, "#3", None)]
    details = stored_details(
        SalonDetails(1, "Салон", "адрес", "+7 (495) 123-45-67 доб. 89", "Europe/Moscow")
    )
    assert details.phone == "74951234567"  # canonical, the extension dropped
    assert details.title == "Салон" and details.timezone == "Europe/Moscow"


def test_catalog_rows_carry_what_the_assistant_reads() -> None:
    service = SalonService(
        9,
        "Маникюр",
        62,
        None,
        None,
        3600,
        True,
        comment="  " + "о" * 10_050,
        staff_ids=(5, 0, 2**31, 6),
        synonyms=("шеллак", " " * 3, "шеллак", "x" * 300, *(f"w{n}" for n in range(60))),
    )
    (row,) = stored_services([service])
    assert row.description is not None and len(row.description) == 10_000
    assert row.staff_ids == (5, 6)  # ids our integer columns cannot hold are dropped
    assert row.synonyms[:2] == ("шеллак", "x" * 255) and len(row.synonyms) == 50
    (bare,) = stored_services([SalonService(10, "Стрижка", None, None, None, None, True)])
    assert (bare.description, bare.staff_ids, bare.synonyms) == (None, (), ())
    categories = stored_categories(
        [ServiceCategory(1, "  Волосы "), ServiceCategory(1, "again"), ServiceCategory(2, "")]
    )
    assert [(c.category_id, c.title) for c in categories] == [(1, "Волосы"), (2, "#2")]
    hours = stored_details(
        SalonDetails(1, "С", "", "", "Europe/Moscow", schedule="Пн–Пт 9:00–20:00, Сб 10:00–18:00")
    )
    assert (hours.schedule, hours.opens_at, hours.closes_at) == (
        "Пн–Пт 9:00–20:00, Сб 10:00–18:00",
        time(9),
        time(20),
    )
    unknown = stored_details(SalonDetails(1, "С", "", "", "Europe/Moscow"))
    assert (unknown.schedule, unknown.opens_at, unknown.closes_at) == ("", None, None)


async def test_each_record_event_tells_the_salon_whose_records_changed(
    memory: Storage, yclients: YClientsClient
) -> None:
    """The assistant's cached free times of the salon are dropped on every record event."""
    cid = (await memory.companies.create(LOTOS_ID)).company.id
    complete = fake_record(91, changed="2026-01-15T12:00:00+03:00")
    await put(memory, cid, "a", "record:create", event(91, "create", complete))
    await put(memory, cid, "b", "record:delete", event(91, "delete"))
    told: list[int] = []
    worker = RecordInboxWorker(memory, yclients, policy=POLICY, on_record=told.append)
    assert await worker.drain_company(cid) == 2
    assert told == [LOTOS_ID, LOTOS_ID]
