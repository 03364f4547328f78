"""The salon's own page session: a signed cookie, its CSRF token, and who called a salon route.

Cookie ``aiadmin_salon`` (Path ``/marketplace/salon``, HttpOnly, SameSite=Lax, Secure in
production). It is stateless: ``<payload>.<mac>``, both URL-safe base64 without padding, the
payload a compact JSON ``{"v": 1, "c": company_id, "s": session_id, "i": issued_at,
"a": created_at}`` (Unix seconds) and the MAC HMAC-SHA256 under a key derived from
``JWT_SECRET`` with the purpose label :data:`COOKIE_PURPOSE` (so the cookie key is never the
JWT key, and no other signed thing of ours verifies as a cookie).

Lifetime, measured with :data:`clock` (Unix seconds; tests replace it, nothing sleeps):

* re-issued (rotated) on any request once it is older than :data:`ROTATE_AFTER` (15 min);
  the session id stays, so the page's CSRF token stays valid;
* idle expiry :data:`IDLE_TTL` (2 h) after it was last issued, so 2 h without a request ends it;
* absolute expiry :data:`ABSOLUTE_TTL` (12 h) after the salon opened it, however active;
* invalid at once when its company is gone or uninstalled;
* invalid at once, in every process, once its session logged out: the session id is then
  revoked in :class:`storage.SalonSessions` (Redis; :mod:`web._salon_revocation`), asked
  after the signature check (one Redis round trip per cookie check).

CSRF: the token is HMAC-SHA256(key derived with :data:`CSRF_PURPOSE`, session id), handed to
the page in ``<meta name="csrf-token">``; a state-changing request (POST, PUT, PATCH, DELETE)
with the cookie must send it in ``X-CSRF-Token`` (compared in constant time) and, when it
carries an ``Origin``, that must be the request's own origin — else 403 ``csrf_failed``.

Errors (all :mod:`web._errors` classes, rendered as the API's JSON error shape)::

    Unauthorized  401  salon_session_expired   the cookie is forged, expired, logged out, or
                                               its salon gone
    Forbidden     403  forbidden               the cookie (or credential) is another salon's
    Forbidden     403  csrf_failed             a state-changing request failed the CSRF check

Without the cookie, :func:`salon_caller` falls back to the API's own credentials
(:func:`web._auth.require_company`: the admin key, the company's ``sk_`` key, its JWT or
connect token), so every salon route serves the page and the partner's servers alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from quart import after_this_request, request, websocket
from quart.typing import ResponseTypes

from config import Settings
from storage import MAX_ID, Company, Storage

from ._auth import UNINSTALLED, Principal, authenticate, require_company
from ._context import state
from ._errors import Forbidden, Unauthorized
from ._openapi import RouteDoc
from ._security import constant_time_equals

__all__ = [
    "ABSOLUTE_TTL",
    "COOKIE_NAME",
    "COOKIE_PATH",
    "CSRF_HEADER",
    "IDLE_TTL",
    "ROTATE_AFTER",
    "ROUTE_DOCS",
    "SALON_PATH",
    "SalonCaller",
    "SalonSession",
    "check_csrf",
    "clear_cookie",
    "clock",
    "csrf_token",
    "decode_session",
    "encode_session",
    "issue_cookie",
    "new_session",
    "request_session",
    "salon_caller",
    "salon_socket_caller",
    "same_origin",
    "set_session_cookie",
]

COOKIE_NAME = "aiadmin_salon"
SALON_PATH = "/marketplace/salon"
COOKIE_PATH = SALON_PATH
CSRF_HEADER = "X-CSRF-Token"
ROTATE_AFTER = 15 * 60
IDLE_TTL = 2 * 60 * 60
ABSOLUTE_TTL = 12 * 60 * 60
COOKIE_PURPOSE = b"aiadmin/salon-session/cookie/v1"
CSRF_PURPOSE = b"aiadmin/salon-session/csrf/v1"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A cookie longer than this is not ours (ours is about 150 characters).
MAX_COOKIE_CHARS = 512
# A session issued a little "in the future" is tolerated (clocks of several nodes drift).
CLOCK_SKEW = 60

EXPIRED_MESSAGE = "The salon session has expired; open the salon page again"

#: The wall clock sessions are measured with (Unix seconds). Tests assign their own.
clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class SalonCaller:
    """Who called a salon API route: the company it may act for and how it proved that."""

    company_id: int
    kind: str  # "salon_cookie" | "admin" | "company_key" | "jwt" | "connect_token"


@dataclass(frozen=True)
class SalonSession:
    """A verified session cookie: its salon, session id, last issue and first issue times."""

    company_id: int
    session_id: str
    issued_at: int
    created_at: int

    def rotation_due(self, now: float) -> bool:
        """Whether the cookie should be re-issued (it is older than :data:`ROTATE_AFTER`)."""
        return now - self.issued_at >= ROTATE_AFTER

    def max_age(self, now: float) -> int:
        """Seconds the cookie may live if issued at ``now``: the idle span, within the
        absolute limit."""
        return max(0, min(IDLE_TTL, int(self.created_at + ABSOLUTE_TTL - now)))


def _derived_key(secret: str, purpose: bytes) -> bytes:
    """A key for one purpose, derived from the server secret (HMAC, the label as message)."""
    return hmac.new(secret.encode("utf-8"), purpose, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session(company_id: int, now: float | None = None) -> SalonSession:
    """A fresh session for ``company_id`` (a new random session id) opened at ``now``."""
    moment = int(clock() if now is None else now)
    return SalonSession(company_id, secrets.token_urlsafe(18), moment, moment)


def encode_session(session: SalonSession, secret: str) -> str:
    """The cookie value of ``session``, signed under ``secret``'s cookie key."""
    payload = json.dumps(
        {
            "v": 1,
            "c": session.company_id,
            "s": session.session_id,
            "i": session.issued_at,
            "a": session.created_at,
        },
        separators=(",", ":"),
    ).encode("utf-8")
    mac = hmac.new(_derived_key(secret, COOKIE_PURPOSE), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def decode_session(value: str | None, secret: str, now: float | None = None) -> SalonSession | None:
    """The session a cookie value carries, or ``None`` when it is forged, malformed or expired
    (idle or absolute) at ``now`` (default :data:`clock`). Its company is not checked here."""
    if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
        return None
    encoded, _, signature = value.partition(".")
    try:
        payload = _unb64(encoded)
        mac = _unb64(signature)
    except (ValueError, binascii.Error):
        return None
    expected = hmac.new(_derived_key(secret, COOKIE_PURPOSE), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("v") != 1:
        return None
    company_id, issued, created = _int(data.get("c")), _int(data.get("i")), _int(data.get("a"))
    session_id = data.get("s")
    if company_id is None or issued is None or created is None or not isinstance(session_id, str):
        return None
    if not 1 <= company_id <= MAX_ID or not session_id:
        return None
    moment = clock() if now is None else now
    if issued < created or issued > moment + CLOCK_SKEW:
        return None
    if moment - issued >= IDLE_TTL or moment - created >= ABSOLUTE_TTL:
        return None
    return SalonSession(company_id, session_id, issued, created)


def csrf_token(session_id: str, secret: str) -> str:
    """The CSRF token of a session: HMAC(derived key, session id), URL-safe base64."""
    key = _derived_key(secret, CSRF_PURPOSE)
    return _b64(hmac.new(key, session_id.encode("utf-8"), hashlib.sha256).digest())


def set_session_cookie(
    response: ResponseTypes, session: SalonSession, settings: Settings, now: float | None = None
) -> None:
    """Put ``session``'s cookie on ``response`` (with its Max-Age and the fixed attributes)."""
    moment = clock() if now is None else now
    response.set_cookie(
        COOKIE_NAME,
        encode_session(session, settings.jwt_secret),
        max_age=session.max_age(moment),
        path=COOKIE_PATH,
        secure=settings.production,
        httponly=True,
        samesite="Lax",
    )


def issue_cookie(response: ResponseTypes, company_id: int, settings: Settings) -> SalonSession:
    """Open a new session for ``company_id`` and set its cookie on ``response``."""
    session = new_session(company_id)
    set_session_cookie(response, session, settings)
    return session


def clear_cookie(response: ResponseTypes, settings: Settings) -> None:
    """Remove the session cookie from the browser (same name, path and attributes)."""
    response.delete_cookie(
        COOKIE_NAME,
        path=COOKIE_PATH,
        secure=settings.production,
        httponly=True,
        samesite="Lax",
    )


def _rotated(session: SalonSession, now: float) -> SalonSession:
    return SalonSession(session.company_id, session.session_id, int(now), session.created_at)


async def _live_company(storage: Storage, company_id: int) -> Company | None:
    company = await storage.companies.get(company_id)
    if company is None or company.integration_status == UNINSTALLED:
        return None
    return company


async def request_session(*, rotate: bool = True) -> SalonSession | None:
    """The current request's valid session (not logged out, its salon still installed),
    else ``None``.

    Inside a request handler. Schedules the cookie's rotation when it is due (unless
    ``rotate`` is false: log-out clears it); a cookie that is present but not valid is
    scheduled for removal.
    """
    raw = request.cookies.get(COOKIE_NAME)
    if raw is None:
        return None
    s = state()
    now = clock()
    session = decode_session(raw, s.settings.jwt_secret, now)
    if (
        session is None
        or await s.storage.salon_sessions.is_revoked(session.session_id)
        or await _live_company(s.storage, session.company_id) is None
    ):

        @after_this_request
        async def forget(response: ResponseTypes) -> ResponseTypes:
            clear_cookie(response, s.settings)
            return response

        return None
    if rotate and session.rotation_due(now):
        fresh = _rotated(session, now)

        @after_this_request
        async def rotate(response: ResponseTypes) -> ResponseTypes:
            # Not on a refusal of this request (a 403 CSRF failure keeps the old cookie).
            if response.status_code < 400:
                set_session_cookie(response, fresh, s.settings, now)
            return response

    return session


def _own_origins(scheme: str, host: str, settings: Settings) -> set[str]:
    """The origins a same-site browser request may carry: this request's own, and the
    configured public address (behind a TLS proxy the request itself may look like http)."""
    origins = {f"{scheme}://{host}".lower()}
    public = urlsplit(settings.public_base_url)
    if public.scheme and public.netloc:
        origins.add(f"{public.scheme}://{public.netloc}".lower())
    return origins


def same_origin(origin: str | None, scheme: str, host: str, settings: Settings) -> bool:
    """Whether a request's ``Origin`` (``None``: absent, which browsers omit for same-origin
    GETs) is this server's own: its ``scheme://host`` or the public base URL's origin."""
    if origin is None:
        return True
    return origin.strip().lower() in _own_origins(scheme, host, settings)


def check_csrf(session: SalonSession, settings: Settings) -> None:
    """The CSRF check of a state-changing request made with the cookie (raises 403
    ``csrf_failed``); inside a request handler."""
    if not same_origin(request.headers.get("Origin"), request.scheme, request.host, settings):
        raise Forbidden("The request came from another site", code="csrf_failed")
    sent = request.headers.get(CSRF_HEADER)
    expected = csrf_token(session.session_id, settings.jwt_secret)
    if not sent or not constant_time_equals(sent, expected):
        raise Forbidden("The request is missing a valid X-CSRF-Token header", code="csrf_failed")


async def salon_caller(company_id: int) -> SalonCaller:
    """For a salon API route with {companyId} in its path, inside a request handler: the salon
    cookie if present (401 salon_session_expired if invalid/expired; 403 forbidden if it is
    another salon's; for POST/PUT/PATCH/DELETE also the CSRF check → 403 csrf_failed), else
    the standard credentials (X-API-Key / Bearer, web._auth.require_company semantics: 401/403).
    Also rotates the cookie when due (via quart's after_this_request)."""
    if COOKIE_NAME in request.cookies:
        session = await request_session()
        if session is None:
            raise Unauthorized(EXPIRED_MESSAGE, code="salon_session_expired")
        if session.company_id != company_id:
            raise Forbidden("This session belongs to another salon")
        if request.method in STATE_CHANGING:
            check_csrf(session, state().settings)
        return SalonCaller(company_id, "salon_cookie")
    s = state()
    principal = await authenticate(request.headers, s.settings, s.storage)
    return _caller(require_company(principal, company_id), company_id)


def _caller(principal: Principal, company_id: int) -> SalonCaller:
    return SalonCaller(company_id, principal.kind)


async def salon_socket_caller(company_id: int) -> SalonCaller | None:
    """Same for a WebSocket handshake (cookie + same-origin Origin check); None → refuse.

    With the cookie: it must be valid (not logged out), its salon's, and the handshake's
    ``Origin`` (when present) this server's own. Without it: the standard credentials in the
    handshake's headers (``X-API-Key`` or ``Authorization: Bearer``), of this company or the
    admin.
    Nothing is rotated here (a handshake cannot set cookies in every browser).
    """
    s = state()
    headers = websocket.headers
    raw = websocket.cookies.get(COOKIE_NAME)
    if raw is not None:
        session = decode_session(raw, s.settings.jwt_secret)
        if session is None or session.company_id != company_id:
            return None
        origin = headers.get("Origin")
        scheme = "https" if websocket.scheme in ("wss", "https") else "http"
        if not same_origin(origin, scheme, websocket.host, s.settings):
            return None
        if await s.storage.salon_sessions.is_revoked(session.session_id):
            return None
        if await _live_company(s.storage, company_id) is None:
            return None
        return SalonCaller(company_id, "salon_cookie")
    try:
        principal = await authenticate(headers, s.settings, s.storage)
    except Unauthorized:
        return None
    if principal is None or not (principal.is_admin or principal.company_id == company_id):
        return None
    return _caller(principal, company_id)


# ------------------------------------------------------------------------ OpenAPI rows

_ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_HTML: dict[str, Any] = {"type": "string", "description": "An HTML page"}
_SESSION_OPENED: dict[str, Any] = {
    "type": "object",
    "required": ["success", "company_id", "location"],
    "properties": {
        "success": {"const": True},
        "company_id": _ID_SCHEMA,
        "location": {"type": "string", "const": SALON_PATH},
    },
}
_LOGGED_OUT: dict[str, Any] = {
    "type": "object",
    "required": ["success"],
    "properties": {"success": {"const": True}},
}

#: The salon page's entry routes as documented in ``/openapi.json`` (served by
#: ``web/routes/salon_page.py``; kept here, beside the session they open, because route
#: modules do not import one another).
ROUTE_DOCS: list[RouteDoc] = [
    RouteDoc(
        f"{SALON_PATH}/session",
        "POST",
        "The salon page's sign-in: a connect token or company JWT for the session cookie "
        "(aiadmin_salon, HttpOnly, SameSite=Lax); then open location",
        description=(
            "Also takes an HTML form post (application/x-www-form-urlencoded, field token; "
            "what the connect page's button sends, into a new tab): then it answers 303 to "
            "the salon page with the cookie, and its refusals (400, 401, 403, 410) are HTML "
            "pages. A form post's Origin may be null (our pages' no-referrer policy) only "
            "with Sec-Fetch-Site: same-origin."
        ),
        request_schema={
            "type": "object",
            "required": ["token"],
            "properties": {
                "token": {"type": "string", "description": "A connect token or company JWT"}
            },
        },
        response_schema=_SESSION_OPENED,
        responses={
            303: "A form post: to the salon page, with the session cookie",
            401: "The token is not valid or has expired (invalid_token)",
            403: "Sent from another site's page (csrf_failed)",
            410: "The app was uninstalled for this salon (uninstalled)",
        },
        tags=("salon",),
    ),
    RouteDoc(
        f"{SALON_PATH}/open",
        "GET",
        "YClients' app settings link: checks the signed user_data (bound to the salon), sets "
        "the session cookie and sends the browser (303) to the salon page",
        description=(
            "Inside a frame (Sec-Fetch-Dest: iframe), where the browser would refuse the "
            "cookie, it sets none and answers 200 with a page whose button posts the same "
            "fields to POST /marketplace/salon/open in a new tab."
        ),
        query={
            "salon_id": _ID_SCHEMA,
            "user_data": {"type": "string", "description": "base64 JSON of the salon admin"},
            "user_data_sign": {"type": "string", "description": "hex HMAC-SHA256"},
        },
        content_type="text/html",
        response_schema=_HTML,
        responses={
            200: "In a frame: a page with a button that opens the salon page in a new tab",
            303: "To the salon page, with the session cookie",
            400: "No or invalid salon id (an HTML page)",
            403: "Signature refused or the admin not bound to the salon (an HTML page)",
            404: "No such salon with us (an HTML page)",
            410: "The app was uninstalled (an HTML page)",
        },
        tags=("salon",),
    ),
    RouteDoc(
        f"{SALON_PATH}/open",
        "POST",
        "YClients' settings link from inside a frame, posted in a new tab: the same fields "
        "(salon_id, user_data, user_data_sign as an HTML form), checked as GET checks them; "
        "sets the session cookie and sends the browser (303) to the salon page",
        content_type="text/html",
        responses={
            303: "To the salon page, with the session cookie",
            400: "No or invalid salon id (an HTML page)",
            403: "Signature refused or the admin not bound to the salon (an HTML page)",
            404: "No such salon with us (an HTML page)",
            410: "The app was uninstalled (an HTML page)",
            413: "The form is too large (an HTML page)",
        },
        tags=("salon",),
    ),
    RouteDoc(
        SALON_PATH,
        "GET",
        "The salon's own page (conversations, settings, results, WhatsApp) for the session "
        "cookie's salon; 401 error page without a valid cookie",
        auth="salon_cookie",
        content_type="text/html",
        response_schema=_HTML,
        responses={401: "No or expired session (an HTML page)"},
        tags=("salon",),
    ),
    RouteDoc(
        f"{SALON_PATH}/logout",
        "POST",
        "Log out of the salon page: ends the session in every process (a copy of its cookie "
        "is refused from then on, its live sockets close) and clears the cookie (needs "
        "X-CSRF-Token)",
        auth="salon_cookie",
        response_schema=_LOGGED_OUT,
        responses={
            401: "No or expired session (salon_session_expired)",
            403: "Missing or wrong X-CSRF-Token, or another site's Origin (csrf_failed)",
        },
        tags=("salon",),
    ),
]
