"""The salon page opened from inside YClients' iframe, in headless Chromium against the real
server (issue 16).

YClients shows our pages in an iframe (the page CSP's ``frame-ancestors``). There a cookie set
in answer to the frame's own request is a third-party one, and the browser refuses the salon
session cookie (SameSite=Lax): a sign-in made inside the frame would end on the 401 page. So
both entries open the salon page as a top-level page in a new tab:

* the connect page's «Открыть кабинет салона» posts its token as a form into a new tab
  (the token in the body, never in a URL), which gets the cookie and the page; the same
  button works when the connect page is itself the top-level page;
* YClients' settings link opened in the frame shows a button that posts the signed fields to
  ``POST /marketplace/salon/open`` in a new tab, which gets the cookie and the page.

The parent page is a YClients address (``https://n1.yclients.com``, answered by Playwright's
router, so the test needs no network) framing the server at ``http://127.0.0.1:PORT`` — another
site. No console error and no CSP violation anywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import trio
from playwright.sync_api import BrowserContext, Page, Response, Route, sync_playwright

from actors.yclients import sign_user_data
from web.server import DEMO_SALON_ID, serve

from ._browser import (
    CHROMIUM_ARGS,
    CSP_PROBE,
    STEP_TIMEOUT_MS,
    PageLog,
    _plain_asyncio_in_this_thread,
    require_chromium,
    screenshot,
)
from .conftest import START_TIMEOUT, STOP_TIMEOUT, RunningServer, fresh_machine_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENARIO_TIMEOUT = 90.0
PARTNER_TOKEN = "partner-token-for-the-framed-salon-entry"
YCLIENTS = "https://n1.yclients.com"
PARENT = f"{YCLIENTS}/settings/ai-admin"
DEMO_TITLE = "Салон красоты «Лотос» (демо)"
SALON_PAGE = re.compile(r"/marketplace/salon$")


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    """The fresh machine's server (the conftest's), with a partner token so YClients' signed
    ``user_data`` can be checked; YClients' API is a closed loopback port (never the network)."""
    monkeypatch.chdir(tmp_path)
    settings = dataclasses.replace(
        fresh_machine_settings(),
        yclients_api_key=PARTNER_TOKEN,
        yclients_base_url="http://127.0.0.1:9",
    )
    stop = trio.Event()
    with trio.CancelScope(deadline=trio.current_time() + START_TIMEOUT) as bound:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(partial(serve, settings, shutdown_trigger=stop.wait))
            bound.deadline = math.inf
            base_url = next(url for url in info.urls if url.startswith("http://127.0.0.1:"))
            yield RunningServer(settings, info, base_url)
            bound.deadline = trio.current_time() + STOP_TIMEOUT
            stop.set()
    if bound.cancelled_caught:
        pytest.fail("the server did not start or stop within its bound", pytrace=False)


async def in_browser_thread(scenario: Callable[[], None]) -> None:
    """Run a sync browser scenario in a worker thread, bounded on the trio side too."""
    require_chromium()
    with trio.fail_after(SCENARIO_TIMEOUT):
        await trio.to_thread.run_sync(scenario, abandon_on_cancel=True)


def parent_html(src: str) -> str:
    """YClients' page with our page in its iframe (as YClients shows an app's page)."""
    return (
        "<!doctype html><html lang='ru'><head><meta charset='utf-8'><title>YClients</title>"
        "</head><body><h1>YClients</h1>"
        f"<iframe id='app' src='{escape(src, quote=True)}' width='390' height='760'></iframe>"
        "</body></html>"
    )


@contextmanager
def browser_context() -> Iterator[tuple[BrowserContext, PageLog]]:
    """A fresh browser whose pages' console, errors and CSP violations go into one log, and
    which answers YClients' address with a parent page framing ``?src=``."""
    executable = require_chromium()
    log = PageLog()
    with _plain_asyncio_in_this_thread(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS
        )
        try:
            context = browser.new_context(
                viewport={"width": 1024, "height": 900},
                locale="ru-RU",
                # Our server is on loopback here (in production both are public sites):
                # Chromium lets a public page frame a local address only with this permission.
                permissions=["local-network-access"],
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
            context.add_init_script(CSP_PROBE)

            def yclients(route: Route) -> None:
                src = parse_qs(urlsplit(route.request.url).query).get("src", [""])[0]
                route.fulfill(
                    status=200, content_type="text/html; charset=utf-8", body=parent_html(src)
                )

            context.route(f"{YCLIENTS}/**", yclients)

            def watch(page: Page) -> None:
                page.on("console", log.on_console)
                page.on("pageerror", lambda error: log.page_errors.append(str(error)))

            context.on("page", watch)
            yield context, log
        finally:
            browser.close()


def framed(context: BrowserContext, src: str) -> Page:
    """YClients' page framing ``src`` (our server, another site)."""
    page = context.new_page()
    page.goto(f"{PARENT}?{urlencode({'src': src})}", wait_until="domcontentloaded")
    frame = page.frame_locator("#app")
    frame.locator("body").wait_for()
    return page


def salon_cookie(context: BrowserContext, server: RunningServer) -> dict[str, Any] | None:
    cookies = {c["name"]: c for c in context.cookies(server.base_url + "/marketplace/salon")}
    found = cookies.get("aiadmin_salon")
    return dict(found) if found is not None else None


def new_tab(context: BrowserContext, click: Callable[[], None]) -> tuple[Page, Response]:
    """The tab a click opens, once it shows the salon page, and the page's own answer."""
    answers: list[Response] = []

    def on_response(response: Response) -> None:
        if SALON_PAGE.search(urlsplit(response.url).path) and response.request.method == "GET":
            answers.append(response)

    context.on("response", on_response)
    try:
        with context.expect_page() as opened:
            click()
        tab = opened.value
        tab.wait_for_url(SALON_PAGE)
        tab.wait_for_selector("#salon-title")
    finally:
        context.remove_listener("response", on_response)
    assert answers, "the salon page was not loaded"
    return tab, answers[-1]


def assert_salon_page(tab: Page, answer: Response, server: RunningServer) -> None:
    """The tab is the salon page, top-level, served 200 with the page CSP."""
    assert answer.status == 200
    assert answer.frame == tab.main_frame  # a top-level page, not a frame
    assert tab.url == server.url("/marketplace/salon")
    csp = answer.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert tab.inner_text("#salon-title").strip() == DEMO_TITLE
    assert tab.evaluate("window.top === window")


#: Chromium warns that the framed loopback server's files (http, in an https parent) were not
#: upgraded to https: the test's set-up, not the page (in production both are https).
SETUP_WARNINGS = ("Mixed Content:",)


def assert_clean(pages: list[Page], log: PageLog, *, expected: tuple[str, ...] = ()) -> None:
    """No console error or warning (but the ``expected`` ones and the set-up's), no uncaught
    exception, no CSP violation on any of ``pages``."""
    problems: list[str] = []
    for page in pages:
        problems += log.problems(page, expected=(*SETUP_WARNINGS, *expected))
    assert problems == [], log.console + log.page_errors


# ------------------------------------------------------------------------------ tests


async def test_the_connect_pages_button_in_yclients_frame_opens_the_salon_page_in_a_new_tab(
    server: RunningServer,
) -> None:
    """The connect page inside YClients' iframe: link WhatsApp (the simulator), press
    «Открыть кабинет салона»: a new top-level tab shows the salon page with its HttpOnly
    cookie, the token in no URL, the frame still the connect page. Top-level, the same."""
    connect_url = server.demo_connect_url
    token = parse_qs(urlsplit(connect_url).query)["token"][0]

    def scenario() -> None:
        with browser_context() as (context, log):
            parent = framed(context, connect_url)
            frame = parent.frame_locator("#app")
            frame.locator("#simulate-scan").click()
            frame.locator("#success-panel").wait_for(state="visible")
            button = frame.locator("#open-salon-button")
            button.wait_for(state="visible")
            assert salon_cookie(context, server) is None

            tab, answer = new_tab(context, button.click)
            assert_salon_page(tab, answer, server)
            cookie = salon_cookie(context, server)
            assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            assert cookie["path"] == "/marketplace/salon"
            visited = [tab.url, *tab.evaluate("performance.getEntries().map(e => e.name)")]
            assert all(token not in url for url in visited), visited
            assert tab.evaluate("window.opener") is None
            # The frame stays on the connect page (nothing navigated it to a 401 page).
            assert parent.url.startswith(PARENT)
            assert urlsplit(parent.frames[1].url).path == "/marketplace/connect"
            frame.locator("#success-panel").wait_for(state="visible")
            screenshot(tab, "salon-entry-from-framed-connect-page")

            # The connect page as the top-level page: the button opens a new tab just the same.
            context.clear_cookies()
            fresh = server.url(urlsplit(connect_url).path + "?" + urlsplit(connect_url).query)
            top = context.new_page()
            top.goto(fresh, wait_until="domcontentloaded")
            top.wait_for_selector("#open-salon-button", state="visible")
            second, answer = new_tab(context, lambda: top.click("#open-salon-button"))
            assert_salon_page(second, answer, server)
            assert salon_cookie(context, server) is not None
            assert urlsplit(top.url).path == "/marketplace/connect"
            assert_clean([parent, tab, top, second], log)

    await in_browser_thread(scenario)


async def test_the_settings_link_in_yclients_frame_opens_the_salon_page_in_a_new_tab(
    server: RunningServer,
) -> None:
    """YClients' settings link in its iframe: the frame shows «Открыть кабинет салона» and
    sets no cookie; the button opens a new top-level tab with the salon page and its cookie,
    no ``user_data`` in its address. A forged link shows the 403 page in the frame."""
    data, sign = sign_user_data({"id": 9001, "salon_id": DEMO_SALON_ID}, PARTNER_TOKEN)
    query = {"salon_id": str(DEMO_SALON_ID), "user_data": data, "user_data_sign": sign}
    link = server.url("/marketplace/salon/open?" + urlencode(query))
    forged = server.url(
        "/marketplace/salon/open?" + urlencode({**query, "user_data_sign": "0" * 64})
    )

    def scenario() -> None:
        with browser_context() as (context, log):
            refused = framed(context, forged)
            frame = refused.frame_locator("#app")
            assert (
                frame.locator("#error-title").inner_text().strip() == "Подпись не прошла проверку"
            )
            assert frame.locator("#open-salon-button").count() == 0

            parent = framed(context, link)
            frame = parent.frame_locator("#app")
            assert frame.locator("#salon-open-title").inner_text().strip() == "Кабинет салона"
            button = frame.locator("#open-salon-button")
            assert button.inner_text().strip() == "Открыть кабинет салона"
            assert salon_cookie(context, server) is None  # the frame got no cookie
            screenshot(parent, "salon-entry-framed-settings-link")

            tab, answer = new_tab(context, button.click)
            assert_salon_page(tab, answer, server)
            assert answer.request.redirected_from is not None  # the POST's 303
            assert answer.request.redirected_from.method == "POST"
            assert "user_data" not in tab.url
            cookie = salon_cookie(context, server)
            assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            # Not framed, the link opens the page at once (its 303 with the cookie).
            context.clear_cookies()
            direct = context.new_page()
            opened = direct.goto(link)
            assert opened is not None and opened.status == 200
            assert direct.url == server.url("/marketplace/salon")
            assert salon_cookie(context, server) is not None
            # Chromium logs the 403 document as a failed load.
            assert_clean(
                [refused, parent, tab, direct],
                log,
                expected=("the server responded with a status of 403",),
            )

    await in_browser_thread(scenario)
