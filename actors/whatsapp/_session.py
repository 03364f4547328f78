"""The interface every WhatsApp backend implements, and the state each session tracks.

A *session* is one company's link to WhatsApp. It is created idle by a *gateway*
(``open_session``), connects on ``start()``, and reports everything that happens as
:mod:`events <._events>` on one ``events`` channel that lives as long as the session object
(across stop/start and lost hosts). The session state is a pure function of the events
(:func:`next_state`), so callers and health views can read ``state`` without asking anyone.
"""

from __future__ import annotations

import logging
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
    queued_events: int
    dropped_events: int
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

    ``_emit`` never blocks (backends call it from event callbacks): when the caller does not
    read ``events`` and the buffer of ``EVENT_BUFFER`` fills, further events are dropped,
    counted in ``snapshot().dropped_events`` and logged.
    """

    def __init__(self, company_id: int) -> None:
        self._company_id = company_id
        self._state = SessionState.IDLE
        self._send, self._recv = trio.open_memory_channel[SessionEvent](EVENT_BUFFER)
        self._dropped = 0

    @property
    def company_id(self) -> int:
        return self._company_id

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def events(self) -> trio.MemoryReceiveChannel[SessionEvent]:
        return self._recv

    def _emit(self, event: SessionEvent) -> None:
        self._state = next_state(self._state, event)
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._dropped += 1
            log.error(
                "company %s: event buffer full, dropped %s", self._company_id, type(event).__name__
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _close_events(self) -> None:
        self._state = SessionState.CLOSED
        self._send.close()

    def snapshot(self) -> SessionSnapshot:
        """This session for health views."""
        stats = self._send.statistics()
        return SessionSnapshot(
            company_id=self._company_id,
            state=self._state.value,
            queued_events=stats.current_buffer_used,
            dropped_events=self._dropped,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} company={self._company_id} state={self._state.value}>"
