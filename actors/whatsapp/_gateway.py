"""``open_gateway(settings)``: the one place that picks and builds the WhatsApp backend.

=====================  ===============  ==============================================
``whatsapp_provider``  ``session_hosts``  gateway
=====================  ===============  ==============================================
simulated              0                :class:`SimulatedGateway` on the world object
simulated              ≥ 1              :class:`HostedGateway`; the world is served on a
                                         private Unix socket the hosts connect to
neonize                0                :class:`NeonizeGateway` in this process
neonize                ≥ 1              :class:`HostedGateway` running neonize in hosts
=====================  ===============  ==============================================

The simulated world is ``world`` when given (tests and demos drive its phones), else a new
one, reachable afterwards as ``gateway.world`` of the simulated gateways; with
``AIADMIN_SIMULATED_WORLD`` (a local cluster's processes sharing one world, served on that Unix
socket by ``scripts/cluster_world.py``) the sessions connect to that socket and
``gateway.world`` is ``None``.

neonize's sent-message ledger (:mod:`._ledger`) follows ``AIADMIN_WHATSAPP_STORE``: with
``postgres`` it is the ``whatsapp_sent`` table, opened on a small pool of its own by whichever
process runs the sessions (this one, or each session host, told ``ledger_url``), so a salon
that moves to another process or machine keeps its exactly-once sends; with ``files`` it is a
file per company beside the credentials.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

from config import Settings, WhatsAppProvider, WhatsAppStore
from storage import SentLedger

from ._hosted import HostedGateway
from ._ledger import open_pg_ledger
from ._neonize import NeonizeGateway
from ._session import WhatsAppGateway
from ._simulated import SimulatedGateway
from ._world import SimulatedWorld
from ._world_server import serve_world

log = logging.getLogger(__name__)


def whatsapp_store_url(settings: Settings) -> str | None:
    """The PostgreSQL URL for whatsmeow's session store, or ``None`` for a file per company.

    whatsmeow's driver (lib/pq) requires SSL unless told otherwise, where asyncpg only prefers
    it: without an ``sslmode`` in the URL (or ``PGSSLMODE``, which both drivers read), ``prefer``
    is added so both behave the same.
    """
    if settings.whatsapp_store is not WhatsAppStore.POSTGRES or settings.database_url is None:
        return None
    parts = urlsplit(settings.database_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == "sslmode" for key, _ in query) and not os.environ.get("PGSSLMODE"):
        query.append(("sslmode", "prefer"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def ledger_url(settings: Settings) -> str | None:
    """The database of neonize's sent-message ledger, or ``None`` for a file per company."""
    return settings.database_url if whatsapp_store_url(settings) is not None else None


@asynccontextmanager
async def open_gateway(
    settings: Settings, *, world: SimulatedWorld | None = None
) -> AsyncIterator[WhatsAppGateway]:
    """Build the configured gateway; on exit stop every session and host (credentials kept)."""
    simulated = settings.whatsapp_provider is WhatsAppProvider.SIMULATED
    url = None if simulated or settings.session_hosts > 0 else ledger_url(settings)
    async with AsyncExitStack() as stack:
        # In-process neonize sessions record their sends through this process's own ledger
        # pool, opened (with a trio-asyncio loop if none runs) before and closed after them.
        ledger = None if url is None else await stack.enter_async_context(open_pg_ledger(url))
        async with _open_gateway(settings, world, ledger) as gateway:
            yield gateway


@asynccontextmanager
async def _open_gateway(
    settings: Settings, world: SimulatedWorld | None, ledger: SentLedger | None
) -> AsyncIterator[WhatsAppGateway]:
    async with trio.open_nursery() as nursery:
        gateway: WhatsAppGateway
        simulated = settings.whatsapp_provider is WhatsAppProvider.SIMULATED
        tmp: tempfile.TemporaryDirectory[str] | None = None
        shared_world = settings.simulated_world if simulated and world is None else None
        if simulated and world is None and shared_world is None:
            world = SimulatedWorld()
        if settings.session_hosts <= 0:
            if shared_world is not None:
                gateway = SimulatedGateway(nursery, world_path=shared_world, qr=settings.qr)
            elif simulated:
                assert world is not None
                gateway = SimulatedGateway(nursery, world=world, qr=settings.qr)
            else:
                neonize = NeonizeGateway(
                    nursery,
                    sessions_path=settings.whatsapp_sessions_path,
                    store_url=whatsapp_store_url(settings),
                    ledger=ledger,
                )
                problem = neonize.snapshot().problem
                if problem is not None:  # the server still starts: health says why WhatsApp is down
                    log.error("WhatsApp backend neonize cannot work here: %s", problem)
                gateway = neonize
        else:
            host_config: dict[str, object] = {"log_level": settings.log_level}
            if simulated:
                if shared_world is not None:
                    path = shared_world
                else:
                    assert world is not None
                    tmp = tempfile.TemporaryDirectory(prefix="aiadmin-world-")
                    path = await nursery.start(
                        serve_world, world, str(Path(tmp.name) / "world.sock")
                    )
                host_config.update(
                    world_path=path,
                    qr={
                        "rotate_every": settings.qr.rotate_every,
                        "max_codes": settings.qr.max_codes,
                        "first_code_lifetime": settings.qr.first_code_lifetime,
                    },
                )
            else:
                host_config["sessions_path"] = str(settings.whatsapp_sessions_path.resolve())
                host_config["store_url"] = whatsapp_store_url(settings)
                host_config["ledger_url"] = ledger_url(settings)
            hosted = HostedGateway(
                nursery,
                backend=settings.whatsapp_provider.value,
                host_config=host_config,
                per_host=settings.sessions_per_host,
                min_hosts=settings.session_hosts,
                limits=settings.supervisor,
            )
            hosted.world = world
            gateway = hosted
        try:
            yield gateway
        finally:
            with trio.CancelScope(shield=True):
                await gateway.aclose()
            nursery.cancel_scope.cancel()
            if tmp is not None:
                tmp.cleanup()
