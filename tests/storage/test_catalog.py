"""Contract: salon catalog replace-in-one-transaction and sync state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, time

import pytest

from storage import (
    NotFound,
    SalonCategory,
    SalonDetails,
    SalonService,
    SalonStaff,
    Storage,
    ValidationError,
)
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


async def test_what_the_assistant_needs_round_trips(storage: Storage, wall: FakeWallClock) -> None:
    cid = (await storage.companies.create(1)).company.id
    nails = SalonService(
        7,
        "Маникюр с покрытием гель-лак",
        category_id=62,
        price_min=1700,
        duration=5400,
        description="Снятие, маникюр и покрытие «гель-лак».",
        staff_ids=(6203, 6201),
        synonyms=("шеллак", "гелевое покрытие"),
    )
    details = SalonDetails(
        title="Ромашка",
        schedule="Ежедневно 10:00–21:00",
        opens_at=time(10),
        closes_at=time(21),
    )
    groups = [SalonCategory(62, "Ногтевой сервис"), SalonCategory(61, "Парикмахерский зал")]
    await storage.catalog.replace_catalog(cid, details, [nails, SERVICES[0]], STAFF, groups)
    catalog = await storage.catalog.get_catalog(cid)
    stored = {s.service_id: s for s in catalog.services}
    assert stored[7] == replace(nails, price_min=1700.0, updated_at=wall())
    # Defaults for what a service does not say: no description, masters or synonyms known.
    assert (stored[1].description, stored[1].staff_ids, stored[1].synonyms) == (None, (), ())
    assert catalog.categories == [
        SalonCategory(61, "Парикмахерский зал", updated_at=wall()),
        SalonCategory(62, "Ногтевой сервис", updated_at=wall()),
    ]
    company = await storage.companies.get(cid)
    assert company is not None
    assert (company.schedule, company.opens_at, company.closes_at) == (
        "Ежедневно 10:00–21:00",
        time(10),
        time(21),
    )


async def test_categories_and_hours_refresh_like_the_rest(storage: Storage) -> None:
    cid = (await storage.companies.create(1)).company.id
    hours = SalonDetails(schedule="Пн–Пт 09:00–20:00", opens_at=time(9), closes_at=time(20))
    groups = [SalonCategory(1, "Стрижки"), SalonCategory(2, "Ногти")]
    await storage.catalog.replace_catalog(cid, hours, SERVICES, STAFF, groups)
    # A sync that does not fetch categories (None) leaves them; details without a schedule
    # leave the hours.
    changed = replace(SERVICES[0], synonyms=("постричься",), staff_ids=(5,))
    await storage.catalog.replace_catalog(cid, SalonDetails(title="Новое"), [changed], STAFF)
    catalog = await storage.catalog.get_catalog(cid)
    assert [c.category_id for c in catalog.categories] == [1, 2]
    assert (catalog.services[0].synonyms, catalog.services[0].staff_ids) == (("постричься",), (5,))
    company = await storage.companies.get(cid)
    assert company is not None
    assert (company.title, company.schedule, company.opens_at) == ("Новое", hours.schedule, time(9))
    # A category YClients no longer lists becomes inactive; a schedule without a daily span
    # clears the span it replaces.
    await storage.catalog.replace_catalog(
        cid, SalonDetails(schedule="По записи"), SERVICES, STAFF, [SalonCategory(2, "Ногти!")]
    )
    assert [
        (c.category_id, c.title) for c in (await storage.catalog.get_catalog(cid)).categories
    ] == [(2, "Ногти!")]
    everything = await storage.catalog.get_catalog(cid, active_only=False)
    assert [(c.category_id, c.active) for c in everything.categories] == [(1, False), (2, True)]
    company = await storage.companies.get(cid)
    assert company is not None
    assert (company.schedule, company.opens_at, company.closes_at) == ("По записи", None, None)
    # An empty list is a fresh copy with no categories (not "leave them").
    await storage.catalog.replace_catalog(cid, None, SERVICES, STAFF, [])
    assert (await storage.catalog.get_catalog(cid)).categories == []


@pytest.mark.parametrize(
    ("services", "details", "groups"),
    [
        ([SalonService(9, "x", staff_ids=(0,))], None, None),
        ([SalonService(9, "x", staff_ids=(5, 5))], None, None),
        ([SalonService(9, "x", synonyms=("",))], None, None),
        ([SalonService(9, "x", synonyms=("a\x00",))], None, None),
        ([SalonService(9, "x", synonyms=("w",) * 51)], None, None),
        ([SalonService(9, "x", description="d" * 10_001)], None, None),
        ([], SalonDetails(schedule="s", opens_at=time(9)), None),
        ([], SalonDetails(opens_at=time(9), closes_at=time(20)), None),
        ([], SalonDetails(schedule="s" * 501), None),
        ([], SalonDetails(schedule="s", opens_at=time(9, tzinfo=UTC), closes_at=time(20)), None),
        ([], None, [SalonCategory(1, "a"), SalonCategory(1, "b")]),
        ([], None, [SalonCategory(0, "a")]),
        ([], None, [SalonCategory(1, "a" * 256)]),
    ],
)
async def test_bad_assistant_fields_are_refused_and_change_nothing(
    storage: Storage,
    services: list[SalonService],
    details: SalonDetails | None,
    groups: list[SalonCategory] | None,
) -> None:
    cid = (await storage.companies.create(1)).company.id
    await storage.catalog.replace_catalog(cid, None, SERVICES, STAFF, [SalonCategory(1, "a")])
    before = await storage.catalog.get_catalog(cid, active_only=False)
    company = await storage.companies.get(cid)
    with pytest.raises(ValidationError):
        await storage.catalog.replace_catalog(cid, details, services, STAFF, groups)
    assert await storage.catalog.get_catalog(cid, active_only=False) == before
    assert await storage.companies.get(cid) == company
