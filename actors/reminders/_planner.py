"""The reminder planner: turns a visit as we hold it (``storage.SalonRecord``) into rows of the
durable schedule (``storage.reminders``), whenever the visit may have changed.

Visits come from three places, each of which calls :meth:`ReminderPlanner.plan_record` after
storing the record: record webhooks (``actors.yclients.RecordInboxWorker``), our own bookings,
moves and cancels (the assistant), and the periodic sync of upcoming visits
(``actors.yclients.CatalogSync``). When a salon changes its settings,
:meth:`ReminderPlanner.replan_company` plans its stored visits again (in the background:
``actors.reminders.ReminderReplanner``), so visits already planned follow the new moments.
Planning is idempotent: the same record planned twice writes nothing the second time.

How a record is read (:func:`visit_from_record`, pure):

- no client phone (or one that is not a phone) or no start time → nothing to plan;
- the end is the start plus ``seance_length`` (one hour when YClients gives none);
- the status: deleted → ``deleted``; attendance 1 → ``attended``; -1 → ``no_show``; anything
  else (0 waiting, 2 confirmed) → ``upcoming``;
- ``booked_at``, when the visit got its current time: its booking (``create_date``, else its
  last change, else now) — unless the schedule holds rows of the record at another visit time,
  i.e. the visit was moved. Then it is the moment it moved: the ``booked_at`` that planning
  wrote into the rows at the current time when it first saw the move (so later changes of the
  visit, a confirmation say, do not move it again), or, the first time, the record's change
  time (else now). Rows at the current time that were all dropped as ``moved`` mean the visit
  came back to an earlier time: that is a move too. It is never later than now (a YClients
  clock ahead of ours).

What is written. :func:`plan_visit` decides each kind; a planned kind becomes a
``PlannedReminder`` (``storage.reminders.plan``), a skipped one ``storage.reminders.skip``
with its reason; a deleted visit drops its planned rows (``drop_visit``, reason
``deleted``). Storage keeps the rule that a row already claimed or sent never changes, so a
visit changed after its reminder went out gets no second one for the same time, and planning
a new visit time drops the rows of the old one (``moved``). Rows that already say what planning
would write are not written again. When ``plan`` says a row became due earlier than anything
pending, :attr:`ReminderPlanner.notify` is awaited (the scheduler's ``announce``).

Errors: storage errors propagate (the callers retry or log); settings that cannot be read
count as the defaults (logged). ``aiadmin_reminders_planned_total{kind}`` counts rows that
became planned (new, or planned again after a skip, drop or move), not refreshes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metrics import MetricsRegistry
from storage import (
    Company,
    CompanyStatus,
    PlannedReminder,
    Reminder,
    ReminderKey,
    ReminderStatus,
    SalonRecord,
    Storage,
    ValidationError,
)

from .._phones import InvalidPhone, normalise_phone
from ._details import visit_details
from ._plan import PlannedMessage, SkippedMessage, VisitFacts, VisitStatus, plan_visit
from ._settings import InvalidReminderSettings, ReminderSettings

__all__ = [
    "DEFAULT_LENGTH",
    "DEFAULT_ZONE",
    "DELETED_REASON",
    "MOVED_REASON",
    "NO_PHONE_REASON",
    "REPLAN_LOOKBACK",
    "REPLAN_PAGE",
    "ReminderPlanner",
    "booked_at",
    "visit_from_record",
    "visit_status",
]

log = logging.getLogger(__name__)

#: A visit's length when YClients gives none.
DEFAULT_LENGTH = dt.timedelta(hours=1)
#: The zone of a salon whose stored zone name is unknown.
DEFAULT_ZONE = "Europe/Moscow"
#: Why a deleted record's planned rows are dropped.
DELETED_REASON = "deleted"
#: Why the planned rows of a visit that lost its client phone are dropped.
NO_PHONE_REASON = "no_phone"
#: Storage's reason for rows of a visit's old time (``storage/_reminders.py``).
MOVED_REASON = "moved"
#: How far back :meth:`ReminderPlanner.replan_company` reads visits by their start: a review
#: can be due up to ``review_after`` (at most 48 h) after the visit ends, moved past quiet
#: hours (at most 18 h) and still sendable 12 h later; a day more for the visit's own length.
REPLAN_LOOKBACK = dt.timedelta(hours=48 + 18 + 12 + 24)
#: Stored visits read per page by :meth:`ReminderPlanner.replan_company`.
REPLAN_PAGE = 200
#: Rows a scheduler holds or sent: planning never changes them.
_CLOSED = (ReminderStatus.CLAIMED, ReminderStatus.SENT)


def salon_zone(name: str | None) -> ZoneInfo:
    """The salon's zone (:data:`DEFAULT_ZONE` when the name is unknown)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def _positive(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def _local_time(value: object, zone: ZoneInfo) -> dt.datetime | None:
    """An aware UTC moment from YClients' text (a naive time is the salon's wall time)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def visit_status(record: SalonRecord) -> VisitStatus:
    """Where the visit stands, from the record's ``deleted`` flag and ``attendance``."""
    if record.deleted:
        return VisitStatus.DELETED
    if record.attendance == 1:
        return VisitStatus.ATTENDED
    if record.attendance == -1:
        return VisitStatus.NO_SHOW
    return VisitStatus.UPCOMING


def _details_booked(row: Reminder) -> dt.datetime | None:
    """The ``booked_at`` planning wrote into the row, if it is readable."""
    value = row.details.get("booked_at") if isinstance(row.details, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.astimezone(dt.UTC)


def booked_at(
    record: SalonRecord,
    starts_at: dt.datetime,
    rows: Sequence[Reminder],
    zone: ZoneInfo,
    now: dt.datetime,
) -> dt.datetime:
    """When the visit got its current time (see the module docstring); never after ``now``
    (a YClients clock ahead of ours)."""
    return min(_booked_at(record, starts_at, rows, zone, now), now)


def _booked_at(
    record: SalonRecord,
    starts_at: dt.datetime,
    rows: Sequence[Reminder],
    zone: ZoneInfo,
    now: dt.datetime,
) -> dt.datetime:
    moved = any(r.visit_time != starts_at for r in rows)
    if not moved:
        created = _local_time(record.raw.get("create_date"), zone)
        return created or record.changed_at or now
    here = [
        r
        for r in rows
        if r.visit_time == starts_at
        and not (r.status is ReminderStatus.DROPPED and r.reason == MOVED_REASON)
    ]
    known = [m for r in here if (m := _details_booked(r)) is not None]
    if known:
        return max(known)
    return record.changed_at or now


def visit_from_record(
    record: SalonRecord,
    *,
    zone: ZoneInfo,
    rows: Sequence[Reminder] = (),
    now: dt.datetime,
) -> VisitFacts | None:
    """The visit planning sees in ``record`` (``rows``: the schedule's rows of the record,
    for a move), or ``None`` when there is nothing to plan (no phone, no start time)."""
    if not record.client_phone or record.starts_at is None:
        return None
    try:
        phone = normalise_phone(record.client_phone, region=None)
    except InvalidPhone:
        return None
    starts = record.starts_at.astimezone(dt.UTC)
    length = (
        dt.timedelta(seconds=record.seance_length)
        if record.seance_length is not None and record.seance_length > 0
        else DEFAULT_LENGTH
    )
    staff = record.raw.get("staff")
    master = staff.get("name") if isinstance(staff, Mapping) else None
    titles = tuple(
        title.strip()
        for service in record.services
        if isinstance(service, Mapping)
        and isinstance(title := service.get("title"), str)
        and title.strip()
    )
    return VisitFacts(
        company_id=record.company_id,
        record_id=record.record_id,
        visit_id=_positive(record.raw.get("visit_id")),
        client_phone=phone,
        client_name=(record.client_name or "").strip(),
        service_titles=titles,
        master_name=master.strip() if isinstance(master, str) else "",
        starts_at=starts,
        ends_at=starts + length,
        booked_at=booked_at(record, starts, rows, zone, now),
        status=visit_status(record),
    )


def _settled(row: Reminder | None, want: PlannedReminder) -> bool:
    """Whether writing ``want`` would change nothing at its key."""
    if row is None:
        return False
    if row.status in _CLOSED:
        return True
    return (
        row.status is ReminderStatus.PLANNED
        and row.due_at == want.due_at
        and row.send_by == want.send_by
        and row.visit_id == want.visit_id
        and row.phone == want.phone
        and row.details == want.details
    )


class ReminderPlanner:
    """Plans a salon's visits into the durable schedule (see the module docstring).

    ``wall_clock`` is "now" (aware UTC); ``notify`` (public, assignable: the node sets it to
    the scheduler's ``announce``) is awaited when a row became due earlier than anything
    pending; an error of ``notify`` is logged (the scheduler looks at least every
    ``max_sleep``). Safe to call from many tasks at once: every write is one storage call.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        wall_clock: Callable[[], dt.datetime],
        notify: Callable[[], Awaitable[None]] | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.storage = storage
        self.wall_clock = wall_clock
        self.notify = notify
        registry = metrics or MetricsRegistry()
        self._planned = registry.counter(
            "aiadmin_reminders_planned_total",
            "Reminders and review requests that became planned, by kind",
            ("kind",),
        )

    def __repr__(self) -> str:
        return f"<ReminderPlanner notify={'yes' if self.notify is not None else 'no'}>"

    async def settings(self, company_id: int) -> ReminderSettings:
        """The salon's settings (the defaults when none are stored or they are unreadable)."""
        stored = await self.storage.reminder_settings.get(company_id)
        if stored is None:
            return ReminderSettings()
        try:
            return ReminderSettings.from_json(stored)
        except InvalidReminderSettings as exc:
            log.warning("company %s: reminder settings unreadable (%s); defaults", company_id, exc)
            return ReminderSettings()

    async def plan_record(self, company: Company, record: SalonRecord) -> None:
        """Plan (or drop) the reminders of one visit as ``record`` holds it. Raises
        ``StorageError``."""
        await self.plan_records(company, [record])

    async def plan_records(self, company: Company, records: Iterable[SalonRecord]) -> int:
        """Plan several visits of one salon (its settings read once); returns how many were
        looked at. A record storage refuses (``ValidationError``) is logged and passed over;
        other storage errors propagate."""
        if company.status is CompanyStatus.UNINSTALLED:
            return 0
        settings: ReminderSettings | None = None
        count = 0
        for record in records:
            if record.company_id != company.id:
                raise ValueError("a record of another company")
            if settings is None:
                settings = await self.settings(company.id)
            try:
                await self._plan(company, record, settings)
            except ValidationError as exc:
                log.warning(
                    "company %s: record %s not planned: %s", company.id, record.record_id, exc
                )
            count += 1
        return count

    async def replan_company(self, company: Company, *, page: int = REPLAN_PAGE) -> int:
        """Plan again every stored visit of the salon that starts at or after now minus
        :data:`REPLAN_LOOKBACK` (its settings changed: moments move, a kind switched off is
        skipped, one switched on planned), ``page`` records at a time by start time; returns
        how many visits were looked at. Rows already claimed or sent stay as they are. Raises
        ``StorageError`` (what was planned before stays planned)."""
        if company.status is CompanyStatus.UNINSTALLED:
            return 0
        start = self.wall_clock() - REPLAN_LOOKBACK
        after: int | None = None
        count = 0
        while True:
            records = await self.storage.records.list_for_company(
                company.id, limit=page, starting_after=start, after_id=after
            )
            count += await self.plan_records(company, records)
            last = records[-1] if len(records) == page else None
            if last is None or last.starts_at is None:
                return count
            start, after = last.starts_at, last.record_id

    async def drop_record(self, company_id: int, record_id: int, reason: str = "cancelled") -> None:
        """The visit was cancelled (by us, or YClients deleted it): its planned rows are
        dropped with ``reason``; rows already claimed or sent stay. Raises ``StorageError``."""
        dropped = await self.storage.reminders.drop_visit(company_id, record_id, reason)
        if dropped:
            log.info(
                "company %s: record %s: %d reminders dropped (%s)",
                company_id,
                record_id,
                dropped,
                reason,
            )

    async def _plan(
        self, company: Company, record: SalonRecord, settings: ReminderSettings
    ) -> None:
        reminders = self.storage.reminders
        if record.deleted:
            await self.drop_record(company.id, record.record_id, DELETED_REASON)
            return
        zone = salon_zone(company.timezone)
        now = self.wall_clock()
        rows = await reminders.for_visit(company.id, record.record_id)
        visit = visit_from_record(record, zone=zone, rows=rows, now=now)
        if visit is None:
            if any(r.status is ReminderStatus.PLANNED for r in rows):
                await self.drop_record(company.id, record.record_id, NO_PHONE_REASON)
            return
        by_key = {r.key: r for r in rows}
        details: dict[str, Any] = visit_details(visit)
        wanted: list[PlannedReminder] = []
        newly: list[str] = []
        for outcome in plan_visit(visit, settings, zone, now):
            key = ReminderKey(visit.record_id, outcome.kind.value, outcome.visit_time)
            row = by_key.get(key)
            elsewhere = any(
                r.kind == key.kind
                and r.visit_time != key.visit_time
                and r.status in (ReminderStatus.PLANNED, ReminderStatus.CLAIMED)
                for r in rows
            )
            if isinstance(outcome, SkippedMessage):
                already = (
                    row is not None
                    and (row.status in _CLOSED or row.status is ReminderStatus.SKIPPED)
                    and (row.status in _CLOSED or row.reason == outcome.reason.value)
                )
                if not already or elsewhere:
                    await reminders.skip(company.id, key, outcome.reason.value)
                continue
            assert isinstance(outcome, PlannedMessage)
            want = PlannedReminder(
                record_id=visit.record_id,
                kind=outcome.kind.value,
                visit_time=outcome.visit_time,
                due_at=outcome.due_at,
                send_by=outcome.send_by,
                visit_id=visit.visit_id,
                phone=visit.client_phone,
                details=details,
            )
            if _settled(row, want) and not elsewhere:
                continue
            wanted.append(want)
            if row is None or row.status not in (ReminderStatus.PLANNED, *_CLOSED):
                newly.append(want.kind)
        if not wanted:
            return
        earlier = await reminders.plan(company.id, wanted)
        for kind in newly:
            self._planned.labels(kind).inc()
        if earlier and self.notify is not None:
            try:
                await self.notify()
            except Exception:  # a lost wake-up costs at most the scheduler's max_sleep
                log.exception("reminders: the scheduler could not be told of an earlier row")
