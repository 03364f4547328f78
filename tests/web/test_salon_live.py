"""``/marketplace/salon/api/<companyId>/ws``: the salon page's live updates — a client's
message, the assistant's reply and the chat's mode change as frames, the WhatsApp status on
a disconnect, the same-salon rule (another salon's cookie, key or token: ``forbidden`` and
4403), revocation and expiry, a slow viewer dropped without holding the actor, the connect
page's socket left as it was, and a socket on the process that does not own the salon."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing
from quart.typing import TestWebsocketConnectionProtocol as SocketUnderTest

from actors import open_node
from actors.assistant import AssistantOptions
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from config import AssistantPolicy, SendPacing, Settings
from tests.web.conftest import (
    ADMIN_KEY,
    JWT_SECRET,
    WS_PATH,
    WebHarness,
    auth_frame,
    eventually,
    frame,
    frame_named,
    issue_jwt,
    make_web_settings,
    next_frame,
    open_memory_storage,
    peer,
    register,
    until_closed,
)
from tests.web.test_placement import by_owner, two_nodes
from tests.web.test_routes import link
from web import _salon_session as salon_session
from web._app import create_app
from web._salon_events import SalonViewer
from web._salon_session import COOKIE_NAME, encode_session, new_session

CLIENT = "79005550001"
LINKED_PHONE = "79001234567"  # the simulated phone that scans the QR


def ws_path(company_id: int | str) -> str:
    return f"/marketplace/salon/api/{company_id}/ws"


def cookie(company_id: int, **headers: str) -> dict[str, str]:
    """Handshake headers carrying a fresh salon session cookie for ``company_id``."""
    value = encode_session(new_session(company_id), JWT_SECRET)
    return {"Cookie": f"{COOKIE_NAME}={value}", **headers}


@asynccontextmanager
async def assistant_web() -> AsyncIterator[WebHarness]:
    """The app over a node running the assistant (answers at once, no pacing)."""
    settings = replace(
        make_web_settings(assistant=AssistantPolicy(wait=0.05)),
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
    )
    world = SimulatedWorld()
    async with (
        open_memory_storage() as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings, storage, gateway, rng=random.Random(3), assistant=AssistantOptions()
        ) as node,
    ):
        app = create_app(node)
        yield WebHarness(app, app.test_client(), node, settings, world)


async def frames_until(
    ws: SocketUnderTest,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Every frame until ``done`` holds for those read so far."""
    seen: list[dict[str, Any]] = []
    with trio.fail_after(timeout):
        while not done(seen):
            seen.append(await next_frame(ws, timeout))
    return seen


def messages(seen: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """The ``message`` frames' data matching every ``match`` item."""
    return [
        f["data"]
        for f in seen
        if f["event"] == "message" and all(f["data"].get(k) == v for k, v in match.items())
    ]


def conversations(seen: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [
        f["data"]
        for f in seen
        if f["event"] == "conversation" and all(f["data"].get(k) == v for k, v in match.items())
    ]


# ------------------------------------------------------------------- frames of a chat


async def test_a_chat_with_the_assistant_and_the_salon_taking_it_shows_live() -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        async with web.client.websocket(ws_path(cid), headers=cookie(cid)) as ws:
            status = await next_frame(ws)
            assert status == {
                "event": "status",
                "data": {
                    "status": "connected",
                    "connected": True,
                    "phone": LINKED_PHONE,
                    "last_error": None,
                    "connected_at": status["data"]["connected_at"],
                },
            }
            assert isinstance(status["data"]["connected_at"], str)

            # The client asks for a person: their message, the assistant's reply (queued,
            # then sent: the same id) and the chat handed over, all without a reload.
            web.world.send_inbound(cid, CLIENT, "Позовите администратора, пожалуйста")

            def whole_turn(seen: list[dict[str, Any]]) -> bool:
                return bool(
                    messages(seen, direction="in")
                    and messages(seen, direction="out", status="sent")
                    and conversations(seen, mode="handoff")
                )

            seen = await frames_until(ws, whole_turn)
            [inbound] = messages(seen, direction="in")
            assert inbound["phone"] == CLIENT
            assert inbound["text"] == "Позовите администратора, пожалуйста"
            assert (inbound["by"], inbound["status"]) == ("client", "received")
            [queued] = messages(seen, direction="out", status="queued")
            [sent] = messages(seen, direction="out", status="sent")
            assert queued["id"] == sent["id"]
            assert (sent["by"], sent["phone"]) == ("assistant", CLIENT)
            assert sent["text"] == web.world.delivered(cid)[-1].text
            assert isinstance(sent["at"], str)
            [handed] = conversations(seen, mode="handoff")
            assert (handed["phone"], handed["needs_person"]) == (CLIENT, True)

            # The salon gives the chat back (the conversations API): the frame follows.
            back = await web.client.post(
                f"/marketplace/conversations/{cid}/mode",
                json={"phone": CLIENT, "mode": "assistant"},
                headers=company.key_headers,
            )
            assert back.status_code == 200, await back.get_json()
            given = await frame_named(ws, "conversation")
            assert given["data"]["phone"] == CLIENT
            assert (given["data"]["mode"], given["data"]["needs_person"]) == ("assistant", False)


async def test_a_salon_message_is_shown_as_the_salons(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    async with web.client.websocket(ws_path(cid), headers=cookie(cid)) as ws:
        assert (await next_frame(ws))["event"] == "status"
        await web.node.company(cid).ask(m.SendText(CLIENT, "Мы вам перезвоним", by="salon"))
        seen = await frames_until(ws, lambda seen: bool(messages(seen, status="sent")))
        assert [(f["by"], f["status"], f["text"]) for f in messages(seen)] == [
            ("salon", "queued", "Мы вам перезвоним"),
            ("salon", "sent", "Мы вам перезвоним"),
        ]


async def test_whatsapp_dropping_shows_as_a_status_frame(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    async with web.client.websocket(ws_path(cid), headers=cookie(cid)) as ws:
        assert (await next_frame(ws))["data"]["status"] == "connected"
        web.world.go_offline(cid)
        dropped = await frame_named(ws, "status")
        assert dropped["data"]["status"] == "reconnecting"
        assert dropped["data"]["connected"] is False
        assert dropped["data"]["phone"] == LINKED_PHONE
        assert "disconnected" in (dropped["data"]["last_error"] or "")
        web.world.go_online(cid)

        async def back() -> bool:
            return web.world.is_connected(cid)

        await eventually(back)
        assert (await frame_named(ws, "status"))["data"]["status"] == "connected"


async def test_the_connect_page_socket_gets_no_salon_frames(web: WebHarness) -> None:
    """The connect page's protocol is unchanged: a client's message reaches the salon page's
    socket, and the connect page's next frame is still the answer to its own command."""
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    async with (
        web.client.websocket(WS_PATH) as connect,
        web.client.websocket(ws_path(cid), headers=cookie(cid)) as salon,
    ):
        await connect.send(auth_frame(company.token))
        assert (await next_frame(connect))["event"] == "status"
        assert (await next_frame(salon))["event"] == "status"
        web.world.send_inbound(cid, CLIENT, "Здравствуйте")
        assert (await frame_named(salon, "message"))["data"]["text"] == "Здравствуйте"
        await connect.send(frame("request-qr"))
        refused = await next_frame(connect)
        assert refused["event"] == "error"
        assert refused["data"]["code"] == "already_linked"


# ------------------------------------------------------------------- who may connect


async def test_every_credential_of_the_salon_is_accepted(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    jwt = await issue_jwt(web, company)
    handshakes: list[tuple[dict[str, str], str | None]] = [
        (cookie(cid), None),
        (company.key_headers, None),
        ({"X-API-Key": ADMIN_KEY}, None),
        ({"Authorization": f"Bearer {jwt}"}, None),
        ({}, auth_frame(company.token)),
        ({}, auth_frame(jwt)),
    ]
    for index, (headers, first) in enumerate(handshakes):
        async with web.client.websocket(
            ws_path(cid), headers=headers, scope_base=peer(f"10.1.0.{index}")
        ) as ws:
            if first is not None:
                await ws.send(first)
            status = await next_frame(ws)
            assert status["event"] == "status", (index, status)
            assert status["data"]["status"] == "disconnected"


async def test_another_salons_cookie_key_or_token_is_forbidden_4403(web: WebHarness) -> None:
    mine = await register(web)
    other = await register(web)
    jwt = await issue_jwt(web, other)
    handshakes: list[tuple[dict[str, str], str | None]] = [
        (cookie(other.company_id), None),
        (other.key_headers, None),
        ({"Authorization": f"Bearer {jwt}"}, None),
        ({}, auth_frame(other.token)),
    ]
    for index, (headers, first) in enumerate(handshakes):
        async with web.client.websocket(
            ws_path(mine.company_id), headers=headers, scope_base=peer(f"10.2.0.{index}")
        ) as ws:
            if first is not None:
                await ws.send(first)
            frames, code = await until_closed(ws)
        assert code == 4403, index
        assert [f["data"]["code"] for f in frames] == ["forbidden"], index


@pytest.mark.parametrize(
    ("headers", "first", "error"),
    [
        ({"Cookie": f"{COOKIE_NAME}=forged.value"}, None, "salon_session_expired"),
        ({"X-API-Key": "sk_not_a_key_of_anyone_0123456789"}, None, "invalid_token"),
        ({}, auth_frame("not-a-valid-token-0123456789"), "invalid_token"),
        ({}, "not json", "invalid_token"),
    ],
    ids=["forged-cookie", "unknown-key", "unknown-token", "not-json"],
)
async def test_no_valid_credential_closes_4401(
    web: WebHarness, headers: dict[str, str], first: str | None, error: str
) -> None:
    company = await register(web)
    async with web.client.websocket(ws_path(company.company_id), headers=headers) as ws:
        if first is not None:
            await ws.send(first)
        frames, code = await until_closed(ws)
    assert code == 4401
    assert [f["data"]["code"] for f in frames] == [error]


async def test_no_auth_frame_within_5_s_closes_4401(
    web: WebHarness, autojump_clock: trio.testing.MockClock
) -> None:
    company = await register(web)
    async with web.client.websocket(ws_path(company.company_id)) as ws:
        started = trio.current_time()
        frames, code = await until_closed(ws, timeout=60)
        waited = trio.current_time() - started
    assert (code, [f["data"]["code"] for f in frames]) == (4401, ["invalid_token"])
    assert 5.0 <= waited < 6.0


@pytest.mark.parametrize("path_id", ["0", "abc", "2147483648", "999999"])
async def test_no_such_salon_closes_4404(web: WebHarness, path_id: str) -> None:
    async with web.client.websocket(ws_path(path_id), headers={"X-API-Key": ADMIN_KEY}) as ws:
        frames, code = await until_closed(ws)
    assert (code, [f["data"]["code"] for f in frames]) == (4404, ["company_not_found"])


async def test_a_cookie_from_another_site_is_refused(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    headers = cookie(cid, Origin="https://evil.example")
    async with web.client.websocket(ws_path(cid), headers=headers) as ws:
        frames, code = await until_closed(ws)
    assert code == 4401
    assert [f["data"]["code"] for f in frames] == ["salon_session_expired"]


async def test_connections_count_against_the_per_ip_limit(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    for _ in range(web.settings.ws_rate_limit.limit):
        async with web.client.websocket(
            ws_path(cid), headers=cookie(cid), scope_base=peer("10.3.0.1")
        ) as ws:
            assert (await next_frame(ws))["event"] == "status"
    async with web.client.websocket(
        ws_path(cid), headers=cookie(cid), scope_base=peer("10.3.0.1")
    ) as ws:
        frames, code = await until_closed(ws)
    assert (code, [f["data"]["code"] for f in frames]) == (4029, ["rate_limited"])


async def test_the_address_over_plain_http_checks_credentials_then_asks_for_an_upgrade(
    web: WebHarness,
) -> None:
    mine = await register(web)
    other = await register(web)
    path = ws_path(mine.company_id)
    anonymous = await web.client.get(path)
    assert anonymous.status_code == 401
    foreign = await web.client.get(path, headers=cookie(other.company_id))
    assert foreign.status_code == 403
    assert (await foreign.get_json())["error"]["code"] == "forbidden"
    own = await web.client.get(path, headers=cookie(mine.company_id))
    assert own.status_code == 426
    assert (await own.get_json())["error"]["code"] == "upgrade_required"
    assert own.headers["Upgrade"] == "websocket"


# ------------------------------------------------------------- revocation and expiry


async def test_a_new_connect_url_closes_token_sockets_but_not_the_cookies(
    web: WebHarness,
) -> None:
    company = await register(web)
    cid = company.company_id
    async with (
        web.client.websocket(ws_path(cid), headers=cookie(cid)) as by_cookie,
        web.client.websocket(ws_path(cid), scope_base=peer("10.4.0.2")) as by_token,
    ):
        await by_token.send(auth_frame(company.token))
        assert (await next_frame(by_cookie))["event"] == "status"
        assert (await next_frame(by_token))["event"] == "status"
        reissued = await web.client.post(
            "/marketplace/connect-url", json={"company_id": cid}, headers=web.admin
        )
        assert reissued.status_code == 200
        frames, code = await until_closed(by_token)
        assert (code, [f["data"]["code"] for f in frames]) == (4401, ["invalid_token"])
        # The cookie's socket still follows the salon.
        await web.node.company(cid).ask(m.RequestQr())
        assert (await frame_named(by_cookie, "status"))["data"]["status"] == "linking"


async def test_uninstalling_closes_the_cookies_socket(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    async with web.client.websocket(ws_path(cid), headers=cookie(cid)) as ws:
        assert (await next_frame(ws))["event"] == "status"
        await web.node.company(cid).ask(m.Uninstall())
        frames, code = await until_closed(ws)
    assert code == 4401
    assert [(f["event"], f["data"].get("status") or f["data"].get("code")) for f in frames] == [
        ("status", "uninstalled"),
        ("error", "uninstalled"),
    ]


async def test_the_cookie_socket_ends_at_the_sessions_absolute_expiry(
    web: WebHarness, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await register(web)
    cid = company.company_id
    now = 1_800_000_000.0
    monkeypatch.setattr(salon_session, "clock", lambda: now)
    opened = now - salon_session.ABSOLUTE_TTL + 90  # 90 s of its 12 h left
    session = salon_session.SalonSession(cid, "sess-0123456789", int(now) - 60, int(opened))
    value = encode_session(session, JWT_SECRET)
    headers = {"Cookie": f"{COOKIE_NAME}={value}"}
    async with web.client.websocket(ws_path(cid), headers=headers) as ws:
        assert (await next_frame(ws))["event"] == "status"
        started = trio.current_time()
        frames, code = await until_closed(ws, timeout=600)
        lasted = trio.current_time() - started
    assert (code, [f["data"]["code"] for f in frames]) == (4401, ["salon_session_expired"])
    assert 89.0 <= lasted <= 91.0


# ----------------------------------------------------------------------- a slow viewer


async def test_a_slow_viewer_is_dropped_without_holding_the_actor(web: WebHarness) -> None:
    """A salon viewer that stops reading is dropped when its queue is full; the actor goes
    on recording messages and serving the others."""
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    ref = web.node.company(cid)
    slow, steady = SalonViewer(size=3), SalonViewer(size=100)
    await ref.ask(m.Subscribe(slow, m.SALON_EVENTS))
    await ref.ask(m.Subscribe(steady, m.SALON_EVENTS))
    view = await ref.ask(m.GetStatus())
    assert view.viewers == 2
    for number in range(10):
        web.world.send_inbound(cid, CLIENT, f"сообщение {number}")

    async def all_recorded() -> bool:
        texts: list[str] = []
        while True:
            try:
                got = steady.receive.receive_nowait()
            except trio.WouldBlock:
                break
            if got["event"] == "message":
                texts.append(got["data"]["text"])
        received.extend(texts)
        return len(received) == 10

    received: list[str] = []
    await eventually(all_recorded)
    assert received == [f"сообщение {number}" for number in range(10)]
    assert slow.dropped
    with trio.fail_after(1.0):
        view = await ref.ask(m.GetStatus())
    assert view.viewers == 1


# ----------------------------------------------------------------- two processes


async def test_a_socket_on_the_process_not_owning_the_salon(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """Frames of the owner's actor reach a salon socket in the other process, and a mode
    set through that other process's API reaches both processes' salon sockets."""
    async with two_nodes(settings, database_url, redis_prefix) as (first, second):
        company = await register(first)
        cid = company.company_id
        a, b = by_owner(cid, first, second)
        await a.node.company(cid).ask(m.RequestQr())
        a.world.scan(cid)

        async def connected() -> bool:
            return a.world.is_connected(cid)

        await eventually(connected)
        async with (
            a.client.websocket(ws_path(cid), headers=cookie(cid)) as local,
            b.client.websocket(ws_path(cid), headers=cookie(cid)) as remote,
            b.client.websocket(WS_PATH) as connect,
        ):
            assert (await frame_named(local, "status"))["data"]["connected"] is True
            status = await next_frame(remote)
            assert status["event"] == "status"
            assert status["data"]["connected"] is True
            await connect.send(auth_frame(company.token))
            assert (await next_frame(connect))["event"] == "status"
            assert b.node.registry.lookup(cid) is None

            a.world.send_inbound(cid, CLIENT, "Добрый день")
            got = await frame_named(remote, "message")
            assert (got["data"]["text"], got["data"]["direction"]) == ("Добрый день", "in")

            taken = await b.client.post(
                f"/marketplace/conversations/{cid}/mode",
                json={"phone": CLIENT, "mode": "handoff"},
                headers=company.key_headers,
            )
            assert taken.status_code == 200, await taken.get_json()
            for ws in (local, remote):
                changed = await frame_named(ws, "conversation")
                assert (changed["data"]["phone"], changed["data"]["mode"]) == (CLIENT, "handoff")
            # The connect page's remote socket skipped the salon frames.
            await connect.send(frame("request-qr"))
            refused = await next_frame(connect)
            assert (refused["event"], refused["data"]["code"]) == ("error", "already_linked")

            # A new connect URL issued in A closes a token socket in B; the cookie's stays.
            async with b.client.websocket(ws_path(cid), scope_base=peer("10.5.0.9")) as by_token:
                await by_token.send(auth_frame(company.token))
                assert (await next_frame(by_token))["event"] == "status"
                reissued = await a.client.post(
                    "/marketplace/connect-url", json={"company_id": cid}, headers=a.admin
                )
                assert reissued.status_code == 200
                frames, code = await until_closed(by_token)
                assert (code, [f["data"]["code"] for f in frames]) == (4401, ["invalid_token"])
            a.world.go_offline(cid)
            for ws in (local, remote):
                assert (await frame_named(ws, "status"))["data"]["status"] == "reconnecting"
