"""``GET /marketplace/qr/{token}``: a read with no side effect, serving only a code that the
company actor's live incarnation showed.

The bug this guards against: after ``kill -9`` during linking and a restart, the route served
the dead process's QR code from Redis while the new actor was ``pending`` (the session behind
that code was gone, so scanning it could never link), and a route that found no code started
a linking round itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from actors.company import messages as m
from tests.support.databases import REDIS_URL, open_real_storage

from .conftest import WebHarness, eventually, register

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "adm_qr_cache_test_key_0123456789"
START_TIMEOUT = 30.0


async def qr_of(web: WebHarness, token: str) -> tuple[int, dict[str, Any]]:
    response = await web.client.get(f"/marketplace/qr/{token}")
    body = await response.get_json()
    assert isinstance(body, dict)
    return response.status_code, body


async def test_reading_the_qr_never_starts_linking(any_web: WebHarness) -> None:
    """No round runs: a clear 409, and still no WhatsApp session, status ``pending``."""
    web = any_web
    company = await register(web)
    for _ in range(3):  # polling changes nothing either
        status, body = await qr_of(web, company.token)
        assert status == 409, body
        assert body["error"]["code"] == "no_qr"
    assert web.world.live_qr(company.company_id) is None
    stored = await web.storage.companies.get(company.company_id)
    assert stored is not None and stored.integration_status == "pending"
    view = await web.node.company(company.company_id).ask(m.GetStatus())
    assert view.session == "idle"


async def test_the_live_rounds_code_is_served(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await web.node.company(cid).ask(m.RequestQr())  # what the WebSocket's request-qr sends

    async def shown() -> bool:
        return (await qr_of(web, company.token))[0] == 200

    await eventually(shown)
    status, body = await qr_of(web, company.token)
    assert status == 200, body
    assert body["qr"] == web.world.live_qr(cid)


async def test_another_incarnations_code_is_never_served(any_web: WebHarness) -> None:
    """A code in the cache tagged by another incarnation (a crashed or restarted actor, a
    paused process writing late) is not served, even while this incarnation's round runs."""
    web = any_web
    company = await register(web)
    cid = company.company_id
    await web.node.company(cid).ask(m.RequestQr())

    async def shown() -> bool:
        return (await qr_of(web, company.token))[0] == 200

    await eventually(shown)
    await web.storage.qr.put(cid, "2@stale-code-of-a-dead-session", ttl=60, incarnation="gone")
    status, body = await qr_of(web, company.token)
    assert status == 503, body  # the round runs; its own next code is not cached yet
    assert body["error"]["code"] == "service_unavailable"
    assert "stale" not in json.dumps(body)
    # Untagged records (written before incarnations existed) are nobody's live code either.
    await web.storage.qr.put(cid, "2@stale-untagged", ttl=60)
    assert (await qr_of(web, company.token))[0] == 503


# ---------------------------------------------------------------- a real kill -9 and restart


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_server(env: dict[str, str], cwd: Path) -> AsyncIterator[trio.Process]:
    """``aiadmin serve`` in its own process, answering ``/health``; killed on exit if alive."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "web.cli", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as client:
            with trio.fail_after(START_TIMEOUT):
                while True:
                    assert process.returncode is None, "the server exited at start"
                    try:
                        if (await client.get(f"http://127.0.0.1:{env['PORT']}/health")).is_success:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(10):
            await process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("cluster", [False, True], ids=["alone", "cluster"])
async def test_after_kill_9_the_dead_processs_qr_is_not_served(
    tmp_path: Path, database_url: str, redis_prefix: str, cluster: bool
) -> None:
    """Alone, the restarted process's actor is ``pending``: 409 ``no_qr``. In cluster mode the
    dead process may still count as the owner (until its membership expires): 503
    ``ownership_moving`` with ``Retry-After`` (or ``service_unavailable`` while the new owner's
    actor starts), else the same 409. Never the dead code."""
    async with open_real_storage(database_url, redis_prefix=redis_prefix):
        pass  # empties the tables: the restarted server restores nobody else's salons
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "ADMIN_API_KEY": ADMIN_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "AIADMIN_REDIS_PREFIX": redis_prefix,
        "AIADMIN_CLUSTER": "true" if cluster else "false",
        "JWT_SECRET": "qr-cache restart test secret, the same for both runs",
    }
    admin = {"X-API-Key": ADMIN_KEY}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with running_server(env, tmp_path) as first:
            registered = await client.post(
                "/marketplace/register", json={"salon_id": 777_001}, headers=admin
            )
            assert registered.status_code == 201, registered.text
            body = registered.json()
            cid = body["company_id"]
            token = httpx.URL(body["connect_url"]).params["token"]
            with trio.fail_after(15):
                async with open_websocket_url(f"ws://127.0.0.1:{port}/marketplace/ws") as ws:
                    await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
                    await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
                    while True:
                        shown = json.loads(await ws.get_message())
                        if shown["event"] == "qr-update":
                            break
                    live = await client.get(f"/marketplace/qr/{token}")
                    assert live.status_code == 200, live.text
                    assert live.json()["qr"] == shown["data"]["qr"]
                    first.send_signal(signal.SIGKILL)  # mid-linking, nothing cleaned up
                    with trio.fail_after(10):
                        await first.wait()
        async with running_server(env, tmp_path):
            after = await client.get(f"/marketplace/qr/{token}")
            assert shown["data"]["qr"] not in after.text
            if cluster and after.status_code == 503:
                # The dead process still counts as the owner (ownership_moving), or the new
                # owner's actor is still starting (service_unavailable, as on a loaded machine),
                # or it waits to take the dead one's claim until its membership lapses (6 s)
                # and the request's deadline (5 s) passes first (request_timeout): each a
                # "try again shortly" with Retry-After, never the dead code.
                code = after.json()["error"]["code"]
                assert code in ("ownership_moving", "service_unavailable", "request_timeout"), (
                    after.text
                )
                assert int(after.headers["Retry-After"]) >= 1
                return
            assert after.status_code == 409, after.text
            assert after.json()["error"]["code"] == "no_qr"
            status = await client.get(f"/marketplace/status/{cid}", params={"token": token})
            assert status.json()["integration_status"] == "pending", status.text
