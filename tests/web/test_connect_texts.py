"""The connect page of a linked salon whose session is not connected, and the page's texts for
every error the server can send — connect.js driven by a fake DOM/WebSocket under Node.

The bug: an active salon whose session was reconnecting showed «WhatsApp подключен», a red
English "WhatsApp is already connected" (the refusal of the page's own request-qr) and a QR
spinner that never ended.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_pages_static import OPEN, QR_IMAGE, STATIC, TEMPLATES, frame, run_page

ROOT = Path(__file__).resolve().parents[2]
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
ENGLISH_MESSAGE = "An English server message that must never reach the page"
RECONNECTING = "Восстанавливаем связь с WhatsApp…"
ALREADY = frame("error", code="already_linked", message="WhatsApp is already connected")

#: Where the server writes the codes of the ``error`` frames a connect page can get.
ERROR_SOURCES = (
    "web/routes/websocket.py",
    "web/_revocation.py",
    "actors/_placement.py",
    "actors/company/_actor.py",
    "actors/company/_transitions.py",
)
CODE_PATTERNS = (
    re.compile(r'"code":\s*"([a-z_]+)"'),  # {"message": ..., "code": "x"}
    re.compile(r'error_frame\([^)]*?,\s*"([a-z_]+)"\)'),  # error_frame(message, "x")
    re.compile(r'Reply\(False,[^)]*?,\s*"([a-z_]+)"\)'),  # a refused command's reply
    re.compile(r'_refuse\(state,\s*"([a-z_]+)"'),
    re.compile(r'refuse\(\s*[A-Z_]+,[^)]*?,\s*"([a-z_]+)"\s*\)', re.DOTALL),  # before accept
)
#: Codes whose text is not a reply to a command: refusals by status, BadRequest of the phone.
OTHER_CODES = {"frozen", "uninstalled", "invalid_field", "missing_field", "refused"}


def server_error_codes() -> set[str]:
    """Every ``error`` code found in the server's sources (see :data:`ERROR_SOURCES`)."""
    codes = set(OTHER_CODES)
    for name in ERROR_SOURCES:
        source = (ROOT / name).read_text()
        for pattern in CODE_PATTERNS:
            codes.update(pattern.findall(source))
    return codes


def page_handled_codes() -> set[str]:
    """The codes connect.js has its own text or handling for (``ERROR_TEXT`` keys and
    ``code === '…'`` branches)."""
    script = (STATIC / "connect.js").read_text()
    table = script.split("var ERROR_TEXT = {", 1)[1].split("};", 1)[0]
    keys = set(re.findall(r"^\s*([a-z_]+):", table, re.MULTILINE))
    return keys | set(re.findall(r"code === '([a-z_]+)'", script))


def linked_view(report: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    shot: dict[str, Any] = report["snapshots"][name] if name else report["final"]
    return shot


def assert_reconnecting(shot: dict[str, Any]) -> None:
    """The reconnecting state: its panel, in Russian, no QR spinner, no error, no success."""
    visible, text = shot["visible"], shot["text"]
    assert visible["reconnecting-panel"]
    assert not visible["qr-panel"] and not visible["pairing-panel"]  # no spinner, no QR
    assert not visible["success-panel"]
    assert not visible["error-banner"], text.get("error-banner")
    assert text["status-text"] == RECONNECTING
    assert "подключен" not in text["status-text"]
    assert "сканировать QR-код заново не нужно" in text["reconnecting-text"]
    assert shot["statusClass"] == "status-dot status-warn"


def test_the_reported_page_shows_reconnecting_in_russian() -> None:
    """Status ``active`` without a connected session, then the refusal of request-qr."""
    report = run_page(
        [
            OPEN,
            frame("status", status="active", whatsapp_connected=False, phone="79001234567"),
            ALREADY,
            {"snapshot": "reconnecting"},
            frame("status", status="active", whatsapp_connected=True, phone="79001234567"),
        ]
    )
    shot = linked_view(report, "reconnecting")
    assert_reconnecting(shot)
    assert shot["text"]["reconnecting-phone"] == "+7 900 123-45-67"
    assert "already" not in str(shot["text"])
    assert "reconnecting-panel" in shot["revealed"]
    final = report["final"]  # back online: the success state
    assert final["visible"]["success-panel"] and not final["visible"]["reconnecting-panel"]
    assert final["text"]["status-text"] == "WhatsApp подключен"


@pytest.mark.parametrize("status", ["active", "reconnecting"])
def test_refusal_before_the_status_and_either_status(status: str) -> None:
    """The refusal may come first (cluster mode): the page waits for the status in Russian."""
    report = run_page(
        [
            OPEN,
            ALREADY,
            {"snapshot": "refused"},
            frame("status", status=status, whatsapp_connected=False, message=ENGLISH_MESSAGE),
        ]
    )
    assert_reconnecting(linked_view(report, "refused"))
    assert_reconnecting(report["final"])
    assert ENGLISH_MESSAGE not in str(report)


def test_reconnecting_page_keeps_its_socket_and_asks_no_qr_again() -> None:
    report = run_page(
        [
            OPEN,
            frame("status", status="reconnecting", whatsapp_connected=False),
            {"close": True},
            {"advance": 1000},
            OPEN,
            {"snapshot": "reopened"},
            frame("status", status="reconnecting", whatsapp_connected=False),
        ]
    )
    first, second = report["sockets"]
    assert [f["event"] for f in first["sent"]] == ["auth", "request-qr"]
    assert [f["event"] for f in second["sent"]] == ["auth"]  # linked: no QR asked for
    assert report["snapshots"]["reopened"]["text"]["status-text"] == RECONNECTING
    assert_reconnecting(report["final"])


def test_success_then_a_drop_then_unlinked() -> None:
    report = run_page(
        [
            OPEN,
            frame("status", status="active", whatsapp_connected=True, phone="79001234567"),
            frame("status", status="reconnecting", whatsapp_connected=False, phone="79001234567"),
            {"snapshot": "dropped"},
            frame("status", status="logged_out", whatsapp_connected=False),
        ]
    )
    assert_reconnecting(linked_view(report, "dropped"))
    final = report["final"]
    assert final["visible"]["qr-panel"] and final["visible"]["new-qr-button"]
    assert not final["visible"]["reconnecting-panel"]


def test_banned_and_replaced_say_what_happened() -> None:
    report = run_page(
        [
            OPEN,
            frame("status", status="active", whatsapp_connected=False, banned=True),
            {"snapshot": "banned"},
            frame("status", status="active", whatsapp_connected=False, replaced=True),
            {"snapshot": "replaced"},
            {"click": "resume-button"},
            {"snapshot": "resuming"},
        ]
    )
    banned = linked_view(report, "banned")
    assert banned["visible"]["reconnecting-panel"] and not banned["visible"]["resume-button"]
    assert banned["text"]["status-text"] == "WhatsApp временно ограничил номер"
    assert "ограничение снимут" in banned["text"]["reconnecting-text"]
    replaced = linked_view(report, "replaced")
    assert replaced["text"]["status-text"] == "WhatsApp открыт в другом месте"
    assert replaced["visible"]["resume-button"]
    assert not replaced["visible"]["qr-panel"]
    # The button takes the session back here (request-qr resumes it; no QR needed).
    sent = report["sockets"][0]["sent"]
    assert [f["event"] for f in sent] == ["auth", "request-qr", "request-qr"]
    assert report["snapshots"]["resuming"]["text"]["status-text"] == (
        "Возвращаем WhatsApp на эту страницу…"
    )


def test_every_server_error_code_is_found() -> None:
    """The scan of the server's sources finds the codes we know of (it is not vacuous)."""
    codes = server_error_codes()
    expected = {"already_linked", "invalid_token", "unavailable", "no_qr", "bad_frame"}
    assert expected | {"pairing_failed", "session_failed", "rate_limited", "forbidden"} <= codes


@pytest.mark.parametrize("code", sorted(server_error_codes() - {"already_linked"}))
def test_every_server_error_code_has_a_russian_text(code: str) -> None:
    """Whatever the server's message says, the page shows Russian text of its own, and a
    refused QR request never leaves the spinner turning."""
    assert code in page_handled_codes(), f"connect.js has no text for {code!r}"
    report = run_page([OPEN, frame("error", code=code, message=ENGLISH_MESSAGE)])
    final = report["final"]
    shown = " ".join(
        final["text"].get(name, "") for name in ("error-banner", "expired-text", "status-text")
    )
    assert ENGLISH_MESSAGE not in str(report)
    assert CYRILLIC.search(shown), (code, shown)
    if final["visible"]["qr-panel"] and not final["visible"]["qr-image"]:
        waiting = final["visible"]["qr-placeholder"]
        # Still waiting only where the socket is being re-opened or the QR is still coming.
        assert not waiting or code in {
            "unavailable",
            "rate_limited",
            "invalid_field",
            "missing_field",
            "pairing_failed",
            "bad_frame",
            "unknown_event",
        }, code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("uninstalled", "Приложение AI Admin удалено из YClients"),
        ("forbidden", "Ссылка от другого салона"),
    ],
)
def test_a_link_that_cannot_work_says_why(code: str, status: str) -> None:
    report = run_page([OPEN, frame("error", code=code, message=ENGLISH_MESSAGE), {"close": True}])
    final = report["final"]
    assert final["visible"]["expired-panel"] and not final["visible"]["qr-panel"]
    assert final["text"]["status-text"] == status
    assert final["sockets"] == 1  # no reconnecting with a link that cannot work


def test_unknown_error_code_gets_the_generic_text() -> None:
    report = run_page([OPEN, frame("error", code="brand_new", message=ENGLISH_MESSAGE)])
    assert report["final"]["text"]["error-banner"] == "Произошла ошибка. Попробуйте ещё раз."


def test_a_refused_qr_request_offers_a_new_code_instead_of_spinning() -> None:
    report = run_page(
        [
            OPEN,
            frame("status", status="pending", whatsapp_connected=False),
            frame("error", code="session_failed", message="Could not reach WhatsApp, try again"),
        ]
    )
    final = report["final"]
    assert final["visible"]["new-qr-button"] and not final["visible"]["qr-placeholder"]
    assert final["text"]["error-banner"].startswith("Не удалось связаться с WhatsApp")
    assert report["final"]["qrSrc"] is None
    # A later code is still shown.
    again = run_page([OPEN, frame("error", code="no_qr"), frame("qr-update", qr_image=QR_IMAGE)])
    assert again["final"]["visible"]["qr-image"]


def test_every_element_the_script_uses_is_on_the_page() -> None:
    script = (STATIC / "connect.js").read_text()
    template = (TEMPLATES / "connect.html").read_text()
    used = set(re.findall(r"byId\('([a-z-]+)'\)", script))
    assert {"reconnecting-panel", "resume-button"} <= used
    missing = sorted(i for i in used if f'id="{i}"' not in template)
    assert missing == []
