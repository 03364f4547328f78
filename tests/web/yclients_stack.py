"""One app over one node with the YClients services, talking to the fake YClients over loopback
HTTP, on either storage backend — for the install-redirect and webhook security tests.

``open_stack(backend, database_url, redis_prefix)`` yields a :class:`Stack`; its helpers send
the install redirect (signed or not, from a given client IP), lifecycle events and record
webhooks the way YClients and an attacker would.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import trio
from quart.typing import TestClientProtocol

from actors import Node, build_companies
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import (
    ActivationPolicy,
    LifecycleWorker,
    RetryPolicy,
    YClientsClient,
    current_credentials,
    sign_user_data,
    yclients_services,
)
from config import SendPacing, Settings, settings_from_env
from storage import Storage, open_storage
from tests.fakes.yclients import APPLICATION_ID, PARTNER_TOKEN, FakeYClients, running_fake_yclients
from tests.support.databases import open_real_storage
from web._app import create_app

ADMIN = "adm_redirect_security_test_key_0123456789"
SECRET = "jwt-secret-for-redirect-security-tests-0123456789"
WAIT = 10.0
#: The admin's data YClients signs into the redirect.
ADMIN_USER = {"user_id": 7, "name": "Анна <b>Смирнова</b>", "email": "anna@example.com"}


def peer(ip: str) -> dict[str, Any]:
    """``scope_base`` for the test client: requests from ``ip``."""
    return {"client": (ip, 40000)}


@dataclass
class Stack:
    fake: FakeYClients
    node: Node
    client: TestClientProtocol
    settings: Settings

    @property
    def storage(self) -> Storage:
        return self.node.storage

    @property
    def lifecycle(self) -> LifecycleWorker:
        worker = self.node.services.lifecycle
        assert worker is not None
        return worker

    async def redirect(
        self,
        *salon_ids: int,
        signed: bool = False,
        ip: str = "198.51.100.7",
        html: bool = False,
    ) -> Any:
        """``GET /marketplace/yclients/redirect`` for ``salon_ids`` (``salon_ids[]`` if many)."""
        if len(salon_ids) == 1:
            query = f"salon_id={salon_ids[0]}"
        else:
            query = "&".join(f"salon_ids[]={salon}" for salon in salon_ids)
        if signed:
            data, sign = sign_user_data(ADMIN_USER, PARTNER_TOKEN)
            query += f"&user_data={quote(data)}&user_data_sign={sign}"
        headers = {"Accept": "text/html"} if html else None
        return await self.client.get(
            f"/marketplace/yclients/redirect?{query}", headers=headers, scope_base=peer(ip)
        )

    async def install(self, salon_id: int, *, signed: bool = True) -> tuple[int, str]:
        """A redirect that must succeed: (company id, connect token)."""
        response = await self.redirect(salon_id, signed=signed)
        assert response.status_code == 302, await response.get_data(as_text=True)
        params = parse_qs(urlsplit(response.headers["Location"]).query)
        return int(params["company"][0]), params["token"][0]

    async def lifecycle_event(self, salon_id: int, event: str) -> Any:
        payload = {
            "salon_id": salon_id,
            "application_id": APPLICATION_ID,
            "event": event,
            "partner_token": PARTNER_TOKEN,
        }
        return await self.client.post("/marketplace/yclients/webhook", json=payload)

    async def webhook_secret(self, company_id: int) -> str:
        """The secret in the record-webhook URL we registered with YClients."""
        company = await self.storage.companies.get(company_id)
        assert company is not None
        return (await current_credentials(self.storage.companies, company, SECRET)).webhook_secret

    async def status(self, company_id: int) -> str:
        company = await self.storage.companies.get(company_id)
        assert company is not None
        return str(company.integration_status)

    async def until(self, condition: Callable[[], Awaitable[bool]]) -> None:
        """Re-check ``condition`` (behind storage or another task) until it holds, bounded."""
        with trio.fail_after(WAIT):
            while not await condition():  # noqa: ASYNC110 -- nothing to wait on but storage
                await trio.sleep(0.005)


def stack_settings() -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        admin_api_key=ADMIN,
        admin_api_key_generated=False,
        jwt_secret=SECRET,
        jwt_secret_generated=False,
        yclients_api_key=PARTNER_TOKEN,
        yclients_application_id=APPLICATION_ID,
        public_base_url="https://ai-admin.example",
        pacing=SendPacing(min_gap=1.0, jitter=0.5, per_minute=20),
    )


@asynccontextmanager
async def _storage(backend: str, database_url: str, redis_prefix: str) -> AsyncIterator[Storage]:
    if backend == "memory":
        async with open_storage(monotonic_clock=trio.current_time) as storage:
            yield storage
    else:
        async with open_real_storage(database_url, redis_prefix=redis_prefix) as storage:
            yield storage


@asynccontextmanager
async def open_stack(
    backend: str, database_url: str, redis_prefix: str, *, settings: Settings | None = None
) -> AsyncIterator[Stack]:
    """The fake YClients, storage on ``backend`` (``memory`` or ``real``), a node and the app."""
    settings = settings or stack_settings()
    policy = ActivationPolicy(poll_interval=0.02, backoff_initial=0.05, backoff_max=0.2)
    async with running_fake_yclients(rate_limits=None) as fake:
        client = YClientsClient(
            fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=RetryPolicy(attempts=1)
        )
        async with (
            client,
            _storage(backend, database_url, redis_prefix) as storage,
            open_gateway(settings, world=SimulatedWorld()) as gateway,
        ):
            companies = build_companies(settings, storage, gateway, rng=random.Random(5))
            services = yclients_services(
                companies,
                client,
                activation_policy=policy,
                lifecycle_poll=0.05,
                lifecycle_retry=0.05,
            )
            async with companies.open_node(services) as node:
                app = create_app(node)
                yield Stack(fake, node, app.test_client(), settings)
