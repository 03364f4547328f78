"""Record webhooks end to end on the real clock: the fake YClients posts them over loopback
HTTP to our real app (Hypercorn), which stores them in the PostgreSQL inbox; the node's
``RecordInboxWorker`` refreshes ``salon_records`` from the webhook data or from
``GET record`` on the fake (through the client and its Redis-shared rate limiter).

Proves: duplicates are stored once and out-of-order deliveries never roll a visit back; a
failing handler is retried (in order, never dropped) until YClients is back; unknown events
are acknowledged; ``lifecycle:*`` events are left to their own worker.

The harness here (:func:`open_stack`) is shared with ``test_sync*.py``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from actors import Node, build_companies
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import (
    InboxOutcome,
    InboxPolicy,
    RetryPolicy,
    SyncPolicy,
    YClientsClient,
    YClientsRateLimiter,
    data_services,
)
from config import Settings, settings_from_env
from storage import InboxEvent, NewCompany, Storage
from tests.fakes.yclients import (
    LOTOS_ID,
    ORCHID_ID,
    PARTNER_TOKEN,
    FakeSalon,
    FakeYClients,
    running_fake_yclients,
    seed_salons,
)
from tests.support.databases import open_real_storage, pg_database, redis_prefix_session
from web._app import create_app

ADMIN = "adm_records_sync_test_key_0123456789ab"
JWT_SECRET = "jwt-secret-for-records-sync-tests-0123456789"
WAIT = 15.0

FAST_INBOX = InboxPolicy(poll_interval=0.05, backoff_initial=0.3, backoff_max=0.6)
FAST_SYNC = SyncPolicy(poll_interval=0.1, retry_failed=600.0)


# -- fixtures and harness ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    with redis_prefix_session("yclients-data") as prefix:
        yield prefix


def stack_settings(fake: FakeYClients) -> Settings:
    base = settings_from_env({}, dotenv=None)
    return dataclasses.replace(
        base,
        admin_api_key=ADMIN,
        admin_api_key_generated=False,
        jwt_secret=JWT_SECRET,
        jwt_secret_generated=False,
        yclients_api_key=PARTNER_TOKEN,
        yclients_base_url=fake.base_url,
    )


@dataclass
class Stack:
    """Our app on a loopback port over a node with the data services, plus the fake."""

    fake: FakeYClients
    storage: Storage
    node: Node
    client: YClientsClient
    base_url: str
    http: httpx.AsyncClient

    async def company(self, salon_id: int, *, status: str | None = None) -> NewCompany:
        created = await self.storage.companies.create(salon_id)
        if status is not None:
            moved = await self.storage.companies.transition(created.company.id, ["pending"], status)
            assert moved is not None
        return created

    def webhook_url(self, created: NewCompany) -> str:
        return f"{self.base_url}/marketplace/webhook/{created.company.id}/{created.webhook_secret}"

    async def inbox_events(self) -> list[InboxEvent]:
        """Every stored event, in id order (a duplicate's refused insert burns an id)."""
        events = []
        for event_id in range(1, 100):
            event = await self.storage.inbox.get(event_id)
            if event is not None:
                events.append(event)
        return events


async def until(condition: Callable[[], Awaitable[bool]], wait: float = WAIT) -> None:
    """Re-check ``condition`` (state behind storage or HTTP, no event to wait on) until it
    holds, bounded by ``wait``; asserts an outcome, never a duration."""
    with trio.fail_after(wait):
        while not await condition():  # noqa: ASYNC110 -- the state lives in PostgreSQL
            await trio.sleep(0.02)


def many_salons(count: int, first_id: int = 200_001) -> dict[int, FakeSalon]:
    """``count`` copies of the Lotos salon under fresh ids (plus the seeded ones)."""
    salons = seed_salons()
    for n in range(count):
        salon = copy.deepcopy(salons[LOTOS_ID])
        salon.id = first_id + n
        salon.title = f"Салон №{n + 1}"
        salons[salon.id] = salon
    return salons


@asynccontextmanager
async def open_stack(
    database_url: str,
    redis_prefix: str,
    *,
    inbox_policy: InboxPolicy = FAST_INBOX,
    sync_policy: SyncPolicy = FAST_SYNC,
    salons: dict[int, FakeSalon] | None = None,
    fake_limits: bool = True,
) -> AsyncIterator[Stack]:
    """Real PostgreSQL + Redis, the fake YClients (its 5/s and 200/min enforced unless
    ``fake_limits=False``), the client behind the Redis-shared limiter, a node running
    ``data_services`` and our app served by Hypercorn on 127.0.0.1."""
    options: dict[str, Any] = {} if fake_limits else {"rate_limits": None}
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        running_fake_yclients(salons=salons, **options) as fake,
    ):
        settings = stack_settings(fake)
        limiter = YClientsRateLimiter(storage.rate_limiter, key=f"{redis_prefix}yclients")
        async with (
            YClientsClient(
                fake.base_url,
                PARTNER_TOKEN,
                rate_limiter=limiter,
                timeout=5.0,
                retry=RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1),
            ) as client,
            open_gateway(settings, world=SimulatedWorld()) as gateway,
        ):
            companies = build_companies(settings, storage, gateway)
            services = data_services(
                companies, client, inbox_policy=inbox_policy, sync_policy=sync_policy
            )
            async with companies.open_node(services, restore=False) as node:
                app = create_app(node)
                config = HypercornConfig()
                config.bind = ["127.0.0.1:0"]
                config.accesslog = None
                config.graceful_timeout = 0.1
                async with trio.open_nursery() as nursery:
                    binds = await nursery.start(hypercorn_serve, app, config)
                    base_url = next(b for b in binds if b.startswith("http://127.0.0.1:"))
                    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
                        yield Stack(fake, storage, node, client, base_url, http)
                    nursery.cancel_scope.cancel()


@pytest.fixture
async def stack(database_url: str, redis_prefix: str) -> AsyncIterator[Stack]:
    with trio.fail_after(30):  # start; the test bounds itself
        async with open_stack(database_url, redis_prefix) as s:
            with trio.CancelScope(deadline=float("inf")):
                yield s


# -- records in the fake ----------------------------------------------------------------------


def fake_record(
    record_id: int, *, changed: str, staff_id: int = 2001, deleted: bool = False, **extra: Any
) -> dict[str, Any]:
    """A record as YClients holds it (Lotos' services, client Мария Петрова)."""
    return {
        "id": record_id,
        "company_id": LOTOS_ID,
        "staff_id": staff_id,
        "services": [{"id": 1001, "title": "Стрижка женская", "cost": 1500, "amount": 1}],
        "client": {"id": 3001, "name": "Мария Петрова", "phone": "+7 916 123-45-67"},
        "datetime": "2026-01-20T14:00:00+03:00",
        "seance_length": 3600,
        "attendance": 0,
        "deleted": deleted,
        "api_id": "",
        "last_change_date": changed,
        **extra,
    }


def moscow(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def _done(stack: Stack, count: int) -> bool:
    events = await stack.inbox_events()
    return len(events) == count and all(e.status == "done" for e in events)


# -- tests ----------------------------------------------------------------------------------


async def test_duplicates_and_out_of_order_deliveries_end_in_the_newest_state(
    stack: Stack,
) -> None:
    created = await stack.company(LOTOS_ID)
    cid = created.company.id
    url = stack.webhook_url(created)
    v1 = fake_record(51, changed="2026-01-15T12:00:00+03:00", staff_id=2001)
    v2 = fake_record(51, changed="2026-01-15T12:05:00+03:00", staff_id=2003, attendance=2)
    gone = fake_record(
        51, changed="2026-01-15T12:10:00+03:00", staff_id=2003, attendance=2, deleted=True
    )
    # A change made before the deletion, delivered after it.
    v3 = fake_record(51, changed="2026-01-15T12:07:00+03:00", staff_id=2002)
    # Record 52 exists only in YClients; its webhook carries just the id (fetched by the worker).
    stack.fake.salons[LOTOS_ID].records[52] = fake_record(
        52, changed="2026-01-15T12:01:00+03:00", staff_id=2002
    )
    send = stack.fake.send_record_webhook
    with trio.fail_after(WAIT):
        answers = [
            await send(url, company_id=LOTOS_ID, record_id=51, status="update", data=v2),
            await send(url, company_id=LOTOS_ID, record_id=51, status="create", data=v1),
            await send(url, company_id=LOTOS_ID, record_id=51, status="update", data=v2),
            await send(url, company_id=LOTOS_ID, record_id=52, status="create", data={"id": 52}),
            await send(url, company_id=LOTOS_ID, record_id=51, status="create", data=v1),
        ]
        await until(lambda: _done(stack, 3))
        answers += [
            await send(url, company_id=LOTOS_ID, record_id=51, status="delete", data=gone),
            await send(url, company_id=LOTOS_ID, record_id=51, status="update", data=v3),
            await send(url, company_id=LOTOS_ID, record_id=51, status="update", data=v2),
            await send(url, company_id=LOTOS_ID, record_id=51, status="delete", data=gone),
        ]
        await until(lambda: _done(stack, 5))
    assert [a.status for a in answers] == [200] * 9

    # Each distinct delivery stored once: v2, v1, 52's create, the delete, v3.
    events = await stack.inbox_events()
    assert [e.event_type for e in events] == [
        "record:update",
        "record:create",
        "record:create",
        "record:delete",
        "record:update",
    ]
    assert all(e.attempts == 1 for e in events)

    first = await stack.storage.records.get(cid, 51)
    assert first is not None
    assert first.deleted is True
    # v2's state survived the late v1, and the deletion the late v3.
    assert first.staff_id == 2003 and first.attendance == 2
    assert first.changed_at == moscow("2026-01-15T12:10:00+03:00")
    assert first.client_phone == "79161234567" and first.client_name == "Мария Петрова"
    assert first.starts_at == moscow("2026-01-20T14:00:00+03:00")
    assert first.services[0]["id"] == 1001

    second = await stack.storage.records.get(cid, 52)
    assert second is not None and second.staff_id == 2002 and not second.deleted
    assert second.raw["last_change_date"] == "2026-01-15T12:01:00+03:00"
    # Only the incomplete webhook needed YClients; complete ones were stored as sent.
    assert [r.path for r in stack.fake.requests] == [f"/api/v1/record/{LOTOS_ID}/52"]


async def test_a_failing_handler_is_retried_in_order_until_yclients_is_back(
    stack: Stack,
) -> None:
    created = await stack.company(LOTOS_ID)
    cid = created.company.id
    url = stack.webhook_url(created)
    stack.fake.salons[LOTOS_ID].records[61] = fake_record(61, changed="2026-01-15T12:00:00+03:00")
    stack.fake.fail(f"/api/v1/record/{LOTOS_ID}/*", 503, times=None)
    send = stack.fake.send_record_webhook
    with trio.fail_after(WAIT):
        await send(url, company_id=LOTOS_ID, record_id=61, status="create", data={"id": 61})
        # A complete update of another record arrives behind the failing one.
        later = fake_record(62, changed="2026-01-15T12:30:00+03:00", staff_id=2003)
        await send(url, company_id=LOTOS_ID, record_id=62, status="update", data=later)

        async def retried_twice() -> bool:
            first = await stack.storage.inbox.get(1)
            return first is not None and first.status == "failed" and first.attempts >= 3

        await until(retried_twice)
    first = await stack.storage.inbox.get(1)
    assert first is not None and first.last_error is not None
    assert "YClients unavailable" in first.last_error
    # Order kept: the event behind the failing one waits, nothing was stored out of turn.
    second = await stack.storage.inbox.get(2)
    assert second is not None and second.status in ("pending", "failed")
    assert await stack.storage.records.get(cid, 62) is None
    assert await stack.storage.records.get(cid, 61) is None

    stack.fake.clear_faults()
    with trio.fail_after(WAIT):
        await until(lambda: _done(stack, 2))
    one = await stack.storage.records.get(cid, 61)
    two = await stack.storage.records.get(cid, 62)
    assert one is not None and two is not None and two.staff_id == 2003
    assert one.updated_at is not None and two.updated_at is not None
    assert one.updated_at <= two.updated_at
    calls = stack.fake.requests_to(f"/api/v1/record/{LOTOS_ID}/61")
    assert [r.status for r in calls][-1] == 200 and len(calls) >= 4  # 2 per claim, then ok
    worker = stack.node.services.record_inbox
    assert worker is not None
    stats = worker.statistics()
    assert stats.count(InboxOutcome.RETRY) >= 2 and stats.count(InboxOutcome.DEAD) == 0


async def test_unknown_events_are_acknowledged_and_lifecycle_left_alone(stack: Stack) -> None:
    created = await stack.company(ORCHID_ID)
    cid = created.company.id
    url = stack.webhook_url(created)
    payload = {
        "company_id": ORCHID_ID,
        "resource": "client",
        "resource_id": 3101,
        "status": "update",
        "data": {"id": 3101, "name": "Светлана Морозова"},
    }
    # A lifecycle event stored for the lifecycle worker (not running in this node).
    await stack.storage.inbox.put(cid, "lifecycle-test", "lifecycle:freeze", {"event": "freeze"})
    with trio.fail_after(WAIT):
        response = await stack.http.post(url.removeprefix(stack.base_url), json=payload)
        assert response.status_code == 200
        assert response.json()["duplicate"] is False

        async def acknowledged() -> bool:
            event = await stack.storage.inbox.get(2)
            return event is not None and event.status == "done"

        await until(acknowledged)
    unknown = await stack.storage.inbox.get(2)
    assert unknown is not None and unknown.event_type == "client:update"
    assert unknown.attempts == 1 and unknown.processed_at is not None
    # The worker claimed this company's events after the lifecycle one was stored, in id
    # order, yet never took it: it stays for the lifecycle worker.
    lifecycle = await stack.storage.inbox.get(1)
    assert lifecycle is not None and lifecycle.status == "pending" and lifecycle.attempts == 0
    assert await stack.storage.records.list_for_company(cid, include_deleted=True) == []
    assert stack.fake.requests == []
