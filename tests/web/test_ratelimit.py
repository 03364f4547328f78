"""The API rate limit: 30 requests per minute per IP per route, 429 with ``Retry-After`` after
that, shared by every process on one Redis."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.support.databases import open_real_storage
from tests.web.conftest import WebHarness, make_web_settings, open_web, peer, register

LIMIT = 30


async def hit(
    web: WebHarness, path: str, ip: str = "198.51.100.1", headers: dict[str, str] | None = None
) -> int:
    response = await web.client.get(path, scope_base=peer(ip), headers=headers)
    return response.status_code


async def test_31st_request_in_a_minute_is_429(
    web: WebHarness, autojump_clock: trio.testing.MockClock
) -> None:
    assert web.settings.api_rate_limit.limit == LIMIT
    statuses = [await hit(web, "/marketplace/test") for _ in range(LIMIT)]
    assert statuses == [200] * LIMIT
    response = await web.client.get("/marketplace/test", scope_base=peer("198.51.100.1"))
    body = await response.get_json()
    assert response.status_code == 429
    assert body == {
        "success": False,
        "error": {
            "code": "rate_limited",
            "message": "Too many requests, please wait and try again.",
        },
    }
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    # Other routes and other IPs have their own budgets.
    assert await hit(web, "/marketplace/companies", headers=web.admin) == 200
    assert await hit(web, "/marketplace/test", ip="198.51.100.2") == 200
    # Probes are never limited.
    assert {await hit(web, "/health") for _ in range(LIMIT + 5)} == {200}
    # The window passes: allowed again.
    await trio.sleep(retry_after)
    assert await hit(web, "/marketplace/test") == 200


async def test_path_parameters_share_one_budget(web: WebHarness) -> None:
    """The budget is per route, not per URL: changing the id does not get a fresh one."""
    company = await register(web)
    for n in range(LIMIT):
        status = await hit(web, f"/marketplace/status/{n + 1}", headers=company.key_headers)
        assert status in (200, 403)
    assert await hit(web, f"/marketplace/status/{company.company_id}") == 429


async def test_refused_requests_are_counted_too(web: WebHarness) -> None:
    """Failed authentication attempts use up the budget (no free brute force)."""
    for _ in range(LIMIT):
        assert await hit(web, "/marketplace/status/1", headers={"X-API-Key": "sk_guess"}) == 401
    assert await hit(web, "/marketplace/status/1", headers={"X-API-Key": "sk_guess"}) == 429


@pytest.mark.parametrize(("first", "second"), [(20, 11), (30, 1), (1, 30)])
async def test_two_apps_on_one_redis_share_the_budget(
    database_url: str, redis_prefix: str, first: int, second: int
) -> None:
    settings_ip = "192.0.2.33"
    settings = make_web_settings()
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage_one,
        open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False) as storage_two,
        open_web(settings, storage_one) as one,
        open_web(settings, storage_two) as two,
    ):
        assert storage_one.redis_kind == "redis"
        assert one.app is not two.app
        with trio.fail_after(30):
            for _ in range(first):
                assert await hit(one, "/marketplace/test", ip=settings_ip) == 200
            for _ in range(second - 1):
                assert await hit(two, "/marketplace/test", ip=settings_ip) == 200
            response = await two.client.get("/marketplace/test", scope_base=peer(settings_ip))
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert await hit(one, "/marketplace/test", ip=settings_ip) == 429
        assert await hit(one, "/marketplace/test", ip="192.0.2.34") == 200


async def test_the_salon_page_has_its_own_larger_budget(web: WebHarness) -> None:
    """The salon page reloads a chat on each live frame: with its cookie a browser gets
    ``salon_rate_limit`` per route (600 a minute), where the same route with the company's key
    is limited at 30; the larger budget runs out too."""
    company = await register(web)
    client = web.app.test_client(use_cookies=False)
    signed_in = await client.post("/marketplace/salon/session", json={"token": company.token})
    assert signed_in.status_code == 200
    cookie = signed_in.headers["Set-Cookie"].split(";", 1)[0]
    path = f"/marketplace/salon/api/{company.company_id}/results"
    budget = web.settings.salon_rate_limit.limit
    assert budget == 600 > LIMIT
    browser = [
        (await client.get(path, headers={"Cookie": cookie}, scope_base=peer("198.51.100.9")))
        for _ in range(budget)
    ]
    assert {r.status_code for r in browser} == {200}
    last = await client.get(path, headers={"Cookie": cookie}, scope_base=peer("198.51.100.9"))
    assert last.status_code == 429
    by_key = [
        await hit(web, path, ip="198.51.100.10", headers=company.key_headers)
        for _ in range(LIMIT + 1)
    ]
    assert by_key == [200] * LIMIT + [429]
