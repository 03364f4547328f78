"""Placement: which node runs a company's actor when several processes share PostgreSQL+Redis.

A node built with ``cluster=True`` has a :class:`Placement`. A company's actor (and so its
WhatsApp session) runs only in the node holding the lease ``owner:{company_id}``
(:class:`storage.Leases`, TTL ``lease_ttl``, :data:`LEASE_TTL` by default,
``AIADMIN_LEASE_SECONDS``), taken with :meth:`Placement.place` before the actor is activated,
renewed every quarter of the TTL while the actor is active and released once it passivated (or
when the node stops). A node that dies loses its leases when they expire.

No split brain: an owner that cannot renew (Redis unreachable, too slow) counts the lease as
lost **before** it can expire: once ``2/3`` of the TTL passed since the last renewal that
succeeded (timed from when it was *sent*, on trio's clock), it stops the company's actor, which
closes the WhatsApp session, with a third of the TTL to spare before another node may take
the lease. And since a process can be paused past its lease without noticing (SIGSTOP, a long
GC, a VM migration), every take of a lease bumps the company's epoch in the database
(:meth:`storage.LeaseEpochs.take`) and the actor writes through
``storage.fenced(company_id, epoch)`` (:meth:`Placement.storage_for`): an old owner's writes
are refused with :class:`storage.StaleEpoch`, and a refused actor is stopped.

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
from dataclasses import dataclass
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

#: The default lease TTL (seconds); ``Settings.lease_seconds`` sets it per node.
LEASE_TTL = 30.0
PUBLISH_QUEUE = 1024
RELEASE_TIMEOUT = 2.0
#: Leases renewed at once (each renewal is one Redis call).
RENEW_CONCURRENCY = 16


@dataclass
class OwnedLease:
    """A lease this node holds: its fencing epoch, and when (trio time) it was taken and last
    renewed (the time a renewal that succeeded was sent, never later)."""

    epoch: int
    taken: float
    renewed: float


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

    def __init__(
        self,
        node_id: str,
        storage: Storage,
        registry: Registry[int],
        *,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be > 0")
        self.node_id = node_id
        self.storage = storage
        self.registry = registry
        self.lease_ttl = lease_ttl
        #: Renew every quarter of the TTL: two renewals may fail before giving up.
        self.renew_every = lease_ttl / 4
        #: Stop the actor once this long passed without a renewal: a third of the TTL is left
        #: for it to stop (and its session to close) before another node may take the lease.
        self.give_up_after = lease_ttl * 2 / 3
        #: How often the guard looks for leases to give up.
        self.check_every = lease_ttl / 30
        #: Companies whose lease this node holds.
        self.owned: dict[int, OwnedLease] = {}
        #: Remote viewers subscribed to local actors: viewer id → (company, viewer, last seen).
        self.remote: dict[str, tuple[int, RemoteViewer, float]] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[int, ViewerEvent]](PUBLISH_QUEUE)
        self.dropped_frames = 0
        #: Actors stopped because their lease was lost or not renewed in time, or fenced out.
        self.stopped_owners = 0
        self._nursery: trio.Nursery | None = None

    # -- ownership -------------------------------------------------------------------------

    async def place(self, company_id: int) -> str | None:
        """Take (or keep) the company's lease: ``None`` if its actor belongs here, else the
        id of the node that holds it. A lease newly taken here gets a new epoch (its fencing
        token, see :meth:`storage_for`); raises :class:`StorageError` when Redis or the
        database cannot be reached (the actor must not run here then)."""
        sent = trio.current_time()
        holder = await self.storage.leases.acquire(company_id, self.node_id, self.lease_ttl)
        if holder != self.node_id:
            if self.owned.pop(company_id, None) is not None:
                log.warning("company %s: lease taken by %s; stopping its actor", company_id, holder)
                self._stop_soon(company_id)
            return holder
        lease = self.owned.get(company_id)
        if lease is not None:
            lease.renewed = max(lease.renewed, sent)
            return None
        try:
            epoch = await self.storage.epochs.take(company_id)
        except BaseException:
            with trio.move_on_after(RELEASE_TIMEOUT) as scope:
                scope.shield = True
                with contextlib.suppress(StorageError):
                    await self.storage.leases.release(company_id, self.node_id)
            raise
        lease = self.owned.get(company_id)  # another place() may have raced us to a take
        if lease is None or lease.epoch < epoch:
            self.owned[company_id] = OwnedLease(epoch, taken=sent, renewed=sent)
        else:
            lease.renewed = max(lease.renewed, sent)
        return None

    def storage_for(self, company_id: int) -> Storage:
        """The storage a company's actor starting here writes through: fenced by the epoch of
        the lease this node holds (:attr:`CompanyDeps.fence`). Once another node took the
        lease every write is refused, and the actor is stopped."""
        lease = self.owned.get(company_id)
        # Not held (cannot happen right after place()): an epoch no take ever returns.
        epoch = lease.epoch if lease is not None else -1
        return self.storage.fenced(company_id, epoch, self._refused)

    def _refused(self, company_id: int, epoch: int) -> None:
        """A fenced write of the actor holding ``epoch`` was refused: another node took the
        lease. Forget the lease and stop the actor (unless it was retaken since)."""
        lease = self.owned.get(company_id)
        if lease is not None and lease.epoch > epoch:
            return  # an older incarnation's write; the actor restarts with the newer epoch
        self.owned.pop(company_id, None)
        log.warning(
            "company %s: a write with lease epoch %d was refused (another node owns it); "
            "stopping its actor",
            company_id,
            epoch,
        )
        self._stop_soon(company_id)

    def _stop_soon(self, company_id: int) -> None:
        """Stop the company's actor from the placement's own task (never inline: the caller
        may be that actor)."""
        if self._nursery is None:
            return  # not running: the node is stopping, and its actors with it
        self.stopped_owners += 1
        self._nursery.start_soon(self._stop_actor, company_id)

    async def _stop_actor(self, company_id: int) -> None:
        if company_id in self.owned:
            return  # retaken since: the actor now runs under a new epoch
        await self.registry.stop(company_id)

    async def _renew_one(self, company_id: int, lease: OwnedLease) -> None:
        sent = trio.current_time()
        try:
            with trio.fail_after(self.renew_every):
                kept = await self.storage.leases.renew(company_id, self.node_id, self.lease_ttl)
        except (StorageError, trio.TooSlowError) as exc:
            log.warning("company %s: lease not renewed: %s", company_id, exc or "too slow")
            return
        if self.owned.get(company_id) is not lease:
            return  # given up, lost or retaken meanwhile
        if kept:
            lease.renewed = max(lease.renewed, sent)
        else:
            log.warning("company %s: lease lost; stopping its actor here", company_id)
            del self.owned[company_id]
            self._stop_soon(company_id)

    async def _renew_once(self) -> None:
        now = trio.current_time()
        active = set(self.registry.active_keys())
        limiter = trio.CapacityLimiter(RENEW_CONCURRENCY)

        async def renew(company_id: int, lease: OwnedLease) -> None:
            async with limiter:
                await self._renew_one(company_id, lease)

        async with trio.open_nursery() as nursery:
            for company_id, lease in list(self.owned.items()):
                if company_id in active:
                    nursery.start_soon(renew, company_id, lease)
                elif now - lease.taken >= self.renew_every:  # a fresh lease has time to activate
                    del self.owned[company_id]
                    with contextlib.suppress(StorageError), trio.move_on_after(RELEASE_TIMEOUT):
                        await self.storage.leases.release(company_id, self.node_id)
        for viewer_id, (company_id, viewer, seen) in list(self.remote.items()):
            if now - seen > REMOTE_VIEWER_TTL:
                self.remote.pop(viewer_id, None)
                with contextlib.suppress(ActorError):
                    self.registry.ref(company_id).tell(m.Unsubscribe(viewer))

    async def _renew(self) -> None:
        while True:
            await trio.sleep(self.renew_every)
            await self._renew_once()

    def _give_up_unrenewed(self) -> None:
        """Count a lease not renewed for ``give_up_after`` seconds as lost: stop its actor."""
        now = trio.current_time()
        for company_id, lease in list(self.owned.items()):
            unrenewed = now - lease.renewed
            if unrenewed > self.give_up_after:
                del self.owned[company_id]
                log.warning(
                    "company %s: lease not renewed for %.1f s (TTL %g s); stopping its actor "
                    "before the lease can expire",
                    company_id,
                    unrenewed,
                    self.lease_ttl,
                )
                self._stop_soon(company_id)

    async def _guard(self) -> None:
        while True:
            await trio.sleep(self.check_every)
            self._give_up_unrenewed()

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
                self._nursery = nursery
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._renew)
                nursery.start_soon(self._guard)
                await nursery.start(self._listen)
                task_status.started()
        finally:
            self._nursery = None
            await self.release_all()
