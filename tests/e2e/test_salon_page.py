"""The salon's own page (кабинет салона) in headless Chromium against the real server, the fake
YClients and the simulated WhatsApp (the dialogue stands' ``open_stand``: PostgreSQL, Redis).

A salon admin links WhatsApp on the connect page and opens the page with its button (a new
tab: the token is posted as a form and traded for an HttpOnly cookie, never put in a URL);
watches a client's chat with the assistant arrive live, with the booking marked; takes the
chat over, writes to the client (the simulated phone receives it) and gives it back; changes
the reminder time and sees the plan follow; switches review requests to "at once" and sees
the client's rating arrive in the results. A dropped live socket is re-opened with backoff and
the page catches up; a status frame shows at once. Script-like client messages are shown as
text and run nothing. Phone (390×844) and desktop (1280×800) viewports; screenshots in
``test-artifacts/e2e/salon-*.png``; no console error and no CSP violation on any page.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
import jinja2
import pytest
import trio
from playwright.sync_api import Page, ViewportSize, WebSocketRoute, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from actors.yclients import sign_user_data
from tests.fakes.yclients import PARTNER_TOKEN

from ._browser import (
    CHROMIUM_ARGS,
    CSP_PROBE,
    STEP_TIMEOUT_MS,
    PageLog,
    _plain_asyncio_in_this_thread,
    require_chromium,
    screenshot,
)
from ._dialogues import SAMPLE_CATALOG
from ._stand import Stand, link_salon, open_stand

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEB = Path(__file__).resolve().parents[2] / "web"

SCENARIO_TIMEOUT = 150.0
SYNC_TIMEOUT = 60.0
#: How long the page may take to show what a client or the assistant did (the assistant
#: answers after AIADMIN_ASSISTANT_WAIT of quiet; a booking also waits on the fake YClients).
LIVE_MS = 30_000
MOBILE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

SALON_ID = 555100  # the sample catalog's salon «Ромашка»
NEW_CLIENT = "79171000077"  # not in the catalog: a new client who books
RUSTAM = "79171000001"  # the catalog's client with a visit in three days at 17:00
MARINA = "79171000003"  # added below: a visit today that has just ended
XSS_CLIENT = "79171000066"
SCRIPT_TEXT = "<script>window.__xss = 'script'</script>"
IMG_TEXT = "<img src=x onerror=\"window.__xss = 'img'\">"


# ------------------------------------------------------------------------- the stand


def salon_zone(now: datetime) -> str:
    """A fixed-offset zone in which ``now`` is about 14:00, so the visit that "has just ended"
    lies today, after the salon opened, outside quiet hours, whenever the suite runs."""
    offset = (14 - now.hour + 12) % 24 - 12  # -12 … +11 hours from UTC
    # POSIX sign: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def catalog(now: datetime) -> dict[str, Any]:
    """The sample catalog's salon in a zone where it is early afternoon, with a third client
    whose haircut started two hours ago (it ended 75 minutes ago)."""
    data = json.loads(SAMPLE_CATALOG.read_text(encoding="utf-8"))
    salon = copy.deepcopy(next(s for s in data["salons"] if s["id"] == SALON_ID))
    zone = salon_zone(now)
    salon["timezone"] = zone
    local = now.astimezone(ZoneInfo(zone))
    start = (local - timedelta(hours=2)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 15)
    salon["clients"].append({"id": 6303, "name": "Марина", "phone": "+7 917 100-00-03"})
    salon["records"].append(
        {
            "key": "marina-haircut",
            "client_id": 6303,
            "staff_id": 6201,
            "services": [6101],
            "day": (start.date() - local.date()).days,
            "time": start.strftime("%H:%M"),
        }
    )
    return {"salons": [salon]}


@dataclass(frozen=True)
class Salon:
    """The stand and the registered salon: its company id, connect URL and time zone."""

    stand: Stand
    company_id: int
    connect_url: str
    zone: str

    def url(self, path: str) -> str:
        return self.stand.base_url + path


@asynccontextmanager
async def salon_stand(*, linked: bool) -> AsyncIterator[Salon]:
    """A stand with the salon registered and synced; ``linked``: its WhatsApp linked already
    (else the test links it on the connect page)."""
    now = datetime.now(UTC)
    data = catalog(now)
    async with open_stand(data, now) as stand:
        if linked:
            salon = await link_salon(stand, data["salons"][0])
            cid = salon.company_id
            fresh = await stand.http.post(
                "/marketplace/connect-url", json={"company_id": cid}, headers=stand.admin
            )
            assert fresh.status_code == 200, fresh.text
            connect_url = fresh.json()["connect_url"]
        else:
            created = await stand.http.post(
                "/marketplace/register", json={"salon_id": SALON_ID}, headers=stand.admin
            )
            assert created.status_code == 201, created.text
            cid = created.json()["company_id"]
            connect_url = created.json()["connect_url"]
            await sync(stand, cid)
        yield Salon(
            stand, cid, stand.base_url + urlpath(connect_url), data["salons"][0]["timezone"]
        )


def urlpath(url: str) -> str:
    """The path and query of a URL the server built (its public base may differ)."""
    parts = httpx.URL(url)
    return parts.raw_path.decode()


async def sync(stand: Stand, cid: int) -> None:
    """Sync the salon from the fake YClients and wait until it has succeeded."""
    queued = await stand.http.post(f"/marketplace/sync/{cid}", headers=stand.admin)
    assert queued.status_code == 202, queued.text
    with trio.fail_after(SYNC_TIMEOUT):
        while True:
            status = (
                await stand.http.get(f"/marketplace/status/{cid}", headers=stand.admin)
            ).json()
            if status.get("sync", {}).get("last_success_at"):
                return
            await trio.sleep(0.25)


# ------------------------------------------------------------------------ the browser


@contextmanager
def open_page(viewport: ViewportSize, zone: str) -> Iterator[tuple[Page, PageLog]]:
    """A fresh browser with one page of ``viewport`` (a phone's is touch and mobile), its clock
    in the salon's ``zone``; alert/confirm dialogs are recorded (and fail the test). Pages it
    opens later (the connect page's button opens a new tab) report into the same log."""
    executable = require_chromium()
    log = PageLog()
    phone = viewport["width"] < 600
    with _plain_asyncio_in_this_thread(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, timeout=STEP_TIMEOUT_MS
        )
        try:
            context = browser.new_context(
                viewport=viewport,
                device_scale_factor=2 if phone else 1,
                is_mobile=phone,
                has_touch=phone,
                locale="ru-RU",
                timezone_id=zone,
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
            context.add_init_script(CSP_PROBE)

            def no_dialogs(dialog: Any) -> None:
                log.page_errors.append(f"unexpected {dialog.type} dialog: {dialog.message}")
                dialog.dismiss()

            def watch(page: Page) -> None:
                page.on("console", log.on_console)
                page.on("pageerror", lambda error: log.page_errors.append(str(error)))
                page.on("websocket", lambda ws: log.websocket_urls.append(ws.url))
                page.on("dialog", no_dialogs)

            context.on("page", watch)
            page = context.new_page()
            yield page, log
        finally:
            browser.close()


async def in_browser_thread(scenario: Callable[[], None]) -> None:
    """Run a sync browser scenario in a worker thread, bounded on the trio side too."""
    require_chromium()
    with trio.fail_after(SCENARIO_TIMEOUT):
        await trio.to_thread.run_sync(scenario, abandon_on_cancel=True)


def assert_clean(page: Page, log: PageLog, *, expected: tuple[str, ...] = ()) -> None:
    """No console error or warning (but the ``expected`` ones the test provoked), no uncaught
    exception, no CSP violation, no dialog."""
    assert log.problems(page, expected=expected) == [], log.console + log.page_errors


def open_from_connect_page(page: Page, salon: Salon, *, scan: bool) -> Page:
    """The connect page (``scan``: link the salon with the simulator's button first), then its
    «Открыть кабинет салона» button: the page opens in a new tab (returned) at
    /marketplace/salon with a session cookie and no token in any URL; the connect page stays."""
    response = page.goto(salon.connect_url, wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    if scan:
        page.wait_for_function(
            "() => (document.querySelector('#qr-image').getAttribute('src') || '')"
            ".startsWith('data:image/png;base64,')"
        )
        assert page.is_hidden("#cabinet-panel")  # not before the salon is linked
        page.click("#simulate-scan")
    page.wait_for_selector("#success-panel", state="visible")
    page.wait_for_selector("#open-salon-button", state="visible")
    screenshot(page, f"salon-connect-button-{viewport_name(page)}")
    connect_page = page
    context = page.context
    with (
        context.expect_event(
            "response", lambda r: urlsplit(r.url).path == "/marketplace/salon"
        ) as navigation,
        context.expect_page() as opened,
    ):
        page.click("#open-salon-button")
    page = opened.value
    answer = navigation.value
    assert answer is not None and answer.status == 200
    assert answer.frame == page.main_frame
    assert answer.request.redirected_from is not None  # the form post's 303
    assert answer.request.redirected_from.method == "POST"
    headers = answer.headers
    assert headers.get("referrer-policy") == "no-referrer"
    csp = headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.url == salon.url("/marketplace/salon")
    assert urlsplit(connect_page.url).path == "/marketplace/connect"  # it stays
    cookies = {c["name"]: c for c in page.context.cookies()}
    cookie = cookies["aiadmin_salon"]
    assert cookie["httpOnly"] and cookie["path"] == "/marketplace/salon"
    assert cookie["sameSite"] == "Lax"
    token = httpx.URL(salon.connect_url).params["token"]
    assert token not in page.url and all(token not in u for u in log_urls(page))
    page.wait_for_selector("#salon-title")
    assert page.inner_text("h1").strip() == "Кабинет салона"
    assert page.inner_text("#salon-title").strip() == "Салон красоты «Ромашка»"
    page.wait_for_function(
        "() => /подключ/i.test(document.querySelector('#wa-status-line').textContent)"
    )
    assert page.inner_text("#wa-status-line").startswith("WhatsApp: подключён")
    page.evaluate("window.__sameDocument = true")  # a reload would lose it
    return page


def log_urls(page: Page) -> list[str]:
    """The URLs this page's history and sockets used (none may hold the token)."""
    return [page.url, *page.evaluate("performance.getEntries().map(e => e.name)")]


def viewport_name(page: Page) -> str:
    size = page.viewport_size
    return "mobile" if size is not None and size["width"] < 600 else "desktop"


def still_the_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def inbound(salon: Salon, phone: str, text: str) -> None:
    """The simulated client writes to the salon."""
    answer = httpx.post(
        salon.url(f"/dev/simulator/{salon.company_id}/inbound"),
        json={"phone": phone, "text": text},
        headers=salon.stand.admin,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def phone_chat(salon: Salon, phone: str) -> list[dict[str, Any]]:
    """What the simulated client's phone shows of its chat with the salon."""
    answer = httpx.get(
        salon.url(f"/dev/simulator/{salon.company_id}/chat"),
        params={"phone": phone},
        headers=salon.stand.admin,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


def open_chat(page: Page, phone: str) -> None:
    item = f".chat-item[data-phone='{phone}']"
    page.wait_for_selector(item, timeout=LIVE_MS)
    page.click(item)
    page.wait_for_selector("#chat-view", state="visible")


def wait_for_bubble(page: Page, selector: str, text: str) -> None:
    """A transcript bubble matching ``selector`` shows exactly ``text`` (as text)."""
    try:
        page.wait_for_function(
            "([sel, text]) => Array.from(document.querySelectorAll(sel))"
            ".some(n => n.textContent === text)",
            arg=[f"#transcript {selector} .bubble-text", text],
            timeout=LIVE_MS,
        )
    except PlaywrightTimeout:
        shown = page.eval_on_selector_all(
            "#transcript > li", "nodes => nodes.map(n => n.className + ': ' + n.textContent)"
        )
        problems = page.inner_text("#error-banner") + " " + page.inner_text("#reply-error")
        raise AssertionError(f"no {selector} bubble {text!r}; shown: {shown}; {problems}") from None


def transcript_texts(page: Page, selector: str) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        f"#transcript {selector}", "nodes => nodes.map(n => n.textContent)"
    )
    return texts


# ------------------------------------------------------------------------------ tests


async def test_the_salon_opens_its_page_follows_a_chat_live_takes_it_over_and_gives_it_back() -> (
    None
):
    """On a phone: link on the connect page, open the page with its button, watch a new
    client book with the assistant (live, no reload), the booking marked in the transcript;
    take the chat over, write to the client (the simulated phone gets it), give it back."""
    async with salon_stand(linked=False) as salon:
        booking = (
            "Добрый день! Запишите на мужскую стрижку к Игорю послезавтра в 15:00. Меня зовут Тимур"
        )
        mine = "Тимур, это администратор салона: ждём вас, кофе за наш счёт ☕"

        def scenario() -> None:
            with open_page(MOBILE, salon.zone) as (page, log):
                page = open_from_connect_page(page, salon, scan=True)
                assert page.is_visible("#chat-list-empty")
                screenshot(page, "salon-mobile-empty")

                # A client writes; the list and the chat follow without a reload.
                inbound(salon, NEW_CLIENT, booking)
                open_chat(page, NEW_CLIENT)
                assert page.is_hidden("#chat-list-pane")  # one column: the chat replaces it
                wait_for_bubble(page, ".msg-in", booking)
                page.wait_for_selector("#transcript .msg-by-assistant", timeout=LIVE_MS)
                inbound(salon, NEW_CLIENT, "да")
                wait_for_bubble(page, ".msg-in", "да")
                page.wait_for_selector("#transcript .action-booked", timeout=LIVE_MS)
                marked = page.inner_text("#transcript .action-booked .action-text")
                assert marked.startswith("✓ Записал на"), marked
                still_the_same_document(page)
                assert page.inner_text("#chat-mode").startswith("Отвечает ассистент")
                screenshot(page, "salon-mobile-chat")

                # Take it over, write to the client, give it back.
                page.click("#takeover-button")
                page.wait_for_selector("#giveback-button", state="visible")
                assert page.is_hidden("#takeover-button")
                assert page.inner_text("#chat-mode").startswith("Ведёт администратор")
                page.fill("#reply-text", mine)
                page.click("#reply-send")
                wait_for_bubble(page, ".msg-by-salon", mine)
                assert page.input_value("#reply-text") == ""
                labels = transcript_texts(page, ".msg-by-salon .bubble-by")
                assert labels and set(labels) == {"Салон"}
                for _ in range(100):
                    got = [m for m in phone_chat(salon, NEW_CLIENT) if m["text"] == mine]
                    if got:
                        break
                    page.wait_for_timeout(100)
                assert got and got[0]["direction"] == "out", phone_chat(salon, NEW_CLIENT)
                screenshot(page, "salon-mobile-taken-over")

                page.click("#giveback-button")
                page.wait_for_selector("#takeover-button", state="visible")
                assert page.inner_text("#chat-mode").startswith("Отвечает ассистент")

                # Back to the list: the chat is there, newest first.
                page.click("#chat-back")
                page.wait_for_selector("#chat-list-pane", state="visible")
                first = page.get_attribute(".chat-item", "data-phone")
                assert first == NEW_CLIENT

                # The results count the booking and the assistant's answers, drawn as bars.
                page.click("#tab-results")
                booked = ".legend-item[data-key='booked'] .legend-total"
                page.wait_for_selector(f"{booked}:has-text('1')", timeout=LIVE_MS)
                answered = page.inner_text(".legend-item[data-key='answered'] .legend-total")
                assert int(answered) >= 2
                bookings = page.locator(".chart-card[data-chart='booked moved cancelled']")
                assert bookings.locator("rect.bar.s0").count() == 1  # today's one bar
                assert bookings.locator("rect.bar.s1, rect.bar.s2").count() == 0
                tip = bookings.locator("rect.hit title").last.text_content() or ""
                assert "Записал: 1" in tip, tip
                screenshot(page, "salon-mobile-results-booking")
                still_the_same_document(page)
                assert_clean(page, log)

        await in_browser_thread(scenario)


async def test_script_like_client_messages_are_shown_as_text_on_a_desktop() -> None:
    """On a desktop, list and chat side by side: a client's ``<script>`` and ``<img onerror>``
    arrive live and are shown character for character; nothing runs, no element is made."""
    async with salon_stand(linked=True) as salon:

        def scenario() -> None:
            with open_page(DESKTOP, salon.zone) as (page, log):
                page = open_from_connect_page(page, salon, scan=False)
                inbound(salon, RUSTAM, "Сколько стоит мужская стрижка?")
                page.wait_for_selector(f".chat-item[data-phone='{RUSTAM}']", timeout=LIVE_MS)
                inbound(salon, XSS_CLIENT, SCRIPT_TEXT)
                open_chat(page, XSS_CLIENT)
                inbound(salon, XSS_CLIENT, IMG_TEXT)
                wait_for_bubble(page, ".msg-in", SCRIPT_TEXT)
                wait_for_bubble(page, ".msg-in", IMG_TEXT)
                # the list shows the last one as text too
                page.wait_for_function(
                    "(text) => Array.from(document.querySelectorAll('.chat-item-text'))"
                    ".some(n => n.textContent.includes(text))",
                    arg=IMG_TEXT,
                    timeout=LIVE_MS,
                )
                assert page.evaluate("window.__xss") is None
                assert page.query_selector("#salon-app script, #salon-app img") is None
                # Side by side: the list on the left, the chat on its right, both shown.
                assert page.is_visible("#chat-list-pane") and page.is_visible("#chat-view")
                assert page.is_hidden("#chat-back")
                left = page.locator("#chat-list-pane").bounding_box()
                right = page.locator("#chat-pane").bounding_box()
                assert left is not None and right is not None
                assert right["x"] >= left["x"] + left["width"]
                # Search by phone, then by a name nobody has.
                page.fill("#search-input", "(917) 100-00-66")  # as a person types it
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 1")
                page.fill("#search-input", "Никтоникович")
                page.wait_for_selector("#chat-list-empty", state="visible")
                assert page.inner_text("#chat-list-empty").strip() == "Ничего не нашлось."
                page.fill("#search-input", "")
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 2")
                # Rustam's question was answered; the script-like one went to a person.
                page.check("#filter-needs")
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 1")
                assert page.get_attribute(".chat-item", "data-phone") == XSS_CLIENT
                assert "Нужен администратор" in page.inner_text(".chat-item")
                page.uncheck("#filter-needs")
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 2")
                # Search by the name YClients has for the client.
                page.fill("#search-input", "Руст")
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 1")
                assert page.get_attribute(".chat-item", "data-phone") == RUSTAM
                page.fill("#search-input", "")
                page.wait_for_function("() => document.querySelectorAll('.chat-item').length === 2")
                screenshot(page, "salon-desktop-chat")
                assert page.evaluate("window.__xss") is None
                assert_clean(page, log)

        await in_browser_thread(scenario)


def plan_text(page: Page) -> str:
    return page.inner_text("#plan-list")


async def test_a_new_reminder_time_changes_the_plan() -> None:
    """Settings on a desktop: the plan shows Rustam's day-before reminder at 18:00; at 17:30
    it shows 17:30. A time inside quiet hours is refused next to the field, in Russian; a
    template's preview follows its text."""
    async with salon_stand(linked=True) as salon:

        def scenario() -> None:
            with open_page(DESKTOP, salon.zone) as (page, log):
                page = open_from_connect_page(page, salon, scan=False)
                page.click("#tab-settings")
                page.wait_for_selector("#settings", state="visible")
                page.wait_for_selector(".plan-item", timeout=LIVE_MS)
                assert page.input_value("#set-day-before-at") == "18:00"
                day_before = page.locator(".plan-item", has_text="Накануне визита").first
                assert "18:00" in day_before.inner_text(), plan_text(page)

                page.fill("#set-day-before-at", "17:30")
                page.click("#reminders-save")
                page.wait_for_selector("#reminders-saved", state="visible")
                page.wait_for_function(
                    "() => Array.from(document.querySelectorAll('.plan-item')).some(n =>"
                    " n.textContent.includes('Накануне') && n.textContent.includes('17:30'))",
                    timeout=LIVE_MS,
                )
                assert "отправим" in plan_text(page)
                screenshot(page, "salon-desktop-settings")

                # Quiet hours that swallow the reminder's time: a Russian reason by the field.
                page.fill("#set-quiet-start", "17:00")
                page.click("#reminders-save")
                page.wait_for_selector(".field-error:visible", timeout=LIVE_MS)
                shown = page.inner_text("#reminders-form .field-error:visible")
                assert re.search("[а-яё]", shown, re.IGNORECASE), shown

                # A client-side check needs no server at all.
                page.fill("#set-two-hours-minutes", "5")
                page.click("#reminders-save")
                assert "от 60 до 720" in page.inner_text("#err-two_hours_before_minutes")

                # The template preview fills the placeholders with example values.
                area = "#set-text-day_before"
                page.fill(area, "{greeting} Ждём вас {when}.")
                page.wait_for_function(
                    "() => { const t = document.querySelector('#preview-text-day_before')"
                    ".textContent; return /Ждём вас .*\\d/.test(t) && !t.includes('{'); }",
                    timeout=LIVE_MS,
                )
                page.fill(area, "Ждём вас {nonsense}.")
                page.wait_for_selector("#err-text-day_before:visible", timeout=LIVE_MS)
                assert re.search("[а-яё]", page.inner_text("#err-text-day_before"), re.I)

                # The salon's own words for a service: refused with the reason by that
                # service's field, then saved, and still there after a reload.
                words = "#set-synonyms-6101"  # Стрижка мужская
                assert page.inner_text("label[for='set-synonyms-6101']") == "Стрижка мужская"
                page.fill(words, "полубокс, канадка!")
                page.click("#synonyms-save")
                page.wait_for_selector("#err-synonyms-6101:visible", timeout=LIVE_MS)
                assert "№2" in page.inner_text("#err-synonyms-6101")
                page.fill(words, "полубокс, канадка")
                page.click("#synonyms-save")
                page.wait_for_selector("#synonyms-saved:has-text('Сохранено')", timeout=LIVE_MS)
                assert page.is_hidden("#err-synonyms-6101")
                # The assistant off, and back on after the reload.
                page.click("#set-assistant")
                page.wait_for_selector("#assistant-saved:has-text('Ассистент выключен')")
                page.reload()
                page.click("#tab-settings")
                page.wait_for_selector("#settings", state="visible")
                assert page.input_value(words) == "полубокс, канадка"
                assert page.input_value("#set-day-before-at") == "17:30"
                assert not page.is_checked("#set-assistant")
                page.click("#set-assistant")
                page.wait_for_selector("#assistant-saved:has-text('Ассистент включён')")
                # Chromium logs each refused request (the three 400s above) on the console.
                assert_clean(page, log, expected=("the server responded with a status of 400",))
                assert sum("status of 400" in line for line in log.console) == 3

        await in_browser_thread(scenario)


async def test_a_review_rating_appears_on_the_page() -> None:
    """On a phone: review requests switched to «at once» on the page; Marina, whose visit has
    just ended, gets the request on her phone, answers 5, and the page shows her rating in the
    chat list (live) and in the results (average 5,0; one 5 in the distribution)."""
    async with salon_stand(linked=True) as salon:

        def scenario() -> None:
            with open_page(MOBILE, salon.zone) as (page, log):
                page = open_from_connect_page(page, salon, scan=False)
                page.click("#tab-results")
                page.wait_for_selector("#results", state="visible")
                assert page.inner_text("#rating-count").strip() == "оценок пока нет"
                assert page.locator(".chart-card").count() == 5

                page.click("#tab-settings")
                page.wait_for_selector("#settings", state="visible")
                page.fill("#set-review-after", "0")
                page.click("#reviews-save")
                page.wait_for_selector("#reviews-saved", state="visible")

                request: list[dict[str, Any]] = []
                for _ in range(300):
                    request = [m for m in phone_chat(salon, MARINA) if m["direction"] == "out"]
                    if request:
                        break
                    page.wait_for_timeout(100)
                assert request, "the review request did not reach Marina's phone"
                inbound(salon, MARINA, "5")

                page.click("#tab-chats")
                page.wait_for_function(
                    "(phone) => { const n = document.querySelector("
                    "`.chat-item[data-phone='${phone}']`);"
                    " return n && n.textContent.includes('Оценка 5'); }",
                    arg=MARINA,
                    timeout=LIVE_MS,
                )
                page.click("#tab-results")
                page.wait_for_function(
                    "() => document.querySelector('#rating-average').textContent.startsWith('5,0')",
                    timeout=LIVE_MS,
                )
                assert page.inner_text("#rating-count").strip() == "1 оценка"
                five = page.inner_text(".rating-row[data-rating='5'] .rating-n")
                one = page.inner_text(".rating-row[data-rating='1'] .rating-n")
                assert (five, one) == ("1", "0")
                total = page.inner_text(".legend-item[data-key='ratings'] .legend-total")
                assert total == "1"
                assert page.locator(".chart-card svg.chart rect.bar").count() >= 1
                screenshot(page, "salon-mobile-results")
                assert_clean(page, log)

        await in_browser_thread(scenario)


async def test_whatsapp_tab_logs_out_after_a_confirmation() -> None:
    """The WhatsApp tab shows the number; «Выйти из WhatsApp» asks first (cancel keeps it
    linked), then logs out: the simulated phone is unlinked and the page says so."""
    async with salon_stand(linked=True) as salon:

        def scenario() -> None:
            with open_page(DESKTOP, salon.zone) as (page, log):
                page = open_from_connect_page(page, salon, scan=False)
                page.click("#tab-whatsapp")
                assert page.inner_text("#wa-status").strip() == "Подключён"
                assert page.inner_text("#wa-phone").strip() == "+7 900 123-45-67"
                assert page.is_visible("#relink-button")
                page.click("#wa-logout-button")
                page.wait_for_selector("#wa-logout-dialog", state="visible")
                screenshot(page, "salon-desktop-logout-dialog")
                page.click("#wa-logout-cancel")
                page.wait_for_selector("#wa-logout-dialog", state="hidden")
                assert page.inner_text("#wa-status").strip() == "Подключён"
                page.click("#wa-logout-button")
                page.click("#wa-logout-confirm")
                page.wait_for_function(
                    "() => document.querySelector('#wa-status').textContent !== 'Подключён'",
                    timeout=LIVE_MS,
                )
                status = httpx.get(
                    salon.url(f"/marketplace/status/{salon.company_id}"),
                    headers=salon.stand.admin,
                    timeout=10,
                ).json()
                assert status["whatsapp_connected"] is False
                assert page.inner_text("#wa-status").strip() in (
                    "Не подключён",
                    "Отвязан от телефона",
                )
                assert page.get_attribute("#wa-dot", "class") == "status-dot status-error"
                screenshot(page, "salon-desktop-logged-out")

                # Relink: the connect page with a fresh QR code; the salon's session stays.
                with page.expect_navigation(url=re.compile(r"/marketplace/connect\?")):
                    page.click("#relink-button")
                page.wait_for_function("() => !window.location.search.includes('token=')")
                page.wait_for_function(
                    "() => (document.querySelector('#qr-image').getAttribute('src') || '')"
                    ".startsWith('data:image/png;base64,')"
                )
                back = page.goto(salon.url("/marketplace/salon"))
                assert back is not None and back.status == 200
                page.wait_for_selector("#salon-title")
                assert_clean(page, log)

        await in_browser_thread(scenario)


async def test_the_salon_opens_its_page_from_yclients_and_leaves_it() -> None:
    """YClients' settings link (signed ``user_data``) opens the page with no credential left
    in the address bar or history; a forged signature gets the 403 page; «Выйти из кабинета»
    ends the session (the page then asks to open it from YClients)."""
    async with salon_stand(linked=True) as salon:
        data, sign = sign_user_data({"id": 9001, "salon_id": SALON_ID}, PARTNER_TOKEN)
        query = {"salon_id": str(SALON_ID), "user_data": data, "user_data_sign": sign}
        link = salon.url("/marketplace/salon/open?" + urlencode(query))
        forged = salon.url(
            "/marketplace/salon/open?" + urlencode({**query, "user_data_sign": "0" * 64})
        )

        def scenario() -> None:
            with open_page(MOBILE, salon.zone) as (page, log):
                refused = page.goto(forged)
                assert refused is not None and refused.status == 403
                assert page.inner_text("#error-title").strip() == "Подпись не прошла проверку"
                assert page.query_selector("#salon-app") is None

                opened = page.goto(link)
                assert opened is not None and opened.status == 200
                assert page.url == salon.url("/marketplace/salon")
                assert opened.request.redirected_from is not None  # the 303
                # about:blank, the refused link, the page: the signed link is no entry of its own
                assert page.evaluate("history.length") == 3
                assert "user_data" not in page.evaluate("performance.getEntries()[0].name")
                page.wait_for_selector("#salon-title")
                assert page.inner_text("#salon-title").strip() == "Салон красоты «Ромашка»"
                page.wait_for_function(
                    "() => document.querySelector('#wa-status-line').textContent"
                    ".startsWith('WhatsApp: подключён')"
                )
                with page.expect_navigation(url=re.compile(r"/marketplace/salon$")) as left:
                    page.click("#logout-button")
                answer = left.value
                assert answer is not None and answer.status == 401
                assert page.inner_text("#error-title").strip() == "Войдите в кабинет салона"
                assert "aiadmin_salon" not in {c["name"] for c in page.context.cookies()}
                screenshot(page, "salon-mobile-signed-out")
                # Chromium logs the 403 and 401 documents as failed loads.
                assert_clean(
                    page,
                    log,
                    expected=(
                        "the server responded with a status of 403",
                        "the server responded with a status of 401",
                    ),
                )

        await in_browser_thread(scenario)


async def test_live_updates_come_back_after_the_socket_drops() -> None:
    """The page's socket is dropped and its first retry refused: the page says so, tries
    again with backoff, and once back it shows what happened meanwhile (a client who wrote
    while it was away); a status frame (WhatsApp logged out elsewhere) shows at once."""
    async with salon_stand(linked=True) as salon:

        def scenario() -> None:
            with open_page(MOBILE, salon.zone) as (page, log):
                sockets: list[WebSocketRoute] = []
                opened: list[float] = []

                def route(ws: WebSocketRoute) -> None:
                    # the newest tab: the salon page's (its button opens it)
                    opened.append(page.context.pages[-1].evaluate("performance.now()"))
                    sockets.append(ws)
                    if len(sockets) == 2:
                        ws.close(code=4000, reason="refused by the test")
                    else:
                        ws.connect_to_server()

                page.context.route_web_socket(re.compile(r"/marketplace/salon/api/\d+/ws$"), route)
                page = open_from_connect_page(page, salon, scan=False)
                page.wait_for_selector("#live-line:has-text('Обновляется автоматически')")
                assert len(sockets) == 1

                dropped = page.evaluate("performance.now()")
                sockets[0].close(code=4000, reason="dropped by the test")
                page.wait_for_selector("#live-line:has-text('переподключаемся')")
                inbound(salon, NEW_CLIENT, "Вы работаете в воскресенье?")
                page.wait_for_selector(f".chat-item[data-phone='{NEW_CLIENT}']", timeout=LIVE_MS)
                page.wait_for_selector("#live-line:has-text('Обновляется автоматически')")
                assert len(sockets) == 3
                # Backoff: the first retry 1 s after the drop, the next 2 s after that one.
                assert opened[1] - dropped >= 900, (dropped, opened)
                assert opened[2] - opened[1] >= 1_900, (dropped, opened)
                still_the_same_document(page)

                # A status frame: the salon's WhatsApp logged out by another caller.
                answer = httpx.post(
                    salon.url(f"/marketplace/salon/api/{salon.company_id}/whatsapp/logout"),
                    headers=salon.stand.admin,
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                page.wait_for_function(
                    "() => !document.querySelector('#wa-status-line').textContent"
                    ".startsWith('WhatsApp: подключён')",
                    timeout=LIVE_MS,
                )
                assert page.get_attribute("#wa-dot", "class") == "status-dot status-error"
                assert_clean(page, log)

        await in_browser_thread(scenario)


# ---------------------------------------------------------------- the page's sources


class Tags(HTMLParser):
    """The tags and attributes of a page, and whether a script holds inline code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def render_salon(**variables: Any) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB / "templates"), autoescape=True)
    values = {
        "company_id": 7,
        "salon_id": SALON_ID,
        "salon_title": "Салон «Ромашка»",
        "csrf_token": "c5rf",
        "api_base": "/marketplace/salon/api/7",
        "ws_path": "/marketplace/salon/api/7/ws",
        "connect_available": True,
        **variables,
    }
    return env.get_template("salon.html").render(**values)


def test_the_template_fits_the_csp_and_escapes_the_title() -> None:
    html = render_salon(salon_title=SCRIPT_TEXT)
    tags = Tags()
    tags.feed(html)
    assert not tags.inline_script and "<style" not in html.lower()
    for tag, attributes in tags.tags:
        assert "style" not in attributes, tag
        assert not [a for a in attributes if a.startswith("on")], tag
        if tag == "script":
            assert (attributes.get("src") or "").startswith("/static/")
    assert SCRIPT_TEXT not in html and "&lt;script&gt;" in html
    assert '<meta name="csrf-token" content="c5rf">' in html
    ids = [a["id"] for _, a in tags.tags if a.get("id")]
    assert len(ids) == len(set(ids))


def test_the_script_never_writes_html_and_parses() -> None:
    source = (WEB / "static" / "salon.js").read_text(encoding="utf-8")
    for banned in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
        "sessionStorage",
        "console.log",
        "style=",
    ):
        assert banned not in source, banned
    assert "X-CSRF-Token" in source
    node = shutil.which("node")
    assert node is not None, "node is needed (make test installs it)"
    subprocess.run([node, "--check", str(WEB / "static" / "salon.js")], check=True, timeout=30)
