"""Logging out of the salon page ends its session everywhere: every copy of the cookie, and
the session's live sockets, in every process.

The cookie is stateless (:mod:`web._salon_session`), so clearing it in the browser does not
stop a copy of it. :func:`end_session` therefore

1. records the session id as revoked in :class:`storage.SalonSessions` (Redis, shared by the
   cluster) for as long as a copy could still pass the cookie's own checks
   (:func:`revocation_ttl`: up to its absolute expiry, plus the clock skew nodes may have),
   so every later cookie check refuses it with 401 ``salon_session_expired``;
2. closes the session's salon sockets in this process at once: each cookie socket holds a
   :class:`~web._revocation.LiveSocket` registered in the app's :class:`SessionSockets` by its
   session id (:func:`session_sockets`);
3. in cluster mode, publishes on the company's ``company:{id}:events`` channel a
   :class:`~actors.ViewerEvent` addressed (``to``) to ``salon-session:{id}`` (:func:`logout_event`):
   every other process's cookie socket of that session follows the channel and closes on it
   (:func:`is_logout_of`). No viewer id has that form, so every other reader of the channel (the
   connect page's sockets, other sessions' sockets, older processes) skips it as not theirs.

Only the session that logs out ends; the salon's other sessions (other browsers) go on.
Errors: a storage failure raises :class:`storage.StorageError` (the route answers 503; the
browser keeps its cookie and may log out again).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from quart import Quart

from actors import ViewerEvent, events_channel
from storage import Storage

from . import _salon_session
from ._revocation import LiveSocket
from ._salon_session import ABSOLUTE_TTL, CLOCK_SKEW, EXPIRED_MESSAGE, SalonSession

__all__ = [
    "SESSION_EXPIRED",
    "SessionSockets",
    "end_session",
    "is_logout_of",
    "logout_event",
    "revocation_ttl",
    "session_sockets",
]

#: The ``error`` frame data a socket of an ended (or expired) session gets before 4401.
SESSION_EXPIRED: dict[str, str] = {"message": EXPIRED_MESSAGE, "code": "salon_session_expired"}

REGISTRY_KEY = "aiadmin.salon_session_sockets"
#: The ``to`` of a logout event: no viewer id (hex) starts like this.
LOGOUT_TO = "salon-session:"


class SessionSockets:
    """The salon cookie sockets one app serves, by session id (see the module docstring)."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[LiveSocket]] = {}

    @contextmanager
    def open(self, session_id: str, company_id: int) -> Iterator[LiveSocket]:
        """Register a socket of ``session_id`` (of ``company_id``) while the block runs."""
        live = LiveSocket(company_id)
        self._sockets.setdefault(session_id, set()).add(live)
        try:
            yield live
        finally:
            sockets = self._sockets.get(session_id)
            if sockets is not None:
                sockets.discard(live)
                if not sockets:
                    del self._sockets[session_id]

    def count(self, session_id: str) -> int:
        """How many sockets of ``session_id`` are open here."""
        return len(self._sockets.get(session_id, ()))

    def revoke(self, session_id: str) -> int:
        """Close every socket of ``session_id`` here (4401 ``salon_session_expired``);
        returns how many."""
        sockets = list(self._sockets.get(session_id, ()))
        for live in sockets:
            live.revoke(SESSION_EXPIRED)
        return len(sockets)


def session_sockets(app: Quart) -> SessionSockets:
    """The app's :class:`SessionSockets` (made on first use)."""
    registry = app.extensions.get(REGISTRY_KEY)
    if not isinstance(registry, SessionSockets):
        registry = SessionSockets()
        app.extensions[REGISTRY_KEY] = registry
    return registry


def revocation_ttl(session: SalonSession, now: float) -> float:
    """Seconds to keep ``session`` revoked at ``now``: until its absolute expiry has passed
    on every node (their clocks may lag by up to :data:`CLOCK_SKEW`); at least that skew."""
    return max(0.0, session.created_at + ABSOLUTE_TTL - now) + CLOCK_SKEW


def logout_event(session_id: str) -> ViewerEvent:
    """What :func:`end_session` publishes for the sockets of ``session_id`` elsewhere."""
    return ViewerEvent(
        frame={"event": "error", "data": dict(SESSION_EXPIRED)},
        to=LOGOUT_TO + session_id,
        close=True,
    )


def is_logout_of(event: ViewerEvent, session_id: str | None) -> bool:
    """Whether ``event`` (read from ``company:{id}:events``) ends session ``session_id``."""
    return session_id is not None and event.close and event.to == LOGOUT_TO + session_id


async def end_session(
    registry: SessionSockets,
    storage: Storage,
    session: SalonSession,
    *,
    cluster: bool,
) -> int:
    """Revoke ``session`` (see the module docstring) now (the session module's clock);
    returns how many of its sockets were closed in this process."""
    ttl = revocation_ttl(session, _salon_session.clock())
    await storage.salon_sessions.revoke(session.session_id, ttl)
    closed = registry.revoke(session.session_id)
    if cluster:
        channel = events_channel(session.company_id)
        await storage.pubsub.publish(channel, logout_event(session.session_id).encode())
    return closed
