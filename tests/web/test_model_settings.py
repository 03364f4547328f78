"""A salon's language model through the API (issue 15): off until the salon opts in, its
choice of model, its daily token cap, today's spending on its own clock — on the model
route and in the conversations listing — validated input, and answers that fit the
documented schemas; on both storage backends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jsonschema
import pytest
import trio

from actors.assistant._model_policy import DEFAULT_DAILY_TOKEN_CAP, salon_day
from actors.reminders._planner import salon_zone
from config import LlmSettings, Settings
from storage import SalonModelSettings
from tests.web.conftest import (
    WebHarness,
    issue_jwt,
    make_web_settings,
    open_memory_storage,
    open_web,
    register,
    uninstall,
)
from tests.web.test_isolation import COMPANY_ROUTES
from tests.web.test_openapi_complete import fetch_document, schema_of
from tests.web.test_routes import error_of

NODE_MODEL = "gpt-4o-mini"
ROUTE = "/marketplace/company/{companyId}/assistant/model"


@pytest.fixture
def settings() -> Settings:
    """A node with a language model configured (the capability salons may opt into)."""
    llm = LlmSettings(base_url="http://127.0.0.1:9/v1", model=NODE_MODEL, api_key="sk-test")
    return make_web_settings(llm=llm)


def path(company_id: int) -> str:
    return ROUTE.replace("{companyId}", str(company_id))


async def model_of(web: WebHarness, company_id: int, headers: dict[str, str]) -> dict[str, Any]:
    response = await web.client.get(path(company_id), headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["company_id"] == company_id
    model = body["model"]
    assert isinstance(model, dict)
    return model


async def patch(
    web: WebHarness, company_id: int, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    response = await web.client.patch(path(company_id), json=body, headers=headers)
    return response.status_code, await response.get_json()


async def local_days(web: WebHarness, company_id: int) -> tuple[date, date]:
    """Today on the salon's clock and the day after (a test that runs across the salon's
    midnight sees the second)."""
    company = await web.storage.companies.get(company_id)
    assert company is not None
    today = salon_day(salon_zone(company.timezone), datetime.now(UTC))
    return today, today + timedelta(days=1)


def test_the_routes_are_in_the_isolation_matrix() -> None:
    assert {("GET", ROUTE), ("PATCH", ROUTE)} <= set(COMPANY_ROUTES)


async def test_a_salon_is_off_until_it_opts_in_and_then_uses_its_choice(
    any_web: WebHarness,
) -> None:
    web = any_web
    salon = await register(web)
    cid = salon.company_id
    first = await model_of(web, cid, salon.key_headers)
    assert {k: first[k] for k in ("enabled", "name", "customised", "in_effect", "reason")} == {
        "enabled": False,
        "name": None,
        "customised": False,
        "in_effect": None,
        "reason": "off",
    }
    assert first["daily_token_cap"] == DEFAULT_DAILY_TOKEN_CAP
    assert first["node_model"] == NODE_MODEL
    assert await web.storage.model_usage.get_settings(cid) is None

    status, body = await patch(web, cid, {"enabled": True}, salon.key_headers)
    assert status == 200, body
    assert (body["model"]["enabled"], body["model"]["in_effect"]) == (True, NODE_MODEL)
    assert body["model"]["reason"] is None and body["model"]["customised"] is True
    assert await web.storage.model_usage.get_settings(cid) == SalonModelSettings(
        True, None, DEFAULT_DAILY_TOKEN_CAP
    )

    jwt = {"Authorization": f"Bearer {await issue_jwt(web, salon)}"}
    status, body = await patch(web, cid, {"name": "deepseek-chat", "daily_token_cap": 50_000}, jwt)
    assert status == 200, body
    assert body["model"]["in_effect"] == "deepseek-chat"
    assert body["model"]["today"]["daily_token_cap"] == 50_000
    status, body = await patch(web, cid, {"name": None}, web.admin)  # back to the node's
    assert (status, body["model"]["in_effect"], body["model"]["name"]) == (200, NODE_MODEL, None)
    status, body = await patch(web, cid, {"enabled": False}, web.admin)
    assert (body["model"]["in_effect"], body["model"]["reason"]) == (None, "off")
    assert await web.storage.model_usage.get_settings(cid) == SalonModelSettings(
        False, None, 50_000
    )
    changes = [e for e in await web.storage.audit.recent(cid) if e.event_type.startswith("ass")]
    assert [e.event_type for e in changes] == ["assistant_model_changed"] * 4
    assert changes[0].data == {
        "by": "admin",
        "enabled": False,
        "name": None,
        "daily_token_cap": 50_000,
    }
    # the same value again changes (and audits) nothing
    await patch(web, cid, {"enabled": False}, web.admin)
    again = [e for e in await web.storage.audit.recent(cid) if e.event_type.startswith("ass")]
    assert len(again) == 4


async def test_spending_and_the_cap_show_on_both_routes(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web)
    cid = salon.company_id
    await patch(web, cid, {"enabled": True, "daily_token_cap": 1_000}, salon.key_headers)
    for day in await local_days(web, cid):
        await web.storage.model_usage.add_usage(cid, day, 700, 250)
        await web.storage.model_usage.add_usage(cid, day, 40, 10)
    model = await model_of(web, cid, salon.key_headers)
    assert model["in_effect"] is None and model["reason"] == "cap_reached"
    today = model["today"]
    assert date.fromisoformat(today["day"]) in await local_days(web, cid)
    assert {k: today[k] for k in today if k != "day"} == {
        "timezone": "Europe/Moscow",
        "prompt_tokens": 740,
        "completion_tokens": 260,
        "total_tokens": 1_000,
        "calls": 2,
        "daily_token_cap": 1_000,
        "capped": True,
    }
    listing = await web.client.get(f"/marketplace/conversations/{cid}", headers=salon.key_headers)
    listed = (await listing.get_json())["language_model"]
    assert listed["today"]["prompt_tokens"] == 740 and listed["reason"] == "cap_reached"

    status, body = await patch(web, cid, {"daily_token_cap": 1_001}, salon.key_headers)
    assert (status, body["model"]["in_effect"], body["model"]["today"]["capped"]) == (
        200,
        NODE_MODEL,
        False,
    )
    # Another salon's listing shows its own spending only.
    other = await register(web)
    theirs = await web.client.get(
        f"/marketplace/conversations/{other.company_id}", headers=other.key_headers
    )
    assert (await theirs.get_json())["language_model"]["today"]["total_tokens"] == 0


async def test_a_node_without_a_model_says_so() -> None:
    async with open_memory_storage() as storage, open_web(make_web_settings(), storage) as web:
        salon = await register(web)
        status, body = await patch(web, salon.company_id, {"enabled": True}, salon.key_headers)
        assert status == 200, body
        assert body["model"]["enabled"] is True  # kept for when the node gets a model
        assert (body["model"]["node_model"], body["model"]["in_effect"]) == (None, None)
        assert body["model"]["reason"] == "node_has_no_model"


async def test_a_node_without_a_default_model_uses_the_salons_own() -> None:
    no_default = make_web_settings(llm=LlmSettings(base_url="http://127.0.0.1:9/v1"))
    async with open_memory_storage() as storage, open_web(no_default, storage) as web:
        salon = await register(web)
        status, body = await patch(web, salon.company_id, {"enabled": True}, salon.key_headers)
        assert (body["model"]["in_effect"], body["model"]["reason"]) == (None, "no_model_named")
        status, body = await patch(web, salon.company_id, {"name": "gpt-4o"}, salon.key_headers)
        assert (status, body["model"]["in_effect"], body["model"]["reason"]) == (
            200,
            "gpt-4o",
            None,
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": None}, "enabled"),
        ({"name": ""}, "name"),
        ({"name": "gpt 4"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "-leading"}, "name"),
        ({"name": 5}, "name"),
        ({"daily_token_cap": 0}, "daily_token_cap"),
        ({"daily_token_cap": 1_000_000_001}, "daily_token_cap"),
        ({"daily_token_cap": 1.5}, "daily_token_cap"),
        ({"daily_token_cap": "100"}, "daily_token_cap"),
        ({"daily_token_cap": True}, "daily_token_cap"),
        ({"enabled": True, "model": "gpt-4o"}, "model"),
        ({"enabled": True, "<script>": 1}, "a key"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    web: WebHarness, body: dict[str, Any], field: str
) -> None:
    salon = await register(web)
    response = await web.client.patch(path(salon.company_id), json=body, headers=salon.key_headers)
    error = await error_of(response, 400, "invalid_field")
    assert error["message"].startswith(field)
    assert "<script>" not in json.dumps(await response.get_json())
    assert await web.storage.model_usage.get_settings(salon.company_id) is None


async def test_empty_and_non_object_bodies_are_400(web: WebHarness) -> None:
    salon = await register(web)
    empty = await web.client.patch(path(salon.company_id), json={}, headers=salon.key_headers)
    await error_of(empty, 400, "missing_field")
    listed = await web.client.patch(path(salon.company_id), json=[1], headers=salon.key_headers)
    await error_of(listed, 400)
    assert await web.storage.model_usage.get_settings(salon.company_id) is None


async def test_unknown_and_uninstalled_salons(web: WebHarness) -> None:
    missing = await web.client.get(path(999_999), headers=web.admin)
    await error_of(missing, 404, "company_not_found")
    salon = await register(web)
    await uninstall(web, salon.company_id)
    gone = await web.client.patch(path(salon.company_id), json={"enabled": True}, headers=web.admin)
    await error_of(gone, 410, "uninstalled")
    assert await web.storage.model_usage.get_settings(salon.company_id) is None
    assert (await model_of(web, salon.company_id, web.admin))["enabled"] is False


async def test_answers_fit_the_documented_schemas(web: WebHarness) -> None:
    document = await fetch_document(web)
    salon = await register(web)
    cid = salon.company_id
    today, _ = await local_days(web, cid)
    await web.storage.model_usage.add_usage(cid, today, 10, 2)
    got = await web.client.get(path(cid) + "?days=3", headers=salon.key_headers)
    answer = await got.get_json()
    assert len(answer["history"]) == 1
    jsonschema.validate(answer, schema_of(document, "get", ROUTE, 200))
    changed = await web.client.patch(
        path(cid), json={"enabled": True, "name": "qwen2.5:7b-instruct"}, headers=web.admin
    )
    jsonschema.validate(await changed.get_json(), schema_of(document, "patch", ROUTE, 200))
    listing = await web.client.get(f"/marketplace/conversations/{cid}", headers=web.admin)
    jsonschema.validate(
        await listing.get_json(),
        schema_of(document, "get", "/marketplace/conversations/{companyId}", 200),
    )
    change = document["paths"][ROUTE]["patch"]["requestBody"]["content"]["application/json"]
    validator = jsonschema.Draft202012Validator(change["schema"])
    assert validator.is_valid({"enabled": True, "name": None, "daily_token_cap": 5})
    assert not validator.is_valid({"model": "x"})
    assert not validator.is_valid({"daily_token_cap": 0})


async def test_days_lists_the_salons_recent_spending(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web)
    cid = salon.company_id
    today, _ = await local_days(web, cid)
    for back, tokens in ((0, 100), (1, 200), (6, 300), (7, 400)):
        await web.storage.model_usage.add_usage(cid, today - timedelta(days=back), tokens, 5)
    response = await web.client.get(path(cid) + "?days=7", headers=salon.key_headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    listed = [(d["day"], d["prompt_tokens"], d["total_tokens"]) for d in body["history"]]
    if date.fromisoformat(body["model"]["today"]["day"]) == today:  # not past the salon's midnight
        assert listed == [
            (today.isoformat(), 100, 105),
            ((today - timedelta(days=1)).isoformat(), 200, 205),
            ((today - timedelta(days=6)).isoformat(), 300, 305),
        ]
    plain = await (await web.client.get(path(cid), headers=salon.key_headers)).get_json()
    assert "history" not in plain
    for bad in ("0", "91", "x", "-1", "7.0"):
        refused = await web.client.get(path(cid) + f"?days={bad}", headers=salon.key_headers)
        error = await error_of(refused, 400, "invalid_field")
        assert error["message"].startswith("days")


async def test_concurrent_partial_changes_keep_every_field(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web)
    cid = salon.company_id
    statuses: list[int] = []

    async def change(body: dict[str, Any]) -> None:
        statuses.append((await patch(web, cid, body, web.admin))[0])

    for round_ in range(1, 6):
        enabled = round_ % 2 == 1
        cap, name = 10_000 + round_, f"model-{round_}"
        async with trio.open_nursery() as nursery:  # a read-then-write route loses fields here
            nursery.start_soon(change, {"enabled": enabled})
            nursery.start_soon(change, {"daily_token_cap": cap})
            nursery.start_soon(change, {"name": name})
        assert statuses[-3:] == [200, 200, 200]
        stored = await web.storage.model_usage.get_settings(cid)
        assert stored == SalonModelSettings(enabled, name, cap), round_
        shown = await model_of(web, cid, web.admin)
        assert (shown["enabled"], shown["name"], shown["daily_token_cap"]) == (enabled, name, cap)
    changes = [
        e for e in await web.storage.audit.recent(cid, limit=100) if e.event_type.startswith("ass")
    ]
    assert len(changes) == 15  # each PATCH changed its field, and is audited once
