"""``/marketplace/salon/api/<companyId>/ws``: the salon page's live updates.

Frames out (JSON ``{"event": ..., "data": {...}}``; where each comes from:
:mod:`web._salon_events`):

* ``status`` — the overview's ``whatsapp`` part ``{status, connected, phone, last_error,
  connected_at}``, first on connecting and after every change of the salon's WhatsApp;
* ``message`` — ``{id, phone, direction: in|out, text, at, by: client|assistant|salon,
  status}`` for each message in or out of the salon (an outbound one again, same ``id``, when
  it was sent or failed);
* ``conversation`` — a chat's ``conversation_json`` (as the conversations API shows it) when
  its mode changed (taken over, given back, handed to a person, opted out);
* ``error`` ``{message, code}`` — before a close, or for a frame the server cannot read.

Frames in: ``ping`` (ignored; keeps proxies from closing an idle socket) and, as the first
frame of a client with no cookie or header credential, ``auth {token}``.

Authentication, in order: the salon cookie (``web._salon_session.salon_socket_caller``:
valid, this salon's, and a same-site ``Origin``); else ``X-API-Key`` / ``Authorization:
Bearer`` in the handshake (the company's own key, JWT or connect token, or the admin key);
else a first frame ``auth {token}`` (a connect token or company JWT) within 5 s, as the
connect page's socket accepts it. The credential never goes in the URL.

Close codes: 4000 + the status the salon's HTTP API answers for the same refusal (4401,
4403, 4404, as the page reads them), and the connect socket's codes for its limits (4003,
4008, 4029, 1013):

====  =====================================================================================
4401  no valid credential (``invalid_token``), the cookie is invalid or expired
      (``salon_session_expired``), a token credential was revoked (``invalid_token``), the
      app was uninstalled (``uninstalled``), or the cookie's session reached its absolute
      expiry while the socket was open (``salon_session_expired``)
4003  production only: the ``Origin`` is not allowed (``origin_not_allowed``)
4403  the credential or cookie is another salon's (``forbidden``)
4404  the path names no salon (``company_not_found``)
4008  the socket fell too far behind the frames (``too slow``; the page reconnects)
4029  more than 5 WebSocket connections from one IP in 60 s, counted with the connect
      page's sockets (``rate_limited``)
1013  the service is busy or the salon is moving between processes (``unavailable``)
====  =====================================================================================

Revocation: a socket opened with a token or header credential is registered in the app's
:class:`~web._revocation.SocketRegistry` and closed, as the connect page's are, when the
company's connect URL is re-issued; a cookie socket is not (relinking WhatsApp keeps the
salon's session), but every socket closes when the app is uninstalled. A cookie socket is
registered by its session id instead (:class:`~web._salon_revocation.SessionSockets`) and
closes (4401 ``salon_session_expired``) when that session logs out, in whichever process.

Cluster: as the connect socket (``web/routes/websocket.py``): where the salon's actor runs
here the socket subscribes to it; else it follows ``company:{id}:events`` and asks the owner
to subscribe it (``watch-salon``), forwarding only the salon frames (and skipping frames
addressed to another socket). Every socket follows that channel in cluster mode, for the
revocations and logouts made in other processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import trio
from quart import Blueprint, current_app, websocket

from actors import (
    WATCH_EVERY,
    ViewerCommand,
    ViewerEvent,
    ViewerOp,
    commands_channel,
    current_request_id,
    events_channel,
)
from actors.company import messages as m
from runtime import ActorError
from storage import StorageError

from .. import _salon_session as salon_session
from .._auth import authenticate, resolve_token
from .._context import remote_ip, state
from .._conversations import conversation_json
from .._errors import ApiError, BadRequest, Unauthorized
from .._revocation import REVOKED, UNINSTALLED, LiveSocket, is_revocation, socket_registry
from .._salon_events import SalonViewer, whatsapp_from_view_frame
from .._salon_revocation import SESSION_EXPIRED, is_logout_of, session_sockets
from .._security import origin_allowed
from .._validation import has_lone_surrogate, parse_id

log = logging.getLogger(__name__)

blueprint = Blueprint("salon_live", __name__)

PATH = "/marketplace/salon/api/<company_id>/ws"

AUTH_TIMEOUT = 5.0
MAX_FRAME = 4096

CLOSE_AUTH = 4401
CLOSE_ORIGIN = 4003
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW = 4008
CLOSE_RATE = 4029
CLOSE_TRY_LATER = 1013

INVALID_TOKEN = {"message": "The link has expired or is invalid", "code": "invalid_token"}
FORBIDDEN = {"message": "These credentials belong to another salon", "code": "forbidden"}
NOT_FOUND = {"message": "No such salon", "code": "company_not_found"}
UNAVAILABLE = {"message": "Service is busy, reconnecting", "code": "unavailable"}


class Refused(Exception):
    """The handshake is refused: an ``error`` frame with ``reason``, then close ``code``."""

    def __init__(self, code: int, reason: dict[str, str], label: str) -> None:
        super().__init__(reason["code"])
        self.code = code
        self.reason = reason
        self.label = label  # the ``aiadmin_websocket_connections_total`` outcome


@dataclass(frozen=True)
class Admitted:
    """An authenticated socket: how (``kind`` as ``SalonCaller.kind``), the token to check
    again once registered (frame auth), and the cookie session's id and absolute end (Unix s)."""

    kind: str
    token: str | None = None
    session_ends: float | None = None
    session_id: str | None = None

    @property
    def revocable(self) -> bool:
        """Closed when the company's credentials are revoked (every kind but the cookie)."""
        return self.kind != "salon_cookie"


async def send_frame(event: str, data: dict[str, Any]) -> None:
    await websocket.send(json.dumps({"event": event, "data": data}, ensure_ascii=False))


async def close_with(code: int, reason: dict[str, str]) -> None:
    """An ``error`` frame with ``reason``, then close with ``code``."""
    await send_frame("error", reason)
    await websocket.close(code, reason["code"])


class UpgradeRequired(ApiError):
    """426: the socket's address was fetched as plain HTTP by a caller allowed to open it."""

    def __init__(self) -> None:
        super().__init__(
            426,
            "upgrade_required",
            "Open this address as a WebSocket",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )


@blueprint.get(PATH)
async def salon_ws_over_http(company_id: str) -> Any:
    """The address fetched without a WebSocket upgrade: the salon API's own answers for the
    credentials (401, 403), else 426 ``upgrade_required``."""
    await salon_session.salon_caller(parse_id(company_id, "companyId"))
    raise UpgradeRequired()


@blueprint.websocket(PATH)
async def salon_ws(company_id: str) -> None:
    """The salon page's live socket (see the module docstring)."""
    try:
        await _serve_socket(company_id)
    except StorageError as exc:
        log.warning("salon websocket: storage unavailable: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            await websocket.accept()
        with contextlib.suppress(Exception):
            await close_with(
                CLOSE_TRY_LATER,
                {"message": "Service temporarily unavailable", "code": "unavailable"},
            )


async def _serve_socket(raw_id: str) -> None:
    s = state()
    metrics = s.metrics
    origin = websocket.headers.get("Origin")
    if s.settings.production and not origin_allowed(origin, s.settings.allowed_origins):
        metrics.ws_connections.labels("bad_origin").inc()
        await websocket.accept()
        await close_with(
            CLOSE_ORIGIN, {"message": "Origin not allowed", "code": "origin_not_allowed"}
        )
        return
    ip = remote_ip(websocket.remote_addr, websocket.headers)
    limit = s.settings.ws_rate_limit
    decision = await s.storage.rate_limiter.hit(f"ws:{ip}", limit.limit, limit.window)
    if not decision.allowed:
        metrics.ws_connections.labels("rate_limited").inc()
        metrics.rate_limited.labels("websocket").inc()
        await websocket.accept()
        await close_with(
            CLOSE_RATE,
            {
                "message": "Too many connections; wait a minute and try again",
                "code": "rate_limited",
            },
        )
        return
    await websocket.accept()
    try:
        company_id = _company_id(raw_id)
        admitted = await _admit(company_id)
        if await s.storage.companies.get(company_id) is None:
            raise Refused(CLOSE_NOT_FOUND, NOT_FOUND, "not_found")
    except Refused as refused:
        metrics.ws_connections.labels(refused.label).inc()
        await close_with(refused.code, refused.reason)
        return
    metrics.ws_connections.labels("accepted").inc()
    async with contextlib.AsyncExitStack() as stack:
        live = stack.enter_context(_registered(company_id, admitted))
        events: trio.MemoryReceiveChannel[Any] | None = None
        if s.node.placement is not None:
            # Cluster mode: revocations and logouts made anywhere (and the owner's frames, if
            # elsewhere).
            events = await stack.enter_async_context(
                s.storage.pubsub.subscribe(events_channel(company_id))
            )
        if not await _still_valid(company_id, admitted):
            # Revoked (or logged out) between the first check and the registration.
            live.revoke(REVOKED if admitted.revocable else SESSION_EXPIRED)
        else:
            with live.scope:
                await _serve_until_expiry(company_id, admitted, live, events)
        if live.reason is not None:
            metrics.ws_connections.labels("revoked").inc()
            await close_with(CLOSE_AUTH, live.reason)


def _company_id(raw_id: str) -> int:
    try:
        return parse_id(raw_id, "companyId")
    except BadRequest:
        raise Refused(CLOSE_NOT_FOUND, NOT_FOUND, "not_found") from None


@contextlib.contextmanager
def _registered(company_id: int, admitted: Admitted) -> Any:
    """A :class:`LiveSocket` for the socket, in the revocation registry unless it came with
    the cookie (relinking WhatsApp re-issues the connect URL, not the salon's session); a
    cookie's socket is registered by its session id, for the session's logout."""
    if admitted.revocable:
        with socket_registry(current_app).open(company_id) as live:
            yield live
    elif admitted.session_id is not None:
        with session_sockets(current_app).open(admitted.session_id, company_id) as live:
            yield live
    else:
        yield LiveSocket(company_id)


async def _admit(company_id: int) -> Admitted:
    """Who is connecting (see the module docstring), or :class:`Refused`."""
    s = state()
    raw_cookie = websocket.cookies.get(salon_session.COOKIE_NAME)
    if raw_cookie is not None:
        caller = await salon_session.salon_socket_caller(company_id)
        session = salon_session.decode_session(raw_cookie, s.settings.jwt_secret)
        if caller is None:
            if session is not None and session.company_id != company_id:
                raise Refused(CLOSE_FORBIDDEN, FORBIDDEN, "forbidden")
            raise Refused(CLOSE_AUTH, SESSION_EXPIRED, "unauthorized")
        if session is None:  # expired between the two checks
            raise Refused(CLOSE_AUTH, SESSION_EXPIRED, "unauthorized")
        ends = session.created_at + salon_session.ABSOLUTE_TTL
        return Admitted(caller.kind, session_ends=ends, session_id=session.session_id)
    headers = websocket.headers
    if "Authorization" in headers or "X-API-Key" in headers:
        caller = await salon_session.salon_socket_caller(company_id)
        if caller is not None:
            return Admitted(caller.kind)
        try:
            principal = await authenticate(headers, s.settings, s.storage)
        except Unauthorized:
            principal = None
        if principal is not None:  # valid, but not this salon's
            raise Refused(CLOSE_FORBIDDEN, FORBIDDEN, "forbidden")
        raise Refused(CLOSE_AUTH, INVALID_TOKEN, "unauthorized")
    token = await _auth_frame_token()
    owner = None if token is None else await resolve_token(token, s.settings, s.storage)
    if owner is None:
        raise Refused(CLOSE_AUTH, INVALID_TOKEN, "unauthorized")
    if owner != company_id:
        raise Refused(CLOSE_FORBIDDEN, FORBIDDEN, "forbidden")
    return Admitted("token", token=token)


async def _auth_frame_token() -> str | None:
    """The token of a first frame ``auth {token}`` sent within :data:`AUTH_TIMEOUT`."""
    with trio.move_on_after(AUTH_TIMEOUT):
        frame = _decode(await websocket.receive())
        if isinstance(frame, dict) and frame.get("event") == "auth":
            data = frame.get("data")
            if isinstance(data, dict) and isinstance(data.get("token"), str):
                return str(data["token"])
    return None


def _decode(raw: object) -> Any:
    """A client frame as JSON, or ``None`` when it is not JSON text we can handle."""
    if not isinstance(raw, str) or len(raw) > MAX_FRAME:
        return None
    try:
        frame = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    return None if has_lone_surrogate(frame) else frame


async def _still_valid(company_id: int, admitted: Admitted) -> bool:
    """The credential checked again, once the socket is registered for revocations."""
    s = state()
    if admitted.token is not None:
        return await resolve_token(admitted.token, s.settings, s.storage) == company_id
    return await salon_session.salon_socket_caller(company_id) is not None


async def _serve_until_expiry(
    company_id: int,
    admitted: Admitted,
    live: LiveSocket,
    events: trio.MemoryReceiveChannel[Any] | None,
) -> None:
    """Serve the socket; a cookie socket ends when its session reaches its absolute expiry
    (the page must open the salon again, as its requests would have to)."""
    if admitted.session_ends is None:
        await _serve_company(company_id, admitted, live, events)
        return
    left = admitted.session_ends - salon_session.clock()
    with trio.move_on_after(max(0.0, left)):
        await _serve_company(company_id, admitted, live, events)
        return
    live.revoke(SESSION_EXPIRED)


async def _serve_company(
    company_id: int,
    admitted: Admitted,
    live: LiveSocket,
    events: trio.MemoryReceiveChannel[Any] | None,
) -> None:
    """Through the company's actor here, or its owner's (cluster)."""
    s = state()
    owner = await s.node.place(company_id)
    if owner is not None:
        assert events is not None  # cluster mode: followed before it asks to watch
        await _serve_remote(company_id, owner, admitted, live, events)
        return
    ref = s.node.company(company_id)
    viewer = SalonViewer()
    try:
        initial = await ref.ask(m.Subscribe(viewer, m.SALON_EVENTS))
    except ActorError:
        await close_with(CLOSE_TRY_LATER, UNAVAILABLE)
        return
    s.metrics.viewers += 1
    try:
        for frame in initial:
            await _forward(company_id, frame, live)
        if live.revoked:
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump_local, company_id, viewer, live, nursery.cancel_scope)
            if events is not None:
                nursery.start_soon(_follow_revocations, events, admitted, live)
            await _read_frames()
    finally:
        s.metrics.viewers -= 1
        with contextlib.suppress(ActorError):
            ref.tell(m.Unsubscribe(viewer))


async def _forward(company_id: int, frame: dict[str, Any], live: LiveSocket) -> None:
    """Show one of the actor's salon frames on the socket (others are skipped); an
    uninstalled salon's ``status`` revokes the socket."""
    event, data = frame.get("event"), frame.get("data")
    if not isinstance(data, dict):
        return
    if event == "view":
        whatsapp = whatsapp_from_view_frame(data)
        if whatsapp is None:
            return
        await send_frame("status", whatsapp)
        if data.get("integration_status") == "uninstalled":
            live.revoke(UNINSTALLED)
    elif event == "message":
        await send_frame("message", data)
    elif event == "conversation":
        phone = data.get("phone")
        if not isinstance(phone, str):
            return
        row = await state().storage.conversations.get(company_id, phone)
        if row is not None:
            await send_frame("conversation", conversation_json(row))


async def _pump_local(
    company_id: int, viewer: SalonViewer, live: LiveSocket, scope: trio.CancelScope
) -> None:
    async for frame in viewer.receive:
        await _forward(company_id, frame, live)
        if live.revoked:
            live.scope.cancel()
            return
    if viewer.dropped:
        await websocket.close(CLOSE_SLOW, "too slow")
    scope.cancel()


async def _follow_revocations(
    events: trio.MemoryReceiveChannel[Any], admitted: Admitted, live: LiveSocket
) -> None:
    """A local socket in cluster mode: close when another process revokes the company's
    credentials (a token socket) or logs the cookie's session out (a cookie socket)."""
    async for raw in events:
        event = ViewerEvent.decode(raw)
        if event is None:
            continue
        if admitted.revocable and is_revocation(event):
            live.revoke()
            return
        if is_logout_of(event, admitted.session_id):
            live.revoke(SESSION_EXPIRED)
            return


async def _serve_remote(
    company_id: int,
    owner: str,
    admitted: Admitted,
    live: LiveSocket,
    events: trio.MemoryReceiveChannel[Any],
) -> None:
    """A salon socket of a company whose actor runs in node ``owner``."""
    s = state()
    viewer_id = uuid.uuid4().hex
    commands = commands_channel(owner)

    async def command(op: ViewerOp) -> int:
        message = ViewerCommand(company_id, viewer_id, op, None, current_request_id())
        return await s.storage.pubsub.publish(commands, message.encode())

    if await command(ViewerOp.WATCH_SALON) == 0:
        await close_with(CLOSE_TRY_LATER, UNAVAILABLE)
        return
    s.metrics.viewers += 1
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _pump_remote, company_id, events, viewer_id, admitted, live, nursery.cancel_scope
            )
            nursery.start_soon(_keep_watching, command)
            await _read_frames()
            nursery.cancel_scope.cancel()
    finally:
        s.metrics.viewers -= 1
        with trio.move_on_after(2.0) as scope:
            scope.shield = True
            with contextlib.suppress(StorageError):
                await command(ViewerOp.UNWATCH)


async def _keep_watching(command: Any) -> None:
    """Repeat ``watch-salon``: the owner forgets remote viewers that went silent."""
    while True:
        await trio.sleep(WATCH_EVERY)
        await command(ViewerOp.WATCH_SALON)


async def _pump_remote(
    company_id: int,
    events: trio.MemoryReceiveChannel[Any],
    viewer_id: str,
    admitted: Admitted,
    live: LiveSocket,
    scope: trio.CancelScope,
) -> None:
    async for raw in events:
        event = ViewerEvent.decode(raw)
        if event is None:
            continue
        if is_revocation(event):
            if admitted.revocable:
                live.revoke()
                return
            continue  # a re-issued connect URL leaves the salon's session alone
        if is_logout_of(event, admitted.session_id):
            live.revoke(SESSION_EXPIRED)
            return
        if not event.is_for(viewer_id):
            continue
        if event.frame is not None:
            await _forward(company_id, event.frame, live)
            if live.revoked:
                live.scope.cancel()
                return
        if event.close:
            await close_with(CLOSE_TRY_LATER, UNAVAILABLE)
            break
    scope.cancel()


async def _read_frames() -> None:
    """Read the client's frames until it goes: ``ping`` and a late ``auth`` are ignored."""
    while True:
        frame = _decode(await websocket.receive())
        if not isinstance(frame, dict):
            await send_frame("error", {"message": "Frames must be JSON text", "code": "bad_frame"})
            continue
        if frame.get("event") in ("ping", "auth"):
            continue
        await send_frame("error", {"message": "Unknown event", "code": "unknown_event"})
