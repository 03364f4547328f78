"""The pages, rendered without a browser: escaping, CSP-compatibility, ids, assets, and the
connect page's script driven by a fake DOM/WebSocket under Node (skipped without node)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
from quart import render_template
from quart_trio import QuartTrio

WEB = Path(__file__).resolve().parents[2] / "web"
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
HARNESS = Path(__file__).with_name("connect_harness.js")
NODE = shutil.which("node")  # installed by `make test` (scripts/ensure-system-deps.sh --browser)

CONNECT_IDS = (
    "qr-image",
    "qr-countdown",
    "new-qr-button",
    "pairing-form",
    "pairing-phone",
    "pairing-code",
    "status-text",
    "success-panel",
    "success-phone",
    "return-link",
    "error-banner",
)
XSS = '<script>alert("x")</script>'

CONNECT_VARS: dict[str, Any] = {
    "salon_title": "Салон «Ромашка»",
    "company_id": 1,
    "salon_id": 962302,
    "yclients_return_url": "https://yclients.com/appstore/1",
    "simulator_enabled": False,
    "ws_path": "/marketplace/ws",
}


def env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def render(name: str, **variables: Any) -> str:
    return env().get_template(name).render(**variables)


class Page(HTMLParser):
    """Collects what the CSP and the tests care about."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        element_id = attributes.get("id")
        if element_id:
            self.ids.append(element_id)
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True
        self.text.append(data)

    def by_id(self, element_id: str) -> dict[str, str | None]:
        for _tag, attributes in self.tags:
            if attributes.get("id") == element_id:
                return attributes
        raise AssertionError(f"no element #{element_id}")


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


ALL_PAGES = [
    ("landing.html", {}),
    ("connect.html", CONNECT_VARS),
    ("connect.html", {**CONNECT_VARS, "simulator_enabled": True}),
    ("error.html", {}),
    (
        "error.html",
        {"error_title": "Ссылка недействительна", "yclients_return_url": "https://yclients.com/"},
    ),
]


@pytest.mark.parametrize(("name", "variables"), ALL_PAGES)
def test_pages_fit_the_strict_csp(name: str, variables: dict[str, Any]) -> None:
    html = render(name, **variables)
    page = parse(html)
    assert not page.inline_script, "inline script is forbidden by the CSP"
    assert "<style" not in html.lower()
    for tag, attributes in page.tags:
        assert "style" not in attributes, f"<{tag} style=…> is forbidden by the CSP"
        handlers = [a for a in attributes if a.startswith("on")]
        assert not handlers, f"<{tag} {handlers}> inline handlers are forbidden by the CSP"
        if tag == "script":
            assert attributes.get("src"), "every script must be external"
        for attribute in ("src", "href"):
            if attribute not in attributes:
                continue
            value = attributes[attribute] or ""
            if tag in ("script", "img", "link", "iframe", "source", "audio", "video"):
                assert value.startswith("/") and not value.startswith("//"), (
                    f"<{tag} {attribute}={value!r}> must be served by us"
                )
        assert "javascript:" not in (attributes.get("href") or "").lower()
    assert len(page.ids) == len(set(page.ids)), "ids must be unique"
    assert re.search(r"<html lang=\"ru\">", html)
    assert '<meta name="viewport"' in html


@pytest.mark.parametrize(("name", "variables"), ALL_PAGES)
def test_referenced_assets_exist(name: str, variables: dict[str, Any]) -> None:
    page = parse(render(name, **variables))
    assets = [
        attributes.get("src") or attributes.get("href") or ""
        for tag, attributes in page.tags
        if tag in ("script", "img", "link") and (attributes.get("src") or attributes.get("href"))
    ]
    assert assets
    for asset in assets:
        assert asset.startswith("/static/")
        assert (STATIC / asset.removeprefix("/static/")).is_file(), asset


def test_static_prefix_is_configurable() -> None:
    html = render("connect.html", **CONNECT_VARS, static_prefix="/assets")
    assert 'src="/assets/connect.js"' in html
    assert "/static/" not in html


def test_connect_page_has_every_id() -> None:
    page = parse(render("connect.html", **{**CONNECT_VARS, "simulator_enabled": True}))
    for element_id in (*CONNECT_IDS, "simulate-scan"):
        assert element_id in page.ids, element_id


def test_connect_page_data_attributes_and_no_token() -> None:
    html = render("connect.html", **CONNECT_VARS)
    root = parse(html).by_id("connect-app")
    assert root["data-company-id"] == "1"
    assert root["data-salon-id"] == "962302"
    assert root["data-ws-path"] == "/marketplace/ws"
    assert root["data-return-url"] == "https://yclients.com/appstore/1"
    assert root["data-simulator"] == "0"
    assert "token" not in html.lower().replace("no-referrer", "")


def test_simulator_button_only_when_enabled() -> None:
    assert "simulate-scan" not in parse(render("connect.html", **CONNECT_VARS)).ids
    page = parse(render("connect.html", **{**CONNECT_VARS, "simulator_enabled": True}))
    assert "simulate-scan" in page.ids
    assert page.by_id("connect-app")["data-simulator"] == "1"
    assert "Симулировать сканирование" in "".join(page.text)


def test_connect_page_autoescapes_salon_title_and_attributes() -> None:
    html = render(
        "connect.html",
        **{**CONNECT_VARS, "salon_title": XSS, "company_id": '1" onmouseover="alert(1)'},
    )
    assert XSS not in html
    assert "&lt;script&gt;" in html
    page = parse(html)
    assert not page.inline_script
    root = page.by_id("connect-app")
    assert root["data-company-id"] == '1" onmouseover="alert(1)'  # stayed inside the attribute
    assert "onmouseover" not in root
    assert XSS in "".join(page.text)  # shown to the user as text, harmlessly


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//evil.com", "", None],
)
def test_return_url_must_be_http(url: str | None) -> None:
    page = parse(render("connect.html", **{**CONNECT_VARS, "yclients_return_url": url}))
    assert page.by_id("return-link")["href"] == "https://yclients.com/"
    assert page.by_id("connect-app")["data-return-url"] == "https://yclients.com/"


def test_connect_page_instructions_in_russian() -> None:
    text = " ".join("".join(parse(render("connect.html", **CONNECT_VARS)).text).split())
    for words in (
        "WhatsApp",
        "Настройки",
        "Связанные устройства",
        "Привязка устройства",
        "QR-код",
        "Связать по номеру телефона",
        "Вернуться в YClients",
        "WhatsApp подключен",
    ):
        assert words in text, words


def test_landing_page_content() -> None:
    text = " ".join("".join(parse(render("landing.html")).text).split())
    for words in (
        "AI Admin",
        "YClients",
        "Маркетплейс",
        "записывает",
        "support@ai-admin.app",
        "Связанные устройства",
    ):
        assert words in text, words


@pytest.mark.parametrize(
    ("reason", "title"),
    [
        (None, "Ссылка устарела"),
        ("expired", "Ссылка устарела"),
        ("invalid", "Ссылка недействительна"),
        ("not_found", "Салон не найден"),
        ("unavailable", "Сервис временно недоступен"),
        ("something-else", "Ссылка устарела"),
    ],
)
def test_error_page_reasons(reason: str | None, title: str) -> None:
    html = render("error.html", reason=reason)
    assert f'<h1 id="error-title">{title}</h1>' in html
    assert f"<title>{title} — AI Admin</title>" in html
    custom = render("error.html", reason=reason, error_title="Свой заголовок")
    assert '<h1 id="error-title">Свой заголовок</h1>' in custom


def test_error_page_defaults_and_escaping() -> None:
    text = "".join(parse(render("error.html")).text)
    assert "Ссылка устарела" in text
    assert "YClients" in text
    html = render("error.html", error_title=XSS, error_message=XSS)
    assert XSS not in html
    assert "return-link" not in html  # no return URL given
    html = render("error.html", yclients_return_url="javascript:alert(1)")
    assert "javascript:" not in html


async def test_quart_renders_templates_with_autoescape() -> None:
    app = QuartTrio(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC))
    async with app.app_context():
        html = await render_template("connect.html", **{**CONNECT_VARS, "salon_title": XSS})
    assert XSS not in html
    assert "&lt;script&gt;" in html
    response = await app.test_client().get("/static/connect.js")
    assert response.status_code == 200


def test_static_files_reference_nothing_external() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        without_xmlns = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://", without_xmlns), f"{path.name} refers outside"
        assert "@import" not in text


def test_script_never_writes_html() -> None:
    source = (STATIC / "connect.js").read_text(encoding="utf-8")
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
    ):
        assert banned not in source, banned


def test_connect_js_syntax() -> None:
    assert NODE is not None
    subprocess.run([NODE, "--check", str(STATIC / "connect.js")], check=True, timeout=30)


# ------------------------------------------------------------- connect.js behaviour (node)

QR_IMAGE = "data:image/png;base64,iVBORw0KGgo="
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoxfQ.sig"
START_URL = f"/marketplace/connect?token={TOKEN}&company=1&salon=962302&user_data_sign=zz"


def run_page(steps: list[dict[str, Any]], **scenario: Any) -> dict[str, Any]:
    assert NODE is not None
    payload = {"url": START_URL, "simulator": False, "steps": steps, **scenario}
    completed = subprocess.run(
        [NODE, str(HARNESS)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report: dict[str, Any] = json.loads(completed.stdout)
    assert report["errors"] == [], report["errors"]
    return report


def frame(event: str, **data: Any) -> dict[str, Any]:
    return {"server": {"event": event, "data": data}}


OPEN: dict[str, Any] = {"open": True}


def test_token_is_stripped_and_sent_first() -> None:
    report = run_page([OPEN])
    assert report["history"] == ["/marketplace/connect?company=1&salon=962302"]
    assert report["final"]["url"] == "/marketplace/connect?company=1&salon=962302"
    (socket,) = report["sockets"]
    assert socket["url"] == "wss://ai-admin.app/marketplace/ws"
    assert socket["sent"] == [
        {"event": "auth", "data": {"token": TOKEN}},
        {"event": "request-qr", "data": {}},
    ]


def test_plain_http_uses_ws_and_bad_ws_path_falls_back() -> None:
    report = run_page(
        [OPEN], url="http://localhost:3000/marketplace/connect?token=abc", wsPath="//evil.com/x"
    )
    assert report["sockets"][0]["url"] == "ws://localhost:3000/marketplace/ws"


def test_qr_update_shows_image_and_counts_down() -> None:
    report = run_page(
        [
            OPEN,
            frame("qr-update", qr="2@abc", qr_image=QR_IMAGE, expiresIn=20),
            {"snapshot": "shown"},
            {"advance": 3000},
            {"snapshot": "later"},
            {"advance": 17000},
            {"snapshot": "zero"},
            {"advance": 10000},
            {"snapshot": "stale"},
        ]
    )
    shown, later = report["snapshots"]["shown"], report["snapshots"]["later"]
    assert shown["qrSrc"] == QR_IMAGE
    assert shown["visible"]["qr-image"] and not shown["visible"]["qr-placeholder"]
    assert shown["text"]["qr-countdown"] == "Код действует ещё 20 с"
    assert later["text"]["qr-countdown"] == "Код действует ещё 17 с"
    assert shown["text"]["status-text"] == "Отсканируйте QR-код в WhatsApp"
    assert report["snapshots"]["zero"]["text"]["qr-countdown"] == "Обновляем код…"
    stale = report["snapshots"]["stale"]  # no new code came: the user gets a button
    assert stale["visible"]["new-qr-button"] and not stale["visible"]["qr-image"]


def test_qr_expired_offers_a_new_code() -> None:
    report = run_page(
        [
            OPEN,
            frame("qr-update", qr_image=QR_IMAGE, expiresIn=20),
            frame("qr-expired"),
            {"snapshot": "expired"},
            {"click": "new-qr-button"},
            {"snapshot": "requested"},
            frame("qr-update", qr_image=QR_IMAGE + "A", expiresIn=20),
        ]
    )
    expired = report["snapshots"]["expired"]
    assert not expired["visible"]["qr-image"]
    assert expired["visible"]["new-qr-button"]
    assert expired["text"]["status-text"] == "Срок действия QR-кода истёк"
    assert not report["snapshots"]["requested"]["visible"]["new-qr-button"]
    sent = report["sockets"][0]["sent"]
    assert [f["event"] for f in sent] == ["auth", "request-qr", "request-qr"]
    assert report["final"]["qrSrc"] == QR_IMAGE + "A"
    assert report["final"]["pendingTimers"] == 1  # the countdown only


def test_pairing_code_flow() -> None:
    report = run_page(
        [
            OPEN,
            {"input": ["pairing-phone", "12-34"]},
            {"submit": "pairing-form"},
            {"snapshot": "bad"},
            {"input": ["pairing-phone", "+7 (900) 123-45-67"]},
            {"submit": "pairing-form"},
            {"snapshot": "waiting"},
            frame("pairing-code", code="abcd1234"),
            {"snapshot": "code"},
        ]
    )
    bad = report["snapshots"]["bad"]
    assert bad["visible"]["error-banner"]
    assert "кодом страны" in bad["text"]["error-banner"]
    sent = report["sockets"][0]["sent"]
    assert sent[-1] == {"event": "request-pairing-code", "data": {"phone": "+7 (900) 123-45-67"}}
    assert sum(f["event"] == "request-pairing-code" for f in sent) == 1
    waiting = report["snapshots"]["waiting"]
    assert waiting["pairingDisabled"] and not waiting["visible"]["error-banner"]
    code = report["snapshots"]["code"]
    assert code["text"]["pairing-code"] == "ABCD-1234"
    assert code["visible"]["pairing-result"] and not code["pairingDisabled"]
    assert code["text"]["status-text"] == "Введите код в WhatsApp на телефоне"


def test_connected_shows_success_and_stops_reconnecting() -> None:
    report = run_page(
        [
            OPEN,
            frame("qr-update", qr_image=QR_IMAGE, expiresIn=20),
            frame(
                "whatsapp-connected",
                success=True,
                phone="79001234567",
                companyId=1,
                message="WhatsApp успешно подключен!",
            ),
            {"snapshot": "done"},
            {"close": True},
            {"advance": 120000},
        ],
        returnUrl="https://yclients.com/appstore/1",
    )
    done = report["snapshots"]["done"]
    assert done["visible"]["success-panel"]
    assert not done["visible"]["qr-panel"] and not done["visible"]["pairing-panel"]
    assert done["text"]["success-phone"] == "+7 900 123-45-67"
    assert done["text"]["status-text"] == "WhatsApp подключен"
    assert done["returnHref"] == "https://yclients.com/appstore/1"
    assert done["revealed"] == ["success-panel"]  # scrolled into view on small screens
    assert done["pendingTimers"] == 0  # countdown stopped
    assert report["final"]["sockets"] == 1  # no reconnect after success


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", "Ожидаем подключения WhatsApp"),
        ("linking", "Ожидаем сканирования QR-кода"),
        ("reconnecting", "Восстанавливаем связь с WhatsApp…"),
        ("logged_out", "WhatsApp отвязан от телефона. Отсканируйте QR-код заново"),
        ("frozen", "Интеграция приостановлена в YClients"),
        ("uninstalled", "Приложение AI Admin удалено из YClients"),
        ("activation_failed", "Не удалось завершить подключение"),
        ("something_new", "Проверяем состояние подключения…"),  # never the server's word
    ],
)
def test_status_texts(status: str, expected: str) -> None:
    report = run_page(
        [OPEN, frame("status", status=status, whatsapp_connected=False, message="English")]
    )
    assert report["final"]["text"]["status-text"].startswith(expected)


def test_status_active_means_success_and_logged_out_goes_back() -> None:
    report = run_page(
        [
            OPEN,
            frame("status", status="active", whatsapp_connected=True, phone="79001234567"),
            {"snapshot": "active"},
            frame("status", status="logged_out", whatsapp_connected=False),
        ]
    )
    assert report["snapshots"]["active"]["visible"]["success-panel"]
    final = report["final"]
    assert not final["visible"]["success-panel"]
    assert final["visible"]["qr-panel"] and final["visible"]["new-qr-button"]


@pytest.mark.parametrize("code", ["token_expired", "invalid_token"])
def test_expired_token_shows_expired_state(code: str) -> None:
    report = run_page(
        [
            OPEN,
            frame("error", code=code, message="Token expired"),
            {"close": True},
            {"advance": 120000},
        ]
    )
    final = report["final"]
    assert final["visible"]["expired-panel"]
    assert not final["visible"]["qr-panel"]
    assert final["text"]["status-text"] == "Ссылка устарела"
    assert report["sockets"][0]["closedByClient"] == 1000
    assert final["sockets"] == 1


def test_rate_limited_waits_a_minute() -> None:
    report = run_page(
        [
            OPEN,
            frame("error", code="rate_limited", message="Too many connections"),
            {"snapshot": "limited"},
            {"close": True},
            {"advance": 59999},
            {"snapshot": "before"},
            {"advance": 1},
        ]
    )
    assert report["snapshots"]["limited"]["text"]["error-banner"] == (
        "Слишком много попыток, подождите минуту"
    )
    assert report["snapshots"]["before"]["sockets"] == 1
    assert report["final"]["sockets"] == 2


def test_generic_error_banner() -> None:
    """An error without a code we know gets our generic text, never the server's message."""
    report = run_page([OPEN, frame("error", message="Something broke")])
    assert report["final"]["text"]["error-banner"] == "Произошла ошибка. Попробуйте ещё раз."
    assert report["final"]["visible"]["qr-panel"]


def test_reconnects_with_exponential_backoff_and_reauthenticates() -> None:
    steps: list[dict[str, Any]] = [OPEN, {"close": True}, {"snapshot": "lost"}]
    expected_delays = [1000, 2000, 4000, 8000, 16000, 30000, 30000]
    for index, delay in enumerate(expected_delays):
        steps += [
            {"advance": delay - 1},
            {"snapshot": f"before-{index}"},
            {"advance": 1},
            {"close": True},
        ]
    # Open the last attempt and get an answer: the backoff starts over at 1 s.
    steps += [
        {"advance": 30000},
        OPEN,
        frame("status", status="linking"),
        {"close": True},
        {"advance": 1000},
        {"snapshot": "reset"},
    ]
    report = run_page(steps)
    lost = report["snapshots"]["lost"]
    assert lost["text"]["status-text"] == "Соединение потеряно, переподключаемся…"
    for index, delay in enumerate(expected_delays):
        assert report["snapshots"][f"before-{index}"]["sockets"] == index + 1, delay
    sockets = report["sockets"]
    assert len(sockets) == len(expected_delays) + 3
    reopened = sockets[-2]
    assert reopened["sent"] == [
        {"event": "auth", "data": {"token": TOKEN}},
        {"event": "request-qr", "data": {}},
    ]
    assert report["snapshots"]["reset"]["sockets"] == len(expected_delays) + 3


def test_online_event_reconnects_at_once() -> None:
    report = run_page([OPEN, {"close": True}, {"advance": 100}, {"window": "online"}])
    assert report["final"]["sockets"] == 2


def test_without_token_nothing_connects() -> None:
    report = run_page([], url="/marketplace/connect?company=1&salon=962302")
    final = report["final"]
    assert final["sockets"] == 0
    assert final["visible"]["expired-panel"]
    assert "не содержит ключа" in final["text"]["expired-text"]


def test_simulator_button_sends_frame() -> None:
    report = run_page([OPEN, {"click": "simulate-scan"}], simulator=True)
    assert report["sockets"][0]["sent"][-1] == {"event": "simulate-scan", "data": {}}


def test_hostile_or_broken_frames_are_ignored() -> None:
    report = run_page(
        [
            OPEN,
            {"raw": "not json"},
            {"raw": "null"},
            {"raw": '{"event": "__proto__", "data": {}}'},
            {"raw": '{"event": "constructor", "data": {}}'},
            {"raw": '{"event": "hasOwnProperty"}'},
            {"raw": '{"event": "qr-update", "data": "text"}'},
            frame("qr-update", qr_image="javascript:alert(1)", expiresIn=20),
            frame("qr-update", qr_image="https://evil.com/x.png", expiresIn=20),
            frame("pairing-code", code="<img src=x>"),
            frame("whatsapp-connected", success=False, message="Номер заблокирован"),
        ]
    )
    final = report["final"]
    assert final["qrSrc"] is None
    assert not final["visible"]["success-panel"]
    assert final["text"]["error-banner"] == "Не удалось подключить WhatsApp. Попробуйте ещё раз."
    assert final["text"]["pairing-code"] == "IMGSRCX"
