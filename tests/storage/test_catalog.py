"""Contract: salon catalog replace-in-one-transaction and sync state."""

from __future__ import annotations

import pytest

from storage import NotFound, SalonDetails, SalonService, SalonStaff, Storage, ValidationError
from tests.support.clock import FakeWallClock

SERVICES = [
    SalonService(1, "Стрижка", category_id=10, price_min=1500, price_max=2500, duration=3600),
    SalonService(2, "Окрашивание", price_min=4000.5, duration=7200),
]
STAFF = [SalonStaff(5, "Анна", specialization="Стилист", rating=4.8), SalonStaff(6, "Ольга")]


async def test_replace_and_read_back(storage: Storage, wall: FakeWallClock) -> None:
    cid = (await storage.companies.create(1)).company.id
    await storage.catalog.replace_catalog(
        cid, SalonDetails(title="Ромашка", timezone="Europe/Samara"), SERVICES, STAFF
    )
    catalog = await storage.catalog.get_catalog(cid)
    assert [(s.service_id, s.title, s.price_min, s.duration) for s in catalog.services] == [
        (1, "Стрижка", 1500.0, 3600),
        (2, "Окрашивание", 4000.5, 7200),
    ]
    assert [(s.staff_id, s.name, s.rating) for s in catalog.staff] == [
        (5, "Анна", 4.8),
        (6, "Ольга", None),
    ]
    assert all(s.updated_at == wall() for s in catalog.services)
    company = await storage.companies.get(cid)
    assert company is not None and company.title == "Ромашка"
    assert company.timezone == "Europe/Samara"


async def test_missing_rows_become_inactive_not_deleted(storage: Storage) -> None:
    cid = (await storage.companies.create(1)).company.id
    await storage.catalog.replace_catalog(cid, None, SERVICES, STAFF)
    changed = [SalonService(2, "Окрашивание (new)", price_min=4500), SalonService(3, "Маникюр")]
    await storage.catalog.replace_catalog(cid, None, changed, STAFF[1:])
    active = await storage.catalog.get_catalog(cid)
    assert [s.service_id for s in active.services] == [2, 3]
    assert active.services[0].title == "Окрашивание (new)"
    assert [s.staff_id for s in active.staff] == [6]
    everything = await storage.catalog.get_catalog(cid, active_only=False)
    assert [(s.service_id, s.active) for s in everything.services] == [
        (1, False),
        (2, True),
        (3, True),
    ]
    assert [(s.staff_id, s.active) for s in everything.staff] == [(5, False), (6, True)]
    await storage.catalog.replace_catalog(cid, None, SERVICES, STAFF)
    assert [s.service_id for s in (await storage.catalog.get_catalog(cid)).services] == [1, 2]


async def test_invalid_catalog_leaves_previous_copy(storage: Storage) -> None:
    cid = (await storage.companies.create(1)).company.id
    await storage.catalog.replace_catalog(cid, None, SERVICES, STAFF)
    before = await storage.catalog.get_catalog(cid, active_only=False)
    with pytest.raises(ValidationError):
        await storage.catalog.replace_catalog(cid, None, [SalonService(9, "bad\x00")], [])
    with pytest.raises(ValidationError):
        await storage.catalog.replace_catalog(cid, None, [SERVICES[0], SERVICES[0]], [])
    with pytest.raises(NotFound):
        await storage.catalog.replace_catalog(4242, None, SERVICES, STAFF)
    assert await storage.catalog.get_catalog(cid, active_only=False) == before


async def test_sync_state(storage: Storage, wall: FakeWallClock) -> None:
    cid = (await storage.companies.create(1)).company.id
    assert await storage.catalog.get_sync_state(cid) is None
    ok = await storage.catalog.record_sync(cid, ok=True)
    assert ok.last_success_at == wall() and ok.last_error is None
    success_at = wall()
    wall.advance(3600)
    failed = await storage.catalog.record_sync(cid, ok=False, error="HTTP 429")
    assert failed.last_success_at == success_at
    assert failed.last_error == "HTTP 429" and failed.last_attempt_at == wall()
    assert await storage.catalog.get_sync_state(cid) == failed
