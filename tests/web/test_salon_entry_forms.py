"""The salon page's entries as plain HTML forms (issue 16): the connect page's button posts its
token as a form into a new tab (the page may sit in YClients' iframe, where a cookie set for a
frame's ``fetch`` is refused), and YClients' settings link opened inside a frame answers a
page whose button posts the same signed fields to ``POST /marketplace/salon/open`` in a new
tab. Each ends in a 303 to the page with the session cookie; each refusal is a Russian page.
"""

from __future__ import annotations

from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest
from quart.typing import TestClientProtocol as Client

from actors.yclients import sign_user_data
from config import Settings
from tests.web.conftest import (
    JWT_SECRET,
    WebHarness,
    issue_jwt,
    make_web_settings,
    register,
    uninstall,
)
from web._salon_session import COOKIE_NAME, decode_session
from web._security import PAGE_CSP

PARTNER_TOKEN = "partner-token-for-salon-entry-form-tests"
PAGE = "/marketplace/salon"
OWN_ORIGIN = "http://localhost"
ELSEWHERE = "https://evil.example"
#: What Chromium sends with a form post from one of our pages (their referrer policy is
#: no-referrer, so the Origin is "null"; Sec-Fetch-Site is the browser's own word).
FROM_OUR_PAGE = {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}
IN_A_FRAME = {
    "Sec-Fetch-Dest": "iframe",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
}


@pytest.fixture
def settings() -> Settings:
    """Development settings with a partner token, so signed ``user_data`` can be checked."""
    return make_web_settings(yclients_api_key=PARTNER_TOKEN)


def cookie_of(response: Any) -> str | None:
    """The session cookie's value a response sets (``None`` when it sets none)."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{COOKIE_NAME}="):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            lowered = header.lower()
            assert "httponly" in lowered and "samesite=lax" in lowered, header
            return parsed[COOKIE_NAME].value
    return None


def bare(web: WebHarness) -> Client:
    """A client without a cookie jar: every cookie a test sends is explicit."""
    return web.app.test_client(use_cookies=False)


async def page_for(web: WebHarness, cookie: str) -> int:
    response = await bare(web).get(PAGE, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    return response.status_code


def assert_redirected_with_cookie(response: Any, company_id: int) -> str:
    assert response.status_code == 303
    assert response.headers["Location"] in (PAGE, f"{OWN_ORIGIN}{PAGE}")
    assert response.headers["Cache-Control"] == "no-store"
    cookie = cookie_of(response)
    assert cookie is not None
    session = decode_session(cookie, JWT_SECRET)
    assert session is not None and session.company_id == company_id
    return cookie


async def assert_error_page(response: Any, status: int, text: str) -> str:
    html: str = await response.get_data(as_text=True)
    assert response.status_code == status, html[:300]
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert 'id="error-page"' in html and text in html, html
    assert '"success"' not in html  # a page, not the API's JSON
    assert cookie_of(response) is None
    return html


def signed(salon_id: int, user: dict[str, Any], partner: str = PARTNER_TOKEN) -> dict[str, str]:
    data, sign = sign_user_data(user, partner)
    return {"salon_id": str(salon_id), "user_data": data, "user_data_sign": sign}


class Forms(HTMLParser):
    """The forms of a page with their inputs, and whether any script is on it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.scripts = 0
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({**values, "inputs": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"][values.get("name", "")] = values
        elif tag == "script":
            self.scripts += 1
        elif tag == "button":
            self._in_button = True
            self.buttons.append("")
        for name in values:
            assert not name.startswith("on"), (tag, name)  # no inline handlers either

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.buttons[-1] += data


# ----------------------------------------------------- the connect page's form post


async def test_the_connect_pages_form_post_sets_the_cookie_and_sends_the_tab_to_the_page(
    web: WebHarness,
) -> None:
    salon = await register(web)
    response = await bare(web).post(
        f"{PAGE}/session", form={"token": salon.token}, headers=FROM_OUR_PAGE
    )
    cookie = assert_redirected_with_cookie(response, salon.company_id)
    assert salon.token not in response.headers["Location"]
    assert await page_for(web, cookie) == 200
    # Our own Origin (a browser without the no-referrer rule) and a company JWT do too.
    jwt = await issue_jwt(web, salon)
    again = await bare(web).post(
        f"{PAGE}/session", form={"token": jwt}, headers={"Origin": OWN_ORIGIN}
    )
    assert_redirected_with_cookie(again, salon.company_id)
    events = await web.storage.audit.recent(salon.company_id)
    opened = [e.data for e in events if e.event_type == "salon_session_opened"]
    assert opened == [{"via": "token"}] * 2


async def test_the_json_sign_in_keeps_its_answer(web: WebHarness) -> None:
    salon = await register(web)
    response = await bare(web).post(
        f"{PAGE}/session", json={"token": salon.token}, headers={"Origin": OWN_ORIGIN}
    )
    assert response.status_code == 200
    assert await response.get_json() == {
        "success": True,
        "company_id": salon.company_id,
        "location": PAGE,
    }
    assert cookie_of(response) is not None


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        ({"token": "not-a-token-at-all-0123456789"}, 401, "Ссылка устарела"),
        ({"token": "eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoxfQ.c2ln"}, 401, "Ссылка устарела"),
        ({}, 400, "Ссылка недействительна"),
        ({"token": ""}, 400, "Ссылка недействительна"),
    ],
)
async def test_a_bad_token_in_the_form_gets_a_russian_page(
    web: WebHarness, form: dict[str, str], status: int, text: str
) -> None:
    response = await bare(web).post(f"{PAGE}/session", form=form, headers=FROM_OUR_PAGE)
    html = await assert_error_page(response, status, text)
    assert "Откройте" in html


async def test_an_uninstalled_salons_token_in_the_form_gets_the_410_page(web: WebHarness) -> None:
    salon = await register(web)
    await uninstall(web, salon.company_id)
    response = await bare(web).post(
        f"{PAGE}/session", form={"token": salon.token}, headers=FROM_OUR_PAGE
    )
    await assert_error_page(response, 410, "Приложение удалено")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": ELSEWHERE},
        {"Origin": ELSEWHERE, "Sec-Fetch-Site": "cross-site"},
        # another site's page with the no-referrer policy also sends "null"
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
        # "null" alone (a sandboxed frame, an old browser) proves nothing
        {"Origin": "null"},
        # the browser's word beats an Origin that looks like ours
        {"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_another_sites_form_cannot_sign_a_browser_in(
    web: WebHarness, headers: dict[str, str]
) -> None:
    salon = await register(web)
    response = await bare(web).post(f"{PAGE}/session", form={"token": salon.token}, headers=headers)
    await assert_error_page(response, 403, "Запрос отклонён")


# ------------------------------------------------------ the settings link in a frame


async def test_the_settings_link_in_a_frame_offers_a_new_tab_and_sets_no_cookie(
    web: WebHarness,
) -> None:
    salon = await register(web)
    fields = signed(salon.salon_id, {"user_id": 7, "salon_id": salon.salon_id})
    response = await bare(web).get(f"{PAGE}/open?{urlencode(fields)}", headers=IN_A_FRAME)
    html = await response.get_data(as_text=True)
    assert response.status_code == 200, html[:300]
    assert response.mimetype == "text/html"
    assert cookie_of(response) is None
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP  # YClients may frame it
    assert "X-Frame-Options" not in response.headers
    parsed = Forms()
    parsed.feed(html)
    assert parsed.scripts == 0
    assert [b.strip() for b in parsed.buttons] == ["Открыть кабинет салона"]
    [form] = parsed.forms
    assert form["method"] == "post" and form["action"] == f"{PAGE}/open"
    assert form["target"] == "_blank"
    assert {name: i["value"] for name, i in form["inputs"].items()} == fields
    assert all(i["type"] == "hidden" for i in form["inputs"].values())
    # Posted from that page (Origin "null", the browser's no-referrer rule), in a new tab:
    posted = await bare(web).post(f"{PAGE}/open", form=fields, headers=FROM_OUR_PAGE)
    cookie = assert_redirected_with_cookie(posted, salon.company_id)
    assert "user_data" not in posted.headers["Location"]
    assert await page_for(web, cookie) == 200
    # Not in a frame, the link itself still sets the cookie at once.
    direct = await bare(web).get(f"{PAGE}/open?{urlencode(fields)}")
    assert_redirected_with_cookie(direct, salon.company_id)


async def test_a_forged_link_in_a_frame_gets_the_403_page_not_the_button(web: WebHarness) -> None:
    salon = await register(web)
    fields = signed(salon.salon_id, {"user_id": 7, "salon_id": salon.salon_id})
    forged = {**fields, "user_data_sign": "0" * 64}
    response = await bare(web).get(f"{PAGE}/open?{urlencode(forged)}", headers=IN_A_FRAME)
    html = await assert_error_page(response, 403, "Подпись не прошла проверку")
    assert "<form" not in html


async def test_the_posted_settings_link_is_checked_as_the_link_is(web: WebHarness) -> None:
    salon = await register(web)
    other = await register(web)
    bound = {"user_id": 7, "salon_id": salon.salon_id}
    fields = signed(salon.salon_id, bound)
    cases: list[tuple[dict[str, str], int, str]] = [
        ({**fields, "user_data_sign": "0" * 64}, 403, "Подпись не прошла проверку"),
        (signed(salon.salon_id, bound, partner="someone-elses-token"), 403, "Подпись"),
        ({"salon_id": fields["salon_id"], "user_data": fields["user_data"]}, 403, "Подпись"),
        (signed(other.salon_id, bound), 403, "Нет доступа к кабинету"),
        (signed(55_555_555, {"user_id": 7, "salon_id": 55_555_555}), 404, "Салон не найден"),
        ({**fields, "salon_id": "abc"}, 400, "Ссылка недействительна"),
        ({}, 400, "Ссылка недействительна"),
    ]
    for form, status, text in cases:
        response = await bare(web).post(f"{PAGE}/open", form=form, headers=FROM_OUR_PAGE)
        await assert_error_page(response, status, text)
    await uninstall(web, salon.company_id)
    response = await bare(web).post(f"{PAGE}/open", form=fields, headers=FROM_OUR_PAGE)
    await assert_error_page(response, 410, "Приложение удалено")


async def test_both_form_entries_are_documented(web: WebHarness) -> None:
    document = await (await web.client.get("/openapi.json")).get_json()
    posted = document["paths"][f"{PAGE}/open"]["post"]
    assert "303" in posted["responses"] and "403" in posted["responses"]
    linked = document["paths"][f"{PAGE}/open"]["get"]
    assert "200" in linked["responses"] and "iframe" in linked["description"]
    session = document["paths"][f"{PAGE}/session"]["post"]
    assert "303" in session["responses"]
    assert "x-www-form-urlencoded" in session["description"]
