"""Membership: which server processes of a cluster are alive, and whether this one still is.

Each process (a *node*) heartbeats its own membership in Redis every third of the member TTL
(``AIADMIN_MEMBER_TTL``, :data:`MEMBER_TTL` s by default): one call
(:meth:`storage.Leases.heartbeat`) refreshes ``member:{node}`` (its advertised URL,
``AIADMIN_ADVERTISE_URL``) and reads every live member back, so renewal traffic is
O(processes), never O(salons). A node that stops heartbeating (kill -9, a cut network) is gone
once its key expired, at most one TTL after its last heartbeat.

A heartbeat that failed is tried again every twelfth of the TTL. A node that could not
heartbeat for two thirds of the TTL (timed from when its last successful
heartbeat was *sent*, on trio's clock) counts itself out (:attr:`Membership.current` turns
false, ``on_lost`` runs) a third of the TTL before the others may count it gone. A node that
joins, drains or leaves says so on the pub/sub channel :data:`MEMBERS_CHANNEL`; the others
heartbeat at once instead of at their next tick, so a graceful stop is noticed in milliseconds.
A *draining* node (:meth:`Membership.drain`, a graceful stop under way) heartbeats with
``draining=True``: it is left out of every node's members, but Redis still counts it a member
for the claims' compare-and-set, so the claims it holds stay its own until it releases them
or leaves (:meth:`Membership.leave`). A node that
handed salons over to others announces ``"moved"`` there, and the others look for salons to
take (``on_moved``).

**Redis losing its data.** A heartbeat sent within a TTL of the last one that succeeded only
*renews* the key (``renew=True``): if the key is gone anyway (Redis restarted without
persistence, or its clock jumped past the TTL), the node counts itself out at once, is a
member again from its next heartbeat (so the others leave its share alone), but owns and takes
nothing for one TTL (:attr:`Membership.out_until`). Every other node lost its key too and
finds out at its own next heartbeat (a third of the TTL), so by the time any node takes a
salon again its previous owner stopped it. What this cannot see: a node whose key survived,
or one that joins fresh (its first heartbeat, or after more than a TTL without one), cannot
tell an owner that vanished in such a loss from one that died, and takes its salons at once;
the owner stops at its next heartbeat, and the epoch fencing refuses its writes meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from storage import Storage, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

#: The default member TTL (seconds); ``Settings.member_ttl`` sets it per node.
MEMBER_TTL = 6.0
#: Joins, leaves and handovers are announced here (``{"node": id, "event": "join" | "drain" |
#: "leave" | "moved"}``).
MEMBERS_CHANNEL = "cluster:members"
#: The longest leaving (deleting the heartbeat, announcing it) may take.
LEAVE_TIMEOUT = 2.0

#: Called after a heartbeat that changed the set of live members (or the first, or one after
#: the node had counted itself out): ``(before, after, recovered)``.
OnChange = Callable[[dict[str, str], dict[str, str], bool], None]


class MembershipLost(StorageUnavailable):
    """This node could not heartbeat its membership in time: it may own no salon until it
    can again (a 503 upstream, like any unreachable store)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__("redis", f"node {node_id} is not a current cluster member")


class Membership:
    """One node's heartbeat and its view of the live members (see the module doc)."""

    def __init__(
        self,
        node_id: str,
        address: str,
        storage: Storage,
        *,
        ttl: float = MEMBER_TTL,
        on_change: OnChange | None = None,
        on_lost: Callable[[], None] | None = None,
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.node_id = node_id
        self.address = address
        self.storage = storage
        self.ttl = ttl
        self.on_change = on_change
        self.on_lost = on_lost
        #: Called when another node announces it handed salons over (``"moved"``).
        self.on_moved = on_moved
        #: Heartbeat every third of the TTL (timed from each heartbeat's start).
        self.beat_every = ttl / 3
        #: A failed heartbeat is tried again this soon (a twelfth of the TTL), until the node
        #: counts itself out: Redis failing calls for less than ``give_up_after - beat_every
        #: - retry_every`` (1.5 s at a 6 s TTL), whenever it starts, costs the node nothing
        #: (a call left unanswered still waits up to ``beat_every`` before it fails).
        self.retry_every = ttl / 12
        #: Count itself out once this long passed without a heartbeat that succeeded: a third
        #: of the TTL is left for its actors to stop before the others may count it gone.
        self.give_up_after = ttl * 2 / 3
        #: How often the guard looks at the time since the last heartbeat.
        self.check_every = ttl / 30
        #: The live members (node id → advertised URL) as the last heartbeat read them.
        self.members: dict[str, str] = {}
        #: Trio time the last heartbeat that succeeded was sent (``None``: none yet).
        self.beaten: float | None = None
        #: Counted out: no heartbeat yet, or none for ``give_up_after`` seconds.
        self.lost = True
        #: Set by :meth:`drain` (or :meth:`leave`): the node hands its salons over and takes
        #: no new ones; it heartbeats as *draining* until it left.
        self.leaving = False
        #: Set by :meth:`leave`: the membership ended, no more heartbeats.
        self.left = False
        #: Heartbeats that succeeded (each one Redis call).
        self.beats = 0
        #: Heartbeats that found this node's key gone before its TTL ran out.
        self.lapses = 0
        #: Trio time until which a node whose key lapsed owns nothing (``None``: not held).
        self.out_until: float | None = None
        self._poke = trio.Event()

    @property
    def current(self) -> bool:
        """Whether this node may own salons now: it heartbeat within ``give_up_after``
        seconds and is not leaving."""
        if self.leaving or self.lost or self.beaten is None:
            return False
        return trio.current_time() - self.beaten <= self.give_up_after

    def poke(self) -> None:
        """Heartbeat (and read the members) now rather than at the next tick."""
        self._poke.set()

    async def beat(self) -> bool:
        """One heartbeat (one Redis call, bounded by ``beat_every``); ``True`` if it
        succeeded. Runs ``on_change`` when the set of live members changed."""
        if self.left:
            return False
        # A process paused past give_up_after (SIGSTOP, a VM migration) may run this before
        # the guard: it must count itself out before a heartbeat makes it current again.
        self._check()
        sent = trio.current_time()
        # Its key should still be in Redis (sent within a TTL of the last heartbeat): renew
        # it only, so a key Redis lost is noticed instead of silently created again.
        renew = self.beaten is not None and sent - self.beaten < self.ttl
        try:
            with trio.fail_after(self.beat_every):
                members = await self.storage.leases.heartbeat(
                    self.node_id, self.address, self.ttl, renew=renew, draining=self.leaving
                )
        except (StorageError, trio.TooSlowError) as exc:
            log.warning("node %s: membership heartbeat failed: %s", self.node_id, exc or "slow")
            return False
        if self.left:
            return False
        self._check()  # paused while waiting for the reply: counted out first, as above
        if self.node_id not in members and not self.leaving:
            self._lapsed()
            return False
        self.beats += 1
        self.beaten = sent if self.beaten is None else max(self.beaten, sent)
        if self.out_until is not None:
            if sent < self.out_until:
                return True  # a member again (its share stays its own), but owns nothing yet
            self.out_until = None
        before, recovered = self.members, self.lost
        self.members = members
        self.lost = False
        if recovered or set(before) != set(members):
            if set(before) != set(members):
                log.info("node %s: cluster members now %s", self.node_id, sorted(members))
            if self.on_change is not None:
                self.on_change(before, members, recovered)
        if recovered and not self.leaving:  # joined, or back after counting itself out
            await self.announce("join")
        return True

    def _lapsed(self) -> None:
        """Redis no longer had this node's key although it heartbeat within the TTL (Redis
        restarted without its data, or its clock jumped): the others' keys are gone too, and
        a node that took salons now could take some another node still runs. Count itself
        out now; the next heartbeat makes it a member again (so the others leave its share
        alone), but it owns and takes nothing for one TTL: by then every other node that
        still ran salons has heartbeat, found its own key gone and counted itself out."""
        self.lapses += 1
        self.out_until = trio.current_time() + self.ttl
        self.beaten = None
        log.warning(
            "node %s: its membership key was gone before its TTL ran out (Redis lost its "
            "data, or its clock jumped); giving up its salons, taking none for %g s",
            self.node_id,
            self.ttl,
        )
        if not self.lost:
            self.lost = True
            if self.on_lost is not None:
                self.on_lost()

    def _check(self) -> None:
        """Count this node out once ``give_up_after`` passed since the last heartbeat."""
        if self.lost or self.beaten is None:
            return
        unbeaten = trio.current_time() - self.beaten
        if unbeaten > self.give_up_after:
            self.lost = True
            log.warning(
                "node %s: no membership heartbeat for %.1f s (TTL %g s); giving up its salons "
                "before the others count it gone",
                self.node_id,
                unbeaten,
                self.ttl,
            )
            if self.on_lost is not None:
                self.on_lost()

    async def _guard(self) -> None:
        while True:
            await trio.sleep(self.check_every)
            self._check()

    async def _beat_loop(self) -> None:
        """Heartbeat ``beat_every`` after the previous one started (its reply's latency does not
        push the next one later), or ``retry_every`` after one that failed: waiting a whole
        period after a failure left the next try just past ``give_up_after``, so a single
        failed heartbeat counted the node out."""
        due = trio.current_time() + self.beat_every
        while not self.left:
            with trio.move_on_at(due):
                await self._poke.wait()
            self._poke = trio.Event()
            started = trio.current_time()
            beaten = await self.beat()
            due = started + (self.beat_every if beaten else self.retry_every)

    async def _listen(self) -> None:
        """Heartbeat at once when another node joins or leaves; resubscribe while Redis is
        down (every heartbeat period)."""
        while True:
            try:
                async with self.storage.pubsub.subscribe(MEMBERS_CHANNEL) as notices:
                    async for notice in notices:
                        if not isinstance(notice, dict) or notice.get("node") == self.node_id:
                            continue
                        if notice.get("event") == "moved":
                            if self.on_moved is not None:
                                self.on_moved()
                        else:
                            self.poke()
            except StorageError as exc:
                log.warning("node %s: membership notices lost: %s", self.node_id, exc)
            await trio.sleep(self.beat_every)

    async def announce(self, event: str) -> None:
        """Tell the other nodes that this one joined or left (best effort, bounded)."""
        with trio.move_on_after(LEAVE_TIMEOUT) as scope:
            scope.shield = True  # also on the way out of a cancelled node
            try:
                await self.storage.pubsub.publish(
                    MEMBERS_CHANNEL, {"node": self.node_id, "event": event}
                )
            except StorageError as exc:
                log.warning("node %s: %s not announced: %s", self.node_id, event, exc)

    async def drain(self) -> None:
        """Start a graceful stop (best effort, bounded, shielded): heartbeat as *draining*
        now, so every node leaves this one out of the placement at once, and announce it; the
        claims it holds stay its own (it is still a member) until it released them or left."""
        self.leaving = True
        with trio.move_on_after(LEAVE_TIMEOUT) as scope:
            scope.shield = True
            await self.beat()
        await self.announce("drain")

    async def leave(self) -> None:
        """End the membership now (best effort, bounded, shielded): the heartbeat stops and
        its key is deleted, so its claims are free to take at once."""
        self.leaving = True
        self.left = True
        self._poke.set()
        with trio.move_on_after(LEAVE_TIMEOUT) as scope:
            scope.shield = True
            try:
                await self.storage.leases.leave(self.node_id)
            except StorageError as exc:
                log.warning("node %s: membership not ended: %s", self.node_id, exc)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, guard and listen until cancelled. Started once the first heartbeat was
        tried (the node serves even while Redis is down, as not :attr:`current`)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen)
            await self.beat()
            nursery.start_soon(self._guard)
            nursery.start_soon(self._beat_loop)
            task_status.started()
