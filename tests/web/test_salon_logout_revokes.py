"""Logging out of the salon page ends that session everywhere (issue 16): a copy of its cookie
taken before the logout is refused after it — on the page, on a salon API route and on the
live socket (401 / 4401 ``salon_session_expired``) — the session's open sockets close, the
salon's other sessions go on, it holds across two processes sharing PostgreSQL and Redis,
and the revocation record lives only until the cookie's absolute expiry could pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client
from quart.typing import TestWebsocketConnectionProtocol as SocketUnderTest

import web._salon_session as salon_session
from actors.company import messages as m
from config import Settings
from storage import Storage
from storage._salon_sessions import revoked_key
from tests.web.conftest import (
    JWT_SECRET,
    WebHarness,
    frame_named,
    next_frame,
    open_memory_storage,
    open_web,
    peer,
    register,
    until_closed,
)
from tests.web.test_placement import by_owner, two_nodes
from web._salon_revocation import session_sockets
from web._salon_session import ABSOLUTE_TTL, CLOCK_SKEW, COOKIE_NAME, csrf_token, decode_session

PAGE = "/marketplace/salon"
START = 1_900_000_000.0
HOUR = 3600.0


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
async def web(settings: Settings, clock: FakeClock) -> AsyncIterator[WebHarness]:
    """The app on in-memory storage, under the fake session clock."""
    async with open_memory_storage() as storage, open_web(settings, storage) as harness:
        yield harness


# --------------------------------------------------------------------- helpers


def bare(web: WebHarness) -> Client:
    """A client without a cookie jar: the cookie each request sends is explicit."""
    return web.app.test_client(use_cookies=False)


def with_cookie(value: str, **extra: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={value}", **extra}


def session_id(value: str) -> str:
    session = decode_session(value, JWT_SECRET)
    assert session is not None
    return session.session_id


async def sign_in(web: WebHarness, token: str) -> str:
    """``POST /marketplace/salon/session`` with a connect token: the new cookie's value."""
    response = await bare(web).post(f"{PAGE}/session", json={"token": token})
    assert response.status_code == 200, await response.get_json()
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{COOKIE_NAME}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError("no session cookie was set")


async def log_out(web: WebHarness, value: str) -> None:
    """``POST /marketplace/salon/logout`` with the cookie and its CSRF token; asserts 200."""
    token = csrf_token(session_id(value), JWT_SECRET)
    response = await bare(web).post(
        f"{PAGE}/logout", headers=with_cookie(value, **{"X-CSRF-Token": token})
    )
    assert response.status_code == 200, await response.get_json()


async def page_status(web: WebHarness, value: str) -> int:
    return (await bare(web).get(PAGE, headers=with_cookie(value))).status_code


async def api_answer(web: WebHarness, company_id: int, value: str) -> tuple[int, Any]:
    """A salon API route (the overview) asked with the cookie: status and JSON body."""
    response = await bare(web).get(f"{PAGE}/api/{company_id}/overview", headers=with_cookie(value))
    return response.status_code, await response.get_json()


def ws_path(company_id: int) -> str:
    return f"{PAGE}/api/{company_id}/ws"


def expired_code(body: Any) -> str:
    return str(body["error"]["code"])


async def closed_as_expired(ws: SocketUnderTest) -> None:
    """The socket ends with an ``error`` frame ``salon_session_expired`` and 4401."""
    frames, code = await until_closed(ws)
    assert code == 4401
    assert [f["data"]["code"] for f in frames if f["event"] == "error"] == ["salon_session_expired"]


async def refused_socket(web: WebHarness, company_id: int, value: str, ip: str) -> None:
    """A new socket with the cookie is refused: 4401 ``salon_session_expired``."""
    async with web.client.websocket(
        ws_path(company_id), headers=with_cookie(value), scope_base=peer(ip)
    ) as ws:
        await closed_as_expired(ws)


async def still_live(web: WebHarness, company_id: int, *sockets: SocketUnderTest) -> None:
    """Every socket still follows the salon: a status change reaches it."""
    await web.node.company(company_id).ask(m.RequestQr())
    for ws in sockets:
        assert (await frame_named(ws, "status"))["data"]["status"] == "linking"


def ttl_left(storage: Storage, sid: str) -> float | None:
    """Seconds the in-memory revocation record of ``sid`` has left."""
    assert storage.memory_kv is not None
    return storage.memory_kv.ttl(revoked_key(storage.memory_kv.prefix, sid))


# ------------------------------------------------------------------ one process


async def test_a_copy_of_the_cookie_is_refused_after_logout(web: WebHarness) -> None:
    salon = await register(web)
    cid = salon.company_id
    value = await sign_in(web, salon.token)
    copy = value  # what another tab, a proxy log or a stolen jar would still hold
    assert await page_status(web, copy) == 200
    assert (await api_answer(web, cid, copy))[0] == 200

    await log_out(web, value)

    refused = await bare(web).get(PAGE, headers=with_cookie(copy))
    assert refused.status_code == 401
    cleared = [h for h in refused.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert len(cleared) == 1 and "Max-Age=0" in cleared[0]  # and it is told to forget it
    status, body = await api_answer(web, cid, copy)
    assert (status, expired_code(body)) == (401, "salon_session_expired")
    # A state-changing route with the copy and its (still well-formed) CSRF token: 401 too.
    token = csrf_token(session_id(copy), JWT_SECRET)
    taken = await bare(web).post(
        f"{PAGE}/api/{cid}/conversations/79005550001/takeover",
        headers=with_cookie(copy, **{"X-CSRF-Token": token}),
        json={},
    )
    assert taken.status_code == 401
    assert expired_code(await taken.get_json()) == "salon_session_expired"
    # Logging out again with the copy is refused as well: the session is over.
    again = await bare(web).post(
        f"{PAGE}/logout", headers=with_cookie(copy, **{"X-CSRF-Token": token})
    )
    assert again.status_code == 401
    await refused_socket(web, cid, copy, "10.7.0.1")


async def test_logout_closes_the_sessions_live_socket_and_no_other(web: WebHarness) -> None:
    salon = await register(web)
    cid = salon.company_id
    mine = await sign_in(web, salon.token)
    other = await sign_in(web, salon.token)  # the same salon in another browser
    assert session_id(mine) != session_id(other)
    async with (
        web.client.websocket(
            ws_path(cid), headers=with_cookie(mine), scope_base=peer("10.7.1.1")
        ) as my_socket,
        web.client.websocket(
            ws_path(cid), headers=with_cookie(other), scope_base=peer("10.7.1.2")
        ) as other_socket,
    ):
        assert (await next_frame(my_socket))["event"] == "status"
        assert (await next_frame(other_socket))["event"] == "status"
        assert session_sockets(web.app).count(session_id(mine)) == 1

        await log_out(web, mine)

        await closed_as_expired(my_socket)
        assert session_sockets(web.app).count(session_id(mine)) == 0
        # The other session: its socket, page and API go on.
        await still_live(web, cid, other_socket)
        assert await page_status(web, other) == 200
        assert (await api_answer(web, cid, other))[0] == 200
    assert await page_status(web, mine) == 401


async def test_the_revocation_lasts_until_the_cookies_absolute_expiry(
    web: WebHarness, clock: FakeClock
) -> None:
    salon = await register(web)
    value = await sign_in(web, salon.token)  # opened at START
    clock.advance(1 * HOUR)
    await log_out(web, value)
    left = ttl_left(web.storage, session_id(value))
    assert left is not None
    expected = ABSOLUTE_TTL - 1 * HOUR + CLOCK_SKEW  # 11 h, plus the nodes' clock skew
    assert expected - 5 <= left <= expected
    # No other key was left behind for the session (nor for another one).
    assert ttl_left(web.storage, session_id(await sign_in(web, salon.token))) is None


# --------------------------------------------------------------- two processes


async def test_logout_in_one_process_holds_in_the_other(
    settings: Settings, database_url: str, redis_prefix: str, clock: FakeClock
) -> None:
    """Two nodes over one PostgreSQL and one Redis: a logout through either refuses the
    cookie's copy in both and closes that session's sockets in both (on the salon's owner
    and on the other node); a third session of the salon keeps its sockets."""
    async with two_nodes(settings, database_url, redis_prefix) as (first, second):
        salon = await register(first)
        cid = salon.company_id
        owner, other = by_owner(cid, first, second)
        sessions = [await sign_in(first, salon.token) for _ in range(3)]
        through_other, through_owner, staying = sessions
        for value in sessions:
            assert await page_status(other, value) == 200
            assert await page_status(owner, value) == 200

        def socket(web: WebHarness, value: str, ip: str) -> Any:
            """The salon socket with the cookie ``value`` in ``web``'s process."""
            return web.client.websocket(
                ws_path(cid), headers=with_cookie(value), scope_base=peer(ip)
            )

        async with (
            socket(owner, through_other, "10.8.0.1") as a1,
            socket(other, through_other, "10.8.0.2") as b1,
            socket(owner, through_owner, "10.8.0.3") as a2,
            socket(other, through_owner, "10.8.0.4") as b2,
            socket(owner, staying, "10.8.0.5") as a3,
            socket(other, staying, "10.8.0.6") as b3,
        ):
            for ws in (a1, b1, a2, b2, a3, b3):
                assert (await frame_named(ws, "status"))["event"] == "status"

            clock.advance(1 * HOUR)  # within the idle limit (2 h)
            # Logged out through the node that does not run the salon's actor: the owner's
            # socket (a local viewer there) closes through Redis, the other one at once.
            await log_out(other, through_other)
            await closed_as_expired(a1)
            await closed_as_expired(b1)
            # And through the owner: the other node's socket (a remote viewer) closes too.
            await log_out(owner, through_owner)
            await closed_as_expired(b2)
            await closed_as_expired(a2)

            for web in (owner, other):
                for value in (through_other, through_owner):
                    assert await page_status(web, value) == 401
                    status, body = await api_answer(web, cid, value)
                    assert (status, expired_code(body)) == (401, "salon_session_expired")
            await refused_socket(other, cid, through_owner, "10.8.1.1")
            await refused_socket(owner, cid, through_other, "10.8.1.2")

            # The third session goes on in both processes.
            await still_live(owner, cid, a3, b3)
            assert await page_status(other, staying) == 200
            assert (await api_answer(owner, cid, staying))[0] == 200

        # The record is one Redis key under the node's prefix, with the TTL of the cookie's
        # remaining absolute life (11 h) plus the clock skew.
        redis = first.storage.redis
        assert redis is not None
        key = revoked_key(redis.prefix, session_id(through_other))
        assert key.startswith(redis_prefix)
        left_ms = await redis.client.pttl(key)
        expected_ms = (ABSOLUTE_TTL - 1 * HOUR + CLOCK_SKEW) * 1000
        assert expected_ms - 10_000 <= left_ms <= expected_ms
