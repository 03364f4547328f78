"""The sync on the assistant's example catalog: every fact the assistant reads reaches
storage — descriptions, who does each service, the salon's synonyms, categories, opening
hours — in four requests, and a salon's later edits replace them."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import trio

from actors.yclients import YClientsClient, sync_company
from storage import SalonCategory, open_storage
from tests.fakes.yclients import PARTNER_TOKEN, running_fake_yclients

CATALOG = Path(__file__).parents[2] / "fakes" / "yclients" / "catalog.example.json"
SALON = 555100


async def test_the_sync_stores_what_the_assistant_reads() -> None:
    with trio.fail_after(20):
        async with (
            running_fake_yclients(catalog=CATALOG, rate_limits=None) as fake,
            open_storage() as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN) as client,
        ):
            company = (await storage.companies.create(SALON)).company
            result = await sync_company(storage, client, company)
            assert result.ok, result.error
            assert (result.services, result.staff, result.categories) == (6, 4, 3)
            assert len(fake.requests) == 4

            catalog = await storage.catalog.get_catalog(company.id)
            services = {s.service_id: s for s in catalog.services}
            roots, gel, men = services[6103], services[6105], services[6101]
            assert roots.description == (
                "Окрашивание отросших корней в один тон, краска салона включена."
            )
            assert (roots.staff_ids, roots.synonyms, roots.duration) == ((6202,), (), 5400)
            assert gel.synonyms == ("шеллак", "гелевое покрытие")
            assert (gel.price_min, gel.price_max, gel.category_id) == (1700.0, 1700.0, 62)
            assert (men.staff_ids, men.description) == ((6201, 6202, 6204), None)
            assert [(c.category_id, c.title) for c in catalog.categories] == [
                (61, "Парикмахерский зал"),
                (62, "Ногтевой сервис"),
                (63, "Брови"),
            ]
            stored = await storage.companies.get(company.id)
            assert stored is not None
            assert (stored.title, stored.timezone, stored.phone) == (
                "Салон красоты «Ромашка»",
                "Europe/Moscow",
                "78432001010",
            )
            assert (stored.schedule, stored.opens_at, stored.closes_at) == (
                "Ежедневно 10:00–21:00",
                time(10),
                time(21),
            )

            # The salon edits its catalog: a synonym added, a master no longer does a
            # service, a category renamed and one removed, a service switched off.
            salon = fake.salons[SALON]
            gel_raw = salon.service(6105)
            assert gel_raw is not None
            gel_raw["synonyms"] = ["шеллак", "гель-лак", "  ", "шеллак"]
            for master in salon.staff:
                if master["id"] == 6202:
                    master["services"] = [s for s in master["services"] if s != 6101]
            salon.categories = [{"id": 61, "title": "Волосы"}, {"id": 62, "title": "Ногти"}]
            brows = salon.service(6106)
            assert brows is not None
            brows["active"] = 0
            again = await sync_company(storage, client, company)
            assert again.ok, again.error

            catalog = await storage.catalog.get_catalog(company.id)
            services = {s.service_id: s for s in catalog.services}
            assert services[6105].synonyms == ("шеллак", "гель-лак")
            assert services[6101].staff_ids == (6201, 6204)
            assert 6106 not in services
            assert catalog.categories == [
                SalonCategory(61, "Волосы", updated_at=catalog.categories[0].updated_at),
                SalonCategory(62, "Ногти", updated_at=catalog.categories[1].updated_at),
            ]
            everything = await storage.catalog.get_catalog(company.id, active_only=False)
            assert [(c.category_id, c.active) for c in everything.categories] == [
                (61, True),
                (62, True),
                (63, False),
            ]
            assert {s.service_id: s.active for s in everything.services}[6106] is False


async def test_refused_company_services_fall_back_to_the_booking_list() -> None:
    """Whether the partner token alone reads ``company/{id}/services`` is unverified: when
    YClients refuses it (and the categories), the sync still stores the bookable services
    from ``book_services`` and keeps the categories it had."""
    with trio.fail_after(20):
        async with (
            running_fake_yclients(catalog=CATALOG, rate_limits=None) as fake,
            open_storage() as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN) as client,
        ):
            company = (await storage.companies.create(SALON)).company
            assert (await sync_company(storage, client, company)).ok
            fake.fail(f"*/company/{SALON}/services", 403, times=None)
            fake.fail(f"*/company/{SALON}/service_categories", 401, times=None)
            result = await sync_company(storage, client, company)
            assert result.ok, result.error
            assert result.services == 6
            catalog = await storage.catalog.get_catalog(company.id)
            assert {s.service_id for s in catalog.services} == {6101, 6102, 6103, 6104, 6105, 6106}
            assert [c.category_id for c in catalog.categories] == [61, 62, 63]
            assert fake.requests_to(f"*/book_services/{SALON}")
