"""The node's typed services as the web layer sees them: the object the app serves is the one
the node runs, and a service that crashed and was restarted is still reached by the routes
(the supervisor re-runs ``run`` on the same object instead of swapping in a new one).

Real clock: the worker's poll interval is an hour, so within the test's bound only the route's
poke can make it handle an event.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from actors import NO_SERVICES, Node, Services, build_companies
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import InboxOutcome, InboxPolicy, RecordInboxWorker, record_inbox_worker
from config import Settings
from runtime import ChildState
from storage import Storage
from web._app import create_app
from web._context import app_state

from .conftest import eventually, make_web_settings, open_memory_storage

SALON = 940_001
WAIT = 10.0


def complete_record(record_id: int) -> dict[str, Any]:
    """A whole record in the webhook (no YClients call needed to store it)."""
    return {
        "id": record_id,
        "company_id": SALON,
        "staff_id": 2001,
        "services": [{"id": 1001, "title": "Стрижка", "cost": 1500, "amount": 1}],
        "client": {"id": 3001, "name": "Мария", "phone": "+7 916 123-45-67"},
        "datetime": "2026-01-20T14:00:00+03:00",
        "seance_length": 3600,
        "attendance": 0,
        "deleted": False,
        "last_change_date": "2026-01-15T12:00:00+03:00",
    }


class CrashingOnce:
    """Stands in for ``inbox.due_companies``: the first call raises (a bug in the worker's
    loop, which the supervisor must restart), the later ones ask the real inbox."""

    def __init__(self, storage: Storage) -> None:
        self._real = storage.inbox.due_companies
        self.calls = 0
        #: Set by the first call after the crash: the restarted loop polls.
        self.polled_again = trio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> list[int]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("worker bug")
        self.polled_again.set()
        return await self._real(*args, **kwargs)


@dataclass
class Rig:
    node: Node
    worker: RecordInboxWorker
    due: CrashingOnce
    storage: Storage
    settings: Settings


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    settings = make_web_settings()
    async with (
        open_memory_storage() as storage,
        open_gateway(settings, world=SimulatedWorld()) as gateway,
    ):
        due = CrashingOnce(storage)
        monkeypatch.setattr(storage.inbox, "due_companies", due)
        companies = build_companies(settings, storage, gateway, rng=random.Random(3))
        worker = record_inbox_worker(companies, None, policy=InboxPolicy(poll_interval=3600.0))
        services = Services(record_inbox=worker)
        async with companies.open_node(services, restore=False) as node:
            yield Rig(node, worker, due, storage, settings)


async def test_the_app_serves_the_services_the_node_runs(rig: Rig) -> None:
    app = create_app(rig.node)
    web_state = app_state(app)
    assert web_state.services is rig.node.services
    assert web_state.services.record_inbox is rig.worker
    assert web_state.services.sync is None and web_state.services.yclients is None


async def test_a_restarted_service_is_still_the_one_the_route_reaches(rig: Rig) -> None:
    # The worker crashed on its first poll and was restarted as the same object.
    with trio.fail_after(WAIT):
        await rig.due.polled_again.wait()
    records = rig.node.snapshot().find("yclients.records")
    assert records is not None and records.state is ChildState.RUNNING
    assert records.restarts == 1
    assert records.last_error is not None and records.last_error.type == "RuntimeError"
    assert rig.node.services.record_inbox is rig.worker

    created = await rig.storage.companies.create(SALON)
    cid = created.company.id
    client = create_app(rig.node).test_client()
    body = {
        "company_id": SALON,
        "resource": "record",
        "resource_id": 71,
        "status": "create",
        "data": complete_record(71),
    }
    response = await client.post(
        f"/marketplace/webhook/{cid}",
        json=body,
        headers={"X-Webhook-Secret": created.webhook_secret or ""},
    )
    assert response.status_code == 200, await response.get_json()

    async def handled() -> bool:
        await trio.lowlevel.checkpoint()
        return rig.worker.statistics().count(InboxOutcome.STORED) == 1

    await eventually(handled, WAIT)
    # Polls: the crash, the restarted loop's first, and the one the route's poke woke.
    assert rig.due.calls == 3
    stored = await rig.storage.records.get(cid, 71)
    assert stored is not None and stored.staff_id == 2001


async def test_a_node_without_services_runs_only_the_companies() -> None:
    settings = make_web_settings()
    async with (
        open_memory_storage() as storage,
        open_gateway(settings, world=SimulatedWorld()) as gateway,
    ):
        companies = build_companies(settings, storage, gateway)
        async with companies.open_node(restore=False) as node:
            assert node.services is NO_SERVICES
            assert [child.id for child in node.snapshot().children] == ["companies"]
            assert app_state(create_app(node)).services is NO_SERVICES
