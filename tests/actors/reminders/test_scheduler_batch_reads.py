"""A claimed batch reads each salon's company row and settings once, even though its rows are
handled concurrently: the rows of one salon wait for the first one's read instead of each
starting its own (with PostgreSQL every read is a round trip: 2,000 rows of 20 salons made
~830 company and ~810 settings reads before, ~410 of each after)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio.testing import MockClock

from storage import ReminderStatus

from .scheduler_stand import at_trio, local, planned_rows, visit
from .test_scheduler_unit import Company, linked_salon, scheduler

DAY = dt.date(2026, 3, 4)  # Wednesday: the day-before reminders are due Tuesday 18:00
VISITS = 40  # one salon's burst, within one claim (batch 100), more than the concurrency


def counted(calls: list[int], read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``read`` that takes a moment (a database round trip) and is counted."""

    async def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        await trio.sleep(0.01)
        return await read(*args, **kwargs)

    return slow


async def test_a_salons_rows_in_one_batch_read_its_company_and_settings_once(
    autojump_clock: MockClock,
) -> None:
    async with linked_salon() as (storage, company_id):
        rows = []
        for n in range(VISITS):
            facts = visit(n + 1, f"7912000{n:04d}", local(DAY, 15), company_id=company_id)
            rows += [r for r in planned_rows(facts) if r.kind == "day_before"]
        await storage.reminders.plan(company_id, rows)
        company_reads: list[int] = []
        settings_reads: list[int] = []
        storage.companies.get = counted(company_reads, storage.companies.get)  # type: ignore[method-assign]
        storage.companies.get_many = counted(company_reads, storage.companies.get_many)  # type: ignore[method-assign,assignment]
        storage.reminder_settings.get = counted(  # type: ignore[method-assign]
            settings_reads, storage.reminder_settings.get
        )
        storage.reminder_settings.get_many = counted(  # type: ignore[method-assign,assignment]
            settings_reads, storage.reminder_settings.get_many
        )
        company = Company()
        sender = scheduler(storage, company)
        assert sender.concurrency < VISITS
        await trio.sleep_until(at_trio(local(DAY - dt.timedelta(days=1), 18)) + 1.0)

        await sender.run_pass()

        assert len(company.sent) == VISITS
        assert sender.passes == 2  # one claim took them all, the next found none
        assert len(company_reads) == 1
        assert len(settings_reads) == 1


async def test_a_batch_reads_its_visits_once_and_marks_sent_rows_together(
    autojump_clock: MockClock,
) -> None:
    """One ``records.get_many`` and one ``conversations.get_many`` for the claimed batch
    instead of a ``records.get`` and a ``conversations.get`` per row, and sent rows marked
    in a few ``mark_sent_many`` writes (each a round trip: the rows sent meanwhile wait for
    the next) instead of a ``mark_sent`` per row; every row ends sent."""
    async with linked_salon() as (storage, company_id):
        rows = []
        for n in range(VISITS):
            facts = visit(n + 1, f"7912000{n:04d}", local(DAY, 15), company_id=company_id)
            rows += [r for r in planned_rows(facts) if r.kind == "day_before"]
        await storage.reminders.plan(company_id, rows)
        single_reads: list[int] = []
        batch_reads: list[int] = []
        single_marks: list[int] = []
        batch_marks: list[int] = []
        storage.records.get = counted(single_reads, storage.records.get)  # type: ignore[method-assign,assignment]
        storage.records.get_many = counted(batch_reads, storage.records.get_many)  # type: ignore[method-assign,assignment]
        chat_reads: list[int] = []
        chat_batch_reads: list[int] = []
        chats = storage.conversations
        chats.get = counted(chat_reads, chats.get)  # type: ignore[method-assign,assignment]
        chats.get_many = counted(chat_batch_reads, chats.get_many)  # type: ignore[method-assign,assignment]
        reminders = storage.reminders
        reminders.mark_sent = counted(single_marks, reminders.mark_sent)  # type: ignore[method-assign,assignment]
        reminders.mark_sent_many = counted(batch_marks, reminders.mark_sent_many)  # type: ignore[method-assign,assignment]
        company = Company()
        sender = scheduler(storage, company)
        await trio.sleep_until(at_trio(local(DAY - dt.timedelta(days=1), 18)) + 1.0)

        await sender.run_pass()

        assert len(company.sent) == VISITS
        assert (len(single_reads), len(batch_reads)) == (0, 1)
        assert (len(chat_reads), len(chat_batch_reads)) == (0, 1)
        assert single_marks == []
        assert 1 <= len(batch_marks) <= VISITS // 8, len(batch_marks)
        assert sender.status().sent == VISITS
        for n in range(VISITS):
            (row,) = await storage.reminders.for_visit(company_id, n + 1)
            assert row.status is ReminderStatus.SENT and row.claim_until is None
