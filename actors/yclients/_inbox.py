"""The record-webhook worker: handles the durable inbox, in order per company, never losing
an event.

The web route stores every YClients webhook in ``storage.inbox`` (deduplicated) before it
answers 2xx. This worker, a supervised :class:`runtime.Service` of the node, then:

- asks the inbox which companies have due events (``due_companies``) every
  ``poll_interval`` seconds (or at once after :meth:`RecordInboxWorker.poke`), and drains each
  company in its own task, at most ``concurrency`` companies at a time;
- claims a company's events with ``claim_for_company`` (one claimer per company, id order) and
  handles them one after the other:

  * ``record:create`` / ``record:update``: the webhook's ``data`` when it is the whole record
    with its change time, else ``GET record/{salon}/{record}`` through the YClients client;
    then ``storage.records.apply`` (an older change never overwrites a newer one);
  * ``record:delete``: the record is flagged deleted (its other fields kept);
  * any other type is acknowledged (marked done) and logged — except ``lifecycle:*``, which
    is never claimed here: it belongs to the lifecycle handler (``exclude_prefix``).
- with a reminder planner (the node sends reminders), plans the reminders of the record as
  stored after the event (``ReminderPlanner.plan_record``: a move re-plans, a deletion drops,
  attendance 1 brings the review request forward, -1 skips it).

Failures:

- YClients unreachable, 5xx, 429, a storage hiccup, a client not configured, or a bug: the
  event is marked failed with exponential backoff (``InboxPolicy.backoff``) and retried
  later; the events claimed after it in the same batch wait with it, and the company is not
  drained again before then, so order is kept.
- YClients refuses our credentials (401/403): retried after ``auth_retry`` (access may come
  back after a re-install).
- Permanent problems (malformed event, another salon's data, a 4xx other than 404): the event
  is marked dead (kept, with its error, for operators) and the company's next events go on.
- 404 for the record: it is gone in YClients; our copy is flagged deleted.

Cancellation: stopping the service cancels a drain at any point; a claimed event whose
outcome was not recorded comes back when its lease ends (handling is idempotent).
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from metrics import MetricsRegistry
from runtime import Backoff
from storage import Company, InboxEvent, Storage, StorageError, ValidationError

from ._client import YClientsClient, equal_jitter
from ._errors import (
    YClientsAuthError,
    YClientsError,
    YClientsRateLimited,
    YClientsRejected,
)
from ._records import change_time, is_complete, record_from_api

if TYPE_CHECKING:
    from ..reminders import ReminderPlanner

log = logging.getLogger("actors.yclients.inbox")

RECORD_CREATE = "record:create"
RECORD_UPDATE = "record:update"
RECORD_DELETE = "record:delete"
RECORD_EVENTS = frozenset({RECORD_CREATE, RECORD_UPDATE, RECORD_DELETE})
#: Event types left to the lifecycle handler (never claimed by this worker).
LIFECYCLE_PREFIX = "lifecycle:"


@dataclass(frozen=True)
class InboxPolicy:
    """How the worker polls, claims and backs off.

    Backoff before the retry of an event claimed ``attempts`` times: a random value in
    ``[d/2, d]`` with ``d = min(backoff_max, backoff_initial * 2**(attempts-1))``
    (:func:`~._client.equal_jitter`).
    """

    poll_interval: float = 1.0
    #: Small batches: every event may wait for YClients, and the whole batch must be settled
    #: within the lease (else another node could claim the rest and break the order).
    batch: int = 5
    lease: float = 300.0
    concurrency: int = 8
    backoff_initial: float = 5.0
    backoff_max: float = 900.0
    auth_retry: float = 3600.0
    #: Pause after a storage error in the polling loop.
    storage_pause: float = 5.0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        for name in ("poll_interval", "lease", "backoff_initial", "backoff_max", "auth_retry"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def retry_backoff(self) -> Backoff:
        """The waits before retries (equal jitter)."""
        return equal_jitter(self.backoff_initial, self.backoff_max)

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """The wait before retrying an event claimed ``attempts`` times (≥ 1)."""
        return self.retry_backoff.delay(attempts, rng)


class InboxOutcome(enum.StrEnum):
    """What handling one event did (also the ``outcome`` label of the metric)."""

    STORED = "stored"
    STALE = "stale"  # an older change than the one we hold: nothing written
    DELETED = "deleted"
    IGNORED = "ignored"  # unknown type, or a company that is gone: acknowledged
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class InboxStatistics:
    """A snapshot of the counts since the worker was made (this process), for health views
    and tests: events settled per outcome, and companies being drained now."""

    outcomes: dict[str, int] = field(default_factory=dict)
    draining: int = 0

    def count(self, outcome: InboxOutcome) -> int:
        return self.outcomes.get(outcome.value, 0)


class _Retry(Exception):
    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay


class _Dead(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _positive(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


class RecordInboxWorker:
    """A :class:`runtime.Service` handling record webhooks from ``storage.inbox``.

    ``client`` is the node's YClients client (or ``None`` when YClients is not
    configured: events that need it wait, retried with backoff). ``metrics`` gets the counter
    ``aiadmin_webhook_events_handled_total{kind,outcome}``.
    """

    def __init__(
        self,
        storage: Storage,
        client: YClientsClient | None,
        *,
        policy: InboxPolicy | None = None,
        metrics: MetricsRegistry | None = None,
        rng: random.Random | None = None,
        on_record: Callable[[int], None] | None = None,
        planner: ReminderPlanner | None = None,
    ) -> None:
        #: Plans (or drops) the reminders of each record an event changed, when the node
        #: sends reminders.
        self._planner = planner
        #: Told the salon's YClients id after each record event applied (the assistant drops
        #: its cached free times of that salon).
        self._on_record = on_record
        self._storage = storage
        self._client = client
        self._policy = policy or InboxPolicy()
        self._rng = rng or random.Random()
        self._limiter = trio.CapacityLimiter(self._policy.concurrency)
        self._running: set[int] = set()
        self._blocked: dict[int, float] = {}
        self._wake = trio.Event()
        self._outcomes: dict[str, int] = {}
        registry = metrics or MetricsRegistry()
        self._handled = registry.counter(
            "aiadmin_webhook_events_handled_total",
            "YClients webhook events handled from the inbox",
            ("kind", "outcome"),
        )

    def __repr__(self) -> str:
        return (
            f"<RecordInboxWorker draining={len(self._running)} "
            f"blocked={len(self._blocked)} outcomes={self._outcomes}>"
        )

    def statistics(self) -> InboxStatistics:
        """A copy of the counts so far."""
        return InboxStatistics(dict(self._outcomes), len(self._running))

    def poke(self) -> None:
        """Look for due events now instead of at the next poll (never blocks)."""
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll and drain until cancelled; started as soon as the loop runs."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                pause = self._policy.poll_interval
                try:
                    due = await self._storage.inbox.due_companies(
                        self._policy.concurrency * 4, exclude_prefix=LIFECYCLE_PREFIX
                    )
                except StorageError as exc:
                    log.warning("inbox poll failed: %s", exc)
                    due, pause = [], self._policy.storage_pause
                now = trio.current_time()
                self._blocked = {c: t for c, t in self._blocked.items() if t > now}
                for company_id in due:
                    if company_id in self._running or company_id in self._blocked:
                        continue
                    self._running.add(company_id)
                    nursery.start_soon(self._drain_guarded, company_id)
                with trio.move_on_after(pause):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _drain_guarded(self, company_id: int) -> None:
        try:
            async with self._limiter:
                await self.drain_company(company_id)
        except StorageError as exc:
            # The leases bring the claimed events back; try the company again after a pause.
            log.warning("inbox drain of company %s stopped: %s", company_id, exc)
            self._blocked[company_id] = trio.current_time() + self._policy.storage_pause
        finally:
            self._running.discard(company_id)

    async def drain_company(self, company_id: int) -> int:
        """Handle the company's due events in order until none is left or one must wait;
        returns how many were settled (done or dead). Raises ``StorageError`` only."""
        settled = 0
        inbox = self._storage.inbox
        company: list[Company | None] = []  # looked up once per drain
        while True:
            events = await inbox.claim_for_company(
                company_id,
                self._policy.batch,
                lease=self._policy.lease,
                exclude_prefix=LIFECYCLE_PREFIX,
            )
            if not events:
                return settled
            for index, event in enumerate(events):
                if not company:
                    company.append(await self._storage.companies.get(company_id))
                try:
                    outcome = await self._handle(event, company[0])
                except _Retry as retry:
                    delay = retry.delay or self._policy.backoff(event.attempts, self._rng)
                    log.warning(
                        "inbox event %s (%s) of company %s failed, retry in %.0f s: %s",
                        event.id,
                        event.event_type,
                        company_id,
                        delay,
                        retry.message,
                    )
                    await inbox.mark_failed(event.id, retry.message, retry_in=delay)
                    for later in events[index + 1 :]:
                        await inbox.mark_failed(
                            later.id, f"waiting for event {event.id}", retry_in=delay
                        )
                    self._blocked[company_id] = trio.current_time() + delay
                    self._count(event, InboxOutcome.RETRY)
                    return settled
                except _Dead as dead:
                    log.error(
                        "inbox event %s (%s) of company %s dropped as dead: %s",
                        event.id,
                        event.event_type,
                        company_id,
                        dead.message,
                    )
                    await inbox.mark_failed(event.id, dead.message, retry_in=None)
                    self._count(event, InboxOutcome.DEAD)
                else:
                    await inbox.mark_done(event.id)
                    self._count(event, outcome)
                settled += 1

    def _count(self, event: InboxEvent, outcome: InboxOutcome) -> None:
        kind = event.event_type if event.event_type in RECORD_EVENTS else "other"
        self._handled.labels(kind, outcome.value).inc()
        self._outcomes[outcome.value] = self._outcomes.get(outcome.value, 0) + 1

    # -- one event -------------------------------------------------------------------------

    async def _handle(self, event: InboxEvent, company: Company | None) -> InboxOutcome:
        """Decide and apply one event; raises ``_Retry`` or ``_Dead``."""
        try:
            outcome = await self._handle_record(event, company)
            if self._on_record is not None and company is not None:
                self._on_record(company.yclients_id)
            await self._plan(event, company, outcome)
            return outcome
        except (_Retry, _Dead):
            raise
        except (ValidationError, ValueError) as exc:  # data we can never store
            raise _Dead(f"unusable record: {exc}") from exc
        except StorageError as exc:
            raise _Retry(f"storage: {exc}") from exc
        except Exception as exc:  # a bug must not lose the event nor kill the worker
            log.exception("inbox event %s: unexpected error", event.id)
            raise _Retry(f"unexpected error: {type(exc).__name__}") from exc

    async def _handle_record(self, event: InboxEvent, company: Company | None) -> InboxOutcome:
        kind = event.event_type
        if kind not in RECORD_EVENTS:
            log.info("inbox event %s of unknown type %r acknowledged", event.id, kind)
            return InboxOutcome.IGNORED
        if company is None or company.integration_status == "uninstalled":
            log.info("inbox event %s for a company that is gone: acknowledged", event.id)
            return InboxOutcome.IGNORED
        payload = event.payload
        data = payload.get("data")
        record_id = _positive(payload.get("resource_id"))
        if record_id is None:
            raise _Dead("record event without a resource_id")
        salon = _positive(payload.get("company_id"))
        if salon is not None and salon != company.yclients_id:
            raise _Dead(
                f"event for salon {salon}, company {company.id} is salon {company.yclients_id}"
            )
        records = self._storage.records
        tz = company.timezone
        if kind == RECORD_DELETE:
            if is_complete(data, record_id):
                assert isinstance(data, dict)
                applied = await records.apply(
                    record_from_api(company.id, data, timezone=tz, deleted=True)
                )
            else:
                applied = await records.mark_deleted(
                    company.id,
                    record_id,
                    changed_at=change_time(data, tz),
                    raw=data if isinstance(data, dict) else {},
                )
            return InboxOutcome.DELETED if applied else InboxOutcome.STALE
        raw: dict[str, Any] | None
        if is_complete(data, record_id):
            assert isinstance(data, dict)
            raw = data
        else:
            raw = await self._fetch(event, company, record_id)
        if raw is None:  # YClients says it does not exist (any more)
            await records.mark_deleted(company.id, record_id)
            return InboxOutcome.DELETED
        if _positive(raw.get("id")) != record_id:
            raise _Retry("YClients answered without the record")
        applied = await records.apply(record_from_api(company.id, raw, timezone=tz))
        return InboxOutcome.STORED if applied else InboxOutcome.STALE

    async def _plan(
        self, event: InboxEvent, company: Company | None, outcome: InboxOutcome
    ) -> None:
        """Plan (or drop) the reminders of the record the event changed, as stored now.

        After a write (``stored``/``deleted``), and on a retry whatever the outcome (the
        earlier attempt may have written the record and then failed to plan it). A storage
        outage raises (the event is retried); a record storage refuses to plan, or a bug in
        planning, is logged and the event still counts as handled: the record is stored, and
        the periodic sync plans its visit again."""
        planner = self._planner
        if planner is None or company is None:
            return
        if outcome not in (InboxOutcome.STORED, InboxOutcome.DELETED) and event.attempts <= 1:
            return
        record_id = _positive(event.payload.get("resource_id"))
        if record_id is None:
            return
        record = await self._storage.records.get(company.id, record_id)
        if record is None:
            return
        try:
            await planner.plan_record(company, record)
        except ValidationError as exc:
            log.warning("inbox event %s: reminders not planned: %s", event.id, exc)
        except StorageError:
            raise
        except Exception:
            log.exception("inbox event %s: planning reminders failed", event.id)

    async def _fetch(
        self, event: InboxEvent, company: Company, record_id: int
    ) -> dict[str, Any] | None:
        client = self._client
        if client is None:
            raise _Retry("the YClients client is not configured")
        try:
            return await client.get_record(company.yclients_id, record_id)
        except YClientsRejected as exc:
            if exc.status == 404:
                return None
            raise _Dead(f"YClients refused GET record: {exc.status} {exc.message}") from exc
        except YClientsAuthError as exc:
            raise _Retry(
                f"YClients refused our credentials ({exc.status})", self._policy.auth_retry
            ) from exc
        except YClientsRateLimited as exc:
            delay = max(exc.retry_after, self._policy.backoff(event.attempts, self._rng))
            raise _Retry("YClients rate limit", delay) from exc
        except YClientsError as exc:
            raise _Retry(f"YClients unavailable: {exc}") from exc
