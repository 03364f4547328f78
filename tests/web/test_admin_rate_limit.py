"""The partner/admin key's own rate limit (``AIADMIN_ADMIN_RATE_LIMIT``): per route, shared by
every address the key calls from, much higher than the per-IP ``AIADMIN_API_RATE_LIMIT`` —
with the defaults a partner polls 1,000 salons' status in a minute. A wrong key gets no part
of it. Trio's MockClock keeps the window still while the requests run."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from config import ConfigError, RateLimit, settings_from_env
from tests.web.conftest import WebHarness, make_web_settings, open_memory_storage, open_web, peer
from tests.web.conftest import register as register_salon

API_LIMIT = 30
ADMIN_LIMIT = 60


async def hit(
    web: WebHarness, path: str, ip: str, headers: dict[str, str] | None = None
) -> tuple[int, str | None]:
    response = await web.client.get(path, scope_base=peer(ip), headers=headers)
    return response.status_code, response.headers.get("Retry-After")


async def test_the_admin_budget_is_its_own_and_shared_by_its_addresses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = make_web_settings(admin_rate_limit=RateLimit(ADMIN_LIMIT, 60.0))
    assert settings.api_rate_limit == RateLimit(API_LIMIT, 60.0)
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        # Twice the per-IP limit from one address, then the rest of the budget from another.
        for n in range(ADMIN_LIMIT):
            ip = "203.0.113.1" if n < 2 * API_LIMIT - 10 else "203.0.113.2"
            assert await hit(web, "/marketplace/companies", ip, web.admin) == (200, None), n
        status, retry_after = await hit(web, "/marketplace/companies", "203.0.113.3", web.admin)
        assert status == 429 and retry_after is not None and 1 <= int(retry_after) <= 60
        # Per route: the admin's other routes, and everyone else's budgets, are untouched.
        assert (await hit(web, "/health/tree", "203.0.113.1", web.admin))[0] == 200
        assert (await hit(web, "/marketplace/test", "203.0.113.1"))[0] == 200
        # A wrong key is an anonymous caller: the per-IP budget, 401 until it is spent.
        wrong = {"X-API-Key": "adm_guess_0123456789abcdef0123456789"}
        statuses = [
            (await hit(web, "/marketplace/companies", "198.51.100.9", wrong))[0]
            for _ in range(API_LIMIT + 1)
        ]
        assert statuses == [401] * API_LIMIT + [429]
        # The window passes: the admin is served again.
        await trio.sleep(int(retry_after))
        assert (await hit(web, "/marketplace/companies", "203.0.113.3", web.admin))[0] == 200


async def test_with_the_defaults_a_partner_polls_1000_salons_a_minute(
    autojump_clock: trio.testing.MockClock,
) -> None:
    settings = make_web_settings()
    assert settings.admin_rate_limit == RateLimit(6000, 60.0)
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        salons = [await register_salon(web) for _ in range(10)]
        started = trio.current_time()
        for n in range(1000):
            company = salons[n % len(salons)].company_id
            status, _ = await hit(web, f"/marketplace/status/{company}", "203.0.113.7", web.admin)
            assert status == 200, n
        assert trio.current_time() - started < 60  # all inside one window
        # The same route with a salon's own key from one address: the per-IP limit.
        own = salons[0]
        statuses = [
            (await hit(web, f"/marketplace/status/{own.company_id}", "192.0.2.7", own.key_headers))[
                0
            ]
            for _ in range(API_LIMIT + 1)
        ]
        assert statuses == [200] * API_LIMIT + [429]


def test_the_setting_is_read_and_checked() -> None:
    assert settings_from_env({}, dotenv=None).admin_rate_limit == RateLimit(6000, 60.0)
    env = {"AIADMIN_ADMIN_RATE_LIMIT": "12000/30"}
    assert settings_from_env(env, dotenv=None).admin_rate_limit == RateLimit(12000, 30.0)
    # A per-IP limit set higher (benchmarks, stands) is never a cut for the admin key ...
    lifted = settings_from_env({"AIADMIN_API_RATE_LIMIT": "1000000/60"}, dotenv=None)
    assert lifted.admin_rate_limit == RateLimit(1_000_000, 60.0)
    # ... unless the admin limit is set itself.
    both = {"AIADMIN_API_RATE_LIMIT": "1000000/60", "AIADMIN_ADMIN_RATE_LIMIT": "100/60"}
    assert settings_from_env(both, dotenv=None).admin_rate_limit == RateLimit(100, 60.0)
    with pytest.raises(ConfigError) as info:
        settings_from_env({"AIADMIN_ADMIN_RATE_LIMIT": "plenty"}, dotenv=None)
    assert info.value.problems == [
        "AIADMIN_ADMIN_RATE_LIMIT must look like LIMIT/SECONDS, e.g. 30/60, got 'plenty'"
    ]
