"""The connect page in headless Chromium against the real server: a salon admin on a phone
opens the link, sees the salon and a live QR code with a running countdown, the (simulated)
phone scans, and the page shows the linked number and the way back to YClients. Expired and
invalid links get the 410 page. No console errors and no CSP violations on any page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio
from playwright.sync_api import Page, Route

from . import _browser
from ._browser import PageLog, countdown_seconds, open_mobile_page, require_chromium, screenshot
from .conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENARIO_TIMEOUT = 90.0
DEMO_PHONE_SHOWN = "+7 900 123-45-67"  # the simulated phone's number (79001234567), formatted


def is_yclients_url(href: str | None) -> bool:
    """An https link into YClients (the salon's app-store page or YClients' home)."""
    parts = urlsplit(href or "")
    host = parts.hostname or ""
    return parts.scheme == "https" and (host == "yclients.com" or host.endswith(".yclients.com"))


async def in_browser_thread(scenario: Callable[[], None]) -> None:
    """Run a sync browser scenario in a worker thread, bounded on the trio side too."""
    require_chromium()
    with trio.fail_after(SCENARIO_TIMEOUT):
        await trio.to_thread.run_sync(scenario, abandon_on_cancel=True)


def open_connect_page(page: Page, url: str) -> None:
    """Open a connect URL and check the response's privacy headers and the token's removal."""
    response = page.goto(url, wait_until="domcontentloaded")
    assert response is not None and response.status == 200, response and response.status
    headers = response.headers
    assert headers.get("referrer-policy") == "no-referrer"
    csp = headers.get("content-security-policy", "")
    assert "script-src" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    # connect.js strips the token from the address bar at once; company and salon stay.
    page.wait_for_function("() => !window.location.search.includes('token=')")
    assert "token=" not in page.url
    kept = parse_qs(urlsplit(page.url).query)
    assert set(kept) == {"company", "salon"}


def wait_for_live_qr(page: Page) -> None:
    """A PNG QR code is shown with a countdown that really counts down."""
    page.wait_for_function(
        "() => (document.querySelector('#qr-image').getAttribute('src') || '')"
        ".startsWith('data:image/png;base64,')"
    )
    assert page.is_visible("#qr-image")
    page.wait_for_function(
        "() => /\\d+\\s*с/.test(document.querySelector('#qr-countdown').textContent)"
    )
    first = countdown_seconds(page)
    assert first is not None and 0 < first <= 600
    # Real clock: within a couple of seconds the number shown goes down.
    page.wait_for_function(
        "(first) => { const m = /(\\d+)\\s*с/.exec("
        "document.querySelector('#qr-countdown').textContent); return m && +m[1] < first; }",
        arg=first,
        timeout=5_000,
    )
    later = countdown_seconds(page)
    assert later is not None and later < first


def assert_linked(page: Page) -> None:
    """The success state: number, the way back to YClients, the linking panels gone."""
    page.wait_for_selector("#success-panel", state="visible")
    assert page.inner_text("#success-phone").strip() == DEMO_PHONE_SHOWN
    assert page.is_visible("#return-link")
    assert is_yclients_url(page.get_attribute("#return-link", "href"))
    assert page.inner_text("#status-text").strip() == "WhatsApp подключен"
    assert page.is_hidden("#qr-panel")
    assert page.is_hidden("#error-banner")
    assert page.is_hidden("#expired-panel")


def assert_clean(page: Page, log: PageLog, *, expected: tuple[str, ...] = ()) -> None:
    """Nothing went wrong in the page: no console error or warning, no CSP violation."""
    assert log.problems(page, expected=expected) == [], log.console


def company_status(server: RunningServer, company_id: int) -> dict[str, object]:
    response = httpx.get(
        server.url(f"/marketplace/status/{company_id}"), headers=server.admin_headers, timeout=10
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def test_demo_salon_links_by_simulated_scan(server: RunningServer) -> None:
    """The demo salon's page on a phone: QR, countdown, scan from the page, success."""
    url = server.demo_connect_url
    token = parse_qs(urlsplit(url).query)["token"][0]

    def scenario() -> None:
        with open_mobile_page() as (page, log):
            open_connect_page(page, url)
            # The salon's own title, as registered, not wrapped or prefixed a second time.
            assert page.inner_text("#salon-title").strip() == "Салон красоты «Лотос» (демо)"
            wait_for_live_qr(page)
            assert page.inner_text("#status-text").strip() == "Отсканируйте QR-код в WhatsApp"
            # The socket authenticates with its first frame: the token is never in its URL.
            assert log.websocket_urls and all("token" not in u for u in log.websocket_urls)
            assert token not in page.url
            screenshot(page, "connect-qr-before-scan")

            page.click("#simulate-scan")  # the dev panel's button: a simulate-scan WS frame
            assert_linked(page)
            screenshot(page, "connect-success-after-scan")
            assert_clean(page, log)

    await in_browser_thread(scenario)
    status = await trio.to_thread.run_sync(company_status, server, server.demo_company_id)
    assert status["whatsapp_connected"] is True
    assert status["whatsapp_phone"] == "79001234567"
    assert status["integration_status"] == "active"


async def test_registered_salon_links_when_the_phone_scans(server: RunningServer) -> None:
    """A salon registered through the API asks for a pairing code (shown as XXXX-XXXX), then
    the phone scans via the simulator's REST control (``POST /dev/simulator/{id}/scan`` with
    the admin key) and the open page follows live."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        created = await client.post(
            "/marketplace/register",
            json={"salon_id": 555001, "title": "Студия «Ромашка»"},
            headers=server.admin_headers,
        )
    assert created.status_code == 201, created.text
    company_id = created.json()["company_id"]
    url = server.url(created.json()["connect_url"])

    def scenario() -> None:
        with open_mobile_page() as (page, log):
            open_connect_page(page, url)
            assert page.inner_text("#salon-title").strip() == "Студия «Ромашка»"
            wait_for_live_qr(page)
            # The alternative: a pairing code for the salon's number.
            page.fill("#pairing-phone", "+7 900 123-45-67")
            page.click("#pairing-submit")
            page.wait_for_selector("#pairing-code", state="visible")
            code = page.inner_text("#pairing-code").strip()
            assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
            assert page.is_hidden("#error-banner")
            scanned = httpx.post(
                server.url(f"/dev/simulator/{company_id}/scan"),
                headers=server.admin_headers,
                timeout=10,
            )
            assert scanned.status_code == 200, scanned.text
            assert scanned.json()["success"] is True
            assert_linked(page)
            assert_clean(page, log)

    await in_browser_thread(scenario)
    status = await trio.to_thread.run_sync(company_status, server, company_id)
    assert status["whatsapp_connected"] is True


async def test_expired_and_invalid_links_show_the_expired_page(server: RunningServer) -> None:
    """A superseded token, a made-up token and no token at all: HTTP 410 and the expired page."""
    demo_url = server.demo_connect_url
    company_id = server.demo_company_id
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        # Reissuing the link makes the demo URL's token stop working.
        fresh = await client.post(
            "/marketplace/connect-url",
            json={"company_id": company_id},
            headers=server.admin_headers,
        )
    assert fresh.status_code == 200, fresh.text
    made_up = server.url(
        f"/marketplace/connect?token={secrets.token_urlsafe(32)}&company={company_id}&salon=962302"
    )
    no_token = server.url(f"/marketplace/connect?company={company_id}&salon=962302")

    def scenario() -> None:
        with open_mobile_page() as (page, log):
            for name, url in (("superseded", demo_url), ("made-up", made_up), ("none", no_token)):
                response = page.goto(url, wait_until="load")
                assert response is not None and response.status == 410, (name, response)
                assert response.headers.get("referrer-policy") == "no-referrer"
                heading = page.inner_text("#error-title").strip()
                assert heading == "Ссылка устарела", (name, heading)
                assert page.query_selector("#qr-image") is None
                assert page.query_selector("#simulate-scan") is None
                if name == "superseded":
                    screenshot(page, "connect-expired")
            # The logo leads to the landing page, not to a dead end.
            page.click("a.brand")
            page.wait_for_load_state("load")
            assert urlsplit(page.url).path == "/marketplace/"
            assert page.is_visible("main")
            # Chromium reports each 410 document load on the console; nothing else may appear.
            assert_clean(page, log, expected=("the server responded with a status of 410",))
            assert sum("status of 410" in line for line in log.console) == 3

    await in_browser_thread(scenario)


async def test_link_superseded_while_the_page_loads_shows_the_expired_panel(
    server: RunningServer,
) -> None:
    """The page itself was served, but its token stopped working before the socket
    authenticated (a fresh link was issued meanwhile): the page shows its expired panel
    instead of a QR code, and offers the way back to YClients."""
    url = server.demo_connect_url
    company_id = server.demo_company_id

    def scenario() -> None:
        with open_mobile_page() as (page, log):

            def reissue_then_load(route: Route) -> None:
                # Runs before connect.js loads, i.e. before the socket sends its token.
                fresh = httpx.post(
                    server.url("/marketplace/connect-url"),
                    json={"company_id": company_id},
                    headers=server.admin_headers,
                    timeout=10,
                )
                assert fresh.status_code == 200, fresh.text
                route.continue_()

            page.route("**/static/connect.js", reissue_then_load)
            open_connect_page(page, url)
            page.wait_for_selector("#expired-panel", state="visible")
            assert page.inner_text("#status-text").strip() == "Ссылка устарела"
            assert page.is_hidden("#qr-panel")
            assert page.is_hidden("#success-panel")
            assert page.get_attribute("#qr-image", "src") is None
            assert is_yclients_url(page.get_attribute("#expired-return-link", "href"))
            screenshot(page, "connect-expired-panel")
            assert_clean(page, log)

    await in_browser_thread(scenario)


def test_a_missing_chromium_fails_the_run_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without /usr/bin/chromium the browser tests fail (never skip) and say how to fix it."""
    monkeypatch.setattr(_browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="make test"):
        require_chromium()
