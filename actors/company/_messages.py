"""What the web layer and the node send to a company actor (its public protocol).

Replies: ``GetStatus`` → :class:`CompanyView`; ``GetQr`` → :class:`CurrentQr`;
``RequestQr``/``RequestPairingCode`` and the
lifecycle commands → :class:`CommandResult`; ``Subscribe`` → a list of initial frames;
``SendText`` → the queued message's WhatsApp id; ``ConversationChanged`` (a tell) → nothing.
Errors an asker may get are listed in ``CompanyActor.expected_errors``.

Viewer frames. A viewer subscribed with ``events=None`` (the connect page) gets every frame
but the opt-in ones (:data:`OPT_IN_EVENTS`), exactly as before they existed. A viewer that
names its events (the salon page's live socket) gets only those, opt-in ones included:

* ``view`` — the company's :class:`CompanyView` fields (``dataclasses.asdict``), after every
  decision that told viewers a new ``status`` (and first, on subscribing);
* ``message`` — ``{"id", "phone", "direction": "in"|"out", "text", "at", "by":
  "client"|"assistant"|"salon", "status"}`` for each client message recorded (not a
  redelivery), each text queued (``status`` ``queued``) and each queued text's outcome
  (``sent``, ``failed``, ``unconfirmed``: the same ``id`` again);
* ``conversation`` — ``{"phone"}``: that client's conversation changed (its mode); the viewer
  reads the row itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from storage import SyncState

# Commands that are also inputs of the pure decisions are the very same classes.
from ._transitions import ActivationRejected as ActivationRejected
from ._transitions import Freeze as Freeze
from ._transitions import LogoutRequested as LogoutRequested
from ._transitions import Reinstall as Reinstall
from ._transitions import RequestPairingCode as RequestPairingCode
from ._transitions import RequestQr as RequestQr
from ._transitions import Restore as Restore
from ._transitions import Uninstall as Uninstall

#: The outbox kind of the activation callback an actor queues when WhatsApp links (delivered
#: by ``actors.yclients.ActivationDelivery``): one per linked device, keyed by its jid.
ACTIVATION_KIND = "yclients.activation"


class Viewer(Protocol):
    """A live connect-page socket: frames are pushed without blocking.

    ``send_nowait`` raises ``trio.WouldBlock`` when the viewer is too slow (its bounded queue is
    full) or ``trio.ClosedResourceError`` when it went away: either way the actor drops it.
    """

    def send_nowait(self, frame: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class GetStatus:
    """The company's :class:`CompanyView`. With ``extras`` the view also carries the salon's
    sync state and assistant switch when the actor can vouch for them (``CompanyView.held``),
    so ``/marketplace/status`` needs no read of its own."""

    extras: bool = False


@dataclass(frozen=True)
class GetQr:
    """The QR code this incarnation of the actor shows now, if any (``GET /marketplace/qr``).

    A read: it never starts a linking round (only ``RequestQr``, the WebSocket's ``request-qr``,
    does), so polling cannot keep a session rotating codes for a page nobody watches.
    """


@dataclass(frozen=True)
class CurrentQr:
    """Reply to :class:`GetQr`: the status, and the code shown by this very incarnation.

    ``qr`` is ``None`` when no round runs here, when its first code has not come yet
    (``linking`` is then true), or when the cached code is another incarnation's (a crashed or
    restarted actor's, or another process's): the session behind such a code is gone.
    """

    status: str
    linking: bool
    qr: str | None = None
    generated_at: float = 0.0  # unix seconds
    lifetime: float = 0.0  # seconds the code stays valid from ``generated_at``


#: Frames only a viewer that names them in :attr:`Subscribe.events` gets (never the connect
#: page): see the module docstring.
OPT_IN_EVENTS = frozenset({"view", "message", "conversation"})
#: What the salon page's live socket subscribes for (its ``status`` is built from ``view``).
SALON_EVENTS = OPT_IN_EVENTS


@dataclass(frozen=True, eq=False)
class Subscribe:
    """Add a viewer; ``events``: the frame events it wants (``None``: every frame but
    :data:`OPT_IN_EVENTS`, the connect page's protocol)."""

    viewer: Viewer
    events: frozenset[str] | None = None


@dataclass(frozen=True, eq=False)
class Unsubscribe:
    viewer: Viewer


@dataclass(frozen=True)
class SendText:
    """Queue a text to a client. With ``message_id`` (decided by the caller before its first
    try, e.g. a reminder's) the send is idempotent: when the company already has a message
    with that id, nothing is queued again and the id is returned."""

    to_phone: str
    text: str
    message_id: str | None = None
    #: Who wrote it, as ``message`` frames show it: ``assistant`` (replies, reminders) or
    #: ``salon`` (a person writing from the salon's page).
    by: str = "assistant"


@dataclass(frozen=True)
class ConversationChanged:
    """Tell viewers wanting ``conversation`` frames that this client's conversation changed
    (its mode was set). Sent as a tell by whoever changed it; nothing when no viewer wants it."""

    phone: str


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    message: str = ""
    code: str = ""


@dataclass(frozen=True)
class CompanyView:
    """The live status of one company, for ``/marketplace/status`` and the ``status`` frame."""

    company_id: int
    salon_id: int
    title: str | None
    integration_status: str
    session: str
    whatsapp_connected: bool
    whatsapp_phone: str | None
    connected_at: str | None
    banned: bool
    last_error: str | None
    outbound_queued: int
    viewers: int
    #: Whether ``ai_enabled`` and ``sync`` are current (asked with ``GetStatus(extras=True)``,
    #: and never in cluster mode, where another process may write them): else read them.
    held: bool = False
    #: The assistant switch (``companies.ai_enabled``) and the salon's sync state (``None``
    #: before the first sync), when ``held``.
    ai_enabled: bool = False
    sync: SyncState | None = None
