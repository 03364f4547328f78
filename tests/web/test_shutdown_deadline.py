"""``aiadmin serve`` exits within ``AIADMIN_SHUTDOWN_GRACE`` of SIGTERM, whatever holds it up
(issue 12, item 14): a connect page still open (it used to hold Hypercorn for a fixed 5 s), and
a PostgreSQL that stops answering (the company's stop and the pool's close used to take 16 s
and more). Real processes, real sockets; a small grace keeps the tests cheap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.support.databases import with_port
from tests.support.proxy import open_tcp_proxy
from tests.web.test_server import free_port
from web._shutdown import EXIT_OVERRAN

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "adm_shutdown_test_key_0123456789"
GRACE = 3.0
#: Process start-up and interpreter exit around the bounded shutdown.
SLACK = 1.0

pytestmark = pytest.mark.slow


@dataclass
class Served:
    process: trio.Process
    port: int
    output: bytearray

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


@asynccontextmanager
async def serving(tmp_path: Path, **env: str) -> AsyncIterator[Served]:
    """``aiadmin serve`` in a process of its own, once it answers ``/health``."""
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "web.cli", "serve"],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "PORT": str(port),
            "ADMIN_API_KEY": ADMIN_KEY,
            "AIADMIN_SHUTDOWN_GRACE": str(GRACE),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Served(process, port, bytearray())

    async def read_output() -> None:
        assert process.stdout is not None
        async for chunk in process.stdout:
            served.output.extend(chunk)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_output)
            async with httpx.AsyncClient() as client:
                with trio.fail_after(30):
                    while True:
                        try:
                            await client.get(f"http://127.0.0.1:{port}/health")
                            break
                        except httpx.TransportError:
                            await trio.sleep(0.1)
            yield served
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()


@asynccontextmanager
async def open_connect_page(served: Served, salon_id: int) -> AsyncIterator[WebSocketConnection]:
    """A registered salon's connect page: its WebSocket authenticated, a QR round running."""
    base = f"http://127.0.0.1:{served.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            "/marketplace/register", json={"salon_id": salon_id}, headers={"X-API-Key": ADMIN_KEY}
        )
    assert response.status_code == 201, response.text
    token = httpx.URL(response.json()["connect_url"]).params["token"]
    async with open_websocket_url(f"ws://127.0.0.1:{served.port}/marketplace/ws") as ws:
        with trio.fail_after(10):
            await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
            assert json.loads(await ws.get_message())["event"] == "status"
            await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
            while json.loads(await ws.get_message())["event"] != "qr-update":
                pass
        yield ws


async def terminate(served: Served) -> tuple[int, float]:
    """SIGTERM; the exit status and the seconds until the process was gone."""
    started = trio.current_time()
    served.process.send_signal(signal.SIGTERM)
    with trio.fail_after(GRACE + 30):  # a failing run ends, and says how long it took
        code = await served.process.wait()
    return code, trio.current_time() - started


async def test_sigterm_with_an_open_connect_page_exits_within_the_grace(tmp_path: Path) -> None:
    async with serving(tmp_path) as served, open_connect_page(served, 771001):
        code, took = await terminate(served)
    assert took <= GRACE + SLACK, (took, served.text)
    assert code == 0, served.text  # an orderly stop: Hypercorn's share of the grace was enough
    assert "stopped" in served.text
    assert "Traceback" not in served.text


async def test_sigterm_with_a_hung_database_exits_within_the_grace(
    tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL stops answering (a proxy that swallows everything) while a salon's actor runs:
    its stop and the pool's close hang, and the process still exits within the grace."""
    async with open_tcp_proxy("127.0.0.1", 5432) as proxy:
        async with (
            serving(tmp_path, DATABASE_URL=with_port(database_url, proxy.port)) as served,
            open_connect_page(served, 771002),
        ):
            proxy.black_hole()
            code, took = await terminate(served)
    assert took <= GRACE + SLACK, (took, served.text)
    if code != 0:  # what ignored cancellation was left behind, and the log says so
        assert code == EXIT_OVERRAN, served.text
        assert f"shutdown did not finish within {GRACE:g} s" in served.text
    assert "Traceback" not in served.text
