"""The salon page's live events: what its WebSocket (``web/routes/salon_live.py``) shows, and
how a change made outside the company actor reaches it.

Where each frame comes from (see :mod:`actors.company.messages` for the actor's side):

* ``status`` — the company actor's opt-in ``view`` frame (its :class:`CompanyView`) after
  every decision that told viewers a new status, shown as the overview's ``whatsapp`` part
  (:func:`whatsapp_json`);
* ``message`` — the actor's ``message`` frame, as is: a client message recorded, a text
  queued (the assistant's reply or reminder, or the salon's own message) and its outcome;
* ``conversation`` — the actor's ``conversation {phone}`` frame, shown as the stored row's
  ``conversation_json`` (read when the frame arrives, so it is the current row).

A chat's mode is changed by the assistant's conversation actors (they run where the
company's actor runs and tell it directly, ``ConversationDeps.changed``) and by web routes,
which may run in any process of a cluster: those call :func:`conversation_changed`, which
tells the company actor here, or sends ``conversation-changed`` to the owning node's command
channel (``actors._viewer_wire``), whose placement tells its actor. Either way every salon
socket of the company — in the owner's process or following ``company:{id}:events`` in
another — gets the frame once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import trio

from actors import ViewerCommand, ViewerOp, commands_channel, current_request_id
from actors.company import CompanyView
from actors.company import messages as m
from runtime import ActorError
from storage import StorageError

from ._context import state
from ._openapi import RouteDoc

__all__ = [
    "ROUTE_DOCS",
    "SALON_VIEWER_QUEUE",
    "SalonViewer",
    "conversation_changed",
    "whatsapp_from_view_frame",
    "whatsapp_json",
]

log = logging.getLogger(__name__)

#: Frames a salon socket may fall behind by before the actor drops it (closed with 4008).
SALON_VIEWER_QUEUE = 64

#: ``integration_status`` → the page's WhatsApp status when the session is not connected now.
_NOT_CONNECTED = {
    "active": "reconnecting",  # linked, the session is (re)starting
    "reconnecting": "reconnecting",
    "linking": "linking",
    "pending": "disconnected",
    "logged_out": "disconnected",
}


class SalonViewer:
    """The company actor's handle on one salon socket: a bounded queue the socket drains (the
    actor never waits for it: a full queue drops the viewer)."""

    def __init__(self, size: int = SALON_VIEWER_QUEUE) -> None:
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](size)
        self.dropped = False

    def send_nowait(self, frame: dict[str, Any]) -> None:
        self.send.send_nowait(frame)

    def close(self) -> None:
        self.dropped = True
        self.send.close()


def whatsapp_json(view: CompanyView) -> dict[str, Any]:
    """The salon's WhatsApp as the salon page shows it (the overview's ``whatsapp`` and the
    socket's ``status`` frame): ``status`` is ``connected``, ``reconnecting``, ``linking``,
    ``disconnected``, or the integration status itself (``frozen``, ``uninstalled``,
    ``activation_failed``)."""
    if view.whatsapp_connected:
        status = "connected"
    else:
        status = _NOT_CONNECTED.get(view.integration_status, view.integration_status)
    return {
        "status": status,
        "connected": view.whatsapp_connected,
        "phone": view.whatsapp_phone,
        "last_error": view.last_error,
        "connected_at": view.connected_at,
    }


def whatsapp_from_view_frame(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`whatsapp_json` of a ``view`` frame's data (maybe from another process of another
    version: fields it lacks or has beyond ours are tolerated), ``None`` if it is malformed."""
    status = data.get("integration_status")
    connected = data.get("whatsapp_connected")
    if not isinstance(status, str) or not isinstance(connected, bool):
        return None

    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) else None

    view = CompanyView(
        company_id=0,
        salon_id=0,
        title=None,
        integration_status=status,
        session="",
        whatsapp_connected=connected,
        whatsapp_phone=text("whatsapp_phone"),
        connected_at=text("connected_at"),
        banned=data.get("banned") is True,
        last_error=text("last_error"),
        outbound_queued=0,
        viewers=0,
    )
    return whatsapp_json(view)


async def conversation_changed(company_id: int, phone: str) -> None:
    """Tell the salon's live sockets that ``phone``'s conversation changed (a web route set
    its mode); inside a request. Never fails the caller: a storage error is logged."""
    s = state()
    try:
        owner = await s.node.place(company_id)
        if owner is None:
            # Only a running actor has viewers: never activate one for this.
            ref = s.node.registry.lookup(company_id)
            if ref is not None:
                with contextlib.suppress(ActorError):
                    ref.tell(m.ConversationChanged(phone))
            return
        command = ViewerCommand(
            company_id, "route", ViewerOp.CONVERSATION_CHANGED, phone, current_request_id()
        )
        await s.storage.pubsub.publish(commands_channel(owner), command.encode())
    except StorageError as exc:
        log.warning("company %s: conversation change not announced: %s", company_id, exc)


#: ``/openapi.json``'s entry for the socket (``web/routes/salon_live.py``).
ROUTE_DOCS = [
    RouteDoc(
        "/marketplace/salon/api/{companyId}/ws",
        "GET",
        "WebSocket of the salon page: live WhatsApp status, messages and chat modes",
        auth="salon",
        responses={
            101: "Switching protocols",
            426: "Fetched without a WebSocket upgrade (credentials checked first: 401, 403)",
        },
        description="Authenticate with the salon cookie (same-site Origin), an X-API-Key or "
        "Authorization: Bearer header in the handshake, or a first frame "
        '{"event": "auth", "data": {"token"}} within 5 s (never the URL). Frames out: status '
        "(the overview's whatsapp part), message {id, phone, direction, text, at, by, status}, "
        "conversation (a chat as the conversations API shows it, when its mode changed) and "
        "error {message, code}. Close codes: 4401 invalid or expired credential, revoked, or "
        "uninstalled; 4003 Origin not allowed (production); 4403 another salon's credential; "
        "4404 no such salon; 4008 too slow; 4029 more than 5 connections per IP per minute; "
        "1013 try again later.",
    )
]
