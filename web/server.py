"""The composition root: settings → storage → WhatsApp gateway → node → HTTP.

The node is built in two steps so that every service gets its collaborators in its
constructor: the company side (:func:`actors.build_companies`), then the node's typed
:class:`actors.Services` (:func:`node_services`), then the running node with those services;
the app serves the same services object (``node.services``).

Everything runs inside one ``trio_asyncio.open_loop()`` (asyncpg is asyncio-only) and is
served by ``hypercorn.trio.serve``. SIGINT/SIGTERM start a graceful shutdown bounded by
``AIADMIN_SHUTDOWN_GRACE`` seconds (``settings.shutdown_grace``): Hypercorn stops accepting,
open requests finish, the supervision tree stops in reverse order, storage closes; how the
grace is shared, and what happens when a step overruns, is in :mod:`web._shutdown`. In cluster
mode the node starts handing its salons over (``Placement.leave``) as the shutdown begins,
while open requests drain, so the other processes serve them within a fraction of a second.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import trio
import trio_asyncio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from actors import (
    BusinessEvent,
    Companies,
    Node,
    RetentionService,
    Services,
    build_companies,
    log_event,
)
from actors.assistant import AssistantOptions
from actors.reminders import ReminderOptions
from actors.whatsapp import open_gateway
from actors.yclients import YClientsClient, YClientsRateLimiter, yclients_services
from config import Settings
from storage import Conflict, Storage, open_storage

from ._app import create_app
from ._connection_guard import ConnectionGuard
from ._shutdown import ShutdownBound, http_grace
from ._urls import connect_url

log = logging.getLogger("aiadmin.server")

LISTEN_BACKLOG = 2048
DEMO_SALON_ID = 962302
#: Hypercorn's WebSocket message limit (characters of a text message, bytes of a binary one):
#: twice the largest frame the connect page's socket reads (``routes.websocket.MAX_FRAME``,
#: 4096; a test keeps the two in step, as only the app factory imports route modules).
WEBSOCKET_MAX_MESSAGE = 8192


@dataclass(frozen=True)
class ServerInfo:
    """What ``serve`` reports once it listens (tests and ``make run`` print from it)."""

    urls: tuple[str, ...]
    demo_connect_url: str | None = None
    demo_company_id: int | None = None


def hypercorn_config(settings: Settings) -> HypercornConfig:
    """Hypercorn's settings: bind, backlog, our own logs, and the limits on slow clients."""
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    # Hypercorn's default listen backlog (100) drops SYNs when many connect pages open at once
    # (clients then wait 1 s, 3 s, 7 s ... to retry); the kernel still caps it at somaxconn.
    config.backlog = LISTEN_BACKLOG
    config.accesslog = None  # our own access log redacts tokens; Hypercorn's would not
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = http_grace(settings.shutdown_grace)
    # A connection must deliver a complete request head within this many seconds of opening
    # or of its previous response (Hypercorn's idle timer; ConnectionGuard keeps it running
    # after every response), so a client dribbling header lines is dropped.
    config.keep_alive_timeout = settings.header_timeout
    # No read_timeout: Hypercorn applies it to every read, WebSockets included, and a connect
    # page listens for minutes without sending; slow request bodies are bounded where they are
    # read (web._validation.BODY_TIMEOUT).
    # Hypercorn buffers a whole WebSocket message before the app sees it: refuse (close 1009)
    # anything far above the connect page's own limit instead of buffering up to 16 MiB.
    config.websocket_max_message_size = WEBSOCKET_MAX_MESSAGE
    # No server pings: Hypercorn's ping task outlives a closed socket by up to one interval,
    # which holds up a graceful shutdown; a dead viewer is dropped by its full queue anyway.
    config.websocket_ping_interval = None
    config.include_server_header = False
    return config


async def register_demo_salon(node: Node) -> tuple[int, str]:
    """The embedded default's demo salon: registered once, a fresh connect URL each start."""
    storage = node.storage
    try:
        created = await storage.companies.create(
            DEMO_SALON_ID,
            title="Салон красоты «Лотос» (демо)",
            phone="79001234567",
            address="Москва, ул. Тверская, 7",
        )
        company = created.company
        log_event(BusinessEvent.SALON_REGISTERED, company.id, salon_id=DEMO_SALON_ID, via="demo")
    except Conflict:
        existing = await storage.companies.get_by_salon(DEMO_SALON_ID)
        assert existing is not None
        company = existing
    token = await storage.tokens.issue(company.id)
    return company.id, node.settings.public_base_url + connect_url(token, company)


@asynccontextmanager
async def open_yclients(
    settings: Settings, storage: Storage
) -> AsyncIterator[YClientsClient | None]:
    """The process's YClients client (behind the limiter shared through storage), or ``None``
    when no partner token is configured (development without YClients)."""
    if not settings.yclients_api_key:
        log.info("YClients is not configured (YCLIENTS_API_KEY): no activation callbacks")
        yield None
        return
    async with YClientsClient(
        settings.yclients_base_url,
        settings.yclients_api_key,
        settings.yclients_user_token,
        rate_limiter=YClientsRateLimiter(storage.rate_limiter),
    ) as client:
        yield client


def node_services(companies: Companies, yclients: YClientsClient | None) -> Services:
    """The node's services: YClients activation delivery and lifecycle handling when YClients
    is configured (activation needs ``YCLIENTS_APPLICATION_ID`` too); the record-webhook
    worker and the catalog sync always (they wait for YClients when it is not configured); the
    retention service always (``AIADMIN_RETENTION_DAYS``, ``AIADMIN_AUDIT_RETENTION_DAYS``)."""
    if yclients is not None and companies.settings.yclients_application_id is None:
        log.warning("YCLIENTS_APPLICATION_ID is not set: activation callbacks stay queued")
    retention = RetentionService(
        companies.storage,
        keep_days=companies.settings.retention_days,
        audit_keep_days=companies.settings.audit_retention_days,
    )
    return replace(yclients_services(companies, yclients), retention=retention)


async def serve(
    settings: Settings,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[ServerInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the whole server until ``shutdown_trigger`` returns (default: SIGINT/SIGTERM),
    then shut down within ``settings.shutdown_grace`` seconds (see :mod:`web._shutdown`).

    Past the grace, whatever still closes is cancelled; a process stopped by a signal (no
    ``shutdown_trigger``) that is still alive at the end of the grace exits at once.
    """
    bound = ShutdownBound(settings.shutdown_grace, hard_exit=shutdown_trigger is None)
    trigger = bound.trigger(shutdown_trigger or wait_for_signal)
    with bound.scope:
        async with trio_asyncio.open_loop():
            async with (
                open_storage(settings) as storage,
                open_gateway(settings) as gateway,
                open_yclients(settings, storage) as yclients,
            ):
                companies = build_companies(
                    settings,
                    storage,
                    gateway,
                    cluster=settings.cluster,
                    assistant=AssistantOptions(yclients=yclients),
                    reminders=ReminderOptions(),
                )
                services = node_services(companies, yclients)
                async with companies.open_node(services) as node:
                    bound.bound_tree(node.supervisor)
                    await _serve_node(node, settings, _handing_over(node, trigger), task_status)
                    bound.enter("stopping the supervision tree")
                bound.enter("closing WhatsApp, YClients and storage")
    if bound.scope.cancelled_caught:
        log.warning(
            "shutdown overran %g s (AIADMIN_SHUTDOWN_GRACE): what was still closing was cancelled",
            settings.shutdown_grace,
        )
    log.info("stopped")


def _handing_over(
    node: Node, trigger: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """``trigger``, and once it fired a cluster node starts handing its salons over to the
    other processes (``Placement.leave``) while its open requests drain."""

    async def fired() -> None:
        await trigger()
        if node.placement is not None:
            node.placement.leave_soon()

    return fired


async def _serve_node(
    node: Node,
    settings: Settings,
    trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[ServerInfo],
) -> None:
    """Serve HTTP for the running ``node`` until ``trigger`` returns."""
    demo_id, demo_url = (None, None)
    if settings.demo:
        demo_id, demo_url = await register_demo_salon(node)
    app = create_app(node)
    config = hypercorn_config(settings)

    async def serve_http(task_status: trio.TaskStatus[list[str]]) -> None:
        await hypercorn_serve(
            ConnectionGuard(app), config, shutdown_trigger=trigger, task_status=task_status
        )

    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve_http)
        task_status.started(ServerInfo(tuple(urls), demo_url, demo_id))


async def wait_for_signal() -> None:
    """Return on the first SIGINT or SIGTERM; a second one is left to the default handler."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            return
