"""The install redirect is a URL anyone can forge (issue 12, security 1 and 2): it never hands
an existing salon's connect link to an unsigned caller, never registers a salon YClients does not
know, registers one unsigned only when YClients confirms our app is installed there, and is
rate-limited per client IP.

Run against the fake YClients over loopback HTTP, on both storage backends (the attack was on
PostgreSQL + Redis).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.fakes.yclients import BORODA_ID, LOTOS_ID, ORCHID_ID
from tests.web.conftest import ADMIN_KEY, make_web_settings, open_memory_storage, open_web
from tests.web.yclients_stack import Stack, open_stack

#: Salon ids YClients has never heard of (it answers 404 «Филиал не найден»).
UNKNOWN_SALONS = tuple(range(710_000, 710_010))


@pytest.fixture(params=["memory", "real"])
async def stack(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Stack]:
    async with open_stack(str(request.param), database_url, redis_prefix) as opened:
        yield opened


async def status_with(stack: Stack, company_id: int, token: str) -> int:
    """What the connect page's own status call answers for the admin's connect token."""
    response = await stack.client.get(
        f"/marketplace/status/{company_id}", headers={"Authorization": f"Bearer {token}"}
    )
    return int(response.status_code)


async def test_an_unsigned_redirect_cannot_take_over_a_salons_connect_link(stack: Stack) -> None:
    """The reproduction: an installed salon that has not linked WhatsApp yet, YClients confirming
    the installation, and a redirect with nothing but the salon id."""
    company_id, token = await stack.install(LOTOS_ID, signed=True)
    assert stack.fake.installation(LOTOS_ID)["status"] == "pending"  # YClients confirms it
    assert await status_with(stack, company_id, token) == 200

    for _ in range(2):
        attack = await stack.redirect(LOTOS_ID)
        assert attack.status_code == 403
        assert "Location" not in attack.headers
        body = await attack.get_json()
        assert body["error"]["code"] == "open_from_yclients"
        assert token not in await attack.get_data(as_text=True)

    # The admin's link still works, no other was issued, nothing changed.
    assert await stack.storage.tokens.current(company_id) == token
    assert await status_with(stack, company_id, token) == 200
    assert await stack.status(company_id) == "pending"

    # A browser gets a page in Russian saying where the link comes from, and no token.
    page = await stack.redirect(LOTOS_ID, html=True)
    text = await page.get_data(as_text=True)
    assert page.status_code == 403
    assert page.mimetype == "text/html"
    assert "Откройте AI Admin из YClients" in text
    assert "ссылкой, которую вы уже получили" in text
    assert "token=" not in text and token not in text
    assert f'href="https://yclients.com/appstore/{LOTOS_ID}"' in text
    assert await stack.storage.tokens.current(company_id) == token

    # The admin coming from YClients (signed user_data) gets a fresh link.
    again_id, fresh = await stack.install(LOTOS_ID, signed=True)
    assert again_id == company_id and fresh != token
    assert await status_with(stack, company_id, fresh) == 200


async def test_an_unsigned_redirect_answers_the_same_for_every_existing_salon(
    stack: Stack,
) -> None:
    """Pending, frozen with YClients still frozen, uninstalled: one answer, no token."""
    pending_id, pending_token = await stack.install(LOTOS_ID, signed=True)
    frozen_id, _ = await stack.install(ORCHID_ID, signed=True)
    gone_id, _ = await stack.install(BORODA_ID, signed=True)
    for salon, event in ((ORCHID_ID, "freeze"), (BORODA_ID, "uninstall")):
        assert (await stack.lifecycle_event(salon, event)).status_code == 200
    await stack.until(lambda: _has_status(stack, frozen_id, "frozen"))
    await stack.until(lambda: _has_status(stack, gone_id, "uninstalled"))
    stack.fake.set_installation_status(ORCHID_ID, "freezed")
    stack.fake.set_installation_status(BORODA_ID, "uninstalled")

    answers = set()
    for salon in (LOTOS_ID, ORCHID_ID, BORODA_ID, LOTOS_ID):
        response = await stack.redirect(salon)
        answers.add((response.status_code, await response.get_data(as_text=True)))
    assert len(answers) == 1
    status, body = answers.pop()
    assert status == 403 and "open_from_yclients" in body
    assert await stack.status(frozen_id) == "frozen"
    assert await stack.status(gone_id) == "uninstalled"
    assert await stack.storage.tokens.current(pending_id) == pending_token
    assert await stack.storage.tokens.current(gone_id) is None


async def _has_status(stack: Stack, company_id: int, wanted: str) -> bool:
    return await stack.status(company_id) == wanted


async def test_unknown_salons_are_never_registered(stack: Stack) -> None:
    """``salon_ids[]=710000…710009``: YClients answers 404 for each; nothing is created,
    signed or not."""
    response = await stack.redirect(*UNKNOWN_SALONS)
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "salon_not_found"
    signed = await stack.redirect(UNKNOWN_SALONS[0], signed=True, ip="198.51.100.8")
    assert signed.status_code == 404
    for salon in UNKNOWN_SALONS:
        assert await stack.storage.companies.get_by_salon(salon) is None
    assert sum((await stack.storage.companies.count_by_status()).values()) == 0
    asked = {r.path for r in stack.fake.requests if r.path.startswith("/marketplace/salon/710")}
    assert len(asked) == len(UNKNOWN_SALONS)  # each one was checked with YClients


async def test_an_unsigned_redirect_registers_only_what_yclients_confirms(stack: Stack) -> None:
    stack.fake.set_installation_status(ORCHID_ID, "freezed")
    refused = await stack.redirect(ORCHID_ID)
    assert refused.status_code == 403
    assert (await refused.get_json())["error"]["code"] == "not_confirmed"
    assert await stack.storage.companies.get_by_salon(ORCHID_ID) is None

    # YClients confirms (pending): a new salon may start from an unsigned redirect.
    company_id, token = await stack.install(LOTOS_ID, signed=False)
    company = await stack.storage.companies.get(company_id)
    assert company is not None and company.yclients_id == LOTOS_ID
    assert company.title == stack.fake.salons[LOTOS_ID].title
    assert await status_with(stack, company_id, token) == 200


async def test_when_yclients_cannot_be_asked_only_a_signed_redirect_registers(
    stack: Stack,
) -> None:
    path = f"/marketplace/salon/{LOTOS_ID}/application/*"
    stack.fake.fail(path, 500, times=None)
    unsigned = await stack.redirect(LOTOS_ID)
    assert unsigned.status_code == 503
    assert unsigned.headers["Retry-After"] == "60"
    assert await stack.storage.companies.get_by_salon(LOTOS_ID) is None
    company_id, _ = await stack.install(LOTOS_ID, signed=True)
    assert (await stack.storage.companies.get(company_id)) is not None


async def test_the_redirect_is_rate_limited_per_client_ip(stack: Stack) -> None:
    """Each salon id counts (each may cost YClients calls under our shared partner limit)."""
    limit = stack.settings.redirect_rate_limit.limit
    assert limit == len(UNKNOWN_SALONS)
    first = await stack.redirect(*UNKNOWN_SALONS, ip="203.0.113.5")
    assert first.status_code != 429
    calls = len(stack.fake.requests)

    over = await stack.redirect(LOTOS_ID, ip="203.0.113.5")
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert (await over.get_json())["error"]["code"] == "rate_limited"
    page = await stack.redirect(LOTOS_ID, ip="203.0.113.5", html=True)
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "Слишком много попыток" in await page.get_data(as_text=True)
    assert len(stack.fake.requests) == calls  # refused before YClients was asked
    assert await stack.storage.companies.get_by_salon(LOTOS_ID) is None

    # Another address has its own budget.
    await stack.install(LOTOS_ID, signed=False)


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
async def test_a_node_without_yclients_says_so_rather_than_blaming_yclients(accept: str) -> None:
    """No partner token or application id on this node: the redirect cannot ask YClients, and
    says that (503 ``yclients_not_configured``), not that YClients is down — for the admin key
    as for anyone, and nothing is registered."""
    async with (
        open_memory_storage() as storage,
        open_web(make_web_settings(), storage) as web,
    ):
        response = await web.client.get(
            "/marketplace/yclients/redirect?salon_id=1",
            headers={"X-API-Key": ADMIN_KEY, "Accept": accept},
        )
        text = await response.get_data(as_text=True)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "60"
        if accept == "application/json":
            assert json.loads(text)["error"]["code"] == "yclients_not_configured"
        else:
            assert "не настроена связь с YClients" in text
            assert "не отвечает" not in text
        assert await storage.companies.get_by_salon(1) is None
