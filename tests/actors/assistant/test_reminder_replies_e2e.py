"""Replies to a reminder through the running assistant (``booking_stand``: the simulated
WhatsApp, the real understanding and decisions, the fake YClients in process, trio's mock
clock).

Each client has a visit on Friday in the fake YClients; the reminder scheduler's call
(``Assistant.note_sent_prompt``) is made for it, then the client answers. A confirmation sets
the visit's attendance to 2 in the fake (``PUT visits/{visit_id}/{record_id}``) and is answered
"Ждём вас!"; anything else leaves the attendance as it was and cancels nothing without its own
"да". A chat handed to a person or opted out takes no prompt. A reminder noted by one node is
confirmed through a new node on the same PostgreSQL (the prompt is kept with the state).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Any

import trio
from trio.testing import MockClock

from actors import open_node
from actors.assistant import AssistantOptions, Prompt, PromptKind
from actors.assistant._state import ConversationState
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import Appointment, RetryPolicy, YClientsClient, sync_company
from storage import ConversationMode
from tests.fakes.yclients import PARTNER_TOKEN, running_fake_yclients
from tests.support.databases import open_real_storage

from ..company.test_company_actor import link
from .booking_stand import (
    FRIDAY,
    HAIRCUT,
    IGOR,
    MSK,
    OLEG,
    Stand,
    open_stand,
    stand_settings,
    wall,
)
from .example_catalog import EXAMPLE_CATALOG, ROMASHKA

#: (phrase, confirms)
PHRASES = [
    ("да", True),
    ("👍", True),
    ("Да, буду, спасибо", True),
    ("Подтверждаю запись", True),
    ("да, но хочу перенести", False),
    ("есть вопрос", False),
    ("не смогу", False),
    ("а где вы находитесь?", False),
]


async def visit_for(stand: Stand, phone: str, staff_id: int, hour: int) -> dict[str, Any]:
    """A Friday visit of ``phone`` in the fake YClients, as YClients lists it."""
    start = dt.datetime.combine(FRIDAY, dt.time(hour), MSK)
    [booked] = await stand.client.book_record(
        ROMASHKA,
        phone=phone,
        fullname="Анна Смирнова",
        appointments=[Appointment(services=(HAIRCUT,), staff_id=staff_id, datetime=start)],
        api_id=f"visit-{phone}",
    )
    return await stand.client.get_record(ROMASHKA, booked.record_id)


def attendance(stand: Stand, record_id: int) -> int:
    [record] = [r for r in stand.fake.all_records(ROMASHKA) if r["id"] == record_id]
    assert not record["deleted"]
    return int(record["attendance"])


def prompt_for(record: dict[str, Any], start: dt.datetime) -> Prompt:
    return Prompt(
        PromptKind.DAY_BEFORE,
        int(record["id"]),
        int(record["visit_id"]),
        start,
        wall(),
        ("Мужская стрижка",),
        "Игорь",
    )


async def test_replies_to_reminders_through_the_running_assistant(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        assistant = stand.node.assistant
        assert assistant is not None
        cases = []
        for k, (text, confirms) in enumerate(PHRASES):
            phone = f"7999111{k:04d}"
            staff, hour = (IGOR, OLEG)[k % 2], 10 + k // 2
            record = await visit_for(stand, phone, staff, hour)
            start = dt.datetime.combine(FRIDAY, dt.time(hour), MSK)
            prompt = prompt_for(record, start)
            assert await assistant.may_prompt(stand.company_id, phone)
            assert await assistant.note_sent_prompt(stand.company_id, phone, prompt)
            # kept with the conversation's state: a restart reads it back
            row = await stand.storage.conversations.get(stand.company_id, phone)
            assert row is not None
            assert ConversationState.from_json(row.state).prompt == prompt
            cases.append((phone, int(record["id"]), text, confirms))
        for phone, record_id, text, confirms in cases:
            reply = await stand.say(phone, text)
            if confirms:
                assert reply == "Ждём вас!", (text, reply)
                assert attendance(stand, record_id) == 2, text
            else:
                assert "Ждём вас" not in reply, (text, reply)
                assert attendance(stand, record_id) == 0, text
        await stand.quiet()
        puts = stand.fake.requests_to("/api/v1/visits/*", method="PUT")
        assert len(puts) == sum(confirms for _, confirms in PHRASES)
        assert all(r.json == {"attendance": 2} for r in puts)
        # "не смогу" asked to cancel THAT visit, and nothing was cancelled before its "да"
        cancel_phone, cancel_record = next((p, r) for p, r, t, _ in cases if t == "не смогу")
        assert "Отменить" in stand.said(cancel_phone)[-1]
        assert "пятницу" in stand.said(cancel_phone)[-1] or "13" in stand.said(cancel_phone)[-1]
        await stand.say(cancel_phone, "да")
        [gone] = [r for r in stand.fake.all_records(ROMASHKA) if r["id"] == cancel_record]
        assert gone["deleted"]


async def test_a_handed_over_or_opted_out_chat_takes_no_prompt(autojump_clock: MockClock) -> None:
    async with open_stand() as stand:
        assistant = stand.node.assistant
        assert assistant is not None
        start = dt.datetime.combine(FRIDAY, dt.time(12), MSK)
        for phone, mode in (
            ("79991110101", ConversationMode.HANDOFF),
            ("79991110102", ConversationMode.OPTED_OUT),
        ):
            record = await visit_for(
                stand, phone, IGOR if mode is ConversationMode.HANDOFF else OLEG, 12
            )
            await stand.storage.conversations.set_mode(stand.company_id, phone, mode)
            assert not await assistant.may_prompt(stand.company_id, phone)
            assert not await assistant.note_sent_prompt(
                stand.company_id, phone, prompt_for(record, start)
            )
            row = await stand.storage.conversations.get(stand.company_id, phone)
            assert row is not None and row.mode is mode
            assert ConversationState.from_json(row.state).prompt is None
            stand.send(phone, "да")
            await stand.quiet()
            assert stand.said(phone) == []  # a person answers, or nobody: the assistant is silent
            assert attendance(stand, int(record["id"])) == 0
        # a number we cannot read takes none either (and nothing breaks)
        assert not await assistant.may_prompt(stand.company_id, "не номер")
        assert not await assistant.note_sent_prompt(
            stand.company_id, "не номер", prompt_for(record, start)
        )


async def test_a_reminder_noted_before_a_restart_is_confirmed_after_it(
    database_url: str, redis_prefix: str
) -> None:
    """The reminder is noted by one node; the client answers "да" to a new node on the same
    PostgreSQL (the first is gone): the visit is confirmed all the same."""
    settings = stand_settings()
    world = SimulatedWorld()
    phone = "79991110200"
    today = dt.datetime.now(MSK).date()
    retry = RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1)
    now = dt.datetime.combine(today, dt.time(9), tzinfo=MSK)
    day = today + dt.timedelta(days=2)
    async with running_fake_yclients(rate_limits=None, catalog=EXAMPLE_CATALOG, now=now) as fake:
        async with (
            open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=retry) as client,
            open_gateway(settings, world=world) as gateway,
            open_node(
                settings,
                storage,
                gateway,
                rng=random.Random(1),
                assistant=AssistantOptions(yclients=client),
            ) as node,
        ):
            company = (await storage.companies.create(ROMASHKA, title="Ромашка")).company
            cid = company.id
            assert (await sync_company(storage, client, company)).ok
            with trio.fail_after(20):
                await link(node, world, cid)
            for staff in (IGOR, OLEG):
                times = await client.get_book_times(ROMASHKA, staff, day, service_ids=[HAIRCUT])
                if times:
                    break
            free = times[0]
            start = dt.datetime.fromisoformat(free["datetime"])
            [booked] = await client.book_record(
                ROMASHKA,
                phone=phone,
                fullname="Анна Смирнова",
                appointments=[Appointment(services=(HAIRCUT,), staff_id=staff, datetime=start)],
                api_id="visit-restart",
            )
            record = await client.get_record(ROMASHKA, booked.record_id)
            prompt = replace(prompt_for(record, start), sent_at=dt.datetime.now(dt.UTC))
            assert node.assistant is not None
            assert await node.assistant.note_sent_prompt(cid, phone, prompt)
        # -- a new node on the same database --
        async with (
            open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False) as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=5.0, retry=retry) as client,
            open_gateway(settings, world=world) as gateway,
            open_node(
                settings,
                storage,
                gateway,
                rng=random.Random(2),
                assistant=AssistantOptions(yclients=client),
            ) as node,
        ):
            stand = Stand(fake, storage, node, world, client, cid)
            with trio.fail_after(20):
                assert await stand.say(phone, "Да, буду") == "Ждём вас!"
            assert attendance(stand, booked.record_id) == 2
