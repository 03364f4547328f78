"""Security headers, client IP behind proxies, URL redaction, CORS and constant-time compare."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from werkzeug.datastructures import Headers

from web._security import (
    PAGE_CSP,
    REDACTED,
    client_ip,
    constant_time_equals,
    cors_headers,
    origin_allowed,
    redact_url,
    security_headers,
)

# ------------------------------------------------------------------------------- headers


def csp_directives(csp: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in csp.split(";")
        if part.strip()
    }


def test_page_csp_is_strict_and_frameable_by_yclients() -> None:
    headers = security_headers(True)
    directives = csp_directives(headers["Content-Security-Policy"])
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["connect-src"] == "'self'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'self' https://yclients.com https://*.yclients.com"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in headers  # it would forbid the YClients frame
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Cache-Control" not in headers  # the landing page may be cached
    assert "Strict-Transport-Security" not in headers


def test_connect_page_is_never_cached() -> None:
    headers = security_headers(True, connect_page=True)
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == PAGE_CSP
    assert headers["Referrer-Policy"] == "no-referrer"


def test_api_answers_are_not_cached_nor_framed() -> None:
    headers = security_headers(False)
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert csp_directives(headers["Content-Security-Policy"])["frame-ancestors"] == "'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_static_assets_may_be_cached() -> None:
    assert "Cache-Control" not in security_headers(False, no_store=False)


def test_hsts_only_in_production() -> None:
    assert (
        "max-age=31536000" in security_headers(True, production=True)["Strict-Transport-Security"]
    )
    assert "Strict-Transport-Security" in security_headers(False, production=True)
    assert "Strict-Transport-Security" not in security_headers(True, production=False)


def test_extra_connect_src() -> None:
    csp = security_headers(True, extra_connect_src=["wss://ai-admin.app"])[
        "Content-Security-Policy"
    ]
    assert csp_directives(csp)["connect-src"] == "'self' wss://ai-admin.app"


# ----------------------------------------------------------------------------- client_ip

PROXIES = ("10.0.0.0/8", "127.0.0.1", "2001:db8::/32")


def test_untrusted_peer_headers_are_ignored() -> None:
    headers = Headers({"X-Real-IP": "1.1.1.1", "X-Forwarded-For": "2.2.2.2"})
    assert client_ip("203.0.113.9", headers, PROXIES) == "203.0.113.9"
    assert client_ip("203.0.113.9", headers, ()) == "203.0.113.9"


def test_trusted_peer_x_real_ip() -> None:
    headers = Headers({"X-Real-IP": "198.51.100.4"})
    assert client_ip("127.0.0.1", headers, PROXIES) == "198.51.100.4"


def test_x_real_ip_wins_over_client_supplied_forwarded_for() -> None:
    # nginx (as in the seed) overwrites X-Real-IP but passes the client's X-Forwarded-For on.
    headers = Headers({"X-Real-IP": "198.51.100.4", "X-Forwarded-For": "6.6.6.6"})
    assert client_ip("10.1.2.3", headers, PROXIES) == "198.51.100.4"


def test_right_most_untrusted_forwarded_for_entry() -> None:
    headers = Headers({"X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.0.0.7"})
    assert client_ip("10.0.0.1", headers, PROXIES) == "198.51.100.4"


def test_forwarded_for_over_several_header_lines() -> None:
    headers = Headers(
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.4, 10.0.0.2")]
    )
    assert client_ip("10.0.0.1", headers, PROXIES) == "198.51.100.4"


def test_all_forwarded_entries_trusted_gives_left_most() -> None:
    headers = Headers({"X-Forwarded-For": "10.0.0.9, 10.0.0.8"})
    assert client_ip("10.0.0.1", headers, PROXIES) == "10.0.0.9"


def test_garbage_forwarded_entry_stops_the_walk() -> None:
    headers = Headers({"X-Forwarded-For": "198.51.100.4, not-an-ip, 10.0.0.7"})
    assert client_ip("10.0.0.1", headers, PROXIES) == "10.0.0.7"
    assert client_ip("10.0.0.1", Headers({"X-Real-IP": "junk"}), PROXIES) == "10.0.0.1"


def test_ports_ipv6_and_mapped_addresses() -> None:
    assert client_ip("::ffff:10.0.0.1", Headers({"X-Real-IP": "198.51.100.4"}), PROXIES) == (
        "198.51.100.4"
    )
    headers = Headers({"X-Forwarded-For": "[2001:db9::5]:443, 198.51.100.4:8080"})
    assert client_ip("2001:db8::1", headers, PROXIES) == "198.51.100.4"
    headers = Headers({"X-Forwarded-For": "[2001:db9::5]:443"})
    assert client_ip("2001:db8::1", headers, PROXIES) == "2001:db9::5"


def test_plain_dict_headers_and_bad_peer() -> None:
    assert client_ip("127.0.0.1", {"X-Forwarded-For": "198.51.100.4"}, PROXIES) == "198.51.100.4"
    assert client_ip(None, {}, PROXIES) == "unknown"
    assert client_ip("", {}, PROXIES) == "unknown"
    assert client_ip("unix-socket", {"X-Real-IP": "1.2.3.4"}, PROXIES) == "unix-socket"


def test_bad_trusted_entries_trust_nobody() -> None:
    headers = Headers({"X-Real-IP": "198.51.100.4"})
    assert client_ip("10.0.0.1", headers, ("not-a-cidr",)) == "10.0.0.1"


# ----------------------------------------------------------------------------- redaction

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoxfQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "/marketplace/connect?token=abc&company=1&salon=2",
            f"/marketplace/connect?token={REDACTED}&company=1&salon=2",
        ),
        (
            "/x?api_key=1&key=2&secret=3&sign=4&user_data_sign=5&partner_token=6&password=7&page=2",
            f"/x?api_key={REDACTED}&key={REDACTED}&secret={REDACTED}&sign={REDACTED}"
            f"&user_data_sign={REDACTED}&partner_token={REDACTED}&password={REDACTED}&page=2",
        ),
        ("/x?TOKEN=abc", f"/x?TOKEN={REDACTED}"),
        ("/x?%74oken=abc", f"/x?%74oken={REDACTED}"),
        ("/x?token=abc&token=def", f"/x?token={REDACTED}&token={REDACTED}"),
        ("/x?token", "/x?token"),
        ("/x?tokens=abc&monkey=1", "/x?tokens=abc&monkey=1"),
        ("/marketplace/qr/secret-token", f"/marketplace/qr/{REDACTED}"),
        ("/marketplace/qr/secret-token?x=1", f"/marketplace/qr/{REDACTED}?x=1"),
        ("/marketplace/qr/secret-token/more", f"/marketplace/qr/{REDACTED}/more"),
        ("//marketplace//qr/secret-token", f"//marketplace//qr/{REDACTED}"),
        ("/marketplace/%71r/secret-token", f"/marketplace/%71r/{REDACTED}"),
        ("/MARKETPLACE/QR/secret-token", f"/MARKETPLACE/QR/{REDACTED}"),
        ("/marketplace/qr/", "/marketplace/qr/"),
        ("/marketplace/status/42", "/marketplace/status/42"),
        ("/marketplace/webhook/42", "/marketplace/webhook/42"),
        ("/marketplace/webhook/42/whsecret", f"/marketplace/webhook/42/{REDACTED}"),
        (f"/anything/{JWT}", f"/anything/{REDACTED}"),
        ("/x?next=sk_live_abcdefghijklmnop", f"/x?next={REDACTED}"),
        ("/x?token=abc#frag", f"/x?token={REDACTED}"),
        ("/health", "/health"),
    ],
)
def test_redact_url(raw: str, expected: str) -> None:
    assert redact_url(raw) == expected


def test_redact_url_custom_patterns() -> None:
    patterns = ["/hooks/{*}/{secret}", "/pair/{secret}"]
    assert redact_url("/hooks/yclients/abc123/x", path_patterns=patterns) == (
        f"/hooks/yclients/{REDACTED}/x"
    )
    assert redact_url("/pair/abc", path_patterns=patterns) == f"/pair/{REDACTED}"
    # With custom patterns the default ones no longer apply.
    assert redact_url("/marketplace/qr/abc", path_patterns=patterns) == "/marketplace/qr/abc"


# ---------------------------------------------------------------------------------- CORS


@dataclass(frozen=True)
class FakeSettings:
    allowed_origins: tuple[str, ...] = ("https://ai-admin.app", "https://yclients.com")


@pytest.mark.parametrize(
    "origin",
    [
        "https://ai-admin.app",
        "https://yclients.com",
        "https://n1.yclients.com",
        "https://n962302.yclients.com",
    ],
)
def test_allowed_origins(origin: str) -> None:
    assert origin_allowed(origin, FakeSettings().allowed_origins)
    headers = cors_headers(origin, FakeSettings())
    assert headers == {"Vary": "Origin", "Access-Control-Allow-Origin": origin}


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "null",
        "http://yclients.com",
        "https://evil.com",
        "https://n1.yclients.com.evil.com",
        "https://nx.yclients.com",
        "https://n1.yclients.com:8443",
        "https://n1.yclients.com\n",
        "https://evilyclients.com",
        "https://a.n1.yclients.com",
        "https://AI-ADMIN.app.evil",
        "https://n.yclients.com",
    ],
)
def test_refused_origins(origin: str | None) -> None:
    assert not origin_allowed(origin, FakeSettings().allowed_origins)
    assert cors_headers(origin, FakeSettings()) == {"Vary": "Origin"}


def test_preflight_headers() -> None:
    headers = cors_headers("https://n5.yclients.com", FakeSettings(), preflight=True)
    assert headers["Access-Control-Allow-Origin"] == "https://n5.yclients.com"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in headers["Access-Control-Allow-Headers"]
    assert int(headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in headers


def test_real_settings_fit_the_protocol() -> None:
    from config import Settings

    assert cors_headers("https://ai-admin.app", Settings())["Access-Control-Allow-Origin"] == (
        "https://ai-admin.app"
    )


# ------------------------------------------------------------------------ constant time


def test_constant_time_equals() -> None:
    assert constant_time_equals("sk_abc", "sk_abc")
    assert constant_time_equals(b"sk_abc", "sk_abc")
    assert constant_time_equals("ключ", "ключ")
    assert not constant_time_equals("sk_abc", "sk_abd")
    assert not constant_time_equals("sk_abc", "sk_ab")
    assert not constant_time_equals(None, "x")
    assert not constant_time_equals("x", None)
    assert not constant_time_equals(None, None)


def test_user_data_personal_details_are_redacted_from_urls() -> None:
    from web._logging import redact
    from web._security import redact_url

    url = (
        "/marketplace/yclients/redirect?salon_id=1"
        "&user_data=eyJuYW1lIjoi0JDQvdC90LAifQ&user_data_sign=ab12"
    )
    assert "eyJuYW1l" not in redact_url(url)
    assert "salon_id=1" in redact_url(url)
    assert "eyJuYW1l" not in redact(f"GET {url} 302")
