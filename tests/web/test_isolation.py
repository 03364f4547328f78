"""Tenant isolation: a company's credentials never reach another company, company credentials
never reach admin-only routes, and forged or stale JWTs are refused — through the routes.

The company-scoped and admin-only routes are taken from the OpenAPI route table
(``auth="company"`` / ``auth="admin"``), so a route added there is covered here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest

from tests.web.conftest import (
    JWT_SECRET,
    WS_PATH,
    Registered,
    WebHarness,
    auth_frame,
    frame,
    issue_jwt,
    next_frame,
    register,
    until_closed,
)
from web.routes.openapi import EXTRA_ROUTES, ROUTES

ALL_ROUTES = [*ROUTES, *EXTRA_ROUTES]
COMPANY_ROUTES = sorted(
    {(r.method, r.path) for r in ALL_ROUTES if r.auth == "company"}, key=lambda r: (r[1], r[0])
)
# ``/marketplace/token`` is documented as admin but also serves a company's own key (its own
# JWT): covered by its own test below.
ADMIN_ROUTES = sorted(
    {
        (r.method, r.path)
        for r in ALL_ROUTES
        if r.auth == "admin" and r.path != "/marketplace/token"
    },
    key=lambda r: (r[1], r[0]),
)
CREDENTIALS = ("api_key", "jwt", "connect_token")


@dataclass(frozen=True)
class Tenants:
    """Two registered salons and their JWTs."""

    a: Registered
    b: Registered
    a_jwt: str
    b_jwt: str

    def headers(self, who: str, kind: str) -> dict[str, str]:
        company = self.a if who == "a" else self.b
        if kind == "api_key":
            return company.key_headers
        if kind == "jwt":
            return {"Authorization": f"Bearer {self.a_jwt if who == 'a' else self.b_jwt}"}
        return {"Authorization": f"Bearer {company.token}"}


async def two_tenants(web: WebHarness) -> Tenants:
    a = await register(web)
    b = await register(web)
    return Tenants(a, b, await issue_jwt(web, a), await issue_jwt(web, b))


def fill(path: str, company_id: int) -> str:
    return path.replace("{companyId}", str(company_id))


def test_the_matrix_is_not_empty() -> None:
    assert ("GET", "/marketplace/status/{companyId}") in COMPANY_ROUTES
    assert ("GET", "/health/tree") in ADMIN_ROUTES
    assert ("POST", "/marketplace/register") in ADMIN_ROUTES
    assert ("GET", "/metrics") in ADMIN_ROUTES
    # the assistant's surface (issue 10)
    assert {
        ("GET", "/marketplace/conversations/{companyId}"),
        ("POST", "/marketplace/conversations/{companyId}/mode"),
        ("PATCH", "/marketplace/company/{companyId}/assistant"),
        ("POST", "/marketplace/company/{companyId}/assistant"),
    } <= set(COMPANY_ROUTES)
    assert {
        ("GET", "/dev/simulator/{companyId}/chat"),
        ("POST", "/dev/simulator/{companyId}/staff-message"),
    } <= set(ADMIN_ROUTES)


# ------------------------------------------------------------------- company-scoped HTTP


@pytest.mark.parametrize("kind", CREDENTIALS)
@pytest.mark.parametrize(("method", "path"), COMPANY_ROUTES)
async def test_company_route_refuses_another_companys_credentials(
    any_web: WebHarness, method: str, path: str, kind: str
) -> None:
    t = await two_tenants(any_web)
    response = await any_web.client.open(
        fill(path, t.a.company_id), method=method, headers=t.headers("b", kind), json={}
    )
    body = await response.get_json()
    assert response.status_code == 403, body
    assert body["error"]["code"] == "forbidden"
    assert str(t.a.salon_id) not in json.dumps(body)
    own = await any_web.client.open(
        fill(path, t.a.company_id), method=method, headers=t.headers("a", kind), json={}
    )
    assert own.status_code not in (401, 403), await own.get_json()


@pytest.mark.parametrize("kind", CREDENTIALS)
async def test_one_conversation_is_refused_to_another_companys_credentials(
    any_web: WebHarness, kind: str
) -> None:
    """The ``?phone=`` form of the conversations route (one path, two answers in the table)."""
    t = await two_tenants(any_web)
    await any_web.storage.conversations.save(
        t.a.company_id, "79005550001", state={}, expected_version=0, client_name="Анна"
    )
    path = f"/marketplace/conversations/{t.a.company_id}?phone=79005550001"
    response = await any_web.client.get(path, headers=t.headers("b", kind))
    body = await response.get_json()
    assert response.status_code == 403, body
    assert "79005550001" not in json.dumps(body) and "Анна" not in json.dumps(body)
    own = await any_web.client.get(path, headers=t.headers("a", kind))
    assert (await own.get_json())["client_name"] == "Анна"


@pytest.mark.parametrize("kind", CREDENTIALS)
async def test_status_with_own_credentials_shows_own_data(web: WebHarness, kind: str) -> None:
    t = await two_tenants(web)
    response = await web.client.get(
        f"/marketplace/status/{t.a.company_id}", headers=t.headers("a", kind)
    )
    body = await response.get_json()
    assert response.status_code == 200
    assert (body["company_id"], body["salon_id"]) == (t.a.company_id, t.a.salon_id)


async def test_status_with_another_companys_connect_token_in_the_query(web: WebHarness) -> None:
    t = await two_tenants(web)
    response = await web.client.get(f"/marketplace/status/{t.a.company_id}?token={t.b.token}")
    assert response.status_code == 403
    own = await web.client.get(f"/marketplace/status/{t.a.company_id}?token={t.a.token}")
    assert own.status_code == 200


async def test_status_of_an_unknown_company_is_403_not_404_for_a_company(
    web: WebHarness,
) -> None:
    """A company credential learns nothing about other ids, existing or not."""
    t = await two_tenants(web)
    for target in (t.b.company_id, 9999):
        response = await web.client.get(f"/marketplace/status/{target}", headers=t.a.key_headers)
        assert response.status_code == 403


# --------------------------------------------------------------------- company WebSocket


@pytest.mark.parametrize("via", ["query", "auth_frame"])
@pytest.mark.parametrize("kind", ["jwt", "connect_token"])
async def test_websocket_refuses_another_companys_credentials(
    any_web: WebHarness, kind: str, via: str
) -> None:
    t = await two_tenants(any_web)
    credential = t.b_jwt if kind == "jwt" else t.b.token
    if via == "query":
        path = f"{WS_PATH}?companyId={t.a.company_id}"
        headers = {"Authorization": f"Bearer {credential}"}
        first = None
    else:
        path, headers = WS_PATH, {}
        first = auth_frame(credential, companyId=t.a.company_id)
    async with any_web.client.websocket(path, headers=headers) as ws:
        if first is not None:
            await ws.send(first)
        frames, code = await until_closed(ws)
    assert code == 4003
    assert [f["event"] for f in frames] == ["error"]
    assert frames[0]["data"]["code"] == "forbidden"


@pytest.mark.parametrize("kind", ["jwt", "connect_token"])
async def test_websocket_with_own_credentials_and_company(web: WebHarness, kind: str) -> None:
    t = await two_tenants(web)
    credential = t.a_jwt if kind == "jwt" else t.a.token
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(credential, companyId=t.a.company_id))
        status = await next_frame(ws)
        assert status["event"] == "status"
        assert status["data"]["companyId"] == t.a.company_id
    async with web.client.websocket(
        f"{WS_PATH}?companyId={t.a.company_id}", headers={"Authorization": f"Bearer {credential}"}
    ) as ws:
        assert (await next_frame(ws))["data"]["companyId"] == t.a.company_id


async def test_websocket_does_not_take_api_keys(web: WebHarness) -> None:
    """API keys are server-to-server credentials; a browser socket never carries one."""
    t = await two_tenants(web)
    for key in (t.a.api_key, t.b.api_key):
        async with web.client.websocket(WS_PATH) as ws:
            await ws.send(auth_frame(key, companyId=t.a.company_id))
            frames, code = await until_closed(ws)
        assert code == 4001
        assert frames[0]["data"]["code"] == "invalid_token"


async def test_a_viewer_sees_only_its_own_company(web: WebHarness) -> None:
    t = await two_tenants(web)
    async with web.client.websocket(WS_PATH) as b_socket, web.client.websocket(WS_PATH) as a_socket:
        await b_socket.send(auth_frame(t.b.token))
        await a_socket.send(auth_frame(t.a.token))
        await next_frame(b_socket)
        await next_frame(a_socket)
        await a_socket.send(frame("request-qr"))
        while (await next_frame(a_socket))["event"] != "qr-update":
            pass
        await a_socket.send(frame("simulate-scan"))
        while (await next_frame(a_socket))["event"] != "whatsapp-connected":
            pass
        # B's socket got nothing of A's: its next frame is its own answer.
        await b_socket.send(frame("dance"))
        reply = await next_frame(b_socket)
        assert reply == {
            "event": "error",
            "data": {"message": "Unknown event", "code": "unknown_event"},
        }


# ----------------------------------------------------------------------- admin-only routes


@pytest.mark.parametrize("kind", CREDENTIALS)
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_admin_route_refuses_company_credentials(
    web: WebHarness, method: str, path: str, kind: str
) -> None:
    t = await two_tenants(web)
    response = await web.client.open(
        fill(path, t.a.company_id),
        method=method,
        headers=t.headers("a", kind),
        json={"company_id": t.a.company_id, "salon_id": 4242, "phone": "79001112233", "text": "x"},
    )
    body = await response.get_json()
    assert response.status_code == 403, body
    assert body["error"]["code"] == "forbidden"
    assert await web.storage.companies.count() == 2


async def test_token_route_issues_only_the_callers_own_jwt(web: WebHarness) -> None:
    t = await two_tenants(web)
    response = await web.client.post(
        "/marketplace/token", json={"company_id": t.b.company_id}, headers=t.a.key_headers
    )
    body = await response.get_json()
    assert body["company_id"] == t.a.company_id
    other = await web.client.get(
        f"/marketplace/status/{t.b.company_id}",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert other.status_code == 403
    for kind in ("jwt", "connect_token"):
        refused = await web.client.post("/marketplace/token", headers=t.headers("a", kind))
        assert refused.status_code == 403


# ---------------------------------------------------------------------------- JWT attacks


def forge(payload: dict[str, Any], key: str | None, algorithm: str) -> str:
    return pyjwt.encode(payload, key, algorithm=algorithm)


def claims(cid: int, **changes: Any) -> dict[str, Any]:
    """A company JWT payload; a change to ``None`` drops that claim."""
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "company_id": cid,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def _unsigned(company_id: int) -> str:
    return forge(claims(company_id), None, "none")


def _unsigned_with_secret_signature(company_id: int) -> str:
    good = forge(claims(company_id), JWT_SECRET, "HS256")
    _header, payload, signature = good.split(".")
    none_header = pyjwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return f"{none_header}.{payload}.{signature}"


ATTACKS: dict[str, Callable[[int], str]] = {
    "alg-none": _unsigned,
    "alg-none-kept-signature": _unsigned_with_secret_signature,
    "wrong-key": lambda cid: forge(claims(cid), "another-secret-0123456789abcdef-0123", "HS256"),
    "hs512": lambda cid: forge(claims(cid), JWT_SECRET * 2, "HS512"),
    "expired": lambda cid: forge(
        claims(cid, exp=int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())),
        JWT_SECRET,
        "HS256",
    ),
    "no-exp": lambda cid: forge(claims(cid, exp=None), JWT_SECRET, "HS256"),
    "no-company": lambda cid: forge(claims(cid, company_id=None), JWT_SECRET, "HS256"),
    "company-as-string": lambda cid: forge(claims(cid, company_id=str(cid)), JWT_SECRET, "HS256"),
    "issued-in-the-future": lambda cid: forge(
        claims(cid, iat=int((datetime.now(UTC) + timedelta(hours=2)).timestamp())),
        JWT_SECRET,
        "HS256",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_forged_jwt_is_refused(web: WebHarness, attack: str) -> None:
    t = await two_tenants(web)
    token = ATTACKS[attack](t.a.company_id)
    response = await web.client.get(
        f"/marketplace/status/{t.a.company_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401, attack
    assert (await response.get_json())["error"]["code"] == "unauthorized"
    qr = await web.client.get(f"/marketplace/qr/{token}")
    assert qr.status_code == 401
    page = await web.client.get(f"/marketplace/connect?token={token}&company={t.a.company_id}")
    assert page.status_code == 410
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(token))
        frames, code = await until_closed(ws)
    assert code == 4001
    assert frames[0]["data"]["code"] == "invalid_token"


async def test_a_valid_jwt_for_another_company_is_refused(web: WebHarness) -> None:
    t = await two_tenants(web)
    token = forge(claims(t.b.company_id), JWT_SECRET, "HS256")
    response = await web.client.get(
        f"/marketplace/status/{t.a.company_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    mine = forge(claims(t.a.company_id), JWT_SECRET, "HS256")
    response = await web.client.get(
        f"/marketplace/status/{t.a.company_id}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert response.status_code == 200
