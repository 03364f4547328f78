"""The real server (``web.server.serve``) on a free loopback port, per test.

Built from an empty environment and no ``.env``: in-memory storage, simulated WhatsApp, a
generated admin key and JWT secret — exactly what a fresh machine has. The server runs in the
fixture's nursery on the real clock; the fixture stops it through its ``shutdown_trigger`` and
fails the test if start or stop overruns its bound.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio

from config import Settings, settings_from_env
from web.server import ServerInfo, serve

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class RunningServer:
    """A server listening on loopback: its settings, what it reported, and its base URL."""

    settings: Settings
    info: ServerInfo
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def demo_connect_url(self) -> str:
        """The demo salon's connect URL, pointed at the port actually bound (port 0)."""
        assert self.info.demo_connect_url is not None
        parts = urlsplit(self.info.demo_connect_url)
        return f"{self.base_url}{parts.path}?{parts.query}"

    @property
    def demo_company_id(self) -> int:
        assert self.info.demo_company_id is not None
        return self.info.demo_company_id

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.settings.admin_api_key}


def fresh_machine_settings() -> Settings:
    """Defaults only (no env, no .env), on a free loopback port, with the demo salon."""
    settings = settings_from_env({}, dotenv=None)
    assert settings.database_url is None and settings.redis_url is None
    return dataclasses.replace(settings, host="127.0.0.1", port=0, demo=True)


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    """The server, run from an empty working directory: it must need (and leave) no files."""
    monkeypatch.chdir(tmp_path)
    settings = fresh_machine_settings()
    stop = trio.Event()
    with trio.CancelScope(deadline=trio.current_time() + START_TIMEOUT) as bound:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial(serve, settings, shutdown_trigger=stop.wait))
            bound.deadline = math.inf  # the test bounds itself while it runs
            base_url = next(url for url in info.urls if url.startswith("http://127.0.0.1:"))
            yield RunningServer(settings, info, base_url)
            bound.deadline = trio.current_time() + STOP_TIMEOUT
            stop.set()
    if bound.cancelled_caught:
        pytest.fail("the server did not start or stop within its bound", pytrace=False)
    left = sorted(p.name for p in await trio.Path(tmp_path).iterdir())
    assert left == [], f"the embedded default wrote files into its working directory: {left}"
