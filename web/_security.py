"""Security helpers for the web layer: response headers, client IP, log redaction, CORS.

All functions here are pure (no Quart import, no I/O) so they are easy to test and to reuse
from the access log, the WebSocket handler and the error handlers.

* :func:`security_headers` — CSP, framing, referrer, caching and HSTS headers for pages and
  for JSON answers.
* :func:`client_ip` — the client's address, trusting ``X-Real-IP`` / ``X-Forwarded-For`` only
  when the direct peer is one of our reverse proxies.
* :func:`redact_url` — a request path and query with tokens, keys and signatures replaced by
  ``[REDACTED]``, for access logs and error logs.
* :func:`origin_allowed` / :func:`cors_headers` — the browser ``Origin`` allow-list.
* :func:`constant_time_equals` — compare secrets without a timing side channel.

No errors are raised by these helpers for bad input from the network: a malformed header is
treated as absent.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Protocol
from urllib.parse import unquote, unquote_plus

__all__ = [
    "DEFAULT_SECRET_PATH_PATTERNS",
    "PAGE_CSP",
    "REDACTED",
    "SECRET_QUERY_PARAMS",
    "CorsSettings",
    "HeaderSource",
    "client_ip",
    "constant_time_equals",
    "cors_headers",
    "origin_allowed",
    "redact_url",
    "security_headers",
]

REDACTED = "[REDACTED]"

# Frame ancestors allowed for pages: the connect page may be opened inside YClients.
FRAME_ANCESTORS = "'self' https://yclients.com https://*.yclients.com"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; "
    f"frame-ancestors {FRAME_ANCESTORS}"
)
# JSON answers render nothing and may not be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(
    is_page: bool,
    *,
    connect_page: bool = False,
    production: bool = False,
    no_store: bool | None = None,
    extra_connect_src: Sequence[str] = (),
) -> dict[str, str]:
    """Headers to add to a response.

    ``is_page`` — an HTML page (landing, connect, error page): the strict page CSP, which allows
    no inline script or style, ``data:`` images only for the QR code, and framing by ourselves
    and YClients (``frame-ancestors``; no ``X-Frame-Options``, which cannot express that list).
    Otherwise a JSON/API answer: ``default-src 'none'``, not frameable (``X-Frame-Options: DENY``).

    ``connect_page`` — the connect page (and the error page shown at its URL): never cached.
    ``no_store`` — ``Cache-Control: no-store``; defaults to ``connect_page or not is_page``
    (pass ``False`` for static assets). ``production`` adds HSTS. ``extra_connect_src`` adds
    sources to ``connect-src`` (e.g. an explicit ``wss://host`` for old browsers whose
    ``'self'`` does not cover WebSockets).
    """
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if is_page:
        csp = PAGE_CSP
        if extra_connect_src:
            csp = csp.replace(
                "connect-src 'self'", "connect-src 'self' " + " ".join(extra_connect_src)
            )
        headers["Content-Security-Policy"] = csp
    else:
        headers["Content-Security-Policy"] = API_CSP
        headers["X-Frame-Options"] = "DENY"
    if no_store is None:
        no_store = connect_page or not is_page
    if no_store:
        headers["Cache-Control"] = "no-store"
    if production:
        headers["Strict-Transport-Security"] = HSTS
    return headers


# ----------------------------------------------------------------------------- client IP

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class HeaderSource(Protocol):
    """What :func:`client_ip` needs of a header collection (werkzeug ``Headers``, a dict)."""

    def get(self, key: str, /) -> str | None: ...


@functools.lru_cache(maxsize=64)
def _parse_networks(trusted: tuple[str, ...]) -> tuple[_Network, ...]:
    networks = []
    for entry in trusted:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue  # settings validation reports bad entries; here a bad one trusts nobody
    return tuple(networks)


def _parse_ip(text: str | None) -> _Address | None:
    """An address from a header entry, tolerating ``[v6]:port``, ``v4:port`` and zones."""
    if not text:
        return None
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 203.0.113.7:5555
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # fe80::1%eth0
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: _Address, networks: tuple[_Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(
    remote_addr: str | None,
    headers: HeaderSource,
    trusted_proxies: Iterable[str],
) -> str:
    """The client's IP address, for rate limits and logs.

    Proxy headers are believed only when the direct peer ``remote_addr`` is in
    ``trusted_proxies`` (IPs or CIDRs). Then ``X-Real-IP`` wins (a proxy that sets it, like the
    seeds' nginx, overwrites whatever the client sent); else the right-most entry of
    ``X-Forwarded-For`` that is not itself a trusted proxy (entries to its right were appended
    by our proxies; entries to its left are client-controlled). Anything unparsable falls back
    to the peer. Returns ``"unknown"`` when there is no usable peer address.
    """
    peer = _parse_ip(remote_addr)
    if peer is None:
        return remote_addr.strip() if remote_addr and remote_addr.strip() else "unknown"
    networks = _parse_networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return str(peer)

    real_ip = _parse_ip(headers.get("X-Real-IP"))
    if real_ip is not None:
        return str(real_ip)

    getlist = getattr(headers, "getlist", None)
    values = getlist("X-Forwarded-For") if callable(getlist) else [headers.get("X-Forwarded-For")]
    entries = [e.strip() for v in values if v for e in str(v).split(",") if e.strip()]
    last_trusted = peer
    for entry in reversed(entries):
        address = _parse_ip(entry)
        if address is None:
            return str(last_trusted)  # garbage appended by or before our proxy: stop here
        if not _trusted(address, networks):
            return str(address)
        last_trusted = address
    return str(last_trusted)


# ------------------------------------------------------------------------------ redaction

SECRET_QUERY_PARAMS = frozenset(
    {
        "token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "sign",
        "user_data_sign",
        "user_data",  # the salon admin's personal data (name, phone, email), base64
        "partner_token",
        "password",
        "access_token",
        "user_token",
        "jwt",
    }
)
# Path templates whose ``{secret}`` segment is a credential; ``{*}`` matches any one segment.
DEFAULT_SECRET_PATH_PATTERNS: tuple[str, ...] = (
    "/marketplace/qr/{secret}",
    "/marketplace/webhook/{*}/{secret}",
)

# Credentials recognisable by their shape, wherever they appear: JWTs and our API keys.
_SHAPED_SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|\b(?:sk|adm|whs)_[A-Za-z0-9_-]{12,}"
)


@functools.lru_cache(maxsize=32)
def _compile_patterns(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    compiled = []
    for pattern in patterns:
        segments = tuple(s for s in pattern.split("/") if s)
        if segments:
            compiled.append(segments)
    return tuple(compiled)


def _redact_path(path: str, patterns: tuple[tuple[str, ...], ...]) -> str:
    parts = path.split("/")
    # Indices of non-empty segments, so "//marketplace//qr/x" still matches.
    positions = [i for i, p in enumerate(parts) if p]
    decoded = [unquote(parts[i]).lower() for i in positions]
    for segments in patterns:
        width = len(segments)
        for start in range(len(positions) - width + 1):
            window = decoded[start : start + width]
            if all(
                seg in ("{secret}", "{*}") or seg.lower() == got
                for seg, got in zip(segments, window, strict=True)
            ):
                for offset, seg in enumerate(segments):
                    if seg == "{secret}":
                        parts[positions[start + offset]] = REDACTED
    return "/".join(parts)


def _redact_query(query: str) -> str:
    pairs = query.split("&")
    out = []
    for pair in pairs:
        name, sep, _value = pair.partition("=")
        if sep and unquote_plus(name).strip().lower() in SECRET_QUERY_PARAMS:
            out.append(f"{name}={REDACTED}")
        else:
            out.append(pair)
    return "&".join(out)


def redact_url(
    path_with_query: str, *, path_patterns: Sequence[str] = DEFAULT_SECRET_PATH_PATTERNS
) -> str:
    """``path_with_query`` safe to log: credentials replaced by ``[REDACTED]``.

    * values of secret query parameters (``token``, ``api_key``, ``key``, ``secret``, ``sign``,
      ``user_data_sign``, ``partner_token``, ``password`` ...; names matched case-insensitively
      after percent-decoding);
    * path segments marked ``{secret}`` in ``path_patterns`` (default: the token in
      ``/marketplace/qr/{secret}`` and webhook secrets), matched per segment after
      percent-decoding and ignoring empty segments;
    * anything shaped like a JWT or one of our API keys (``sk_…``, ``adm_…``), anywhere.

    The fragment is dropped (browsers never send it; if present it is noise or a leak).
    """
    text = path_with_query.split("#", 1)[0]
    path, sep, query = text.partition("?")
    path = _redact_path(path, _compile_patterns(tuple(path_patterns)))
    if sep:
        query = _redact_query(query)
    return _SHAPED_SECRETS.sub(REDACTED, path + sep + query)


# ----------------------------------------------------------------------------------- CORS

YCLIENTS_NODE_ORIGIN = re.compile(r"https://n[0-9]{1,10}\.yclients\.com")


class CorsSettings(Protocol):
    """What :func:`cors_headers` needs of the settings: the exact allowed origins."""

    @property
    def allowed_origins(self) -> Sequence[str]: ...


def origin_allowed(origin: str | None, allowed_origins: Iterable[str]) -> bool:
    """Whether a browser ``Origin`` is on the allow-list.

    Exact matches against ``allowed_origins`` plus YClients' node hosts
    ``https://n<digits>.yclients.com``. ``null``, empty and anything else are refused.
    """
    if not origin or origin == "null":
        return False
    if origin in tuple(allowed_origins):
        return True
    return YCLIENTS_NODE_ORIGIN.fullmatch(origin) is not None


CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Content-Type, X-API-Key, Authorization"
CORS_MAX_AGE = "600"


def cors_headers(
    origin: str | None, settings_like: CorsSettings, *, preflight: bool = False
) -> dict[str, str]:
    """CORS headers for a request from ``origin``.

    Always ``Vary: Origin`` (the answer depends on it, caches must know). When the origin is
    allowed: ``Access-Control-Allow-Origin`` echoing it (never ``*``; no credentials — we use no
    cookies), and for a ``preflight`` (``OPTIONS``) the allowed methods, headers and max age.
    A refused origin gets no ``Access-Control-*`` header, so the browser blocks the call.
    """
    headers = {"Vary": "Origin"}
    if not origin_allowed(origin, settings_like.allowed_origins):
        return headers
    assert origin is not None
    headers["Access-Control-Allow-Origin"] = origin
    if preflight:
        headers["Access-Control-Allow-Methods"] = CORS_METHODS
        headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return headers


def constant_time_equals(a: str | bytes | None, b: str | bytes | None) -> bool:
    """``a == b`` in time independent of where they differ; ``None`` equals nothing."""
    if a is None or b is None:
        return False
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)
