"""The salon's page shows every time on the salon's own clock, not the browser's (issue 16).

The assistant and the reminders work on the salon's clock (its YClients card's zone), so an
admin whose browser is elsewhere (an owner travelling) must see the same times they use. Here
the browser's zone is 11 or 15 hours away from the salon's, so that even its date differs:
a client's message, the chat list, the reminder plan and WhatsApp's "connected" time all show
the salon-local clock. The settings tab offers the template placeholders the settings API
lists (one the API adds is offered too). Reuses the stand and browser of
:mod:`tests.e2e.test_salon_page`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, Route

from .test_salon_page import (
    DESKTOP,
    LIVE_MS,
    RUSTAM,
    Salon,
    assert_clean,
    in_browser_thread,
    inbound,
    open_chat,
    open_page,
    salon_stand,
    wait_for_bubble,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "Сколько стоит мужская стрижка?"
#: A placeholder the page cannot know of but from the settings API's own list.
EXTRA_PLACEHOLDER = {
    "name": "visit_number",
    "description": "Which visit of the client this is",
    "example": "5",
    "may_be_empty": True,
    "texts": ["day_before"],
}
PLAN_KIND = {"day_before": "Накануне визита", "two_hours": "Незадолго до визита"}
#: A time the page shows: "чт, 4 дек., 18:00" → ("4", "18:00").
WHEN = re.compile(r"(\d{1,2}) [^,]*, (\d{2}:\d{2})$")


def browser_zone(salon_zone: str, now: datetime) -> str:
    """A fixed-offset zone whose date differs from the salon's now (the stand's salon is at
    about 14:00): 11 hours east (about 01:00 the next day) or 15 hours west (about 23:00 the
    day before), whichever exists (zones are UTC-12 … UTC+14)."""
    offset = ZoneInfo(salon_zone).utcoffset(now)
    assert offset is not None
    hours = int(offset.total_seconds()) // 3600
    browser = hours + 11 if hours + 11 <= 14 else hours - 15
    # POSIX sign: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" if browser == 0 else f"Etc/GMT{-browser:+d}"


def clock(moment: str, zone: str) -> str:
    """``HH:MM`` of an API moment on the clock of ``zone``."""
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).strftime("%H:%M")


def day_and_clock(moment: str, zone: str) -> tuple[str, str]:
    """The day of the month and ``HH:MM`` of an API moment on the clock of ``zone``."""
    local = datetime.fromisoformat(moment).astimezone(ZoneInfo(zone))
    return str(local.day), local.strftime("%H:%M")


def api(salon: Salon, path: str) -> dict[str, Any]:
    """The salon page's API answer at ``path`` (the admin key is let in too)."""
    answer = httpx.get(
        salon.url(f"/marketplace/salon/api/{salon.company_id}{path}"),
        headers=salon.stand.admin,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def shown_when(text: str) -> tuple[str, str]:
    """The day of the month and time of a "when" the page shows."""
    found = WHEN.search(text.strip())
    assert found, text
    return found.group(1), found.group(2)


def add_placeholder(route: Route) -> None:
    """The settings answer with one more placeholder in the API's own list."""
    if route.request.method != "GET":
        route.fallback()
        return
    response = route.fetch()
    body = response.json()
    body["placeholders"] = [*body["placeholders"], EXTRA_PLACEHOLDER]
    route.fulfill(response=response, json=body)


def open_salon_page(page: Page, salon: Salon) -> None:
    """The salon's page, its session bought with the connect token through the session API
    (the connect page's own way in is tested in :mod:`tests.e2e.test_salon_page`; here the
    clock is)."""
    token = httpx.URL(salon.connect_url).params["token"]
    answer = page.request.post(salon.url("/marketplace/salon/session"), data={"token": token})
    assert answer.status == 200, answer.text()
    response = page.goto(salon.url("/marketplace/salon"), wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    page.wait_for_function(
        "() => /подключ/i.test(document.querySelector('#wa-status-line').textContent)"
    )


def wait_for_list_time(page: Page, salon: Salon, phone: str) -> None:
    """The chat list shows ``phone``'s last message time on the salon's clock (the assistant's
    answer may move it meanwhile: read until the page and the API agree)."""
    item = f".chat-item[data-phone='{phone}'] .chat-item-time"
    expected = shown = ""
    for _ in range(LIVE_MS // 250):
        listed = api(salon, "/conversations")["conversations"]
        row = next(c for c in listed if c["phone"] == phone)
        expected = clock(row["last_message_at"] or row["updated_at"], salon.zone)
        shown = page.inner_text(item).strip()
        if shown == expected:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the list shows {shown!r}, the salon's clock says {expected!r}")


async def test_times_are_on_the_salons_clock_when_the_browser_is_elsewhere() -> None:
    """The browser 11 or 15 hours away from the salon: a message's time, the chat list, the
    reminder plan and WhatsApp's "connected" time are the salon's; the placeholders offered
    are the settings API's."""
    async with salon_stand(linked=True) as salon:
        elsewhere = browser_zone(salon.zone, datetime.now(UTC))

        def scenario() -> None:
            with open_page(DESKTOP, elsewhere) as (page, log):
                assert (
                    page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == elsewhere
                )
                open_salon_page(page, salon)
                overview = api(salon, "/overview")
                assert overview["timezone"] == salon.zone

                # A client's message: its time in the transcript is the salon's.
                inbound(salon, RUSTAM, QUESTION)
                open_chat(page, RUSTAM)
                wait_for_bubble(page, ".msg-in", QUESTION)
                items = api(salon, f"/conversations/{RUSTAM}")["items"]
                sent = next(i for i in items if i.get("text") == QUESTION)["at"]
                assert clock(sent, salon.zone) != clock(sent, elsewhere)
                bubble = page.locator("#transcript .msg-in", has_text=QUESTION).first
                assert bubble.locator(".bubble-time").inner_text().strip() == clock(
                    sent, salon.zone
                )
                # It is today on the salon's clock (yesterday or tomorrow on the browser's).
                assert page.inner_text("#transcript .day").strip() == "Сегодня"
                wait_for_list_time(page, salon, RUSTAM)

                # The plan: Rustam's reminder the day before at 18:00, on the salon's clock.
                page.route("**/settings", add_placeholder)
                page.click("#tab-settings")
                page.wait_for_selector("#settings", state="visible")
                page.wait_for_selector(".plan-item", timeout=LIVE_MS)
                planned = api(salon, "/reminders/plan")["reminders"]
                expected = {
                    (
                        PLAN_KIND[r["kind"]],
                        day_and_clock(r["due_at"], salon.zone),
                        day_and_clock(r["visit_time"], salon.zone),
                    )
                    for r in planned
                    if r["kind"] in PLAN_KIND
                }
                assert any(e[0] == "Накануне визита" and e[1][1] == "18:00" for e in expected)
                shown = {
                    (
                        row.locator(".plan-kind").inner_text().strip(),
                        shown_when(row.locator(".plan-due").inner_text()),
                        shown_when(row.locator(".plan-visit").inner_text()),
                    )
                    for row in page.locator(".plan-item").all()
                }
                assert expected <= shown, (expected, shown)

                # The placeholders offered are the API's list, the one it added included.
                offered = page.inner_text("#placeholder-list")
                assert "{visit_number}" in offered, offered
                for name in ("greeting", "when", "link"):
                    assert "{" + name + "}" in offered, offered

                # WhatsApp's "connected" time is the salon's.
                page.click("#tab-whatsapp")
                page.wait_for_selector("#panel-whatsapp", state="visible")
                since = api(salon, "/overview")["whatsapp"]["connected_at"]
                assert since
                page.wait_for_function(
                    "(text) => document.querySelector('#wa-since').textContent.endsWith(text)",
                    arg=", " + clock(since, salon.zone),
                )
                assert shown_when(page.inner_text("#wa-since")) == day_and_clock(since, salon.zone)
                assert_clean(page, log)

        await in_browser_thread(scenario)
