"""Fail fast when storage hangs (issue 12, item 8): the real server on a real socket, with
PostgreSQL or Redis behind a TCP proxy that accepts and forwards nothing (a black hole).

API requests answer 503 with ``Retry-After`` within the request/storage timeouts (1–1.5 s
here), the first WebSocket frame comes as quickly, ``/health/ready`` names exactly the part
that hangs, and everything serves again once the backend answers. Real clock (real sockets);
every wait is bounded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from config import RateLimit, Settings
from tests.support.databases import REDIS_URL, with_port
from tests.support.proxy import TcpProxy, open_tcp_proxy
from tests.web.conftest import WebHarness, make_web_settings, register
from tests.web.test_server import Running, free_port, ready_after_restore, running_server

STORAGE_TIMEOUT = 1.0
REQUEST_TIMEOUT = 1.5
# What a caller may wait at most while a backend hangs: the longer timeout plus slack for a
# loaded machine (the old code took 41 s).
FAIL_FAST = REQUEST_TIMEOUT + 2.0
RECOVERY = 20.0


def hang_settings(database_url: str, redis_url: str, redis_prefix: str) -> Settings:
    return make_web_settings(
        host="127.0.0.1",
        port=free_port(),
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        storage_timeout=STORAGE_TIMEOUT,
        request_timeout=REQUEST_TIMEOUT,
        api_rate_limit=RateLimit(10_000, 60.0),  # the recovery loop polls
        ws_rate_limit=RateLimit(10_000, 60.0),
    )


@dataclass
class Stand:
    server: Running
    http: httpx.AsyncClient
    proxy: TcpProxy
    company_id: int
    api_key: str
    token: str

    @property
    def ws_url(self) -> str:
        return self.server.base.replace("http://", "ws://") + "/marketplace/ws"


@asynccontextmanager
async def open_stand(
    target: str, database_url: str, redis_prefix: str, salon_id: int
) -> AsyncIterator[Stand]:
    """A server whose ``target`` ("database" or "redis") is reached through a proxy."""
    real = urlsplit(database_url if target == "database" else REDIS_URL)
    async with open_tcp_proxy(real.hostname or "127.0.0.1", real.port or 0) as proxy:
        if target == "database":
            settings = hang_settings(with_port(database_url, proxy.port), REDIS_URL, redis_prefix)
        else:
            proxied = f"redis://127.0.0.1:{proxy.port}/0"
            settings = hang_settings(database_url, proxied, redis_prefix)
        async with (
            running_server(settings) as server,
            httpx.AsyncClient(base_url=server.base, timeout=30.0) as http,
        ):
            registered = await http.post(
                "/marketplace/register", json={"salon_id": salon_id}, headers=server.admin
            )
            assert registered.status_code == 201, registered.text
            body = registered.json()
            token = httpx.URL(body["connect_url"]).params["token"]
            # The start-up restore runs in the background once the port is open (``restoring``
            # until it is over): each test starts from a ready server.
            await ready_after_restore(http)
            try:
                yield Stand(server, http, proxy, body["company_id"], body["api_key"], token)
            finally:
                proxy.allow()  # let the shutdown close its connections normally


async def timed(stand: Stand, path: str, **headers: str) -> tuple[httpx.Response, float]:
    started = trio.current_time()
    with trio.fail_after(FAIL_FAST + 5):
        response = await stand.http.get(path, headers=headers)
    return response, trio.current_time() - started


async def first_ws_frame(stand: Stand) -> tuple[dict[str, Any], float]:
    """Open the connect page's socket, authenticate, and read the first frame (timed)."""
    started = trio.current_time()
    with trio.fail_after(FAIL_FAST + 5):
        async with open_websocket_url(stand.ws_url) as ws:
            await ws.send_message(json.dumps({"event": "auth", "data": {"token": stand.token}}))
            frame = json.loads(await ws.get_message())
            elapsed = trio.current_time() - started
            if frame["event"] == "error":
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
    return frame, elapsed


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] in ("storage_unavailable", "request_timeout")
    assert "Traceback" not in response.text and "asyncpg" not in response.text
    assert elapsed < FAIL_FAST, f"took {elapsed:.1f}s"


async def assert_ready_names(stand: Stand, failing: list[str]) -> None:
    response, elapsed = await timed(stand, "/health/ready")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    body = response.json()
    assert body["failing"] == failing, body
    for name in ("database", "redis"):
        assert body["checks"][name]["ok"] is (name not in failing), body
    assert elapsed < FAIL_FAST, f"took {elapsed:.1f}s"


async def recovers(stand: Stand) -> None:
    """Status and readiness answer 200 again, within a bound, once traffic passes."""
    with trio.fail_after(RECOVERY):
        while True:
            status = await stand.http.get(
                f"/marketplace/status/{stand.company_id}", headers={"X-API-Key": stand.api_key}
            )
            ready = await stand.http.get("/health/ready")
            if status.status_code == 200 and ready.status_code == 200:
                break
            assert status.status_code in (200, 503), status.text
            await trio.sleep(0.2)
    frame, _ = await first_ws_frame(stand)
    assert frame["event"] == "status", frame


async def test_hung_postgres_fails_fast_names_the_database_and_recovers(
    database_url: str, redis_prefix: str
) -> None:
    async with open_stand("database", database_url, redis_prefix, 780_001) as stand:
        assert (await stand.http.get("/health/ready")).status_code == 200
        stand.proxy.black_hole()

        status, elapsed = await timed(
            stand, f"/marketplace/status/{stand.company_id}", **{"X-API-Key": stand.api_key}
        )
        assert_unavailable(status, elapsed)
        # Again, now that the pool's connections are all stuck in the black hole.
        status, elapsed = await timed(
            stand, f"/marketplace/status/{stand.company_id}", **{"X-API-Key": stand.api_key}
        )
        assert_unavailable(status, elapsed)
        await assert_ready_names(stand, ["database"])

        frame, elapsed = await first_ws_frame(stand)
        assert frame["event"] == "error" and frame["data"]["code"] == "unavailable", frame
        assert elapsed < FAIL_FAST, f"first frame after {elapsed:.1f}s"

        stand.proxy.allow()  # cuts the black-holed connections: the pool must replace them
        await recovers(stand)


async def test_hung_redis_fails_fast_names_redis_and_recovers(
    database_url: str, redis_prefix: str
) -> None:
    async with open_stand("redis", database_url, redis_prefix, 780_002) as stand:
        assert (await stand.http.get("/health/ready")).status_code == 200
        stand.proxy.black_hole()

        status, elapsed = await timed(
            stand, f"/marketplace/status/{stand.company_id}", **{"X-API-Key": stand.api_key}
        )
        assert_unavailable(status, elapsed)
        await assert_ready_names(stand, ["redis"])

        frame, elapsed = await first_ws_frame(stand)
        assert frame["event"] == "error" and frame["data"]["code"] == "unavailable", frame
        assert elapsed < FAIL_FAST, f"first frame after {elapsed:.1f}s"

        stand.proxy.allow()
        await recovers(stand)


# -- the request deadline on its own, in process (mock clock) -------------------------------


@pytest.fixture
def settings() -> Settings:
    """For the in-process tests below (the ``web`` fixture): a 2 s request deadline."""
    return make_web_settings(request_timeout=2.0)


async def test_request_deadline_answers_503_whatever_the_request_waits_for(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    company = await register(web)

    async def hang(*args: object, **kwargs: object) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(web.storage.companies, "find_by_api_key", hang)
    started = trio.current_time()
    with trio.fail_after(10):  # the mock clock jumps: no real wait
        response = await web.client.get(
            f"/marketplace/status/{company.company_id}", headers=company.key_headers
        )
    assert trio.current_time() - started == pytest.approx(2.0, abs=0.01)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = await response.get_json()
    assert body["error"]["code"] == "request_timeout"
    assert "X-Request-Id" in response.headers  # the after-request hooks still ran

    # The next request is not affected by the last one's deadline.
    monkeypatch.undo()
    ok = await web.client.get(
        f"/marketplace/status/{company.company_id}", headers=company.key_headers
    )
    assert ok.status_code == 200


async def test_request_deadline_covers_the_before_request_hooks(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    async def hang(*args: object, **kwargs: object) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(web.storage.rate_limiter, "hit", hang)  # the API rate limit hook
    with trio.fail_after(10):
        response = await web.client.get("/marketplace/companies", headers=web.admin)
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "request_timeout"
