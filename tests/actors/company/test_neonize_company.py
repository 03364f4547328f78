"""The company actor on the real neonize backend, offline: linking fails fast and clearly.

There is no network here, so neonize's ``connect()`` fails with "failed to dial". A
``request-qr`` must then end in a clear error state (status back to ``pending``,
``last_error`` naming the connect failure, an ``error`` frame to viewers) while the node and
every other company keep serving, and a new ``request-qr`` is accepted again. Run in this
process (``session_hosts=0``) and in a session host. Real clock (neonize runs Go threads);
about half a second each.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from actors import open_node
from actors.company import CommandResult, CompanyView
from actors.company import messages as m
from actors.whatsapp import open_gateway
from config import WhatsAppProvider
from storage import open_storage

from .conftest import RecordingViewer, make_settings

WAIT = 30.0  # bound only: offline, the whole round takes about half a second


@pytest.mark.parametrize("hosts", [0, 1], ids=["in-process", "session-host"])
async def test_offline_request_qr_ends_in_a_clear_error_and_nothing_else_suffers(
    tmp_path: Path, hosts: int
) -> None:
    settings = make_settings(
        whatsapp_provider=WhatsAppProvider.NEONIZE,
        whatsapp_sessions_path=tmp_path / "sessions",
        session_hosts=hosts,
    )
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(3)) as node,
    ):
        failing = (await storage.companies.create(9101, title="Салон 9101")).company.id
        other = (await storage.companies.create(9102, title="Салон 9102")).company.id
        viewer = RecordingViewer()
        ref = node.company(failing)
        await ref.ask(m.Subscribe(viewer))

        for attempt in range(2):  # the second request-qr is accepted and fails the same way
            assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
            # while the connect is under way, other companies are served
            view = await node.company(other).ask(m.GetStatus())
            assert isinstance(view, CompanyView) and view.integration_status == "pending"

            error = await viewer.next("error", timeout=WAIT)
            assert error["data"] == {
                "message": "Could not reach WhatsApp, try again",
                "code": "session_failed",
            }
            status = await viewer.next("status", timeout=WAIT)
            assert status["data"]["status"] == "pending"
            assert status["data"]["whatsapp_connected"] is False
            assert not [f for f in viewer.frames if f["event"] == "qr-update"]  # no code shown

            view = await ref.ask(m.GetStatus())
            assert (view.integration_status, view.session) == ("pending", "idle")
            assert not view.whatsapp_connected
            last_error = view.last_error or ""
            assert last_error.startswith("connect failed: could not connect to WhatsApp")
            assert "failed to dial" in last_error
            company = await storage.companies.get(failing)
            assert company is not None
            assert company.integration_status == "pending"
            assert company.last_error == last_error
            assert await storage.qr.get(failing) is None
            audit = [e.event_type for e in await storage.audit.recent(failing)]
            assert audit.count("linking_failed") == attempt + 1

        # the failed sessions were released; nothing crashed; the node is healthy
        assert gateway.snapshot().sessions == 0
        assert gateway.ping()
        assert node.healthy and node.restarts_total() == 0
        if hosts:
            [host] = gateway.snapshot().hosts
            assert (host.state, host.restarts) == ("ready", 0)
        view = await node.company(other).ask(m.GetStatus())
        assert view.integration_status == "pending" and view.last_error is None
