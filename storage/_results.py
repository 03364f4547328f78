"""A salon's results per local day (issue 16): what the assistant did for it, counted from
the tables that already record it. The interface, its values and the rules both backends
share; the in-memory twin is :mod:`storage._memory_results`, PostgreSQL's
:mod:`storage._pg_results` (one grouped query per source, one bridge crossing in all).

What each count is, on a salon-local day (the moment a row records falls in that day):

- ``answered`` — the assistant's replies: outbound ``messages`` of the salon (by
  ``created_at``, when queued) that are neither a reminder or review request (no
  ``reminders`` row carries their WhatsApp id) nor written by the salon from its page (no
  ``salon.message_sent`` audit event carries their WhatsApp id as ``message_id``), and did
  not fail (status other than ``failed``). Messages are deleted after
  ``AIADMIN_RETENTION_DAYS``: older days count only what is kept;
- ``booked`` / ``moved`` / ``cancelled`` / ``handed_over`` / ``reminders_confirmed`` — audit
  events ``assistant.booked`` / ``assistant.moved`` / ``assistant.cancelled`` /
  ``assistant.handoff`` / ``assistant.visit_confirmed`` (by ``created_at``). A hand-over is
  audited twice, as the stored mode change (``data.mode`` = ``handoff``) and as the
  decision's own entry (no ``mode``): only the first is counted (:data:`HANDOFF_MODE`);
- ``reminders_sent`` — ``reminders`` rows of the kinds that remind of a visit (every kind but
  ``review``) with status ``sent``, by ``updated_at`` (a sent row never changes again, so it
  is when it was sent);
- ``ratings`` — ``reviews`` rows by ``updated_at`` (when the visit's current rating was given:
  a later rating of the same visit replaces the earlier one and counts on its own day).

The ratings summary (average, count, distribution 1–5) is over the same ratings of the span.
Day boundaries are the salon zone's local midnights, computed here (:func:`day_bounds`) with
``zoneinfo`` for both backends, so PostgreSQL's own time-zone data never decides a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from . import _validate as v
from ._errors import ValidationError

__all__ = [
    "AUDIT_COUNTS",
    "COUNT_FIELDS",
    "HANDOFF_EVENT",
    "HANDOFF_MODE",
    "MAX_RESULT_DAYS",
    "REVIEW_KIND",
    "SALON_SENT_EVENT",
    "DailyResults",
    "PeriodResults",
    "RatingSummary",
    "SalonResults",
    "assemble",
    "check_company",
    "check_span",
    "counted_event",
    "day_bounds",
    "first_day",
]

#: The longest span :meth:`SalonResults.daily` reads at once.
MAX_RESULT_DAYS = 366
#: The audit event types counted, by the count they feed.
AUDIT_COUNTS: Mapping[str, str] = {
    "assistant.booked": "booked",
    "assistant.moved": "moved",
    "assistant.cancelled": "cancelled",
    "assistant.handoff": "handed_over",
    "assistant.visit_confirmed": "reminders_confirmed",
}
#: The hand-over's audit event counted: the stored mode change, which carries ``mode``.
HANDOFF_EVENT = "assistant.handoff"
HANDOFF_MODE = "handoff"
#: The audit event the salon page appends for a message the salon wrote (``message_id``:
#: the message's WhatsApp id); such messages are not the assistant's answers.
SALON_SENT_EVENT = "salon.message_sent"
#: The reminders kind that asks for a review (not a reminder of a visit).
REVIEW_KIND = "review"


@dataclass(frozen=True)
class DailyResults:
    """One salon-local day's counts (see the module docstring for what each one counts)."""

    day: date
    answered: int = 0
    booked: int = 0
    moved: int = 0
    cancelled: int = 0
    reminders_sent: int = 0
    reminders_confirmed: int = 0
    handed_over: int = 0
    ratings: int = 0

    def counts(self) -> dict[str, int]:
        """The counts by name (without the day), in :data:`COUNT_FIELDS` order."""
        return {name: getattr(self, name) for name in COUNT_FIELDS}


#: The names of :class:`DailyResults`' counts, in order.
COUNT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DailyResults) if f.name != "day")


@dataclass(frozen=True)
class RatingSummary:
    """The ratings of a span: how many of each star (``distribution[0]`` is 1 star)."""

    distribution: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def count(self) -> int:
        return sum(self.distribution)

    @property
    def average(self) -> float | None:
        """The mean rating, or ``None`` when there is none."""
        if not self.count:
            return None
        return sum(n * (star + 1) for star, n in enumerate(self.distribution)) / self.count


@dataclass(frozen=True)
class PeriodResults:
    """A span's results: every day of it, oldest first (days without anything hold zeros),
    and the summary of its ratings."""

    days: tuple[DailyResults, ...]
    ratings: RatingSummary

    def totals(self) -> dict[str, int]:
        """Each count summed over the span."""
        return {name: sum(getattr(d, name) for d in self.days) for name in COUNT_FIELDS}


class SalonResults(Protocol):
    """A salon's results per local day, read from messages, audit events, reminders and
    reviews (see the module docstring)."""

    async def daily(
        self, company_id: int, zone: ZoneInfo, days: int, *, last: date | None = None
    ) -> PeriodResults:
        """The ``days`` (1 … :data:`MAX_RESULT_DAYS`) salon-local days ending with ``last``
        (default: today in ``zone`` by the storage's clock). :class:`NotFound` for an
        unknown company, :class:`ValidationError` for a bad span."""
        ...


def counted_event(event_type: str, data: Mapping[str, object]) -> bool:
    """Whether an audit event counts (see :data:`AUDIT_COUNTS` and :data:`HANDOFF_MODE`)."""
    if event_type == HANDOFF_EVENT:
        return data.get("mode") == HANDOFF_MODE
    return event_type in AUDIT_COUNTS


def check_company(company_id: object) -> int:
    return v.positive_int("company_id", company_id)


def check_span(zone: object, days: object, last: object) -> tuple[ZoneInfo, int, date | None]:
    """The zone, the number of days and the last day (``None``: today), or
    :class:`ValidationError`."""
    if not isinstance(zone, ZoneInfo):
        raise ValidationError("zone", "must be a ZoneInfo")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RESULT_DAYS:
        raise ValidationError("days", f"must be an integer from 1 to {MAX_RESULT_DAYS}")
    if last is not None and (not isinstance(last, date) or isinstance(last, datetime)):
        raise ValidationError("last", "must be a date")
    return zone, days, last


def first_day(zone: ZoneInfo, days: int, last: date | None, now: datetime) -> date:
    """The span's first local day (``last`` defaults to ``now``'s local date)."""
    end = last if last is not None else now.astimezone(zone).date()
    return end - timedelta(days=days - 1)


def day_bounds(zone: ZoneInfo, first: date, days: int) -> list[datetime]:
    """The UTC moments of the local midnights that start each of the ``days`` days from
    ``first``, and the one that ends the last: ``days + 1`` increasing moments. A moment ``t``
    is in day ``i`` (1-based) when ``bounds[i - 1] <= t < bounds[i]`` — PostgreSQL's
    ``width_bucket(t, bounds)`` and ``bisect.bisect_right(bounds, t)`` alike. (A midnight a
    daylight-saving change skips is taken at the change.)"""
    return [
        datetime.combine(first + timedelta(days=n), time(0), tzinfo=zone).astimezone(UTC)
        for n in range(days + 1)
    ]


def assemble(
    first: date,
    days: int,
    answered: Mapping[int, int],
    events: Mapping[tuple[int, str], int],
    reminders_sent: Mapping[int, int],
    ratings: Mapping[tuple[int, int], int],
) -> PeriodResults:
    """The span's results from counts by day number (1-based, as :func:`day_bounds`):
    ``events`` by (day, audit event type), ``ratings`` by (day, stars)."""
    per_day: list[dict[str, int]] = [dict.fromkeys(COUNT_FIELDS, 0) for _ in range(days)]
    for bucket, n in answered.items():
        per_day[bucket - 1]["answered"] += n
    for (bucket, event_type), n in events.items():
        per_day[bucket - 1][AUDIT_COUNTS[event_type]] += n
    for bucket, n in reminders_sent.items():
        per_day[bucket - 1]["reminders_sent"] += n
    stars = [0, 0, 0, 0, 0]
    for (bucket, rating), n in ratings.items():
        per_day[bucket - 1]["ratings"] += n
        stars[rating - 1] += n
    return PeriodResults(
        days=tuple(
            DailyResults(first + timedelta(days=i), **counts) for i, counts in enumerate(per_day)
        ),
        ratings=RatingSummary((stars[0], stars[1], stars[2], stars[3], stars[4])),
    )
