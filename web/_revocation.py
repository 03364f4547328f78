"""Revocation reaches live sessions: a company's open connect-page WebSockets are closed.

A company's web credentials are revoked when its connect URL is re-issued
(``POST /marketplace/connect-url``: the old token stops resolving and ``credentials_version``
moves on, so its JWTs are refused) or when the app is uninstalled (the actor revokes the token
and the keys, and its ``status`` frame says ``uninstalled``). A socket authenticated before
must not go on receiving ``qr-update`` frames: it gets an ``error`` frame and close code 4001,
as a socket whose credential is refused at the start does.

* In one process, every socket serving a company holds a :class:`LiveSocket` registered in
  the app's :class:`SocketRegistry` (:func:`socket_registry`); :meth:`SocketRegistry.revoke`
  cancels their serving scopes and the socket handler sends the frame and closes.
* Across processes (a node built with ``cluster=True``), :func:`revoke_sessions` also
  publishes a :class:`~actors.ViewerEvent` on the company's existing pub/sub channel
  ``company:{id}:events``: an ``error`` frame with code ``invalid_token`` and ``close`` for
  every socket (no ``to``). Every cluster socket of the company follows that channel — remote
  viewers already did, local ones follow it for this alone — and :func:`is_revocation` tells
  them to close. The same message read by a process of an older version closes the socket
  with 1013; the page reconnects and its old credential is then refused with 4001.

A socket closes on an uninstall ``status`` frame (:func:`is_uninstalled_status`) wherever the
actor runs, since that frame reaches local viewers directly and remote ones through the same
channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
from quart import Quart

from actors import ViewerEvent, events_channel
from storage import Storage

__all__ = [
    "REVOKED",
    "UNINSTALLED",
    "LiveSocket",
    "SocketRegistry",
    "is_revocation",
    "is_uninstalled_status",
    "revoke_sessions",
    "socket_registry",
]

#: The ``error`` frame data a socket gets when its credential was revoked.
REVOKED: dict[str, str] = {
    "message": "The link has been replaced or revoked; open the new link",
    "code": "invalid_token",
}
#: The ``error`` frame data a socket gets when the app was uninstalled for its salon.
UNINSTALLED: dict[str, str] = {
    "message": "The app was uninstalled for this salon",
    "code": "uninstalled",
}

REGISTRY_KEY = "aiadmin.sockets"


class LiveSocket:
    """One open socket of a company: revoking it cancels its serving scope."""

    def __init__(self, company_id: int) -> None:
        self.company_id = company_id
        self.scope = trio.CancelScope()
        #: The ``error`` frame data to send before closing with 4001; ``None`` while live.
        self.reason: dict[str, str] | None = None

    @property
    def revoked(self) -> bool:
        return self.reason is not None

    def revoke(self, reason: dict[str, str] = REVOKED) -> None:
        """Stop serving (idempotent: the first reason wins)."""
        if self.reason is None:
            self.reason = reason
        self.scope.cancel()


class SocketRegistry:
    """The sockets one app serves, by company (see the module docstring)."""

    def __init__(self) -> None:
        self._sockets: dict[int, set[LiveSocket]] = {}

    @contextmanager
    def open(self, company_id: int) -> Iterator[LiveSocket]:
        """Register a socket of ``company_id`` for as long as the block runs."""
        live = LiveSocket(company_id)
        self._sockets.setdefault(company_id, set()).add(live)
        try:
            yield live
        finally:
            sockets = self._sockets.get(company_id)
            if sockets is not None:
                sockets.discard(live)
                if not sockets:
                    del self._sockets[company_id]

    def count(self, company_id: int) -> int:
        """How many sockets of ``company_id`` are open here."""
        return len(self._sockets.get(company_id, ()))

    def revoke(self, company_id: int, reason: dict[str, str] = REVOKED) -> int:
        """Revoke every socket of ``company_id`` here; returns how many."""
        sockets = list(self._sockets.get(company_id, ()))
        for live in sockets:
            live.revoke(reason)
        return len(sockets)


def socket_registry(app: Quart) -> SocketRegistry:
    """The app's :class:`SocketRegistry` (made on first use)."""
    registry = app.extensions.get(REGISTRY_KEY)
    if not isinstance(registry, SocketRegistry):
        registry = SocketRegistry()
        app.extensions[REGISTRY_KEY] = registry
    return registry


def revocation_event() -> ViewerEvent:
    """What :func:`revoke_sessions` publishes for every socket of the company."""
    return ViewerEvent(frame={"event": "error", "data": dict(REVOKED)}, close=True)


def is_revocation(event: ViewerEvent) -> bool:
    """Whether ``event`` (read from ``company:{id}:events``) revokes every socket."""
    if not event.close or event.to is not None or event.frame is None:
        return False
    data = event.frame.get("data")
    return (
        event.frame.get("event") == "error"
        and isinstance(data, dict)
        and data.get("code") == REVOKED["code"]
    )


def is_uninstalled_status(frame: Any) -> bool:
    """Whether a viewer frame of the actor says the app is uninstalled for the salon."""
    if not isinstance(frame, dict) or frame.get("event") != "status":
        return False
    data = frame.get("data")
    return isinstance(data, dict) and data.get("status") == "uninstalled"


async def revoke_sessions(
    registry: SocketRegistry, storage: Storage, company_id: int, *, cluster: bool
) -> int:
    """Close every open connect-page socket of ``company_id`` with 4001: here at once, and
    (``cluster``) in every process through ``company:{id}:events``.

    Returns how many sockets were closed here. A publish failure raises the storage error
    (the caller answers 503; the credential itself was already revoked in storage).
    """
    closed = registry.revoke(company_id)
    if cluster:
        await storage.pubsub.publish(events_channel(company_id), revocation_event().encode())
    return closed
