"""The node's limits on what a salon may choose for its language model (issue 15): the most
tokens a day any salon may set (``AIADMIN_LLM_MAX_DAILY_TOKENS``) and, when listed, the
models it may pick (``AIADMIN_LLM_MODELS``) — the node's key pays for both, so a salon's own
credentials cannot raise its spending past them, and neither can the admin key."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.assistant._model_policy import SalonModelPolicy, salon_day
from actors.reminders._planner import salon_zone
from config import LlmSettings, settings_from_env
from storage import SalonModelSettings
from tests.web.conftest import make_web_settings, open_memory_storage, open_web, register
from tests.web.test_routes import error_of

ROUTE = "/marketplace/company/{companyId}/assistant/model"


def _path(company_id: int) -> str:
    return ROUTE.replace("{companyId}", str(company_id))


def test_the_limits_are_read_from_the_environment() -> None:
    default = settings_from_env({}, dotenv=None).llm
    assert (default.max_daily_tokens, default.models) == (1_000_000, ())
    llm = settings_from_env(
        {"AIADMIN_LLM_MAX_DAILY_TOKENS": "50000", "AIADMIN_LLM_MODELS": "gpt-4o-mini, qwen2.5:7b"},
        dotenv=None,
    ).llm
    assert (llm.max_daily_tokens, llm.models) == (50_000, ("gpt-4o-mini", "qwen2.5:7b"))


async def test_a_cap_above_the_nodes_limit_is_400_for_any_caller() -> None:
    llm = LlmSettings(
        base_url="http://127.0.0.1:9/v1", model="gpt-4o-mini", max_daily_tokens=300_000
    )
    async with (
        open_memory_storage() as storage,
        open_web(make_web_settings(llm=llm), storage) as web,
    ):
        salon = await register(web)
        for headers in (salon.key_headers, web.admin):
            response = await web.client.patch(
                _path(salon.company_id), json={"daily_token_cap": 300_001}, headers=headers
            )
            error = await error_of(response, 400, "invalid_field")
            assert error["message"].startswith("daily_token_cap") and "300000" in error["message"]
        assert await storage.model_usage.get_settings(salon.company_id) is None
        response = await web.client.patch(
            _path(salon.company_id), json={"daily_token_cap": 300_000}, headers=web.admin
        )
        assert response.status_code == 200
        assert (await response.get_json())["model"]["daily_token_cap"] == 300_000


async def test_a_model_outside_the_nodes_list_is_400() -> None:
    llm = LlmSettings(
        base_url="http://127.0.0.1:9/v1", model="gpt-4o-mini", models=("gpt-4o-mini", "qwen2.5:7b")
    )
    async with (
        open_memory_storage() as storage,
        open_web(make_web_settings(llm=llm), storage) as web,
    ):
        salon = await register(web)
        response = await web.client.patch(
            _path(salon.company_id), json={"enabled": True, "name": "gpt-4o"}, headers=web.admin
        )
        error = await error_of(response, 400, "invalid_field")
        assert error["message"].startswith("name") and "qwen2.5:7b" in error["message"]
        assert await storage.model_usage.get_settings(salon.company_id) is None
        for name in ("qwen2.5:7b", None):  # null: the node's own model is always allowed
            response = await web.client.patch(
                _path(salon.company_id),
                json={"enabled": True, "name": name},
                headers=salon.key_headers,
            )
            assert response.status_code == 200, await response.get_json()


async def test_choices_stored_before_the_limits_are_held_to_them() -> None:
    # a salon that set 1e9 and a costly model before the operator set the limits
    async with open_memory_storage() as storage:
        llm = LlmSettings(
            base_url="http://127.0.0.1:9/v1",
            model="gpt-4o-mini",
            max_daily_tokens=1_000,
            models=("gpt-4o-mini",),
        )
        async with open_web(make_web_settings(llm=llm), storage) as web:
            salon = await register(web)
        cid = salon.company_id
        company = await storage.companies.get(cid)
        assert company is not None
        day = salon_day(salon_zone(company.timezone), datetime.now(UTC))
        await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 1_000_000_000))
        policy = SalonModelPolicy(storage, "gpt-4o-mini", max_daily_tokens=1_000, models=llm.models)
        assert await policy.choice(cid) == "gpt-4o-mini"
        await storage.model_usage.add_usage(cid, day, 900, 100)
        assert await policy.choice(cid) is None  # the node's limit, not the stored 1e9
        await storage.model_usage.put_settings(cid, SalonModelSettings(True, "gpt-4o", 1_000))
        assert await SalonModelPolicy(storage, "gpt-4o-mini", models=llm.models).choice(cid) is None
