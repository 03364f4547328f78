"""A salon moves between nodes mid-send and its message still reaches WhatsApp once (issue 13).

Node A's company actor sends X through neonize (the real gateway, session and ledger; the
client's WhatsApp is the simulated world, which cannot deduplicate: see
:mod:`tests.support.neonize_world`), and the process dies before it marks X sent: the database
is left as a ``kill -9`` between the send and the status write leaves it — the ledger row
written, the message still ``queued``. Node B (another machine: its own sessions path, its own
storage handle on the same PostgreSQL) restores the salon and works through its queue: with
``AIADMIN_WHATSAPP_STORE=postgres`` the re-send of X is answered from the ledger, X is marked
sent, and WhatsApp received it once. Real clock (neonize runs threads); bounded waits.
"""

from __future__ import annotations

import random
from pathlib import Path

import asyncpg

from actors import open_node
from actors.company import messages as m
from actors.whatsapp import NeonizeGateway, SimulatedWorld, new_message_id, open_gateway
from config import Settings, WhatsAppProvider, WhatsAppStore
from storage import Message, Storage
from tests.support.databases import open_real_storage
from tests.support.neonize_world import WorldClients
from tests.support.startup import link_stored

from .conftest import make_settings
from .test_restore_pg import eventually

CLIENT = "79007654321"
TEXT = "Напоминаем: завтра в 10:00 маникюр"


def node_settings(database_url: str, sessions: Path) -> Settings:
    return make_settings(
        whatsapp_provider=WhatsAppProvider.NEONIZE,
        whatsapp_store=WhatsAppStore.POSTGRES,
        whatsapp_sessions_path=sessions,
        database_url=database_url,
        session_hosts=0,
    )


async def message(storage: Storage, company_id: int, message_id: str) -> Message:
    row = await storage.messages.get_by_wa_id(company_id, message_id)
    assert row is not None
    return row


async def _requeue(conn: asyncpg.Connection, row_id: int) -> None:
    await conn.execute("UPDATE messages SET status = 'queued' WHERE id = $1", row_id)


async def test_the_new_owner_does_not_send_again_what_the_old_one_sent(
    database_url: str, tmp_path: Path
) -> None:
    async with open_real_storage(database_url, redis_url=None) as storage:
        company_id = (await storage.companies.create(914_001, title="Салон")).company.id
    world = SimulatedWorld()
    clients = WorldClients(world)
    message_id = new_message_id()

    # Node A: restores the linked salon, sends X, and "dies" before marking it sent.
    node_a = node_settings(database_url, tmp_path / "node-a")
    async with (
        open_real_storage(database_url, redis_url=None, truncate=False) as storage,
        open_gateway(node_a) as gateway,
    ):
        assert isinstance(gateway, NeonizeGateway)
        gateway.client_factory = clients
        await link_stored(storage, world, company_id, "79001234567")
        async with open_node(node_a, storage, gateway, rng=random.Random(1)) as node:
            await node.restore_done()
            answer = await node.company(company_id).ask(
                m.SendText(CLIENT, TEXT, message_id=message_id)
            )
            assert answer == message_id

            async def sent() -> bool:
                return (await message(storage, company_id, message_id)).status == "sent"

            await eventually(sent)
        row = await message(storage, company_id, message_id)
        assert row.attempts == 1
        assert storage.pg is not None
        await storage.pg.run(_requeue, row.id)  # the status write the dead process never made
        wa_id = await storage.sent.sent(company_id, message_id)
        assert wa_id is not None  # ...but the ledger row it wrote as WhatsApp took X
    assert [d.text for d in world.delivered(company_id)] == [TEXT]

    # Node B: another machine, same database; the salon's queue still holds X.
    node_b = node_settings(database_url, tmp_path / "node-b")
    async with (
        open_real_storage(database_url, redis_url=None, truncate=False) as storage,
        open_gateway(node_b) as gateway,
    ):
        assert isinstance(gateway, NeonizeGateway)
        gateway.client_factory = clients
        async with open_node(node_b, storage, gateway, rng=random.Random(2)) as node:
            await node.restore_done()

            async def sent_again() -> bool:
                row = await message(storage, company_id, message_id)
                return row.status == "sent" and row.attempts == 2

            await eventually(sent_again)  # handed to the session again, answered from the ledger
            view = await node.company(company_id).ask(m.GetStatus())
            assert view.whatsapp_connected
    assert len(clients.made) == 2  # one neonize client per node
    assert [d.text for d in world.delivered(company_id)] == [TEXT]  # received exactly once
    assert world.send_attempts(company_id) == 1
