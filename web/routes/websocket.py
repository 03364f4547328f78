"""``/marketplace/ws``: the connect page's live channel to its company actor.

Protocol (JSON frames ``{"event": ..., "data": {...}}``): the client authenticates with its
first frame ``auth {token}`` within 5 s (or an ``Authorization: Bearer`` header for non-browser
clients; never the URL), then sends ``request-qr``, ``request-pairing-code {phone}`` (and, in
development with the simulator, ``simulate-scan``). The server pushes ``status``,
``qr-update``, ``qr-expired``, ``pairing-code``, ``whatsapp-connected`` and ``error``.

A client may name the company it expects, as the seed's ``query: {companyId}`` did: the
``companyId`` query parameter or ``auth {token, companyId}``. A credential of another company
is then refused (``error`` frame ``forbidden``, close 4003) rather than silently serving the
credential's own company.

Limits: 5 connections per IP per 60 s (the 6th gets an ``error`` frame and close code 4029);
in production the ``Origin`` must be allowed (else close 4003). A viewer that cannot keep up
is dropped by the actor and the socket is closed with 4008.

Revocation reaches open sockets (:mod:`web._revocation`): when the company's connect URL is
re-issued or the app uninstalled, every socket of the company gets an ``error`` frame
(``invalid_token``, or ``uninstalled``) and close code 4001 — in this process at once, in
other processes through ``company:{id}:events``, which every cluster socket follows.

Several processes (a node built with ``cluster=True``): the socket asks its node where the
company's actor runs (:meth:`actors.Node.place`). Here (the lease was free or ours): as above.
Owned by another node: the socket subscribes to ``company:{id}:events``, forwards the frames
(those addressed to another remote viewer are skipped) and sends its commands to the owner's
``node:{id}:commands`` channel (the wire format: :mod:`actors._viewer_wire`, shared with the
owner's :mod:`actors._placement`); the owner subscribes it to the
actor, so it counts as a viewer there and gets the initial ``status`` (and live QR) frame. If
the owner does not answer (no subscriber on its channel) the socket is closed with 1013 and the
page reconnects (by then the owner's lease has expired or it is back).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
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
from actors.company import CommandResult
from actors.company import messages as m
from config import WhatsAppProvider
from runtime import ActorError
from storage import StorageError

from .._auth import resolve_token
from .._context import remote_ip, state
from .._errors import BadRequest
from .._revocation import (
    UNINSTALLED,
    LiveSocket,
    is_revocation,
    is_uninstalled_status,
    socket_registry,
)
from .._security import origin_allowed
from .._validation import has_lone_surrogate, parse_phone

log = logging.getLogger(__name__)

blueprint = Blueprint("websocket", __name__)

AUTH_TIMEOUT = 5.0
VIEWER_QUEUE = 32
MAX_FRAME = 4096

CLOSE_POLICY = 4003
CLOSE_AUTH = 4001
CLOSE_SLOW = 4008
CLOSE_RATE = 4029
CLOSE_TRY_LATER = 1013


class SocketViewer:
    """The actor's handle on one socket: a bounded queue the socket's sender task drains."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](VIEWER_QUEUE)
        self.dropped = False

    def send_nowait(self, frame: dict[str, Any]) -> None:
        self.send.send_nowait(frame)

    def close(self) -> None:
        self.dropped = True
        self.send.close()


async def send_frame(event: str, data: dict[str, Any]) -> None:
    await websocket.send(json.dumps({"event": event, "data": data}, ensure_ascii=False))


async def refuse(code: int, message: str, error_code: str) -> None:
    await websocket.accept()
    await send_frame("error", {"message": message, "code": error_code})
    await websocket.close(code, message[:120])


async def authenticate() -> tuple[int | None, str | None, str | None]:
    """The company the credential speaks for (``None`` if none or invalid), the company id
    the client named (``companyId`` in the query or the auth frame; ``None`` if it named none),
    and the credential itself (checked again once the socket is registered).
    """
    s = state()
    header = websocket.headers.get("Authorization", "")
    token: str | None = None
    claimed = websocket.args.get("companyId")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        with trio.move_on_after(AUTH_TIMEOUT):
            raw = await websocket.receive()
            try:
                frame = json.loads(raw) if isinstance(raw, str) and len(raw) <= MAX_FRAME else None
            except (json.JSONDecodeError, RecursionError):
                frame = None
            if has_lone_surrogate(frame):
                frame = None  # text nothing downstream can encode: no credential in it
            if isinstance(frame, dict) and frame.get("event") == "auth":
                data = frame.get("data")
                if isinstance(data, dict) and isinstance(data.get("token"), str):
                    token = data["token"]
                    named = data.get("companyId")
                    if isinstance(named, (int, str)) and not isinstance(named, bool):
                        claimed = str(named)
    if not token:
        return None, claimed, None
    return await resolve_token(token, s.settings, s.storage), claimed, token


@blueprint.websocket("/marketplace/ws")
async def marketplace_ws() -> None:
    try:
        await _serve_socket()
    except StorageError as exc:
        # PostgreSQL or Redis went away mid-handshake or mid-session: tell the page (it
        # reconnects with backoff) instead of failing the handler.
        log.warning("websocket: storage unavailable: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            await websocket.accept()
        with contextlib.suppress(Exception):
            await send_frame(
                "error", {"message": "Service temporarily unavailable", "code": "unavailable"}
            )
            await websocket.close(CLOSE_TRY_LATER, "try again later")


async def _serve_socket() -> None:
    s = state()
    metrics = s.metrics
    origin = websocket.headers.get("Origin")
    if s.settings.production and not origin_allowed(origin, s.settings.allowed_origins):
        metrics.ws_connections.labels("bad_origin").inc()
        await refuse(CLOSE_POLICY, "Origin not allowed", "origin_not_allowed")
        return
    ip = remote_ip(websocket.remote_addr, websocket.headers)
    limit = s.settings.ws_rate_limit
    decision = await s.storage.rate_limiter.hit(f"ws:{ip}", limit.limit, limit.window)
    if not decision.allowed:
        metrics.ws_connections.labels("rate_limited").inc()
        metrics.rate_limited.labels("websocket").inc()
        await refuse(
            CLOSE_RATE, "Too many connections; wait a minute and try again", "rate_limited"
        )
        return
    await websocket.accept()
    company_id, claimed, token = await authenticate()
    if company_id is None or token is None or await s.storage.companies.get(company_id) is None:
        metrics.ws_connections.labels("unauthorized").inc()
        await send_frame(
            "error", {"message": "The link has expired or is invalid", "code": "invalid_token"}
        )
        await websocket.close(CLOSE_AUTH, "unauthorized")
        return
    if claimed is not None and claimed != str(company_id):
        metrics.ws_connections.labels("forbidden").inc()
        await send_frame(
            "error", {"message": "These credentials belong to another company", "code": "forbidden"}
        )
        await websocket.close(CLOSE_POLICY, "forbidden")
        return
    metrics.ws_connections.labels("accepted").inc()
    async with contextlib.AsyncExitStack() as stack:
        live = stack.enter_context(socket_registry(current_app).open(company_id))
        events: trio.MemoryReceiveChannel[Any] | None = None
        if s.node.placement is not None:
            # Cluster mode: revocations made in other processes arrive on this channel.
            events = await stack.enter_async_context(
                s.storage.pubsub.subscribe(events_channel(company_id))
            )
        # Registered (and following the channel) now: a revocation between the check above
        # and here is seen by this second check, one after it reaches the socket.
        if await resolve_token(token, s.settings, s.storage) != company_id:
            live.revoke()
        else:
            with live.scope:
                await _serve_company(company_id, live, events)
        if live.reason is not None:
            metrics.ws_connections.labels("revoked").inc()
            await send_frame("error", live.reason)
            await websocket.close(CLOSE_AUTH, "revoked")


async def _serve_company(
    company_id: int, live: LiveSocket, events: trio.MemoryReceiveChannel[Any] | None
) -> None:
    """Serve an authenticated socket: through the actor here, or the owner's (cluster)."""
    s = state()
    metrics = s.metrics
    owner = await s.node.place(company_id)
    if owner is not None:
        assert events is not None  # an owner elsewhere means cluster mode
        await _serve_remote(company_id, owner, live, events)
        return
    ref = s.node.company(company_id)
    viewer = SocketViewer()
    try:
        initial = await ref.ask(m.Subscribe(viewer))
    except ActorError:
        await send_frame(
            "error", {"message": "Service is busy, reconnecting", "code": "unavailable"}
        )
        await websocket.close(CLOSE_TRY_LATER, "try again later")
        return
    metrics.viewers += 1
    try:
        for frame in initial:
            await websocket.send(json.dumps(frame, ensure_ascii=False))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump_to_socket, viewer, live, nursery.cancel_scope)
            if events is not None:
                nursery.start_soon(_follow_revocations, events, live)
            await _read_commands(ref.ask, company_id)
            nursery.cancel_scope.cancel()
    finally:
        metrics.viewers -= 1
        with contextlib.suppress(ActorError):
            ref.tell(m.Unsubscribe(viewer))


async def _pump_to_socket(viewer: SocketViewer, live: LiveSocket, scope: trio.CancelScope) -> None:
    async for frame in viewer.receive:
        await websocket.send(json.dumps(frame, ensure_ascii=False))
        if is_uninstalled_status(frame):
            live.revoke(UNINSTALLED)
            return
    if viewer.dropped:
        await websocket.close(CLOSE_SLOW, "too slow")
    scope.cancel()


async def _follow_revocations(events: trio.MemoryReceiveChannel[Any], live: LiveSocket) -> None:
    """A local socket in cluster mode: close when another process revokes the company."""
    async for raw in events:
        event = ViewerEvent.decode(raw)
        if event is not None and is_revocation(event):
            live.revoke()
            return


async def _serve_remote(
    company_id: int, owner: str, live: LiveSocket, events: trio.MemoryReceiveChannel[Any]
) -> None:
    """A viewer of a company whose actor runs in node ``owner`` (see the module docstring)."""
    s = state()
    viewer_id = uuid.uuid4().hex
    commands = commands_channel(owner)

    async def command(op: ViewerOp, phone: str | None = None) -> int:
        message = ViewerCommand(company_id, viewer_id, op, phone, current_request_id())
        return await s.storage.pubsub.publish(commands, message.encode())

    async def ask(message: object) -> None:
        if isinstance(message, m.RequestQr):
            await command(ViewerOp.REQUEST_QR)
        elif isinstance(message, m.RequestPairingCode):
            await command(ViewerOp.REQUEST_PAIRING_CODE, message.phone)
        # Refusals come back as ``error`` frames addressed to this viewer.

    if await command(ViewerOp.WATCH) == 0:
        await send_frame(
            "error", {"message": "Service is busy, reconnecting", "code": "unavailable"}
        )
        await websocket.close(CLOSE_TRY_LATER, "try again later")
        return
    s.metrics.viewers += 1
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump_remote, events, viewer_id, live, nursery.cancel_scope)
            nursery.start_soon(_keep_watching, command)
            await _read_commands(ask, company_id)
            nursery.cancel_scope.cancel()
    finally:
        s.metrics.viewers -= 1
        with trio.move_on_after(2.0) as scope:
            scope.shield = True
            with contextlib.suppress(StorageError):
                await command(ViewerOp.UNWATCH)


async def _keep_watching(command: Callable[[ViewerOp], Awaitable[int]]) -> None:
    """Repeat ``watch``: the owner forgets remote viewers that went silent (their process
    died without ``unwatch``)."""
    while True:
        await trio.sleep(WATCH_EVERY)
        await command(ViewerOp.WATCH)


async def _pump_remote(
    events: trio.MemoryReceiveChannel[Any],
    viewer_id: str,
    live: LiveSocket,
    scope: trio.CancelScope,
) -> None:
    async for raw in events:
        event = ViewerEvent.decode(raw)
        if event is not None and is_revocation(event):
            live.revoke()
            return
        if event is None or not event.is_for(viewer_id):
            continue
        if event.frame is not None and event.frame.get("event") in m.OPT_IN_EVENTS:
            continue  # the salon page's frames, published for its sockets (salon_live.py)
        if event.frame is not None:
            await websocket.send(json.dumps(event.frame, ensure_ascii=False))
            if is_uninstalled_status(event.frame):
                live.revoke(UNINSTALLED)
                return
        if event.close:
            await websocket.close(CLOSE_TRY_LATER, "try again later")
            break
    scope.cancel()


async def _read_commands(ask: Callable[[Any], Awaitable[object]], company_id: int) -> None:
    s = state()
    simulator = (
        not s.settings.production and s.settings.whatsapp_provider is WhatsAppProvider.SIMULATED
    )
    while True:
        raw = await websocket.receive()
        if not isinstance(raw, str) or len(raw) > MAX_FRAME:
            await send_frame("error", {"message": "Frames must be JSON text", "code": "bad_frame"})
            continue
        try:
            frame = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            await send_frame("error", {"message": "Malformed JSON", "code": "bad_frame"})
            continue
        if has_lone_surrogate(frame):
            await send_frame(
                "error", {"message": "Frames must be valid Unicode text", "code": "bad_frame"}
            )
            continue
        event = frame.get("event") if isinstance(frame, dict) else None
        data = frame.get("data") if isinstance(frame, dict) else None
        data = data if isinstance(data, dict) else {}
        try:
            if event == "request-qr":
                await _report(await ask(m.RequestQr()))
            elif event == "request-pairing-code":
                phone = parse_phone(data.get("phone"))
                await _report(await ask(m.RequestPairingCode(phone)))
            elif event == "simulate-scan" and simulator and s.node.world is not None:
                world = s.node.world
                if world.live_qr(company_id) is None:
                    await send_frame("error", {"message": "No QR code to scan", "code": "no_qr"})
                else:
                    world.scan(company_id)
            elif event in ("auth", "ping"):
                continue
            else:
                await send_frame("error", {"message": "Unknown event", "code": "unknown_event"})
        except BadRequest as exc:
            await send_frame("error", {"message": exc.message, "code": exc.code})
        except ActorError:
            await send_frame(
                "error", {"message": "Service is busy; try again", "code": "unavailable"}
            )


async def _report(result: object) -> None:
    if isinstance(result, CommandResult) and not result.ok:
        await send_frame("error", {"message": result.message, "code": result.code or "refused"})
