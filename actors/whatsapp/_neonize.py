"""The production backend: one neonize ``NewClient`` (whatsmeow) per company.

neonize is imported lazily, on the first ``start()`` (importing it costs ~60 MB and calls
``logging.basicConfig``): run this backend inside session hosts, not in the web process.
Before importing, :func:`check_neonize` makes sure the wheel's Go library is present, because
neonize would otherwise try to download one (and fail offline) — the error names the fix.

Each company has its own session store, ``company_<id>.sqlite3`` under the sessions path
(whatsmeow resumes the first device in a store, so one store per company), unless a shared
``postgres://`` store URL is configured (then the company's JID selects the device).

Threads: ``connect()`` blocks for the life of the session, so each runs in its own thread
(under a limiter sized for thousands, not trio's default 40); short calls (send, pair,
logout, stop) run in threads under a separate limiter. neonize callbacks run on the
session's Go thread and only map the event (:func:`map_event`, pure) and hand it to trio.

Backpressure: a callback returns once its event is in the session's buffer. When the reader
lags and the buffer is full, the callback blocks its Go thread (``trio.from_thread.run`` of a
waiting put), so whatsmeow stops taking events and WhatsApp holds the backlog: a burst of
thousands of queued messages is never dropped. Stopping the session releases a blocked
callback (the client is being stopped; its late events are not for us any more).
We track "connected" ourselves and never call into neonize in a state where it would panic
(``get_me`` is never called; ``send_message``/``PairPhone``/``logout`` only when allowed).

Outbound dedupe: neonize's ``send_message`` cannot take our message id, so the gateway's
ledger (:mod:`._ledger`: our id → WhatsApp id, a file per company or PostgreSQL's
``whatsapp_sent``) records each send as soon as WhatsApp took it (shielded from cancellation),
and a resend of a recorded id is answered from it without sending. With the PostgreSQL ledger
that holds on whichever process or machine the company's session runs next. A send whose
process died inside ``send_message`` may still go twice; a ledger that cannot be read makes
the send fail with :class:`OutcomeUnknown` (retried later) rather than risk a second copy.

The seam: the gateway makes each client through its ``client_factory`` (default
:func:`new_neonize_client`), called in a worker thread with the company's :class:`ClientSpec`
and the session's two callbacks. A factory may return any object with neonize's client
surface as used here — ``connect()`` (blocks until stopped), ``stop()``,
``send_message(phone, text)`` (→ an object with ``ID``), ``PairPhone(phone, True)``,
``logout()`` — that calls ``on_event(client, protobuf_event)`` and ``on_qr(client, data)``
from its own threads, as neonize does from its Go threads. Tests drive sessions through it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import importlib.metadata
import importlib.util
import logging
import platform
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from config import without_passwords
from storage import SentLedger, StorageError, StorageTimeout, StorageUnavailable

from .._phones import InvalidPhone, normalise_phone
from ._errors import (
    BackendUnavailable,
    NeonizeMissing,
    OutcomeUnknown,
    PairingUnavailable,
    SendFailed,
    SessionNotConnected,
)
from ._events import (
    Connected,
    ConnectFailed,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    PairingFailed,
    QrCode,
    SessionEvent,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
)
from ._ids import valid_message_id
from ._ledger import FileLedger
from ._session import GatewaySnapshot, SessionBase, SessionState

log = logging.getLogger(__name__)

NEONIZE_VERSION = "0.5.2"
# whatsmeow's QR channel: the first code of a connection is shown ~60 s, each later one 20 s.
QR_FIRST_LIFETIME = 60.0
QR_LATER_LIFETIME = 20.0
NEONIZE_FIX = (
    f"install it with `pip install neonize=={NEONIZE_VERSION}` (its Linux x86_64/aarch64 "
    "wheels ship the Go library and need glibc >= 2.34) and `apt-get install libmagic1`"
)
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LOGOUT_REASONS = {1: "generic", 2: "logged_out", 4: "main_device_gone", 5: "unknown_logout"}
_TEMP_BAN_CODES = {
    1: "SEND_TO_TOO_MANY_PEOPLE",
    2: "BLOCKED_BY_USERS",
    3: "CREATED_TOO_MANY_GROUPS",
    4: "SENT_TOO_MANY_SAME_MESSAGE",
    5: "BROADCAST_LIST",
}
_FAILURE_REASONS = {
    1: "generic",
    6: "client outdated (update neonize)",
    7: "bad user agent",
    8: "internal server error",
    9: "experimental",
    10: "service unavailable",
}
# ConnectFailure reasons whatsmeow reports separately as LoggedOut / TemporaryBan.
_FAILURES_WITH_OWN_EVENT = {2, 3, 4, 5}
#: A session remembers this many of its own newest sends (from the ledger at start, then its
#: own), to tell their echoes from the staff's messages and to answer a resend without a read.
OWN_SENDS_KEPT = 1000
#: Seconds a send's record in the ledger may take once WhatsApp took the message, retries
#: included (a dropped connection, a database failing over).
RECORD_TIMEOUT = 10.0
#: Seconds before the first retry of a failed record; doubled after each, up to one second.
RECORD_RETRY = 0.05


def check_neonize() -> Path:
    """The path of neonize's Go library; :class:`NeonizeMissing` naming the fix if absent."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or spec.origin is None:
        raise NeonizeMissing(f"neonize is not installed: {NEONIZE_FIX}")
    try:
        version = importlib.metadata.version("neonize")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != NEONIZE_VERSION:
        raise NeonizeMissing(
            f"neonize {version} is installed, {NEONIZE_VERSION} is needed: {NEONIZE_FIX}"
        )
    system = platform.system().lower()
    arch = _ARCHES.get(platform.machine().lower())
    if system != "linux" or arch is None:
        raise NeonizeMissing(
            f"neonize's bundled Go library exists for Linux x86_64/aarch64 only, "
            f"not {platform.system()} {platform.machine()}"
        )
    library = Path(spec.origin).parent / f"neonize-{system}-{arch}.so"
    if not library.is_file():
        raise NeonizeMissing(f"neonize's Go library {library} is missing: {NEONIZE_FIX}")
    return library


def _jid_string(jid: Any) -> str:
    user, server = str(jid.User), str(jid.Server) or "s.whatsapp.net"
    device = int(jid.Device)
    return f"{user}:{device}@{server}" if device else f"{user}@{server}"


def _message_text(message: Any) -> str:
    if message.conversation:
        return str(message.conversation)
    if message.HasField("extendedTextMessage"):
        return str(message.extendedTextMessage.text)
    return ""


# Media a client can send, by the protobuf field that carries it; the value is our kind. Other
# fields (reactions, receipts of edits, protocol and key-distribution messages, polls) are not
# something a person wrote to the salon, so they are not messages for us at all.
_MEDIA_KINDS = {
    "imageMessage": "image",
    "audioMessage": "audio",  # voice notes too (ptt)
    "videoMessage": "video",
    "ptvMessage": "video",  # round video notes
    "documentMessage": "document",
    "documentWithCaptionMessage": "document",
    "stickerMessage": "sticker",
    "contactMessage": "other",
    "contactsArrayMessage": "other",
    "locationMessage": "other",
    "liveLocationMessage": "other",
}
_WRAPPERS = ("viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension")


def _media(message: Any, depth: int = 0) -> tuple[str, str] | None:
    """``(kind, caption)`` for a media message, or ``None`` when it is not one."""
    for field in _MEDIA_KINDS:
        if message.HasField(field):
            inner = getattr(message, field)
            if field == "documentWithCaptionMessage":
                inner = inner.message.documentMessage
            return _MEDIA_KINDS[field], str(getattr(inner, "caption", ""))
    if depth == 0:  # "view once" media wrap the real message one level down
        for wrapper in _WRAPPERS:
            if message.HasField(wrapper):
                return _media(getattr(message, wrapper).message, depth + 1)
    return None


def _content(message: Any) -> tuple[str, str] | None:
    """``(kind, text)`` of a message a person wrote: text, or media with its caption."""
    text = _message_text(message)
    if text:
        return "text", text
    return _media(message)


def map_event(ev: Any) -> SessionEvent | None:
    """Our event for a neonize protobuf event, or ``None`` for the ones we ignore.

    Pure: dispatches on the protobuf type name, so it needs no neonize import. Messages: only
    1:1, text (``conversation`` or ``extendedTextMessage.text``) or media (``kind`` says which,
    the caption is the text); the sender's phone comes from ``SenderAlt`` when WhatsApp
    addresses the sender by LID. Messages from the linked phone itself are
    :class:`StaffMessage` (the session filters out the ones this device sent).
    """
    name = ev.DESCRIPTOR.full_name
    if name == "neonize.Connected":
        return Connected()
    if name == "neonize.Disconnected":
        return Disconnected("connection closed")
    if name == "neonize.PairStatus":
        if ev.Status == 2:  # SUCCESS
            return Linked(_jid_string(ev.ID), str(ev.ID.User))
        return PairingFailed(str(ev.Error) or "pairing failed")
    if name == "neonize.LoggedOut":
        why = _LOGOUT_REASONS.get(int(ev.Reason), f"reason {int(ev.Reason)}")
        return LoggedOut(why + (" (on connect)" if ev.OnConnect else ""))
    if name == "neonize.StreamReplaced":
        return StreamReplaced()
    if name == "neonize.TemporaryBan":
        code = _TEMP_BAN_CODES.get(int(ev.Code), f"CODE_{int(ev.Code)}")
        return TemporaryBan(code, float(ev.Expire))
    if name == "neonize.KeepAliveTimeout":
        return KeepAliveTimeout()
    if name == "neonize.KeepAliveRestored":
        return KeepAliveRestored()
    if name == "neonize.ConnectFailure":
        failure = int(ev.Reason)
        if failure in _FAILURES_WITH_OWN_EVENT:
            return None
        text = _FAILURE_REASONS.get(failure, f"reason {failure}")
        return ConnectFailed(f"WhatsApp refused the connection: {text} {ev.Message}".strip())
    if name == "neonize.ClientOutdated":
        return ConnectFailed("WhatsApp says the client is outdated: update neonize")
    if name == "neonize.Message":
        return _map_message(ev)
    return None


def _map_message(ev: Any) -> InboundMessage | StaffMessage | None:
    """A 1:1 message: from a client (:class:`InboundMessage`), or written on the linked phone
    to a client (``IsFromMe``: :class:`StaffMessage`; the session drops the ones we sent)."""
    source = ev.Info.MessageSource
    if source.IsGroup or source.Chat.Server in ("g.us", "broadcast", "newsletter"):
        return None
    content = _content(ev.Message)
    if content is None:
        return None
    kind, text = content
    if source.IsFromMe:
        chat = source.Chat
        if chat.Server == "lid" and source.HasField("RecipientAlt") and source.RecipientAlt.User:
            chat = source.RecipientAlt
        if chat.Server != "s.whatsapp.net" or not chat.User:
            return None  # a note to self, or a chat we cannot name by phone
        return StaffMessage(
            message_id=str(ev.Info.ID),
            to_phone=str(chat.User),
            text=text,
            timestamp=float(ev.Info.Timestamp),
            kind=kind,
        )
    sender = source.Sender
    if sender.Server == "lid" and source.HasField("SenderAlt") and source.SenderAlt.User:
        sender = source.SenderAlt
    return InboundMessage(
        message_id=str(ev.Info.ID),
        sender_phone=str(sender.User),
        text=text,
        timestamp=float(ev.Info.Timestamp),
        kind=kind,
    )


_STOPPED_BY = (LoggedOut, StreamReplaced, TemporaryBan, ConnectFailed)


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """Where a company's neonize client keeps its session."""

    company_id: int
    store: str  # the company's own SQLite file, or the shared ``postgres://`` store URL
    shared_store: bool  # ``store`` is the shared URL (the JID, if known, picks the device)
    jid: str | None  # the linked device's JID, once linked


#: ``on_event(client, neonize_protobuf_event)`` and ``on_qr(client, data)``: the session's
#: callbacks, safe to call from any thread (they hand the event to trio and return once the
#: session took it: while its buffer is full they block, see the module docstring).
EventCallback = Callable[[Any, Any], None]
QrCallback = Callable[[Any, bytes], None]
#: Makes a client and registers both callbacks on it (in a worker thread; see module doc).
ClientFactory = Callable[[ClientSpec, EventCallback, QrCallback], Any]


def new_neonize_client(spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> Any:
    """Import neonize, make the company's ``NewClient`` and register the callbacks on it."""
    from neonize import events as ne
    from neonize.client import NewClient

    if spec.shared_store and spec.jid is not None:
        from neonize.proto.Neonize_pb2 import JID

        user, _, rest = spec.jid.partition(":")
        device, _, server = rest.partition("@")
        jid = JID(
            User=user,
            Device=int(device or 0),
            Server=server or "s.whatsapp.net",
            RawAgent=0,
            Integrator=0,
            IsEmpty=False,
        )
        client = NewClient(spec.store, jid=jid)
    elif spec.shared_store:
        client = NewClient(spec.store, uuid=f"company-{spec.company_id}", new_device=True)
    else:
        client = NewClient(spec.store, uuid=f"company-{spec.company_id}")
    for ev_type in (
        ne.PairStatusEv,
        ne.ConnectedEv,
        ne.DisconnectedEv,
        ne.LoggedOutEv,
        ne.StreamReplacedEv,
        ne.TemporaryBanEv,
        ne.ConnectFailureEv,
        ne.ClientOutdatedEv,
        ne.KeepAliveTimeoutEv,
        ne.KeepAliveRestoredEv,
        ne.MessageEv,
    ):
        client.event(ev_type)(on_event)
    client.event.qr(on_qr)
    return client


class NeonizeSession(SessionBase):
    """One company's neonize client (see the module docstring)."""

    def __init__(self, gateway: NeonizeGateway, company_id: int, jid: str | None) -> None:
        super().__init__(company_id, gateway._spawn)
        self._gateway = gateway
        self._jid = jid
        self._client: Any = None
        self._connected = False
        self._qr_seen = False
        self._sent: dict[str, str] = {}  # our id → WhatsApp id of this session's newest sends
        # WhatsApp ids of the company's newest sends (the ledger's at start, then this
        # session's), oldest first: their echoes are ours, not the staff's
        self._own: dict[str, None] = {}
        self._in_flight: dict[str, trio.Event] = {}  # message id → done, while it is being sent
        # (phone, text) of sends whose WhatsApp id is not known yet, so an echo arriving
        # before ``send_message`` returns is still recognised as ours
        self._sending: collections.Counter[tuple[str, str]] = collections.Counter()

    @property
    def store_path(self) -> Path:
        return self._gateway.sessions_path / f"company_{self._company_id}.sqlite3"

    def _build_client(self, token: trio.lowlevel.TrioToken) -> Any:
        """Make the client through the gateway's factory, its callbacks bound to this trio
        run (runs in a thread)."""
        store_url = self._gateway.store_url
        spec = ClientSpec(
            company_id=self._company_id,
            store=store_url if store_url is not None else str(self.store_path),
            shared_store=store_url is not None,
            jid=self._jid,
        )
        return self._gateway.client_factory(
            spec,
            functools.partial(self._callback, token),
            functools.partial(self._qr_callback, token),
        )

    # -- callbacks: on neonize's thread; map, hand to trio, return once it is taken --

    def _callback(self, token: trio.lowlevel.TrioToken, client: Any, ev: Any) -> None:
        try:
            event = map_event(ev)
        except Exception:
            log.exception("company %s: could not map %s", self._company_id, type(ev).__name__)
            return
        if event is not None:
            self._hand_over(token, client, event)

    def _qr_callback(self, token: trio.lowlevel.TrioToken, client: Any, data: bytes) -> None:
        self._hand_over(token, client, QrCode(data.decode(errors="replace")))

    def _hand_over(self, token: trio.lowlevel.TrioToken, client: Any, event: SessionEvent) -> None:
        """Give ``event`` to trio and wait (blocking this thread) until the session took it."""
        with contextlib.suppress(trio.RunFinishedError, trio.Cancelled):
            trio.from_thread.run(self._on_event, client, event, trio_token=token)

    async def _on_event(self, client: Any, event: SessionEvent) -> None:
        if client is not self._client:
            await trio.lowlevel.checkpoint()
            return
        if isinstance(event, StaffMessage) and self._sent_by_us(event):
            return
        if isinstance(event, QrCode):
            lifetime = QR_LATER_LIFETIME if self._qr_seen else QR_FIRST_LIFETIME
            event = dataclasses.replace(event, lifetime=lifetime)
            self._qr_seen = True
        elif isinstance(event, Connected):
            self._connected = True
        elif isinstance(event, Disconnected):
            self._connected = False
        elif isinstance(event, _STOPPED_BY):
            self._connected = False
            self._client = None
            self._gateway._spawn(functools.partial(self._stop_client, client))
        await self._put(event)

    # -- lifecycle --

    async def start(self) -> None:
        """Build the client and connect in its own thread; failures come as ConnectFailed."""
        if self._state is SessionState.CLOSED:
            raise BackendUnavailable("this session is closed")
        self._gateway._check_open()
        if self._client is not None:
            return
        self._gateway.check_library()
        self._gateway.sessions_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._load_sent()
        token = trio.lowlevel.current_trio_token()
        try:
            client = await self._gateway._call(self._build_client, token)
        except Exception as exc:
            raise NeonizeMissing(f"neonize could not be loaded ({exc}): {NEONIZE_FIX}") from None
        self._client = client
        self._connected = self._qr_seen = False
        self._state = SessionState.CONNECTING
        self._gateway._spawn(functools.partial(self._run_connect, client))

    async def _run_connect(self, client: Any) -> None:
        try:
            await trio.to_thread.run_sync(
                client.connect, abandon_on_cancel=True, limiter=self._gateway._connect_limiter
            )
            error = "the connection ended"
        except Exception as exc:  # may echo the store's PostgreSQL URL: no password past here
            error = without_passwords(f"could not connect to WhatsApp: {exc}")
        if client is self._client:
            self._client = None
            self._connected = False
            self._emit(ConnectFailed(error))
            await self._stop_client(client)

    async def _stop_client(self, client: Any) -> None:
        try:
            await self._gateway._call(client.stop)
        except Exception as exc:
            log.warning("company %s: stopping the client failed: %s", self._company_id, exc)

    async def send_text(self, to_phone: str, text: str, message_id: str) -> str:
        """Send a text; a message id already delivered answers from the ledger, and one still
        being sent (its caller timed out and retried) waits for that send instead of a second."""
        if not valid_message_id(message_id):
            raise SendFailed(self._company_id, message_id, "invalid message id")
        earlier = self._in_flight.get(message_id)
        if earlier is not None:
            await earlier.wait()
        recorded = await self._recorded(message_id)
        if recorded is not None:
            return recorded
        if earlier is not None:  # that send did not go through: the caller may try again
            raise OutcomeUnknown(f"company {self._company_id}: the earlier send did not finish")
        done = self._in_flight[message_id] = trio.Event()
        try:
            return await self._send_once(to_phone, text, message_id)
        finally:
            del self._in_flight[message_id]
            done.set()

    async def _send_once(self, to_phone: str, text: str, message_id: str) -> str:
        client = self._client
        if client is None or not self._connected:
            raise SessionNotConnected(self._company_id, self._state.value)
        try:
            phone = normalise_phone(to_phone, region=None)
        except InvalidPhone as exc:
            raise SendFailed(self._company_id, message_id, str(exc)) from None
        self._sending[(phone, text)] += 1
        try:
            response = await self._gateway._call(client.send_message, phone, text)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if type(exc).__name__ == "SendMessageError" and "deadline" not in str(exc):
                raise SendFailed(self._company_id, message_id, reason) from None
            raise OutcomeUnknown(f"company {self._company_id}: {reason}") from None
        finally:
            self._sending[(phone, text)] -= 1
            if self._sending[(phone, text)] <= 0:
                del self._sending[(phone, text)]
        wa_id = str(response.ID) or message_id
        await self._record(message_id, wa_id)
        return wa_id

    def _sent_by_us(self, event: StaffMessage) -> bool:
        """Whether a message from this account is one this company's sessions sent (not the
        staff's): one of its newest sends, or one in flight with this chat and text."""
        return event.message_id in self._own or (event.to_phone, event.text) in self._sending

    def _remember(self, message_id: str | None, wa_id: str) -> None:
        """Keep a send (``message_id`` ``None``: a ledger's, known by its WhatsApp id only)."""
        if message_id is not None:
            self._sent[message_id] = wa_id
        self._own[wa_id] = None
        for kept in (self._sent, self._own):
            while len(kept) > OWN_SENDS_KEPT:
                del kept[next(iter(kept))]

    async def _load_sent(self) -> None:
        """The company's newest sends from the ledger (another process's too, when the salon
        moved here), so their echoes are not taken for the staff's messages."""
        try:
            newest = await self._gateway.ledger.recent(self._company_id, OWN_SENDS_KEPT)
        except StorageError as exc:
            log.warning("company %s: sent-message ledger unreadable: %s", self._company_id, exc)
            return
        for wa_id in reversed(newest):
            self._remember(None, wa_id)

    async def _recorded(self, message_id: str) -> str | None:
        """The WhatsApp id ``message_id`` already went out as, or ``None``: from this session's
        memory, else the ledger. :class:`OutcomeUnknown` when the ledger cannot be read."""
        wa_id = self._sent.get(message_id)
        if wa_id is not None:
            return wa_id
        try:
            return await self._gateway.ledger.sent(self._company_id, message_id)
        except StorageError as exc:
            raise OutcomeUnknown(
                f"company {self._company_id}: cannot tell whether {message_id} went out "
                f"(sent-message ledger: {exc})"
            ) from None

    async def _record(self, message_id: str, wa_id: str) -> None:
        """Write the send to the ledger: shielded, since WhatsApp took it whatever happens to
        the caller now, and tried again while the database is unavailable, for up to
        :data:`RECORD_TIMEOUT`; a write that never succeeds is logged (this session still
        remembers the send, a process that runs the salon next does not)."""
        self._remember(message_id, wa_id)
        failure: StorageError | None = None
        with trio.CancelScope(shield=True), trio.move_on_after(RECORD_TIMEOUT):
            wait = RECORD_RETRY
            while True:
                try:
                    await self._gateway.ledger.record(self._company_id, message_id, wa_id)
                    return
                except (StorageUnavailable, StorageTimeout) as exc:
                    failure = exc
                except StorageError as exc:  # refused (not a passing outage): no retry
                    failure = exc
                    break
                await trio.sleep(wait)
                wait = min(2 * wait, 1.0)
        log.error(
            "company %s: sent %s but could not record it in the ledger: %s",
            self._company_id,
            message_id,
            failure if failure is not None else f"no answer within {RECORD_TIMEOUT:g}s",
        )

    async def pair_phone(self, phone: str) -> str:
        """A pairing code; only after the first QR code and before linking."""
        client = self._client
        if client is None or not self._qr_seen or self._connected:
            raise PairingUnavailable(self._company_id, f"session is {self._state.value}")
        try:
            digits = normalise_phone(phone, region=None)
        except InvalidPhone as exc:
            raise PairingUnavailable(self._company_id, str(exc)) from None
        try:
            return str(await self._gateway._call(client.PairPhone, digits, True))
        except Exception as exc:
            raise PairingUnavailable(self._company_id, f"{type(exc).__name__}: {exc}") from None

    async def logout(self) -> None:
        """Unlink on WhatsApp if connected, stop, and delete the stored credentials."""
        client = self._client
        if client is not None and self._connected:
            try:
                await self._gateway._call(client.logout)
            except Exception as exc:
                log.warning("company %s: logout failed: %s", self._company_id, exc)
        await self.stop()
        if self._gateway.store_url is None:
            self.store_path.unlink(missing_ok=True)
            if isinstance(self._gateway.ledger, FileLedger):
                self._gateway.ledger.forget(self._company_id)
            self._sent, self._own = {}, {}

    async def stop(self) -> None:
        """Stop the client (credentials kept). Idempotent."""
        client, self._client = self._client, None
        self._connected = False
        if self._state is not SessionState.CLOSED:
            self._state = SessionState.IDLE
        self._release()  # a callback blocked on a full buffer must not hold up the stop
        if client is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self._stop_client(client)

    async def aclose(self) -> None:
        """Stop and release the session; ``events`` ends."""
        await self.stop()
        self._gateway._sessions.discard(self)
        self._close_events()


class NeonizeGateway:
    """Makes :class:`NeonizeSession` objects; runs their connect tasks in ``nursery``.

    ``client_factory`` makes each session's client (see the module docstring); the default
    imports neonize. ``ledger`` records sent messages (default: a :class:`FileLedger` beside
    the credentials under ``sessions_path``).
    """

    backend = "neonize"

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        sessions_path: Path,
        store_url: str | None = None,
        client_factory: ClientFactory = new_neonize_client,
        ledger: SentLedger | None = None,
    ) -> None:
        self._nursery = nursery
        self.sessions_path = Path(sessions_path)
        self.store_url = store_url
        self.client_factory = client_factory
        self.ledger: SentLedger = ledger if ledger is not None else FileLedger(self.sessions_path)
        self._sessions: set[NeonizeSession] = set()
        self._closed = False
        self._library_error: NeonizeMissing | None = None
        self._library_checked = False
        self._connect_limiter = trio.CapacityLimiter(100_000)
        self._call_limiter = trio.CapacityLimiter(64)

    def check_library(self) -> None:
        """Raise :class:`NeonizeMissing` (cached) when neonize cannot work here."""
        if not self._library_checked:
            try:
                check_neonize()
            except NeonizeMissing as exc:
                self._library_error = exc
            self._library_checked = True
        if self._library_error is not None:
            raise self._library_error

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args), limiter=self._call_limiter
        )

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await fn()
            except Exception:
                log.exception("neonize background task failed")

        if not self._closed:
            self._nursery.start_soon(guarded)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("the WhatsApp gateway is closed")

    def open_session(self, company_id: int, *, jid: str | None = None) -> NeonizeSession:
        """A new idle session using the company's own store."""
        self._check_open()
        session = NeonizeSession(self, company_id, jid)
        self._sessions.add(session)
        return session

    def ping(self) -> bool:
        """Open, and neonize's library is present."""
        return not self._closed and self.problem() is None

    def problem(self) -> str | None:
        """Why neonize cannot work in this process (naming the fix), or ``None``."""
        try:
            self.check_library()
        except NeonizeMissing as exc:
            return str(exc)
        return None

    def snapshot(self) -> GatewaySnapshot:
        return GatewaySnapshot(
            self.backend, self.ping(), len(self._sessions), problem=self.problem()
        )

    async def aclose(self) -> None:
        """Stop every client (credentials kept), within 15 s. Idempotent."""
        if self._closed:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(15):
            async with trio.open_nursery() as nursery:
                for session in list(self._sessions):
                    nursery.start_soon(session.aclose)
        self._closed = True
