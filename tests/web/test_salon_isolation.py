"""Tenant isolation of the salon page (issue 16): another salon's cookie, ``sk_`` key, JWT or
connect token gets 403 on every salon route and its WebSocket; no credential gets 401; every
state change made with the cookie needs the page's CSRF token and a same-site ``Origin``.

The matrix is read from the OpenAPI route table (``web.routes.openapi``): every row with
``auth="salon"`` (the salon API), ``auth="salon_cookie"`` (the page, log-out) and every salon
path ending in ``/ws`` (the live socket). A salon route added to the table is covered here
without touching this file; a salon route the app serves but the table does not name as a
salon route fails :func:`test_every_salon_route_the_app_serves_is_in_the_matrix`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.conftest import (
    JWT_SECRET,
    Registered,
    WebHarness,
    auth_frame,
    issue_jwt,
    peer,
    register,
    until_closed,
)
from web._salon_session import COOKIE_NAME, csrf_token, decode_session, encode_session, new_session
from web.routes.openapi import EXTRA_ROUTES, ROUTES

ALL_ROUTES = [*ROUTES, *EXTRA_ROUTES]
SALON_PREFIX = "/marketplace/salon"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PARAM = re.compile(r"\{(?P<a>[^{}]+)\}|<(?:[^:<>]+:)?(?P<b>[^<>]+)>")
#: A client phone for path parameters such as ``{phone}`` (valid, never written to).
PHONE = "79001234567"
OWN_ORIGIN = "http://localhost"
ELSEWHERE = "https://evil.example"
#: The salon API the issue lists: all of it must be in the matrix (documented as "salon").
ISSUE_ROUTES = {
    ("GET", "/marketplace/salon/api/{companyId}/overview"),
    ("GET", "/marketplace/salon/api/{companyId}/conversations"),
    ("GET", "/marketplace/salon/api/{companyId}/conversations/{phone}"),
    ("GET", "/marketplace/salon/api/{companyId}/results"),
    ("POST", "/marketplace/salon/api/{companyId}/conversations/{phone}/takeover"),
    ("POST", "/marketplace/salon/api/{companyId}/conversations/{phone}/giveback"),
    ("POST", "/marketplace/salon/api/{companyId}/conversations/{phone}/messages"),
    ("GET", "/marketplace/salon/api/{companyId}/settings"),
    ("PATCH", "/marketplace/salon/api/{companyId}/settings"),
    ("POST", "/marketplace/salon/api/{companyId}/templates/preview"),
    ("GET", "/marketplace/salon/api/{companyId}/reminders/plan"),
    ("POST", "/marketplace/salon/api/{companyId}/whatsapp/logout"),
    ("POST", "/marketplace/salon/api/{companyId}/whatsapp/relink"),
}


def _shape(path: str) -> str:
    """A path with each parameter, Quart- or OpenAPI-style, written ``{}``."""
    return PARAM.sub("{}", path)


def _is_socket(path: str) -> bool:
    return path.startswith(SALON_PREFIX) and path.endswith("/ws")


def _names_a_salon(path: str) -> bool:
    return any("company" in (m.group("a") or m.group("b")).lower() for m in PARAM.finditer(path))


SALON_API = sorted(
    {
        (r.method.upper(), r.path)
        for r in ALL_ROUTES
        if r.auth == "salon" and not _is_socket(r.path)
    },
    key=lambda row: (row[1], row[0]),
)
COOKIE_ONLY = sorted(
    {(r.method.upper(), r.path) for r in ALL_ROUTES if r.auth == "salon_cookie"},
    key=lambda row: (row[1], row[0]),
)
SALON_SOCKETS = sorted({r.path for r in ALL_ROUTES if _is_socket(r.path)})
#: Rows of the matrix whose path names a salon: another salon's credentials are tried there.
TENANT_ROWS = [row for row in SALON_API if _names_a_salon(row[1])]
CSRF_ROWS = [row for row in [*SALON_API, *COOKIE_ONLY] if row[0] in STATE_CHANGING]
#: Stands in for an empty list so a matrix with no rows fails instead of being skipped.
NO_ROW = ("GET", "(no salon route documented)")


def rows(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return found or [NO_ROW]


def fill(path: str, company_id: int) -> str:
    """``path`` with its company id set to ``company_id`` and any phone to :data:`PHONE`."""

    def value(match: re.Match[str]) -> str:
        name = (match.group("a") or match.group("b")).lower()
        if "company" in name:
            return str(company_id)
        if "phone" in name:
            return PHONE
        return "1"

    return PARAM.sub(value, path)


@dataclass(frozen=True)
class Tenants:
    """Two salons: A, whose credentials are tried, and B, whose paths they are tried on."""

    a: Registered
    b: Registered
    a_cookie: str
    a_jwt: str

    def credentials(self) -> dict[str, dict[str, str]]:
        """Each kind of salon A's credentials as request headers (the cookie with its CSRF
        token and a same-site Origin, so a refusal can only be the salon check's)."""
        return {
            "cookie": cookie_headers(self.a_cookie),
            "api_key": self.a.key_headers,
            "jwt": {"Authorization": f"Bearer {self.a_jwt}"},
            "connect_token": {"Authorization": f"Bearer {self.a.token}"},
        }


def cookie_headers(
    value: str, *, csrf: bool = True, origin: str | None = OWN_ORIGIN
) -> dict[str, str]:
    headers = {"Cookie": f"{COOKIE_NAME}={value}"}
    if csrf:
        session = decode_session(value, JWT_SECRET)
        assert session is not None
        headers["X-CSRF-Token"] = csrf_token(session.session_id, JWT_SECRET)
    if origin is not None:
        headers["Origin"] = origin
    return headers


def bare_client(web: WebHarness) -> Client:
    return web.app.test_client(use_cookies=False)


async def signed_in(web: WebHarness, salon: Registered) -> str:
    """Salon ``salon``'s session cookie, through the real sign-in route."""
    response = await bare_client(web).post(f"{SALON_PREFIX}/session", json={"token": salon.token})
    assert response.status_code == 200, await response.get_json()
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE_NAME:
            return rest.split(";", 1)[0]
    raise AssertionError("no session cookie was set")


async def two_tenants(web: WebHarness) -> Tenants:
    a = await register(web)
    b = await register(web)
    return Tenants(a, b, await signed_in(web, a), await issue_jwt(web, a))


async def call(
    web: WebHarness, method: str, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = await bare_client(web).open(url, method=method, headers=headers, json={})
    body = await response.get_json()
    return response.status_code, body if isinstance(body, dict) else {}


# ---------------------------------------------------------------------- the matrix


def test_the_matrix_is_not_empty() -> None:
    assert set(SALON_API) >= ISSUE_ROUTES, sorted(ISSUE_ROUTES - set(SALON_API))
    assert len(TENANT_ROWS) == len(SALON_API)  # every salon API path names its salon
    assert {("GET", SALON_PREFIX), ("POST", f"{SALON_PREFIX}/logout")} <= set(COOKIE_ONLY)
    assert f"{SALON_PREFIX}/api/{{companyId}}/ws" in SALON_SOCKETS
    assert ("POST", f"{SALON_PREFIX}/logout") in CSRF_ROWS
    assert any(row[1].startswith(f"{SALON_PREFIX}/api/") for row in CSRF_ROWS)


async def test_every_salon_route_the_app_serves_is_in_the_matrix(web: WebHarness) -> None:
    """A salon route missing from the table, or documented with another auth, would escape
    the matrix: every route under /marketplace/salon is in it, or is one of the sign-in
    routes (which take a token, not a session)."""
    sign_in = {
        ("POST", f"{SALON_PREFIX}/session"),
        ("GET", f"{SALON_PREFIX}/open"),
        ("POST", f"{SALON_PREFIX}/open"),  # the settings link's fields posted from a frame
    }
    matrix = {(m, _shape(p)) for m, p in [*SALON_API, *COOKIE_ONLY, *sign_in]}
    # A socket's path may also answer a plain GET (to refuse it): that is the socket's row.
    matrix |= {(kind, _shape(p)) for p in SALON_SOCKETS for kind in ("WS", "GET")}
    served = set()
    for rule in web.app.url_map.iter_rules():
        if not rule.rule.startswith(SALON_PREFIX):
            continue
        if rule.websocket:
            served.add(("WS", _shape(rule.rule)))
            continue
        for method in set(rule.methods or ()) - {"HEAD", "OPTIONS"}:
            served.add((method, _shape(rule.rule)))
    assert served, "no salon route is served"
    assert not served - matrix, sorted(served - matrix)


# ------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize(("method", "path"), rows(TENANT_ROWS))
async def test_another_salons_credentials_get_403(
    any_web: WebHarness, method: str, path: str
) -> None:
    assert (method, path) != NO_ROW, "no salon API route is documented with auth='salon'"
    t = await two_tenants(any_web)
    for kind, headers in t.credentials().items():
        status, body = await call(any_web, method, fill(path, t.b.company_id), headers)
        assert status == 403, (kind, body)
        assert body["error"]["code"] == "forbidden", (kind, body)
        assert str(t.b.salon_id) not in json.dumps(body)
    # The same credentials do reach salon A's own path (the refusal above is about the salon).
    # Fresh tokens before each: an own call may re-issue the connect URL (relink), which
    # revokes the JWT and connect token it replaced.
    own = fill(path, t.a.company_id)
    status, body = await call(any_web, method, own, t.a.key_headers)
    assert status not in (401, 403), ("api_key", body)
    token = await fresh_connect_token(any_web, t.a)
    status, body = await call(any_web, method, own, {"Authorization": f"Bearer {token}"})
    assert status not in (401, 403), ("connect_token", body)
    jwt = await issue_jwt(any_web, t.a)
    status, body = await call(any_web, method, own, {"Authorization": f"Bearer {jwt}"})
    assert status not in (401, 403), ("jwt", body)
    status, body = await call(any_web, method, own, cookie_headers(t.a_cookie))
    assert status not in (401, 403), ("cookie", body)


async def fresh_connect_token(web: WebHarness, salon: Registered) -> str:
    response = await web.client.post(
        "/marketplace/connect-url", json={"company_id": salon.company_id}, headers=web.admin
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    match = re.search(r"[?&]token=([^&]+)", body["connect_url"])
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize(("method", "path"), rows([*SALON_API, *COOKIE_ONLY]))
async def test_no_credentials_get_401(web: WebHarness, method: str, path: str) -> None:
    assert (method, path) != NO_ROW, "no salon route is documented"
    salon = await register(web)
    status, body = await call(web, method, fill(path, salon.company_id), {})
    assert status == 401, body
    # Nor does a cookie signed with another key, or one of a salon that does not exist.
    forged = encode_session(new_session(salon.company_id), "not-our-secret-0123456789abcdef-0123")
    ghost = encode_session(new_session(2_000_000_000), JWT_SECRET)
    for cookie in (forged, ghost):
        headers = cookie_headers(cookie, csrf=False)
        status, body = await call(web, method, fill(path, salon.company_id), headers)
        assert status == 401, body


@pytest.mark.parametrize(("method", "path"), rows(CSRF_ROWS))
async def test_state_changes_with_the_cookie_need_csrf(
    web: WebHarness, method: str, path: str
) -> None:
    assert (method, path) != NO_ROW, "no state-changing salon route is documented"
    salon = await register(web)
    cookie = await signed_in(web, salon)
    url = fill(path, salon.company_id)
    refusals = {
        "no token": cookie_headers(cookie, csrf=False),
        "no token, no origin": cookie_headers(cookie, csrf=False, origin=None),
        "wrong token": {**cookie_headers(cookie, csrf=False), "X-CSRF-Token": "A" * 43},
        "another site": cookie_headers(cookie, origin=ELSEWHERE),
        "an opaque origin": cookie_headers(cookie, origin="null"),
    }
    for label, headers in refusals.items():
        status, body = await call(web, method, url, headers)
        assert status == 403, (label, body)
        assert body["error"]["code"] == "csrf_failed", (label, body)


# -------------------------------------------------------------------- WebSocket


async def socket_frames(
    web: WebHarness, path: str, headers: dict[str, str], first: str | None = None, *, ip: str
) -> tuple[list[dict[str, Any]], int]:
    async with bare_client(web).websocket(path, headers=headers, scope_base=peer(ip)) as ws:
        if first is not None:
            await ws.send(first)
        return await until_closed(ws)


@pytest.mark.parametrize("path", SALON_SOCKETS or [NO_ROW[1]])
async def test_another_salons_credentials_cannot_open_the_socket(
    web: WebHarness, path: str
) -> None:
    assert path != NO_ROW[1], "no salon WebSocket is documented"
    t = await two_tenants(web)
    url = fill(path, t.b.company_id)
    attempts: dict[str, tuple[dict[str, str], str | None]] = {
        "cookie": (cookie_headers(t.a_cookie, csrf=False), None),
        "api_key": (t.a.key_headers, None),
        "jwt": ({"Authorization": f"Bearer {t.a_jwt}"}, None),
        "connect_token": ({"Authorization": f"Bearer {t.a.token}"}, None),
        "auth frame": ({}, auth_frame(t.a.token)),
    }
    # (From one address each: sockets are limited to 5 a minute per IP.)
    for n, (kind, (headers, first)) in enumerate(attempts.items()):
        frames, code = await socket_frames(web, url, headers, first, ip=f"203.0.113.{n + 1}")
        assert code == 4403, (kind, frames)
        assert [f["event"] for f in frames] == ["error"], (kind, frames)
        assert frames[0]["data"]["code"] == "forbidden", (kind, frames)
        assert str(t.b.salon_id) not in json.dumps(frames)
    # Salon A's cookie opens salon A's socket: the first frame is the live status.
    async with bare_client(web).websocket(
        fill(path, t.a.company_id),
        headers=cookie_headers(t.a_cookie, csrf=False),
        scope_base=peer("203.0.113.100"),
    ) as ws:
        first_frame = json.loads(await ws.receive())
        assert first_frame["event"] != "error", first_frame
