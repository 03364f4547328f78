"""Web fixtures: the real app over a real node, driven through Quart's test client.

* ``backend`` — ``memory`` (in-memory storage twins) or ``real`` (PostgreSQL + Redis, a
  throwaway database and key prefix per session). Tests that take ``web`` run on the memory
  backend; tests that take ``any_web`` run once per backend.
* ``web`` / ``any_web`` — a :class:`WebHarness`: the app, its test client, the node, the
  simulated WhatsApp world and the settings.
* :func:`register` — registers a salon through ``POST /marketplace/register`` and returns its
  id, API key and connect token, the way YClients and the connect page get them.

Every test runs on trio's real clock unless it takes ``autojump_clock`` itself; storage's
in-memory expiry follows ``trio.current_time`` so it agrees with whichever clock runs.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol
from quart_trio import QuartTrio

from actors import Node, open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from config import Environment, SendPacing, Settings, WhatsAppProvider, settings_from_env
from storage import CompanyStatus, Storage, open_storage
from tests.support.databases import open_real_storage
from web._app import create_app

ADMIN_KEY = "adm_test_admin_key_0123456789abcdef"
JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
ALLOWED_ORIGIN = "https://n123.yclients.com"


def make_web_settings(**changes: Any) -> Settings:
    """Development settings with a known admin key and JWT secret (no env, no ``.env``)."""
    base = settings_from_env({}, dotenv=None)
    pacing = SendPacing(min_gap=1.0, jitter=0.5, per_minute=20)
    return replace(
        base,
        admin_api_key=ADMIN_KEY,
        admin_api_key_generated=False,
        jwt_secret=JWT_SECRET,
        jwt_secret_generated=False,
        pacing=pacing,
        **changes,
    )


def make_production_settings(**changes: Any) -> Settings:
    """Production settings (built with ``replace``: the app only reads them, it does not
    re-validate them, so the simulated WhatsApp and in-memory storage still serve the test)."""
    return make_web_settings(
        env=Environment.PRODUCTION,
        yclients_api_key="partner-token-for-tests",
        yclients_application_id=1,
        public_base_url="https://ai-admin.app",
        **changes,
    )


@dataclass
class WebHarness:
    """One app over one node, with the pieces tests poke at."""

    app: QuartTrio
    client: TestClientProtocol
    node: Node
    settings: Settings
    world: SimulatedWorld

    @property
    def storage(self) -> Storage:
        return self.node.storage

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": self.settings.admin_api_key}


@dataclass(frozen=True)
class Registered:
    """A salon registered through the API: what YClients got back."""

    company_id: int
    salon_id: int
    api_key: str
    token: str
    connect_url: str

    @property
    def key_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


_salon_ids = iter(range(900_001, 10**9))


async def register(web: WebHarness, salon_id: int | None = None, **fields: Any) -> Registered:
    """``POST /marketplace/register`` with the admin key; asserts 201."""
    salon = salon_id if salon_id is not None else next(_salon_ids)
    response = await web.client.post(
        "/marketplace/register", json={"salon_id": salon, **fields}, headers=web.admin
    )
    body = await response.get_json()
    assert response.status_code == 201, body
    return Registered(
        company_id=body["company_id"],
        salon_id=salon,
        api_key=body["api_key"],
        token=token_of(body["connect_url"]),
        connect_url=body["connect_url"],
    )


def token_of(connect_url: str) -> str:
    """The ``token`` query value of a connect URL."""
    return parse_qs(urlsplit(connect_url).query)["token"][0]


async def issue_jwt(web: WebHarness, company: Registered) -> str:
    response = await web.client.post("/marketplace/token", headers=company.key_headers)
    assert response.status_code == 200
    token = (await response.get_json())["token"]
    assert isinstance(token, str)
    return token


@asynccontextmanager
async def open_web(
    settings: Settings, storage: Storage, *, world: SimulatedWorld | None = None
) -> AsyncIterator[WebHarness]:
    """A node over ``storage`` and the simulated WhatsApp, and the app for it."""
    world = world or SimulatedWorld()
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(7)) as node,
    ):
        await node.restore_done()  # linked salons the test stored before are running
        app = create_app(node)
        yield WebHarness(app, app.test_client(), node, settings, world)


@asynccontextmanager
async def open_memory_storage() -> AsyncIterator[Storage]:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        yield storage


@pytest.fixture
def settings() -> Settings:
    return make_web_settings()


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[WebHarness]:
    """The app on in-memory storage (the default for most tests)."""
    assert settings.whatsapp_provider is WhatsAppProvider.SIMULATED
    async with open_memory_storage() as storage, open_web(settings, storage) as harness:
        yield harness


@pytest.fixture(params=["memory", "real"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def any_web(
    backend: str, settings: Settings, database_url: str, redis_prefix: str
) -> AsyncIterator[WebHarness]:
    """The app on the memory backend and on PostgreSQL + Redis (one run each)."""
    if backend == "memory":
        async with open_memory_storage() as storage, open_web(settings, storage) as harness:
            yield harness
        return
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        open_web(settings, storage) as harness,
    ):
        yield harness


async def uninstall(web: WebHarness, company_id: int) -> None:
    """Mark the salon uninstalled in storage (as the lifecycle webhook would)."""
    moved = await web.storage.companies.transition(
        company_id, [s.value for s in CompanyStatus], CompanyStatus.UNINSTALLED
    )
    assert moved is not None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait (bounded) until the actors have done what ``check`` looks for."""
    with trio.fail_after(timeout):
        while True:
            if await check():
                return
            await trio.sleep(0.01)


# -------------------------------------------------------------------------- WebSockets

WS_PATH = "/marketplace/ws"


def delivered_to(web: WebHarness, company_id: int, phone: str) -> list[str]:
    """The texts the salon's WhatsApp delivered to ``phone``, oldest first."""
    return [d.text for d in web.world.delivered(company_id) if d.to_phone == phone]


async def client_says(
    web: WebHarness, company_id: int, phone: str, text: str, *, wait: float = 10.0
) -> str:
    """The simulated client ``phone`` writes ``text`` (``/dev/simulator/.../inbound``); the
    salon's next message to that phone, once it arrived (at most ``wait`` seconds)."""
    before = len(delivered_to(web, company_id, phone))
    response = await web.client.post(
        f"/dev/simulator/{company_id}/inbound",
        json={"phone": phone, "text": text},
        headers=web.admin,
    )
    assert response.status_code == 200, await response.get_json()
    with trio.fail_after(wait):
        await web.world.wait_until(lambda: len(delivered_to(web, company_id, phone)) > before)
    return delivered_to(web, company_id, phone)[before]


def peer(ip: str) -> dict[str, Any]:
    """``scope_base`` for the test client: requests from ``ip`` (rate limits count per IP)."""
    return {"client": (ip, 40000)}


def auth_frame(token: str, **extra: Any) -> str:
    return json.dumps({"event": "auth", "data": {"token": token, **extra}})


def frame(event: str, **data: Any) -> str:
    return json.dumps({"event": event, "data": data})


async def next_frame(ws: TestWebsocketConnectionProtocol, timeout: float = 10.0) -> dict[str, Any]:
    """The next JSON frame; fails if the socket closes instead."""
    with trio.fail_after(timeout):
        raw = await ws.receive()
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


async def frame_named(
    ws: TestWebsocketConnectionProtocol, event: str, timeout: float = 10.0
) -> dict[str, Any]:
    """The next frame called ``event`` (frames of other names before it are skipped)."""
    with trio.fail_after(timeout):
        while True:
            got = await next_frame(ws, timeout)
            if got["event"] == event:
                return got


async def until_closed(
    ws: TestWebsocketConnectionProtocol, timeout: float = 10.0
) -> tuple[list[dict[str, Any]], int]:
    """Every frame until the server closes the socket, and the close code."""
    frames: list[dict[str, Any]] = []
    with trio.fail_after(timeout):
        while True:
            try:
                raw = await ws.receive()
            except WebsocketDisconnectError as closed:
                return frames, int(closed.args[0])
            frames.append(json.loads(raw))
