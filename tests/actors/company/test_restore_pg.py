"""A whole-node restart over PostgreSQL: linked companies resume, interrupted linking resets.

Real storage (PostgreSQL and Redis on loopback, a throwaway database and key prefix for this
module), the simulated WhatsApp in process, and the real clock: every wait is bounded.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio

from actors import Node, open_node
from actors.company import ACTIVATION_KIND, CommandResult, CompanyView
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from config import QrPolicy, Settings
from storage import Storage
from tests.support.databases import open_real_storage, pg_database, redis_prefix_session

from .conftest import RecordingViewer, make_settings

CLIENT = "79007654321"
WAIT = 10.0


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    with redis_prefix_session("company-restore") as prefix:
        yield prefix


def settings() -> Settings:
    return make_settings(qr=QrPolicy(rotate_every=600.0, max_codes=6, first_code_lifetime=600.0))


async def register(node: Node, salon_id: int) -> int:
    created = await node.storage.companies.create(salon_id, title=f"Салон {salon_id}")
    return created.company.id


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` every 10 ms until it holds (for states no event announces), bounded."""
    with trio.fail_after(WAIT):
        while True:
            if await check():
                return
            await trio.sleep(0.01)


async def status_is(view: Awaitable[CompanyView], status: str) -> bool:
    return (await view).integration_status == status


async def connected(view: Awaitable[CompanyView]) -> bool:
    return (await view).whatsapp_connected


async def nothing_pending(storage: Storage, company_id: int) -> bool:
    return not await storage.messages.pending_outbound(company_id)


async def status_in_db(storage: Storage, company_id: int) -> str:
    company = await storage.companies.get(company_id)
    assert company is not None
    return company.integration_status


async def test_a_node_restart_restores_linked_sessions_and_resets_interrupted_linking(
    database_url: str, redis_prefix: str
) -> None:
    world = SimulatedWorld()
    config = settings()

    # -- the first node: one company linked (with two messages still queued), one linking --
    async with open_real_storage(database_url, redis_prefix=redis_prefix) as storage:
        async with (
            open_gateway(config, world=world) as gateway,
            open_node(config, storage, gateway, rng=random.Random(1)) as node,
        ):
            linked = await register(node, 8001)
            linking = await register(node, 8002)
            untouched = await register(node, 8003)
            viewer = RecordingViewer()
            ref = node.company(linked)
            await ref.ask(m.Subscribe(viewer))
            assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
            qr = await viewer.next("qr-update", timeout=WAIT)
            jid = world.scan(linked, phone="79001234567", code=qr["data"]["qr"])
            await viewer.next("whatsapp-connected", timeout=WAIT)
            world.go_offline(linked)
            await eventually(
                lambda: status_is(ref.ask(m.GetStatus()), "reconnecting"),
            )
            queued = [await ref.ask(m.SendText(CLIENT, f"в очереди {i}")) for i in range(2)]

            other = RecordingViewer()
            await node.company(linking).ask(m.Subscribe(other))
            assert (await node.company(linking).ask(m.RequestQr())).ok
            await other.next("qr-update", timeout=WAIT)
            assert await status_in_db(storage, linking) == "linking"
        # the node is gone: credentials stay in the world, nothing is connected
        assert world.linked_jid(linked) == jid
        assert not world.is_connected(linked)
        assert world.delivered(linked) == []
        assert await status_in_db(storage, linking) == "linking"  # what the dead node left

    world.go_online(linked)

    # -- a new node over the same database (new storage pools, new gateway) --
    reopened = open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False)
    async with reopened as storage:
        async with (
            open_gateway(config, world=world) as gateway,
            open_node(config, storage, gateway, rng=random.Random(2)) as node,
        ):
            await node.restore_done()  # restored in the background after the node is up
            assert node.restored == 1
            # the linked company resumes by itself, without a scan: same device, no QR shown
            with trio.fail_after(WAIT):
                await world.wait_until(lambda: world.is_connected(linked))
            assert world.linked_jid(linked) == jid
            assert world.live_qr(linked) is None
            ref = node.company(linked)
            await eventually(lambda: connected(ref.ask(m.GetStatus())))
            view = await ref.ask(m.GetStatus())
            assert view.integration_status == "active"
            assert view.whatsapp_phone == "79001234567"
            assert await status_in_db(storage, linked) == "active"
            # the messages queued before the restart go out once each, in order
            with trio.fail_after(WAIT):
                await world.wait_until(lambda: len(world.delivered(linked)) == 2)
            assert [d.message_id for d in world.delivered(linked)] == queued
            # each is marked sent right after WhatsApp took it
            await eventually(lambda: nothing_pending(storage, linked))
            # no second activation callback for the same device
            item = await storage.outbox.get_by_key(f"activation:{linked}:{jid}")
            assert item is not None and item.kind == ACTIVATION_KIND
            assert await storage.outbox.backlog() == 1

            # the company that was linking is reset at start, before anyone asks for it
            assert await status_in_db(storage, linking) == "pending"
            audit = [e.event_type for e in await storage.audit.recent(linking)]
            assert "linking_interrupted" in audit
            view = await node.company(linking).ask(m.GetStatus())
            assert (view.integration_status, view.session) == ("pending", "idle")
            assert world.live_qr(linking) is None
            # ... and it can link again
            again = RecordingViewer()
            await node.company(linking).ask(m.Subscribe(again))
            assert await node.company(linking).ask(m.RequestQr()) == CommandResult(
                True, "linking started"
            )
            qr = await again.next("qr-update", timeout=WAIT)
            world.scan(linking, phone="79001230000", code=qr["data"]["qr"])
            await again.next("whatsapp-connected", timeout=WAIT)

            # a company that was never linked stays pending and was not activated at start
            assert await status_in_db(storage, untouched) == "pending"
            assert node.healthy and node.restarts_total() == 0
