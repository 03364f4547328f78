"""The node: storage, the WhatsApp gateway, and the supervision tree of company actors.

``open_node`` starts the root supervisor (``node``) with the company registry as its first
child, then activates every company whose WhatsApp is linked so their sessions come back after
a restart. Later workers (outbox delivery, webhook inbox, sync) join the tree as more children.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from config import Settings
from metrics import MetricsRegistry
from runtime import (
    ActorRef,
    ActorUnavailable,
    ChildSpec,
    NodeSnapshot,
    Registry,
    Restart,
    RestartPolicy,
    Service,
    Supervisor,
    run_root,
)
from storage import CompanyStatus, Storage

from ._placement import Placement
from .company import CompanyActor, CompanyDeps, CompanyMetrics, InboundHandler, record_only
from .whatsapp import SimulatedWorld, WhatsAppGateway

log = logging.getLogger(__name__)

COMPANY_MAILBOX = 256


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
    """What the web layer talks to: refs to company actors, storage, health, metrics."""

    settings: Settings
    storage: Storage
    gateway: WhatsAppGateway
    registry: Registry[int]
    supervisor: Supervisor
    metrics: MetricsRegistry
    company_metrics: CompanyMetrics
    failure: BaseException | None = None
    restored: int = 0
    #: Node-wide collaborators added by the services (e.g. ``"yclients"`` → the REST client).
    extensions: dict[str, Any] = field(default_factory=dict)
    #: This node's id in ``owner:{company_id}`` leases.
    node_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Lease-based placement of company actors between processes (``cluster=True``), or
    #: ``None`` when the node runs alone and every company's actor is local.
    placement: Placement | None = None

    def company(self, company_id: int) -> ActorRef:
        """A ref to the company's actor (activated on the first message)."""
        return self.registry.ref(company_id)

    async def place(self, company_id: int) -> str | None:
        """Where the company's actor runs: ``None`` here (the lease is taken or kept, so the
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

    async def restore_linked(self) -> int:
        """Activate every linked company (its actor restores the session); returns how many.

        Companies a previous node left in ``linking`` (it died mid-scan) are activated too, not
        counted: the actor's start resets them to ``pending`` (``logged_out`` if they hold a
        device), so the stored status never claims a QR round that no longer runs.
        """
        count = 0
        for company in await self.storage.companies.list_linked():
            try:
                if await self.place(company.id) is not None:
                    continue  # another node owns it and restores it
                await self.registry.activate(company.id)
                count += 1
            except ActorUnavailable as exc:
                log.warning("company %s could not be restored: %s", company.id, exc)
        self.restored = count
        after = 0
        while page := await self.storage.companies.list_by_status(
            CompanyStatus.LINKING, limit=500, after_id=after
        ):
            for company in page:
                try:
                    if await self.place(company.id) is not None:
                        continue
                    await self.registry.activate(company.id)
                except ActorUnavailable as exc:
                    log.warning("company %s: interrupted linking not reset: %s", company.id, exc)
            after = page[-1].id
        return count


def _build_service(build: Callable[[Node], Service], get_node: Callable[[], Node]) -> Service:
    return build(get_node())


@asynccontextmanager
async def open_node(
    settings: Settings,
    storage: Storage,
    gateway: WhatsAppGateway,
    *,
    inbound_handler: InboundHandler = record_only,
    metrics: MetricsRegistry | None = None,
    services: Sequence[tuple[str, Callable[[Node], Service]]] = (),
    rng: random.Random | None = None,
    restore: bool = True,
    cluster: bool = False,
    node_id: str | None = None,
) -> AsyncIterator[Node]:
    """Run the node's supervision tree for the block's lifetime; stop it in reverse on exit.

    ``services`` are ``(id, build)`` pairs: ``build(node)`` makes a long-running
    :class:`runtime.Service` (outbox delivery, webhook inbox, sync ...) started after the
    company registry, in order, and stopped before it.
    """
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
    node: Node
    children = [ChildSpec("companies", lambda: registry, shutdown=math.inf)]
    for name, build in services:
        # Each service is an infrastructure child: restarted on a crash, escalating when it
        # keeps crashing. It gets the node (storage, refs to company actors, extensions).
        children.append(ChildSpec(name, functools.partial(_build_service, build, lambda: node)))
    supervisor = Supervisor("node", children, policy=policy, rng=rng)
    placement = Placement(node_id, storage, registry) if cluster else None
    if placement is not None:
        deps.publish = placement.publish_frame
        deps.place = placement.place
    node = Node(
        settings,
        storage,
        gateway,
        registry,
        supervisor,
        metrics,
        company_metrics,
        node_id=node_id,
        placement=placement,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_root(
                supervisor, on_failure=node._failed, task_status=task_status
            )
        )
        if placement is not None:
            await nursery.start(placement.run)
        if restore:
            await node.restore_linked()
        try:
            yield node
        finally:
            nursery.cancel_scope.cancel()
