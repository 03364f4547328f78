"""The YClients-facing routes end to end: install redirect, linking, the activation callback to
the fake YClients (loopback HTTP), lifecycle webhooks and re-install — one app over one node
with the YClients services running, on the real clock.

Waiting is on conditions (the fake's ``wait_until``, the workers' own counters), bounded by
``trio.fail_after``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import trio
from quart.typing import TestClientProtocol as QuartTestClient

from actors import Node, build_companies
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import (
    ActivationDelivery,
    ActivationPolicy,
    LifecycleWorker,
    RetryPolicy,
    YClientsClient,
    derive_api_key,
    derive_webhook_secret,
    sign_user_data,
    yclients_services,
)
from config import SendPacing, Settings, settings_from_env
from storage import open_storage
from tests.fakes.yclients import (
    APPLICATION_ID,
    LOTOS_ID,
    ORCHID_ID,
    PARTNER_TOKEN,
    FakeYClients,
    running_fake_yclients,
)
from web._app import create_app

ADMIN = "adm_yclients_routes_test_key_0123456789"
SECRET = "jwt-secret-for-yclients-route-tests-0123456789"
CALLBACK = "/marketplace/partner/callback"
WAIT = 10.0


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Re-check ``condition`` until it holds, bounded by ``WAIT``.

    The one polling loop of this file: the conditions live behind HTTP or in another task with
    no event to wait on; the loop asserts an outcome, never a duration.
    """
    with trio.fail_after(WAIT):
        while not await condition():  # noqa: ASYNC110 -- see docstring
            await trio.sleep(0.005)


@dataclass
class Stack:
    fake: FakeYClients
    node: Node
    client: QuartTestClient
    world: SimulatedWorld
    settings: Settings

    @property
    def lifecycle(self) -> LifecycleWorker:
        worker = self.node.services.lifecycle
        assert worker is not None
        return worker

    @property
    def activation(self) -> ActivationDelivery:
        delivery = self.node.services.activation
        assert delivery is not None
        return delivery

    async def status(self, company_id: int) -> dict[str, Any]:
        response = await self.client.get(
            f"/marketplace/status/{company_id}", headers={"X-API-Key": ADMIN}
        )
        assert response.status_code == 200
        body: dict[str, Any] = await response.get_json()
        return body

    async def wait_status(self, company_id: int, wanted: str) -> dict[str, Any]:
        body: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal body
            body = await self.status(company_id)
            return bool(body["integration_status"] == wanted)

        await until(reached)
        return body

    async def lifecycle_event(self, salon_id: int, event: str, **changes: Any) -> Any:
        payload = {
            "salon_id": salon_id,
            "application_id": APPLICATION_ID,
            "event": event,
            "partner_token": PARTNER_TOKEN,
            **changes,
        }
        return await self.client.post("/marketplace/yclients/webhook", json=payload)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    base = settings_from_env({}, dotenv=None)
    settings = replace(
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
    world = SimulatedWorld()
    policy = ActivationPolicy(poll_interval=0.02, backoff_initial=0.05, backoff_max=0.2)
    with trio.fail_after(WAIT):
        async with running_fake_yclients(rate_limits=None) as fake:
            base_client = YClientsClient(
                fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=RetryPolicy(attempts=1)
            )
            async with (
                base_client,
                open_storage(monotonic_clock=trio.current_time) as storage,
                open_gateway(settings, world=world) as gateway,
            ):
                companies = build_companies(settings, storage, gateway, rng=random.Random(5))
                services = yclients_services(
                    companies,
                    base_client,
                    activation_policy=policy,
                    lifecycle_poll=0.05,
                    lifecycle_retry=0.05,
                )
                async with companies.open_node(services) as node:
                    app = create_app(node)
                    yield Stack(fake, node, app.test_client(), world, settings)


async def _redirect(stack: Stack, salon_id: int, *, signed: bool) -> Any:
    user = {"id": 7, "name": "Анна", "email": "anna@example.com"} if signed else None
    query = f"salon_id={salon_id}"
    if user is not None:
        data, sign = sign_user_data(user, PARTNER_TOKEN)
        query += f"&user_data={quote(data)}&user_data_sign={sign}"
    return await stack.client.get(f"/marketplace/yclients/redirect?{query}")


async def install(stack: Stack, salon_id: int, *, signed: bool = True) -> tuple[int, str]:
    """The install redirect; returns (company id, connect token)."""
    response = await _redirect(stack, salon_id, signed=signed)
    assert response.status_code == 302, await response.get_data(as_text=True)
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert parts.path == "/marketplace/connect"
    params = parse_qs(parts.query)
    assert params["salon"] == [str(salon_id)]
    return int(params["company"][0]), params["token"][0]


async def link(stack: Stack, company_id: int) -> None:
    """Open the QR and scan it with the simulated phone."""
    response = await stack.client.post(
        f"/dev/simulator/{company_id}/scan", headers={"X-API-Key": ADMIN}
    )
    if response.status_code == 409:  # no live QR yet: ask for one, then scan
        await stack.node.company(company_id).ask(m.RequestQr())

        async def scanned() -> bool:
            nonlocal response
            response = await stack.client.post(
                f"/dev/simulator/{company_id}/scan", headers={"X-API-Key": ADMIN}
            )
            return response.status_code != 409

        await until(scanned)
    assert response.status_code == 200, await response.get_json()
    await stack.wait_status(company_id, "active")


def successful_callbacks(fake: FakeYClients, salon_id: int) -> int:
    return sum(
        1
        for r in fake.requests_to(CALLBACK, "POST")
        if r.status == 201 and isinstance(r.json, dict) and r.json.get("salon_id") == salon_id
    )


async def test_signed_redirect_registers_with_yclients_details_and_redirects(stack: Stack) -> None:
    company_id, token = await install(stack, LOTOS_ID)
    company = await stack.node.storage.companies.get(company_id)
    assert company is not None
    salon = stack.fake.salons[LOTOS_ID]
    assert company.title == salon.title and company.timezone == salon.timezone
    assert company.api_key_version == 1
    assert await stack.node.storage.companies.verify_api_key(
        company_id, derive_api_key(SECRET, LOTOS_ID, 1)
    )
    page = await stack.client.get(
        f"/marketplace/connect?token={token}&company={company_id}&salon={LOTOS_ID}"
    )
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'href="https://yclients.com/appstore/{LOTOS_ID}"' in html  # the way back


async def test_bad_or_missing_signature_is_refused_and_changes_nothing(stack: Stack) -> None:
    data, sign = sign_user_data({"id": 1}, PARTNER_TOKEN)
    bad = "0" * 64
    for query in (
        f"salon_id={LOTOS_ID}&user_data={data}&user_data_sign={bad}",
        f"salon_id={LOTOS_ID}&user_data={data}",
        f"salon_id={LOTOS_ID}&user_data_sign={sign}",
    ):
        response = await stack.client.get(
            f"/marketplace/yclients/redirect?{query}", headers={"Accept": "text/html"}
        )
        assert response.status_code == 403
        assert "Подпись не прошла проверку" in await response.get_data(as_text=True)
        json_response = await stack.client.get(f"/marketplace/yclients/redirect?{query}")
        assert json_response.status_code == 403
        assert (await json_response.get_json())["error"]["code"] == "invalid_signature"
    assert await stack.node.storage.companies.get_by_salon(LOTOS_ID) is None


async def test_link_delivers_one_callback_and_unsigned_redirect_cannot_touch_it(
    stack: Stack,
) -> None:
    company_id, _ = await install(stack, LOTOS_ID, signed=False)  # a new salon: fine unsigned
    await link(stack, company_id)
    with trio.fail_after(WAIT):
        await stack.fake.wait_until(lambda: successful_callbacks(stack.fake, LOTOS_ID) == 1)
    installation = stack.fake.installation(LOTOS_ID)
    assert installation["api_key"] == derive_api_key(SECRET, LOTOS_ID, 1)
    secret = derive_webhook_secret(SECRET, LOTOS_ID, 1)
    assert installation["webhook_urls"] == [
        f"https://ai-admin.example/marketplace/webhook/{company_id}/{secret}"
    ]
    # The registered webhook URL is accepted by our record-webhook route.
    hook = await stack.client.post(
        f"/marketplace/webhook/{company_id}/{secret}",
        json={
            "company_id": LOTOS_ID,
            "resource": "record",
            "resource_id": 5,
            "status": "create",
            "data": {"id": 5},
        },
    )
    assert hook.status_code == 200
    token_before = await stack.node.storage.tokens.current(company_id)
    again = await stack.client.get(f"/marketplace/yclients/redirect?salon_id={LOTOS_ID}")
    assert again.status_code == 403  # the same answer whatever the salon's state
    assert (await again.get_json())["error"]["code"] == "open_from_yclients"
    assert await stack.node.storage.tokens.current(company_id) == token_before
    after = await stack.node.storage.companies.get(company_id)
    assert after is not None and after.api_key_version == 1
    # Re-send on demand: the item reopens, YClients already has it, nothing is sent twice.
    delivery = stack.activation
    before = delivery.statistics().delivered
    resend = await stack.client.post(
        "/marketplace/callback", json={"company_id": company_id}, headers={"X-API-Key": ADMIN}
    )
    assert resend.status_code == 202

    async def delivered_again() -> bool:
        await trio.lowlevel.checkpoint()
        return bool(delivery.statistics().delivered > before)

    await until(delivered_again)
    assert successful_callbacks(stack.fake, LOTOS_ID) == 1
    assert delivery.statistics().recovered == 1


async def test_rejected_activation_shows_on_the_status_endpoint(stack: Stack) -> None:
    stack.fake.fail(CALLBACK, 422, message="Филиал не подключён к приложению", times=None)
    company_id, _ = await install(stack, ORCHID_ID)
    await link(stack, company_id)
    body = await stack.wait_status(company_id, "activation_failed")
    assert body["last_error"] == "422: Филиал не подключён к приложению"
    assert successful_callbacks(stack.fake, ORCHID_ID) == 0
    # ... and on the operators' health view, with YClients' message
    tree = await stack.client.get("/health/tree", headers={"X-API-Key": ADMIN})
    attention = (await tree.get_json())["attention"]
    assert {
        "company_id": company_id,
        "salon_id": ORCHID_ID,
        "problem": "activation_failed",
        "error": "422: Филиал не подключён к приложению",
    } in attention


async def test_freeze_reinstall_and_uninstall(stack: Stack) -> None:
    company_id, _ = await install(stack, LOTOS_ID)
    await link(stack, company_id)
    with trio.fail_after(WAIT):
        await stack.fake.wait_until(lambda: successful_callbacks(stack.fake, LOTOS_ID) == 1)

    # Refused webhooks change nothing.
    assert (
        await stack.lifecycle_event(LOTOS_ID, "freeze", partner_token="nope")
    ).status_code == 401
    assert (await stack.lifecycle_event(LOTOS_ID, "freeze", application_id=1)).status_code == 403
    assert (await stack.lifecycle_event(999_999, "freeze")).status_code == 404
    assert (await stack.status(company_id))["integration_status"] == "active"

    first = await stack.lifecycle_event(LOTOS_ID, "freeze")
    assert first.status_code == 200 and (await first.get_json())["duplicate"] is False
    dup = await stack.lifecycle_event(LOTOS_ID, "freeze")
    assert (await dup.get_json())["duplicate"] is True
    with trio.fail_after(WAIT):
        await stack.lifecycle.wait_handled(1)
    body = await stack.wait_status(company_id, "frozen")
    assert body["whatsapp_connected"] is False
    assert await stack.node.storage.companies.verify_api_key(
        company_id, derive_api_key(SECRET, LOTOS_ID, 1)
    )  # credentials kept
    assert await stack.node.storage.inbox.pending_count() == 0

    # An unsigned redirect YClients does not confirm (still "freezed") changes nothing.
    stack.fake.set_installation_status(LOTOS_ID, "freezed")
    await stack.client.get(f"/marketplace/yclients/redirect?salon_id={LOTOS_ID}")
    assert (await stack.status(company_id))["integration_status"] == "frozen"
    # A signed redirect alone proves nothing about this salon (the signature covers the
    # admin's data, not the salon): still no change while YClients shows the app frozen.
    assert (await _redirect(stack, LOTOS_ID, signed=True)).status_code == 403
    assert (await stack.status(company_id))["integration_status"] == "frozen"
    # The salon re-enables the app in YClients and comes back through the install flow:
    # active again without a new scan.
    stack.fake.set_installation_status(LOTOS_ID, "active")
    await install(stack, LOTOS_ID)
    await stack.wait_status(company_id, "active")

    response = await stack.lifecycle_event(LOTOS_ID, "uninstall")
    assert response.status_code == 200
    with trio.fail_after(WAIT):
        await stack.lifecycle.wait_handled(2)
    await stack.wait_status(company_id, "uninstalled")
    assert not await stack.node.storage.companies.verify_api_key(
        company_id, derive_api_key(SECRET, LOTOS_ID, 1)
    )
    assert await stack.node.storage.tokens.current(company_id) is None

    # Re-installed (YClients shows it pending again): back to pending, a new scan is needed.
    # The state follows YClients whoever asks, but only a signed redirect gets a connect link.
    stack.fake.set_installation_status(LOTOS_ID, "pending")
    unsigned = await _redirect(stack, LOTOS_ID, signed=False)
    assert unsigned.status_code == 403
    assert (await unsigned.get_json())["error"]["code"] == "open_from_yclients"
    await stack.wait_status(company_id, "pending")
    assert await stack.node.storage.tokens.current(company_id) is None
    again_id, _ = await install(stack, LOTOS_ID, signed=True)
    assert again_id == company_id


async def test_a_redirect_cannot_take_over_an_existing_salons_connect_link(stack: Stack) -> None:
    """Knowing a salon id — or holding another salon's signed user_data — is not enough to
    get a connect link for a salon that already exists: the redirect must be signed and
    YClients must confirm the install."""
    company_id, token = await install(stack, ORCHID_ID)  # registered by this redirect
    stack.fake.set_installation_status(ORCHID_ID, "uninstalled")  # YClients does not confirm

    unsigned = await _redirect(stack, ORCHID_ID, signed=False)
    assert unsigned.status_code == 403
    signed_elsewhere = await _redirect(stack, ORCHID_ID, signed=True)
    assert signed_elsewhere.status_code == 403
    # the admin's link still works, and no new one was issued
    assert await stack.node.storage.tokens.current(company_id) == token
    assert (await stack.status(company_id))["integration_status"] == "pending"

    # YClients showing the app installed proves only that, not who is asking: an unsigned
    # redirect still gets no link; a signed one (the admin coming from YClients) gets a fresh one
    stack.fake.set_installation_status(ORCHID_ID, "pending")
    unsigned = await _redirect(stack, ORCHID_ID, signed=False)
    assert unsigned.status_code == 403
    assert await stack.node.storage.tokens.current(company_id) == token
    again_id, fresh = await install(stack, ORCHID_ID, signed=True)
    assert again_id == company_id
    assert fresh != token


async def test_a_record_webhook_secret_cannot_uninstall_or_freeze(stack: Stack) -> None:
    """Lifecycle events come only with the partner token; the webhook secret is for records."""
    from actors.yclients import current_credentials, webhook_url

    company_id, _ = await install(stack, LOTOS_ID)
    company = await stack.node.storage.companies.get(company_id)
    assert company is not None
    credentials = await current_credentials(stack.node.storage.companies, company, SECRET)
    url = webhook_url("http://testserver", company_id, credentials.webhook_secret)
    path = url.removeprefix("http://testserver")
    for body in (
        {"resource": "lifecycle", "company_id": LOTOS_ID, "resource_id": 1, "status": "uninstall"},
        {"type": "lifecycle:freeze", "company_id": LOTOS_ID, "resource_id": 1, "status": ""},
    ):
        response = await stack.client.post(path, json=body)
        assert response.status_code == 400
    assert await stack.node.storage.inbox.pending_count() == 0
    assert (await stack.status(company_id))["integration_status"] == "pending"
