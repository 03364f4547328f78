"""The salon page's session (issue 16): how a salon admin gets in (connect token, company JWT,
YClients' signed settings link), the cookie's attributes, its rotation and expiry under a
controlled clock, refusals (forged cookie, uninstalled salon, another salon, CSRF), the page
itself with the connect page's headers, and log-out.

``salon_caller`` / ``salon_socket_caller`` are exercised through a small probe blueprint added
to the real app (the salon API routes of the other modules are covered by
``test_salon_isolation.py``); everything else goes through the real routes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest
from quart import Blueprint, jsonify, websocket
from quart.typing import TestClientProtocol as Client

import web._salon_session as salon_session
from actors.yclients import sign_user_data
from config import Settings
from storage import CompanyStatus
from tests.web.conftest import (
    JWT_SECRET,
    Registered,
    WebHarness,
    issue_jwt,
    make_production_settings,
    make_web_settings,
    open_memory_storage,
    open_web,
    register,
    uninstall,
    until_closed,
)
from web._salon_session import (
    COOKIE_NAME,
    SalonSession,
    csrf_token,
    decode_session,
    encode_session,
    new_session,
    salon_caller,
    salon_socket_caller,
)
from web._security import PAGE_CSP

PARTNER_TOKEN = "partner-token-for-salon-page-tests"
START = 1_900_000_000.0
MINUTE = 60.0
HOUR = 3600.0
PAGE = "/marketplace/salon"
OWN_ORIGIN = "http://localhost"
ELSEWHERE = "https://evil.example"


class FakeClock:
    """The session module's wall clock, moved by the test (no sleeping)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(START)
    monkeypatch.setattr(salon_session, "clock", fake)
    return fake


@pytest.fixture
def settings() -> Settings:
    """Development settings with a partner token, so signed ``user_data`` can be checked."""
    return make_web_settings(yclients_api_key=PARTNER_TOKEN)


# ------------------------------------------------------------------ probe routes


def probe_blueprint() -> Blueprint:
    """A salon API route and WebSocket that only say who called (to test the two callers)."""
    probe = Blueprint("salon_probe", __name__)

    @probe.route(
        "/marketplace/salon/api/<int:company_id>/probe",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )
    async def who(company_id: int) -> Any:
        caller = await salon_caller(company_id)
        return jsonify({"success": True, "company_id": caller.company_id, "kind": caller.kind})

    @probe.websocket("/marketplace/salon/api/<int:company_id>/probe-ws")
    async def who_ws(company_id: int) -> None:
        caller = await salon_socket_caller(company_id)
        await websocket.accept()
        if caller is None:
            await websocket.send(json.dumps({"event": "error", "data": {"code": "forbidden"}}))
            await websocket.close(4403, "forbidden")
            return
        await websocket.send(json.dumps({"event": "caller", "data": {"kind": caller.kind}}))
        await websocket.close(1000, "done")

    return probe


@pytest.fixture
async def salon_web(settings: Settings, clock: FakeClock) -> AsyncIterator[WebHarness]:
    """The app (memory storage) with the probe routes, under the fake session clock."""
    async with open_memory_storage() as storage, open_web(settings, storage) as harness:
        harness.app.register_blueprint(probe_blueprint())
        yield harness


def bare_client(web: WebHarness) -> Client:
    """A client without a cookie jar: every cookie a test sends is explicit."""
    return web.app.test_client(use_cookies=False)


# --------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class SetCookie:
    """The session cookie a response set: its value and attributes."""

    value: str
    attributes: dict[str, str]
    flags: set[str]

    @property
    def max_age(self) -> int:
        return int(self.attributes["max-age"])


def set_cookie_of(response: Any) -> SetCookie | None:
    """The ``aiadmin_salon`` cookie a response sets (``None`` when it sets none)."""
    for header in response.headers.getlist("Set-Cookie"):
        if not header.startswith(f"{COOKIE_NAME}="):
            continue
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        morsel = parsed[COOKIE_NAME]
        lowered = header.lower()
        flags = {flag for flag in ("httponly", "secure") if re.search(rf";\s*{flag}\b", lowered)}
        attributes = {k: str(v) for k, v in morsel.items() if v and not isinstance(v, bool)}
        return SetCookie(morsel.value, attributes, flags)
    return None


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={value}"}


def session_of(value: str) -> SalonSession:
    session = decode_session(value, JWT_SECRET)
    assert session is not None
    return session


def csrf_headers(value: str, **extra: str) -> dict[str, str]:
    """The cookie plus the page's CSRF token for it."""
    token = csrf_token(session_of(value).session_id, JWT_SECRET)
    return {**cookie_header(value), "X-CSRF-Token": token, **extra}


async def sign_in(web: WebHarness, token: str, **headers: str) -> str:
    """``POST /marketplace/salon/session``; asserts 200 and returns the cookie's value."""
    response = await bare_client(web).post(
        f"{PAGE}/session", json={"token": token}, headers=headers
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    cookie = set_cookie_of(response)
    assert cookie is not None
    return cookie.value


def minted(company_id: int, now: float = START) -> str:
    """A valid cookie for ``company_id`` opened at ``now`` (as the server would mint it)."""
    return encode_session(new_session(company_id, now), JWT_SECRET)


async def probe(
    web: WebHarness, company_id: int, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Any]:
    response = await bare_client(web).open(
        f"/marketplace/salon/api/{company_id}/probe",
        method=method,
        headers=headers or {},
        json={},
    )
    return response.status_code, await response.get_json(), response


def signed_link(salon_id: int, user: dict[str, Any], partner: str = PARTNER_TOKEN) -> str:
    data, sign = sign_user_data(user, partner)
    query = {"salon_id": str(salon_id), "user_data": data, "user_data_sign": sign}
    return f"{PAGE}/open?{urlencode(query)}"


# ------------------------------------------------------------- entry by token


async def test_a_connect_token_opens_a_session_with_a_strict_cookie(salon_web: WebHarness) -> None:
    salon = await register(salon_web, title="Салон «Ромашка»")
    response = await bare_client(salon_web).post(f"{PAGE}/session", json={"token": salon.token})
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body == {"success": True, "company_id": salon.company_id, "location": PAGE}
    cookie = set_cookie_of(response)
    assert cookie is not None
    assert cookie.attributes["path"] == "/marketplace/salon"
    assert cookie.attributes["samesite"] == "Lax"
    assert cookie.flags == {"httponly"}  # not Secure outside production
    assert cookie.max_age == 2 * 3600
    assert salon.token not in cookie.value  # the cookie carries no credential of the API
    session = session_of(cookie.value)
    assert session.company_id == salon.company_id
    assert session.issued_at == session.created_at == int(START)


async def test_a_company_jwt_opens_a_session_too(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, await issue_jwt(salon_web, salon))
    assert session_of(value).company_id == salon.company_id


async def test_every_session_has_its_own_id(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    first = session_of(await sign_in(salon_web, salon.token))
    second = session_of(await sign_in(salon_web, salon.token))
    assert first.session_id != second.session_id
    assert csrf_token(first.session_id, JWT_SECRET) != csrf_token(second.session_id, JWT_SECRET)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"token": "not-a-token-at-all-0123456789"}, 401, "invalid_token"),
        ({"token": "eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoxfQ.c2ln"}, 401, "invalid_token"),
        ({}, 400, "missing_field"),
        ({"token": 12345}, 400, "missing_field"),
    ],
)
async def test_a_bad_token_opens_nothing(
    salon_web: WebHarness, body: dict[str, Any], status: int, code: str
) -> None:
    response = await bare_client(salon_web).post(f"{PAGE}/session", json=body)
    answer = await response.get_json()
    assert response.status_code == status, answer
    assert answer["success"] is False and answer["error"]["code"] == code
    assert set_cookie_of(response) is None


@pytest.mark.parametrize("kind", ["connect_token", "jwt"])
async def test_an_uninstalled_salon_gets_no_session(salon_web: WebHarness, kind: str) -> None:
    salon = await register(salon_web)
    token = salon.token if kind == "connect_token" else await issue_jwt(salon_web, salon)
    await uninstall(salon_web, salon.company_id)
    response = await bare_client(salon_web).post(f"{PAGE}/session", json={"token": token})
    body = await response.get_json()
    assert response.status_code == 410, body
    assert body["error"]["code"] == "uninstalled"
    assert set_cookie_of(response) is None


async def test_another_site_cannot_sign_a_browser_in(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    response = await bare_client(salon_web).post(
        f"{PAGE}/session", json={"token": salon.token}, headers={"Origin": ELSEWHERE}
    )
    body = await response.get_json()
    assert response.status_code == 403, body
    assert body["error"]["code"] == "csrf_failed"
    assert set_cookie_of(response) is None
    same_site = await sign_in(salon_web, salon.token, Origin=OWN_ORIGIN)
    assert session_of(same_site).company_id == salon.company_id


async def test_production_cookie_is_secure(clock: FakeClock) -> None:
    async with (
        open_memory_storage() as storage,
        open_web(make_production_settings(), storage) as web,
    ):
        salon = await register(web)
        response = await bare_client(web).post(f"{PAGE}/session", json={"token": salon.token})
        assert response.status_code == 200, await response.get_json()
        cookie = set_cookie_of(response)
        assert cookie is not None
        assert cookie.flags == {"httponly", "secure"}
        assert cookie.attributes["samesite"] == "Lax"
        page = await bare_client(web).get(PAGE, headers=cookie_header(cookie.value))
        assert page.status_code == 200
        assert "max-age" in page.headers["Strict-Transport-Security"]


# ------------------------------------------------------------------- the page


async def test_the_page_shows_the_cookies_salon_with_the_connect_pages_headers(
    salon_web: WebHarness,
) -> None:
    salon = await register(salon_web, title="Салон <b>Ромашка</b>")
    value = await sign_in(salon_web, salon.token)
    response = await bare_client(salon_web).get(PAGE, headers=cookie_header(value))
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    token = csrf_token(session_of(value).session_id, JWT_SECRET)
    assert f'<meta name="csrf-token" content="{token}">' in html
    assert f'data-api-base="/marketplace/salon/api/{salon.company_id}"' in html
    assert f'data-ws-path="/marketplace/salon/api/{salon.company_id}/ws"' in html
    assert f'data-company-id="{salon.company_id}"' in html
    assert f'data-salon-id="{salon.salon_id}"' in html
    assert "Салон &lt;b&gt;Ромашка&lt;/b&gt;" in html and "<b>Ромашка" not in html
    assert salon.token not in html and value not in html
    connect = await bare_client(salon_web).get(salon.connect_url)
    assert connect.status_code == 200
    for name in (
        "Content-Security-Policy",
        "Cache-Control",
        "Referrer-Policy",
        "X-Content-Type-Options",
        "Permissions-Policy",
    ):
        assert response.headers.get(name) == connect.headers.get(name), name
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Frame-Options" not in response.headers


async def test_without_a_session_the_page_says_how_to_get_in(salon_web: WebHarness) -> None:
    for headers in ({}, cookie_header("garbage"), cookie_header(minted(1)[:-3] + "AAA")):
        response = await bare_client(salon_web).get(PAGE, headers=headers)
        html = await response.get_data(as_text=True)
        assert response.status_code == 401
        assert response.mimetype == "text/html"
        assert "Откройте кабинет из YClients" in html
        assert "со страницы подключения" in html
        assert response.headers["Content-Security-Policy"] == PAGE_CSP
        assert response.headers["Cache-Control"] == "no-store"


# ----------------------------------------------------- rotation and expiry


async def test_the_cookie_is_reissued_after_fifteen_minutes_with_the_same_csrf_token(
    salon_web: WebHarness, clock: FakeClock
) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    clock.advance(14 * MINUTE)
    status, _, response = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 200
    assert set_cookie_of(response) is None  # not due yet
    clock.advance(1 * MINUTE)
    status, body, response = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 200 and body["kind"] == "salon_cookie"
    rotated = set_cookie_of(response)
    assert rotated is not None and rotated.value != value
    assert rotated.flags == {"httponly"}
    assert rotated.attributes["path"] == "/marketplace/salon"
    assert rotated.attributes["samesite"] == "Lax"
    assert rotated.max_age == 2 * 3600
    old, new = session_of(value), session_of(rotated.value)
    assert new.session_id == old.session_id  # the page's CSRF token stays valid
    assert new.created_at == old.created_at
    assert new.issued_at == int(START + 15 * MINUTE)
    # The page rotates it too.
    clock.advance(15 * MINUTE)
    page = await bare_client(salon_web).get(PAGE, headers=cookie_header(rotated.value))
    assert page.status_code == 200
    again = set_cookie_of(page)
    assert again is not None and session_of(again.value).issued_at == int(START + 30 * MINUTE)


async def test_two_idle_hours_end_the_session(salon_web: WebHarness, clock: FakeClock) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    clock.advance(2 * HOUR - 1)
    status, _, _ = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 200
    # The old value (not the one that request rotated to) is idle for two hours now.
    clock.advance(1)
    status, body, response = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 401, body
    assert body["error"]["code"] == "salon_session_expired"
    gone = set_cookie_of(response)
    assert gone is not None and gone.value == "" and gone.max_age == 0  # the browser forgets it
    page = await bare_client(salon_web).get(PAGE, headers=cookie_header(value))
    assert page.status_code == 401


async def test_twelve_hours_end_the_session_however_active(
    salon_web: WebHarness, clock: FakeClock
) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    for _ in range(11):  # a request every hour keeps it alive and rotated...
        clock.advance(HOUR)
        status, _, response = await probe(salon_web, salon.company_id, headers=cookie_header(value))
        assert status == 200
        rotated = set_cookie_of(response)
        assert rotated is not None
        value = rotated.value
    # ... but the last cookie may live only until twelve hours after sign-in.
    assert rotated is not None and rotated.max_age == 1 * 3600
    clock.advance(HOUR - 1)
    status, _, _ = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 200
    clock.advance(1)
    status, body, _ = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 401, body
    assert body["error"]["code"] == "salon_session_expired"


# -------------------------------------------------------------------- refusals


def forged_variants(value: str) -> list[str]:
    payload, _, mac = value.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["c"] = data["c"] + 1
    other_payload = (
        base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )
    session = session_of(value)
    return [
        f"{other_payload}.{mac}",  # another salon's id under this salon's signature
        value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"),  # a broken MAC
        encode_session(session, "another-secret-0123456789abcdef-0123456789"),
        payload,  # no MAC at all
        "",
        "x" * 600,
    ]


async def test_a_tampered_cookie_is_401(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    for forged in forged_variants(value):
        status, body, _ = await probe(salon_web, salon.company_id, headers=cookie_header(forged))
        assert status == 401, (forged, body)
        assert body["error"]["code"] == "salon_session_expired"
        # The cookie wins over other credentials: a forged one is not "no cookie".
        status, body, _ = await probe(
            salon_web, salon.company_id, headers={**cookie_header(forged), **salon.key_headers}
        )
        assert status == 401, body


async def test_an_uninstalled_salons_cookie_is_401(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    await uninstall(salon_web, salon.company_id)
    status, body, _ = await probe(salon_web, salon.company_id, headers=cookie_header(value))
    assert status == 401, body
    assert body["error"]["code"] == "salon_session_expired"
    page = await bare_client(salon_web).get(PAGE, headers=cookie_header(value))
    assert page.status_code == 401


async def test_a_removed_salons_cookie_is_401(salon_web: WebHarness) -> None:
    value = minted(987_654)  # validly signed, but no such company
    status, body, _ = await probe(salon_web, 987_654, headers=cookie_header(value))
    assert status == 401, body
    assert body["error"]["code"] == "salon_session_expired"


async def test_another_salons_cookie_is_403(salon_web: WebHarness) -> None:
    a = await register(salon_web)
    b = await register(salon_web)
    value = await sign_in(salon_web, a.token)
    for method in ("GET", "POST"):
        status, body, _ = await probe(
            salon_web, b.company_id, method, headers=csrf_headers(value, Origin=OWN_ORIGIN)
        )
        assert status == 403, body
        assert body["error"]["code"] == "forbidden"
        assert str(b.salon_id) not in json.dumps(body)


async def test_state_changes_need_the_csrf_token_and_our_origin(
    salon_web: WebHarness, clock: FakeClock
) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    cid = salon.company_id
    refused: list[dict[str, str]] = [
        cookie_header(value),
        {**cookie_header(value), "X-CSRF-Token": ""},
        {**cookie_header(value), "X-CSRF-Token": "A" * 43},
        {**cookie_header(value), "X-CSRF-Token": csrf_token("another-session", JWT_SECRET)},
        csrf_headers(value, Origin=ELSEWHERE),
        csrf_headers(value, Origin="null"),
    ]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for headers in refused:
            status, body, _ = await probe(salon_web, cid, method, headers=headers)
            assert status == 403, (method, headers, body)
            assert body["error"]["code"] == "csrf_failed"
    for headers in (csrf_headers(value), csrf_headers(value, Origin=OWN_ORIGIN)):
        status, body, _ = await probe(salon_web, cid, "POST", headers=headers)
        assert status == 200, body
        assert body["kind"] == "salon_cookie"
    # A refused request does not rotate the cookie.
    clock.advance(20 * MINUTE)
    status, _, response = await probe(salon_web, cid, "POST", headers=cookie_header(value))
    assert status == 403 and set_cookie_of(response) is None
    # Reading needs no CSRF token.
    status, _, _ = await probe(salon_web, cid, headers=cookie_header(value))
    assert status == 200


async def test_without_a_cookie_the_apis_own_credentials_serve(salon_web: WebHarness) -> None:
    a = await register(salon_web)
    b = await register(salon_web)
    jwt_a = await issue_jwt(salon_web, a)
    cases: list[tuple[dict[str, str], int, int, str | None]] = [
        (a.key_headers, a.company_id, 200, "company_key"),
        ({"Authorization": f"Bearer {jwt_a}"}, a.company_id, 200, "jwt"),
        ({"Authorization": f"Bearer {a.token}"}, a.company_id, 200, "connect_token"),
        (salon_web.admin, b.company_id, 200, "admin"),
        (a.key_headers, b.company_id, 403, None),
        ({"Authorization": f"Bearer {jwt_a}"}, b.company_id, 403, None),
        ({}, a.company_id, 401, None),
        ({"X-API-Key": "sk_not_a_real_key_0123456789"}, a.company_id, 401, None),
    ]
    for headers, cid, status, kind in cases:
        got, body, _ = await probe(salon_web, cid, "POST", headers=headers)
        assert got == status, (headers, body)
        if kind is not None:
            assert body["kind"] == kind  # and no CSRF token was needed: no cookie, no CSRF


# ----------------------------------------------------------------- WebSocket


async def socket_answer(
    web: WebHarness, company_id: int, headers: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    async with bare_client(web).websocket(
        f"/marketplace/salon/api/{company_id}/probe-ws", headers=headers
    ) as ws:
        return await until_closed(ws)


async def test_the_socket_takes_the_cookie_of_its_own_salon_only(salon_web: WebHarness) -> None:
    a = await register(salon_web)
    b = await register(salon_web)
    value = await sign_in(salon_web, a.token)
    frames, code = await socket_answer(salon_web, a.company_id, cookie_header(value))
    assert frames == [{"event": "caller", "data": {"kind": "salon_cookie"}}] and code == 1000
    same_site = {**cookie_header(value), "Origin": OWN_ORIGIN}
    frames, code = await socket_answer(salon_web, a.company_id, same_site)
    assert frames[0]["data"]["kind"] == "salon_cookie"
    refused = [
        (b.company_id, cookie_header(value)),
        (a.company_id, {**cookie_header(value), "Origin": ELSEWHERE}),
        (a.company_id, cookie_header(value[:-2] + "xx")),
        (a.company_id, {}),
        (b.company_id, a.key_headers),
        (a.company_id, {**cookie_header(minted(b.company_id)), **a.key_headers}),
    ]
    for cid, headers in refused:
        frames, code = await socket_answer(salon_web, cid, headers)
        assert code == 4403, (cid, headers, frames)
        assert frames == [{"event": "error", "data": {"code": "forbidden"}}]
    frames, code = await socket_answer(salon_web, a.company_id, a.key_headers)
    assert frames[0]["data"]["kind"] == "company_key"


# --------------------------------------------------------- YClients settings link


async def test_the_signed_settings_link_opens_the_page_without_a_credential_in_the_url(
    salon_web: WebHarness,
) -> None:
    salon = await register(salon_web)
    user = {"user_id": 7, "name": "Анна", "salon_id": salon.salon_id}
    response = await bare_client(salon_web).get(signed_link(salon.salon_id, user))
    assert response.status_code == 303
    assert response.headers["Location"] in (PAGE, f"http://localhost{PAGE}")
    assert "user_data" not in response.headers["Location"]
    assert response.headers["Cache-Control"] == "no-store"
    cookie = set_cookie_of(response)
    assert cookie is not None
    assert session_of(cookie.value).company_id == salon.company_id
    assert cookie.attributes["samesite"] == "Lax" and "httponly" in cookie.flags
    page = await bare_client(salon_web).get(PAGE, headers=cookie_header(cookie.value))
    assert page.status_code == 200


async def test_the_settings_link_of_the_installing_admin_needs_no_salon_in_user_data(
    salon_web: WebHarness,
) -> None:
    salon = await register(salon_web)
    await salon_web.storage.companies.update(
        salon.company_id, raw_data={"admin": {"user_id": 7, "name": "Анна"}}
    )
    response = await bare_client(salon_web).get(signed_link(salon.salon_id, {"user_id": 7}))
    assert response.status_code == 303
    assert set_cookie_of(response) is not None
    # Another admin's signed data (of some other salon) opens nothing here.
    response = await bare_client(salon_web).get(signed_link(salon.salon_id, {"user_id": 8}))
    assert response.status_code == 403
    assert set_cookie_of(response) is None


async def test_the_settings_link_is_refused_when_it_cannot_be_trusted(
    salon_web: WebHarness,
) -> None:
    salon = await register(salon_web)
    other = await register(salon_web)
    bound = {"user_id": 7, "salon_id": salon.salon_id}
    data, _ = sign_user_data(bound, PARTNER_TOKEN)

    def link(**query: object) -> str:
        return f"{PAGE}/open?{urlencode(query)}"

    cases: list[tuple[str, int, str]] = [
        (signed_link(salon.salon_id, bound, partner="someone-elses-token"), 403, "Подпись"),
        (link(salon_id=salon.salon_id, user_data=data), 403, "Подпись"),
        (link(salon_id=salon.salon_id), 403, "Подпись"),
        (link(salon_id=salon.salon_id, user_data=data, user_data_sign="0" * 64), 403, "Подпись"),
        (
            link(salon_id=salon.salon_id, user_data="bm90IGpzb24=", user_data_sign="0" * 64),
            403,
            "Подпись",
        ),
        # signed for one salon, used for another
        (signed_link(other.salon_id, bound), 403, "Нет доступа"),
        # signed, but naming no salon and not the admin who installed it
        (signed_link(salon.salon_id, {"user_id": 7}), 403, "Нет доступа"),
        (signed_link(55_555_555, {"user_id": 7, "salon_id": 55_555_555}), 404, "не найден"),
        (link(salon_id="abc"), 400, "Ссылка недействительна"),
    ]
    for url, status, text in cases:
        response = await bare_client(salon_web).get(url)
        html = await response.get_data(as_text=True)
        assert response.status_code == status, (url, html[:200])
        assert response.mimetype == "text/html"
        assert text in html
        assert set_cookie_of(response) is None
        assert response.headers["Content-Security-Policy"] == PAGE_CSP


async def test_the_settings_link_of_an_uninstalled_salon_is_410(salon_web: WebHarness) -> None:
    salon = await register(salon_web)
    await uninstall(salon_web, salon.company_id)
    stored = await salon_web.storage.companies.get(salon.company_id)
    assert stored is not None and stored.status is CompanyStatus.UNINSTALLED
    response = await bare_client(salon_web).get(
        signed_link(salon.salon_id, {"user_id": 1, "salon_id": salon.salon_id})
    )
    assert response.status_code == 410
    assert set_cookie_of(response) is None


# -------------------------------------------------------------------- log-out


async def test_logout_clears_the_cookie(salon_web: WebHarness, clock: FakeClock) -> None:
    salon = await register(salon_web)
    value = await sign_in(salon_web, salon.token)
    clock.advance(20 * MINUTE)  # rotation due: log-out must still clear, not re-issue
    client = bare_client(salon_web)
    refused = await client.post(f"{PAGE}/logout", headers=cookie_header(value))
    assert refused.status_code == 403
    assert (await refused.get_json())["error"]["code"] == "csrf_failed"
    assert set_cookie_of(refused) is None
    response = await client.post(f"{PAGE}/logout", headers=csrf_headers(value))
    assert response.status_code == 200
    assert await response.get_json() == {"success": True}
    cleared = set_cookie_of(response)
    assert cleared is not None
    assert cleared.value == "" and cleared.max_age == 0
    assert cleared.attributes["path"] == "/marketplace/salon"
    assert len(response.headers.getlist("Set-Cookie")) == 1
    # A browser that honours it has no session: the page asks to sign in again.
    anonymous = await client.get(PAGE)
    assert anonymous.status_code == 401
    nobody = await client.post(f"{PAGE}/logout")
    assert nobody.status_code == 401
    assert (await nobody.get_json())["error"]["code"] == "salon_session_expired"


async def test_a_browser_keeps_the_session_through_the_whole_flow(
    salon_web: WebHarness, clock: FakeClock
) -> None:
    """With a real cookie jar: sign in, see the page, rotate, log out, see the sign-in page."""
    salon: Registered = await register(salon_web)
    browser = salon_web.app.test_client()
    response = await browser.post(f"{PAGE}/session", json={"token": salon.token})
    assert response.status_code == 200
    assert (await browser.get(PAGE)).status_code == 200
    clock.advance(30 * MINUTE)
    page = await browser.get(PAGE)
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert match is not None
    logout = await browser.post(f"{PAGE}/logout", headers={"X-CSRF-Token": match.group(1)})
    assert logout.status_code == 200
    assert (await browser.get(PAGE)).status_code == 401
