"""The reminder scheduler's cases through a running node (``scheduler_stand``, trio's mock
clock tied to the wall clock, production pacing): quiet hours, a burst of 300 paced and sent
once each, a cancelled and a moved visit, opted-out and handed-over chats, a claimer that died
holding its rows, and what ``/health/tree`` shows."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

import trio
from trio.testing import MockClock

from actors.company import messages as m
from actors.reminders import MessageKind, ReminderSettings
from actors.reminders._scheduler import REMINDERS_CHILD
from storage import ConversationMode, ReminderStatus
from web._app import create_app
from web._tree_text import render_tree

from .scheduler_stand import (
    ADMIN_KEY,
    NOW,
    PRODUCTION_PACING,
    ZONE,
    ReminderStand,
    at_trio,
    kinds_of,
    local,
    open_stand,
    planned_rows,
    salon_record,
    wall,
)

TUESDAY = NOW.date() + dt.timedelta(days=1)
WEDNESDAY = NOW.date() + dt.timedelta(days=2)
THURSDAY = NOW.date() + dt.timedelta(days=3)
SLACK = dt.timedelta(seconds=10)


def phone(n: int) -> str:
    return f"7912{n:07d}"


def quiet_default(moment: dt.datetime) -> bool:
    """In the default quiet hours (21:00–09:00 local)."""
    clock = moment.astimezone(ZONE).time()
    return clock >= dt.time(21) or clock < dt.time(9)


async def reasons(stand: ReminderStand, record_id: int) -> dict[str, tuple[str, str | None]]:
    rows = await stand.storage.reminders.for_visit(stand.company_id, record_id)
    return {r.kind: (r.status.value, r.reason) for r in rows}


async def test_reminders_planned_into_quiet_hours_move_earlier_or_are_skipped(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        # Wednesday visits from 09:00 to 12:00: the 2-hours reminder of those before 11:00
        # would fall in the quiet morning; it would move to 20:30 on Tuesday, the evening of
        # the day-before reminder, so planning skips it.
        early = {}
        for n, (hour, minute) in enumerate([(9, 0), (9, 30), (10, 0), (10, 30), (11, 0), (12, 0)]):
            rows = await stand.plant(stand.visit(200 + n, phone(n), local(WEDNESDAY, hour, minute)))
            early[phone(n)] = kinds_of(rows)
        assert early[phone(0)] == [MessageKind.DAY_BEFORE, MessageKind.REVIEW]
        assert early[phone(3)] == [MessageKind.DAY_BEFORE, MessageKind.REVIEW]
        assert early[phone(4)] == [
            MessageKind.DAY_BEFORE,
            MessageKind.TWO_HOURS,
            MessageKind.REVIEW,
        ]
        # Booked Monday at 19:00 for Tuesday 09:30: no day-before reminder (booked after 18:00
        # the day before); the 2-hours one (07:30, quiet) moves earlier, to 20:30 on Monday.
        await trio.sleep_until(at_trio(local(NOW.date(), 19)))
        late = await stand.plant(stand.visit(299, phone(99), local(TUESDAY, 9, 30)))
        assert kinds_of(late) == [MessageKind.TWO_HOURS, MessageKind.REVIEW]

        await trio.sleep_until(at_trio(local(WEDNESDAY, 10, 30)))
        moved = stand.delivered(phone(99))
        assert local(NOW.date(), 20, 30) <= stand.arrived_at(moved[0].message_id)
        assert stand.arrived_at(moved[0].message_id) <= local(NOW.date(), 20, 30) + SLACK
        assert "завтра, 3 марта, в 09:30" in moved[0].text
        counts = {p: len(stand.delivered(p)) for p in [phone(n) for n in range(6)]}
        # day-before for all; the 2-hours one for 11:00 (at 09:00) and 12:00 (at 10:00)
        assert list(counts.values()) == [1, 1, 1, 1, 2, 2]
        assert len(stand.delivered()) == 6 + 2 + 2  # and phone(99)'s reminder and review
        for message in stand.delivered():
            assert not quiet_default(stand.arrived_at(message.message_id)), message.text


async def test_a_row_that_new_settings_put_in_quiet_hours_is_not_sent(
    autojump_clock: MockClock,
) -> None:
    """Planned for 18:00, then the salon's quiet hours start at 17:30 (and its reminders at
    17:00): at 18:00 the scheduler skips the row instead of sending into quiet hours."""
    async with open_stand() as stand:
        await stand.plant(stand.visit(301, phone(1), local(WEDNESDAY, 15)))
        changed = replace(
            ReminderSettings(), quiet_start=dt.time(17, 30), day_before_at=dt.time(17)
        ).validate()
        await stand.storage.reminder_settings.put(stand.company_id, changed.to_json())
        await trio.sleep_until(at_trio(local(TUESDAY, 20)))
        assert stand.delivered(phone(1)) == []
        assert (await reasons(stand, 301))["day_before"] == ("skipped", "quiet_hours")


async def test_three_hundred_reminders_at_one_hour_go_out_paced_once_each(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        visits = [stand.visit(1000 + n, phone(n), local(THURSDAY, 12)) for n in range(300)]
        for facts in visits:
            await stand.storage.records.apply(salon_record(facts))
        assert await stand.plant_many(visits) == 900  # day-before, 2-hours, review each

        due = local(WEDNESDAY, 18)
        await trio.sleep_until(at_trio(due + dt.timedelta(minutes=20)))
        got = stand.delivered()
        assert len(got) == 300
        assert len({d.to_phone for d in got}) == 300  # one each
        assert len({d.message_id for d in got}) == 300
        assert stand.world.send_attempts(stand.company_id) == 300  # none sent twice
        rows = [
            r
            for facts in visits
            for r in await stand.storage.reminders.for_visit(stand.company_id, facts.record_id)
            if r.kind == "day_before"
        ]
        assert {r.message_id for r in rows} == {d.message_id for d in got}
        assert all(r.status is ReminderStatus.SENT and r.attempts == 1 for r in rows)
        by_phone = {d.to_phone: d.message_id for d in got}
        assert all(by_phone[phone(r.record_id - 1000)] == r.message_id for r in rows)
        # paced by the company's outbound queue: a gap of at least min_gap, at most
        # per_minute in any minute, so the burst takes 15 minutes and ends before quiet hours
        times = sorted(stand.arrived[d.message_id] for d in got)
        assert times[0] >= at_trio(due)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= PRODUCTION_PACING.min_gap - 1e-6
        for i, start in enumerate(times):
            in_minute = sum(1 for t in times[i:] if t < start + 60.0)
            assert in_minute <= PRODUCTION_PACING.per_minute
        assert times[-1] - times[0] >= (300 / PRODUCTION_PACING.per_minute - 1) * 60.0
        assert times[-1] <= at_trio(due + dt.timedelta(minutes=16))
        assert stand.scheduler.status().sent == 300


async def test_a_cancelled_visit_gets_nothing_and_a_moved_one_only_at_its_new_time(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        cancelled = stand.visit(401, phone(1), local(WEDNESDAY, 15))
        moving = stand.visit(402, phone(2), local(WEDNESDAY, 15))
        await stand.plant(cancelled)
        await stand.plant(moving)
        # YClients says (webhook stored, planner not run yet): 401 deleted, 402 now Thursday
        await stand.storage.records.mark_deleted(stand.company_id, 401, changed_at=wall())
        new_start = local(THURSDAY, 17)
        await stand.storage.records.apply(
            salon_record(moving, starts_at=new_start.astimezone(dt.UTC), changed_at=wall())
        )
        await trio.sleep_until(at_trio(local(TUESDAY, 19)))
        assert stand.delivered() == []  # Tuesday 18:00: the rows of both are skipped
        assert (await reasons(stand, 401))["day_before"] == ("skipped", "cancelled")
        assert (await reasons(stand, 402))["day_before"] == ("skipped", "moved")
        # the planner re-plans the moved visit at its new time
        moved = stand.visit(402, phone(2), new_start, booked=NOW)  # moved on Monday
        await stand.plant(moved, record=False)

        await trio.sleep_until(at_trio(local(THURSDAY, 17)))
        assert stand.delivered(phone(1)) == []
        got = stand.delivered(phone(2))
        assert len(got) == 2
        assert local(WEDNESDAY, 18) <= stand.arrived_at(got[0].message_id)
        assert stand.arrived_at(got[0].message_id) <= local(WEDNESDAY, 18) + SLACK
        assert local(THURSDAY, 15) <= stand.arrived_at(got[1].message_id)
        assert stand.arrived_at(got[1].message_id) <= local(THURSDAY, 15) + SLACK
        assert all("5 марта, в 17:00" in message.text for message in got)
        await trio.sleep_until(at_trio(local(THURSDAY, 20)))
        assert stand.delivered(phone(1)) == []  # no review for the cancelled visit either
        assert (await reasons(stand, 401))["review"] == ("skipped", "cancelled")


async def test_opted_out_and_handed_over_chats_receive_nothing(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        for n in range(3):
            await stand.plant(stand.visit(500 + n, phone(n), local(WEDNESDAY, 15)))
        conversations = stand.storage.conversations
        await conversations.set_mode(stand.company_id, phone(0), ConversationMode.OPTED_OUT)
        await conversations.set_mode(stand.company_id, phone(1), ConversationMode.HANDOFF)
        await trio.sleep_until(at_trio(local(WEDNESDAY, 19)))
        assert stand.delivered(phone(0)) == []
        assert stand.delivered(phone(1)) == []
        assert len(stand.delivered(phone(2))) == 3  # day-before, 2-hours, review
        for kind in ("day_before", "two_hours", "review"):
            assert (await reasons(stand, 500))[kind] == ("skipped", "opted_out")
            assert (await reasons(stand, 501))[kind] == ("skipped", "handed_over")
        metrics = stand.node.metrics
        skipped = "aiadmin_reminders_skipped_total"
        assert metrics.value(skipped, {"kind": "two_hours", "reason": "opted_out"}) == 1.0
        assert metrics.value(skipped, {"kind": "review", "reason": "handed_over"}) == 1.0
        assert metrics.value("aiadmin_reminders_sent_total", {"kind": "day_before"}) == 1.0


async def test_rows_of_a_claimer_that_died_go_out_once_with_their_message_ids(
    autojump_clock: MockClock,
) -> None:
    """Another process claimed both Tuesday-18:00 rows, queued one of the two messages and
    died before marking either: once its lease runs out each row is claimed again with the
    same message id — the queued one is not sent again, the other goes out then."""
    async with open_stand() as stand:
        await stand.plant(stand.visit(601, phone(1), local(WEDNESDAY, 15)))
        await stand.plant(stand.visit(602, phone(2), local(WEDNESDAY, 15)))
        due = local(TUESDAY, 18)
        lease = 120.0
        await trio.sleep_until(at_trio(due) - 1.0)
        dead = await stand.storage.reminders.claim_due(due, "dead-node", lease, limit=10)
        assert sorted(r.record_id for r in dead) == [601, 602]
        ids = {r.record_id: r.message_id for r in dead}
        await trio.sleep_until(at_trio(due))
        first = next(r for r in dead if r.record_id == 601)
        queued = await stand.node.company(stand.company_id).ask(
            m.SendText(phone(1), "Напоминание", message_id=first.message_id)
        )
        assert queued == ids[601]

        await trio.sleep_until(at_trio(local(TUESDAY, 19)))
        one, two = stand.delivered(phone(1)), stand.delivered(phone(2))
        assert [d.message_id for d in one] == [ids[601]]
        assert [d.message_id for d in two] == [ids[602]]
        assert stand.arrived_at(two[0].message_id) >= due + dt.timedelta(seconds=lease)
        assert stand.world.send_attempts(stand.company_id) == 2  # each id sent once
        rows = {
            r.record_id: r
            for r in [
                *await stand.storage.reminders.for_visit(stand.company_id, 601),
                *await stand.storage.reminders.for_visit(stand.company_id, 602),
            ]
            if r.kind == "day_before"
        }
        assert all(r.status is ReminderStatus.SENT and r.attempts == 2 for r in rows.values())
        assert {r.message_id for r in rows.values()} == set(ids.values())


async def test_health_tree_shows_the_scheduler_with_its_backlog_and_next_due(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        client = create_app(stand.node).test_client()
        headers = {"X-API-Key": ADMIN_KEY}

        async def scheduler_node() -> dict[str, object]:
            body = await (await client.get("/health/tree", headers=headers)).get_json()
            return next(c for c in body["tree"]["children"] if c["id"] == "reminders.scheduler")

        await stand.plant(stand.visit(701, phone(1), local(WEDNESDAY, 15)))
        shown = await scheduler_node()
        assert shown["state"] == "running"
        assert shown["reminders"] == {
            "backlog": 0,
            "next_due": local(TUESDAY, 18).astimezone(dt.UTC).isoformat(),
            "sent": 0,
            "skipped": 0,
            "last_error": None,
        }
        # two reminders planned by a process whose wake-up was lost (made due a minute ago):
        # they wait for the scheduler's next look, at most max_sleep away
        facts = stand.visit(702, phone(2), local(WEDNESDAY, 15))
        late = [
            replace(row, due_at=wall() - dt.timedelta(minutes=1))
            for row in planned_rows(facts)
            if row.kind != "review"
        ]
        await stand.storage.reminders.plan(stand.company_id, late)
        shown = await scheduler_node()
        assert shown["reminders"]["backlog"] == 2  # type: ignore[index]
        await trio.sleep(stand.scheduler.options.max_sleep + 5.0)
        shown = await scheduler_node()
        assert shown["reminders"]["backlog"] == 0  # type: ignore[index]
        assert shown["reminders"]["sent"] == 2  # type: ignore[index]
        assert len(stand.delivered(phone(2))) == 2
        # ``aiadmin tree`` prints the figures on the scheduler's line
        body = await (await client.get("/health/tree", headers=headers)).get_json()
        line = next(x for x in render_tree(body["tree"]).splitlines() if REMINDERS_CHILD in x)
        assert "running" in line and "backlog=0" in line and "sent=2" in line
