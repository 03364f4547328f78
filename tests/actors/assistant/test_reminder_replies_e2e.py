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
import enum
import random
from dataclasses import replace
from typing import Any

import trio
from trio.testing import MockClock

from actors import open_node
from actors.assistant import AssistantOptions, Prompt, PromptKind
from actors.assistant._commands import Flow
from actors.assistant._state import ConfirmKind, ConversationState
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


class Then(enum.Enum):
    """What a reply to a reminder must lead to."""

    CONFIRM = "confirm"  # attendance 2 on THAT visit, "Ждём вас!"
    CANCEL = "cancel"  # the cancel of THAT visit asked to be confirmed, nothing cancelled
    MOVE = "move"  # the move flow for THAT visit
    OTHER = "other"  # an ordinary message: no confirmation, no cancel, no move, no booking


#: (what the client writes, what follows, a part of the reply — ``None``: not checked;
#: ``{day}`` and ``{time}`` stand for the reminded visit's).
#: As clients write them: any case, typos, no punctuation, emoji, slang.
PHRASES: list[tuple[str, Then, str | None]] = [
    ("да", Then.CONFIRM, None),
    ("👍", Then.CONFIRM, None),
    ("Да, буду, спасибо", Then.CONFIRM, None),
    ("Подтверждаю запись", Then.CONFIRM, None),
    ("ок", Then.CONFIRM, None),
    ("ага", Then.CONFIRM, None),
    ("+", Then.CONFIRM, None),
    ("буду обязательно", Then.CONFIRM, None),
    ("да, приду", Then.CONFIRM, None),
    ("подтверждаю", Then.CONFIRM, None),
    ("👍🏻", Then.CONFIRM, None),
    ("Да.", Then.CONFIRM, None),
    ("конечно буду", Then.CONFIRM, None),
    ("норм", Then.CONFIRM, None),
    ("ДА", Then.CONFIRM, None),
    ("Ок👍", Then.CONFIRM, None),
    ("да буду спс", Then.CONFIRM, None),
    ("Хорошо", Then.CONFIRM, None),
    ("Приду)", Then.CONFIRM, None),
    ("буду)))", Then.CONFIRM, None),
    ("Да, конечно, буду 🙏", Then.CONFIRM, None),
    ("подверждаю", Then.CONFIRM, None),
    ("прийду", Then.CONFIRM, None),
    ("обезательно буду", Then.CONFIRM, None),
    ("Да, до завтра!", Then.CONFIRM, None),
    ("Буду, спасибо за напоминание", Then.CONFIRM, None),
    ("Всё в силе", Then.CONFIRM, None),
    ("угу", Then.CONFIRM, None),
    ("Окк", Then.CONFIRM, None),
    ("не смогу", Then.CANCEL, "Отменить"),
    ("отмените", Then.CANCEL, "Отменить"),
    ("нет", Then.CANCEL, "Отменить"),
    ("Не получится, заболела", Then.CANCEL, "Отменить"),
    ("отмена", Then.CANCEL, "Отменить"),
    ("Отмените пожалуйста, не смогу прийти(", Then.CANCEL, "Отменить"),
    ("да, но хочу перенести", Then.MOVE, None),
    ("можно перенести на завтра?", Then.MOVE, None),
    ("перенесите пожалуйста на субботу", Then.MOVE, None),
    ("Можно перенести на попозже?", Then.MOVE, None),
    ("можно в другой день?", Then.MOVE, None),
    ("есть вопрос", Then.OTHER, None),
    ("а во сколько?", Then.OTHER, "{day} марта в {time}"),  # the visit's day and time
    ("опоздаю минут на 10", Then.OTHER, None),
    ("опоздаю на 10-15 минут", Then.OTHER, None),
    ("не знаю пока", Then.OTHER, None),
    ("?", Then.OTHER, None),
    ("а какой у вас адрес?", Then.OTHER, "Баумана"),
    ("Как до вас добраться?", Then.OTHER, "Баумана"),
    ("Да, но я опоздаю на 15 минут", Then.OTHER, None),
    ("кто это?", Then.OTHER, None),
    ("Да, а сколько стоит стрижка?", Then.OTHER, "₽"),
    ("Хм", Then.OTHER, None),
]
MASTERS = {IGOR: "Игорь", OLEG: "Олег"}
#: The reminded visits' slots: Friday, Saturday and Monday, Igor's and Oleg's hours.
SLOTS = [
    (day, staff, hour)
    for day in (FRIDAY, FRIDAY + dt.timedelta(days=1), FRIDAY + dt.timedelta(days=3))
    for staff in (IGOR, OLEG)
    for hour in range(10, 21)
    if (day.weekday(), staff, hour) != (5, IGOR, 17)  # Rustam's own Saturday haircut
]
#: The day of a second visit of the clients who cancel or move (Thursday): not the one meant.
EARLIER = FRIDAY - dt.timedelta(days=1)


async def visit_for(
    stand: Stand, phone: str, staff_id: int, hour: int, day: dt.date = FRIDAY
) -> dict[str, Any]:
    """A visit of ``phone`` in the fake YClients (Friday unless said), as YClients lists it."""
    start = dt.datetime.combine(day, dt.time(hour), MSK)
    [booked] = await stand.client.book_record(
        ROMASHKA,
        phone=phone,
        fullname="Анна Смирнова",
        appointments=[Appointment(services=(HAIRCUT,), staff_id=staff_id, datetime=start)],
        api_id=f"visit-{phone}-{day.isoformat()}",
    )
    return await stand.client.get_record(ROMASHKA, booked.record_id)


def attendance(stand: Stand, record_id: int) -> int:
    [record] = [r for r in stand.fake.all_records(ROMASHKA) if r["id"] == record_id]
    assert not record["deleted"]
    return int(record["attendance"])


def prompt_for(record: dict[str, Any], start: dt.datetime, master: str = "Игорь") -> Prompt:
    return Prompt(
        PromptKind.DAY_BEFORE,
        int(record["id"]),
        int(record["visit_id"]),
        start,
        wall(),
        ("Мужская стрижка",),
        master,
    )


async def state_of(stand: Stand, phone: str) -> ConversationState:
    row = await stand.storage.conversations.get(stand.company_id, phone)
    assert row is not None
    return ConversationState.from_json(row.state)


def test_the_phrasings_are_many_distinct_and_half_confirm() -> None:
    texts = [text for text, _, _ in PHRASES]
    assert len(texts) >= 40 and len(set(texts)) == len(texts)
    confirms = sum(then is Then.CONFIRM for _, then, _ in PHRASES)
    assert len(PHRASES) // 3 <= confirms <= 2 * len(PHRASES) // 3
    assert len(SLOTS) >= len(PHRASES)


async def test_replies_to_reminders_through_the_running_assistant(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        assistant = stand.node.assistant
        assert assistant is not None
        cases = []
        starts: dict[str, dt.datetime] = {}
        earlier = 0
        for k, ((text, then, says), (day, staff, hour)) in enumerate(
            zip(PHRASES, SLOTS, strict=False)
        ):
            phone = f"7999111{k:04d}"
            if then in (Then.CANCEL, Then.MOVE):
                # an earlier visit too, so "that visit" is not merely the only (or the next) one
                other = (IGOR, OLEG)[earlier % 2]
                await visit_for(stand, phone, other, 10 + earlier // 2, EARLIER)
                earlier += 1
            record = await visit_for(stand, phone, staff, hour, day)
            start = dt.datetime.combine(day, dt.time(hour), MSK)
            prompt = prompt_for(record, start, MASTERS[staff])
            assert await assistant.may_prompt(stand.company_id, phone)
            assert await assistant.note_sent_prompt(stand.company_id, phone, prompt)
            # kept with the conversation's state: a restart reads it back
            assert (await state_of(stand, phone)).prompt == prompt
            cases.append((phone, int(record["id"]), int(record["visit_id"]), text, then, says))
            starts[phone] = start
        for phone, record_id, _, text, then, says in cases:
            reply = await stand.say(phone, text)
            state = await state_of(stand, phone)
            if says is not None:
                start = starts[phone]
                assert says.format(day=start.day, time=f"{start:%H:%M}") in reply, (text, reply)
            if then is Then.CONFIRM:
                assert reply == "Ждём вас!", (text, reply)
                assert attendance(stand, record_id) == 2, text
                assert state.prompt is None, text  # answered
                continue
            assert "Ждём вас" not in reply, (text, reply)
            assert "До свидания" not in reply, (text, reply)  # no farewell to a reminder
            assert attendance(stand, record_id) == 0, text
            pending = state.pending
            if then is Then.CANCEL:
                assert pending is not None and pending.kind is ConfirmKind.CANCEL, (text, reply)
                assert pending.visit is not None and pending.visit.record_id == record_id, text
                assert f"{starts[phone]:%H:%M}" in reply, (text, reply)  # said which visit
            elif then is Then.MOVE:
                assert state.flow is Flow.MOVE, (text, reply)
                assert state.chosen_visit is not None, (text, reply)
                assert state.chosen_visit.record_id == record_id, text
            else:
                assert state.flow is None and pending is None, (text, reply, state.flow)
                assert state.prompt is not None, text  # a yes may still come
        await stand.quiet()
        puts = stand.fake.requests_to("/api/v1/visits/*", method="PUT")
        assert all(r.json == {"attendance": 2} for r in puts)
        confirmed = {(v, r) for _, r, v, _, then, _ in cases if then is Then.CONFIRM}
        assert sorted(r.path for r in puts) == sorted(
            f"/api/v1/visits/{v}/{r}" for v, r in confirmed
        )
        assert not any(r["deleted"] for r in stand.fake.all_records(ROMASHKA))
        # after asking when it is, the client's "буду" still confirms the reminded visit
        asked_phone, asked_record = next((p, r) for p, r, _, t, _, _ in cases if "сколько?" in t)
        assert await stand.say(asked_phone, "буду") == "Ждём вас!"
        assert attendance(stand, asked_record) == 2
        # "не смогу" asked to cancel THAT visit, and cancels it (only it) after its "да"
        cancel_phone, cancel_record = next((p, r) for p, r, _, t, _, _ in cases if t == "не смогу")
        await stand.say(cancel_phone, "да")
        gone = [r["id"] for r in stand.fake.all_records(ROMASHKA) if r["deleted"]]
        assert gone == [cancel_record]


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
