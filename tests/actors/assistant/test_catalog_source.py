"""The assistant's view of a salon from storage: what is kept, what is left out, caching."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import trio
from trio.testing import MockClock

from actors.assistant._catalog import Category, Master, SalonCard, Service
from actors.assistant._catalog_source import CatalogSource
from storage import (
    SalonCategory,
    SalonDetails,
    SalonService,
    SalonStaff,
    open_storage,
)

SERVICES = [
    SalonService(
        1,
        "Стрижка мужская",
        category_id=10,
        price_min=1500,
        price_max=1500,
        duration=2700,
        description="Машинкой и ножницами",
        staff_ids=(5, 6),
        synonyms=("мужская стрижка",),
    ),
    SalonService(2, "Окрашивание", category_id=10, price_min=3500.5, duration=7200),
    SalonService(3, "Снятие гель-лака", active=False),
]
STAFF = [
    SalonStaff(5, "Игорь", specialization="Барбер"),
    SalonStaff(6, "Олег", bookable=False),
    SalonStaff(7, "Анна", active=False),
]
CATEGORIES = [SalonCategory(10, "Парикмахерский зал"), SalonCategory(11, "Старое", active=False)]
DETAILS = SalonDetails(
    title="Ромашка",
    phone="+7 843 200-10-10",
    address="Казань, Баумана 21",
    timezone="Asia/Yekaterinburg",
    schedule="Ежедневно 10:00–21:00",
    opens_at=dt.time(10),
    closes_at=dt.time(21),
)


async def test_the_catalog_as_the_assistant_sees_it(autojump_clock: MockClock) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        company = (await storage.companies.create(777001)).company
        await storage.catalog.replace_catalog(company.id, DETAILS, SERVICES, STAFF, CATEGORIES)
        company = await storage.companies.get(company.id)
        assert company is not None
        source = CatalogSource(storage, ttl=60.0, clock=trio.current_time)
        catalog = await source.get(company)
        assert catalog.salon == SalonCard(
            company_id=company.id,
            salon_id=777001,
            title="Ромашка",
            address="Казань, Баумана 21",
            phone="+7 843 200-10-10",
            timezone="Asia/Yekaterinburg",
            opening=(dt.time(10), dt.time(21)),
            schedule="Ежедневно 10:00–21:00",
        )
        assert catalog.services == (
            Service(
                id=1,
                title="Стрижка мужская",
                category_id=10,
                price_min=Decimal(1500),
                price_max=Decimal(1500),
                minutes=45,
                description="Машинкой и ножницами",
                staff_ids=(5, 6),
                synonyms=("мужская стрижка",),
            ),
            Service(
                id=2,
                title="Окрашивание",
                category_id=10,
                price_min=Decimal("3500.5"),
                price_max=Decimal("3500.5"),
                minutes=120,
            ),
        )
        assert str(catalog.services[0].price_min) == "1500"
        assert catalog.masters == (Master(5, "Игорь", "Барбер"),)
        assert catalog.categories == (Category(10, "Парикмахерский зал"),)


async def test_rows_are_cached_until_the_ttl_or_a_sync(autojump_clock: MockClock) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        company = (await storage.companies.create(777002)).company
        await storage.catalog.replace_catalog(company.id, DETAILS, SERVICES[:1], STAFF[:1])
        company = await storage.companies.get(company.id)
        assert company is not None
        source = CatalogSource(storage, ttl=60.0, clock=trio.current_time)
        first = await source.get(company)
        await storage.catalog.replace_catalog(company.id, None, SERVICES[:2], STAFF[:1])
        assert await source.get(company) is first  # cached
        assert source.loads == 1
        await trio.sleep(61)
        assert [s.id for s in (await source.get(company)).services] == [1, 2]
        assert source.loads == 2
        await storage.catalog.replace_catalog(company.id, None, SERVICES[1:2], STAFF[:1])
        source.invalidate(company.id)  # a sync completed
        assert [s.id for s in (await source.get(company)).services] == [2]
        # the card follows the company row the caller passes, without a reload
        renamed = await storage.companies.update(company.id, title="Ромашка-2")
        assert (await source.get(renamed)).salon.title == "Ромашка-2"
        assert source.loads == 3


async def test_a_completed_sync_is_told_to_the_assistant() -> None:
    """The catalog sync tells who was synced (the node passes the assistant's
    ``catalog_synced``, which drops that company's cached catalog); a failed sync does not."""
    from actors.yclients import CatalogSync, YClientsClient
    from tests.fakes.yclients import PARTNER_TOKEN, running_fake_yclients

    from .example_catalog import EXAMPLE_CATALOG, ROMASHKA

    async with (
        running_fake_yclients(rate_limits=None, catalog=EXAMPLE_CATALOG) as fake,
        YClientsClient(fake.base_url, PARTNER_TOKEN) as client,
        open_storage() as storage,
    ):
        good = (await storage.companies.create(ROMASHKA)).company.id
        bad = (await storage.companies.create(999001)).company.id  # not in the fake
        told: list[int] = []
        sync = CatalogSync(storage, client, on_synced=told.append)
        assert (await sync.sync_now(good)).ok
        assert not (await sync.sync_now(bad)).ok
        assert told == [good]
