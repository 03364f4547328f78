"""Every HTTP route and error code of the app, through Quart's test client over a real node.

Tests taking ``any_web`` run twice: on in-memory storage and on PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import trio
from quart import Response

from actors.company import messages as m
from actors.whatsapp import GatewaySnapshot
from runtime import ActorRef, MailboxFull
from storage import BackendHealth, MemoryKeyValue, StorageUnavailable
from tests.web.conftest import (
    ADMIN_KEY,
    Registered,
    WebHarness,
    eventually,
    issue_jwt,
    make_production_settings,
    open_memory_storage,
    open_web,
    register,
    token_of,
    uninstall,
)

PNG_DATA_URL = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+=*")


async def error_of(response: Response, status: int, code: str | None = None) -> dict[str, str]:
    """Assert the JSON error shape ``{"success": false, "error": {code, message}}``."""
    body = await response.get_json()
    assert response.status_code == status, body
    assert response.mimetype == "application/json"
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    error = body["error"]
    assert isinstance(error, dict)
    return error


async def show_qr(web: WebHarness, company: Registered) -> dict[str, Any]:
    """Start a linking round as the connect page does (its WebSocket's ``request-qr``: the
    HTTP read starts none), then read its first code through ``GET /marketplace/qr``."""
    await web.node.company(company.company_id).ask(m.RequestQr())
    with trio.fail_after(10):
        while True:
            response = await web.client.get(f"/marketplace/qr/{company.token}")
            body = await response.get_json()
            if response.status_code != 503:  # 503: the round's first code is not there yet
                break
            await trio.sleep(0.01)
    assert response.status_code == 200, body
    assert isinstance(body, dict)
    return body


async def link(web: WebHarness, company: Registered) -> str:
    """Show a QR, have the simulated phone scan it, wait until the company is connected."""
    await show_qr(web, company)
    response = await web.client.post(f"/dev/simulator/{company.company_id}/scan", headers=web.admin)
    body = await response.get_json()
    assert response.status_code == 200, body

    async def connected() -> bool:
        stored = await web.storage.companies.get(company.company_id)
        return stored is not None and stored.whatsapp_connected

    await eventually(connected)
    jid = body["jid"]
    assert isinstance(jid, str)
    return jid


# ------------------------------------------------------------------------------- pages


async def test_landing_page(web: WebHarness) -> None:
    response = await web.client.get("/marketplace/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_connect_page_with_a_valid_link(any_web: WebHarness) -> None:
    company = await register(any_web, title="Ромашка")
    response = await any_web.client.get(company.connect_url)
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "Ромашка" in page
    assert f'data-company-id="{company.company_id}"' in page
    assert company.token not in page  # the page gets the token from its own URL, not the HTML
    headers = response.headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "query",
    [
        "token=not-a-valid-token-at-all-0123&company={id}&salon={salon}",
        "company={id}&salon={salon}",
        "token={token}&company=999999&salon={salon}",
        "token=eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln&company={id}",
    ],
    ids=["unknown-token", "no-token", "other-company", "garbage-jwt"],
)
async def test_connect_page_with_a_bad_link_is_410(web: WebHarness, query: str) -> None:
    company = await register(web)
    url = "/marketplace/connect?" + query.format(
        id=company.company_id, salon=company.salon_id, token=company.token
    )
    response = await web.client.get(url)
    assert response.status_code == 410
    assert response.mimetype == "text/html"
    assert "Ссылка устарела" in await response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_connect_page_of_an_uninstalled_salon_is_410(web: WebHarness) -> None:
    company = await register(web)
    await uninstall(web, company.company_id)
    response = await web.client.get(company.connect_url)
    assert response.status_code == 410
    assert "Приложение удалено" in await response.get_data(as_text=True)


async def test_marketplace_test_endpoint(web: WebHarness) -> None:
    response = await web.client.get("/marketplace/test")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["endpoints"]["register"] == "POST /marketplace/register"


# ----------------------------------------------------------------------------- register


async def test_register_returns_key_and_connect_url(any_web: WebHarness) -> None:
    response = await any_web.client.post(
        "/marketplace/register",
        json={"salon_id": 962302, "phone": "+7 (900) 123-45-67", "email": "Boss@Salon.RU"},
        headers=any_web.admin,
    )
    body = await response.get_json()
    assert response.status_code == 201, body
    assert body["success"] is True
    assert body["salon_id"] == 962302
    assert re.fullmatch(r"sk_[A-Za-z0-9_\-]{20,}", body["api_key"])
    assert body["connect_url"].startswith("/marketplace/connect?token=")
    assert f"company={body['company_id']}" in body["connect_url"]
    assert "salon=962302" in body["connect_url"]
    stored = await any_web.storage.companies.get(body["company_id"])
    assert stored is not None
    assert stored.phone == "79001234567"
    assert stored.email == "Boss@salon.ru"
    # The key works for its own company.
    status = await any_web.client.get(
        f"/marketplace/status/{body['company_id']}", headers={"X-API-Key": body["api_key"]}
    )
    assert status.status_code == 200


async def test_register_an_existing_salon_is_409(any_web: WebHarness) -> None:
    await register(any_web, salon_id=5150)
    response = await any_web.client.post(
        "/marketplace/register", json={"salon_id": 5150}, headers=any_web.admin
    )
    await error_of(response, 409, "company_exists")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "salon_id", "missing_field"),
        ({"salon_id": None}, "salon_id", "missing_field"),
        ({"salon_id": "abc"}, "salon_id", "invalid_field"),
        ({"salon_id": 0}, "salon_id", "invalid_field"),
        ({"salon_id": 2**31}, "salon_id", "invalid_field"),
        ({"salon_id": 1.5}, "salon_id", "invalid_field"),
        ({"salon_id": True}, "salon_id", "invalid_field"),
        ({"salon_id": 7, "phone": "call me"}, "phone", "invalid_field"),
        ({"salon_id": 7, "phone": 12}, "phone", "invalid_field"),
        ({"salon_id": 7, "email": "not-an-email"}, "email", "invalid_field"),
        ({"salon_id": 7, "title": "x" * 256}, "title", "invalid_field"),
        ({"salon_id": 7, "title": ["a"]}, "title", "invalid_field"),
    ],
)
async def test_register_names_the_bad_field(
    web: WebHarness, body: dict[str, Any], field: str, code: str
) -> None:
    response = await web.client.post("/marketplace/register", json=body, headers=web.admin)
    error = await error_of(response, 400, code)
    assert error["message"].startswith(field)
    assert await web.storage.companies.count() == 0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"salon_id": 1', "malformed_json"),
        (b'{"salon_id": 1, "salon_id": 2}', "malformed_json"),
        (b'{"salon_id": NaN}', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_body"),
        (b'"text"', "invalid_body"),
        (b"", "malformed_json"),
    ],
)
async def test_register_malformed_json_is_400(web: WebHarness, data: bytes, code: str) -> None:
    response = await web.client.post(
        "/marketplace/register",
        data=data,
        headers={**web.admin, "Content-Type": "application/json"},
    )
    await error_of(response, 400, code)


async def test_register_non_json_is_415(web: WebHarness) -> None:
    response = await web.client.post(
        "/marketplace/register",
        data=b"salon_id=1",
        headers={**web.admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    await error_of(response, 415, "unsupported_media_type")


async def test_register_body_over_the_limit_is_413(web: WebHarness) -> None:
    big = {"salon_id": 1, "title": "x" * (web.settings.max_body_bytes + 10)}
    response = await web.client.post("/marketplace/register", json=big, headers=web.admin)
    await error_of(response, 413, "payload_too_large")
    assert await web.storage.companies.count() == 0


async def test_register_needs_the_admin_key(web: WebHarness) -> None:
    response = await web.client.post("/marketplace/register", json={"salon_id": 1})
    await error_of(response, 401, "unauthorized")
    wrong = await web.client.post(
        "/marketplace/register", json={"salon_id": 1}, headers={"X-API-Key": ADMIN_KEY + "x"}
    )
    await error_of(wrong, 401, "unauthorized")
    company = await register(web)
    refused = await web.client.post(
        "/marketplace/register", json={"salon_id": 2}, headers=company.key_headers
    )
    await error_of(refused, 403, "forbidden")
    assert await web.storage.companies.count() == 1


# -------------------------------------------------------------------------- connect-url


async def test_connect_url_replaces_the_old_token(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    response = await web.client.post(
        "/marketplace/connect-url", json={"salon_id": company.salon_id}, headers=web.admin
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["company_id"] == company.company_id
    fresh = token_of(body["connect_url"])
    assert fresh != company.token
    assert (await web.client.get(body["connect_url"])).status_code == 200
    assert (await web.client.get(company.connect_url)).status_code == 410
    old_qr = await web.client.get(f"/marketplace/qr/{company.token}")
    await error_of(old_qr, 401, "invalid_token")
    by_id = await web.client.post(
        "/marketplace/connect-url", json={"company_id": company.company_id}, headers=web.admin
    )
    assert by_id.status_code == 200
    assert (await web.client.get(body["connect_url"])).status_code == 410


async def test_connect_url_errors(web: WebHarness) -> None:
    company = await register(web)
    missing = await web.client.post("/marketplace/connect-url", json={}, headers=web.admin)
    await error_of(missing, 400, "missing_field")
    unknown = await web.client.post(
        "/marketplace/connect-url", json={"company_id": 424242}, headers=web.admin
    )
    await error_of(unknown, 404, "company_not_found")
    refused = await web.client.post(
        "/marketplace/connect-url", json={"company_id": company.company_id}
    )
    await error_of(refused, 401)
    await uninstall(web, company.company_id)
    gone = await web.client.post(
        "/marketplace/connect-url", json={"company_id": company.company_id}, headers=web.admin
    )
    await error_of(gone, 410, "uninstalled")


# -------------------------------------------------------------------------------- token


async def test_token_issues_a_working_jwt(web: WebHarness) -> None:
    company = await register(web)
    jwt = await issue_jwt(web, company)
    assert jwt.count(".") == 2
    status = await web.client.get(
        f"/marketplace/status/{company.company_id}", headers={"Authorization": f"Bearer {jwt}"}
    )
    assert status.status_code == 200
    by_admin = await web.client.post(
        "/marketplace/token", json={"company_id": company.company_id}, headers=web.admin
    )
    body = await by_admin.get_json()
    assert by_admin.status_code == 200
    assert body["company_id"] == company.company_id
    assert body["expires_in"] == 86400


async def test_token_errors(web: WebHarness) -> None:
    company = await register(web)
    await error_of(await web.client.post("/marketplace/token"), 401)
    jwt = await issue_jwt(web, company)
    with_jwt = await web.client.post(
        "/marketplace/token", headers={"Authorization": f"Bearer {jwt}"}
    )
    await error_of(with_jwt, 403)
    unknown = await web.client.post(
        "/marketplace/token", json={"company_id": 31337}, headers=web.admin
    )
    await error_of(unknown, 404)
    no_id = await web.client.post("/marketplace/token", json={}, headers=web.admin)
    await error_of(no_id, 400, "missing_field")


# ----------------------------------------------------------------------------------- QR


async def test_qr_returns_code_and_image(any_web: WebHarness) -> None:
    company = await register(any_web)
    body = await show_qr(any_web, company)
    assert body["success"] is True
    assert isinstance(body["qr"], str) and body["qr"]
    assert PNG_DATA_URL.fullmatch(body["qr_image"])
    assert 1 <= body["expires_in"] <= any_web.settings.qr.rotate_every
    assert any_web.world.live_qr(company.company_id) == body["qr"]


async def test_qr_with_a_bad_token_is_401(web: WebHarness) -> None:
    await register(web)
    for token in ("short", "x" * 40, "a.b.c"):
        await error_of(await web.client.get(f"/marketplace/qr/{token}"), 401, "invalid_token")


async def test_qr_of_a_linked_company_is_refused(web: WebHarness) -> None:
    company = await register(web)
    await link(web, company)
    await web.storage.qr.clear(company.company_id)
    response = await web.client.get(f"/marketplace/qr/{company.token}")
    await error_of(response, 409)


# ------------------------------------------------------------------------------- status


async def test_status_accepts_each_own_credential(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    jwt = await issue_jwt(web, company)
    path = f"/marketplace/status/{company.company_id}"
    attempts = [
        (path, company.key_headers),
        (path, {"Authorization": f"Bearer {jwt}"}),
        (path, {"Authorization": f"Bearer {company.token}"}),
        (f"{path}?token={company.token}", {}),
        (path, web.admin),
    ]
    for url, headers in attempts:
        response = await web.client.get(url, headers=headers)
        body = await response.get_json()
        assert response.status_code == 200, (url, headers, body)
        assert body["company_id"] == company.company_id
        assert body["salon_id"] == company.salon_id
        assert body["whatsapp_connected"] is False
    await error_of(await web.client.get(path), 401)


async def test_status_follows_linking(web: WebHarness) -> None:
    company = await register(web)
    await link(web, company)
    response = await web.client.get(
        f"/marketplace/status/{company.company_id}", headers=company.key_headers
    )
    body = await response.get_json()
    assert body["whatsapp_connected"] is True
    assert body["whatsapp_phone"] == "79001234567"
    assert body["integration_status"] == "active"


async def test_status_errors(web: WebHarness) -> None:
    await error_of(
        await web.client.get("/marketplace/status/777", headers=web.admin), 404, "company_not_found"
    )
    for bad in ("0", "-1", "abc", "01", str(2**31)):
        response = await web.client.get(f"/marketplace/status/{bad}", headers=web.admin)
        await error_of(response, 400, "invalid_field")


# ----------------------------------------------------------------------------- callback


async def test_callback_is_queued_once(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    jid = await link(web, company)
    key = f"activation:{company.company_id}:{jid}"

    async def call() -> int:
        response = await web.client.post(
            "/marketplace/callback", json={"company_id": company.company_id}, headers=web.admin
        )
        body = await response.get_json()
        assert response.status_code == 202, body
        assert body["queued"] is True
        outbox_id = body["outbox_id"]
        assert isinstance(outbox_id, int)
        return outbox_id

    first = await call()
    backlog = await web.storage.outbox.backlog()
    second = await call()
    by_salon = await web.client.post(
        "/marketplace/callback", json={"salon_id": company.salon_id}, headers=web.admin
    )
    assert by_salon.status_code == 202
    assert first == second == (await by_salon.get_json())["outbox_id"]
    assert await web.storage.outbox.backlog() == backlog
    item = await web.storage.outbox.get_by_key(key)
    assert item is not None and item.id == first


async def test_callback_errors(web: WebHarness) -> None:
    company = await register(web)
    not_linked = await web.client.post(
        "/marketplace/callback", json={"company_id": company.company_id}, headers=web.admin
    )
    await error_of(not_linked, 409, "not_linked")
    unknown = await web.client.post(
        "/marketplace/callback", json={"salon_id": 1234567}, headers=web.admin
    )
    await error_of(unknown, 404)
    missing = await web.client.post("/marketplace/callback", json={}, headers=web.admin)
    await error_of(missing, 400, "missing_field")
    by_company = await web.client.post(
        "/marketplace/callback",
        json={"company_id": company.company_id},
        headers=company.key_headers,
    )
    await error_of(by_company, 403)
    assert await web.storage.outbox.backlog() == 0


# ------------------------------------------------------------------------------ webhooks

RECORD_EVENT = {
    "company_id": 962302,
    "resource": "record",
    "resource_id": 555,
    "status": "create",
    "data": {"id": 555, "last_change_date": "2025-01-10T12:00:00+0300"},
}


async def test_webhooks_are_stored_and_deduplicated(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    secret = await web.storage.companies.rotate_webhook_secret(company.company_id)
    by_header = await web.client.post(
        f"/marketplace/webhook/{company.company_id}",
        json=RECORD_EVENT,
        headers={"X-Webhook-Secret": secret},
    )
    body = await by_header.get_json()
    assert by_header.status_code == 200, body
    assert body == {"success": True, "received": True, "duplicate": False}
    assert await web.storage.inbox.pending_count() == 1
    again = await web.client.post(
        f"/marketplace/webhook/{company.company_id}/{secret}", json=RECORD_EVENT
    )
    assert (await again.get_json())["duplicate"] is True
    assert await web.storage.inbox.pending_count() == 1
    other = {**RECORD_EVENT, "status": "update"}
    other["data"] = {"id": 555, "last_change_date": "2025-01-10T13:00:00+0300"}
    third = await web.client.post(f"/marketplace/webhook/{company.company_id}/{secret}", json=other)
    assert (await third.get_json())["duplicate"] is False
    assert await web.storage.inbox.pending_count() == 2


async def test_webhook_errors(web: WebHarness) -> None:
    company = await register(web)
    secret = await web.storage.companies.rotate_webhook_secret(company.company_id)
    cid = company.company_id
    await error_of(
        await web.client.post(f"/marketplace/webhook/{cid}/whs_wrong_secret", json=RECORD_EVENT),
        401,
        "invalid_webhook_secret",
    )
    await error_of(
        await web.client.post(f"/marketplace/webhook/{cid}", json=RECORD_EVENT),
        401,
        "invalid_webhook_secret",
    )
    # A company that does not exist answers like a wrong secret (no id enumeration).
    await error_of(
        await web.client.post(f"/marketplace/webhook/{cid + 100}/{secret}", json=RECORD_EVENT),
        401,
        "invalid_webhook_secret",
    )
    await error_of(
        await web.client.post(f"/marketplace/webhook/x/{secret}", json=RECORD_EVENT), 400
    )
    # A body that is neither a record nor a lifecycle event: refused, never a 500.
    await error_of(
        await web.client.post(f"/marketplace/webhook/{cid}/{secret}", json={"hello": 1}), 400
    )
    await error_of(
        await web.client.post(
            f"/marketplace/webhook/{cid}/{secret}", json={"resource": "record", "status": 5}
        ),
        400,
    )
    assert await web.storage.inbox.pending_count() == 0
    await uninstall(web, cid)
    await error_of(
        await web.client.post(f"/marketplace/webhook/{cid}/{secret}", json=RECORD_EVENT),
        410,
        "uninstalled",
    )


# ---------------------------------------------------------------------------- companies


async def test_companies_stats(any_web: WebHarness) -> None:
    web = any_web
    first = await register(web)
    await register(web)
    await link(web, first)
    response = await web.client.get("/marketplace/companies", headers=web.admin)
    body = await response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    stats = body["stats"]
    assert stats["total"] == 2
    assert stats["connected"] == 1
    assert stats["by_status"]["active"] == 1
    assert sum(stats["by_status"].values()) == 2


# ------------------------------------------------------------------ unknown route, method


async def test_unknown_route_is_404_json(web: WebHarness) -> None:
    for path in ("/nope", "/marketplace/nope", "/marketplace/qr/", "/"):
        await error_of(await web.client.get(path), 404, "not_found")


async def test_wrong_method_is_405_json(web: WebHarness) -> None:
    response = await web.client.get("/marketplace/register")
    await error_of(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    await error_of(await web.client.delete("/marketplace/companies"), 405)


# ------------------------------------------------------------------------------- 503s


async def test_busy_actor_is_503_with_retry_after(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await register(web)

    async def full(self: ActorRef, message: object, **kwargs: Any) -> object:
        raise MailboxFull("node/companies/1", 64)

    monkeypatch.setattr(ActorRef, "ask", full)
    response = await web.client.get(
        f"/marketplace/status/{company.company_id}", headers=company.key_headers
    )
    await error_of(response, 503, "service_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    qr = await web.client.get(f"/marketplace/qr/{company.token}")
    await error_of(qr, 503)
    assert "Retry-After" in qr.headers


async def test_storage_down_is_503_with_retry_after(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await register(web)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("postgres", "connection refused")

    for name in ("get", "create", "find_by_api_key", "count_by_status"):
        monkeypatch.setattr(web.storage.companies, name, down)
    checks: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/marketplace/status/{company.company_id}", {"headers": web.admin}),
        ("GET", f"/marketplace/status/{company.company_id}", {"headers": company.key_headers}),
        ("POST", "/marketplace/register", {"headers": web.admin, "json": {"salon_id": 3}}),
        ("GET", "/marketplace/companies", {"headers": web.admin}),
        ("GET", company.connect_url, {}),
    ]
    for method, path, options in checks:
        response = await web.client.open(path, method=method, **options)
        await error_of(response, 503, "storage_unavailable")
        assert int(response.headers["Retry-After"]) >= 1


async def test_rate_limiter_down_is_503_not_500(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("redis", "connection reset")

    monkeypatch.setattr(web.storage.rate_limiter, "hit", down)
    response = await web.client.get("/marketplace/test")
    await error_of(response, 503, "storage_unavailable")
    assert "Retry-After" in response.headers
    # Probes are not rate limited, so they still answer.
    assert (await web.client.get("/health")).status_code == 200


# ------------------------------------------------------------------------------ health


async def test_health_and_ready(any_web: WebHarness) -> None:
    response = await any_web.client.get("/health")
    assert response.status_code == 200
    assert await response.get_json() == {"success": True, "status": "ok"}
    ready = await any_web.client.get("/health/ready")
    body = await ready.get_json()
    assert ready.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "whatsapp", "supervisor"}
    assert all(check["ok"] for check in body["checks"].values())
    kind = any_web.storage.database_kind
    assert body["checks"]["database"]["backend"] == kind


async def test_ready_names_the_failing_part(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def redis_down(self: MemoryKeyValue) -> BackendHealth:
        return BackendHealth(name="redis", kind="memory", ok=False, error="connection refused")

    monkeypatch.setattr(MemoryKeyValue, "ping", redis_down)
    response = await web.client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert body["success"] is False
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["error"] == "connection refused"
    assert body["checks"]["database"]["ok"] is True


async def test_ready_and_tree_show_why_whatsapp_cannot_work(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that cannot work at all (neonize's library missing) fails readiness with the
    reason and its fix, and the tree's WhatsApp node carries it as its last error."""
    problem = "neonize is not installed: install it with `pip install neonize==0.5.2`"
    snapshot = GatewaySnapshot("neonize", healthy=False, sessions=0, problem=problem)
    monkeypatch.setattr(web.node.gateway, "snapshot", lambda: snapshot)
    response = await web.client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 503
    assert body["failing"] == ["whatsapp"]
    assert body["checks"]["whatsapp"] == {
        "ok": False,
        "backend": "neonize",
        "sessions": 0,
        "hosts": [],
        "error": problem,
    }
    tree = await (await web.client.get("/health/tree", headers=web.admin)).get_json()
    whatsapp = next(c for c in tree["tree"]["children"] if c["id"] == "whatsapp")
    assert (whatsapp["state"], whatsapp["last_error"]) == ("failed", problem)


async def test_ready_with_a_hung_database_times_out(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    async def hang() -> Any:
        await trio.sleep_forever()

    monkeypatch.setattr(web.storage, "ping_database", hang)
    response = await web.client.get("/health/ready")
    body = await response.get_json()
    assert response.status_code == 503
    # Only the part that hangs is named (both were, when they shared one deadline).
    assert body["failing"] == ["database"]
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["database"]["error"] == "no answer within 3s"


async def test_health_tree_needs_the_admin_key(web: WebHarness) -> None:
    company = await register(web)
    await show_qr(web, company)  # activates the company's actor
    response = await web.client.get("/health/tree", headers=web.admin)
    body = await response.get_json()
    assert response.status_code == 200
    tree = body["tree"]
    assert tree["id"] == "node"
    child_ids = [child["id"] for child in tree["children"]]
    assert "companies" in child_ids and "whatsapp" in child_ids
    companies = next(c for c in tree["children"] if c["id"] == "companies")
    assert any(str(company.company_id) in str(c["id"]) for c in companies["children"])
    await error_of(await web.client.get("/health/tree"), 401)
    await error_of(await web.client.get("/health/tree", headers=company.key_headers), 403)


# ----------------------------------------------------------------------------- metrics


def metric_value(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{re.escape(name + labels)} (\S+)$", re.MULTILINE)
    match = pattern.search(text)
    assert match is not None, f"{name}{labels} missing from /metrics"
    return float(match.group(1))


async def test_metrics_in_prometheus_text(web: WebHarness) -> None:
    linked = await register(web)
    pending = await register(web)
    await link(web, linked)
    secret = await web.storage.companies.rotate_webhook_secret(linked.company_id)
    await web.client.post(f"/marketplace/webhook/{linked.company_id}/{secret}", json=RECORD_EVENT)
    for _ in range(web.settings.api_rate_limit.limit + 1):
        await web.client.get("/marketplace/test")
    async with web.client.websocket("/marketplace/ws") as ws:
        await ws.send(json.dumps({"event": "auth", "data": {"token": pending.token}}))
        await ws.receive()  # the status frame: the viewer is registered
        response = await web.client.get("/metrics", headers=web.admin)
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert metric_value(text, "aiadmin_companies", '{status="active"}') == 1
    assert metric_value(text, "aiadmin_companies", '{status="pending"}') == 1
    assert metric_value(text, "aiadmin_whatsapp_sessions") >= 1
    assert metric_value(text, "aiadmin_websocket_viewers") == 1
    assert metric_value(text, "aiadmin_qr_codes_issued_total") >= 1
    assert metric_value(text, "aiadmin_rate_limit_rejections_total", '{scope="api"}') == 1
    assert (
        metric_value(text, "aiadmin_webhooks_received_total", '{kind="record",result="new"}') == 1
    )
    assert metric_value(text, "aiadmin_outbox_backlog") == 1  # the activation callback
    assert metric_value(text, "aiadmin_actor_restarts") == 0
    assert "# TYPE aiadmin_http_request_duration_seconds histogram" in text
    # prometheus_client writes labels sorted by name (``le`` first)
    assert re.search(
        r'^aiadmin_http_request_duration_seconds_bucket\{le="0\.005",method="GET",'
        r'route="/marketplace/test"\} ',
        text,
        re.MULTILINE,
    )
    await error_of(await web.client.get("/metrics"), 401)
    await error_of(await web.client.get("/metrics", headers=linked.key_headers), 403)


# --------------------------------------------------------------------------- simulator


async def test_dev_scan_links_in_development(web: WebHarness) -> None:
    company = await register(web)
    path = f"/dev/simulator/{company.company_id}/scan"
    await error_of(await web.client.post(path, headers=web.admin), 409, "no_live_qr")
    await error_of(await web.client.post(path, headers=company.key_headers), 403)
    await error_of(
        await web.client.post("/dev/simulator/4444/scan", headers=web.admin),
        404,
        "company_not_found",
    )
    await link(web, company)


async def test_dev_routes_are_404_in_production() -> None:
    settings = make_production_settings()
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        company = await register(web)
        await show_qr(web, company)
        response = await web.client.post(
            f"/dev/simulator/{company.company_id}/scan", headers=web.admin
        )
        await error_of(response, 404, "not_found")
        inbound = await web.client.post(
            f"/dev/simulator/{company.company_id}/inbound",
            json={"phone": "79001112233", "text": "hi"},
            headers=web.admin,
        )
        await error_of(inbound, 404, "not_found")
        assert web.world.live_qr(company.company_id) is not None  # nothing was scanned
        assert "Strict-Transport-Security" in response.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://n123.yclients.com", True),
        ("https://ai-admin.app", True),
        ("https://evil.example", False),
        ("https://n1.yclients.com.evil.example", False),
    ],
)
async def test_cors_follows_the_origin_allow_list(
    web: WebHarness, origin: str, allowed: bool
) -> None:
    preflight = await web.client.options(
        "/marketplace/test",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    answer = await web.client.get("/marketplace/test", headers={"Origin": origin})
    for response in (preflight, answer):
        assert response.headers["Vary"] == "Origin"
        if allowed:
            assert response.headers["Access-Control-Allow-Origin"] == origin
        else:
            assert "Access-Control-Allow-Origin" not in response.headers
    if allowed:
        assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
