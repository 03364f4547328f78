"""The interface every WhatsApp backend implements, and the state each session tracks.

A *session* is one company's link to WhatsApp. It is created idle by a *gateway*
(``open_session``), connects on ``start()``, and reports everything that happens as
:mod:`events <._events>` on one ``events`` channel that lives as long as the session object
(across stop/start and lost hosts). The session state is a pure function of the events
(:func:`next_state`), so callers and health views can read ``state`` without asking anyone.

Backpressure: no event is ever dropped. ``events`` holds :data:`EVENT_BUFFER` events; when the
reader falls behind, what a backend hands over waits in the session's *overflow* (in order)
and is put into the buffer as room appears. A backend whose producer can wait is told so:
the simulated world keeps its backlog until the session takes more (``_taken``), the session
hosts' pipes and the world's socket grant credits (:data:`WIRE_WINDOW` events in flight), and
a neonize callback blocks its Go thread (``_put``), so WhatsApp holds the rest.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import trio

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
    SessionLost,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
)

log = logging.getLogger(__name__)

EVENT_BUFFER = 1024
#: Events a sender may have on a wire (session-host pipe, world socket) that the receiving
#: session has not put into its buffer yet; the receiver grants credits in batches of
#: :data:`WIRE_CREDIT_BATCH` (at most the window, so a full window is always answered).
WIRE_WINDOW = 256
WIRE_CREDIT_BATCH = 64

Spawn = Callable[[Callable[[], Awaitable[None]]], None]


class SessionState(StrEnum):
    """Where a session is. ``IDLE`` means nothing runs: call ``start()``."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LINKING = "linking"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


_STOPPING = (LoggedOut, StreamReplaced, TemporaryBan, ConnectFailed, SessionLost)


def next_state(state: SessionState, event: SessionEvent) -> SessionState:
    """The state after ``event``: the session's only transition function (pure)."""
    if state is SessionState.CLOSED:
        return state
    if isinstance(event, QrCode | PairingFailed):
        return SessionState.LINKING
    if isinstance(event, Linked):
        return SessionState.CONNECTING
    if isinstance(event, Connected):
        return SessionState.CONNECTED
    if isinstance(event, Disconnected):
        return SessionState.DISCONNECTED
    if isinstance(event, _STOPPING):
        return SessionState.IDLE
    if isinstance(event, KeepAliveTimeout | KeepAliveRestored | InboundMessage | StaffMessage):
        return state
    return state


@dataclass(frozen=True)
class SessionSnapshot:
    """One session for health views (no secrets: no QR codes, no message text)."""

    company_id: int
    state: str
    #: Events waiting for the reader: in the buffer plus those held in the overflow.
    queued_events: int
    host_pid: int | None = None


@dataclass(frozen=True)
class HostSnapshot:
    """One session host process."""

    index: int
    pid: int | None
    state: str
    sessions: int
    capacity: int
    restarts: int
    last_exit: str | None


@dataclass(frozen=True)
class GatewaySnapshot:
    """A gateway for the health tree: backend, open sessions, and hosts (if any)."""

    backend: str
    healthy: bool
    sessions: int
    hosts: tuple[HostSnapshot, ...] = ()
    #: Why the backend cannot work here at all (e.g. neonize's library is missing), with the fix.
    problem: str | None = None


@runtime_checkable
class WhatsAppSession(Protocol):
    """One company's WhatsApp link. Methods are safe to call in any state; errors are named.

    * ``start()`` begins connecting and returns without waiting for the outcome: ``QrCode``
      events follow when the company is not linked, ``Connected`` when stored credentials
      resume. Calling it while running does nothing. Failures arrive as ``ConnectFailed``.
    * ``send_text(to_phone, text, message_id)`` sends one text and returns WhatsApp's id for
      it. ``message_id`` is the caller's id (see ``new_message_id``): reuse it when retrying
      after ``OutcomeUnknown`` so the message is delivered at most once. Raises
      ``SessionNotConnected`` (not attempted), ``SendFailed`` (refused) or ``OutcomeUnknown``.
    * ``pair_phone(phone)`` returns an 8-character code ``ABCD-EFGH`` to type on the phone;
      only while linking (after the first ``QrCode``), else ``PairingUnavailable``.
    * ``logout()`` unlinks the device and drops the stored credentials; ``stop()`` ends the
      connection and keeps them. ``aclose()`` stops and releases the session for good.
    """

    @property
    def company_id(self) -> int: ...

    @property
    def state(self) -> SessionState: ...

    @property
    def events(self) -> trio.MemoryReceiveChannel[SessionEvent]: ...

    async def start(self) -> None: ...

    async def send_text(self, to_phone: str, text: str, message_id: str) -> str: ...

    async def pair_phone(self, phone: str) -> str: ...

    async def logout(self) -> None: ...

    async def stop(self) -> None: ...

    async def aclose(self) -> None: ...

    def snapshot(self) -> SessionSnapshot: ...


@runtime_checkable
class WhatsAppGateway(Protocol):
    """Makes sessions for one backend and owns what they share (threads, hosts, the world).

    ``open_session`` is cheap and synchronous: nothing connects before ``start()``.
    ``aclose()`` stops every session (credentials kept) within a deadline; idempotent.
    """

    @property
    def backend(self) -> str: ...

    def open_session(self, company_id: int, *, jid: str | None = None) -> WhatsAppSession: ...

    def ping(self) -> bool: ...

    def snapshot(self) -> GatewaySnapshot: ...

    async def aclose(self) -> None: ...


class SessionBase:
    """What every backend's session shares: the event channel and the state it implies.

    Events go in through :meth:`_emit` (never blocks, never drops: a full buffer sends the
    event to the overflow, which a drain task empties in order with blocking sends) or
    :meth:`_put` (waits until the event is in the buffer: for producers that can wait).
    ``spawn`` starts the drain task in the backend's nursery; after each event it moves, the
    drain task calls :meth:`_taken`, the backend's cue that there is room for more.
    """

    def __init__(self, company_id: int, spawn: Spawn) -> None:
        self._company_id = company_id
        self._state = SessionState.IDLE
        self._send, self._recv = trio.open_memory_channel[SessionEvent](EVENT_BUFFER)
        self._spawn_task = spawn
        self._overflow: collections.deque[SessionEvent] = collections.deque()
        self._draining = False
        self._moved = 0  # events the drain task has put into the buffer (or given up on)
        self._queued = 0  # events that ever went to the overflow
        self._released = 0  # ``_put`` calls for events up to this count wait no longer
        self._progress = trio.Event()

    @property
    def company_id(self) -> int:
        return self._company_id

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def events(self) -> trio.MemoryReceiveChannel[SessionEvent]:
        return self._recv

    @property
    def held(self) -> int:
        """Events waiting in the overflow for room in the buffer."""
        return len(self._overflow)

    def _emit(self, event: SessionEvent) -> bool:
        """Hand ``event`` over in order without blocking; ``True`` when it is in the buffer
        now, ``False`` when it waits in the overflow (it is never dropped while the session
        is open; after ``aclose`` nobody reads, and events are discarded)."""
        self._state = next_state(self._state, event)
        if not self._overflow:
            try:
                self._send.send_nowait(event)
                return True
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True
        self._overflow.append(event)
        self._queued += 1
        if not self._draining:
            self._draining = True
            self._spawn_task(self._drain)
        return False

    async def _put(self, event: SessionEvent) -> None:
        """Hand ``event`` over in order and wait until it is in the buffer (or the session is
        closed, or :meth:`_release` gives up waiting): backpressure for a producer that can
        wait, such as a neonize callback blocking its Go thread."""
        if self._emit(event):
            await trio.lowlevel.checkpoint()
            return
        ticket = self._queued
        while self._moved < ticket and self._released < ticket:
            await self._progress.wait()

    def _release(self) -> None:
        """Let every :meth:`_put` waiting now return (their events stay in the overflow, in
        order): a session that stops must not wait for a reader that may be gone."""
        self._released = self._queued
        self._wake()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def _drain(self) -> None:
        """Move the overflow into the buffer, in order, waiting for room."""
        try:
            while self._overflow:
                try:
                    await self._send.send(self._overflow[0])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._moved += len(self._overflow)
                    self._overflow.clear()
                    break
                self._overflow.popleft()
                self._moved += 1
                self._wake()
                self._taken()
        finally:
            self._draining = False
            self._wake()

    def _taken(self) -> None:
        """Called after the drain task put an event into the buffer: room for more."""

    def _close_events(self) -> None:
        self._state = SessionState.CLOSED
        self._send.close()
        self._release()

    def snapshot(self) -> SessionSnapshot:
        """This session for health views."""
        stats = self._send.statistics()
        return SessionSnapshot(
            company_id=self._company_id,
            state=self._state.value,
            queued_events=stats.current_buffer_used + len(self._overflow),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} company={self._company_id} state={self._state.value}>"
