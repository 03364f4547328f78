"""The simulated backend: sessions that connect to a :class:`SimulatedWorld`.

A session reaches the world either directly (same process: :class:`_LocalLink`, no task and
no socket, so ten thousand idle sessions cost only their objects) or over the world's Unix
socket (:class:`_RemoteLink`, used inside session hosts). Like whatsmeow, a session that is
not linked shows QR codes: the first at once, then a new one every ``rotate_every`` seconds,
at most ``max_codes``, after which nothing is live and nothing is said; the caller keeps its
own deadline and calls ``stop()``/``start()``. The only task a session owns is that QR loop,
and only while linking (and, while its reader lags, the task that drains its overflow). Every
timer runs on trio's clock.

Backpressure: in process, a session that already holds an event in its overflow answers the
world's sink with "no room" and the world keeps the rest until the drain task makes room
(``resume``). Over the socket, the world sends at most :data:`WIRE_WINDOW` events the session
has not taken into its buffer; the session grants credits as it does.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from config import QrPolicy

from ._errors import (
    BackendUnavailable,
    OutcomeUnknown,
    PairingUnavailable,
    SendFailed,
    SessionNotConnected,
    WhatsAppError,
)
from ._events import (
    ConnectFailed,
    Linked,
    LoggedOut,
    QrCode,
    SessionEvent,
    SessionLost,
    StreamReplaced,
    TemporaryBan,
    event_from_dict,
)
from ._ids import fake_qr_code, valid_message_id
from ._rpc import FrameStream, PeerLost, RpcPeer
from ._session import (
    WIRE_CREDIT_BATCH,
    GatewaySnapshot,
    SessionBase,
    SessionState,
)
from ._world import SimulatedWorld, WorldConnection

log = logging.getLogger(__name__)

#: Takes one event from the world; ``False``: no room now (the world holds it, see ``room``).
Sink = Callable[[SessionEvent], bool]
_TERMINAL = (LoggedOut, StreamReplaced, TemporaryBan, ConnectFailed, SessionLost)


class _Link(Protocol):
    """One session's connection to the world (see :class:`WorldConnection`).

    ``holds_backlog``: the world keeps what the sink refuses (in process); otherwise the
    sender's credit window bounds what is in flight. ``room()``: one event from this link
    entered the session's buffer (resume the world, or grant a credit).
    """

    holds_backlog: bool

    def room(self) -> None: ...
    async def attach(self, company_id: int, sink: Sink) -> bool: ...
    async def show_qr(self, code: str | None) -> None: ...
    async def send(self, to_phone: str, text: str, message_id: str) -> str: ...
    async def request_pairing_code(self, phone: str) -> str: ...
    async def logout(self) -> None: ...
    async def detach(self) -> None: ...
    async def forget(self, company_id: int) -> None: ...


class _LocalLink:
    """Talks to a world object in this process: plain method calls."""

    holds_backlog = True

    def __init__(self, world: SimulatedWorld) -> None:
        self._world = world
        self._conn: WorldConnection | None = None

    def room(self) -> None:
        if self._conn is not None:
            self._conn.resume()

    def _live(self) -> WorldConnection:
        if self._conn is None:
            raise SessionNotConnected(0, "not attached")
        return self._conn

    async def attach(self, company_id: int, sink: Sink) -> bool:
        self._conn = self._world.attach(company_id, sink)
        return self._world.needs_qr(self._conn)

    async def show_qr(self, code: str | None) -> None:
        self._live().show_qr(code)

    async def send(self, to_phone: str, text: str, message_id: str) -> str:
        return self._live().send(to_phone, text, message_id)

    async def request_pairing_code(self, phone: str) -> str:
        return self._live().request_pairing_code(phone)

    async def logout(self) -> None:
        self._live().logout()

    async def detach(self) -> None:
        if self._conn is not None:
            self._conn.detach()

    async def forget(self, company_id: int) -> None:
        self._world.forget(company_id)


class _RemoteLink:
    """Talks to the world over its Unix socket; one socket per running session."""

    holds_backlog = False

    def __init__(self, path: str, spawn: Callable[[Callable[[], Awaitable[None]]], None]) -> None:
        self._path = path
        self._spawn = spawn
        self._peer: RpcPeer | None = None
        self._closing = False
        self._credit = 0  # events taken into the buffer, not yet granted back to the world

    def room(self) -> None:
        self._credit += 1
        if self._credit >= WIRE_CREDIT_BATCH and self._peer is not None:
            self._peer.notify_nowait({"credit": self._credit})
            self._credit = 0

    async def _open(self, on_note: Callable[[dict[str, Any]], None] | None = None) -> RpcPeer:
        try:
            stream = await trio.open_unix_socket(self._path)
        except OSError as exc:
            raise BackendUnavailable(f"simulated WhatsApp world unreachable: {exc}") from None
        return RpcPeer(FrameStream(stream, stream), on_note=on_note, name="world")

    async def _call(self, op: str, **args: Any) -> Any:
        if self._peer is None:
            raise SessionNotConnected(0, "not attached")
        try:
            return await self._peer.call(op, args, timeout=30)
        except (PeerLost, trio.TooSlowError):
            raise OutcomeUnknown(f"lost the simulated world during {op!r}") from None

    async def attach(self, company_id: int, sink: Sink) -> bool:
        def on_note(note: dict[str, Any]) -> None:
            sink(event_from_dict(note["event"]))

        peer = self._peer = await self._open(on_note)

        async def run() -> None:
            await peer.run()
            if not self._closing:
                sink(ConnectFailed("lost the connection to the simulated WhatsApp world"))

        self._spawn(run)
        result = await self._call("attach", company_id=company_id)
        return bool(result["needs_qr"])

    async def show_qr(self, code: str | None) -> None:
        await self._call("show_qr", code=code)

    async def send(self, to_phone: str, text: str, message_id: str) -> str:
        return str(await self._call("send", to_phone=to_phone, text=text, message_id=message_id))

    async def request_pairing_code(self, phone: str) -> str:
        return str(await self._call("pair", phone=phone))

    async def logout(self) -> None:
        try:
            await self._call("logout")
        finally:
            await self.detach()

    async def detach(self) -> None:
        self._closing = True
        peer, self._peer = self._peer, None
        if peer is not None:
            with trio.move_on_after(5):
                with contextlib.suppress(PeerLost, trio.TooSlowError, WhatsAppError):
                    await peer.call("detach", {}, timeout=5)
            await peer.aclose()

    async def forget(self, company_id: int) -> None:
        peer = await self._open()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.run)
            try:
                await peer.call("forget", {"company_id": company_id}, timeout=30)
            except (PeerLost, trio.TooSlowError):
                raise OutcomeUnknown("lost the simulated world during 'forget'") from None
            finally:
                await peer.aclose()


class SimulatedSession(SessionBase):
    """A session of the simulated backend (see the module docstring)."""

    def __init__(self, gateway: SimulatedGateway, company_id: int) -> None:
        super().__init__(company_id, gateway._spawn)
        self._gateway = gateway
        self._link: _Link | None = None
        self._rotation: trio.CancelScope | None = None

    async def start(self) -> None:
        """Connect; QR codes follow if the company is not linked. No-op while running."""
        if self._state is SessionState.CLOSED:
            raise BackendUnavailable("this session is closed")
        self._gateway._check_open()
        if self._link is not None:
            return
        link = self._gateway._make_link()
        self._link = link
        self._state = SessionState.CONNECTING
        try:
            needs_qr = await link.attach(self._company_id, functools.partial(self._on_event, link))
        except BaseException:
            if self._link is link:
                self._link = None
                self._state = SessionState.IDLE
            await link.detach()
            raise
        if needs_qr and self._link is link:
            self._start_rotation(link)

    def _on_event(self, link: _Link, event: SessionEvent) -> bool:
        if link is not self._link:
            return True  # a late event of a connection this session already left
        if link.holds_backlog and self.held:
            return False  # no room: the world keeps it until ``_taken`` resumes it
        if isinstance(event, Linked):
            self._stop_rotation()
        if isinstance(event, _TERMINAL):
            self._stop_rotation()
            self._link = None
            self._gateway._spawn(link.detach)
        if self._emit(event) and not link.holds_backlog:
            link.room()
        return True

    def _taken(self) -> None:
        link = self._link
        if link is not None:
            link.room()

    def _start_rotation(self, link: _Link) -> None:
        scope = self._rotation = trio.CancelScope()
        self._gateway._spawn(functools.partial(self._rotate_qr, link, scope))

    def _stop_rotation(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
            self._rotation = None

    async def _rotate_qr(self, link: _Link, scope: trio.CancelScope) -> None:
        policy = self._gateway.qr
        with scope:
            try:
                first = self._gateway.first_code_lifetime
                for index in range(policy.max_codes):
                    code = fake_qr_code()
                    lifetime = first if index == 0 and first is not None else policy.rotate_every
                    await link.show_qr(code)
                    if self._link is not link:
                        return
                    self._emit(QrCode(code, lifetime))
                    await trio.sleep(lifetime)
                await link.show_qr(None)  # like whatsmeow: the loop ends without a word
            except WhatsAppError as exc:
                log.debug("company %s: QR loop ended: %s", self._company_id, exc)

    async def send_text(self, to_phone: str, text: str, message_id: str) -> str:
        """Send a text; see :class:`WhatsAppSession`. The world dedupes by ``message_id``."""
        if not valid_message_id(message_id):
            raise SendFailed(self._company_id, message_id, "invalid message id")
        link = self._link
        if link is None or self._state is not SessionState.CONNECTED:
            raise SessionNotConnected(self._company_id, self._state.value)
        try:
            return await link.send(to_phone, text, message_id)
        except SessionNotConnected as exc:
            raise SessionNotConnected(self._company_id, exc.state) from None

    async def pair_phone(self, phone: str) -> str:
        """A pairing code for ``phone``; only while QR codes are showing."""
        link = self._link
        if link is None or self._state is not SessionState.LINKING:
            raise PairingUnavailable(self._company_id, f"session is {self._state.value}")
        try:
            return await link.request_pairing_code(phone)
        except PairingUnavailable as exc:
            raise PairingUnavailable(self._company_id, exc.reason) from None
        except SessionNotConnected:
            raise PairingUnavailable(self._company_id, "connection closed") from None

    async def logout(self) -> None:
        """Unlink the device and drop its credentials in the world (no event follows)."""
        self._gateway._check_open()
        self._stop_rotation()
        link, self._link = self._link, None
        if self._state is not SessionState.CLOSED:
            self._state = SessionState.IDLE
        if link is not None:
            try:
                await link.logout()
                return
            except SessionNotConnected:
                pass
        await self._gateway._make_link().forget(self._company_id)

    async def stop(self) -> None:
        """Close the connection, keep the credentials. Idempotent."""
        self._stop_rotation()
        link, self._link = self._link, None
        if self._state is not SessionState.CLOSED:
            self._state = SessionState.IDLE
        if link is not None:
            with trio.CancelScope(shield=True):
                await link.detach()

    async def aclose(self) -> None:
        """Stop and release the session; its ``events`` channel ends."""
        await self.stop()
        self._gateway._forget(self)
        self._close_events()


class SimulatedGateway:
    """Makes :class:`SimulatedSession` objects bound to one world (object or socket path).

    Runs the QR loops (and remote links' readers) in the nursery given at construction.
    """

    backend = "simulated"

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        world: SimulatedWorld | None = None,
        world_path: str | None = None,
        qr: QrPolicy | None = None,
        first_code_lifetime: float | None = None,
    ) -> None:
        """``first_code_lifetime``: how long the first code of a round is shown, like
        whatsmeow's ~60 s; by default every code lasts ``qr.rotate_every``."""
        if (world is None) == (world_path is None):
            raise ValueError("give exactly one of world= or world_path=")
        self._nursery = nursery
        self.world = world
        self._world_path = world_path
        self.qr = qr or QrPolicy()
        self.first_code_lifetime = first_code_lifetime
        self._sessions: set[SimulatedSession] = set()
        self._closed = False

    def _make_link(self) -> _Link:
        if self.world is not None:
            return _LocalLink(self.world)
        assert self._world_path is not None
        return _RemoteLink(self._world_path, self._spawn)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("the WhatsApp gateway is closed")

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await fn()
            except Exception:
                log.exception("simulated WhatsApp background task failed")

        if not self._closed:
            self._nursery.start_soon(guarded)

    def _forget(self, session: SimulatedSession) -> None:
        self._sessions.discard(session)

    def open_session(self, company_id: int, *, jid: str | None = None) -> SimulatedSession:
        """A new idle session for ``company_id`` (``jid`` is not needed: the world knows)."""
        self._check_open()
        session = SimulatedSession(self, company_id)
        self._sessions.add(session)
        return session

    def ping(self) -> bool:
        """Whether the gateway can serve."""
        return not self._closed

    def snapshot(self) -> GatewaySnapshot:
        """Backend, health and session count."""
        return GatewaySnapshot(self.backend, self.ping(), len(self._sessions))

    async def aclose(self) -> None:
        """Stop every session (credentials kept), within 10 s. Idempotent."""
        if self._closed:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            for session in list(self._sessions):
                await session.aclose()
        self._closed = True
