"""The in-memory twin of :class:`~storage._results.SalonResults` (the rules: ``_results``).

It reads only the salon's own rows, through the per-company structures of the
:class:`MemoryDatabase` (messages, audit events, reminders, reviews by company), and puts
each row in its day with ``bisect`` over the same local-midnight bounds PostgreSQL's
``width_bucket`` uses, so both backends count a moment on the same day.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import trio

from ._models import Direction, MessageStatus, ReminderStatus
from ._results import (
    REVIEW_KIND,
    SALON_SENT_EVENT,
    PeriodResults,
    assemble,
    check_company,
    check_span,
    counted_event,
    day_bounds,
    first_day,
)

if TYPE_CHECKING:
    from ._memory_db import MemoryDatabase

__all__ = ["MemoryResults"]


class MemoryResults:
    """:class:`SalonResults` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def daily(
        self, company_id: int, zone: ZoneInfo, days: int, *, last: date | None = None
    ) -> PeriodResults:
        await trio.lowlevel.checkpoint()
        zone, days, last = check_span(zone, days, last)
        self._db.require_company(check_company(company_id))
        first = first_day(zone, days, last, self._db.clock())
        bounds = day_bounds(zone, first, days)
        start, end = bounds[0], bounds[-1]

        def bucket(moment: datetime | None) -> int | None:
            if moment is None or not start <= moment < end:
                return None
            return bisect_right(bounds, moment)

        db = self._db
        own_events = db.events_of.get(company_id, ())
        salon_written = {
            e.data.get("message_id") for e in own_events if e.event_type == SALON_SENT_EVENT
        }
        reminders = [db.reminders[i] for i in db.reminders_of.get(company_id, ())]
        reminder_ids = {r.message_id for r in reminders if r.message_id is not None}
        answered: Counter[int] = Counter()
        for message_id in db.messages_of.get(company_id, ()):
            m = db.messages[message_id]
            if (
                m.direction != Direction.OUTBOUND.value
                or m.status == MessageStatus.FAILED.value
                or m.wa_message_id in reminder_ids
                or m.wa_message_id in salon_written
            ):
                continue
            if (b := bucket(m.created_at)) is not None:
                answered[b] += 1
        events: Counter[tuple[int, str]] = Counter()
        for e in own_events:
            if counted_event(e.event_type, e.data) and (b := bucket(e.created_at)) is not None:
                events[(b, e.event_type)] += 1
        sent: Counter[int] = Counter()
        for r in reminders:
            if r.status is not ReminderStatus.SENT or r.kind == REVIEW_KIND:
                continue
            if (b := bucket(r.updated_at)) is not None:
                sent[b] += 1
        ratings: Counter[tuple[int, int]] = Counter()
        for review in db.reviews.of(company_id):
            if (b := bucket(review.updated_at)) is not None:
                ratings[(b, review.rating)] += 1
        return assemble(first, days, answered, events, sent, ratings)
