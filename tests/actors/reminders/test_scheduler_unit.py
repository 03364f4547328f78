"""The reminder scheduler alone, over in-memory storage and a stand-in for the company actors
(``ask`` answered by the test), under trio's mock clock: wake-ups over pub/sub, a pub/sub
that fails, rows given back (a full queue, another node's salon, a frozen salon) and sent
later with the same id, rows skipped for the salon or the chat, and a schedule that cannot be
read for a while."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio
from trio.testing import MockClock

from actors.company import OutboundQueueFull, SendingUnavailable
from actors.company import messages as m
from actors.reminders import ReminderOptions, ReminderScheduler, ReminderSettings
from actors.reminders._scheduler import ELSEWHERE_RETRY, ERROR_PAUSE, UNAVAILABLE_RETRY
from metrics import MetricsRegistry
from storage import CompanyStatus, ReminderStatus, Storage, StorageUnavailable, open_storage

from .scheduler_stand import ZONE, at_trio, local, planned_rows, salon_record, visit, wall

PHONE = "79120003344"
DAY = dt.date(2026, 3, 4)  # Wednesday; the stand's now is Monday 10:00


class Company:
    """The company actors as the scheduler sees them: each ask answered by ``answer``."""

    def __init__(self) -> None:
        self.sent: list[m.SendText] = []
        self.times: list[float] = []
        self.refuse: list[Exception] = []  # raised by the next asks, in order

    async def ask(self, company_id: int, message: Any, timeout: float) -> Any:
        assert isinstance(message, m.SendText)
        await trio.lowlevel.checkpoint()
        if self.refuse:
            raise self.refuse.pop(0)
        self.sent.append(message)
        self.times.append(trio.current_time())
        return message.message_id


class BrokenPubSub:
    """A pub/sub whose every call fails (Redis down)."""

    async def publish(self, channel: str, message: Any) -> int:
        raise StorageUnavailable("redis", "down")

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Any]:
        @asynccontextmanager
        async def failing() -> AsyncIterator[Any]:
            raise StorageUnavailable("redis", "down")
            yield  # pragma: no cover

        return failing()


@asynccontextmanager
async def linked_salon() -> AsyncIterator[tuple[Storage, int]]:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage:
        created = await storage.companies.create(6161, title="Салон", timezone=ZONE.key)
        company_id = created.company.id
        await storage.companies.update(company_id, whatsapp_jid="79001234567@s.whatsapp.net")
        await set_status(storage, company_id, CompanyStatus.ACTIVE)
        yield storage, company_id


async def set_status(storage: Storage, company_id: int, status: CompanyStatus) -> None:
    moved = await storage.companies.transition(company_id, list(CompanyStatus), status)
    assert moved is not None


def scheduler(
    storage: Storage, company: Company, *, owner: str = "node-a", **kw: Any
) -> ReminderScheduler:
    options = kw.pop("options", ReminderOptions(wall_clock=wall))
    return ReminderScheduler(
        storage, company.ask, owner=owner, options=options, metrics=MetricsRegistry(), **kw
    )


async def plant(storage: Storage, company_id: int, record_id: int = 1) -> None:
    facts = visit(record_id, PHONE, local(DAY, 15), company_id=company_id)
    rows = [r for r in planned_rows(facts) if r.kind == "day_before"]  # Tuesday 18:00
    await storage.reminders.plan(company_id, rows)


async def day_before(storage: Storage, company_id: int, record_id: int = 1) -> Any:
    rows = await storage.reminders.for_visit(company_id, record_id)
    return next(r for r in rows if r.kind == "day_before")


TUESDAY_18 = local(DAY - dt.timedelta(days=1), 18)


async def test_another_process_wakes_the_scheduler_over_pubsub(
    autojump_clock: MockClock,
) -> None:
    """A row planned elsewhere sooner than this scheduler's long sleep is sent on time: the
    announcement reaches it over ``reminders:wake``."""
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        long_sleep = ReminderOptions(wall_clock=wall, max_sleep=7 * 86400.0)
        here = scheduler(storage, company, options=long_sleep)
        await nursery.start(here.run)
        await trio.sleep(60.0)  # asleep now, for a week (nothing planned)
        elsewhere = scheduler(storage, Company(), owner="node-b", options=long_sleep)
        await plant(storage, company_id)
        await elsewhere.announce()  # node-b is not running: only pub/sub can wake node-a
        await trio.sleep_until(at_trio(TUESDAY_18) + 60.0)
        assert len(company.sent) == 1
        assert at_trio(TUESDAY_18) <= company.times[0] <= at_trio(TUESDAY_18) + 1.0
        nursery.cancel_scope.cancel()


async def test_a_broken_pubsub_neither_crashes_it_nor_loses_a_row(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        broken = dataclasses.replace(storage, pubsub=BrokenPubSub())
        company = Company()
        here = scheduler(broken, company)
        await nursery.start(here.run)
        await plant(storage, company_id)
        await here.announce()  # the publish fails: logged, the local wake still counts
        await trio.sleep_until(at_trio(TUESDAY_18) + 1.0)
        assert len(company.sent) == 1
        # planned by another process, no wake-up at all: found within max_sleep
        facts = visit(2, "79120005566", local(DAY, 16), company_id=company_id)
        late = [
            dataclasses.replace(r, due_at=wall())
            for r in planned_rows(facts)
            if r.kind == "two_hours"
        ]
        await storage.reminders.plan(company_id, late)
        await trio.sleep(here.options.max_sleep + 1.0)
        assert len(company.sent) == 2
        nursery.cancel_scope.cancel()


async def test_a_refused_send_is_given_back_and_sent_later_with_the_same_id(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        company.refuse = [
            OutboundQueueFull(company_id, 500),
            SendingUnavailable(company_id, "reconnecting"),
        ]
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await plant(storage, company_id)
        await here.announce()
        await trio.sleep_until(at_trio(TUESDAY_18) + 1.0)
        assert company.sent == []
        row = await day_before(storage, company_id)
        assert row.status is ReminderStatus.PLANNED  # given back, for 30 s ± 20 %
        assert TUESDAY_18 + dt.timedelta(seconds=24) <= row.due_at
        assert row.due_at <= TUESDAY_18 + dt.timedelta(seconds=37)
        first_id = row.message_id
        await trio.sleep_until(at_trio(TUESDAY_18) + 300.0)
        assert [s.message_id for s in company.sent] == [first_id]
        row = await day_before(storage, company_id)
        assert (row.status, row.attempts) == (ReminderStatus.SENT, 3)
        assert "SendingUnavailable" in (here.status().last_error or "")
        nursery.cancel_scope.cancel()


async def test_another_nodes_salon_is_given_back_until_it_is_ours(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        holder: list[str | None] = ["node-b"]

        async def place(cid: int) -> str | None:
            await trio.lowlevel.checkpoint()
            return holder[0]

        here = scheduler(storage, company, place=place)
        await nursery.start(here.run)
        await plant(storage, company_id)
        await here.announce()
        await trio.sleep_until(at_trio(TUESDAY_18) + 1.0)
        assert company.sent == []
        row = await day_before(storage, company_id)
        assert row.status is ReminderStatus.PLANNED
        assert abs(row.due_at - (TUESDAY_18 + ELSEWHERE_RETRY)) < dt.timedelta(seconds=1)
        holder[0] = None  # node-b died; its lease is ours now
        await trio.sleep(10.0)
        assert len(company.sent) == 1
        assert company.sent[0].message_id == row.message_id
        nursery.cancel_scope.cancel()


async def test_a_frozen_salons_row_waits_and_goes_once_it_is_unfrozen(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await plant(storage, company_id)
        await set_status(storage, company_id, CompanyStatus.FROZEN)
        await here.announce()
        await trio.sleep_until(at_trio(TUESDAY_18) + 1.0)
        row = await day_before(storage, company_id)
        assert row.status is ReminderStatus.PLANNED
        assert abs(row.due_at - (TUESDAY_18 + UNAVAILABLE_RETRY)) < dt.timedelta(seconds=1)
        # unfrozen before its send_by: it goes at the next look
        await set_status(storage, company_id, CompanyStatus.ACTIVE)
        await trio.sleep_until(at_trio(TUESDAY_18 + UNAVAILABLE_RETRY) + 1.0)
        assert len(company.sent) == 1
        assert company.sent[0].message_id == row.message_id
        nursery.cancel_scope.cancel()


async def test_an_uninstalled_salons_due_row_is_skipped(autojump_clock: MockClock) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await plant(storage, company_id)
        await set_status(storage, company_id, CompanyStatus.UNINSTALLED)
        await here.announce()
        await trio.sleep_until(at_trio(TUESDAY_18) + 1.0)
        row = await day_before(storage, company_id)
        assert (row.status, row.reason) == (ReminderStatus.SKIPPED, "uninstalled")
        assert company.sent == []
        assert here.status().skipped == 1
        nursery.cancel_scope.cancel()


async def test_a_schedule_that_cannot_be_read_pauses_the_loop_not_the_node(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        reminders = storage.reminders
        failures = [3]
        real_claim = reminders.claim_due

        async def flaky_claim(*args: Any, **kwargs: Any) -> Any:
            if failures[0] > 0:
                failures[0] -= 1
                raise StorageUnavailable("postgres", "connection lost")
            return await real_claim(*args, **kwargs)

        reminders.claim_due = flaky_claim  # type: ignore[method-assign]
        await plant(storage, company_id)
        await trio.sleep_until(at_trio(TUESDAY_18) - 1.0)
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await trio.sleep(3 * ERROR_PAUSE + 1.0)  # three failed passes, ERROR_PAUSE apart
        assert failures == [0]
        assert "StorageUnavailable" in (here.status().last_error or "")
        assert len(company.sent) == 1
        nursery.cancel_scope.cancel()


async def test_rows_are_judged_again_at_the_moment_of_sending(
    autojump_clock: MockClock,
) -> None:
    """What changed since planning counts: an attended visit gets no reminder (its review
    still goes), a no-show nothing, a kind switched off nothing, and a row found after its
    ``send_by`` (the scheduler was down) is skipped as ``past``."""
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        attended = visit(11, "79120000011", local(DAY, 15), company_id=company_id)
        no_show = visit(12, "79120000012", local(DAY, 15), company_id=company_id)
        for facts in (attended, no_show):
            await storage.reminders.plan(company_id, planned_rows(facts))
        await storage.records.apply(salon_record(attended, attendance=1))
        await storage.records.apply(salon_record(no_show, attendance=-1))
        off = visit(13, "79120000013", local(DAY, 16), company_id=company_id)
        await storage.reminders.plan(company_id, planned_rows(off))
        # the scheduler starts on Tuesday at 21:30: the day-before rows (18:00, send_by 21:00)
        # are past; then the salon switches the 2-hours reminder off
        await trio.sleep_until(at_trio(TUESDAY_18) + 3.5 * 3600)
        switched = dataclasses.replace(ReminderSettings(), two_hours_enabled=False)
        await storage.reminder_settings.put(company_id, switched.to_json())
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await trio.sleep_until(at_trio(local(DAY, 20)))

        def outcome(rows: list[Any]) -> dict[str, tuple[str, str | None]]:
            return {r.kind: (r.status.value, r.reason) for r in rows}

        assert outcome(await storage.reminders.for_visit(company_id, 11)) == {
            "day_before": ("skipped", "past"),
            "two_hours": ("skipped", "attended"),
            "review": ("sent", None),
        }
        assert outcome(await storage.reminders.for_visit(company_id, 12)) == {
            "day_before": ("skipped", "past"),
            "two_hours": ("skipped", "no_show"),
            "review": ("skipped", "no_show"),
        }
        assert outcome(await storage.reminders.for_visit(company_id, 13)) == {
            "day_before": ("skipped", "past"),
            "two_hours": ("skipped", "disabled"),
            "review": ("sent", None),
        }
        assert sorted(s.to_phone for s in company.sent) == ["79120000011", "79120000013"]
        nursery.cancel_scope.cancel()


async def test_a_due_row_another_claimer_holds_is_waited_for_not_spun_on(
    autojump_clock: MockClock,
) -> None:
    """PostgreSQL's ``SKIP LOCKED`` hides a row another process is claiming right now, while
    ``next_due`` still shows it due: the scheduler looks again a second later, no sooner."""
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        reminders = storage.reminders
        real_claim = reminders.claim_due
        held_until = at_trio(TUESDAY_18) + 10.0
        calls: list[float] = []

        async def skip_locked(*args: Any, **kwargs: Any) -> Any:
            calls.append(trio.current_time())
            assert len(calls) < 100, "the scheduler spins on a row it cannot claim"
            if trio.current_time() < held_until:
                await trio.lowlevel.checkpoint()
                return []
            return await real_claim(*args, **kwargs)

        reminders.claim_due = skip_locked  # type: ignore[method-assign]
        await plant(storage, company_id)
        await trio.sleep_until(at_trio(TUESDAY_18) - 60.0)
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await trio.sleep_until(held_until + 5.0)
        assert len(company.sent) == 1
        during = [t for t in calls if at_trio(TUESDAY_18) <= t < held_until]
        assert 5 <= len(during) <= 12  # about one a second
        nursery.cancel_scope.cancel()


async def test_a_review_request_in_quiet_hours_waits_for_their_end(
    autojump_clock: MockClock,
) -> None:
    """A review row (without a ``send_by``) found in quiet hours is given back until they
    end (09:00 local), then sent, with the same id."""
    async with linked_salon() as (storage, company_id), trio.open_nursery() as nursery:
        company = Company()
        facts = visit(21, PHONE, local(DAY, 15), company_id=company_id)
        review = next(r for r in planned_rows(facts) if r.kind == "review")
        late = dataclasses.replace(review, due_at=local(DAY, 22).astimezone(dt.UTC), send_by=None)
        await storage.reminders.plan(company_id, [late])
        here = scheduler(storage, company)
        await nursery.start(here.run)
        await trio.sleep_until(at_trio(local(DAY, 23)))
        row = next(iter(await storage.reminders.for_visit(company_id, 21)))
        assert row.status is ReminderStatus.PLANNED
        morning = local(DAY + dt.timedelta(days=1), 9)
        assert row.due_at == morning.astimezone(dt.UTC)
        assert company.sent == []
        await trio.sleep_until(at_trio(morning) + 5.0)
        assert [s.message_id for s in company.sent] == [row.message_id]
        assert at_trio(morning) <= company.times[0]
        nursery.cancel_scope.cancel()
