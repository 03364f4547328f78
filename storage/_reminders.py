"""``reminders``, ``reviews`` and ``reminder_settings``: the rules both backends share, and the
in-memory twins (PostgreSQL: ``_pg_reminders``).

The schedule keeps one row per planned message, unique per ``(company, record, kind,
visit_time)``. A row is *open* while planning may still change it (``planned``, ``skipped``,
``dropped``) and *closed* once a scheduler has it (``claimed``) or it went out (``sent``):

- ``plan`` upserts by key; an open row takes the new due time and details and becomes
  ``planned``, a closed one stays exactly as it is (a visit changed after its reminder was sent
  never gets a second one for the same visit time). The same ``(record, kind)`` at another
  visit time, still planned, is dropped as ``moved``: a moved visit re-plans.
- ``skip`` and ``drop_visit`` also catch a claim whose lease ran out (its claimer died), so a
  crashed claimer's row of a cancelled visit is never picked up and sent later; a claim whose
  lease holds is in flight and left alone.
- ``claim_due`` takes planned rows due by ``now`` and claims whose lease ran out, marks them
  claimed by ``owner`` until ``now + lease``, counts the attempt and decides ``message_id`` on
  the first claim (kept afterwards, so a retried send is deduplicated downstream). Only the
  row's current claimer may then mark it sent or skipped, or release it.

Every company-scoped call raises :class:`NotFound` for an unknown company; the scheduler's
calls (``claim_due``, ``next_due``, ``backlog``) span companies. Times are stored and returned
in UTC. Values are checked here, before either backend, so both refuse the same things.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from . import _validate as v
from ._conversations import check_phone
from ._errors import ValidationError
from ._fields import key_text, limit_value
from ._memory_db import MemoryDatabase
from ._models import PlannedReminder, Reminder, ReminderKey, ReminderStatus, Review

#: Statuses planning may still change; ``claimed`` and ``sent`` rows are left as they are.
OPEN_STATUSES = (ReminderStatus.PLANNED, ReminderStatus.SKIPPED, ReminderStatus.DROPPED)
#: The reason a visit's rows at an old visit time get when it is planned at a new one.
MOVED = "moved"
#: Longest review comment kept (characters), and the bounds of a rating.
MAX_COMMENT = 2000
RATINGS = range(1, 6)
#: Most rows one ``plan`` call may carry, and the largest ``details`` (bytes of JSON).
MAX_PLAN_ROWS = 1000
MAX_DETAILS_BYTES = 16_384
#: The longest lease a claim may take (a day): a typo must not hide a row for years.
MAX_LEASE = 86_400.0

_KIND = re.compile(r"[a-z][a-z_]{0,31}")


def new_message_id() -> str:
    """A fresh outbound message id in whatsmeow's shape (``3EB0`` + 18 uppercase hex
    digits), decided at a row's first claim."""
    return "3EB0" + secrets.token_hex(9).upper()


def check_moment(field: str, value: object) -> datetime:
    """A required timezone-aware moment, in UTC."""
    moment = v.timestamp(field, value)
    if moment is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def optional_moment(field: str, value: object) -> datetime | None:
    return None if value is None else check_moment(field, value)


def check_kind(kind: object) -> str:
    """A message kind's shape (``day_before``, ``two_hours``, ``review``, …): lower-case
    letters and ``_``, at most 32; what the kinds mean is the planner's business."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValidationError("kind", "must be lower-case letters and '_' (at most 32)")
    return str.__str__(kind)


def check_reason(reason: object) -> str:
    """Why a row was skipped or dropped: non-empty text of at most 64 characters."""
    text = v.text("reason", reason, 64)
    if not text:
        raise ValidationError("reason", "must not be empty")
    return text


def check_owner(owner: object) -> str:
    """A claimer's name (node and task): non-empty, at most 255 characters."""
    return key_text("owner", owner)


def check_lease(lease: object) -> float:
    seconds = v.positive_seconds("lease", lease)
    if seconds > MAX_LEASE:
        raise ValidationError("lease", f"must be at most {MAX_LEASE:g} seconds")
    return seconds


def check_record_id(field: str, value: object) -> int:
    return v.positive_int(field, value, high=v.MAX_BIGINT)


def optional_record_id(field: str, value: object) -> int | None:
    return None if value is None else check_record_id(field, value)


def check_key(key: object) -> ReminderKey:
    if not isinstance(key, ReminderKey):
        raise ValidationError("key", "must be a ReminderKey")
    return ReminderKey(
        check_record_id("record_id", key.record_id),
        check_kind(key.kind),
        check_moment("visit_time", key.visit_time),
    )


def check_details(details: object) -> dict[str, Any]:
    body = v.json_object("details", details)
    if len(json.dumps(body, ensure_ascii=False).encode()) > MAX_DETAILS_BYTES:
        raise ValidationError("details", f"must be at most {MAX_DETAILS_BYTES} bytes as JSON")
    return body


def check_planned(row: object) -> PlannedReminder:
    """One row of ``plan``, checked and normalised (times in UTC)."""
    if not isinstance(row, PlannedReminder):
        raise ValidationError("rows", "must be PlannedReminder values")
    key = check_key(row.key)
    return PlannedReminder(
        record_id=key.record_id,
        kind=key.kind,
        visit_time=key.visit_time,
        due_at=check_moment("due_at", row.due_at),
        send_by=optional_moment("send_by", row.send_by),
        visit_id=optional_record_id("visit_id", row.visit_id),
        phone=None if row.phone is None else check_phone(row.phone),
        details=check_details(row.details),
    )


def check_plan(rows: Sequence[PlannedReminder]) -> list[PlannedReminder]:
    """The rows of one ``plan`` call: each checked, at most one visit time per ``(record,
    kind)`` (which one would stand is otherwise ambiguous), a key given twice kept once."""
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise ValidationError("rows", "must be a sequence of PlannedReminder")
    if len(rows) > MAX_PLAN_ROWS:
        raise ValidationError("rows", f"must be at most {MAX_PLAN_ROWS} per call")
    by_slot: dict[tuple[int, str], PlannedReminder] = {}
    for row in map(check_planned, rows):
        seen = by_slot.get((row.record_id, row.kind))
        if seen is not None and seen.visit_time != row.visit_time:
            raise ValidationError("rows", "one record and kind must not have two visit times")
        by_slot[(row.record_id, row.kind)] = row
    return list(by_slot.values())


def check_rating(rating: object) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
        raise ValidationError("rating", "must be a whole number from 1 to 5")
    return rating


def check_comment(comment: object) -> str | None:
    return v.optional_text("comment", comment, MAX_COMMENT)


def check_company(company_id: object) -> int:
    """A company id's shape (whether it exists is the backend's question)."""
    return v.positive_int("company_id", company_id)


def check_id(field: str, value: object) -> int:
    return v.positive_int(field, value, high=v.MAX_BIGINT)


def claimable(row: Reminder, now: datetime) -> bool:
    """Whether ``claim_due`` at ``now`` takes the row (due and planned, or a lapsed claim)."""
    if row.status is ReminderStatus.PLANNED:
        return row.due_at is not None and row.due_at <= now
    if row.status is ReminderStatus.CLAIMED:
        return row.claim_until is not None and row.claim_until <= now
    return False


def lapsed_or_open(row: Reminder, now: datetime, statuses: tuple[ReminderStatus, ...]) -> bool:
    """Whether ``skip``/``drop`` may change the row: one of ``statuses``, or a claim whose
    lease ran out."""
    if row.status in statuses:
        return True
    return (
        row.status is ReminderStatus.CLAIMED
        and row.claim_until is not None
        and row.claim_until <= now
    )


def becomes_due(row: Reminder) -> datetime | None:
    """When the row becomes claimable (``None``: never by itself)."""
    if row.status is ReminderStatus.PLANNED:
        return row.due_at
    if row.status is ReminderStatus.CLAIMED:
        return row.claim_until
    return None


def visit_order(row: Reminder) -> tuple[datetime, str, int]:
    return row.visit_time, row.kind, row.id


#: What ``upcoming`` lists: rows still to go out; at most ``MAX_UPCOMING`` at once.
UPCOMING_STATUSES = (ReminderStatus.PLANNED, ReminderStatus.CLAIMED)
MAX_UPCOMING = 1000


def upcoming_order(row: Reminder) -> tuple[datetime, int]:
    """Soonest due first (a claimed row keeps the due time it was planned for)."""
    return row.due_at or row.visit_time, row.id


# -- in memory -----------------------------------------------------------------------------


class MemoryReminders:
    """:class:`Reminders` in memory (each call atomic after one checkpoint)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def _next_due(self) -> datetime | None:
        return self._db.reminder_due.first()

    def _claimable(self, at: datetime) -> list[Reminder]:
        """The rows ``claim_due`` at ``at`` may take, read through the due index."""
        rows = (self._db.reminders[i] for i in self._db.reminder_due.due(at))
        return [r for r in rows if claimable(r, at)]

    def _visit(self, company_id: int, record_id: int) -> list[Reminder]:
        ids = self._db.reminder_visits.get((company_id, record_id), [])
        return [self._db.reminders[i] for i in ids]

    def _drop_moved(self, company_id: int, key: ReminderKey, now: datetime) -> None:
        for row in self._visit(company_id, key.record_id):
            if (
                row.kind == key.kind
                and row.visit_time != key.visit_time
                and lapsed_or_open(row, now, (ReminderStatus.PLANNED,))
            ):
                self._put(_dropped(row, MOVED, now))

    def _put(self, row: Reminder) -> Reminder:
        if row.id not in self._db.reminders:
            self._db.reminder_visits.setdefault((row.company_id, row.record_id), []).append(row.id)
            self._db.reminders_of.setdefault(row.company_id, {})[row.id] = None
        self._db.reminders[row.id] = row
        self._db.reminder_due.set(row.id, becomes_due(row))
        self._db.reminder_keys[(row.company_id, row.key)] = row.id
        return row

    def _row(self, company_id: int, key: ReminderKey) -> Reminder | None:
        found = self._db.reminder_keys.get((company_id, key))
        return None if found is None else self._db.reminders[found]

    def _new(self, company_id: int, key: ReminderKey, now: datetime, **fields: Any) -> Reminder:
        return Reminder(
            id=self._db.next_id("reminders"),
            company_id=company_id,
            record_id=key.record_id,
            kind=key.kind,
            visit_time=key.visit_time,
            created_at=now,
            updated_at=now,
            **fields,
        )

    async def plan(self, company_id: int, rows: Sequence[PlannedReminder]) -> bool:
        await trio.lowlevel.checkpoint()
        wanted = check_plan(rows)
        self._db.require_company(check_company(company_id))
        now = self._db.clock()
        before = self._next_due()
        written: list[datetime] = []
        for want in wanted:
            fields: dict[str, Any] = {
                "status": ReminderStatus.PLANNED,
                "due_at": want.due_at,
                "send_by": want.send_by,
                "visit_id": want.visit_id,
                "phone": want.phone,
                "details": want.details,
                "reason": None,
            }
            old = self._row(company_id, want.key)
            if old is None:
                self._put(self._new(company_id, want.key, now, **fields))
                written.append(want.due_at)
            elif old.status in OPEN_STATUSES:
                # A re-plan that does not know the visit id or phone keeps the known ones.
                fields["visit_id"] = want.visit_id or old.visit_id
                fields["phone"] = want.phone or old.phone
                self._put(replace(old, **fields, updated_at=now))
                written.append(want.due_at)
            self._drop_moved(company_id, want.key, now)
        return _went_earlier(before, written)

    async def skip(self, company_id: int, key: ReminderKey, reason: str) -> Reminder:
        await trio.lowlevel.checkpoint()
        wanted = check_key(key)
        why = check_reason(reason)
        self._db.require_company(check_company(company_id))
        now = self._db.clock()
        old = self._row(company_id, wanted)
        if old is None:
            row = self._put(
                self._new(company_id, wanted, now, status=ReminderStatus.SKIPPED, reason=why)
            )
        elif lapsed_or_open(old, now, OPEN_STATUSES):
            row = self._put(
                replace(
                    old,
                    status=ReminderStatus.SKIPPED,
                    reason=why,
                    claimed_by=None,
                    claim_until=None,
                    updated_at=now,
                )
            )
        else:
            row = old
        self._drop_moved(company_id, wanted, now)
        return row

    async def drop_visit(self, company_id: int, record_id: int, reason: str) -> int:
        await trio.lowlevel.checkpoint()
        record = check_record_id("record_id", record_id)
        why = check_reason(reason)
        self._db.require_company(check_company(company_id))
        now = self._db.clock()
        dropped = 0
        for row in self._visit(company_id, record):
            if lapsed_or_open(row, now, (ReminderStatus.PLANNED,)):
                self._put(_dropped(row, why, now))
                dropped += 1
        return dropped

    async def next_due(self) -> datetime | None:
        await trio.lowlevel.checkpoint()
        return self._next_due()

    async def backlog(self, now: datetime) -> int:
        await trio.lowlevel.checkpoint()
        at = check_moment("now", now)
        return len(self._claimable(at))

    async def claim_due(
        self, now: datetime, owner: str, lease: float, limit: int = 100
    ) -> list[Reminder]:
        await trio.lowlevel.checkpoint()
        at = check_moment("now", now)
        who = check_owner(owner)
        until = at + timedelta(seconds=check_lease(lease))
        limit_value(limit)
        due = sorted(
            self._claimable(at),
            key=lambda r: (r.due_at or at, r.id),
        )[:limit]
        stamp = self._db.clock()
        return [
            self._put(
                replace(
                    row,
                    status=ReminderStatus.CLAIMED,
                    claimed_by=who,
                    claim_until=until,
                    attempts=row.attempts + 1,
                    message_id=row.message_id or new_message_id(),
                    updated_at=stamp,
                )
            )
            for row in due
        ]

    def _claimed(self, company_id: int, reminder_id: int, owner: str) -> Reminder | None:
        """The row if it is the company's and claimed by ``owner``; else ``None``."""
        rid = check_id("reminder_id", reminder_id)
        who = check_owner(owner)
        self._db.require_company(check_company(company_id))
        row = self._db.reminders.get(rid)
        if (
            row is None
            or row.company_id != company_id
            or row.status is not ReminderStatus.CLAIMED
            or row.claimed_by != who
        ):
            return None
        return row

    async def mark_sent(self, company_id: int, reminder_id: int, owner: str) -> bool:
        await trio.lowlevel.checkpoint()
        row = self._claimed(company_id, reminder_id, owner)
        if row is None:
            return False
        self._put(
            replace(row, status=ReminderStatus.SENT, claim_until=None, updated_at=self._db.clock())
        )
        return True

    async def mark_sent_many(
        self, owner: str, keys: Sequence[tuple[int, int]]
    ) -> set[tuple[int, int]]:
        await trio.lowlevel.checkpoint()
        who = check_owner(owner)
        checked = [(check_company(c), check_id("reminder_id", r)) for c, r in keys]
        marked: set[tuple[int, int]] = set()
        for company_id, rid in checked:
            row = self._db.reminders.get(rid)
            if (
                row is None
                or row.company_id != company_id
                or row.status is not ReminderStatus.CLAIMED
                or row.claimed_by != who
            ):
                continue
            self._put(
                replace(
                    row, status=ReminderStatus.SENT, claim_until=None, updated_at=self._db.clock()
                )
            )
            marked.add((company_id, rid))
        return marked

    async def mark_skipped(
        self, company_id: int, reminder_id: int, owner: str, reason: str
    ) -> bool:
        await trio.lowlevel.checkpoint()
        why = check_reason(reason)
        row = self._claimed(company_id, reminder_id, owner)
        if row is None:
            return False
        self._put(
            replace(
                row,
                status=ReminderStatus.SKIPPED,
                reason=why,
                claim_until=None,
                updated_at=self._db.clock(),
            )
        )
        return True

    async def release(
        self, company_id: int, reminder_id: int, owner: str, *, retry_at: datetime | None = None
    ) -> bool:
        await trio.lowlevel.checkpoint()
        again = optional_moment("retry_at", retry_at)
        row = self._claimed(company_id, reminder_id, owner)
        if row is None:
            return False
        self._put(
            replace(
                row,
                status=ReminderStatus.PLANNED,
                due_at=again or row.due_at,
                claimed_by=None,
                claim_until=None,
                updated_at=self._db.clock(),
            )
        )
        return True

    async def get(self, company_id: int, reminder_id: int) -> Reminder | None:
        await trio.lowlevel.checkpoint()
        rid = check_id("reminder_id", reminder_id)
        self._db.require_company(check_company(company_id))
        row = self._db.reminders.get(rid)
        return row if row is not None and row.company_id == company_id else None

    async def for_visit(self, company_id: int, record_id: int) -> list[Reminder]:
        await trio.lowlevel.checkpoint()
        record = check_record_id("record_id", record_id)
        self._db.require_company(check_company(company_id))
        return sorted(self._visit(company_id, record), key=visit_order)

    async def upcoming(self, company_id: int, limit: int = 50) -> list[Reminder]:
        await trio.lowlevel.checkpoint()
        count = limit_value(limit, high=MAX_UPCOMING)
        self._db.require_company(check_company(company_id))
        held = (self._db.reminders[i] for i in self._db.reminders_of.get(company_id, ()))
        rows = [r for r in held if r.status in UPCOMING_STATUSES]
        return sorted(rows, key=upcoming_order)[:count]


def _dropped(row: Reminder, reason: str, now: datetime) -> Reminder:
    return replace(
        row,
        status=ReminderStatus.DROPPED,
        reason=reason,
        claimed_by=None,
        claim_until=None,
        updated_at=now,
    )


def _went_earlier(before: datetime | None, written: list[datetime]) -> bool:
    """Whether a row just planned is due before everything that was pending."""
    if not written:
        return False
    return before is None or min(written) < before


class MemoryReviews:
    """:class:`Reviews` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def save_rating(
        self,
        company_id: int,
        record_id: int,
        visit_id: int | None,
        phone: str,
        rating: int,
        comment: str | None,
    ) -> Review:
        await trio.lowlevel.checkpoint()
        record = check_record_id("record_id", record_id)
        visit = optional_record_id("visit_id", visit_id)
        number = check_phone(phone)
        stars = check_rating(rating)
        words = check_comment(comment)
        self._db.require_company(check_company(company_id))
        now = self._db.clock()
        old = self._db.reviews.get((company_id, record))
        review = Review(
            company_id=company_id,
            record_id=record,
            visit_id=visit if visit is not None or old is None else old.visit_id,
            phone=number,
            rating=stars,
            comment=words,
            created_at=now if old is None else old.created_at,
            updated_at=now,
        )
        self._db.reviews[(company_id, record)] = review
        return review

    async def get(self, company_id: int, record_id: int) -> Review | None:
        await trio.lowlevel.checkpoint()
        record = check_record_id("record_id", record_id)
        self._db.require_company(check_company(company_id))
        return self._db.reviews.get((company_id, record))

    async def list_low(
        self, company_id: int, since: datetime, *, max_rating: int = 3, limit: int = 100
    ) -> list[Review]:
        await trio.lowlevel.checkpoint()
        after = check_moment("since", since)
        top = check_rating(max_rating)
        limit_value(limit)
        self._db.require_company(check_company(company_id))
        low = [
            r
            for r in self._db.reviews.of(company_id)
            if r.rating <= top and r.updated_at is not None and r.updated_at >= after
        ]
        low.sort(key=lambda r: (r.updated_at or after, r.record_id), reverse=True)
        return low[:limit]


class MemoryReminderSettings:
    """:class:`ReminderSettingsStore` in memory."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def get(self, company_id: int) -> dict[str, Any] | None:
        await trio.lowlevel.checkpoint()
        self._db.require_company(check_company(company_id))
        stored = self._db.reminder_settings.get(company_id)
        return None if stored is None else json.loads(json.dumps(stored))

    async def get_many(self, company_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        await trio.lowlevel.checkpoint()
        ids = [check_company(company_id) for company_id in company_ids]
        found = ((cid, self._db.reminder_settings.get(cid)) for cid in ids)
        return {cid: json.loads(json.dumps(got)) for cid, got in found if got is not None}

    async def put(self, company_id: int, settings: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        body = v.json_object("settings", settings)
        self._db.require_company(check_company(company_id))
        self._db.reminder_settings[company_id] = body
