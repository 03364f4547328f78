"""The connect page of an active salon whose WhatsApp session is reconnecting, in headless
Chromium against a real server (Hypercorn on a loopback socket) whose simulated WhatsApp the
test controls: the page says in Russian that the link is being restored — no QR spinner, no
English error — and follows the session back to «WhatsApp подключен».
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
import trio
from hypercorn.trio import serve as hypercorn_serve

from actors import Node, build_companies
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from config import Settings
from storage import open_storage
from web._app import create_app
from web._connection_guard import ConnectionGuard
from web.server import hypercorn_config

from ._browser import open_mobile_page, screenshot
from .conftest import fresh_machine_settings
from .test_connect_page import (
    DEMO_PHONE_SHOWN,
    assert_clean,
    assert_linked,
    in_browser_thread,
    open_connect_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RECONNECTING = "Восстанавливаем связь с WhatsApp…"
STEP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Stand:
    """A served node and the simulated WhatsApp behind it."""

    base_url: str
    settings: Settings
    node: Node
    world: SimulatedWorld

    async def status(self, company_id: int) -> m.CompanyView:
        view = await self.node.company(company_id).ask(m.GetStatus())
        assert isinstance(view, m.CompanyView)
        return view


@asynccontextmanager
async def running_stand() -> AsyncIterator[Stand]:
    """The embedded default (memory storage, simulated WhatsApp) on a free loopback port."""
    settings = dataclasses.replace(fresh_machine_settings(), demo=False)
    world = SimulatedWorld()
    stop = trio.Event()
    async with (
        open_storage(settings) as storage,
        open_gateway(settings, world=world) as gateway,
        build_companies(settings, storage, gateway).open_node() as node,
        trio.open_nursery() as nursery,
    ):
        serve = partial(
            hypercorn_serve,
            ConnectionGuard(create_app(node)),
            hypercorn_config(settings),
            shutdown_trigger=stop.wait,
        )
        urls = await nursery.start(serve)
        base_url = next(url for url in urls if url.startswith("http://127.0.0.1:"))
        try:
            yield Stand(base_url, settings, node, world)
        finally:
            stop.set()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the node (bounded) until ``check`` holds."""
    with trio.fail_after(STEP_TIMEOUT):
        while True:
            if await check():
                return
            await trio.sleep(0.02)


async def test_a_reconnecting_salon_sees_it_in_russian_then_connected() -> None:
    async with running_stand() as stand:
        async with httpx.AsyncClient(base_url=stand.base_url, timeout=10) as client:
            created = await client.post(
                "/marketplace/register",
                json={"salon_id": 555_101, "title": "Студия «Ирис»"},
                headers={"X-API-Key": stand.settings.admin_api_key},
            )
        assert created.status_code == 201, created.text
        cid = created.json()["company_id"]
        url = stand.base_url + created.json()["connect_url"]
        # Linked and active, then the phone's network drops: the session is reconnecting.
        await stand.node.company(cid).ask(m.RequestQr())

        async def qr_shown() -> bool:
            return stand.world.live_qr(cid) is not None

        await until(qr_shown)
        stand.world.scan(cid)

        async def connected() -> bool:
            return (await stand.status(cid)).whatsapp_connected

        await until(connected)
        stand.world.go_offline(cid)

        async def reconnecting() -> bool:
            view = await stand.status(cid)
            return view.integration_status == "reconnecting" and not view.whatsapp_connected

        await until(reconnecting)
        page_open = trio.Event()
        page_checked = trio.Event()

        def scenario() -> None:
            with open_mobile_page() as (page, log):
                open_connect_page(page, url)
                page.wait_for_selector("#reconnecting-panel", state="visible")
                assert page.inner_text("#status-text").strip() == RECONNECTING
                assert page.is_hidden("#qr-panel")  # no QR code, no spinner
                assert page.is_hidden("#pairing-panel")
                assert page.is_hidden("#success-panel")
                # The page's own request-qr was refused ("already connected"): not an error.
                page.wait_for_timeout(500)
                assert page.is_hidden("#error-banner"), page.inner_text("#error-banner")
                body = page.inner_text("body")
                assert "already" not in body and "connected" not in body
                assert "сканировать QR-код заново не нужно" in body
                assert page.inner_text("#reconnecting-phone").strip() == DEMO_PHONE_SHOWN
                screenshot(page, "connect-reconnecting")
                trio.from_thread.run_sync(page_open.set)
                trio.from_thread.run(page_checked.wait)
                # Back online: the same open page follows to the success state.
                assert_linked(page)
                assert page.is_hidden("#reconnecting-panel")
                assert_clean(page, log)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(in_browser_thread, scenario)
            with trio.fail_after(60):
                await page_open.wait()
            stand.world.go_online(cid)
            await until(connected)
            page_checked.set()
