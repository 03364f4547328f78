"""Activation delivery against the fake YClients over loopback HTTP (real clock).

Passes are driven by hand (``deliver_due``) and storage time by a :class:`FakeWallClock`, so
backoff and ``Retry-After`` are checked exactly, without waiting for them. The two-process
tests run the real ``run`` loops over one PostgreSQL database.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from actors.company import ACTIVATION_KIND
from actors.company import messages as cm
from actors.yclients import (
    ActivationDelivery,
    ActivationPolicy,
    RetryPolicy,
    YClientsClient,
    current_credentials,
    derive_api_key,
    derive_webhook_secret,
    webhook_url,
)
from storage import Company, OutboxItem, Storage, open_storage
from tests.fakes.yclients import (
    ACCEPT,
    APPLICATION_ID,
    LOTOS_ID,
    ORCHID_ID,
    PARTNER_TOKEN,
    FakeYClients,
    running_fake_yclients,
)
from tests.support.clock import FakeWallClock

SECRET = "server-secret-for-tests-0123456789abcdef-xyz"
PUBLIC = "https://ai-admin.example"
CALLBACK = "/marketplace/partner/callback"
POLICY = ActivationPolicy(
    poll_interval=0.01, lease=30.0, attempt_timeout=10.0, backoff_initial=5.0, backoff_max=600.0
)


@dataclass
class Teller:
    """Stands in for ``ActorRef.ask``: records what each company was told."""

    told: list[tuple[int, Any]] = field(default_factory=list)

    async def __call__(self, company_id: int, message: Any) -> Any:
        await trio.lowlevel.checkpoint()
        self.told.append((company_id, message))
        return None


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    with trio.fail_after(10):
        async with running_fake_yclients(rate_limits=None) as server:
            yield server


@pytest.fixture
async def client(fake: FakeYClients) -> AsyncIterator[YClientsClient]:
    async with YClientsClient(
        fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=RetryPolicy(attempts=1)
    ) as c:
        yield c


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def storage(wall: FakeWallClock) -> AsyncIterator[Storage]:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as st:
        yield st


def delivery(
    storage: Storage, client: YClientsClient, teller: Teller, wall: FakeWallClock | None = None
) -> ActivationDelivery:
    return ActivationDelivery(
        storage,
        client,
        application_id=APPLICATION_ID,
        server_secret=SECRET,
        public_base_url=PUBLIC,
        tell=teller,
        policy=POLICY,
        rng=random.Random(3),
        wall_clock=wall,
    )


async def registered(storage: Storage, salon_id: int = LOTOS_ID) -> tuple[Company, OutboxItem]:
    """A salon registered with derived credentials whose WhatsApp just linked."""
    company = (
        await storage.companies.create(
            salon_id,
            api_key=derive_api_key(SECRET, salon_id, 1),
            webhook_secret=derive_webhook_secret(SECRET, salon_id, 1),
            key_version=1,
        )
    ).company
    item = await enqueue(storage, company)
    return company, item


async def enqueue(
    storage: Storage, company: Company, jid: str = "79001234567@s.whatsapp.net"
) -> OutboxItem:
    """What the company actor does when WhatsApp links."""
    return await storage.outbox.enqueue(
        ACTIVATION_KIND,
        f"activation:{company.id}:{jid}",
        company.id,
        {"company_id": company.id, "salon_id": company.yclients_id, "jid": jid},
    )


def successful_callbacks(fake: FakeYClients, salon_id: int) -> int:
    return sum(
        1
        for r in fake.requests_to(CALLBACK, "POST")
        if r.status == 201 and isinstance(r.json, dict) and r.json.get("salon_id") == salon_id
    )


def test_derivation_is_deterministic_and_bound_to_secret_salon_and_version() -> None:
    key = derive_api_key(SECRET, LOTOS_ID, 1)
    assert key == derive_api_key(SECRET, LOTOS_ID, 1)
    assert key.startswith("sk_") and len(key) == 3 + 43
    others = {
        derive_api_key(SECRET + "x", LOTOS_ID, 1),
        derive_api_key(SECRET, ORCHID_ID, 1),
        derive_api_key(SECRET, LOTOS_ID, 2),
        derive_webhook_secret(SECRET, LOTOS_ID, 1).replace("whs_", "sk_"),
    }
    assert key not in others and len(others) == 4
    assert derive_webhook_secret(SECRET, LOTOS_ID, 1).startswith("whs_")


async def test_current_credentials_reissue_what_no_longer_verifies(storage: Storage) -> None:
    company, _ = await registered(storage)
    creds = await current_credentials(storage.companies, company, SECRET)
    assert creds.reissued == () and creds.api_key == derive_api_key(SECRET, LOTOS_ID, 1)
    assert "sk_" not in repr(creds) and "whs_" not in repr(creds)
    await storage.companies.revoke_credentials(company.id)  # uninstall, then back
    revoked = await storage.companies.get(company.id)
    assert revoked is not None
    again = await current_credentials(storage.companies, revoked, SECRET)
    assert again.reissued == ("api_key", "webhook_secret")
    assert again.api_key == derive_api_key(SECRET, LOTOS_ID, 2)
    assert await storage.companies.verify_api_key(company.id, again.api_key)
    assert await storage.companies.verify_webhook_secret(company.id, again.webhook_secret)
    assert not await storage.companies.verify_api_key(company.id, creds.api_key)
    stored = await storage.companies.get(company.id)
    assert stored is not None and (stored.api_key_version, stored.webhook_secret_version) == (2, 2)


async def test_retried_through_5xx_and_429_then_delivered_once(
    storage: Storage, client: YClientsClient, fake: FakeYClients, wall: FakeWallClock
) -> None:
    company, item = await registered(storage)
    worker = delivery(storage, client, Teller(), wall)
    fake.fail(CALLBACK, 503, times=2)
    fake.fail(CALLBACK, 429, retry_after=40, times=1)

    waits = []
    for _ in range(2):
        assert await worker.deliver_due() == 1
        current = await storage.outbox.get(item.id)
        assert current is not None and current.status == "pending"
        waits.append((current.next_attempt_at - wall.now).total_seconds())
        assert await worker.deliver_due() == 0  # not due before its backoff
        wall.advance(waits[-1])
    # Exponential backoff with jitter: [d/2, d] with d = 5 s, then 10 s.
    assert 2.5 <= waits[0] <= 5.0 and 5.0 <= waits[1] <= 10.0

    assert await worker.deliver_due() == 1  # 429 Retry-After: 40
    current = await storage.outbox.get(item.id)
    assert current is not None
    wait = (current.next_attempt_at - wall.now).total_seconds()
    assert 40.0 <= wait <= 41.0
    wall.advance(39.0)
    assert await worker.deliver_due() == 0  # Retry-After honoured
    wall.advance(wait - 39.0)
    assert await worker.deliver_due() == 1

    done = await storage.outbox.get(item.id)
    assert done is not None and done.status == "delivered" and done.attempts == 4
    assert successful_callbacks(fake, LOTOS_ID) == 1
    assert len(fake.requests_to(CALLBACK, "POST")) == 4
    sent = fake.requests_to(CALLBACK, "POST")[-1]
    assert sent.headers["authorization"] == f"Bearer {PARTNER_TOKEN}"
    assert sent.headers["accept"] == ACCEPT
    body = sent.json
    secret = derive_webhook_secret(SECRET, LOTOS_ID, 1)
    assert body == {
        "salon_id": LOTOS_ID,
        "application_id": APPLICATION_ID,
        "api_key": derive_api_key(SECRET, LOTOS_ID, 1),
        "webhook_urls": [webhook_url(PUBLIC, company.id, secret)],
        "channels": ["whatsapp"],
    }
    # What YClients now holds works against our stored hashes.
    assert await storage.companies.verify_api_key(company.id, body["api_key"])
    assert await storage.companies.verify_webhook_secret(company.id, secret)
    assert fake.installation(LOTOS_ID)["status"] == "active"
    audit = [e.event_type for e in await storage.audit.recent(company.id)]
    assert "activation_delivered" in audit
    # Nothing more to do: further passes send nothing.
    assert await worker.deliver_due() == 0
    assert len(fake.requests_to(CALLBACK, "POST")) == 4


async def test_lost_answer_is_not_sent_again_when_yclients_has_it(
    storage: Storage, client: YClientsClient, fake: FakeYClients, wall: FakeWallClock
) -> None:
    """YClients applied the callback but the answer was a 503: the next attempt looks first."""
    _, item = await registered(storage)
    worker = delivery(storage, client, Teller(), wall)
    fake.fail(CALLBACK, 503, times=1, after_handler=True)
    assert await worker.deliver_due() == 1
    wall.advance(600)
    assert await worker.deliver_due() == 1
    done = await storage.outbox.get(item.id)
    assert done is not None and done.status == "delivered"
    assert len(fake.requests_to(CALLBACK, "POST")) == 1
    assert fake.installation(LOTOS_ID)["activations"] == 1
    assert worker.statistics().recovered == 1


async def test_422_is_final_and_the_company_is_told(
    storage: Storage, client: YClientsClient, fake: FakeYClients, wall: FakeWallClock
) -> None:
    company, item = await registered(storage)
    teller = Teller()
    worker = delivery(storage, client, teller, wall)
    fake.fail(CALLBACK, 422, message="Приложение не подключено к филиалу", times=None)
    assert await worker.deliver_due() == 1
    failed = await storage.outbox.get(item.id)
    assert failed is not None and failed.status == "failed"
    assert failed.last_error is not None and "Приложение не подключено" in failed.last_error
    assert teller.told == [
        (company.id, cm.ActivationRejected("422: Приложение не подключено к филиалу"))
    ]
    wall.advance(3600)
    assert await worker.deliver_due() == 0
    assert len(fake.requests_to(CALLBACK, "POST")) == 1


async def test_gives_up_after_24_hours_of_5xx(
    storage: Storage, client: YClientsClient, fake: FakeYClients, wall: FakeWallClock
) -> None:
    _, item = await registered(storage)
    teller = Teller()
    worker = delivery(storage, client, teller, wall)
    fake.fail(CALLBACK, 502, times=None)
    attempts = 0
    while (current := await storage.outbox.get(item.id)) is not None and current.status == (
        "pending"
    ):
        wall.now = max(wall.now, current.next_attempt_at)
        assert await worker.deliver_due() == 1
        attempts += 1
        assert attempts < 200
    assert current is not None and current.status == "failed"
    age = (wall.now - item.created_at).total_seconds()
    assert age <= 24 * 3600
    assert attempts > 10  # backed off exponentially up to the cap, not hammering
    assert len(teller.told) == 1 and "24 h" in teller.told[0][1].message


async def test_uninstalled_company_is_not_activated(
    storage: Storage, client: YClientsClient, fake: FakeYClients
) -> None:
    company, item = await registered(storage)
    await storage.companies.transition(company.id, ["pending"], "uninstalled")
    teller = Teller()
    assert await delivery(storage, client, teller).deliver_due() == 1
    done = await storage.outbox.get(item.id)
    assert done is not None and done.status == "failed" and teller.told == []
    assert fake.requests_to(CALLBACK) == []
