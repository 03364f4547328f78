"""Placement: which node runs a company's actor when several processes share PostgreSQL+Redis.

A node built with ``cluster=True`` has a :class:`Placement`. Its :class:`~actors._membership.
Membership` heartbeats the node into Redis (``AIADMIN_MEMBER_TTL``, 6 s; one call every third
of it, whatever number of salons the node owns) and keeps the live members with their
advertised URLs (``AIADMIN_ADVERTISE_URL``, :meth:`Placement.address_of`).

**Who owns a salon.** A company's owner is the rendezvous-hash (highest random weight) winner
among the live members (:func:`rendezvous`, :meth:`Placement.owner_of`): every node computes
the same answer from the same members, and a node that joins or leaves moves only its own
share of the salons. Before its actor is activated, the winner takes the company's *claim*
(``owner:{company_id}`` → node id, :meth:`storage.Leases.claim`) with a compare-and-set that
succeeds only if the claim is free, already ours, or held by a node that is no longer a live
member; a claim has no TTL of its own (nothing is renewed per salon): it is valid while its
node is a member. Each take bumps the company's fencing epoch in PostgreSQL
(:meth:`storage.LeaseEpochs.take`) and the actor writes through ``storage.fenced(company_id,
epoch)`` (:meth:`Placement.storage_for`): an old owner's writes are refused with
:class:`storage.StaleEpoch`, and a refused actor is stopped.

**Moving.** When the members change so that another node wins a company this node holds, it
stops the company's actor and then releases the claim (a graceful handover); the winner's
:meth:`Placement.place` waits up to ``handover_wait`` (half the member TTL) for the claim to be
released, and the companies it could not take yet are retried at every heartbeat. When a
member left, or another node announced that it handed companies over, each node re-runs the
restore over the linked companies (:meth:`Node.rebalance`) and activates those it now wins:
it first takes their claims in batches (:meth:`Placement.take_many`: one Redis script per 500
claims, one statement bumping their epochs), so each activation that follows finds its claim
and epoch ready, and a request for one of them starts its actor at once.
A graceful stop (:meth:`Placement.leave`) first marks the node *draining* in Redis (it still
heartbeats; every node leaves it out of the rendezvous at once, but its claims stay valid for
the claim compare-and-set) and announces it, so the others compute the new winners and wait
for each claim; it then stops its actors and releases each claim as soon as that actor has
stopped (the winner takes it within a claim retry). A slow actor delays only its own salon,
never giving it two owners; the membership ends once every claim is released, or after
``leave_grace`` (:data:`LEAVE_SHARE` of ``AIADMIN_SHUTDOWN_GRACE``), whichever comes first.
A node killed with
-9 is gone when its membership key expires (one TTL at most): its claims are free to take
then, and the survivors' next heartbeat sees it gone.

**No split brain.** A node that cannot heartbeat for two thirds of the TTL stops all its
actors (closing their WhatsApp sessions) a third of the TTL before the others may count it
gone; a process paused past its TTL without noticing (SIGSTOP, a long GC, a VM migration) is
refused by the epoch fencing the moment it writes. A node whose membership key Redis lost
(a restart without its data, a clock jump) counts itself out at its next heartbeat and takes
nothing for one TTL (see :mod:`actors._membership`), so no node takes a salon its owner still
runs after such a loss.

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
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from runtime import ActorError, Registry
from storage import Storage, StorageError

from ._business_log import BusinessEvent, log_event, serving_request
from ._membership import MEMBER_TTL, Membership, MembershipLost
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

__all__ = ["MEMBER_TTL", "Membership", "MembershipLost", "Placement", "rendezvous"]

PUBLISH_QUEUE = 1024
RELEASE_TIMEOUT = 2.0
#: A graceful stop tells the others again (``"moved"``) about salons whose actors are still
#: stopping this long after it began, and then after each of them, as it hands it over.
HANDOVER_TIMEOUT = 2.0
#: The longest a graceful stop waits for the node's actors to stop before it leaves anyway (the
#: node sets it from ``AIADMIN_SHUTDOWN_GRACE``: :data:`LEAVE_SHARE` of it).
LEAVE_GRACE = 7.0
#: The share of the shutdown grace a graceful stop may spend handing salons over (the
#: supervision tree must be done by 0.8 of it, see :mod:`web._shutdown`).
LEAVE_SHARE = 0.7
#: How often a winner waiting for the previous owner's claim asks again.
CLAIM_RETRY = 0.1
#: Actors stopped at once when their companies move to another node.
STOP_CONCURRENCY = 64
#: Claims taken per round trip (and epochs bumped per statement) by :meth:`Placement.take_many`.
TAKE_BATCH = 500
#: Companies tried again at once, each heartbeat, while their previous owner releases them.
RETRY_CONCURRENCY = 16
#: How long an actor started here for a company owned elsewhere may wait for the message that
#: activated it (it refuses that message and stops) before the placement stops it.
LINGER_GRACE = 1.0


def rendezvous(company_id: int, members: Iterable[str]) -> str | None:
    """The member that wins ``company_id`` (highest random weight): the same on every node
    for the same members; removing a member moves only the companies it won. ``None`` when
    there are no members."""
    best: str | None = None
    best_score = -1
    for node in members:
        digest = hashlib.blake2b(f"{node}\x00{company_id}".encode(), digest_size=8).digest()
        score = int.from_bytes(digest, "big")
        if score > best_score or (score == best_score and best is not None and node > best):
            best, best_score = node, score
    return best


@dataclass
class OwnedClaim:
    """A claim this node holds: its fencing epoch, and when (trio time) it was taken."""

    epoch: int
    taken: float


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
    """A node's membership and claims, its outgoing event frames and its command channel
    (see the module doc)."""

    def __init__(
        self,
        node_id: str,
        storage: Storage,
        registry: Registry[int],
        *,
        member_ttl: float = MEMBER_TTL,
        address: str = "",
        leave_grace: float = LEAVE_GRACE,
    ) -> None:
        self.node_id = node_id
        #: How long :meth:`leave` may wait for slow actors before it ends the membership.
        self.leave_grace = leave_grace
        self.storage = storage
        self.registry = registry
        self.membership = Membership(
            node_id,
            address,
            storage,
            ttl=member_ttl,
            on_change=self._members_changed,
            on_lost=self._membership_lost,
            on_moved=self._rebalance_due_now,
        )
        #: How long :meth:`place` waits for the previous owner to release a claim.
        self.handover_wait = member_ttl / 2
        #: Companies whose claim this node holds.
        self.owned: dict[int, OwnedClaim] = {}
        #: Linked companies this node wins whose claim the previous owner still held when the
        #: restore tried them: tried again at every heartbeat.
        self.wanted: set[int] = set()
        #: Runs the restore over the linked companies after a member left (set by the node).
        self.restore: Callable[[], Awaitable[object]] | None = None
        #: Remote viewers subscribed to local actors: viewer id → (company, viewer, last seen).
        self.remote: dict[str, tuple[int, RemoteViewer, float]] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[int, ViewerEvent]](PUBLISH_QUEUE)
        self.dropped_frames = 0
        #: Actors stopped because the node counted itself out, or was fenced out.
        self.stopped_owners = 0
        #: Actors stopped (and claims released) because another node now wins their company.
        self.handed_over = 0
        self._nursery: trio.Nursery | None = None
        self._taking: dict[int, trio.Event] = {}
        self._moving: dict[int, trio.Event] = {}
        #: Claims Redis may still give this node for companies it dropped from ``owned``
        #: without releasing them.
        self._stale: set[int] = set()
        #: Companies whose latest actor here started while another node owned them.
        self._elsewhere_actors: set[int] = set()
        self._rebalance_due = trio.Event()
        #: Set once :meth:`leave` began; set (the event) once it ended.
        self._left: trio.Event | None = None

    # -- ownership -------------------------------------------------------------------------

    def _winner(self, company_id: int) -> str | None:
        """The company's owner by rendezvous over the live members: ``None`` for this node.
        Raises :class:`MembershipLost` when this node's view of the members is not current."""
        members: Iterable[str] = self.membership.members
        if self.membership.leaving:  # handing over: the others only
            members = [node for node in members if node != self.node_id]
        elif not self.membership.current:
            raise MembershipLost(self.node_id)
        winner = rendezvous(company_id, members)
        if winner is None:
            raise MembershipLost(self.node_id)
        return None if winner == self.node_id else winner

    async def owner_of(self, company_id: int) -> str | None:
        """The node that owns (or is about to own) the company: ``None`` for this node, else
        another live member's node id (reach it at :meth:`address_of`). Computed from the
        members as the last heartbeat read them (no Redis call). Raises
        :class:`MembershipLost` (a :class:`storage.StorageUnavailable`) when this node could
        not heartbeat for two thirds of the member TTL."""
        return self._winner(company_id)

    def address_of(self, node_id: str) -> str | None:
        """The advertised URL (``AIADMIN_ADVERTISE_URL``) of a live member, as the last
        heartbeat read it; ``None`` for a node that is not (or no longer) a member."""
        return self.membership.members.get(node_id)

    async def place(self, company_id: int) -> str | None:
        """Take (or keep) the company's claim: ``None`` if its actor belongs here, else the
        id of the node that owns it (the rendezvous winner, or the previous owner while it
        has not handed the company over within ``handover_wait``). A claim newly taken here
        gets a new epoch (its fencing token, see :meth:`storage_for`). Raises
        :class:`StorageError` (:class:`MembershipLost` included) when Redis or the database
        cannot be reached (the actor must not run here then)."""
        return await self._place(company_id, wait=self.handover_wait)

    async def _place(self, company_id: int, *, wait: float) -> str | None:
        while True:
            winner = self._winner(company_id)
            if winner is not None:
                return winner
            if company_id in self.owned:
                return None
            busy = self._moving.get(company_id)  # (a trio.Event has no truth value)
            if busy is None:
                busy = self._taking.get(company_id)
            if busy is None:
                break
            await busy.wait()  # a handover or another take of it: then look again
        done = self._taking[company_id] = trio.Event()
        try:
            return await self._take(company_id, wait)
        finally:
            del self._taking[company_id]
            done.set()

    async def _take(self, company_id: int, wait: float) -> str | None:
        deadline = trio.current_time() + wait
        while True:
            try:
                holder = await self.storage.leases.claim(company_id, self.node_id)
            except BaseException:
                # Redis may have run it with the answer lost (a timeout, a dropped
                # connection): a claim this node may hold unknowingly, given back once
                # another node wins the company (:meth:`_release_stale`).
                self._stale.add(company_id)
                raise
            if holder is None:  # Redis no longer counts this node a member
                raise MembershipLost(self.node_id)
            if holder == self.node_id:
                break
            if trio.current_time() >= deadline:
                return holder  # it still runs the company; it hands it over when it sees us
            await trio.sleep(CLAIM_RETRY)
            winner = self._winner(company_id)
            if winner is not None:
                return winner
        try:
            epoch = await self.storage.epochs.take(company_id)
        except BaseException:
            await self._release([company_id])
            raise
        # No await from here to the insert: a membership change handled meanwhile is seen.
        try:
            winner = self._winner(company_id)
        except MembershipLost:
            await self._release([company_id])
            raise
        if winner is not None:
            await self._release([company_id])
            return winner
        self.owned[company_id] = OwnedClaim(epoch, taken=trio.current_time())
        if epoch > 1:  # another node (or an earlier run of this one) held it before
            self._moved(company_id, to_node=self.node_id, epoch=epoch)
        return None

    async def take_many(self, company_ids: Iterable[int]) -> None:
        """Take over, in a few round trips, the claims of the listed companies this node wins
        and does not hold yet (a take-over after a member left, the start-up restore): one
        Redis script per :data:`TAKE_BATCH` claims and one statement bumping the epochs of
        those taken, so the activations that follow find them owned (no claim, no epoch bump
        each). Claims another live member still holds are left to :meth:`place` (it waits for
        the handover). A :meth:`place` of one of them meanwhile (a request) waits for the
        batch, not for the activations. Best effort: what fails here is taken one by one by
        the restore."""
        if not self.membership.current:
            return
        ids: list[int] = []
        for company_id in company_ids:
            if (
                company_id in self.owned
                or company_id in self._taking
                or company_id in self._moving
                or self._winner(company_id) is not None
            ):
                continue
            ids.append(company_id)
        for start in range(0, len(ids), TAKE_BATCH):
            batch = ids[start : start + TAKE_BATCH]
            done = trio.Event()
            for company_id in batch:
                self._taking[company_id] = done
            try:
                await self._take_batch(batch)
            except StorageError as exc:
                log.warning(
                    "node %s: %d claims not taken at once: %s", self.node_id, len(batch), exc
                )
            finally:
                for company_id in batch:
                    if self._taking.get(company_id) is done:
                        del self._taking[company_id]
                done.set()

    async def _take_batch(self, company_ids: list[int]) -> None:
        """:meth:`_take` without waiting, for many companies: claims, then epochs, then owned."""
        try:
            holders = await self.storage.leases.claim_many(company_ids, self.node_id)
        except BaseException:
            self._stale.update(company_ids)  # it may have run with the answer lost
            raise
        if holders is None:  # Redis no longer counts this node a member
            raise MembershipLost(self.node_id)
        mine = [company_id for company_id, holder in holders.items() if holder == self.node_id]
        if not mine:
            return
        try:
            epochs = await self.storage.epochs.take_many(mine)
        except BaseException:
            await self._release(mine)
            raise
        # No await from here to the inserts: a membership change handled meanwhile is seen.
        now = trio.current_time()
        dropped: list[int] = []
        for company_id in mine:
            epoch = epochs.get(company_id)  # missing: the company was deleted meanwhile
            try:
                winner = self._winner(company_id)
            except MembershipLost:
                winner = self.node_id  # counted out meanwhile: keep none of them
            if epoch is None or winner is not None:
                dropped.append(company_id)
                continue
            self.owned[company_id] = OwnedClaim(epoch, taken=now)
            if epoch > 1:  # another node (or an earlier run of this one) held it before
                self._moved(company_id, to_node=self.node_id, epoch=epoch)
        await self._release(dropped)

    def _moved(self, company_id: int, **fields: object) -> None:
        """The operators' ``ownership_moved`` line for a move that took effect here (no
        request causes one)."""
        with serving_request(None):
            log_event(BusinessEvent.OWNERSHIP_MOVED, company_id, **fields)

    async def place_for_actor(self, company_id: int) -> str | None:
        """:meth:`place` as a company actor's start calls it (:attr:`CompanyDeps.place`). An
        actor started here for a company owned elsewhere refuses its first message and stops;
        one started without a message (an activation that raced a handover) would linger with
        no session: it is stopped after :data:`LINGER_GRACE`, or at once when this node takes
        the company (:meth:`place_to_restore`)."""
        owner = await self.place(company_id)
        if owner is None:
            self._elsewhere_actors.discard(company_id)
        else:
            self._elsewhere_actors.add(company_id)
            if self._nursery is not None:
                self._nursery.start_soon(self._stop_lingering, company_id)
        return owner

    async def _stop_lingering(self, company_id: int) -> None:
        await trio.sleep(LINGER_GRACE)
        if company_id in self._elsewhere_actors:
            await self.registry.stop(company_id)

    async def _stop_refused(self, company_id: int) -> None:
        """Stop an actor of the company that started here while another node owned it."""
        if company_id in self._elsewhere_actors and self.registry.lookup(company_id) is not None:
            await self.registry.stop(company_id)

    async def place_to_restore(self, company_id: int) -> str | None:
        """:meth:`place` for the restore: a company this node wins but whose claim the
        previous owner still held is tried again at every heartbeat until taken."""
        await self._stop_refused(company_id)  # its actor is activated after this
        try:
            owner = await self.place(company_id)
        except MembershipLost:
            raise  # the rebalance once this node is current again tries it
        except StorageError:
            self.wanted.add(company_id)  # a blip: tried again at the next heartbeat
            raise
        if owner is not None and self._winner(company_id) is None:
            self.wanted.add(company_id)
        return owner

    def storage_for(self, company_id: int) -> Storage:
        """The storage a company's actor starting here writes through: fenced by the epoch of
        the claim this node holds (:attr:`CompanyDeps.fence`). Once another node took the
        claim every write is refused, and the actor is stopped."""
        claim = self.owned.get(company_id)
        # Not held (cannot happen right after place()): an epoch no take ever returns.
        epoch = claim.epoch if claim is not None else -1
        return self.storage.fenced(company_id, epoch, self._refused)

    def _refused(self, company_id: int, epoch: int) -> None:
        """A fenced write of the actor holding ``epoch`` was refused: another node took the
        claim. Forget the claim and stop the actor (unless it was retaken since)."""
        claim = self.owned.get(company_id)
        if claim is not None and claim.epoch > epoch:
            return  # an older incarnation's write; the actor restarts with the newer epoch
        held = self.owned.pop(company_id, None)
        log.warning(
            "company %s: a write with epoch %d was refused (another node owns it); "
            "stopping its actor",
            company_id,
            epoch,
        )
        if held is not None:  # the first refused write of this claim: the move took effect
            self._moved(company_id, from_node=self.node_id, epoch=epoch, reason="fenced")
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

    async def _release(self, company_ids: list[int]) -> None:
        """Give claims back (bounded, shielded, best effort: a claim left behind is free to
        take anyway once this node is no longer a member)."""
        if not company_ids:
            return
        released = False
        with trio.move_on_after(RELEASE_TIMEOUT) as scope:
            scope.shield = True
            try:
                await self.storage.leases.release_all(company_ids, self.node_id)
                released = True
            except StorageError as exc:
                log.warning(
                    "node %s: %d claims not released: %s", self.node_id, len(company_ids), exc
                )
        if not released:
            self._stale.update(company_ids)  # given back later (:meth:`_release_stale`)

    async def _release_stale(self) -> None:
        """Give back the claims this node still holds in Redis for companies it no longer
        owns (a release that failed, or the node counted itself out) once another node wins
        them; a winner would otherwise wait until this node leaves."""
        self._stale.difference_update(self.owned)
        if not self._stale or not self.membership.current:
            return
        others = [
            company_id
            for company_id in self._stale
            if company_id not in self._taking
            and company_id not in self._moving
            and self._winner(company_id) is not None
        ]
        if not others:
            return
        self._stale.difference_update(others)
        # A take of one of them meanwhile (the members changed during the release) waits for
        # it: the release would otherwise delete the claim that take had just made.
        released = trio.Event()
        for company_id in others:
            self._moving[company_id] = released
        try:
            await self._release(others)
        finally:
            for company_id in others:
                if self._moving.get(company_id) is released:
                    del self._moving[company_id]
            released.set()

    # -- membership changes ----------------------------------------------------------------

    def _members_changed(
        self, before: dict[str, str], after: dict[str, str], recovered: bool
    ) -> None:
        """Hand over the companies another node now wins; after a member left (or this node
        joined or came back) look for linked companies this node now wins."""
        lost = [cid for cid in self.owned if self._winner(cid) is not None]
        for company_id in lost:
            del self.owned[company_id]
            self._moving[company_id] = trio.Event()
        if lost and self._nursery is not None:
            self._nursery.start_soon(self._hand_over, lost)
        # (Not on the first heartbeat: the node's start-up restore does that.)
        if (recovered and before) or set(before) - set(after):
            self._rebalance_due.set()

    async def _hand_over(self, company_ids: list[int]) -> None:
        """Stop the actors of companies another node now wins, releasing each claim as soon
        as its actor stopped (the winner may take it then), then tell the other nodes."""
        limiter = trio.CapacityLimiter(STOP_CONCURRENCY)

        async def move(company_id: int) -> None:
            try:
                async with limiter:
                    await self.registry.stop(company_id)
                    await self.registry.wait_stopped(company_id)  # also when it was stopping
                    await self._release([company_id])
                self.handed_over += 1
                self._moved(company_id, from_node=self.node_id, reason="handover")
            finally:
                moving = self._moving.pop(company_id, None)
                if moving is not None:
                    moving.set()

        async with trio.open_nursery() as nursery:
            for company_id in company_ids:
                nursery.start_soon(move, company_id)
        await self.membership.announce("moved")  # the winners activate what they gained

    def _rebalance_due_now(self) -> None:
        self._rebalance_due.set()

    def _membership_lost(self) -> None:
        """This node counted itself out: stop every actor it owns before the others may
        take them over."""
        lost = list(self.owned)
        self.owned.clear()
        self.wanted.clear()
        self._stale.update(lost)  # Redis still names this node: released once it is back
        for company_id in lost:
            self._stop_soon(company_id)

    async def _rebalancer(self) -> None:
        """Run the restore when the members changed; retry the wanted companies each tick."""
        while True:
            with trio.move_on_after(self.membership.beat_every):
                await self._rebalance_due.wait()
            if self._rebalance_due.is_set():
                self._rebalance_due = trio.Event()
                if self.restore is not None and self.membership.current:
                    try:
                        await self.restore()
                    except Exception:
                        log.exception("node %s: the rebalance failed", self.node_id)
            await self._retry_wanted()
            await self._release_stale()
            self._sweep_viewers()

    async def _retry_wanted(self) -> None:
        """Try once more (no waiting for a release) each linked company this node wins but
        could not take yet; a few at a time."""
        limiter = trio.CapacityLimiter(RETRY_CONCURRENCY)

        async def retry(company_id: int) -> None:
            async with limiter:
                try:
                    await self._stop_refused(company_id)
                    if await self._place(company_id, wait=0.0) is None:
                        await self.registry.activate(company_id)
                    elif self._winner(company_id) is None:
                        self.wanted.add(company_id)  # its previous owner still holds it
                except MembershipLost as exc:
                    log.warning("company %s: not taken over yet: %s", company_id, exc)
                except StorageError as exc:
                    self.wanted.add(company_id)  # a blip: tried again at the next heartbeat
                    log.warning("company %s: not taken over yet: %s", company_id, exc)
                except ActorError as exc:
                    log.warning("company %s: not taken over yet: %s", company_id, exc)

        wanted, self.wanted = self.wanted, set()
        async with trio.open_nursery() as nursery:
            for company_id in wanted:
                nursery.start_soon(retry, company_id)

    def _sweep_viewers(self) -> None:
        now = trio.current_time()
        for viewer_id, (company_id, viewer, seen) in list(self.remote.items()):
            if now - seen > REMOTE_VIEWER_TTL:
                self.remote.pop(viewer_id, None)
                with contextlib.suppress(ActorError):
                    self.registry.ref(company_id).tell(m.Unsubscribe(viewer))

    async def leave(self) -> None:
        """Hand every company over (a graceful stop; bounded, shielded): take no new ones,
        mark this node *draining* (the others leave it out of the placement at once, while
        its claims stay valid), and release each company's claim as soon as its actor stopped,
        so the winner takes it then and a slow actor delays only its own company. The
        membership ends once every claim is released, or after :attr:`leave_grace`.
        Idempotent: a second call waits for the first one to end."""
        if self._left is not None:
            with trio.move_on_after(self.leave_grace + 3 * RELEASE_TIMEOUT) as scope:
                scope.shield = True
                await self._left.wait()
            return
        self._left = trio.Event()
        try:
            self.membership.leaving = True
            owned = list(self.owned)
            self.owned.clear()
            self.wanted.clear()
            remaining = set(owned)
            with trio.move_on_after(self.leave_grace) as scope:
                scope.shield = True
                await self.membership.drain()
                await self._hand_over_all(owned, remaining)
            if scope.cancelled_caught:
                log.warning(
                    "node %s: %d actors still stopping after %g s; leaving anyway",
                    self.node_id,
                    len(remaining),
                    self.leave_grace,
                )
            await self.membership.leave()
            left_behind = sorted(remaining)
            await self._release(left_behind)
            for company_id in left_behind:
                self._moved(company_id, from_node=self.node_id, reason="leave")
            await self.membership.announce("leave")
            log.info("node %s: left the cluster, %d salons handed over", self.node_id, len(owned))
        finally:
            self._left.set()

    async def _hand_over_all(self, owned: list[int], remaining: set[int]) -> None:
        """Stop the actors of a draining node, releasing each claim as soon as its actor
        stopped (dropped from ``remaining``); the others hear of the releases when the fast
        ones are done (or :data:`HANDOVER_TIMEOUT` passed), then of each slow one's."""
        limiter = trio.CapacityLimiter(STOP_CONCURRENCY)
        done = trio.Event()
        late = False

        async def move(company_id: int) -> None:
            async with limiter:
                await self.registry.stop(company_id)
                await self.registry.wait_stopped(company_id)  # also when it was stopping
                await self._release([company_id])
            remaining.discard(company_id)
            self._moved(company_id, from_node=self.node_id, reason="leave")
            if late:
                await self.membership.announce("moved")
            if not remaining:
                done.set()

        async with trio.open_nursery() as nursery:
            for company_id in owned:
                nursery.start_soon(move, company_id)
            # Takes and handovers under way end first, while this node is a member: a take's
            # epoch bump landing after another node took the company over would fence that
            # owner's actor out.
            for busy in [*self._taking.values(), *self._moving.values()]:
                nursery.start_soon(busy.wait)
            if remaining:
                with trio.move_on_after(HANDOVER_TIMEOUT):
                    await done.wait()
            if remaining:
                late = True
                log.warning(
                    "node %s: %d actors still stopping after %g s; each salon is handed over "
                    "once its actor stopped",
                    self.node_id,
                    len(remaining),
                    HANDOVER_TIMEOUT,
                )
            await self.membership.announce("moved")

    def leave_soon(self) -> None:
        """Start :meth:`leave` in the placement's own task (the server calls this as its
        shutdown begins, so the salons move while open requests drain)."""
        if self._nursery is not None and self._left is None:
            self._nursery.start_soon(self.leave)

    async def _release_on_exit(self) -> None:
        """Leave without stopping actors (the node's tree is stopping them already)."""
        if self._left is not None:
            return
        self._left = trio.Event()
        owned = list(self.owned)
        self.owned.clear()
        await self.membership.leave()
        await self._release(owned)
        for company_id in owned:
            self._moved(company_id, from_node=self.node_id, reason="leave")
        await self.membership.announce("leave")
        self._left.set()

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
        if op is ViewerOp.CONVERSATION_CHANGED and command.phone is not None:
            # Only a running actor has viewers to tell: never activate one for this.
            running = self.registry.lookup(company_id)
            if running is not None:
                with contextlib.suppress(ActorError):
                    running.tell(m.ConversationChanged(command.phone))
            return
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
            if op in (ViewerOp.WATCH, ViewerOp.WATCH_SALON):
                entry = self.remote.get(viewer_id)
                if entry is not None:
                    self.remote[viewer_id] = (entry[0], entry[1], trio.current_time())
                    return
                viewer = RemoteViewer(self, company_id, viewer_id)
                self.remote[viewer_id] = (company_id, viewer, trio.current_time())
                events = m.SALON_EVENTS if op is ViewerOp.WATCH_SALON else None
                for frame in await ref.ask(m.Subscribe(viewer, events)):
                    self.publish_nowait(company_id, frame, to=viewer_id)
            elif op is ViewerOp.UNWATCH:
                entry = self.remote.pop(viewer_id, None)
                if entry is not None:
                    ref.tell(m.Unsubscribe(entry[1]))
            elif op is ViewerOp.REQUEST_QR:
                with serving_request(command.request_id):  # the socket's, in the actor's log
                    request_qr = m.RequestQr()
                self._report(company_id, viewer_id, await ref.ask(request_qr))
            elif op is ViewerOp.REQUEST_PAIRING_CODE and command.phone is not None:
                with serving_request(command.request_id):
                    request_code = m.RequestPairingCode(command.phone)
                self._report(company_id, viewer_id, await ref.ask(request_code))
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
        """Heartbeat, publish frames, rebalance and serve commands until cancelled; then end
        the membership and release the claims (if :meth:`leave` did not already)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.membership.run)
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._rebalancer)
                await nursery.start(self._listen)
                task_status.started()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._release_on_exit()
