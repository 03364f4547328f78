"""The node: storage, the WhatsApp gateway, and the supervision tree of company actors.

Built in two steps so that services can get a way to reach company actors in their
constructors: :func:`build_companies` makes the company side (the registry of company actors,
their metrics, cluster placement) without running anything; the composition root builds the
node's :class:`~actors.Services` with it; :meth:`Companies.open_node` (or :func:`open_node`,
which does both steps for a node without services) starts the root supervisor (``node``)
with the company registry as its first child and the services after it, and yields it at once
while every company whose WhatsApp is linked is activated in the background, a bounded number
at a time (:mod:`actors._restore`), so their sessions come back after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from config import Settings
from metrics import MetricsRegistry
from runtime import (
    ActorError,
    ActorRef,
    ChildSpec,
    NodeSnapshot,
    Registry,
    Restart,
    RestartPolicy,
    Service,
    Supervisor,
    run_root,
)
from storage import Storage

from ._placement import LEAVE_SHARE, Placement
from ._restore import Restore, RestoreProgress
from ._services import NO_SERVICES, Services
from .company import CompanyActor, CompanyDeps, CompanyMetrics, InboundHandler, record_only
from .whatsapp import SimulatedWorld, WhatsAppGateway

if TYPE_CHECKING:
    from .assistant import Assistant, AssistantOptions
    from .reminders import (
        ReminderOptions,
        ReminderPlanner,
        ReminderReplanner,
        ReminderScheduler,
    )

log = logging.getLogger(__name__)

COMPANY_MAILBOX = 256
#: The child id of the assistant's housekeeping (``actors.assistant._sweep``).
SWEEP_CHILD = "conversations.sweep"
#: How long the assistant waits for the company actor to queue a reply.
REPLY_QUEUE_TIMEOUT = 10.0
#: The child id of the reminder scheduler (``actors.reminders._scheduler.REMINDERS_CHILD``).
REMINDERS_CHILD = "reminders.scheduler"
#: The child id of the re-planning after settings changes (``actors.reminders._replan``).
REPLAN_CHILD = "reminders.replan"
#: How long the reminder scheduler may take to stop (rows it held are claimed again later).
REMINDERS_SHUTDOWN = 5.0


def supervisor_policy(settings: Settings) -> RestartPolicy:
    """The runtime's restart policy from the node's settings."""
    s = settings.supervisor
    return RestartPolicy(
        max_restarts=s.max_restarts,
        period=s.period,
        backoff_initial=s.backoff_initial,
        backoff_max=s.backoff_max,
        stable_after=s.stable_after,
        quarantine_retry=s.quarantine_retry,
    )


@dataclass
class Node:
    """What the web layer talks to: refs to company actors, storage, health, metrics, and the
    node's typed services."""

    settings: Settings
    storage: Storage
    gateway: WhatsAppGateway
    registry: Registry[int]
    supervisor: Supervisor
    metrics: MetricsRegistry
    company_metrics: CompanyMetrics
    failure: BaseException | None = None
    #: The start-up restore's progress (``/health/ready`` reports it until it is done).
    restore: RestoreProgress = field(default_factory=RestoreProgress)
    #: The node's services, built by the composition root (the same object the app serves).
    services: Services = NO_SERVICES
    #: This node's id in cluster membership and ``owner:{company_id}`` claims.
    node_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Placement of company actors between processes (``cluster=True``), or
    #: ``None`` when the node runs alone and every company's actor is local.
    placement: Placement | None = None
    #: The assistant (its registry of conversation actors), when the node runs one.
    assistant: Assistant | None = None
    #: The reminder scheduler (a child of the tree), when the node sends reminders.
    reminders: ReminderScheduler | None = None
    #: Re-plans a salon's stored visits after its settings changed (a child of the tree),
    #: when the node sends reminders.
    replanner: ReminderReplanner | None = None

    @property
    def restored(self) -> int:
        """How many linked companies the start-up restore activated here so far."""
        return self.restore.restored

    async def restore_done(self) -> None:
        """Wait until the start-up restore has tried every linked company (at once when the
        node was opened without one)."""
        await self.restore.finished.wait()

    def company(self, company_id: int) -> ActorRef:
        """A ref to the company's actor (activated on the first message)."""
        return self.registry.ref(company_id)

    async def place(self, company_id: int) -> str | None:
        """Where the company's actor runs: ``None`` here (the claim is taken or kept, so the
        caller may activate it), else the id of the node that owns it (cluster mode only)."""
        if self.placement is None:
            return None
        return await self.placement.place(company_id)

    @property
    def world(self) -> SimulatedWorld | None:
        """The simulated WhatsApp, when that is the backend (development, tests)."""
        world = getattr(self.gateway, "world", None)
        return world if isinstance(world, SimulatedWorld) else None

    @property
    def healthy(self) -> bool:
        return self.failure is None

    def _failed(self, exc: BaseException) -> None:
        self.failure = exc

    def snapshot(self) -> NodeSnapshot:
        return self.supervisor.snapshot()

    def tree(self) -> dict[str, Any]:
        """The supervision tree as JSON, with the WhatsApp gateway's hosts beside it."""
        data = self.snapshot().to_json()
        if self.reminders is not None:  # its backlog and next due time beside its state
            for child in data["children"]:
                if child["id"] == REMINDERS_CHILD:
                    child["reminders"] = self.reminders.status().to_json()
        gateway = self.gateway.snapshot()
        data["children"].append(
            {
                "id": "whatsapp",
                "kind": f"gateway:{gateway.backend}",
                "state": "running" if gateway.healthy else "failed",
                "restarts": sum(h.restarts for h in gateway.hosts),
                "last_error": gateway.problem,
                "started_at": None,
                "uptime_seconds": None,
                "mailbox": None,
                "handled": 0,
                "next_restart_in": None,
                "stop_timed_out": False,
                "sessions": gateway.sessions,
                "children": [
                    {
                        "id": f"host-{h.index}",
                        "kind": "session-host",
                        "state": h.state,
                        "pid": h.pid,
                        "restarts": h.restarts,
                        "sessions": h.sessions,
                        "capacity": h.capacity,
                        "last_error": (
                            None
                            if h.last_exit is None
                            else {"type": "exit", "message": h.last_exit}
                        ),
                        "children": [],
                    }
                    for h in gateway.hosts
                ],
            }
        )
        return data

    def restarts_total(self) -> int:
        return sum(n.restarts for n in self.snapshot().walk())

    async def restore_in_background(self) -> None:
        """:meth:`restore_linked` as the node's background task: a bug in it marks the node
        failed (``/health`` degraded, ``/health/ready`` not ready) instead of stopping the
        node that already serves."""
        try:
            await self.restore_linked()
        except Exception as exc:
            log.exception("the start-up restore failed")
            self._failed(exc)

    async def restore_linked(
        self,
        progress: RestoreProgress | None = None,
        place: Callable[[int], Awaitable[str | None]] | None = None,
        concurrency: int | None = None,
    ) -> int:
        """Activate every linked company (its actor restores the session), at most
        ``settings.restore_concurrency`` at once; returns how many were restored here.

        Progress is kept in :attr:`restore`. Companies another node owns are left to it
        (cluster mode). With the assistant, the conversations of each company restored here
        that hold an unsettled booking are woken once its actor runs
        (``ConversationSweep.wake_pending``). Companies a previous node left in ``linking`` (it
        died mid-scan) are activated after, not counted: the actor's start resets them to
        ``pending`` (``logged_out`` if they hold a device), so the stored status never claims
        a QR round that no longer runs.
        """
        after = None
        if self.assistant is not None:
            sweep = self.assistant.sweep

            async def after(company_id: int) -> object:
                # bookings a stopped node left unsettled: their conversations settle them now
                return await sweep.wake_pending([company_id])

        if place is None:
            place = self.place if self.placement is None else self.placement.place_to_restore
        restore = Restore(
            self.storage,
            self.registry,
            place,
            concurrency or self.settings.restore_concurrency,
            after=after,
            prepare=None if self.placement is None else self.placement.take_many,
            progress=progress or self.restore,
        )
        return await restore.run()

    async def rebalance(self) -> int:
        """Cluster mode, after the members changed: activate the linked companies this node
        now wins and does not run yet, as the start-up restore does (its own progress)."""
        placement = self.placement
        if placement is None:
            return 0

        async def place_new(company_id: int) -> str | None:
            if company_id in placement.owned and self.registry.lookup(company_id) is not None:
                return self.node_id  # runs here already: nothing to do (counted "elsewhere")
            return await placement.place_to_restore(company_id)

        # ``settings.rebalance_concurrency`` at once: a killed node's salons are down until then.
        concurrency = self.settings.rebalance_concurrency
        return await self.restore_linked(RestoreProgress(), place_new, concurrency)


@dataclass(frozen=True)
class Companies:
    """The company side of a node, built before it runs (:func:`build_companies`).

    Services that talk to company actors get :meth:`ask` (or the registry) in their
    constructors; :meth:`open_node` then runs the node with those services.
    """

    settings: Settings
    storage: Storage
    gateway: WhatsAppGateway
    registry: Registry[int]
    metrics: MetricsRegistry
    company_metrics: CompanyMetrics
    policy: RestartPolicy
    rng: random.Random
    node_id: str
    placement: Placement | None
    #: The assistant answering the salons' clients, or ``None`` (inbound messages are only
    #: logged).
    assistant: Assistant | None = None
    #: How the node plans and sends reminders and review requests, or ``None`` (it does not).
    reminder_options: ReminderOptions | None = None
    #: The reminder scheduler (run as the tree's child ``reminders.scheduler``), or ``None``.
    scheduler: ReminderScheduler | None = None
    #: Plans reminders from visits (record webhooks, own bookings, the sync), or ``None``.
    planner: ReminderPlanner | None = None
    #: Re-plans stored visits after a settings change (the tree's child ``reminders.replan``).
    replanner: ReminderReplanner | None = None

    async def ask(self, company_id: int, message: Any, timeout: float) -> Any:
        """Ask the company's actor (activated on the first message) and wait for its reply;
        raises as :meth:`runtime.ActorRef.ask` does (``AskTimeout``, ``ActorUnavailable`` ...)."""
        return await self.registry.ref(company_id).ask(message, timeout)

    @asynccontextmanager
    async def open_node(
        self, services: Services = NO_SERVICES, *, restore: bool = True
    ) -> AsyncIterator[Node]:
        """Run the node's supervision tree for the block's lifetime; stop it in reverse on exit.

        Children, in start order: the company registry, with the assistant its conversations
        registry and their housekeeping (``conversations.sweep``), with reminders their
        scheduler (``reminders.scheduler``) and re-planning (``reminders.replan``), then each of
        ``services`` (see :meth:`Services.children`). A service is an infrastructure child:
        restarted on a crash (``run`` again on the same object), escalating when it keeps
        crashing. ``restore`` activates the linked companies in the background once the tree
        runs: the node is yielded before they are (:meth:`Node.restore_done` waits for them;
        without ``restore`` it returns at once). Once the tree has stopped, the assistant's
        model client (its connection pool) is closed. One node per :class:`Companies`: its
        registry can run under one supervisor only.
        """
        children = [ChildSpec("companies", lambda: self.registry, shutdown=math.inf)]
        if self.assistant is not None:
            conversations = self.assistant.registry
            children.append(ChildSpec("conversations", lambda: conversations, shutdown=math.inf))
            children.append(ChildSpec(SWEEP_CHILD, _same(self.assistant.sweep)))
        if self.scheduler is not None:
            children.append(
                ChildSpec(REMINDERS_CHILD, _same(self.scheduler), shutdown=REMINDERS_SHUTDOWN)
            )
        if self.replanner is not None:
            children.append(ChildSpec(REPLAN_CHILD, _same(self.replanner)))
        for name, service in services.children():
            children.append(ChildSpec(name, _same(service)))
        supervisor = Supervisor("node", children, policy=self.policy, rng=self.rng)
        node = Node(
            self.settings,
            self.storage,
            self.gateway,
            self.registry,
            supervisor,
            self.metrics,
            self.company_metrics,
            services=services,
            node_id=self.node_id,
            placement=self.placement,
            assistant=self.assistant,
            reminders=self.scheduler,
            replanner=self.replanner,
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: run_root(
                        supervisor, on_failure=node._failed, task_status=task_status
                    )
                )
                if self.placement is not None:
                    self.placement.restore = node.rebalance
                    await nursery.start(self.placement.run)
                if restore:
                    nursery.start_soon(node.restore_in_background)
                else:
                    node.restore.finish()
                try:
                    yield node
                finally:
                    if self.placement is not None:  # hand the salons over before the tree stops
                        await self.placement.leave()
                    nursery.cancel_scope.cancel()
        finally:
            if self.assistant is not None:  # the tree has stopped: no conversation calls out
                with trio.CancelScope(shield=True):
                    await self.assistant.aclose()


def _same(service: Service) -> Callable[[], Service]:
    """A child factory that hands back the one long-lived service for every incarnation."""
    return lambda: service


def build_companies(
    settings: Settings,
    storage: Storage,
    gateway: WhatsAppGateway,
    *,
    inbound_handler: InboundHandler = record_only,
    metrics: MetricsRegistry | None = None,
    rng: random.Random | None = None,
    cluster: bool = False,
    node_id: str | None = None,
    assistant: AssistantOptions | None = None,
    reminders: ReminderOptions | None = None,
) -> Companies:
    """The company side of a node, not running yet: the registry of company actors (over
    ``storage`` and ``gateway``), their metrics in ``metrics``, and placement between
    processes (membership and claims, :mod:`actors._placement`) when ``cluster``.

    With ``assistant`` the node also runs the assistant: a registry of conversation actors
    (one per salon and client phone) that the company actors hand every client message to
    (instead of ``inbound_handler``), and whose replies go out through the company actors'
    outbound queues.

    With ``reminders`` the node also plans reminders and review requests from visits
    (``actors.reminders``) and runs their scheduler as a service of its supervision tree."""
    rng = rng or random.Random()
    metrics = metrics or MetricsRegistry()
    company_metrics = CompanyMetrics(metrics)
    deps = CompanyDeps(
        storage=storage,
        gateway=gateway,
        settings=settings,
        metrics=company_metrics,
        inbound_handler=inbound_handler,
        rng=rng,
    )
    policy = supervisor_policy(settings)
    node_id = node_id or uuid.uuid4().hex
    registry: Registry[int] = Registry(
        "companies",
        lambda company_id: CompanyActor(company_id, deps),
        idle_timeout=settings.passivate_after,
        policy=policy,
        restart=Restart.TRANSIENT,
        mailbox_capacity=COMPANY_MAILBOX,
        rng=rng,
    )
    placement = (
        Placement(
            node_id,
            storage,
            registry,
            member_ttl=settings.member_ttl,
            address=settings.advertise_url,
            leave_grace=settings.shutdown_grace * LEAVE_SHARE,
        )
        if cluster
        else None
    )
    if placement is not None:
        deps.publish = placement.publish_frame
        deps.place = placement.place_for_actor
        deps.fence = placement.storage_for
    planner: ReminderPlanner | None = None
    if reminders is not None:
        from .reminders import ReminderPlanner

        planner = ReminderPlanner(storage, wall_clock=reminders.wall_clock, metrics=metrics)
    helper: Assistant | None = None
    if assistant is not None:
        from .assistant import Assistant
        from .company import messages as m

        async def send_reply(company_id: int, phone: str, text: str) -> None:
            await registry.ref(company_id).ask(m.SendText(phone, text), REPLY_QUEUE_TIMEOUT)

        helper = Assistant.build(
            settings,
            storage,
            send_reply,
            assistant,
            metrics=metrics,
            policy=policy,
            rng=rng,
            planner=planner,
        )
        deps.inbound_handler = helper.handle_inbound

        def conversation_changed(company_id: int, phone: str) -> None:
            # Only a running actor has viewers to tell; never activate one for this.
            ref = registry.lookup(company_id)
            if ref is not None:
                with contextlib.suppress(ActorError):
                    ref.tell(m.ConversationChanged(phone))

        helper.deps.changed = conversation_changed
    scheduler: ReminderScheduler | None = None
    if reminders is not None:
        from .reminders import ReminderScheduler

        async def ask(company_id: int, message: Any, timeout: float) -> Any:
            return await registry.ref(company_id).ask(message, timeout)

        scheduler = ReminderScheduler(
            storage,
            ask,
            owner=node_id,
            options=reminders,
            metrics=metrics,
            place=None if placement is None else placement.place,
            assistant=helper,
            rng=rng,
        )
        if planner is not None:
            planner.notify = scheduler.announce  # an earlier row wakes every node's scheduler
    replanner: ReminderReplanner | None = None
    if planner is not None:
        from .reminders import ReminderReplanner

        replanner = ReminderReplanner(planner, metrics=metrics)
    return Companies(
        settings,
        storage,
        gateway,
        registry,
        metrics,
        company_metrics,
        policy,
        rng,
        node_id,
        placement,
        helper,
        reminder_options=reminders,
        scheduler=scheduler,
        planner=planner,
        replanner=replanner,
    )


@asynccontextmanager
async def open_node(
    settings: Settings,
    storage: Storage,
    gateway: WhatsAppGateway,
    *,
    inbound_handler: InboundHandler = record_only,
    metrics: MetricsRegistry | None = None,
    rng: random.Random | None = None,
    restore: bool = True,
    cluster: bool = False,
    node_id: str | None = None,
    assistant: AssistantOptions | None = None,
    reminders: ReminderOptions | None = None,
) -> AsyncIterator[Node]:
    """A node without services: :func:`build_companies` then :meth:`Companies.open_node`
    (tests and tools that need only the company actors, and the assistant if asked)."""
    companies = build_companies(
        settings,
        storage,
        gateway,
        inbound_handler=inbound_handler,
        metrics=metrics,
        rng=rng,
        cluster=cluster,
        node_id=node_id,
        assistant=assistant,
        reminders=reminders,
    )
    async with companies.open_node(restore=restore) as node:
        yield node
