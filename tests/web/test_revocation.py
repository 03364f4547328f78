"""Revocation reaches live sessions.

Re-issuing a salon's connect URL (``POST /marketplace/connect-url``) or uninstalling the app
closes that company's open connect-page WebSockets with 4001 — at once in the process that
revoked, and in the other process of a cluster through ``company:{id}:events`` — and company
JWTs, which carry the credentials version, are refused afterwards. Other companies' sockets
and credentials are untouched.
"""

from __future__ import annotations

from typing import Any

import trio
from quart.typing import TestWebsocketConnectionProtocol as Socket

from actors.company import messages as m
from config import Settings

from .conftest import (
    WS_PATH,
    WebHarness,
    auth_frame,
    frame,
    frame_named,
    issue_jwt,
    next_frame,
    register,
    until_closed,
)
from .test_placement import by_owner, two_nodes


async def reissue(web: WebHarness, company_id: int) -> str:
    response = await web.client.post(
        "/marketplace/connect-url", json={"company_id": company_id}, headers=web.admin
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    url = (await response.get_json())["connect_url"]
    assert isinstance(url, str)
    return url.split("token=", 1)[1].split("&", 1)[0]


async def status_with(web: WebHarness, company_id: int, headers: dict[str, str]) -> int:
    response = await web.client.get(f"/marketplace/status/{company_id}", headers=headers)
    return response.status_code


async def authenticated(ws: Socket, token: str) -> dict[str, Any]:
    await ws.send(auth_frame(token))
    status = await next_frame(ws)
    assert status["event"] == "status", status
    return status


def assert_revoked(frames: list[dict[str, Any]], code: int, error: str = "invalid_token") -> None:
    assert code == 4001, (code, frames)
    assert frames, "the socket closed without saying why"
    assert frames[-1]["event"] == "error", frames
    assert frames[-1]["data"]["code"] == error, frames
    # nothing of the salon's linking after the revocation
    assert "qr-update" not in [f["event"] for f in frames[frames.index(frames[-1]) :]]


async def test_reissuing_the_connect_url_closes_open_sockets_4001(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    other = await register(web)
    jwt = await issue_jwt(web, company)
    async with (
        web.client.websocket(WS_PATH) as by_token,
        web.client.websocket(WS_PATH) as by_jwt,
        web.client.websocket(WS_PATH) as bystander,
    ):
        await authenticated(by_token, company.token)
        await authenticated(by_jwt, jwt)
        await authenticated(bystander, other.token)
        await by_token.send(frame("request-qr"))
        await frame_named(by_token, "qr-update")
        new_token = await reissue(web, company.company_id)
        for ws in (by_token, by_jwt):
            frames, code = await until_closed(ws)
            assert_revoked(frames, code)
        # Another company's socket goes on being served.
        await bystander.send(frame("request-qr"))
        assert (await frame_named(bystander, "qr-update"))["data"]["qr"]
    # The new link works; a socket with the old one is refused at once.
    async with web.client.websocket(WS_PATH) as fresh:
        status = await authenticated(fresh, new_token)
        assert status["data"]["companyId"] == company.company_id
    async with web.client.websocket(WS_PATH) as stale:
        await stale.send(auth_frame(company.token))
        frames, code = await until_closed(stale)
        assert_revoked(frames, code)


async def test_a_jwt_is_refused_after_reissue_and_a_new_one_works(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    other = await register(web)
    jwt = await issue_jwt(web, company)
    other_jwt = await issue_jwt(web, other)
    bearer = {"Authorization": f"Bearer {jwt}"}
    assert await status_with(web, company.company_id, bearer) == 200
    await reissue(web, company.company_id)
    assert await status_with(web, company.company_id, bearer) == 401
    qr = await web.client.get(f"/marketplace/qr/{jwt}")
    assert qr.status_code == 401
    page = await web.client.get(f"/marketplace/connect?token={jwt}")
    assert page.status_code == 410
    fresh = await issue_jwt(web, company)
    assert await status_with(web, company.company_id, {"Authorization": f"Bearer {fresh}"}) == 200
    # The other company's JWT is untouched.
    assert await status_with(web, other.company_id, {"Authorization": f"Bearer {other_jwt}"}) == 200


async def test_uninstall_refuses_jwts_and_closes_sockets_4001(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    jwt = await issue_jwt(web, company)
    bearer = {"Authorization": f"Bearer {jwt}"}
    assert await status_with(web, company.company_id, bearer) == 200
    async with web.client.websocket(WS_PATH) as ws:
        await authenticated(ws, company.token)
        await ws.send(frame("request-qr"))
        await frame_named(ws, "qr-update")
        # What the lifecycle worker does with YClients' ``uninstall``.
        result = await web.node.company(company.company_id).ask(m.Uninstall())
        assert result.ok
        frames, code = await until_closed(ws)
    assert_revoked(frames, code, error="uninstalled")
    statuses = [f["data"].get("status") for f in frames if f["event"] == "status"]
    assert statuses[-1] == "uninstalled"
    assert await status_with(web, company.company_id, bearer) == 401
    stored = await web.storage.companies.get(company.company_id)
    assert stored is not None and stored.credentials_version >= 1


async def test_revocation_reaches_sockets_in_the_other_process(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """Node A owns the actor and serves a local socket; node B serves a remote viewer of the
    same company (through A). Re-issued through B, A's local socket closes too (pub/sub);
    re-issued through A, B's remote viewer closes."""
    async with two_nodes(settings, database_url, redis_prefix) as (first, second):
        company = await register(first)
        a, b = by_owner(company.company_id, first, second)
        async with a.client.websocket(WS_PATH) as on_a:
            await authenticated(on_a, company.token)
            assert await a.storage.leases.holder(company.company_id) == a.node.node_id
            async with b.client.websocket(WS_PATH) as on_b:
                await authenticated(on_b, company.token)
                await reissue(b, company.company_id)
                frames_b, code_b = await until_closed(on_b)
                assert_revoked(frames_b, code_b)
            frames_a, code_a = await until_closed(on_a)
            assert_revoked(frames_a, code_a)
        # And the other way round: revoked in A (the owner), B's remote viewer closes.
        token = await reissue(a, company.company_id)
        async with (
            a.client.websocket(WS_PATH) as on_a,
            b.client.websocket(WS_PATH) as on_b,
        ):
            await authenticated(on_a, token)
            await authenticated(on_b, token)
            await reissue(a, company.company_id)
            with trio.fail_after(10):
                for ws in (on_b, on_a):
                    frames, code = await until_closed(ws)
                    assert_revoked(frames, code)
