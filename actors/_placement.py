"""Placement: which node runs a company's actor when several processes share PostgreSQL+Redis.

A node built with ``cluster=True`` has a :class:`Placement`. A company's actor (and so its
WhatsApp session) runs only in the node holding the lease ``owner:{company_id}``
(:class:`storage.Leases`, TTL :data:`LEASE_TTL`), taken with :meth:`Placement.place` before
the actor is activated, renewed every :data:`LEASE_RENEW` seconds while the actor is active and
released once it passivated (or when the node stops). A node that dies loses its leases when
they expire.

Messages between nodes go through ``storage.pubsub``, in the wire format that
:mod:`actors._viewer_wire` defines: every viewer frame of a company's actor is published as a
:class:`~actors.ViewerEvent` on ``company:{id}:events`` (frames meant for one remote viewer
only, such as its initial ``status`` or its commands' errors, are addressed to it; a close
tells a remote socket that the actor dropped it, and it reconnects as a local one would);
remote sockets send :class:`~actors.ViewerCommand` values to ``node:{node_id}:commands`` (one
channel per node, not per company, so a node holds one subscription however many companies it
owns). A remote viewer silent for ``REMOTE_VIEWER_TTL`` s (no ``watch``) is forgotten.

A remote viewer is subscribed to the actor as a :class:`RemoteViewer`, so the actor counts it
like a local socket (it stays active, and a QR round someone watches is not ended as
unwatched). Frames are published only in cluster mode: a node running alone pays nothing.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import trio

from runtime import ActorError, Registry
from storage import Storage, StorageError

from ._viewer_wire import (
    REMOTE_VIEWER_TTL,
    ViewerCommand,
    ViewerEvent,
    ViewerOp,
    commands_channel,
    error_frame,
    events_channel,
)
from .company import CommandResult
from .company import messages as m

log = logging.getLogger(__name__)

LEASE_TTL = 30.0
LEASE_RENEW = 10.0
PUBLISH_QUEUE = 1024
RELEASE_TIMEOUT = 2.0


class RemoteViewer:
    """A socket in another process, as the owning actor sees it.

    Broadcast frames need nothing here (the actor's frames are published on the events
    channel anyway); closing it tells the remote socket to go away.
    """

    def __init__(self, placement: Placement, company_id: int, viewer_id: str) -> None:
        self.placement = placement
        self.company_id = company_id
        self.viewer_id = viewer_id

    def send_nowait(self, frame: dict[str, Any]) -> None:
        """Nothing to do: the frame reaches remote sockets through ``company:{id}:events``."""

    def close(self) -> None:
        self.placement.forget(self.viewer_id)
        self.placement.publish_nowait(self.company_id, None, to=self.viewer_id, close=True)


class Placement:
    """A node's leases, its outgoing event frames and its command channel (see module doc)."""

    def __init__(self, node_id: str, storage: Storage, registry: Registry[int]) -> None:
        self.node_id = node_id
        self.storage = storage
        self.registry = registry
        #: Companies whose lease this node holds → when it was (re)taken.
        self.owned: dict[int, float] = {}
        #: Remote viewers subscribed to local actors: viewer id → (company, viewer, last seen).
        self.remote: dict[str, tuple[int, RemoteViewer, float]] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[int, ViewerEvent]](PUBLISH_QUEUE)
        self.dropped_frames = 0

    # -- ownership -------------------------------------------------------------------------

    async def place(self, company_id: int) -> str | None:
        """Take (or keep) the company's lease: ``None`` if its actor belongs here, else the
        id of the node that holds it."""
        holder = await self.storage.leases.acquire(company_id, self.node_id, LEASE_TTL)
        if holder != self.node_id:
            return holder
        self.owned[company_id] = trio.current_time()
        return None

    async def _renew_once(self) -> None:
        now = trio.current_time()
        active = set(self.registry.active_keys())
        for company_id, since in list(self.owned.items()):
            try:
                if company_id not in active:
                    if now - since >= LEASE_RENEW:  # give a fresh lease time to activate
                        del self.owned[company_id]
                        await self.storage.leases.release(company_id, self.node_id)
                elif not await self.storage.leases.renew(company_id, self.node_id, LEASE_TTL):
                    log.warning("company %s: lease lost; stopping its actor here", company_id)
                    del self.owned[company_id]
                    await self.registry.stop(company_id)
            except StorageError as exc:
                log.warning("company %s: lease not renewed: %s", company_id, exc)
        for viewer_id, (company_id, viewer, seen) in list(self.remote.items()):
            if now - seen > REMOTE_VIEWER_TTL:
                self.remote.pop(viewer_id, None)
                with contextlib.suppress(ActorError):
                    self.registry.ref(company_id).tell(m.Unsubscribe(viewer))

    async def _renew(self) -> None:
        while True:
            await trio.sleep(LEASE_RENEW)
            await self._renew_once()

    async def release_all(self) -> None:
        """Give every lease back (the node is stopping); best effort, bounded."""
        with trio.move_on_after(RELEASE_TIMEOUT) as scope:
            scope.shield = True
            for company_id in list(self.owned):
                with contextlib.suppress(StorageError):
                    await self.storage.leases.release(company_id, self.node_id)
            self.owned.clear()

    # -- events out ------------------------------------------------------------------------

    def publish_nowait(
        self,
        company_id: int,
        frame: dict[str, Any] | None,
        *,
        to: str | None = None,
        close: bool = False,
    ) -> None:
        """Queue a frame for ``company:{id}:events`` without blocking the actor."""
        try:
            self._send.send_nowait((company_id, ViewerEvent(frame, to=to, close=close)))
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.dropped_frames += 1

    def publish_frame(self, company_id: int, frame: dict[str, Any]) -> None:
        """The actors' hook (:attr:`CompanyDeps.publish`)."""
        self.publish_nowait(company_id, frame)

    async def _publisher(self) -> None:
        async for company_id, event in self._receive:
            try:
                await self.storage.pubsub.publish(events_channel(company_id), event.encode())
            except StorageError as exc:
                log.warning("company %s: frame not published: %s", company_id, exc)

    # -- commands in -----------------------------------------------------------------------

    def forget(self, viewer_id: str) -> None:
        self.remote.pop(viewer_id, None)

    async def _listen(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the node's command channel; resubscribe (every second) while Redis is down."""
        started = False
        while True:
            try:
                async with (
                    self.storage.pubsub.subscribe(commands_channel(self.node_id)) as commands,
                    trio.open_nursery() as nursery,
                ):
                    if not started:
                        started = True
                        task_status.started()
                    async for raw in commands:
                        command = ViewerCommand.decode(raw)
                        if command is not None:
                            nursery.start_soon(self._handle, command)
            except StorageError as exc:
                log.warning("node %s: command channel lost: %s", self.node_id, exc)
            if not started:
                started = True
                task_status.started()
            await trio.sleep(1.0)

    async def _handle(self, command: ViewerCommand) -> None:
        company_id, viewer_id, op = command.company_id, command.viewer, command.op
        try:
            if await self.place(company_id) is not None:
                self.publish_nowait(
                    company_id,
                    error_frame("Service moved; reconnecting", "unavailable"),
                    to=viewer_id,
                    close=True,
                )
                return
        except StorageError as exc:
            log.warning("company %s: command not placed: %s", company_id, exc)
            return
        ref = self.registry.ref(company_id)
        try:
            if op is ViewerOp.WATCH:
                entry = self.remote.get(viewer_id)
                if entry is not None:
                    self.remote[viewer_id] = (entry[0], entry[1], trio.current_time())
                    return
                viewer = RemoteViewer(self, company_id, viewer_id)
                self.remote[viewer_id] = (company_id, viewer, trio.current_time())
                for frame in await ref.ask(m.Subscribe(viewer)):
                    self.publish_nowait(company_id, frame, to=viewer_id)
            elif op is ViewerOp.UNWATCH:
                entry = self.remote.pop(viewer_id, None)
                if entry is not None:
                    ref.tell(m.Unsubscribe(entry[1]))
            elif op is ViewerOp.REQUEST_QR:
                self._report(company_id, viewer_id, await ref.ask(m.RequestQr()))
            elif op is ViewerOp.REQUEST_PAIRING_CODE and command.phone is not None:
                result = await ref.ask(m.RequestPairingCode(command.phone))
                self._report(company_id, viewer_id, result)
        except ActorError:
            self.publish_nowait(
                company_id, error_frame("Service is busy; try again", "unavailable"), to=viewer_id
            )

    def _report(self, company_id: int, viewer_id: str, result: object) -> None:
        if isinstance(result, CommandResult) and not result.ok:
            frame = error_frame(result.message, result.code or "refused")
            self.publish_nowait(company_id, frame, to=viewer_id)

    # -- lifetime --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish frames, renew leases and serve commands until cancelled; then release."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._renew)
                await nursery.start(self._listen)
                task_status.started()
        finally:
            await self.release_all()
