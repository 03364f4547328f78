"""The cluster viewer's wire format: what nodes tell each other about connect-page sockets.

When a connect page's WebSocket lands in a process that does not run the company's actor
(see :mod:`actors._placement`), the socket and the owning node talk over ``storage.pubsub``,
in JSON objects. This module owns both channels' names, both message types and their
encoding; the owner (:class:`actors.Placement`) and the socket (``web/routes/websocket.py``)
only build and read these values.

* ``company:{id}:events`` (:func:`events_channel`) — :class:`ViewerEvent`, from the owner to
  every socket following the company: ``{"frame": {...}}`` is a viewer frame of the actor
  (``{"event": ..., "data": ...}``, as a local socket gets it); ``"to": viewer_id`` addresses
  it to one remote socket only (its initial ``status``, its commands' errors);
  ``{"close": true, "to": viewer_id}`` tells that socket the actor dropped it.
* ``node:{node_id}:commands`` (:func:`commands_channel`) — :class:`ViewerCommand`, from a
  socket to the owning node (one channel per node, however many companies it owns):
  ``{"company_id", "viewer", "op"}`` with ``op`` a :class:`ViewerOp`, ``"phone"`` with
  ``request-pairing-code`` and ``conversation-changed``, and ``"request_id"``, the socket's
  request id, so the owner logs what the command causes (``linking_started``) under it; a
  command without one (an older node) or with a malformed one is served with no request id.
  Sockets repeat ``watch`` every :data:`WATCH_EVERY` s; the owner forgets a viewer silent
  for :data:`REMOTE_VIEWER_TTL` s (its process died unannounced). The salon page's socket
  watches with ``watch-salon`` (it is subscribed for the opt-in frames,
  ``actors.company.messages.OPT_IN_EVENTS``), and a web route that changed a chat's mode in
  a process that does not own the salon sends ``conversation-changed`` with the client's
  phone (an older owner ignores both ops).

``decode`` never raises: the other side is another process, maybe of another version, so
anything malformed decodes to ``None`` and is ignored. Pure: imports no event loop.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

WATCH_EVERY = 10.0
REMOTE_VIEWER_TTL = 30.0
#: What a request id on the wire may look like (as the web layer makes them: a plain id).
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def events_channel(company_id: int) -> str:
    """The pub/sub channel carrying the company actor's viewer frames."""
    return f"company:{company_id}:events"


def commands_channel(node_id: str) -> str:
    """The pub/sub channel a node reads the commands of remote viewers from."""
    return f"node:{node_id}:commands"


def error_frame(message: str, code: str) -> dict[str, Any]:
    """A viewer frame ``error`` (what a socket shows for a refused or failed command)."""
    return {"event": "error", "data": {"message": message, "code": code}}


class ViewerOp(enum.StrEnum):
    """What a remote socket asks of the owning node."""

    WATCH = "watch"  # subscribe me (or: I am still here)
    UNWATCH = "unwatch"
    REQUEST_QR = "request-qr"
    REQUEST_PAIRING_CODE = "request-pairing-code"  # with ``phone``
    WATCH_SALON = "watch-salon"  # as WATCH, for the salon page's frames
    CONVERSATION_CHANGED = "conversation-changed"  # with ``phone``: that chat's mode changed


#: The ops that carry a ``phone``.
_WITH_PHONE = frozenset({ViewerOp.REQUEST_PAIRING_CODE, ViewerOp.CONVERSATION_CHANGED})


@dataclass(frozen=True, slots=True)
class ViewerCommand:
    """A remote socket's command to the node that owns the company (``node:{id}:commands``)."""

    company_id: int
    viewer: str  # the socket's id, unique per connection
    op: ViewerOp
    phone: str | None = None  # with REQUEST_PAIRING_CODE and CONVERSATION_CHANGED only
    request_id: str | None = None  # the socket's request id (the operators' log)

    def __post_init__(self) -> None:
        if (self.op in _WITH_PHONE) != (self.phone is not None):
            raise ValueError("a phone goes with request-pairing-code or conversation-changed")

    def encode(self) -> dict[str, Any]:
        """The JSON object to publish."""
        message: dict[str, Any] = {
            "company_id": self.company_id,
            "viewer": self.viewer,
            "op": self.op.value,
        }
        if self.phone is not None:
            message["phone"] = self.phone
        if self.request_id is not None:
            message["request_id"] = self.request_id
        return message

    @classmethod
    def decode(cls, raw: object) -> ViewerCommand | None:
        """The command ``raw`` (a decoded JSON value) holds, or ``None`` if it is malformed."""
        if not isinstance(raw, dict):
            return None
        company_id, viewer, op = raw.get("company_id"), raw.get("viewer"), raw.get("op")
        if type(company_id) is not int or not isinstance(viewer, str) or not isinstance(op, str):
            return None
        try:
            operation = ViewerOp(op)
        except ValueError:
            return None
        phone = raw.get("phone") if operation in _WITH_PHONE else None
        if operation in _WITH_PHONE and not isinstance(phone, str):
            return None
        request_id = raw.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            request_id = None  # absent (an older node) or malformed: served without one
        return cls(company_id, viewer, operation, phone, request_id)


@dataclass(frozen=True, slots=True)
class ViewerEvent:
    """What the owning node publishes on ``company:{id}:events``: a viewer frame, a close, or
    both, for every remote socket or (``to``) for one."""

    frame: dict[str, Any] | None = None
    to: str | None = None  # one remote socket's viewer id; ``None``: every socket
    close: bool = False  # the actor dropped that socket: it closes (the page reconnects)

    def is_for(self, viewer_id: str) -> bool:
        """Whether the socket ``viewer_id`` acts on this event."""
        return self.to is None or self.to == viewer_id

    def encode(self) -> dict[str, Any]:
        """The JSON object to publish (absent fields left out)."""
        message: dict[str, Any] = {}
        if self.frame is not None:
            message["frame"] = self.frame
        if self.to is not None:
            message["to"] = self.to
        if self.close:
            message["close"] = True
        return message

    @classmethod
    def decode(cls, raw: object) -> ViewerEvent | None:
        """The event ``raw`` (a decoded JSON value) holds, or ``None`` if it is malformed."""
        if not isinstance(raw, dict):
            return None
        frame, to = raw.get("frame"), raw.get("to")
        if (frame is not None and not isinstance(frame, dict)) or (
            to is not None and not isinstance(to, str)
        ):
            return None
        return cls(frame=frame, to=to, close=raw.get("close") is True)
