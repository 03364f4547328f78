"""Switching a salon's assistant on and off (``companies.ai_enabled``) through the API, and the
status response showing it."""

from __future__ import annotations

import pytest

from tests.web.conftest import WebHarness, issue_jwt, register, uninstall
from tests.web.test_routes import error_of


def switch_path(company_id: int) -> str:
    return f"/marketplace/company/{company_id}/assistant"


async def assistant_enabled(web: WebHarness, company_id: int, headers: dict[str, str]) -> bool:
    response = await web.client.get(f"/marketplace/status/{company_id}", headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    enabled = body["assistant"]["enabled"]
    assert isinstance(enabled, bool)
    return enabled


async def test_a_salon_starts_with_the_assistant_on_and_switches_it_off_and_on(
    any_web: WebHarness,
) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    assert await assistant_enabled(web, cid, company.key_headers) is True

    off = await web.client.patch(switch_path(cid), json={"enabled": False}, headers=web.admin)
    assert off.status_code == 200
    assert await off.get_json() == {
        "success": True,
        "company_id": cid,
        "assistant": {"enabled": False},
    }
    stored = await web.storage.companies.get(cid)
    assert stored is not None and stored.ai_enabled is False
    assert await assistant_enabled(web, cid, company.key_headers) is False

    jwt = {"Authorization": f"Bearer {await issue_jwt(web, company)}"}
    on = await web.client.post(switch_path(cid), json={"enabled": True}, headers=jwt)
    assert on.status_code == 200
    assert await assistant_enabled(web, cid, web.admin) is True
    kinds = [event.event_type for event in await web.storage.audit.recent(cid)]
    assert kinds.count("assistant_disabled") == 1
    assert kinds.count("assistant_enabled") == 1


async def test_switching_to_the_same_value_changes_nothing(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    for _ in range(2):
        response = await web.client.patch(
            switch_path(cid), json={"enabled": True}, headers=company.key_headers
        )
        assert response.status_code == 200
    kinds = [event.event_type for event in await web.storage.audit.recent(cid)]
    assert "assistant_enabled" not in kinds


@pytest.mark.parametrize("value", [None, 1, "false", "no", [], {}])
async def test_enabled_must_be_a_json_boolean(web: WebHarness, value: object) -> None:
    company = await register(web)
    body = {} if value is None else {"enabled": value}
    code = "missing_field" if value is None else "invalid_field"
    response = await web.client.patch(
        switch_path(company.company_id), json=body, headers=company.key_headers
    )
    await error_of(response, 400, code)
    stored = await web.storage.companies.get(company.company_id)
    assert stored is not None and stored.ai_enabled is True


async def test_the_switch_needs_credentials_for_this_company(web: WebHarness) -> None:
    a = await register(web)
    b = await register(web)
    path = switch_path(a.company_id)
    await error_of(await web.client.patch(path, json={"enabled": False}), 401)
    await error_of(
        await web.client.patch(path, json={"enabled": False}, headers=b.key_headers), 403
    )
    stored = await web.storage.companies.get(a.company_id)
    assert stored is not None and stored.ai_enabled is True


async def test_unknown_and_uninstalled_salons(web: WebHarness) -> None:
    await error_of(
        await web.client.patch(switch_path(987654), json={"enabled": False}, headers=web.admin),
        404,
        "company_not_found",
    )
    company = await register(web)
    await uninstall(web, company.company_id)
    await error_of(
        await web.client.patch(
            switch_path(company.company_id), json={"enabled": True}, headers=web.admin
        ),
        410,
        "uninstalled",
    )
