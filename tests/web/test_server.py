"""The real server once through a socket: ``web.server.serve`` on a free loopback port,
HTTP over httpx, the WebSocket over trio-websocket, ``aiadmin tree --url``, and a clean
shutdown through ``shutdown_trigger`` within a bound. Real clock (real sockets)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from config import Settings
from tests.web.conftest import make_web_settings
from web import cli
from web.server import ServerInfo, hypercorn_config, serve

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        assert isinstance(port, int)
        return port


def test_hypercorn_binds_the_configured_host_and_port() -> None:
    config = hypercorn_config(make_web_settings(host="::1", port=4321))
    assert config.bind == ["::1:4321"]
    assert config.accesslog is None  # ours redacts tokens; Hypercorn's would not
    assert config.include_server_header is False


@dataclass(frozen=True)
class Running:
    settings: Settings
    info: ServerInfo
    base: str
    stop: trio.Event
    stopped: trio.Event

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": self.settings.admin_api_key}


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[Running]:
    """Serve in a nursery; on exit trigger shutdown and require it to finish in time."""
    stop = trio.Event()
    stopped = trio.Event()

    async def run_server(task_status: trio.TaskStatus[ServerInfo]) -> None:
        await serve(settings, shutdown_trigger=stop.wait, task_status=task_status)
        stopped.set()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(START_TIMEOUT):
            info = await nursery.start(run_server)
        base = f"http://{settings.host}:{settings.port}"
        try:
            yield Running(settings, info, base, stop, stopped)
        finally:
            stop.set()
            with trio.fail_after(STOP_TIMEOUT):
                await stopped.wait()


@pytest.fixture(params=["memory", "real"])
def server_settings(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> Settings:
    port = free_port()
    if request.param == "memory":
        return make_web_settings(host="127.0.0.1", port=port)
    return make_web_settings(
        host="127.0.0.1",
        port=port,
        database_url=database_url,
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=redis_prefix,
    )


async def ready_after_restore(http: httpx.AsyncClient) -> httpx.Response:
    """``/health/ready`` once the start-up restore is over (it runs in the background after
    the port opens: ``restoring`` with progress until then), bounded."""
    with trio.fail_after(10):
        while True:
            ready = await http.get("/health/ready")
            if ready.status_code != 503 or ready.json()["status"] != "restoring":
                return ready
            assert ready.json()["restored"] <= ready.json()["total"], ready.text
            await trio.sleep(0.01)


async def test_serve_http_websocket_cli_and_clean_shutdown(
    server_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_server(server_settings) as server:
        assert any(url.endswith(f":{server_settings.port}") for url in server.info.urls)
        async with httpx.AsyncClient(base_url=server.base, timeout=10.0) as http:
            health = await http.get("/health")
            assert health.status_code == 200
            assert health.json() == {"success": True, "status": "ok"}
            assert "server" not in health.headers
            tree = await http.get("/health/tree", headers=server.admin)
            assert tree.status_code == 200
            assert tree.json()["tree"]["id"] == "node"
            assert (await http.get("/health/tree")).status_code == 401
            ready = await ready_after_restore(http)
            assert ready.status_code == 200, ready.text
            expected = "postgres" if server_settings.database_url else "memory"
            assert ready.json()["checks"]["database"]["backend"] == expected

            registered = await http.post(
                "/marketplace/register", json={"salon_id": 770001}, headers=server.admin
            )
            assert registered.status_code == 201, registered.text
            body = registered.json()
            token = httpx.URL(body["connect_url"]).params["token"]

        if server_settings.database_url is None:
            # Once per run: after a WebSocket, Hypercorn's ping task outlives the socket by up
            # to ``websocket_ping_interval``, so the shutdown waits ``graceful_timeout`` (5 s).
            await websocket_round_trip(server, token, body["company_id"])

        # ``aiadmin tree --url`` prints an indented tree of the running server.
        capsys.readouterr()
        code = await trio.to_thread.run_sync(
            partial(
                cli.main,
                ["tree", "--url", server.base, "--admin-key", server_settings.admin_api_key],
            )
        )
        out = capsys.readouterr().out
        assert code == 0
        lines = out.splitlines()
        assert lines[0].startswith("node [")
        assert any(line.startswith(("├── companies", "└── companies")) for line in lines)
        assert any("whatsapp [gateway:simulated]" in line for line in lines)
        assert all(line.startswith(("├── ", "└── ", "│   ", "    ")) for line in lines[1:]), out
        if server_settings.database_url is None:  # the WebSocket activated a company actor
            assert any(line.startswith(("│   ", "    ")) for line in lines), out

        wrong = await trio.to_thread.run_sync(
            partial(cli.main, ["tree", "--url", server.base, "--admin-key", "nope"])
        )
        assert wrong == 1
        assert "401" in capsys.readouterr().err
    assert server.stopped.is_set()
    # The port is free again: the listener was closed.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server_settings.port))


async def websocket_round_trip(server: Running, token: str, company_id: int) -> None:
    """Auth, status, a QR over a real socket; then a socket that never authenticates."""
    ws_url = server.base.replace("http://", "ws://") + "/marketplace/ws"
    with trio.fail_after(10):
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
            status = json.loads(await ws.get_message())
            assert status["event"] == "status"
            assert status["data"]["companyId"] == company_id
            await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
            while (frame := json.loads(await ws.get_message()))["event"] != "qr-update":
                pass
            assert frame["data"]["qr_image"].startswith("data:image/png;base64,")
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message("{}")
            error = json.loads(await ws.get_message())
            assert error["data"]["code"] == "invalid_token"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            reason = closed.value.reason
            assert reason is not None and reason.code == 4001


async def test_shutdown_with_an_open_websocket_is_bounded() -> None:
    """A connect page still open at shutdown does not hold the server up past its bound."""
    settings = make_web_settings(host="127.0.0.1", port=free_port())
    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=10.0) as http:
            response = await http.post(
                "/marketplace/register", json={"salon_id": 770002}, headers=server.admin
            )
        token = httpx.URL(response.json()["connect_url"]).params["token"]
        ws_url = server.base.replace("http://", "ws://") + "/marketplace/ws"
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
            assert json.loads(await ws.get_message())["event"] == "status"
            server.stop.set()
            with trio.fail_after(STOP_TIMEOUT):
                await read_until_closed(ws)
                await server.stopped.wait()


async def read_until_closed(ws: WebSocketConnection) -> None:
    while True:
        try:
            await ws.get_message()
        except ConnectionClosed:
            return


def test_cli_tree_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["tree", "--url", f"http://127.0.0.1:{free_port()}", "--admin-key", "x"])
    assert code == 1
    assert "cannot reach" in capsys.readouterr().err
