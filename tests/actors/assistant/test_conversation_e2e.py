"""The assistant end to end: a node with the simulated WhatsApp, the fake YClients serving the
example catalog, the real understanding and decisions.

A client books "мужская стрижка к Игорю послезавтра в 15:00, Тимур" + "да": one record in the
fake, carrying our api_id, and a reply with the time. A crash between the "да" and the reply
books once, and the client is told once YClients shows the record. Real clocks: the fake
YClients answers over loopback sockets, so the mock clock's jumps would fire the client's
timeouts.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
import trio

from actors import Node, open_node
from actors.assistant import AssistantOptions
from actors.assistant._catalog import AssistantCatalog
from actors.assistant._conversation import DecideFn
from actors.assistant._decide import decide
from actors.assistant._effects import Booked, Effect, Event
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from actors.company import CommandResult
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import RetryPolicy, YClientsClient, sync_company
from config import AssistantPolicy, SendPacing, Settings, settings_from_env
from storage import Storage, open_storage
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients

from ..company.conftest import RecordingViewer
from .example_catalog import EXAMPLE_CATALOG, ROMASHKA

CLIENT = "79990001122"
MSK = ZoneInfo("Europe/Moscow")


def fast_settings() -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
        assistant=AssistantPolicy(wait=0.4),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    # "Now" is fixed at 09:00 today in Moscow, so "послезавтра в 15:00" is in the future.
    today = dt.datetime.now(MSK).date()
    now = dt.datetime.combine(today, dt.time(9), tzinfo=MSK)
    async with running_fake_yclients(rate_limits=None, catalog=EXAMPLE_CATALOG, now=now) as f:
        yield f


@asynccontextmanager
async def running(
    settings: Settings,
    storage: Storage,
    world: SimulatedWorld,
    fake: FakeYClients,
    decide: DecideFn | None = None,
) -> AsyncIterator[tuple[Node, YClientsClient]]:
    async with (
        YClientsClient(
            fake.base_url,
            PARTNER_TOKEN,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1),
        ) as client,
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings,
            storage,
            gateway,
            rng=random.Random(3),
            assistant=AssistantOptions(yclients=client, decide=decide),
        ) as node,
    ):
        yield node, client


async def linked_salon(node: Node, world: SimulatedWorld, client: YClientsClient) -> int:
    """The example salon registered, synced from the fake and linked to WhatsApp."""
    company = (await node.storage.companies.create(ROMASHKA, title="Ромашка")).company
    result = await sync_company(node.storage, client, company)
    assert result.ok, result.error
    viewer = RecordingViewer()
    ref = node.company(company.id)
    await ref.ask(m.Subscribe(viewer))
    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    await viewer.next("qr-update", timeout=10)
    world.scan(company.id, phone="79001234567")
    await viewer.next("whatsapp-connected", timeout=10)
    return company.id


async def replies(world: SimulatedWorld, company_id: int, count: int) -> list[str]:
    """The first ``count`` messages delivered to the client (waits for them)."""
    with trio.fail_after(20):
        await world.wait_until(
            lambda: len([d for d in world.delivered(company_id) if d.to_phone == CLIENT]) >= count
        )
    return [d.text for d in world.delivered(company_id) if d.to_phone == CLIENT]


async def to_summary(world: SimulatedWorld, company_id: int, *burst: str) -> int:
    """Send the burst; answer the name question if it comes; returns how many replies the
    client has once the booking's summary ("… Записать?") arrived."""
    for text in burst:
        world.send_inbound(company_id, CLIENT, text)
    count = 1
    summary = (await replies(world, company_id, count))[-1]
    if "зовут" in summary:  # the name was not taken from the message: it is asked once
        world.send_inbound(company_id, CLIENT, "Тимур")
        count += 1
        summary = (await replies(world, company_id, count))[-1]
    assert "15:00" in summary and "Записать" in summary
    return count


def ours(fake: FakeYClients) -> list[dict[str, object]]:
    return [r for r in fake.live_records(ROMASHKA) if r["api_id"]]


async def test_a_client_books_a_haircut(fake: FakeYClients) -> None:
    world = SimulatedWorld()
    async with (
        open_storage() as storage,
        running(fast_settings(), storage, world, fake) as (node, client),
    ):
        cid = await linked_salon(node, world, client)
        # a burst of two messages, answered once
        count = await to_summary(
            world, cid, "Здравствуйте!", "Мужская стрижка к Игорю послезавтра в 15:00, Тимур"
        )
        assert ours(fake) == []  # nothing booked before the yes
        world.send_inbound(cid, CLIENT, "да")
        count += 1
        booked = (await replies(world, cid, count))[-1]
        assert "15:00" in booked
        [record] = ours(fake)
        when = dt.datetime.fromisoformat(str(record["datetime"]))
        assert (when.date() - dt.datetime.now(MSK).date()).days == 2
        assert (when.hour, when.minute) == (15, 0)
        assert record["staff_id"] == 6201
        # a second "да" never makes a second record
        world.send_inbound(cid, CLIENT, "да")
        await replies(world, cid, count + 1)
        assert len(ours(fake)) == 1
        conversation = await storage.conversations.get(cid, CLIENT)
        assert conversation is not None and conversation.client_name == "Тимур"


async def test_a_restart_between_yes_and_reply_books_once(fake: FakeYClients) -> None:
    """The conversation crashes right after YClients made the record, before the reply (the
    answer to book_record is lost, as with a process dying mid-call). Its restart finds the
    booking in the stored state, settles it by api_id and tells the client: one record."""
    crashes: list[object] = []

    def crash_once_when_booked(
        state: ConversationState,
        event: Event,
        catalog: AssistantCatalog,
        policy: Policy,
        now: dt.datetime,
    ) -> tuple[ConversationState, Sequence[Effect]]:
        if isinstance(event, Booked) and not crashes:
            crashes.append(event)
            raise RuntimeError("the process died before the reply")
        return decide(state, event, catalog, policy, now)

    world = SimulatedWorld()
    async with (
        open_storage() as storage,
        running(fast_settings(), storage, world, fake, decide=crash_once_when_booked) as (
            node,
            client,
        ),
    ):
        cid = await linked_salon(node, world, client)
        count = await to_summary(world, cid, "Мужская стрижка к Игорю послезавтра в 15:00, Тимур")
        world.send_inbound(cid, CLIENT, "да")
        texts = await replies(world, cid, count + 1)
        assert crashes, "the conversation did not crash where the test meant it to"
        assert "15:00" in texts[count]
        assert len(ours(fake)) == 1
        # booked once: book_record was called once, the restart only looked the api_id up
        assert len(fake.requests_to("/api/v1/book_record/*", method="POST")) == 1
        await trio.sleep(1)
        assert len(world.delivered(cid)) == count + 1  # one reply, not two
