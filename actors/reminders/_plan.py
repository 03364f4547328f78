"""Which messages a visit gets, and when: a pure function of the visit, the salon's settings,
its zone and the current moment.

Pure (standard library only). Storage keeps one row per planned message, unique per
``(company, record, kind, visit_time)``; :func:`plan_visit` says what each row should hold and
is called again whenever a visit changes (record webhooks, our own bookings, the periodic
sync). It always answers with one entry per kind, in the order day-before, two-hours,
review: a :class:`PlannedMessage` or a :class:`SkippedMessage` with its reason.

The rules (``D`` = the visit's start, ``B`` = ``booked_at``, all on the salon's clock):

- **day-before**: at ``day_before_at`` (18:00) on the calendar day before ``D``. Skipped as
  ``booked_late`` when booked at or after that moment, as ``too_close`` when booked less than
  12 h before ``D``.
- **two-hours**: ``two_hours_before`` (2 h) before ``D``. Skipped as ``too_close`` when booked
  less than ``two_hours_before`` + 1 h before ``D`` (3 h with the default), i.e. when it would
  go out less than an hour after the booking, or less than an hour after the day-before
  reminder (a late day-before hour and a visit just after midnight).
- **quiet hours** (both reminders): a reminder whose moment is quiet moves earlier, to
  :data:`QUIET_MARGIN` (30 min) before the quiet span began (20:30 for 21:00–09:00), so a
  burst paced by the outbound queue still ends before the quiet span. It is skipped as
  ``quiet_hours`` when that is no longer useful: the new moment is less than an hour after
  the booking, or (two-hours only) the day-before reminder is planned and nothing quiet lies
  between the two, so the client would get two reminders the same evening.
- **review**: ``review_after`` (2 h) after the visit ends, or, once YClients marked the visit
  attended, as soon as it ends; a quiet moment moves *later*, to the end of the quiet span
  (09:00). Never for a cancelled, deleted or no-show visit.
- **status**: a cancelled or deleted visit gets nothing (``cancelled``); a no-show nothing
  (``no_show``); an attended visit no reminders (``attended``), only the review. A kind
  switched off is ``disabled``.
- **late**: every planned message carries ``send_by``, the last moment it is still worth
  sending: ``due_at`` + :data:`LATE_LIMITS` for its kind, but before the next quiet span and,
  for a reminder, at least :data:`MIN_NOTICE` (30 min) before the visit. When ``now`` is past
  ``send_by`` the message is skipped as ``past``; a planned message whose ``due_at`` has
  passed but ``send_by`` not is still planned (a scheduler that was down sends it late). The
  scheduler checks ``send_by`` again when it claims a row, so a message never goes out in
  quiet hours or after the visit.

``now`` only ever turns a planned message into ``past``: every other outcome depends on the
visit and the settings alone, so re-planning the same visit later gives the same moments (a
row already sent is never planned twice, and skipping the day-before reminder as ``past`` never
lets the two-hours one move onto the same evening). The key's ``visit_time`` is the visit's
start: a visit moved to another time gets new rows, one changed otherwise keeps its rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ._settings import ReminderSettings
from ._timing import (
    QuietHours,
    day_before_at,
    is_quiet,
    next_quiet_start,
    quiet_span_end,
    quiet_span_start,
)

__all__ = [
    "DAY_BEFORE_MIN_AHEAD",
    "LATE_LIMITS",
    "MIN_LEAD_AFTER_BOOKING",
    "MIN_NOTICE",
    "QUIET_MARGIN",
    "MessageKind",
    "PlannedMessage",
    "SkipReason",
    "SkippedMessage",
    "VisitFacts",
    "VisitStatus",
    "plan_visit",
]


class VisitStatus(enum.StrEnum):
    """Where a visit stands, as YClients last told us."""

    UPCOMING = "upcoming"  # booked; attendance not marked yet (or "confirmed", attendance 2)
    CANCELLED = "cancelled"
    DELETED = "deleted"
    ATTENDED = "attended"  # YClients attendance 1
    NO_SHOW = "no_show"  # YClients attendance -1


class MessageKind(enum.StrEnum):
    """What a planned message is."""

    DAY_BEFORE = "day_before"
    TWO_HOURS = "two_hours"
    REVIEW = "review"


class SkipReason(enum.StrEnum):
    """Why a kind of message will not be sent for a visit (see the module docstring)."""

    BOOKED_LATE = "booked_late"
    TOO_CLOSE = "too_close"
    QUIET_HOURS = "quiet_hours"
    DISABLED = "disabled"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    ATTENDED = "attended"
    PAST = "past"


#: How long before the quiet span a reminder moved out of it is due.
QUIET_MARGIN = dt.timedelta(minutes=30)
#: The least time between the booking and a reminder (the 3 h rule of the two-hours one).
MIN_LEAD_AFTER_BOOKING = dt.timedelta(hours=1)
#: A day-before reminder is skipped when the visit was booked less than this ahead.
DAY_BEFORE_MIN_AHEAD = dt.timedelta(hours=12)
#: The latest a reminder may go out before the visit.
MIN_NOTICE = dt.timedelta(minutes=30)
#: How late past its due time each kind is still worth sending (quiet hours cut it shorter).
LATE_LIMITS = {
    MessageKind.DAY_BEFORE: dt.timedelta(hours=3),
    MessageKind.TWO_HOURS: dt.timedelta(hours=1),
    MessageKind.REVIEW: dt.timedelta(hours=12),
}


def _require_utc(moment: dt.datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


@dataclass(frozen=True, kw_only=True)
class VisitFacts:
    """What planning needs to know about one visit (a YClients record).

    ``starts_at``, ``ends_at`` and ``booked_at`` are aware datetimes (UTC inside the service).
    ``booked_at`` is when the visit got its current time: its booking, or the last move.
    ``visit_id`` is YClients' visit id (for ``PUT visits/{visit_id}/{record_id}``), ``None``
    when not known yet.
    """

    company_id: int
    record_id: int
    visit_id: int | None
    client_phone: str
    client_name: str = ""
    service_titles: tuple[str, ...] = ()
    master_name: str = ""
    starts_at: dt.datetime
    ends_at: dt.datetime
    booked_at: dt.datetime
    status: VisitStatus = VisitStatus.UPCOMING

    def __post_init__(self) -> None:
        _require_utc(self.starts_at, "starts_at")
        _require_utc(self.ends_at, "ends_at")
        _require_utc(self.booked_at, "booked_at")
        if self.ends_at < self.starts_at:
            raise ValueError("ends_at must not be before starts_at")


@dataclass(frozen=True)
class PlannedMessage:
    """A message to send at ``due_at`` (UTC), no later than ``send_by``; keyed by
    ``(kind, visit_time)`` within its visit."""

    kind: MessageKind
    visit_time: dt.datetime
    due_at: dt.datetime
    send_by: dt.datetime


@dataclass(frozen=True)
class SkippedMessage:
    """A kind of message the visit will not get, and why."""

    kind: MessageKind
    visit_time: dt.datetime
    reason: SkipReason


Plan = PlannedMessage | SkippedMessage


@dataclass(frozen=True)
class _Clock:
    """The salon's zone and quiet hours, bundled for the helpers below."""

    zone: ZoneInfo
    quiet: QuietHours

    def send_by(self, kind: MessageKind, due: dt.datetime, visit_start: dt.datetime) -> dt.datetime:
        """The last moment a message due at ``due`` is still worth sending."""
        last = due + LATE_LIMITS[kind]
        quiet_from = next_quiet_start(due, self.quiet, self.zone)
        if quiet_from is not None:
            last = min(last, quiet_from)
        if kind is not MessageKind.REVIEW:
            last = min(last, visit_start - MIN_NOTICE)
        return last


def _shift_earlier(due: dt.datetime, clock: _Clock) -> tuple[dt.datetime, bool]:
    """``due`` moved out of quiet hours to before their start, and whether it moved."""
    if not is_quiet(due, clock.quiet, clock.zone):
        return due, False
    return quiet_span_start(due, clock.quiet, clock.zone) - QUIET_MARGIN, True


def _day_before(
    visit: VisitFacts, settings: ReminderSettings, clock: _Clock
) -> dt.datetime | SkipReason:
    """The day-before reminder's due moment, or why there is none (``now`` aside)."""
    if not settings.day_before_enabled:
        return SkipReason.DISABLED
    nominal = day_before_at(visit.starts_at, settings.day_before_at, clock.zone)
    if visit.booked_at >= nominal:
        return SkipReason.BOOKED_LATE
    if visit.starts_at - visit.booked_at < DAY_BEFORE_MIN_AHEAD:
        return SkipReason.TOO_CLOSE
    due, moved = _shift_earlier(nominal, clock)
    if moved and due < visit.booked_at + MIN_LEAD_AFTER_BOOKING:
        return SkipReason.QUIET_HOURS
    return due


def _two_hours(
    visit: VisitFacts,
    settings: ReminderSettings,
    clock: _Clock,
    day_before: dt.datetime | SkipReason,
) -> dt.datetime | SkipReason:
    """The two-hours reminder's due moment, or why there is none (``now`` aside)."""
    if not settings.two_hours_enabled:
        return SkipReason.DISABLED
    nominal = visit.starts_at - settings.two_hours_before
    if nominal < visit.booked_at + MIN_LEAD_AFTER_BOOKING:
        return SkipReason.TOO_CLOSE
    due, moved = _shift_earlier(nominal, clock)
    if not moved:
        if isinstance(day_before, dt.datetime) and due < day_before + MIN_LEAD_AFTER_BOOKING:
            # A late day-before hour and a visit just after midnight (23:00 and 01:00): the
            # two would go out together, or the "2 hours" one first.
            return SkipReason.TOO_CLOSE
        return due
    if due < visit.booked_at + MIN_LEAD_AFTER_BOOKING:
        return SkipReason.QUIET_HOURS
    if isinstance(day_before, dt.datetime):
        quiet_between = next_quiet_start(day_before, clock.quiet, clock.zone)
        if due <= day_before or (quiet_between is not None and quiet_between > due):
            return SkipReason.QUIET_HOURS  # the same evening as the day-before reminder
    return due


def _review(
    visit: VisitFacts, settings: ReminderSettings, clock: _Clock
) -> dt.datetime | SkipReason:
    """The review request's due moment, or why there is none (``now`` aside)."""
    if not settings.reviews_enabled:
        return SkipReason.DISABLED
    if visit.status is VisitStatus.ATTENDED:
        due = visit.ends_at
    else:
        due = visit.ends_at + settings.review_after
    if is_quiet(due, clock.quiet, clock.zone):
        due = quiet_span_end(due, clock.quiet, clock.zone)
    return due


def _status_reason(status: VisitStatus, kind: MessageKind) -> SkipReason | None:
    """The reason a visit's status rules out ``kind``, if it does."""
    if status in (VisitStatus.CANCELLED, VisitStatus.DELETED):
        return SkipReason.CANCELLED
    if status is VisitStatus.NO_SHOW:
        return SkipReason.NO_SHOW
    if status is VisitStatus.ATTENDED and kind is not MessageKind.REVIEW:
        return SkipReason.ATTENDED
    return None


def plan_visit(
    visit: VisitFacts, settings: ReminderSettings, zone: ZoneInfo, now: dt.datetime
) -> list[Plan]:
    """One entry per kind (day-before, two-hours, review) for ``visit`` as of ``now``: when
    each is due, or why it is skipped. Pure; see the module docstring for the rules."""
    _require_utc(now, "now")
    clock = _Clock(zone=zone, quiet=settings.quiet)
    day_before = _day_before(visit, settings, clock)
    outcomes = {
        MessageKind.DAY_BEFORE: day_before,
        MessageKind.TWO_HOURS: _two_hours(visit, settings, clock, day_before),
        MessageKind.REVIEW: _review(visit, settings, clock),
    }
    visit_time = visit.starts_at.astimezone(dt.UTC)
    plan: list[Plan] = []
    for kind, outcome in outcomes.items():
        reason = _status_reason(visit.status, kind)
        if reason is None and isinstance(outcome, SkipReason):
            reason = outcome
        if reason is None and isinstance(outcome, dt.datetime):
            due = outcome.astimezone(dt.UTC)
            send_by = clock.send_by(kind, due, visit.starts_at).astimezone(dt.UTC)
            if send_by <= due:
                reason = SkipReason.TOO_CLOSE  # not even its own moment is in time
            elif now > send_by:
                reason = SkipReason.PAST
            else:
                plan.append(PlannedMessage(kind, visit_time, due, send_by))
                continue
        assert reason is not None
        plan.append(SkippedMessage(kind, visit_time, reason))
    return plan
