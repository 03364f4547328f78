"""A simulated WhatsApp: the server side that simulated sessions connect to, plus the phones.

The world holds, per company: the linked device's credentials (they outlive sessions, so a
new session resumes without a scan), the one live connection, the QR code currently on screen,
issued pairing codes, whether the network is up, a temporary ban, messages waiting for the
session (delivered on connect, like WhatsApp's offline queue), the latest
:data:`DELIVERED_PER_COMPANY` outbound messages delivered, deduplicated by message id over
that window (so "exactly once" is observable), and each client phone's chat as that phone
shows it (:class:`ChatLog`, bounded; the dev chat route reads it). Nothing here grows without
bound, so a long run of the simulated provider (a demo, a soak) keeps flat memory.

Sessions talk to it through :class:`WorldConnection` (in process) or over a socket
(:mod:`._world_server`); tests and the dev UI act as the phone through the controls
(``scan``, ``enter_pairing_code``, ``send_inbound``, ``go_offline``, ``unlink``, ...).
Everything is synchronous and event-driven: no timers live here, so it runs under MockClock.

Backpressure, like WhatsApp's servers: a connection's ``sink`` may answer ``False`` ("no room
now"); the world then holds that event and every later one for the connection, in order, until
the session calls :meth:`WorldConnection.resume`. Messages held for a connection that closes go
back to the front of the company's queue, for the next session: nothing is lost.

Errors: :class:`WorldError` (a control that cannot happen now, e.g. scanning with no live QR).
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .._phones import InvalidPhone, normalise_phone
from ._errors import OutcomeUnknown, PairingUnavailable, SendFailed, SessionNotConnected
from ._events import (
    MESSAGE_KINDS,
    Connected,
    ConnectFailed,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    SessionEvent,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
)
from ._ids import (
    device_jid,
    new_message_id,
    new_pairing_code,
    normalise_pairing_code,
)

#: Takes one event for a session; ``False`` means "no room now: hold it until ``resume()``"
#: (``None`` or ``True``: taken).
Sink = Callable[[SessionEvent], bool | None]

#: Lines kept per client phone in a company's chat log (the oldest are dropped first).
CHAT_LINES_PER_PHONE = 100
#: Client phones a company's chat log keeps (the least recently active are dropped first).
CHAT_PHONES_PER_COMPANY = 1_000
#: Outbound messages a company's delivery record keeps, with their ids (the oldest are
#: dropped first): a re-send of an id older than that would be delivered again. A re-send
#: comes within a few messages of the first try (a crash between send and record), and the
#: sent-message ledger (``whatsapp_sent``) guards real sessions; ~0.5 KB each, the soak's
#: 20 salons kept 10,000 each growing through a 1,000,000-request run.
DELIVERED_PER_COMPANY = 1_000


class WorldError(Exception):
    """A phone-side action that cannot happen in the world's current state."""


@dataclass(frozen=True)
class DeliveredMessage:
    """An outbound message as WhatsApp accepted it (once per ``message_id``)."""

    message_id: str
    to_phone: str
    text: str
    timestamp: float


@dataclass(frozen=True)
class ChatLine:
    """One message as the client's phone shows it: ``in`` (the client sent it) or ``out``
    (delivered to the client), at wall-clock ``at`` (Unix seconds); ``kind`` is ``text`` or a
    media kind of :data:`MESSAGE_KINDS` (``text`` is then the caption)."""

    direction: str
    text: str
    at: float
    kind: str = "text"


class ChatLog:
    """What each client's phone shows of its chat with one company, bounded both ways
    (:data:`CHAT_LINES_PER_PHONE` lines per phone, :data:`CHAT_PHONES_PER_COMPANY` phones)."""

    def __init__(self) -> None:
        self._chats: collections.OrderedDict[str, collections.deque[ChatLine]] = (
            collections.OrderedDict()
        )

    def add(self, phone: str, direction: str, text: str, kind: str = "text") -> None:
        """Append a line to ``phone``'s chat (canonical digits) and mark it most recent."""
        chat = self._chats.get(phone)
        if chat is None:
            chat = self._chats[phone] = collections.deque(maxlen=CHAT_LINES_PER_PHONE)
            while len(self._chats) > CHAT_PHONES_PER_COMPANY:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(phone)
        chat.append(ChatLine(direction, text, time.time(), kind))

    def lines(self, phone: str) -> list[ChatLine]:
        """``phone``'s chat, oldest first (empty for a phone never seen)."""
        return list(self._chats.get(phone, ()))


@dataclass(eq=False)
class WorldConnection:
    """The server's view of one session's connection. Sessions call its methods only."""

    world: SimulatedWorld
    company_id: int
    sink: Sink
    connected: bool = False
    qr: str | None = None
    qr_shown: bool = False
    closed: bool = False
    #: Events the session had no room for yet, in order (see the module docstring).
    backlog: collections.deque[SessionEvent] = field(default_factory=collections.deque)

    def resume(self) -> None:
        """The session has room again: hand over what the world held for it, in order, until
        it says "no room" again. Safe to call at any time."""
        self.world._resume(self)

    def show_qr(self, code: str | None) -> None:
        """The session put ``code`` on screen (``None``: the QR loop ended, nothing is live)."""
        self.world._show_qr(self, code)

    def send(self, to_phone: str, text: str, message_id: str) -> str:
        """Deliver a text; the same ``message_id`` twice is delivered once. Returns the id."""
        return self.world._send(self, to_phone, text, message_id)

    def request_pairing_code(self, phone: str) -> str:
        """Issue a pairing code for ``phone`` (only while this connection shows QR codes)."""
        return self.world._request_pairing_code(self, phone)

    def logout(self) -> None:
        """Unlink this device: credentials dropped, connection closed (no event)."""
        self.world._logout(self)

    def detach(self) -> None:
        """Close this connection (credentials kept). Idempotent."""
        self.world._detach(self)


@dataclass
class _Company:
    jid: str | None = None
    phone: str | None = None
    online: bool = True
    banned: TemporaryBan | None = None
    conn: WorldConnection | None = None
    pairing: dict[str, str] = field(default_factory=dict)
    pending: list[InboundMessage | StaffMessage] = field(default_factory=list)
    delivered: collections.deque[DeliveredMessage] = field(
        default_factory=lambda: collections.deque(maxlen=DELIVERED_PER_COMPANY)
    )
    #: The ids of ``delivered``, oldest first (a dict: insertion-ordered, O(1) lookups).
    delivered_ids: dict[str, None] = field(default_factory=dict)
    chats: ChatLog = field(default_factory=ChatLog)
    send_attempts: int = 0
    lost_replies: int = 0  # the next this many sends go out but their reply never comes back
    reachable: bool = True  # False: sessions cannot reach WhatsApp at all (connects fail)
    # trio time of each connect, the latest ones (a long demo run must not grow it forever)
    attach_times: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=256)
    )


class SimulatedWorld:
    """WhatsApp's servers and every company's phone, in memory. See the module docstring."""

    def __init__(self) -> None:
        self._companies: dict[int, _Company] = {}
        self._devices = itertools.count(2)
        self._changed = trio.Event()

    def _company(self, company_id: int) -> _Company:
        company = self._companies.get(company_id)
        if company is None:
            company = self._companies[company_id] = _Company()
        return company

    def _touch(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ---- the server side: what sessions do -------------------------------------------------

    def attach(self, company_id: int, sink: Sink) -> WorldConnection:
        """A session connects. Linked companies resume (``Connected`` when online); others get
        a connection that waits for QR codes. An existing connection is replaced."""
        company = self._company(company_id)
        company.attach_times.append(trio.current_time())
        if company.conn is not None:
            old = company.conn
            self._close(old)
            self._push(old, StreamReplaced())
        conn = WorldConnection(self, company_id, sink)
        company.conn = conn
        if not company.reachable:
            self._close(conn)
            self._push(conn, ConnectFailed("could not connect to WhatsApp: no route (simulated)"))
        elif company.jid is not None:
            if company.banned is not None:
                self._close(conn)
                self._push(conn, company.banned)
            elif company.online:
                self._connect(company, conn)
        self._touch()
        return conn

    def _push(self, conn: WorldConnection, event: SessionEvent) -> None:
        """Hand ``event`` to the connection's session, or hold it (behind anything held)."""
        if conn.backlog or conn.sink(event) is False:
            conn.backlog.append(event)

    def _resume(self, conn: WorldConnection) -> None:
        while conn.backlog:
            if conn.sink(conn.backlog[0]) is False:
                return
            conn.backlog.popleft()

    def needs_qr(self, conn: WorldConnection) -> bool:
        """Whether this connection must link first (its company has no credentials)."""
        return not conn.closed and self._company(conn.company_id).jid is None

    def _connect(self, company: _Company, conn: WorldConnection) -> None:
        conn.connected = True
        self._push(conn, Connected())
        pending, company.pending = company.pending, []
        for message in pending:
            self._push(conn, message)

    def _close(self, conn: WorldConnection) -> None:
        conn.closed = True
        conn.connected = False
        conn.qr = None
        company = self._company(conn.company_id)
        # Messages the session never took go back to the front of the queue, in order; the
        # connection's other events (its own fate) stay for the session to read.
        held = [e for e in conn.backlog if isinstance(e, InboundMessage | StaffMessage)]
        if held:
            company.pending[:0] = held
            conn.backlog = collections.deque(
                e for e in conn.backlog if not isinstance(e, InboundMessage | StaffMessage)
            )
        if company.conn is conn:
            company.conn = None
            company.pairing.clear()

    def _live(self, conn: WorldConnection) -> _Company:
        company = self._company(conn.company_id)
        if conn.closed or company.conn is not conn:
            raise SessionNotConnected(conn.company_id, "connection closed")
        return company

    def _show_qr(self, conn: WorldConnection, code: str | None) -> None:
        company = self._live(conn)
        conn.qr = code
        if code is None:
            company.pairing.clear()
        else:
            conn.qr_shown = True
        self._touch()

    def _send(self, conn: WorldConnection, to_phone: str, text: str, message_id: str) -> str:
        company = self._live(conn)
        if not conn.connected:
            raise SessionNotConnected(conn.company_id, "not connected")
        try:
            phone = normalise_phone(to_phone, region=None)
        except InvalidPhone as exc:
            raise SendFailed(conn.company_id, message_id, str(exc)) from None
        company.send_attempts += 1
        if message_id not in company.delivered_ids:
            company.delivered_ids[message_id] = None
            if len(company.delivered_ids) > DELIVERED_PER_COMPANY:
                del company.delivered_ids[next(iter(company.delivered_ids))]
            company.delivered.append(DeliveredMessage(message_id, phone, text, time.time()))
            company.chats.add(phone, "out", text)
            self._touch()
        if company.lost_replies > 0:
            company.lost_replies -= 1
            raise OutcomeUnknown(f"no reply to the send of {message_id} (it did go out)")
        return message_id

    def _request_pairing_code(self, conn: WorldConnection, phone: str) -> str:
        company = self._live(conn)
        if company.jid is not None or conn.qr is None:
            raise PairingUnavailable(conn.company_id, "the session is not showing QR codes")
        try:
            digits = normalise_phone(phone, region=None)
        except InvalidPhone as exc:
            raise PairingUnavailable(conn.company_id, str(exc)) from None
        code = new_pairing_code()
        company.pairing[normalise_pairing_code(code)] = digits
        self._touch()
        return code

    def _logout(self, conn: WorldConnection) -> None:
        company = self._company(conn.company_id)
        if company.conn is conn or company.conn is None:
            company.jid = company.phone = None
        self._close(conn)
        self._touch()

    def _detach(self, conn: WorldConnection) -> None:
        if not conn.closed:
            self._close(conn)
            self._touch()

    def forget(self, company_id: int) -> None:
        """Drop a company's credentials (logout without a live connection)."""
        company = self._company(company_id)
        company.jid = company.phone = None
        if company.conn is not None:
            self._close(company.conn)
        self._touch()

    # ---- the phone side: controls for tests, demos and the dev UI --------------------------

    def live_qr(self, company_id: int) -> str | None:
        """The QR code on the company's screen now, if any."""
        conn = self._company(company_id).conn
        return conn.qr if conn is not None else None

    def scan(self, company_id: int, phone: str = "79001234567", code: str | None = None) -> str:
        """The phone scans the live QR (``code`` must match it if given). Returns the JID."""
        conn = self._company(company_id).conn
        if conn is None or conn.qr is None:
            raise WorldError(f"company {company_id} shows no live QR code")
        if code is not None and code != conn.qr:
            raise WorldError(f"company {company_id}: that QR code is not the live one")
        return self._link(company_id, normalise_phone(phone, region=None))

    def enter_pairing_code(self, company_id: int, code: str) -> str:
        """The phone types a pairing code issued for it. Returns the JID."""
        company = self._company(company_id)
        phone = company.pairing.get(normalise_pairing_code(code))
        if company.conn is None or phone is None:
            raise WorldError(f"company {company_id}: pairing code not valid now")
        return self._link(company_id, phone)

    def _link(self, company_id: int, phone: str) -> str:
        company = self._company(company_id)
        conn = company.conn
        assert conn is not None
        company.jid = device_jid(phone, next(self._devices))
        company.phone = phone
        company.pairing.clear()
        conn.qr = None
        self._push(conn, Linked(company.jid, phone))
        if company.online and company.banned is None:
            self._connect(company, conn)
        self._touch()
        return company.jid

    def send_inbound(
        self,
        company_id: int,
        from_phone: str,
        text: str,
        *,
        message_id: str | None = None,
        kind: str = "text",
    ) -> str:
        """A client writes to the company (``kind``: ``text`` or a media kind of
        :data:`MESSAGE_KINDS`, ``text`` its caption); queued until the session is connected."""
        company = self._company(company_id)
        if company.jid is None:
            raise WorldError(f"company {company_id} has no linked WhatsApp")
        if kind not in MESSAGE_KINDS:
            raise WorldError(f"not a message kind: {kind!r}")
        message = InboundMessage(
            message_id or new_message_id(),
            normalise_phone(from_phone, region=None),
            text,
            float(time.time()),
            kind,
        )
        company.chats.add(message.sender_phone, "in", text, kind)
        self._deliver_to_session(company, message)
        return message.message_id

    def staff_send(self, company_id: int, to_phone: str, text: str) -> str:
        """The salon's staff write to a client from the linked phone itself (not through our
        session): the session sees a :class:`StaffMessage`. Returns its message id."""
        company = self._company(company_id)
        if company.jid is None:
            raise WorldError(f"company {company_id} has no linked WhatsApp")
        message = StaffMessage(
            new_message_id(), normalise_phone(to_phone, region=None), text, float(time.time())
        )
        company.chats.add(message.to_phone, "out", text)
        self._deliver_to_session(company, message)
        return message.message_id

    def _deliver_to_session(
        self, company: _Company, message: InboundMessage | StaffMessage
    ) -> None:
        """Hand a message to the connected session, or keep it until one connects."""
        conn = company.conn
        if conn is not None and conn.connected:
            self._push(conn, message)
        else:
            company.pending.append(message)
        self._touch()

    def go_offline(self, company_id: int) -> None:
        """The network drops: a connected session sees ``Disconnected``; sends fail."""
        company = self._company(company_id)
        company.online = False
        conn = company.conn
        if conn is not None and conn.connected:
            conn.connected = False
            self._push(conn, Disconnected("connection lost"))
        self._touch()

    def go_online(self, company_id: int) -> None:
        """The network is back: a waiting linked session reconnects (``Connected``)."""
        company = self._company(company_id)
        company.online = True
        conn = company.conn
        if (
            conn is not None
            and not conn.connected
            and company.jid is not None
            and company.banned is None
        ):
            self._connect(company, conn)
        self._touch()

    def repeat_link_notice(self, company_id: int) -> None:
        """WhatsApp tells the connected session again that this device is linked (the same
        ``Linked`` event a second time, as a retried pairing notice would)."""
        company = self._company(company_id)
        conn = company.conn
        if conn is None or company.jid is None or company.phone is None:
            raise WorldError(f"company {company_id} has no linked, attached session")
        self._push(conn, Linked(company.jid, company.phone))
        self._touch()

    def go_unreachable(self, company_id: int) -> None:
        """WhatsApp cannot be reached at all: the session fails (``ConnectFailed``) and every
        new connect fails the same way until :meth:`go_reachable` (the reconnect backoff's
        case; a plain network blip is :meth:`go_offline`)."""
        company = self._company(company_id)
        company.reachable = False
        conn = company.conn
        if conn is not None and not conn.closed:
            self._close(conn)
            self._push(conn, ConnectFailed("connection to WhatsApp lost and not re-established"))
        self._touch()

    def go_reachable(self, company_id: int) -> None:
        """WhatsApp can be reached again (the next connect succeeds)."""
        self._company(company_id).reachable = True
        self._touch()

    def connect_attempts(self, company_id: int) -> list[float]:
        """The trio time of the company's sessions' connects (the last 256), in order."""
        return list(self._company(company_id).attach_times)

    def unlink(self, company_id: int) -> None:
        """The device is removed on the phone: ``LoggedOut``, credentials gone."""
        company = self._company(company_id)
        company.jid = company.phone = None
        conn = company.conn
        if conn is not None:
            self._close(conn)
            self._push(conn, LoggedOut("device_removed"))
        self._touch()

    def replace_stream(self, company_id: int) -> None:
        """The device connects somewhere else: the session gets ``StreamReplaced``."""
        conn = self._company(company_id).conn
        if conn is not None:
            self._close(conn)
            self._push(conn, StreamReplaced())
        self._touch()

    def lose_send_replies(self, company_id: int, count: int = 1) -> None:
        """The next ``count`` sends are delivered but their replies are lost: the sender sees
        ``OutcomeUnknown`` while the connection stays up (a timed-out command)."""
        self._company(company_id).lost_replies += count
        self._touch()

    def ban(
        self, company_id: int, code: str = "SEND_TO_TOO_MANY_PEOPLE", expires_in: float = 86400.0
    ) -> None:
        """A temporary ban: the session gets ``TemporaryBan`` and is closed until lifted."""
        company = self._company(company_id)
        company.banned = TemporaryBan(code, expires_in)
        conn = company.conn
        if conn is not None:
            self._close(conn)
            self._push(conn, company.banned)
        self._touch()

    def lift_ban(self, company_id: int) -> None:
        """The ban ends; the next ``start()`` connects."""
        self._company(company_id).banned = None
        self._touch()

    def keepalive_timeout(self, company_id: int) -> None:
        """Keep-alive pings start failing (``KeepAliveTimeout``)."""
        conn = self._company(company_id).conn
        if conn is not None and conn.connected:
            self._push(conn, KeepAliveTimeout())

    def keepalive_restored(self, company_id: int) -> None:
        """Keep-alive pings succeed again (``KeepAliveRestored``)."""
        conn = self._company(company_id).conn
        if conn is not None and conn.connected:
            self._push(conn, KeepAliveRestored())

    # ---- observation -----------------------------------------------------------------------

    def linked_jid(self, company_id: int) -> str | None:
        """The company's linked device JID, or ``None`` when not linked."""
        return self._company(company_id).jid

    def is_connected(self, company_id: int) -> bool:
        """Whether a session of the company is connected now."""
        conn = self._company(company_id).conn
        return conn is not None and conn.connected

    def delivered(self, company_id: int) -> list[DeliveredMessage]:
        """Outbound messages delivered for the company, in order, once per message id (the
        latest :data:`DELIVERED_PER_COMPANY`)."""
        return list(self._company(company_id).delivered)

    def chat(self, company_id: int, phone: str) -> list[ChatLine]:
        """What the client ``phone`` (canonical digits) sees of its chat with the company,
        oldest first: what it sent and what was delivered to it (each message once)."""
        return self._company(company_id).chats.lines(phone)

    def send_attempts(self, company_id: int) -> int:
        """How many sends reached the world, duplicates included."""
        return self._company(company_id).send_attempts

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (checked after every change in the world)."""
        while not predicate():
            await self._changed.wait()
