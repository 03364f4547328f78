"""While the node restores its linked salons in the background, ``/health`` is 200,
``/health/ready`` says ``restoring`` with progress (503, Retry-After), and a salon's status is
served at once; once the restore is done, ready is 200 as usual.

In-memory storage and the simulated WhatsApp, trio's mock clock (autojump): company starts
are slowed by patched ``on_start`` sleeps.
"""

from __future__ import annotations

import random

import pytest
import trio
from trio.testing import MockClock

from actors import open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from storage import open_storage
from tests.support.startup import Starts, counted_starts, store_linked
from web._app import create_app

from .conftest import ADMIN_KEY, make_web_settings


async def test_ready_says_restoring_with_progress_until_the_restore_is_done(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_web_settings(restore_concurrency=2)
    world = SimulatedWorld()
    admin = {"X-API-Key": ADMIN_KEY}
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        ids = await store_linked(storage, world, 6, first=540_000)
        slow = set(ids[:-1])
        with counted_starts(monkeypatch, Starts(delay=10.0, slow=slow)):
            async with (
                open_gateway(settings, world=world) as gateway,
                open_node(settings, storage, gateway, rng=random.Random(3)) as node,
            ):
                client = create_app(node).test_client()
                began = trio.current_time()
                health = await client.get("/health")
                assert health.status_code == 200
                assert await health.get_json() == {"success": True, "status": "ok"}

                ready = await client.get("/health/ready")
                body = await ready.get_json()
                assert ready.status_code == 503, body
                assert ready.headers["Retry-After"]
                assert body["success"] is False
                assert body["status"] == "restoring"
                assert (body["restored"], body["total"], body["failed"]) == (0, 6, 0)
                assert "failing" not in body  # nothing failed: it is only not done yet
                assert all(check["ok"] for check in body["checks"].values())

                # the last salon in the restore's order is served now, not in its turn
                status = await client.get(f"/marketplace/status/{ids[-1]}", headers=admin)
                assert status.status_code == 200
                assert (await status.get_json())["integration_status"] == "active"
                assert trio.current_time() == began

                await trio.sleep(15)  # the first two slow starts are over
                body = await (await client.get("/health/ready")).get_json()
                assert (body["status"], body["restored"], body["total"]) == ("restoring", 2, 6)

                await node.restore_done()
                ready = await client.get("/health/ready")
                body = await ready.get_json()
                assert ready.status_code == 200, body
                assert body["status"] == "ready"
                assert "restored" not in body  # progress is shown while restoring only
                assert body["restore"] == {
                    "done": True,
                    "restored": 6,
                    "total": 6,
                    "failed": 0,
                    "elsewhere": 0,
                }
