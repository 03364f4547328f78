"""``/marketplace/ws``: authentication, QR and pairing events, the simulated scan, limits,
and the production Origin check — through Quart's test client."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing

from tests.web.conftest import (
    ALLOWED_ORIGIN,
    WS_PATH,
    WebHarness,
    auth_frame,
    frame,
    frame_named,
    issue_jwt,
    make_production_settings,
    next_frame,
    open_memory_storage,
    open_web,
    peer,
    register,
    until_closed,
)
from web._context import app_state

PNG_DATA_URL = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+=*")


async def test_first_frame_auth_then_qr_and_simulated_scan(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(company.token))
        status = await next_frame(ws)
        assert status["event"] == "status"
        assert status["data"]["companyId"] == company.company_id
        assert status["data"]["whatsapp_connected"] is False
        await ws.send(frame("request-qr"))
        qr = await frame_named(ws, "qr-update")
        assert qr["data"]["qr"] == web.world.live_qr(company.company_id)
        assert PNG_DATA_URL.fullmatch(qr["data"]["qr_image"])
        assert qr["data"]["expiresIn"] > 0
        await ws.send(frame("simulate-scan"))
        connected = await frame_named(ws, "whatsapp-connected")
        assert connected["data"]["success"] is True
        assert connected["data"]["companyId"] == company.company_id
        assert connected["data"]["phone"] == "79001234567"
    stored = await web.storage.companies.get(company.company_id)
    assert stored is not None and stored.whatsapp_connected


async def test_no_auth_frame_within_5_s_closes_4001(
    web: WebHarness, autojump_clock: trio.testing.MockClock
) -> None:
    await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        started = trio.current_time()
        frames, code = await until_closed(ws, timeout=60)
        waited = trio.current_time() - started
    assert code == 4001
    assert [f["event"] for f in frames] == ["error"]
    assert frames[0]["data"]["code"] == "invalid_token"
    assert 5.0 <= waited < 6.0


async def test_auth_frame_just_before_the_deadline_is_accepted(
    web: WebHarness, autojump_clock: trio.testing.MockClock
) -> None:
    company = await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        await trio.sleep(4.9)
        await ws.send(auth_frame(company.token))
        assert (await next_frame(ws))["event"] == "status"


@pytest.mark.parametrize(
    "first",
    [
        auth_frame("not-a-valid-token-0123456789"),
        auth_frame("eyJhbGciOiJub25lIn0.eyJjb21wYW55X2lkIjoxfQ."),
        '{"event": "request-qr"}',
        '{"event": "auth", "data": {"token": 12345}}',
        "not json",
        '["auth"]',
    ],
    ids=["unknown-token", "unsigned-jwt", "not-auth", "token-not-string", "not-json", "array"],
)
async def test_bad_first_frame_closes_4001(web: WebHarness, first: str) -> None:
    await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(first)
        frames, code = await until_closed(ws)
    assert code == 4001
    assert frames == [
        {
            "event": "error",
            "data": {"message": "The link has expired or is invalid", "code": "invalid_token"},
        }
    ]


async def test_authorization_header(web: WebHarness) -> None:
    company = await register(web)
    jwt = await issue_jwt(web, company)
    for credential in (jwt, company.token):
        headers = {"Authorization": f"Bearer {credential}"}
        async with web.client.websocket(WS_PATH, headers=headers) as ws:
            status = await next_frame(ws)
            assert status["event"] == "status"
            assert status["data"]["companyId"] == company.company_id
            await ws.send(frame("request-qr"))
            assert (await frame_named(ws, "qr-update"))["data"]["qr"]


async def test_token_in_the_url_is_not_accepted(web: WebHarness) -> None:
    company = await register(web)
    async with web.client.websocket(f"{WS_PATH}?token={company.token}") as ws:
        await ws.send(frame("request-qr"))
        frames, code = await until_closed(ws)
    assert code == 4001
    assert frames[0]["data"]["code"] == "invalid_token"


async def test_pairing_code_and_command_errors(web: WebHarness) -> None:
    company = await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(company.token))
        await next_frame(ws)
        await ws.send(frame("request-pairing-code", phone="+7 900 765-43-21"))
        pairing = await frame_named(ws, "pairing-code")
        assert pairing["data"]["code"]
        assert pairing["data"]["phone"] == "79007654321"
        await ws.send(frame("request-pairing-code", phone="nope"))
        error = await frame_named(ws, "error")
        assert error["data"]["code"] == "invalid_field"
        await ws.send(frame("dance"))
        assert (await frame_named(ws, "error"))["data"]["code"] == "unknown_event"
        await ws.send("{oops")
        assert (await frame_named(ws, "error"))["data"]["code"] == "bad_frame"
        await ws.send(b"\x00binary")
        assert (await frame_named(ws, "error"))["data"]["code"] == "bad_frame"
        # Errors do not close the socket: the page still links.
        await ws.send(frame("simulate-scan"))
        assert (await frame_named(ws, "whatsapp-connected"))["data"]["success"] is True


async def test_simulate_scan_without_a_qr(web: WebHarness) -> None:
    company = await register(web)
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(company.token))
        await next_frame(ws)
        await ws.send(frame("simulate-scan"))
        assert (await frame_named(ws, "error"))["data"]["code"] == "no_qr"


async def test_sixth_connection_from_one_ip_in_a_minute_is_refused(
    web: WebHarness, autojump_clock: trio.testing.MockClock
) -> None:
    company = await register(web)
    limit = web.settings.ws_rate_limit
    assert (limit.limit, limit.window) == (5, 60.0)
    for _ in range(5):
        async with web.client.websocket(WS_PATH, scope_base=peer("203.0.113.7")) as ws:
            await ws.send(auth_frame(company.token))
            assert (await next_frame(ws))["event"] == "status"
    async with web.client.websocket(WS_PATH, scope_base=peer("203.0.113.7")) as ws:
        frames, code = await until_closed(ws)
    assert code == 4029
    assert [f["event"] for f in frames] == ["error"]
    assert frames[0]["data"]["code"] == "rate_limited"
    # Another IP is not affected; the same IP may connect again after the window.
    async with web.client.websocket(WS_PATH, scope_base=peer("203.0.113.8")) as ws:
        await ws.send(auth_frame(company.token))
        assert (await next_frame(ws))["event"] == "status"
    await trio.sleep(61)
    async with web.client.websocket(WS_PATH, scope_base=peer("203.0.113.7")) as ws:
        await ws.send(auth_frame(company.token))
        assert (await next_frame(ws))["event"] == "status"


@pytest.mark.parametrize(
    "origin",
    [None, "https://evil.example", "http://n123.yclients.com", "https://n123.yclients.com.evil.io"],
)
async def test_bad_origin_in_production_closes_4003(origin: str | None) -> None:
    settings = make_production_settings()
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        company = await register(web)
        headers = {} if origin is None else {"Origin": origin}
        async with web.client.websocket(WS_PATH, headers=headers) as ws:
            await ws.send(auth_frame(company.token))
            frames, code = await until_closed(ws)
        assert code == 4003
        assert frames[0]["data"]["code"] == "origin_not_allowed"


async def test_allowed_origin_in_production_works() -> None:
    settings = make_production_settings()
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        company = await register(web)
        for origin in (ALLOWED_ORIGIN, "https://ai-admin.app"):
            async with web.client.websocket(WS_PATH, headers={"Origin": origin}) as ws:
                await ws.send(auth_frame(company.token))
                assert (await next_frame(ws))["event"] == "status"
                await ws.send(frame("request-qr"))
                await frame_named(ws, "qr-update")
                # The simulator is a development tool: not available in production.
                await ws.send(frame("simulate-scan"))
                assert (await frame_named(ws, "error"))["data"]["code"] == "unknown_event"


async def test_origin_is_not_checked_in_development(web: WebHarness) -> None:
    company = await register(web)
    async with web.client.websocket(WS_PATH, headers={"Origin": "https://evil.example"}) as ws:
        await ws.send(auth_frame(company.token))
        assert (await next_frame(ws))["event"] == "status"


async def test_viewer_count_follows_open_sockets(web: WebHarness) -> None:
    company = await register(web)
    metrics = app_state(web.app).metrics
    async with web.client.websocket(WS_PATH) as first:
        await first.send(auth_frame(company.token))
        await next_frame(first)
        async with web.client.websocket(WS_PATH) as second:
            await second.send(auth_frame(company.token))
            await next_frame(second)
            assert metrics.viewers == 2
    await trio.testing.wait_all_tasks_blocked()
    assert metrics.viewers == 0


@pytest.mark.parametrize("broken", ["rate_limiter", "companies"])
async def test_storage_down_during_the_handshake_is_an_error_frame_not_a_crash(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    from storage import StorageUnavailable

    company = await register(web)

    async def down(*args: object, **kwargs: object) -> object:
        raise StorageUnavailable("redis" if broken == "rate_limiter" else "postgresql", "down")

    if broken == "rate_limiter":
        monkeypatch.setattr(web.storage.rate_limiter, "hit", down)
    else:
        monkeypatch.setattr(web.storage.companies, "get", down)
    async with web.client.websocket(WS_PATH) as ws:
        await ws.send(auth_frame(company.token))
        frames, code = await until_closed(ws)
    assert code == 1013
    assert frames[-1]["event"] == "error"
    assert frames[-1]["data"]["code"] == "unavailable"
