"""Headless Chromium for the end-to-end tests, driven through Playwright's sync API.

Playwright's APIs run on asyncio, so every browser session lives in one worker thread
(``trio.to_thread.run_sync``) while the server keeps running on trio in the main thread.
A sync Playwright object is bound to the thread that created it: open, use and close a
session inside one function run in one thread.

trio-asyncio (imported by the server) replaces ``asyncio.new_event_loop`` with one that
makes trio-bridged loops, which Playwright's own loop cannot use. Its fake policy is
thread-local outside trio, so the browser thread installs asyncio's default policy for
itself (``_plain_asyncio_in_this_thread``) and removes it again afterwards.

Every Playwright call is bounded by ``STEP_TIMEOUT_MS``; the caller also bounds the whole
thread with ``trio.fail_after``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
MOBILE_VIEWPORT: ViewportSize = {"width": 390, "height": 844}
STEP_TIMEOUT_MS = 15_000

# Records CSP violations in the page itself, in case the browser does not also log them.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def require_chromium() -> Path:
    """Debian's Chromium, or a test failure saying how to get it (never a skip)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Run `make test` (it installs it via scripts/ensure-system-deps.sh --browser) "
            "or `sudo apt-get install chromium`.",
            pytrace=False,
        )
    return CHROMIUM


@dataclass
class PageLog:
    """What the page reported: console messages, uncaught errors, CSP violations, sockets."""

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    websocket_urls: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def problems(self, page: Page, *, expected: tuple[str, ...] = ()) -> list[str]:
        """Console errors and warnings, uncaught exceptions and CSP violations, if any.

        ``expected`` lists substrings of console lines the test itself provoked (Chromium
        logs a document answered with 410 as a failed resource load).
        """
        found = [
            line
            for line in self.console
            if line.startswith(("error:", "warning:")) and not any(e in line for e in expected)
        ]
        found += [f"pageerror: {text}" for text in self.page_errors]
        found += [f"csp: {text}" for text in page.evaluate("window.__cspViolations || []") or []]
        found += [line for line in self.console if "Content Security Policy" in line]
        return found


@contextmanager
def _plain_asyncio_in_this_thread() -> Iterator[None]:
    """Plain asyncio loops for this (non-trio) thread while Playwright runs in it."""
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


@contextmanager
def open_mobile_page() -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser with one phone-sized page; closed (with the browser) on exit."""
    executable = require_chromium()
    log = PageLog()
    with _plain_asyncio_in_this_thread(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS
        )
        try:
            context = browser.new_context(
                viewport=MOBILE_VIEWPORT,
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale="ru-RU",
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
            context.add_init_script(CSP_PROBE)
            page = context.new_page()
            page.on("console", log.on_console)
            page.on("pageerror", lambda error: log.page_errors.append(str(error)))
            page.on("websocket", lambda ws: log.websocket_urls.append(ws.url))
            yield page, log
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/e2e/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


COUNTDOWN_SECONDS = re.compile(r"(\d+)\s*с")


def countdown_seconds(page: Page) -> int | None:
    """The seconds ``#qr-countdown`` shows, or ``None`` when it shows no number."""
    match = COUNTDOWN_SECONDS.search(page.inner_text("#qr-countdown"))
    return int(match.group(1)) if match else None
