"""A phone comes back online with a backlog: WhatsApp delivers it at once, nothing is dropped.

Ten thousand messages from fifty clients wait in the simulated WhatsApp while the salon's
phone is offline; when it comes back they all arrive in one burst. Every one must be recorded
exactly once, in the order each client sent them, on both storage backends, and through a
session host (the out-of-process path) too: backpressure runs from the company actor down to
the session, the host's pipe and the world, which keeps what the session cannot take yet.
Real clock (PostgreSQL and a child process are real); every wait is bounded.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest
import trio

from actors import Node, open_node
from actors.company import CommandResult
from actors.company import messages as m
from actors.whatsapp import HostedGateway, SimulatedWorld, open_gateway
from config import QrPolicy, Settings, SupervisorLimits
from storage import Storage, open_storage
from tests.support.databases import open_real_storage, pg_database, redis_prefix_session

from .conftest import RecordingViewer, make_settings

pytestmark = pytest.mark.slow

BACKLOG = 10_000
CLIENTS = 50
BOUND = 20.0  # seconds: the whole burst, recorded, on either backend


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    with redis_prefix_session("inbound-burst") as prefix:
        yield prefix


def burst_settings(**changes: object) -> Settings:
    qr = QrPolicy(rotate_every=600.0, max_codes=6, first_code_lifetime=600.0)
    return make_settings(qr=qr, **changes)


async def link(node: Node, world: SimulatedWorld, company_id: int) -> None:
    viewer = RecordingViewer(capacity=256)
    ref = node.company(company_id)
    await ref.ask(m.Subscribe(viewer))
    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    qr = await viewer.next("qr-update", timeout=BOUND)
    world.scan(company_id, phone="79001234567", code=qr["data"]["qr"])
    await viewer.next("whatsapp-connected", timeout=BOUND)
    await ref.ask(m.Unsubscribe(viewer))


def queue_backlog(world: SimulatedWorld, company_id: int) -> dict[str, list[str]]:
    """Ten thousand messages from fifty clients, interleaved, queued while the phone is
    offline; returns each client's message ids in the order that client sent them."""
    sent: dict[str, list[str]] = {}
    rng = random.Random(19)
    phones = [f"7900555{i:04d}" for i in range(CLIENTS)]
    for n in range(BACKLOG):
        phone = rng.choice(phones)
        mid = world.send_inbound(company_id, phone, f"сообщение {n} от {phone}")
        sent.setdefault(phone, []).append(mid)
    return sent


async def recorded(storage: Storage, company_id: int) -> dict[str, list[str]]:
    """Each client's recorded inbound message ids, oldest first."""
    rows = await storage.messages.recent(company_id, limit=BACKLOG)
    got: dict[str, list[str]] = {}
    for row in reversed(rows):
        assert row.direction == "in" and row.wa_message_id is not None
        got.setdefault(row.peer_phone, []).append(row.wa_message_id)
    return got


async def burst_is_recorded(node: Node, storage: Storage, world: SimulatedWorld) -> None:
    """Link a salon, queue the backlog while its phone is offline, bring it back: every
    message is recorded once, in each client's order, and nothing waits anywhere."""
    created = await storage.companies.create(962302, title="Салон «Лотос»")
    cid = created.company.id
    await link(node, world, cid)
    world.go_offline(cid)
    sent = queue_backlog(world, cid)
    world.go_online(cid)
    with trio.fail_after(BOUND):
        while True:
            await trio.sleep(0.25)
            got = await recorded(storage, cid)
            if sum(len(ids) for ids in got.values()) >= BACKLOG:
                break
    assert got == sent  # every message once, each client's in the order sent
    # a second look after the dust settles: nothing late, nothing twice
    await trio.sleep(0.5)
    assert await recorded(storage, cid) == sent
    snapshot = await node.company(cid).ask(m.GetStatus())
    assert snapshot.whatsapp_connected
    assert world.is_connected(cid)


async def backlog_on(storage: Storage, seed: int) -> None:
    world = SimulatedWorld()
    settings = burst_settings()
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(seed)) as node,
    ):
        await burst_is_recorded(node, storage, world)


async def test_a_backlog_of_ten_thousand_is_recorded_once_in_order_in_memory() -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        await backlog_on(storage, seed=3)


async def test_a_backlog_of_ten_thousand_is_recorded_once_in_order_on_postgres(
    database_url: str, redis_prefix: str
) -> None:
    async with open_real_storage(database_url, redis_prefix=redis_prefix) as storage:
        await backlog_on(storage, seed=4)


async def test_a_backlog_through_a_session_host_is_recorded_once_in_order(
    database_url: str, redis_prefix: str
) -> None:
    """The same burst through a real session-host process, on PostgreSQL (the slower reader):
    the world's socket, the host and its pipe all wait for room instead of dropping."""
    world = SimulatedWorld()
    settings = replace(
        burst_settings(session_hosts=1, sessions_per_host=4),
        supervisor=SupervisorLimits(backoff_initial=0.05, backoff_max=0.5),
    )
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(5)) as node,
    ):
        assert isinstance(gateway, HostedGateway)
        await burst_is_recorded(node, storage, world)
        host = gateway.snapshot().hosts[0]
        assert host.restarts == 0 and host.state == "ready"
