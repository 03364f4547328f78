# ruff: noqa: S608  -- f-strings splice only module constants
"""A salon's results per local day on PostgreSQL (the rules: :mod:`storage._results`).

One grouped query per source — messages, audit events, reminders, reviews — each reading
only the salon's rows of the span through an index led by ``company_id`` (migration 0014),
all four in one bridge crossing. Rows are put in their day by ``width_bucket`` over the
local-midnight bounds computed in Python (``_results.day_bounds``), so PostgreSQL's own
time-zone data never decides a day and both backends agree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from ._errors import NotFound
from ._fields import Clock, utc_now
from ._pg_pool import PgPool
from ._results import (
    AUDIT_COUNTS,
    HANDOFF_EVENT,
    HANDOFF_MODE,
    REVIEW_KIND,
    SALON_SENT_EVENT,
    PeriodResults,
    assemble,
    check_company,
    check_span,
    day_bounds,
    first_day,
)

__all__ = ["PgResults"]

# $1 company, $2 the day bounds (timestamptz[]), $3 the first bound, $4 the last one.
_DAY = "width_bucket({column}, $2::timestamptz[])"
_ANSWERED = f"""SELECT {_DAY.format(column="m.created_at")} AS day, count(*) AS n
    FROM messages m
   WHERE m.company_id = $1 AND m.direction = 'out' AND m.status <> 'failed'
     AND m.created_at >= $3 AND m.created_at < $4
     AND NOT EXISTS (SELECT 1 FROM reminders r
                      WHERE r.company_id = m.company_id AND r.message_id = m.wa_message_id)
     AND NOT EXISTS (SELECT 1 FROM marketplace_events e
                      WHERE e.company_id = m.company_id AND e.event_type = $5
                        AND e.data->>'message_id' = m.wa_message_id)
   GROUP BY 1"""
_EVENTS = f"""SELECT {_DAY.format(column="created_at")} AS day, event_type, count(*) AS n
    FROM marketplace_events
   WHERE company_id = $1 AND event_type = ANY($5::text[])
     AND created_at >= $3 AND created_at < $4
     AND (event_type <> $6 OR data->>'mode' = $7)
   GROUP BY 1, 2"""
_REMINDERS = f"""SELECT {_DAY.format(column="updated_at")} AS day, count(*) AS n
    FROM reminders
   WHERE company_id = $1 AND status = 'sent' AND kind <> $5
     AND updated_at >= $3 AND updated_at < $4
   GROUP BY 1"""
_RATINGS = f"""SELECT {_DAY.format(column="updated_at")} AS day, rating, count(*) AS n
    FROM reviews
   WHERE company_id = $1 AND updated_at >= $3 AND updated_at < $4
   GROUP BY 1, 2"""

_Counts = tuple[
    list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]
]


async def _read(conn: asyncpg.Connection, company_id: int, bounds: list[datetime]) -> _Counts:
    """The four grouped counts, in one snapshot (a read-only repeatable-read transaction)."""
    span = (company_id, bounds, bounds[0], bounds[-1])
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if await conn.fetchval("SELECT 1 FROM companies WHERE id = $1", company_id) is None:
            raise NotFound(f"company {company_id}")
        answered = await conn.fetch(_ANSWERED, *span, SALON_SENT_EVENT)
        events = await conn.fetch(_EVENTS, *span, list(AUDIT_COUNTS), HANDOFF_EVENT, HANDOFF_MODE)
        sent = await conn.fetch(_REMINDERS, *span, REVIEW_KIND)
        ratings = await conn.fetch(_RATINGS, *span)
    return answered, events, sent, ratings


class PgResults:
    """:class:`~storage._results.SalonResults` on PostgreSQL."""

    def __init__(self, pool: PgPool, clock: Clock | None) -> None:
        self._pool = pool
        self._clock = clock

    def _now(self) -> datetime:
        return utc_now() if self._clock is None else self._clock()

    async def daily(
        self, company_id: int, zone: ZoneInfo, days: int, *, last: date | None = None
    ) -> PeriodResults:
        zone, days, last = check_span(zone, days, last)
        company_id = check_company(company_id)
        first = first_day(zone, days, last, self._now())
        bounds = day_bounds(zone, first, days)
        answered, events, sent, ratings = await self._pool.run(_read, company_id, bounds)
        return assemble(
            first,
            days,
            _by(answered, "day"),
            _by(events, "day", "event_type"),
            _by(sent, "day"),
            _by(ratings, "day", "rating"),
        )


def _by(recs: list[asyncpg.Record], *keys: str) -> dict[Any, int]:
    """Counts keyed by one column, or by a tuple of several."""
    if len(keys) == 1:
        return {rec[keys[0]]: rec["n"] for rec in recs}
    return {tuple(rec[k] for k in keys): rec["n"] for rec in recs}
