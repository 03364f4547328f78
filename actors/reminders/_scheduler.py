"""The reminder scheduler: a service of the node's supervision tree (child
:data:`REMINDERS_CHILD`) that sends the planned reminders and review requests when they are due.

How it runs. It sleeps until the earliest row of the durable schedule becomes claimable
(``Reminders.next_due``), never longer than ``ReminderOptions.max_sleep``, and wakes early
when :meth:`ReminderScheduler.wake` is called (this node planned an earlier row) or a message
comes on the pub/sub channel :data:`WAKE_CHANNEL` (another process did:
:meth:`ReminderScheduler.announce`). Awake, it claims what is due (``claim_due``: ``FOR UPDATE
SKIP LOCKED`` with a lease, so several processes share the schedule), handles the claimed rows
concurrently (at most ``concurrency`` at once) and claims again until nothing is left; then it
sleeps again. It never reads rows that are not due: with nothing due it costs three small
indexed queries (claim, next due, backlog) per ``max_sleep``. Within a claimed batch a
salon's company row, settings and placement are read once, the batch's visits
(``salon_records``) and chats (``conversations``, for ``may_prompt``: as of the batch's
start) one statement each, and sent rows are marked together (``mark_sent_many``:
whatever was sent while the previous mark was written, in one statement).

Exactly once, end to end. A row's ``message_id`` is decided at its first claim and kept on
every later one; the message goes to the company actor as ``SendText(..., message_id=)``,
which records it in ``messages`` (unique per company and id) and queues it, and does neither
again for an id it already has; the outbound queue retries a send with the same id, which
WhatsApp deduplicates. A claimer that dies after the send but before ``mark_sent`` leaves the
row claimed until its lease runs out; the next claim sends the same id, which changes nothing.

Each claimed row ends as one of:

- **skipped** (``mark_skipped``, reason in ``aiadmin_reminders_skipped_total``): ``past`` (now
  is past its ``send_by``); ``no_phone``; the visit as we hold it in ``salon_records`` was
  deleted (``cancelled``), is a no-show (``no_show``), starts at another time (``moved``; its
  new time has its own rows) or, for a reminder, was attended (``attended``; the review still
  goes); ``opted_out`` / ``handed_over`` (the client's chat); the company is gone
  (``no_company``) or uninstalled (``uninstalled``: it will not come back for this visit); the
  kind was switched off since planning (``disabled``); a reminder whose moment fell into the
  salon's quiet hours (``quiet_hours``: settings changed since planning); details that cannot
  be read (``unreadable``) or an unknown kind (``unknown_kind``);
- **released** for later (``release(retry_at=)``, same message id): a company that is frozen
  or not linked (:data:`UNAVAILABLE_RETRY`: the salon may link again before ``send_by``; after
  it the row is skipped as ``past``); a review in quiet hours (at their end); in cluster mode a
  company whose actor runs on another node (:data:`ELSEWHERE_RETRY`, so that node's scheduler
  takes it); a full outbound queue, an unavailable actor, a company that cannot send right now
  (:data:`RETRY_BACKOFF` by attempt);
- **sent** (``mark_sent``): queued with the company actor; then the assistant (if the node
  runs one) is told (``note_sent_prompt``), so the client's reply is read in its light.

A storage error on one row leaves it claimed (its lease runs out and it is claimed again, with
the same message id); one on the schedule itself pauses the loop (:data:`ERROR_PAUSE`) instead
of crashing the service. A lost pub/sub message costs at most ``max_sleep`` of delay.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from metrics import MetricsRegistry
from runtime import ActorError, Backoff, Jitter
from storage import (
    Company,
    CompanyStatus,
    Conversation,
    ConversationMode,
    Reminder,
    SalonRecord,
    Storage,
    StorageError,
)

from .._phones import InvalidPhone, normalise_phone
from ..assistant._prompts import Prompt, PromptKind, may_prompt
from ..company import messages as m
from ..company._errors import (
    CompanyNotFound,
    OutboundQueueFull,
    OwnedElsewhere,
    SendingUnavailable,
)
from ._details import DetailsUnreadable, visit_from_details
from ._options import ReminderOptions
from ._plan import MessageKind
from ._settings import InvalidReminderSettings, ReminderSettings
from ._texts import render_message
from ._timing import is_quiet, quiet_span_end

if TYPE_CHECKING:
    from ..assistant import Assistant

__all__ = [
    "CONCURRENCY",
    "ELSEWHERE_RETRY",
    "REMINDERS_CHILD",
    "RETRY_BACKOFF",
    "UNAVAILABLE_RETRY",
    "WAKE_CHANNEL",
    "ReminderScheduler",
    "SchedulerStatus",
]

log = logging.getLogger(__name__)

#: The scheduler's child id in the node's supervision tree (``/health/tree``).
REMINDERS_CHILD = "reminders.scheduler"
#: The pub/sub channel on which a process that planned an earlier row wakes the others.
WAKE_CHANNEL = "reminders:wake"
#: Rows handled at once (each is a few storage reads and one ask of its company's actor).
CONCURRENCY = 16
#: How long the company actor may take to queue a message.
SEND_TIMEOUT = 10.0
#: A row whose company's actor runs on another node is claimable again after this (cluster).
ELSEWHERE_RETRY = dt.timedelta(seconds=2)
#: A frozen or unlinked company's row is looked at again after this (until its ``send_by``).
UNAVAILABLE_RETRY = dt.timedelta(minutes=10)
#: Retry of a send the company actor refused for now (queue full, actor unavailable), by the
#: row's attempt: 30 s, 1 min, 2 min … 10 min, ± 20 %.
RETRY_BACKOFF = Backoff(initial=30.0, maximum=600.0, jitter=0.2, mode=Jitter.SPREAD)
#: The shortest sleep when rows are due but none could be claimed (another process holds
#: them mid-claim): no busy loop.
IDLE_FLOOR = 1.0
#: The pause after the schedule itself could not be read (database down).
ERROR_PAUSE = 5.0
#: How long a wake-up publish may take.
PUBLISH_TIMEOUT = 2.0
#: The pause before subscribing again after the wake-up channel was lost: 5 s, growing to a
#: minute while Redis stays down (``max_sleep`` covers what is announced meanwhile).
RESUBSCRIBE_BACKOFF = Backoff(initial=5.0, maximum=60.0, jitter=0.2, mode=Jitter.SPREAD)
#: The zone of a salon whose stored zone name is unknown.
DEFAULT_ZONE = "Europe/Moscow"

#: ``ask(company_id, message, timeout)``: a company actor's reply (the registry's ref ask).
AskCompany = Callable[[int, Any, float], Awaitable[Any]]
#: Cluster mode: ``None`` when the company's actor runs here, else the owning node's id.
PlaceCompany = Callable[[int], Awaitable[str | None]]


@dataclass(frozen=True)
class SchedulerStatus:
    """What ``/health/tree`` shows of the scheduler, as of its last pass: rows claimable now,
    when the next one becomes claimable, messages sent and skipped by this node since it
    started, and the last error met (``None`` when none)."""

    backlog: int = 0
    next_due: dt.datetime | None = None
    sent: int = 0
    skipped: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backlog": self.backlog,
            "next_due": None if self.next_due is None else self.next_due.isoformat(),
            "sent": self.sent,
            "skipped": self.skipped,
            "last_error": self.last_error,
        }


@dataclass
class _BatchCache:
    """What every row of one claimed batch shares per salon (its company row, settings and,
    in cluster mode, where its actor runs), read once per batch instead of once per row: a
    burst of 300 reminders of one salon is 3 batches, not 300 reads of each. A salon's lock
    makes its rows handled at once wait for the first one's read instead of each reading."""

    companies: dict[int, Company | None] = field(default_factory=dict)
    settings: dict[int, ReminderSettings] = field(default_factory=dict)
    places: dict[int, str | None] = field(default_factory=dict)
    locks: dict[int, trio.Lock] = field(default_factory=dict)
    #: The batch's visits as we hold them (read in one statement), by (company, record);
    #: ``None``: not read for the batch (a row handled alone reads its own).
    records: dict[tuple[int, int], SalonRecord] | None = None
    #: The batch's chats (read in one statement), by (company, normalised phone); ``None``:
    #: not read for the batch (a row handled alone asks the assistant).
    chats: dict[tuple[int, str], Conversation] | None = None
    #: Rows sent and not yet marked, marked by the batch's marker (``None``: each row is
    #: marked as it is sent).
    sent: _SentRows | None = None

    def salon(self, company_id: int) -> trio.Lock:
        """The lock held while the salon's shared values are read."""
        return self.locks.setdefault(company_id, trio.Lock())


@dataclass
class _SentRows:
    """Rows queued with their company actors and not yet marked sent. One marker marks all
    waiting rows in one statement, then the ones that came meanwhile (a group commit): a row
    is marked as soon as the previous write is done, and under load one write marks many."""

    rows: list[Reminder] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)
    done: bool = False

    def add(self, row: Reminder) -> None:
        self.rows.append(row)
        self.changed.set()

    def finish(self) -> None:
        """No row comes any more: the marker returns once it has marked the last ones."""
        self.done = True
        self.changed.set()


@dataclass(frozen=True)
class _Skip:
    reason: str


@dataclass(frozen=True)
class _Release:
    retry_at: dt.datetime
    why: str


@dataclass(frozen=True)
class _Send:
    company: Company
    text: str
    prompt: Prompt


def salon_zone(company: Company) -> ZoneInfo:
    """The salon's zone (:data:`DEFAULT_ZONE` when the stored name is unknown)."""
    try:
        return ZoneInfo(company.timezone or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


class ReminderScheduler:
    """Sends due reminders and review requests (see the module docstring); a
    ``runtime.Service``, restarted by the node on a crash (``run`` again, counters kept).

    ``ask`` reaches company actors; ``owner`` is this node's id (the claims' owner);
    ``place`` (cluster mode) says whether a company's actor runs here; ``assistant`` (when the
    node runs one) decides whether a chat may be prompted and keeps the sent prompt.
    """

    def __init__(
        self,
        storage: Storage,
        ask: AskCompany,
        *,
        owner: str,
        options: ReminderOptions,
        metrics: MetricsRegistry | None = None,
        place: PlaceCompany | None = None,
        assistant: Assistant | None = None,
        rng: random.Random | None = None,
        concurrency: int = CONCURRENCY,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.storage = storage
        self.ask = ask
        self.owner = owner
        self.options = options
        self.place = place
        self.assistant = assistant
        self.rng = rng or random.Random()
        self.concurrency = concurrency
        self.send_timeout = send_timeout
        self._wake = trio.Event()
        self._status = SchedulerStatus()
        self._sent = 0
        self._skipped = 0
        self._last_error: str | None = None
        #: Passes made (claims attempted), for tests and the benchmark's idle check.
        self.passes = 0
        registry = metrics or MetricsRegistry()
        self._sent_total = registry.counter(
            "aiadmin_reminders_sent_total", "Reminders and review requests queued", ("kind",)
        )
        self._skipped_total = registry.counter(
            "aiadmin_reminders_skipped_total",
            "Reminders and review requests not sent, by reason",
            ("kind", "reason"),
        )
        registry.gauge(
            "aiadmin_reminders_backlog",
            "Reminder rows claimable at the scheduler's last pass",
            lambda: {(): float(self._status.backlog)},
        )

    # -- the service -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen for wake-ups and send what is due, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen)
            task_status.started()
            while True:
                self._wake = trio.Event()  # a wake during the pass makes the next sleep short
                try:
                    delay = await self.run_pass()
                except StorageError as exc:
                    self._failed(exc)
                    log.warning("reminders: the schedule could not be read: %s", exc)
                    delay = ERROR_PAUSE
                with trio.move_on_after(delay):
                    await self._wake.wait()

    def wake(self) -> None:
        """Look at the schedule now (an earlier row was planned here); never blocks."""
        self._wake.set()

    async def announce(self) -> None:
        """Wake this scheduler and every other process's (pub/sub :data:`WAKE_CHANNEL`); a
        lost publish is only logged (each scheduler looks at least every ``max_sleep``)."""
        self.wake()
        with trio.move_on_after(PUBLISH_TIMEOUT):
            try:
                await self.storage.pubsub.publish(WAKE_CHANNEL, {"from": self.owner})
            except StorageError as exc:
                log.warning("reminders: wake-up not published: %s", exc)

    def status(self) -> SchedulerStatus:
        """The backlog, next due time and counts as of the last pass or
        :meth:`refresh_status` (``/health/tree``)."""
        return self._status

    async def refresh_status(self) -> SchedulerStatus:
        """Read the backlog (rows claimable now) and the next due time from the schedule,
        keep them for :meth:`status` and return them (two indexed queries)."""
        now = self.options.wall_clock()
        next_due = await self.storage.reminders.next_due()
        backlog = await self.storage.reminders.backlog(now)
        self._status = SchedulerStatus(
            backlog=backlog,
            next_due=next_due,
            sent=self._sent,
            skipped=self._skipped,
            last_error=self._last_error,
        )
        return self._status

    async def _listen(self) -> None:
        """Wake on every message of :data:`WAKE_CHANNEL`; subscribe again after a loss."""
        failures = 0
        while True:
            try:
                async with self.storage.pubsub.subscribe(WAKE_CHANNEL) as wakes:
                    failures = 0
                    self.wake()  # what was announced while we were not listening
                    async for _ in wakes:
                        self.wake()
            except StorageError as exc:
                failures += 1
                log.warning("reminders: wake-up channel lost: %s", exc)
            await trio.sleep(RESUBSCRIBE_BACKOFF.delay(failures, self.rng))

    # -- one pass ----------------------------------------------------------------------------

    async def run_pass(self) -> float:
        """Claim and handle due rows until none is left; refresh :meth:`status`; return how
        long to sleep before the next pass (until the next row is due, at most
        ``max_sleep``)."""
        options = self.options
        while True:
            claimed_at = options.wall_clock()
            rows = await self.storage.reminders.claim_due(
                claimed_at, self.owner, options.claim_lease, limit=options.batch
            )
            self.passes += 1
            if not rows:
                break
            await self._handle_all(rows)
        status = await self.refresh_status()
        next_due = status.next_due
        if next_due is None:
            return options.max_sleep
        if next_due <= claimed_at:
            return IDLE_FLOOR  # due, yet the claim got nothing: another claimer holds it now
        delay = (next_due - options.wall_clock()).total_seconds()
        return min(max(delay, 0.0), options.max_sleep)

    async def _handle_all(self, rows: list[Reminder]) -> None:
        """Handle ``rows`` at most :attr:`concurrency` at once; return when all are done."""
        slots = trio.Semaphore(self.concurrency)
        sent = _SentRows()
        cache = _BatchCache(sent=sent)
        salons = list(dict.fromkeys(row.company_id for row in rows))
        try:
            cache.companies.update(await self.storage.companies.get_many(salons))
            for company_id in salons:
                cache.companies.setdefault(company_id, None)
            stored = await self.storage.reminder_settings.get_many(salons)
            for company_id in salons:
                cache.settings[company_id] = _parse_settings(company_id, stored.get(company_id))
        except StorageError as exc:  # each salon's first row reads its own
            log.warning("reminders: the batch's salons could not be read: %s", exc)
        try:
            cache.records = await self.storage.records.get_many(
                [(row.company_id, row.record_id) for row in rows]
            )
        except StorageError as exc:  # each row reads its own (and meets the error there)
            log.warning("reminders: the batch's visits could not be read: %s", exc)
        try:
            cache.chats = await self.storage.conversations.get_many(
                [(row.company_id, number) for row in rows if (number := _number(row.phone))]
            )
        except StorageError as exc:
            log.warning("reminders: the batch's chats could not be read: %s", exc)

        async def one(row: Reminder) -> None:
            try:
                await self.handle(row, cache)
            finally:
                slots.release()

        async with trio.open_nursery() as marking:
            marking.start_soon(self._marker, sent)
            try:
                async with trio.open_nursery() as nursery:
                    for row in rows:
                        await slots.acquire()
                        nursery.start_soon(one, row)
            finally:
                sent.finish()

    async def _marker(self, sent: _SentRows) -> None:
        """Mark the batch's sent rows as they come (see :class:`_SentRows`) until it ends."""
        while True:
            await sent.changed.wait()
            sent.changed = trio.Event()
            rows, sent.rows = sent.rows, []
            await self._mark_sent(rows)
            if sent.done and not sent.rows:
                return

    async def _mark_sent(self, rows: list[Reminder]) -> None:
        """Mark ``rows`` (queued with their company actors) sent, in one statement. A row no
        longer ours (its lease ran out and another claimer has it) is that claimer's to mark;
        on a storage error all stay claimed and are claimed again with the same message ids,
        which the company actors have already (nothing is sent twice)."""
        if not rows:
            return
        try:
            marked = await self.storage.reminders.mark_sent_many(
                self.owner, [(row.company_id, row.id) for row in rows]
            )
        except StorageError as exc:
            self._failed(exc)
            log.warning("reminders: %d sent rows not marked: %s", len(rows), exc)
            return
        for row in rows:
            if (row.company_id, row.id) in marked:
                self._sent += 1
                self._sent_total.labels(row.kind).inc()
            else:  # our lease ran out and another claimer has it: its send carries the same id
                log.info("reminders: row %s was no longer ours when sent", row.id)

    async def handle(self, row: Reminder, cache: _BatchCache | None = None) -> None:
        """Send, skip or release one claimed row (see the module docstring); ``cache`` holds
        what the row's batch already read of its salon."""
        try:
            cache = _BatchCache() if cache is None else cache
            verdict = await self._judge(row, cache)
            match verdict:
                case _Skip(reason=reason):
                    await self._skip(row, reason)
                case _Release(retry_at=retry_at, why=why):
                    await self._release(row, retry_at, why)
                case _Send():
                    await self._send(row, verdict, cache)
        except StorageError as exc:
            # left claimed: claimed again (same message id) once its lease runs out
            self._failed(exc)
            log.warning("reminders: row %s of company %s: %s", row.id, row.company_id, exc)

    # -- deciding ----------------------------------------------------------------------------

    async def _judge(self, row: Reminder, cache: _BatchCache) -> _Skip | _Release | _Send:
        """What to do with a claimed row now."""
        now = self.options.wall_clock()
        if row.send_by is not None and now > row.send_by:
            return _Skip("past")
        if not row.phone:
            return _Skip("no_phone")
        try:
            kind = MessageKind(row.kind)
        except ValueError:
            return _Skip("unknown_kind")
        gone = await self._visit_changed(row, kind, cache)
        if gone is not None:
            return _Skip(gone)
        async with cache.salon(row.company_id):
            if row.company_id not in cache.companies:
                cache.companies[row.company_id] = await self.storage.companies.get(row.company_id)
        company = cache.companies[row.company_id]
        if company is None:
            return _Skip("no_company")
        if company.status is CompanyStatus.UNINSTALLED:
            return _Skip("uninstalled")
        if company.status is CompanyStatus.FROZEN or company.whatsapp_jid is None:
            return _Release(now + UNAVAILABLE_RETRY, f"company is {company.integration_status}")
        async with cache.salon(row.company_id):
            if row.company_id not in cache.settings:
                cache.settings[row.company_id] = await self._settings(row.company_id)
        settings = cache.settings[row.company_id]
        zone = salon_zone(company)
        if not _enabled(settings, kind):
            return _Skip("disabled")
        if is_quiet(now, settings.quiet, zone):
            if kind is not MessageKind.REVIEW:
                return _Skip("quiet_hours")
            after = quiet_span_end(now, settings.quiet, zone)
            if row.send_by is not None and after > row.send_by:
                return _Skip("quiet_hours")
            return _Release(after, "quiet hours")
        refusal = await self._chat_refuses(row.company_id, row.phone, now, cache)
        if refusal is not None:
            return _Skip(refusal)
        if self.place is not None:
            try:
                async with cache.salon(row.company_id):
                    if row.company_id not in cache.places:
                        cache.places[row.company_id] = await self.place(row.company_id)
                holder = cache.places[row.company_id]
            except StorageError as exc:
                return _Release(now + self._backoff(row), f"placement: {_describe(exc)}")
            if holder is not None:
                return _Release(now + ELSEWHERE_RETRY, "company runs on another node")
        try:
            visit = visit_from_details(
                company_id=row.company_id,
                record_id=row.record_id,
                visit_id=row.visit_id,
                phone=row.phone,
                visit_time=row.visit_time,
                details=row.details,
            )
        except DetailsUnreadable:
            return _Skip("unreadable")
        text = render_message(
            kind,
            visit,
            settings,
            zone,
            now=now,
            salon=company.title or "",
            address=company.address or "",
        )
        prompt = Prompt(
            kind=PromptKind(kind.value),
            record_id=row.record_id,
            visit_id=row.visit_id,
            start=row.visit_time,
            sent_at=now,
            service_titles=visit.service_titles,
            master_name=visit.master_name,
        )
        return _Send(company, text, prompt)

    async def _visit_changed(
        self, row: Reminder, kind: MessageKind, cache: _BatchCache
    ) -> str | None:
        """Why the visit, as we hold it now (as of the batch's read), no longer wants this
        message (``None``: it does, or we do not hold the record)."""
        if cache.records is not None:
            record = cache.records.get((row.company_id, row.record_id))
        else:
            record = await self.storage.records.get(row.company_id, row.record_id)
        if record is None:
            return None
        if record.deleted:
            return "cancelled"
        if record.attendance == -1:
            return "no_show"
        starts = record.starts_at
        if starts is not None and starts.tzinfo is not None and starts != row.visit_time:
            return "moved"
        if record.attendance == 1 and kind is not MessageKind.REVIEW:
            return "attended"
        return None

    async def _settings(self, company_id: int) -> ReminderSettings:
        """The salon's settings now (the defaults when none are stored or they are
        unreadable)."""
        return _parse_settings(company_id, await self.storage.reminder_settings.get(company_id))

    async def _chat_refuses(
        self, company_id: int, phone: str, now: dt.datetime, cache: _BatchCache
    ) -> str | None:
        """``opted_out`` / ``handed_over`` / ``no_phone`` when the client may not be prompted
        (the assistant's rule, ``may_prompt``, on the chat as the batch read it), else
        ``None``."""
        number = _number(phone)
        if number is None:
            return "no_phone"
        if cache.chats is not None:
            row = cache.chats.get((company_id, number))
            if may_prompt(row, now):
                return None
        elif self.assistant is not None:
            if await self.assistant.may_prompt(company_id, number, now):
                return None
            row = await self.storage.conversations.get(company_id, number)
        else:
            row = await self.storage.conversations.get(company_id, number)
            if may_prompt(row, now):
                return None
        if row is not None and row.mode == ConversationMode.HANDOFF:
            return "handed_over"
        return "opted_out"

    def _backoff(self, row: Reminder) -> dt.timedelta:
        return dt.timedelta(seconds=RETRY_BACKOFF.delay(row.attempts, self.rng))

    # -- acting ------------------------------------------------------------------------------

    async def _send(self, row: Reminder, send: _Send, cache: _BatchCache) -> None:
        """Queue the message with its decided id, tell the assistant, mark the row sent (or
        leave it to the batch to mark)."""
        assert row.phone is not None and row.message_id is not None
        now = self.options.wall_clock()
        message = m.SendText(row.phone, send.text, message_id=row.message_id)
        try:
            await self.ask(row.company_id, message, self.send_timeout)
        except CompanyNotFound:
            await self._skip(row, "no_company")
            return
        except OwnedElsewhere:
            await self._release(row, now + ELSEWHERE_RETRY, "company runs on another node")
            return
        except (OutboundQueueFull, SendingUnavailable, ActorError) as exc:
            # the message may be queued already (a timed-out ask): the retry has the same id
            self._failed(exc)
            await self._release(row, now + self._backoff(row), _describe(exc))
            return
        if self.assistant is not None:
            try:
                await self.assistant.note_sent_prompt(
                    row.company_id, row.phone, send.prompt, company=send.company
                )
            except ActorError as exc:  # the message is queued: it goes, only unremembered
                log.warning("company %s: reminder not noted in the chat: %s", row.company_id, exc)
        if cache.sent is not None:
            cache.sent.add(row)
        elif await self.storage.reminders.mark_sent(row.company_id, row.id, self.owner):
            self._sent += 1
            self._sent_total.labels(row.kind).inc()
        else:  # our lease ran out and another claimer has it: its send carries the same id
            log.info("reminders: row %s was no longer ours when sent", row.id)

    async def _skip(self, row: Reminder, reason: str) -> None:
        if await self.storage.reminders.mark_skipped(row.company_id, row.id, self.owner, reason):
            self._skipped += 1
            self._skipped_total.labels(row.kind, reason).inc()

    async def _release(self, row: Reminder, retry_at: dt.datetime, why: str) -> None:
        log.info("reminders: row %s of company %s later: %s", row.id, row.company_id, why)
        await self.storage.reminders.release(row.company_id, row.id, self.owner, retry_at=retry_at)

    def _failed(self, exc: BaseException) -> None:
        self._last_error = _describe(exc)


def _parse_settings(company_id: int, stored: dict[str, Any] | None) -> ReminderSettings:
    """A salon's stored settings (the defaults when none are stored or they are unreadable)."""
    if stored is None:
        return ReminderSettings()
    try:
        return ReminderSettings.from_json(stored)
    except InvalidReminderSettings as exc:
        log.warning("company %s: reminder settings unreadable (%s); defaults", company_id, exc)
        return ReminderSettings()


def _number(phone: str | None) -> str | None:
    """The client's number as chats are keyed (``None``: none, or one we cannot read)."""
    if not phone:
        return None
    try:
        return normalise_phone(phone, region=None)
    except InvalidPhone:
        return None


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an error, short (for the status and the logs)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:199] + "…"


def _enabled(settings: ReminderSettings, kind: MessageKind) -> bool:
    """Whether the salon sends ``kind`` at all (as set now)."""
    return {
        MessageKind.DAY_BEFORE: settings.day_before_enabled,
        MessageKind.TWO_HOURS: settings.two_hours_enabled,
        MessageKind.REVIEW: settings.reviews_enabled,
    }[kind]
