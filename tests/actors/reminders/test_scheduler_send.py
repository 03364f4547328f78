"""The reminder scheduler sending through a running node (``scheduler_stand``: the simulated
WhatsApp, the assistant, in-memory storage, trio's mock clock tied to the wall clock): the
right messages at the right local times, with the visit's words, once each; and nothing for
a visit that was cancelled or moved, nor to a chat that opted out or was handed over."""

from __future__ import annotations

import datetime as dt

import trio
from trio.testing import MockClock

import actors._node as node_module
import actors.reminders._scheduler as scheduler_module
from actors import open_node
from actors.assistant import PromptKind
from actors.reminders import MessageKind, ReminderOptions
from actors.whatsapp import SimulatedWorld, open_gateway
from storage import ReminderStatus, SalonRecord, open_storage

from .scheduler_stand import (
    ADDRESS,
    NOW,
    at_trio,
    kinds_of,
    local,
    open_stand,
    stand_settings,
    wall,
)

PHONE = "79120001122"
#: Pacing may hold a message a few seconds after its due moment (1 s + up to 2 s a message).
ARRIVAL_SLACK = dt.timedelta(seconds=10)


async def test_a_visit_a_week_ahead_gets_two_reminders_at_local_times(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        day = NOW.date() + dt.timedelta(days=7)  # Monday 9 March, 15:00 in Yekaterinburg
        facts = stand.visit(101, PHONE, local(day, 15))
        rows = await stand.plant(facts)
        assert kinds_of(rows) == [MessageKind.DAY_BEFORE, MessageKind.TWO_HOURS, MessageKind.REVIEW]

        await trio.sleep_until(at_trio(local(day, 15)))  # until the visit starts
        got = stand.delivered(PHONE)
        assert len(got) == 2
        day_before, two_hours = got
        assert local(day - dt.timedelta(days=1), 18) <= stand.arrived_at(day_before.message_id)
        assert stand.arrived_at(day_before.message_id) <= (
            local(day - dt.timedelta(days=1), 18) + ARRIVAL_SLACK
        )
        assert local(day, 13) <= stand.arrived_at(two_hours.message_id)
        assert stand.arrived_at(two_hours.message_id) <= local(day, 13) + ARRIVAL_SLACK
        # 18:00 local is 13:00 UTC (UTC+5): the salon's clock, not the server's
        assert stand.arrived_at(day_before.message_id).astimezone(dt.UTC).hour == 13
        assert "завтра, 9 марта, в 15:00" in day_before.text
        assert "сегодня, 9 марта, в 15:00" in two_hours.text
        for message in (day_before, two_hours):
            assert "Стрижка женская" in message.text
            assert "Анна" in message.text
            assert ADDRESS in message.text
            assert "Мария" in message.text
        # the rows are sent, with the ids the phone saw
        stored = {r.kind: r for r in await stand.storage.reminders.for_visit(stand.company_id, 101)}
        assert stored["day_before"].status is ReminderStatus.SENT
        assert stored["day_before"].message_id == day_before.message_id
        assert stored["two_hours"].message_id == two_hours.message_id
        # the assistant keeps the last prompt, so a reply is read in its light
        conversation = await stand.storage.conversations.get(stand.company_id, PHONE)
        assert conversation is not None
        assert conversation.state["prompt"]["kind"] == PromptKind.TWO_HOURS.value

        # the review request follows 2 h after the visit ends (16:00 + 2 h), in daytime
        await trio.sleep_until(at_trio(local(day, 18, 30)))
        got = stand.delivered(PHONE)
        assert len(got) == 3
        assert (
            local(day, 18)
            <= stand.arrived_at(got[2].message_id)
            <= local(day, 18) + (ARRIVAL_SLACK)
        )
        status = stand.scheduler.status()
        assert (status.sent, status.skipped, status.backlog) == (3, 0, 0)


async def test_the_scheduler_sleeps_until_the_next_row_not_polling(
    autojump_clock: MockClock,
) -> None:
    """With nothing due it passes once per ``max_sleep`` (300 s), not every second."""
    async with open_stand() as stand:
        day = NOW.date() + dt.timedelta(days=7)
        await stand.plant(stand.visit(102, PHONE, local(day, 15)))
        before = stand.scheduler.passes
        await trio.sleep(3600.0)
        # one claim per pass (nothing due), at most one pass per max_sleep, plus the wake-up
        assert stand.scheduler.passes - before <= 3600 / 300 + 2
        assert stand.scheduler.status().next_due == local(
            day - dt.timedelta(days=1), 18
        ).astimezone(dt.UTC)


async def test_only_a_node_given_reminder_options_runs_the_scheduler(
    autojump_clock: MockClock,
) -> None:
    assert node_module.REMINDERS_CHILD == scheduler_module.REMINDERS_CHILD
    settings = stand_settings()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=SimulatedWorld()) as gateway,
        open_node(settings, storage, gateway) as plain,
    ):
        assert plain.reminders is None
        ids = [child["id"] for child in plain.tree()["children"]]
        assert "companies" in ids and scheduler_module.REMINDERS_CHILD not in ids
    async with open_stand() as stand:
        ids = [child["id"] for child in stand.node.tree()["children"]]
        assert ids.index(scheduler_module.REMINDERS_CHILD) == ids.index("conversations.sweep") + 1


async def test_a_row_the_planner_makes_due_sooner_wakes_the_scheduler(
    autojump_clock: MockClock,
) -> None:
    """The planner's ``notify`` is the scheduler's ``announce``: a scheduler that would next
    look in a day sends a reminder planned for this evening on time."""
    options = ReminderOptions(wall_clock=wall, max_sleep=86400.0)
    async with open_stand(options=options) as stand:
        await trio.sleep(60.0)  # asleep now, until tomorrow
        assert stand.node.assistant is not None
        planner = stand.node.assistant.deps.planner
        assert planner is not None
        tomorrow = NOW.date() + dt.timedelta(days=1)
        starts = local(tomorrow, 15)
        booked = NOW - dt.timedelta(days=7)
        record = SalonRecord(
            company_id=stand.company_id,
            record_id=801,
            client_phone=PHONE,
            client_name="Мария",
            staff_id=7,
            services=[{"title": "Маникюр"}],
            starts_at=starts.astimezone(dt.UTC),
            seance_length=3600,
            attendance=0,
            changed_at=wall(),
            raw={
                "visit_id": 9801,
                "create_date": booked.isoformat(),
                "staff": {"name": "Ольга"},
            },
        )
        await stand.storage.records.apply(record)
        company = await stand.storage.companies.get(stand.company_id)
        assert company is not None
        await planner.plan_record(company, record)

        await trio.sleep_until(at_trio(local(NOW.date(), 18, 30)))
        got = stand.delivered(PHONE)
        assert len(got) == 1
        assert local(NOW.date(), 18) <= stand.arrived_at(got[0].message_id)
        assert stand.arrived_at(got[0].message_id) <= local(NOW.date(), 18) + ARRIVAL_SLACK
        assert "Маникюр" in got[0].text and "Ольга" in got[0].text
