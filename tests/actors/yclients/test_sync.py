"""Salon data sync on the real clock: the node's ``CatalogSync`` against the fake YClients over
loopback, into PostgreSQL, through our real app for ``POST /marketplace/sync/<id>`` and
``GET /marketplace/status/<id>``.

Proves: a company is synced when it becomes active (and not before); on-demand sync answers
202 and refreshes details, services and staff (missing ones kept, marked inactive); a sync that
fails halfway keeps the previous complete copy and shows the error on the status endpoint and
in ``/metrics``; the route's auth.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time

import trio

from actors import build_companies
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import YClientsClient
from config import Settings, settings_from_env
from storage import SyncState, open_storage
from tests.fakes.yclients import LOTOS_ID, ORCHID_ID
from web.server import node_services

from .test_inbox import ADMIN, WAIT, Stack, database_url, redis_prefix, stack, until

__all__ = ["database_url", "redis_prefix", "stack"]  # fixtures used here


async def _synced(stack: Stack, company_id: int, after: datetime | None = None) -> SyncState:
    """Wait until the company's last sync attempt is later than ``after``; return its state."""
    found: list[SyncState] = []

    async def attempted() -> bool:
        state = await stack.storage.catalog.get_sync_state(company_id)
        if state is None or state.last_attempt_at is None:
            return False
        if after is not None and state.last_attempt_at <= after:
            return False
        found.append(state)
        return True

    await until(attempted)
    return found[-1]


async def test_a_company_is_synced_when_it_becomes_active(stack: Stack) -> None:
    waiting = await stack.company(LOTOS_ID)  # pending: YClients has not confirmed it yet
    active = await stack.company(ORCHID_ID, status="active")
    with trio.fail_after(WAIT):
        state = await _synced(stack, active.company.id)
    assert state.last_success_at is not None and state.last_error is None
    # The poll that found the active company saw the pending one too, and left it.
    assert await stack.storage.catalog.get_sync_state(waiting.company.id) is None
    assert stack.fake.requests_to(f"/api/v1/*/{LOTOS_ID}") == []

    moved = await stack.storage.companies.transition(waiting.company.id, ["pending"], "active")
    assert moved is not None
    with trio.fail_after(WAIT):
        state = await _synced(stack, waiting.company.id)
    assert state.last_error is None

    catalog = await stack.storage.catalog.get_catalog(waiting.company.id, active_only=False)
    services = {s.service_id: s for s in catalog.services}
    # Lotos' six bookable services (the seventh is not offered online), prices and durations.
    assert sorted(services) == [1001, 1002, 1003, 1004, 1005, 1006]
    haircut = services[1001]
    assert (haircut.title, haircut.price_min, haircut.price_max, haircut.duration) == (
        "Стрижка женская",
        1500.0,
        2500.0,
        3600,
    )
    assert [(m.staff_id, m.name) for m in catalog.staff] == [
        (2001, "Анна Смирнова"),
        (2002, "Елена Кузнецова"),
        (2003, "Ольга Иванова"),
    ]
    # What the assistant reads: who does each service, categories, the opening hours.
    assert {sid: s.staff_ids for sid, s in services.items()} == {
        1001: (2001, 2003),
        1002: (2001,),
        1003: (2003,),
        1004: (2001, 2003),
        1005: (2002,),
        1006: (2002,),
    }
    assert [(c.category_id, c.title) for c in catalog.categories] == [
        (10, "Парикмахерские услуги"),
        (11, "Ногтевой сервис"),
        (12, "Брови и ресницы"),
    ]
    company = await stack.storage.companies.get(waiting.company.id)
    assert company is not None
    assert company.title == "Салон красоты «Лотос»"
    assert company.address == "г. Москва, ул. Тверская, д. 12, стр. 1"
    assert company.phone == "74951234567" and company.timezone == "Europe/Moscow"
    assert (company.schedule, company.opens_at, company.closes_at) == (
        "Ежедневно 10:00–21:00",
        time(10),
        time(21),
    )

    response = await stack.http.get(
        f"/marketplace/status/{waiting.company.id}", headers={"X-API-Key": waiting.api_key}
    )
    assert response.status_code == 200
    sync = response.json()["sync"]
    assert sync["last_error"] is None
    assert datetime.fromisoformat(sync["last_success_at"]) == state.last_success_at


async def test_a_sync_failing_halfway_keeps_the_previous_copy(stack: Stack) -> None:
    created = await stack.company(ORCHID_ID, status="active")
    cid = created.company.id
    with trio.fail_after(WAIT):
        first = await _synced(stack, cid)
    assert first.last_error is None
    before = await stack.storage.catalog.get_catalog(cid, active_only=False)

    # YClients changes: a price, a service withdrawn, a new title; then staff cannot be read.
    salon = stack.fake.salons[ORCHID_ID]
    salon.services[0]["price_min"], salon.services[0]["price_max"] = 3200, 3800
    salon.services = [s for s in salon.services if s["id"] != 1103]
    salon.title = "Студия «Орхидея» (новая)"
    stack.fake.fail(f"/api/v1/book_staff/{ORCHID_ID}", 500, times=None)

    own_key = {"X-API-Key": created.api_key}
    response = await stack.http.post(f"/marketplace/sync/{cid}", headers=own_key)
    assert response.status_code == 202
    assert response.json()["queued"] is True
    with trio.fail_after(WAIT):
        failed = await _synced(stack, cid, after=first.last_attempt_at)
    assert failed.last_error is not None and "YClientsUnavailable" in failed.last_error
    assert failed.last_success_at == first.last_success_at
    # Services, categories and details were fetched before staff failed, yet nothing of them
    # was stored.
    assert await stack.storage.catalog.get_catalog(cid, active_only=False) == before
    company = await stack.storage.companies.get(cid)
    assert company is not None and company.title == "Студия красоты «Орхидея»"
    assert stack.fake.requests_to(f"/api/v1/company/{ORCHID_ID}/services")[-1].status == 200
    fetched = stack.fake.requests_to(f"/api/v1/company/{ORCHID_ID}/service_categories")
    assert fetched[-1].status == 200

    status = await stack.http.get(f"/marketplace/status/{cid}", headers=own_key)
    assert status.json()["sync"]["last_error"] == failed.last_error
    metrics = await stack.http.get("/metrics", headers={"X-API-Key": ADMIN})
    assert "aiadmin_sync_failures_total 1.0" in metrics.text.splitlines()  # prometheus_client
    tree = await stack.http.get("/health/tree", headers={"X-API-Key": ADMIN})
    assert {
        "company_id": cid,
        "problem": "sync_failing",
        "error": failed.last_error,
    } in tree.json()["attention"]

    stack.fake.clear_faults()
    response = await stack.http.post(f"/marketplace/sync/{cid}", headers={"X-API-Key": ADMIN})
    assert response.status_code == 202
    assert response.json()["sync"]["last_error"] == failed.last_error  # not yet re-run
    with trio.fail_after(WAIT):
        fixed = await _synced(stack, cid, after=failed.last_attempt_at)
    assert fixed.last_error is None and fixed.last_success_at is not None
    assert first.last_success_at is not None and fixed.last_success_at > first.last_success_at
    after = await stack.storage.catalog.get_catalog(cid, active_only=False)
    services = {s.service_id: s for s in after.services}
    assert (services[1101].price_min, services[1101].price_max) == (3200.0, 3800.0)
    assert services[1103].active is False  # withdrawn: kept, marked inactive
    assert [s.service_id for s in (await stack.storage.catalog.get_catalog(cid)).services] == [
        1101,
        1102,
    ]
    company = await stack.storage.companies.get(cid)
    assert company is not None and company.title == "Студия «Орхидея» (новая)"


async def test_sync_route_auth(stack: Stack) -> None:
    one = await stack.company(LOTOS_ID, status="active")
    other = await stack.company(ORCHID_ID)
    path = f"/marketplace/sync/{one.company.id}"
    assert (await stack.http.post(path)).status_code == 401
    denied = await stack.http.post(path, headers={"X-API-Key": other.api_key})
    assert denied.status_code == 403
    missing = await stack.http.post("/marketplace/sync/999999", headers={"X-API-Key": ADMIN})
    assert missing.status_code == 404
    await stack.storage.companies.transition(other.company.id, ["pending"], "uninstalled")
    gone = await stack.http.post(
        f"/marketplace/sync/{other.company.id}", headers={"X-API-Key": ADMIN}
    )
    assert gone.status_code == 410
    ok = await stack.http.post(path, headers={"X-API-Key": one.api_key})
    assert ok.status_code == 202


async def test_the_server_runs_the_data_services_with_or_without_yclients() -> None:
    base = settings_from_env({}, dotenv=None)
    with_app = replace(base, yclients_application_id=1)
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(base, world=SimulatedWorld()) as gateway,
        YClientsClient("http://127.0.0.1:9", "partner-token") as client,
    ):

        def names(settings: Settings, yclients: YClientsClient | None) -> list[str]:
            companies = build_companies(settings, storage, gateway)
            services = node_services(companies, yclients)
            assert services.yclients is yclients
            return [name for name, _ in services.children()]

        data = ["yclients.records", "yclients.sync", "storage.retention"]  # retention: issue 17
        assert names(base, None) == data
        assert names(with_app, None) == data
        assert names(base, client) == ["yclients.lifecycle", *data]
        assert names(with_app, client) == ["yclients.activation", "yclients.lifecycle", *data]
