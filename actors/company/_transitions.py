"""The company actor's decisions as a pure function: ``decide(state, event, rules) -> Decision``.

No I/O and no trio here: the actor (``_actor.py``) feeds events in and carries the effects out.
That keeps every rule of the linking life cycle testable on its own (STYLE 2).

Statuses (persisted as ``integration_status``)::

    pending ──request-qr──▶ linking ──linked──▶ active ⇄ reconnecting
       ▲                       │                  │
       └──── qr deadline ──────┘                  ├─ logged out ─▶ logged_out ─request-qr─▶ linking
                                                  ├─ freeze ─▶ frozen ─reinstall─▶ active|pending
    any ─ uninstall ─▶ uninstalled                └─ callback rejected ─▶ activation_failed

A salon logging out from its own page (``LogoutRequested``) goes to ``logged_out`` as an unlink
on the phone does: the device unlinked, its credentials dropped, ``request-qr`` links anew.

The session (our connection to WhatsApp) has its own small state beside the status:
``idle`` (no session), ``linking`` (QR codes rotating), ``connecting``, ``connected``,
``waiting`` (a reconnect is scheduled), ``stopped`` (kept off on purpose: frozen, replaced).

Every timer is decided here too: ``ArmTimer(timer, delay)`` carries the delay (the QR round's
deadlines, the reconnect backoff, the ban, an unwatched round), the actor only arms it and feeds
back ``TIMEOUTS[timer]`` when it fires. Randomness comes in as an input (``SessionDropped``'s
``jitter_seed``), so the same state and event always give the same decision.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from storage import LINKED_STATUSES as STORED_LINKED_STATUSES
from storage import CompanyStatus

from .._business_log import FromRequest

if TYPE_CHECKING:
    # Annotations only: the rules are built by the actor, so this module loads no event loop.
    from config import QrPolicy
    from runtime import Backoff

Status = CompanyStatus  # the persisted statuses are the decisions' statuses

LINK_GRACE = 5.0  # seconds past a code's lifetime before linking counts as over
UNWATCHED_LINKING = 60.0  # seconds a linking round runs on with no viewer
MIN_BAN_WAIT = 1.0  # seconds at least before a banned session tries again


class Session(enum.StrEnum):
    IDLE = "idle"
    LINKING = "linking"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"
    STOPPED = "stopped"


# Statuses in which the company holds WhatsApp credentials worth keeping a session for (the
# same set storage restores at node start).
LINKED_STATUSES = frozenset(Status(s) for s in STORED_LINKED_STATUSES)


@dataclass(frozen=True)
class Rules:
    """The settings ``decide`` applies: QR rotation (``max_codes`` per round, the first code's
    lifetime) and the reconnect backoff (attempt *n* waits ``reconnect.delay(n, ...)``)."""

    qr: QrPolicy
    reconnect: Backoff


class Timer(enum.StrEnum):
    """The actor's timers, one of each at most (arming one again replaces it)."""

    LINK = "link"  # the linking round's deadline: no next QR code in time
    RECONNECT = "reconnect"  # the backoff before the next reconnect attempt
    BAN = "ban"  # a temporary ban ends
    UNWATCHED = "unwatched"  # a linking round nobody watches


@dataclass(frozen=True)
class CompanyState:
    """What the decisions need to know about one company."""

    status: Status = Status.PENDING
    session: Session = Session.IDLE
    jid: str | None = None
    phone: str | None = None
    qr_codes: int = 0
    reconnect_attempt: int = 0
    banned: bool = False
    last_error: str | None = None
    replaced: bool = False  # the session was opened elsewhere; stays stopped until taken back
    viewers: int = 0  # connect pages watching (a linking round nobody watches ends early)

    @property
    def linked(self) -> bool:
        return self.jid is not None and self.status in LINKED_STATUSES

    @property
    def must_stay(self) -> bool:
        """Whether the actor holds a live or wanted session (it must not be passivated)."""
        if self.banned:
            return True  # the ban timer must outlive idleness to resume the session
        return self.session is not Session.IDLE and self.session is not Session.STOPPED


# ---- events (inputs) ----------------------------------------------------------------------


# Commands a request sends carry its id (``FromRequest``) for the operators' log; ``decide``
# never reads it.


@dataclass(frozen=True)
class RequestQr(FromRequest):
    """A viewer asked for a QR code (connect page)."""


@dataclass(frozen=True)
class RequestPairingCode(FromRequest):
    phone: str


@dataclass(frozen=True)
class QrIssued:
    code: str
    lifetime: float = 20.0  # seconds it stays valid, as the session reported


@dataclass(frozen=True)
class LinkDeadlinePassed:
    """The actor's own deadline for a linking round ran out (no next code in time)."""


@dataclass(frozen=True)
class LinkingUnwatched:
    """A linking round ran ``UNWATCHED_LINKING`` seconds without a viewer."""


@dataclass(frozen=True)
class AudienceChanged:
    """The number of viewers (connect pages) changed, or a viewer left."""

    viewers: int


@dataclass(frozen=True)
class Linked:
    jid: str
    phone: str


@dataclass(frozen=True)
class SessionConnected:
    """A session with stored credentials is online again."""


@dataclass(frozen=True)
class SessionDropped:
    """A transient loss: disconnect, keep-alive timeout, host died, connect failed.

    ``jitter_seed`` is a random number the actor draws: the reconnect delay is spread with it
    (``Rules.reconnect``), so that many sessions dropped by one outage do not dial back at once
    while ``decide`` itself stays a function of its inputs.
    """

    reason: str
    jitter_seed: int = 0


@dataclass(frozen=True)
class ReconnectDue:
    """The backoff timer fired."""


@dataclass(frozen=True)
class LoggedOut:
    reason: str


@dataclass(frozen=True)
class StreamReplaced:
    pass


@dataclass(frozen=True)
class Banned:
    expires_in: float


@dataclass(frozen=True)
class BanLifted:
    pass


@dataclass(frozen=True)
class LogoutRequested(FromRequest):
    """The salon logs its WhatsApp out from its own page: the device is unlinked and its
    credentials dropped, as when it is removed on the phone; the connect page links anew."""


@dataclass(frozen=True)
class Freeze(FromRequest):
    pass


@dataclass(frozen=True)
class Uninstall(FromRequest):
    pass


@dataclass(frozen=True)
class Reinstall(FromRequest):
    """YClients sent the salon through the install flow again."""


@dataclass(frozen=True)
class ActivationRejected:
    message: str


@dataclass(frozen=True)
class Restore:
    """Node start: a company whose WhatsApp is linked gets its session back."""


Event = (
    RequestQr
    | RequestPairingCode
    | QrIssued
    | LinkDeadlinePassed
    | LinkingUnwatched
    | AudienceChanged
    | Linked
    | SessionConnected
    | SessionDropped
    | ReconnectDue
    | LoggedOut
    | LogoutRequested
    | StreamReplaced
    | Banned
    | BanLifted
    | Freeze
    | Uninstall
    | Reinstall
    | ActivationRejected
    | Restore
)

# ---- effects (outputs) ----------------------------------------------------------------------


@dataclass(frozen=True)
class StartSession:
    """Open (or resume) the WhatsApp session; ``fresh`` means link a new device."""

    fresh: bool


@dataclass(frozen=True)
class StopSession:
    pass


@dataclass(frozen=True)
class LogoutSession:
    """Unlink the device and drop its credentials."""


@dataclass(frozen=True)
class RequestPairing:
    phone: str


@dataclass(frozen=True)
class ArmTimer:
    """Start ``timer`` to fire after ``delay`` seconds (replacing one already running)."""

    timer: Timer
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True)
class CacheQr:
    code: str
    lifetime: float


@dataclass(frozen=True)
class ClearQr:
    pass


class Keep(enum.Enum):
    """The value of a :class:`Persist` field that is left as stored."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Persist:
    """Store the company's ``status`` and the fields given (``KEEP`` ones are not written),
    and append an audit-log entry ``audit``.

    ``linked_now`` records the current time as the moment WhatsApp was linked.
    """

    audit: str
    status: Status
    connected: bool | Keep = KEEP
    jid: str | Keep | None = KEEP
    phone: str | Keep = KEEP
    replaced: bool | Keep = KEEP
    last_error: str | Keep | None = KEEP
    linked_now: bool = False


@dataclass(frozen=True)
class EnqueueActivation:
    """Queue the activation callback to YClients (exactly one per linked device)."""

    jid: str


@dataclass(frozen=True)
class RevokeCredentials:
    """Uninstall: revoke the company's API key, webhook secret and connect token."""


@dataclass(frozen=True)
class Notify:
    """Tell the viewers (connect pages): an event name and its data."""

    event: str
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """The answer to whoever sent the event (an ``ask``)."""

    ok: bool
    message: str = ""
    code: str = ""


@dataclass(frozen=True)
class PauseSending:
    paused: bool


Effect = (
    StartSession
    | StopSession
    | LogoutSession
    | RequestPairing
    | ArmTimer
    | CancelTimer
    | CacheQr
    | ClearQr
    | Persist
    | EnqueueActivation
    | RevokeCredentials
    | Notify
    | Reply
    | PauseSending
)


@dataclass(frozen=True)
class Decision:
    state: CompanyState
    effects: tuple[Effect, ...] = ()


def status_notice(state: CompanyState, message: str = "") -> Notify:
    """The ``status`` frame viewers get after every change."""
    data: dict[str, object] = {
        "status": state.status.value,
        "whatsapp_connected": state.session is Session.CONNECTED,
        "phone": state.phone,
    }
    if message:
        data["message"] = message
    if state.banned:
        data["banned"] = True
    if state.replaced:  # stopped here, opened elsewhere: request-qr takes it back
        data["replaced"] = True
    return Notify("status", data)


def decide(state: CompanyState, event: Event, rules: Rules) -> Decision:
    """The next state and the effects of ``event`` under ``rules``; unknown combinations
    change nothing."""
    return _HANDLERS[type(event)](state, event, rules)


# ---- handlers (each takes the state, the event and the rules) -------------------------------


def _refuse(state: CompanyState, code: str, message: str) -> Decision:
    return Decision(state, (Reply(False, message, code),))


def _watch(state: CompanyState) -> Effect:
    """A linking round nobody watches ends after ``UNWATCHED_LINKING`` seconds.

    Sessions left rotating QR codes for closed pages cost a WhatsApp connection each (the
    gateways' "stuck connecting" memory growth). A viewer or a new ``request-qr`` keeps the
    round alive (``GET /marketplace/qr`` is a read: polling it does not).
    """
    if state.viewers or state.session is not Session.LINKING:
        return CancelTimer(Timer.UNWATCHED)
    return ArmTimer(Timer.UNWATCHED, UNWATCHED_LINKING)


def _on_request_qr(state: CompanyState, _: RequestQr, rules: Rules) -> Decision:
    decided = _start_linking(state, rules)
    return Decision(decided.state, (*decided.effects, _watch(decided.state)))


def _start_linking(state: CompanyState, rules: Rules) -> Decision:
    if state.status is Status.UNINSTALLED:
        return _refuse(state, "uninstalled", "The app was uninstalled in YClients")
    if state.status is Status.FROZEN:
        return _refuse(state, "frozen", "The app is frozen in YClients")
    if state.linked and state.session is Session.STOPPED and state.replaced:
        # Opened elsewhere and stopped here: the admin asks to take it back on this device.
        return _resume_replaced(state)
    if state.linked:
        # Never tear down a live, linked session for a QR request.
        return Decision(state, (Reply(False, "WhatsApp is already connected", "already_linked"),))
    if state.session is Session.LINKING:
        return Decision(state, (Reply(True, "linking in progress"),))
    new = replace(
        state, status=Status.LINKING, session=Session.LINKING, qr_codes=0, last_error=None
    )
    return Decision(
        new,
        (
            StartSession(fresh=True),
            ArmTimer(Timer.LINK, rules.qr.first_code_lifetime),
            Persist("linking_started", new.status),
            status_notice(new),
            Reply(True, "linking started"),
        ),
    )


def _resume_replaced(state: CompanyState) -> Decision:
    new = replace(
        state, session=Session.CONNECTING, reconnect_attempt=0, last_error=None, replaced=False
    )
    return Decision(
        new,
        (
            StartSession(fresh=False),
            Persist("whatsapp_resumed_here", new.status, replaced=False, last_error=None),
            status_notice(new, "Taking the WhatsApp session back on this device"),
            Reply(True, "resuming the session here"),
        ),
    )


def _on_request_pairing(state: CompanyState, event: RequestPairingCode, rules: Rules) -> Decision:
    if state.linked:
        return Decision(state, (Reply(False, "WhatsApp is already connected", "already_linked"),))
    if state.status in (Status.UNINSTALLED, Status.FROZEN):
        return _refuse(state, state.status.value, f"The app is {state.status.value} in YClients")
    if state.session is Session.LINKING:
        return Decision(state, (RequestPairing(event.phone), Reply(True, "pairing requested")))
    started = _start_linking(state, rules)
    effects = tuple(e for e in started.effects if not isinstance(e, Reply))
    return Decision(
        started.state, (*effects, RequestPairing(event.phone), Reply(True, "pairing requested"))
    )


def _on_qr(state: CompanyState, event: QrIssued, rules: Rules) -> Decision:
    if state.session is not Session.LINKING:
        return Decision(state)
    if state.qr_codes >= rules.qr.max_codes:
        # whatsmeow would go on silently; the round ends here, the viewer may ask again.
        return _end_linking(state)
    new = replace(state, qr_codes=state.qr_codes + 1)
    # Linking is over if no next code comes within this one's lifetime.
    return Decision(
        new,
        (CacheQr(event.code, event.lifetime), ArmTimer(Timer.LINK, event.lifetime + LINK_GRACE)),
    )


def _on_link_deadline(state: CompanyState, _: LinkDeadlinePassed, __: Rules) -> Decision:
    if state.session is not Session.LINKING:
        return Decision(state)
    return _end_linking(state)


def _on_unwatched(state: CompanyState, _: LinkingUnwatched, __: Rules) -> Decision:
    if state.viewers or state.session is not Session.LINKING:
        return Decision(state)
    return _end_linking(state)


def _end_linking(state: CompanyState) -> Decision:
    """The linking round is over without a link: stop the session, tell ``qr-expired``."""
    new = replace(
        state,
        status=Status.PENDING if state.jid is None else Status.LOGGED_OUT,
        session=Session.IDLE,
    )
    return Decision(
        new,
        (
            StopSession(),
            ClearQr(),
            Persist("linking_expired", new.status),
            Notify("qr-expired", {"message": "QR code expired, request a new one"}),
            status_notice(new),
        ),
    )


def _on_audience(state: CompanyState, event: AudienceChanged, _: Rules) -> Decision:
    new = replace(state, viewers=event.viewers)
    return Decision(new, (_watch(new),))


def _on_linked(state: CompanyState, event: Linked, _: Rules) -> Decision:
    if state.status is Status.UNINSTALLED:
        return Decision(state, (LogoutSession(),))
    already = state.jid == event.jid and state.status in LINKED_STATUSES
    new = replace(
        state,
        status=Status.ACTIVE
        if state.status is not Status.ACTIVATION_FAILED or not already
        else state.status,
        session=Session.CONNECTED,
        jid=event.jid,
        phone=event.phone,
        reconnect_attempt=0,
        last_error=None,
        replaced=False,
    )
    if already:
        # A repeated link event: nothing new to persist or to tell YClients.
        return Decision(new, (CancelTimer(Timer.RECONNECT),))
    return Decision(
        new,
        (
            CancelTimer(Timer.LINK),
            ClearQr(),
            Persist(
                "whatsapp_linked",
                new.status,
                connected=True,
                phone=event.phone,
                jid=event.jid,
                linked_now=True,
                replaced=False,
                last_error=None,
            ),
            EnqueueActivation(event.jid),
            Notify(
                "whatsapp-connected",
                {"success": True, "phone": event.phone, "message": "WhatsApp успешно подключен!"},
            ),
            status_notice(new),
        ),
    )


def _on_connected(state: CompanyState, _: SessionConnected, __: Rules) -> Decision:
    if not state.linked or state.session is Session.STOPPED:
        return Decision(state)
    new = replace(
        state,
        status=Status.ACTIVE if state.status is Status.RECONNECTING else state.status,
        session=Session.CONNECTED,
        reconnect_attempt=0,
        last_error=None,
        replaced=False,
    )
    effects: list[Effect] = [CancelTimer(Timer.RECONNECT)]
    # Connected here again (e.g. unfrozen) after being replaced: the stored mark goes too.
    cleared: bool | Keep = False if state.replaced else KEEP
    if new.status is not state.status:
        effects.append(
            Persist("whatsapp_reconnected", new.status, connected=True, replaced=cleared)
        )
    elif cleared is not KEEP:
        effects.append(Persist("whatsapp_reconnected", new.status, replaced=cleared))
    effects.append(status_notice(new))
    return Decision(new, tuple(effects))


def _on_dropped(state: CompanyState, event: SessionDropped, rules: Rules) -> Decision:
    if state.session is Session.LINKING:
        # Linking failed to even connect: back to where we were, tell the viewers.
        new = replace(
            state,
            status=Status.PENDING if state.jid is None else Status.LOGGED_OUT,
            session=Session.IDLE,
            last_error=event.reason,
        )
        return Decision(
            new,
            (
                CancelTimer(Timer.LINK),
                StopSession(),
                ClearQr(),
                Persist("linking_failed", new.status, last_error=event.reason),
                Notify(
                    "error",
                    {"message": "Could not reach WhatsApp, try again", "code": "session_failed"},
                ),
                status_notice(new),
            ),
        )
    if not state.linked or state.session in (Session.STOPPED, Session.IDLE):
        return Decision(state)
    attempt = state.reconnect_attempt + 1
    new = replace(
        state,
        status=Status.RECONNECTING if state.status is Status.ACTIVE else state.status,
        session=Session.WAITING,
        reconnect_attempt=attempt,
        last_error=event.reason,
    )
    delay = rules.reconnect.delay(attempt, random.Random(event.jitter_seed))
    effects: list[Effect] = [ArmTimer(Timer.RECONNECT, delay)]
    if new.status is not state.status:
        effects.append(
            Persist("whatsapp_disconnected", new.status, connected=False, last_error=event.reason)
        )
    effects.append(status_notice(new))
    return Decision(new, tuple(effects))


def _on_reconnect_due(state: CompanyState, _: ReconnectDue, __: Rules) -> Decision:
    if state.session is not Session.WAITING:
        return Decision(state)
    return Decision(replace(state, session=Session.CONNECTING), (StartSession(fresh=False),))


def _on_logged_out(state: CompanyState, event: LoggedOut, _: Rules) -> Decision:
    if state.status in (Status.UNINSTALLED,) or state.jid is None:
        return Decision(state)
    new = replace(
        state,
        status=Status.LOGGED_OUT,
        session=Session.IDLE,
        jid=None,
        phone=None,
        reconnect_attempt=0,
        banned=False,
        last_error=event.reason,
    )
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            StopSession(),
            LogoutSession(),
            Persist(
                "whatsapp_logged_out",
                new.status,
                connected=False,
                jid=None,
                last_error=event.reason,
            ),
            status_notice(new, "WhatsApp was unlinked from the phone; scan a new QR code"),
        ),
    )


def _on_logout_requested(state: CompanyState, _: LogoutRequested, __: Rules) -> Decision:
    if state.status is Status.UNINSTALLED:
        return _refuse(state, "uninstalled", "The app was uninstalled in YClients")
    if state.status is Status.FROZEN:
        # Frozen keeps the credentials for YClients' unfreeze; logging out would lose them.
        return _refuse(state, "frozen", "The app is frozen in YClients")
    if state.jid is None:
        return _refuse(state, "not_linked", "WhatsApp is not linked")
    new = replace(
        state,
        status=Status.LOGGED_OUT,
        session=Session.IDLE,
        jid=None,
        phone=None,
        reconnect_attempt=0,
        banned=False,
        last_error=None,
        replaced=False,
    )
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            CancelTimer(Timer.BAN),
            LogoutSession(),  # through the live session when there is one, then closed
            StopSession(),
            Persist(
                "whatsapp_logged_out_by_salon",
                new.status,
                connected=False,
                jid=None,
                replaced=False,
                last_error=None,
            ),
            status_notice(new, "WhatsApp was logged out; scan a new QR code to link it again"),
            Reply(True, "logged out"),
        ),
    )


def _on_stream_replaced(state: CompanyState, _: StreamReplaced, __: Rules) -> Decision:
    if state.session in (Session.IDLE, Session.STOPPED):
        return Decision(state)
    reason = "stream_replaced: this WhatsApp session was opened elsewhere"
    new = replace(state, session=Session.STOPPED, last_error=reason, replaced=True)
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            StopSession(),
            Persist(
                "whatsapp_stream_replaced",
                new.status,
                connected=False,
                replaced=True,
                last_error=reason,
            ),
            status_notice(new, "The session was opened elsewhere and stopped here"),
        ),
    )


def _on_banned(state: CompanyState, event: Banned, _: Rules) -> Decision:
    # WhatsApp closes a banned session: keep it off until the ban ends, then resume.
    new = replace(
        state,
        banned=True,
        session=Session.WAITING if state.linked else state.session,
        last_error=f"temporary_ban: {int(event.expires_in)} s",
    )
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            PauseSending(True),
            Persist("whatsapp_temporary_ban", new.status, last_error=new.last_error),
            status_notice(new, "WhatsApp temporarily banned this number; sending is paused"),
            ArmTimer(Timer.BAN, max(MIN_BAN_WAIT, event.expires_in)),
        ),
    )


def _on_ban_lifted(state: CompanyState, _: BanLifted, __: Rules) -> Decision:
    if not state.banned:
        return Decision(state)
    resume = state.linked and state.session is Session.WAITING
    new = replace(
        state,
        banned=False,
        session=Session.CONNECTING if resume else state.session,
        last_error=None,
    )
    effects: list[Effect] = [PauseSending(False)]
    if resume:
        effects.append(StartSession(fresh=False))
    effects += [
        Persist("whatsapp_ban_lifted", new.status, last_error=None),
        status_notice(new),
    ]
    return Decision(new, tuple(effects))


def _on_freeze(state: CompanyState, _: Freeze, __: Rules) -> Decision:
    if state.status in (Status.FROZEN, Status.UNINSTALLED):
        return Decision(state, (Reply(True, "already " + state.status.value),))
    new = replace(state, status=Status.FROZEN, session=Session.STOPPED, reconnect_attempt=0)
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            CancelTimer(Timer.LINK),
            StopSession(),
            ClearQr(),
            Persist("app_frozen", new.status, connected=False),
            status_notice(new),
            Reply(True, "frozen"),
        ),
    )


def _on_uninstall(state: CompanyState, _: Uninstall, __: Rules) -> Decision:
    if state.status is Status.UNINSTALLED:
        return Decision(state, (Reply(True, "already uninstalled"),))
    new = replace(
        state,
        status=Status.UNINSTALLED,
        session=Session.IDLE,
        jid=None,
        phone=None,
        reconnect_attempt=0,
        banned=False,
    )
    return Decision(
        new,
        (
            CancelTimer(Timer.RECONNECT),
            CancelTimer(Timer.LINK),
            LogoutSession(),
            StopSession(),
            ClearQr(),
            RevokeCredentials(),
            Persist("app_uninstalled", new.status, connected=False, jid=None),
            status_notice(new),
            Reply(True, "uninstalled"),
        ),
    )


def _on_reinstall(state: CompanyState, _: Reinstall, __: Rules) -> Decision:
    if state.status is Status.FROZEN and state.jid is not None:
        new = replace(state, status=Status.ACTIVE, session=Session.CONNECTING, reconnect_attempt=0)
        return Decision(
            new,
            (
                StartSession(fresh=False),
                Persist("app_unfrozen", new.status),
                status_notice(new),
                Reply(True, "resumed"),
            ),
        )
    if state.status in (Status.FROZEN, Status.UNINSTALLED):
        new = replace(state, status=Status.PENDING, session=Session.IDLE, jid=None, phone=None)
        return Decision(
            new,
            (
                Persist("app_reinstalled", new.status),
                status_notice(new),
                Reply(True, "reinstalled"),
            ),
        )
    return Decision(state, (Reply(True, "unchanged"),))


def _on_activation_rejected(state: CompanyState, event: ActivationRejected, _: Rules) -> Decision:
    if state.status not in (Status.ACTIVE, Status.RECONNECTING):
        return Decision(state)
    new = replace(state, status=Status.ACTIVATION_FAILED, last_error=event.message)
    return Decision(
        new,
        (
            Persist("activation_failed", new.status, last_error=event.message),
            status_notice(new, "YClients refused the activation: " + event.message),
        ),
    )


def _on_restore(state: CompanyState, _: Restore, __: Rules) -> Decision:
    if not state.linked or state.session is not Session.IDLE:
        return Decision(state)
    new = replace(state, session=Session.CONNECTING)
    return Decision(new, (StartSession(fresh=False),))


_HANDLERS: dict[type, Callable[[CompanyState, Any, Rules], Decision]] = {
    RequestQr: _on_request_qr,
    RequestPairingCode: _on_request_pairing,
    QrIssued: _on_qr,
    LinkDeadlinePassed: _on_link_deadline,
    LinkingUnwatched: _on_unwatched,
    AudienceChanged: _on_audience,
    Linked: _on_linked,
    SessionConnected: _on_connected,
    SessionDropped: _on_dropped,
    ReconnectDue: _on_reconnect_due,
    LoggedOut: _on_logged_out,
    LogoutRequested: _on_logout_requested,
    StreamReplaced: _on_stream_replaced,
    Banned: _on_banned,
    BanLifted: _on_ban_lifted,
    Freeze: _on_freeze,
    Uninstall: _on_uninstall,
    Reinstall: _on_reinstall,
    ActivationRejected: _on_activation_rejected,
    Restore: _on_restore,
}

#: The event each timer feeds back into ``decide`` when it fires.
TIMEOUTS: dict[Timer, Event] = {
    Timer.LINK: LinkDeadlinePassed(),
    Timer.RECONNECT: ReconnectDue(),
    Timer.BAN: BanLifted(),
    Timer.UNWATCHED: LinkingUnwatched(),
}
