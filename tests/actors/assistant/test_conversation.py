"""The conversation actor's own rules, with a scripted ``decide`` and understanding (so only
the actor is under test) on a node with the simulated WhatsApp, under trio's mock clock.

The scripted decide answers "heard: <text>" to a client's turn, "media: <kind>" to a media
message, hands over on "администратор", and crashes on "boom". The wall clock follows trio's
clock, so handoff and silence deadlines pass with it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import trio
from trio.testing import MockClock

from actors import Node, open_node
from actors.assistant import AssistantOptions
from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import (
    Command,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    StartFlow,
    TurnContext,
)
from actors.assistant._effects import ClientTurn, Effect, Event, NonTextTurn, Reply, SetMode
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from actors.whatsapp import SimulatedWorld, open_gateway
from config import AssistantPolicy, SendPacing, Settings, settings_from_env
from storage import ConversationMode, Storage, open_storage

from ..company.test_company_actor import link

CLIENT = "79990001122"
OTHER = "79990003344"
EPOCH = dt.datetime(2026, 3, 11, 6, 0, tzinfo=dt.UTC)


def wall() -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=trio.current_time())


def scripted_decide(
    state: ConversationState,
    event: Event,
    catalog: AssistantCatalog,
    policy: Policy,
    now: dt.datetime,
) -> tuple[ConversationState, Sequence[Effect]]:
    if isinstance(event, ClientTurn):
        if event.text == "boom":
            raise RuntimeError("a bug in decide")
        if any(isinstance(c, HandOver) for c in event.commands):
            until = now + policy.handoff_for
            return state, (
                Reply("Передаю администратору"),
                SetMode(ConversationMode.HANDOFF, until, "asked"),
            )
        return state, (Reply(f"heard: {event.text}"),)
    if isinstance(event, NonTextTurn):
        return state, (Reply(f"media: {event.kind}"),)
    return state, ()


class ScriptedUnderstander:
    async def understand(
        self, text: str, context: TurnContext, catalog: AssistantCatalog, now: dt.datetime
    ) -> tuple[Command, ...]:
        if "администратор" in text:
            return (HandOver(HandOverReason.ASKED),)
        if "записаться" in text:
            return (StartFlow(Flow.BOOK),)
        return (NotUnderstood(),)


def settings(**assistant: float) -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
        assistant=AssistantPolicy(**{"wait": 2.0, **assistant}),
    )


@asynccontextmanager
async def assistant_node(
    storage: Storage, world: SimulatedWorld, config: Settings
) -> AsyncIterator[Node]:
    options = AssistantOptions(
        understander=ScriptedUnderstander(), decide=scripted_decide, wall_clock=wall
    )
    async with (
        open_gateway(config, world=world) as gateway,
        open_node(config, storage, gateway, rng=random.Random(5), assistant=options) as node,
    ):
        yield node


async def salon(node: Node, world: SimulatedWorld) -> int:
    cid = (await node.storage.companies.create(555100, title="Ромашка")).company.id
    await link(node, world, cid)
    return cid


def said(world: SimulatedWorld, company_id: int, phone: str = CLIENT) -> list[str]:
    return [d.text for d in world.delivered(company_id) if d.to_phone == phone]


async def test_a_burst_is_answered_once_after_the_client_stops_typing(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            for text in ("Здравствуйте", "хочу", "на завтра"):
                world.send_inbound(cid, CLIENT, text)
                await trio.sleep(1.5)  # under the 2 s wait: still one burst
            assert said(world, cid) == []
            await trio.sleep(1.0)
            assert said(world, cid) == ["heard: Здравствуйте\nхочу\nна завтра"]
            world.send_inbound(cid, CLIENT, "а ещё")
            await trio.sleep(3)
            assert said(world, cid)[1:] == ["heard: а ещё"]
            conversation = await storage.conversations.get(cid, CLIENT)
            assert conversation is not None and conversation.version >= 2


async def test_a_client_who_never_stops_typing_is_answered_after_four_waits(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            start = trio.current_time()
            for n in range(12):
                world.send_inbound(cid, CLIENT, f"m{n}")
                await trio.sleep(1.0)
                if said(world, cid):
                    break
            assert said(world, cid) and trio.current_time() - start <= 9.0


async def test_media_gets_its_own_reply(autojump_clock: MockClock) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            world.send_inbound(cid, CLIENT, "", kind="audio")
            await trio.sleep(3)
            assert said(world, cid) == ["media: audio"]


async def test_a_handoff_keeps_the_assistant_silent_until_it_ends(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    config = settings(handoff_minutes=30.0)
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, config) as node:
            cid = await salon(node, world)
            world.send_inbound(cid, CLIENT, "позовите администратора")
            await trio.sleep(3)
            assert said(world, cid) == ["Передаю администратору"]
            conversation = await storage.conversations.get(cid, CLIENT)
            assert conversation is not None
            assert conversation.mode is ConversationMode.HANDOFF and conversation.needs_person
            assert conversation.mode_until is not None
            assert conversation.mode_until > wall() + dt.timedelta(minutes=29)
            events = await storage.audit.recent(cid)
            assert any(e.event_type == "assistant.handoff" for e in events)
            world.send_inbound(cid, CLIENT, "алло?")
            await trio.sleep(3)
            assert len(said(world, cid)) == 1  # silent while a person answers
            await trio.sleep(30 * 60)
            world.send_inbound(cid, CLIENT, "есть кто?")
            await trio.sleep(3)
            assert said(world, cid)[1:] == ["heard: есть кто?"]
            conversation = await storage.conversations.get(cid, CLIENT)
            assert conversation is not None and conversation.mode is ConversationMode.ASSISTANT


async def test_the_salon_taking_a_chat_over_silences_it(autojump_clock: MockClock) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            await storage.conversations.set_mode(cid, CLIENT, ConversationMode.HANDOFF)
            world.send_inbound(cid, CLIENT, "здравствуйте")
            await trio.sleep(3)
            assert said(world, cid) == []
            await storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
            world.send_inbound(cid, CLIENT, "ау")
            await trio.sleep(3)
            assert said(world, cid) == ["heard: ау"]


async def test_staff_writing_from_the_phone_silences_the_chat_for_a_while(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    config = settings(staff_silence_minutes=60.0)
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, config) as node:
            cid = await salon(node, world)
            world.staff_send(cid, CLIENT, "Здравствуйте, это Анна, администратор")
            await trio.sleep(1)
            world.send_inbound(cid, CLIENT, "Анна, а можно на завтра?")
            await trio.sleep(3)
            assert said(world, cid) == []  # the staff's own message is not ours to send
            # another client of the salon is answered as usual
            world.send_inbound(cid, OTHER, "привет")
            await trio.sleep(3)
            assert said(world, cid, OTHER) == ["heard: привет"]
            await trio.sleep(60 * 60)
            world.send_inbound(cid, CLIENT, "ау")
            await trio.sleep(3)
            assert said(world, cid) == ["heard: ау"]


async def test_an_opted_out_client_is_answered_only_when_asking_to_book(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            await storage.conversations.set_mode(cid, CLIENT, ConversationMode.OPTED_OUT)
            world.send_inbound(cid, CLIENT, "привет")
            await trio.sleep(3)
            assert said(world, cid) == []
            world.send_inbound(cid, CLIENT, "хочу записаться")
            await trio.sleep(3)
            assert said(world, cid) == ["heard: хочу записаться"]
            conversation = await storage.conversations.get(cid, CLIENT)
            assert conversation is not None and conversation.mode is ConversationMode.ASSISTANT


async def test_a_salon_with_the_assistant_off_gets_no_replies(autojump_clock: MockClock) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            await storage.companies.update(cid, ai_enabled=False)
            world.send_inbound(cid, CLIENT, "здравствуйте")
            await trio.sleep(3)
            assert said(world, cid) == []
            recent = await storage.messages.recent(cid)
            assert [r.text for r in recent] == ["здравствуйте"]  # still logged


async def test_a_crash_affects_only_that_conversation(autojump_clock: MockClock) -> None:
    world = SimulatedWorld()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with assistant_node(storage, world, settings()) as node:
            cid = await salon(node, world)
            world.send_inbound(cid, CLIENT, "boom")
            world.send_inbound(cid, OTHER, "привет")
            await trio.sleep(3)
            assert said(world, cid, OTHER) == ["heard: привет"]
            assert said(world, cid) == []
            world.send_inbound(cid, CLIENT, "всё хорошо?")
            await trio.sleep(3)
            assert said(world, cid) == ["heard: всё хорошо?"]  # restarted, answering again
            assert node.assistant is not None
            snapshot = node.assistant.registry.snapshot()
            assert sum(n.restarts for n in snapshot.walk()) >= 1
