"""What a WhatsApp session reports: small frozen records, the same for every backend.

Each event turns into a JSON-ready dict with :func:`event_to_dict` (``{"type": "QrCode",
"code": ...}``) and back with :func:`event_from_dict`, so events cross the session-host pipe
unchanged. The order of events on one session's stream is the order they happened.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class QrCode:
    """A new QR code to show (whatsmeow's ``2@...`` string); it replaces the previous one.

    ``lifetime``: seconds until the backend shows the next code (or gives up). whatsmeow keeps
    its first code about 60 s and each later one 20 s, so the actor takes it from the event.
    """

    code: str
    lifetime: float = 20.0

    def __repr__(self) -> str:  # the code links a device: keep it out of logs
        return f"QrCode(<{len(self.code)} chars>)"


@dataclass(frozen=True, slots=True)
class Linked:
    """The phone scanned the QR or entered the pairing code: this device is now linked."""

    jid: str
    phone: str


@dataclass(frozen=True, slots=True)
class PairingFailed:
    """The phone tried to link but WhatsApp rejected the pairing (a new QR will follow)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The session is connected and logged in: messages can be sent."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection dropped (transient); the backend reconnects by itself."""

    reason: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """The device was unlinked (from the phone or by WhatsApp): credentials are gone."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamReplaced:
    """The same device connected elsewhere; this session stopped. Never fight for it."""


@dataclass(frozen=True, slots=True)
class TemporaryBan:
    """WhatsApp banned the number for a while: stop sending until ``expires_in`` passes."""

    code: str
    expires_in: float


@dataclass(frozen=True, slots=True)
class KeepAliveTimeout:
    """Keep-alive pings to WhatsApp fail; the connection may be dead."""


@dataclass(frozen=True, slots=True)
class KeepAliveRestored:
    """Keep-alive pings succeed again after a :class:`KeepAliveTimeout`."""


#: What a message carries: text, or a kind of media the assistant cannot read (a voice note is
#: ``audio``; a contact card or a location is ``other``). Media keep their caption as ``text``.
MESSAGE_KINDS = ("text", "image", "audio", "video", "document", "sticker", "other")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message from a client (``timestamp`` in Unix seconds); ``kind`` is one of
    :data:`MESSAGE_KINDS` (``text`` unless it is media)."""

    message_id: str
    sender_phone: str
    text: str
    timestamp: float
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class StaffMessage:
    """A message the salon's own staff sent to a client from the linked phone (not one we
    sent): a person is talking to that client, so the assistant keeps quiet there."""

    message_id: str
    to_phone: str
    text: str
    timestamp: float
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """Connecting failed and the session is stopped; call ``start()`` again to retry."""

    error: str


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The process hosting this session died; call ``start()`` again to reconnect."""

    reason: str


SessionEvent: TypeAlias = (
    QrCode
    | Linked
    | PairingFailed
    | Connected
    | Disconnected
    | LoggedOut
    | StreamReplaced
    | TemporaryBan
    | KeepAliveTimeout
    | KeepAliveRestored
    | InboundMessage
    | StaffMessage
    | ConnectFailed
    | SessionLost
)

EVENT_TYPES: dict[str, type[SessionEvent]] = {
    cls.__name__: cls
    for cls in (
        QrCode,
        Linked,
        PairingFailed,
        Connected,
        Disconnected,
        LoggedOut,
        StreamReplaced,
        TemporaryBan,
        KeepAliveTimeout,
        KeepAliveRestored,
        InboundMessage,
        StaffMessage,
        ConnectFailed,
        SessionLost,
    )
}


def event_to_dict(event: SessionEvent) -> dict[str, Any]:
    """A JSON-ready dict for ``event``: its fields plus ``"type"``."""
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    data["type"] = type(event).__name__
    return data


def event_from_dict(data: dict[str, Any]) -> SessionEvent:
    """Rebuild an event from :func:`event_to_dict`'s output; ``ValueError`` if it is not one."""
    fields = dict(data)
    name = fields.pop("type", None)
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"not a session event type: {name!r}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"bad fields for {name}: {exc}") from None
