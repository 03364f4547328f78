"""Salon data sync: YClients' salon details, services, categories and staff into our catalog.

A sync of one company (:func:`sync_company`) reads everything first — ``GET company`` (the
card and its ``schedule``, read into opening hours by :func:`opening_hours`),
``GET company/{id}/services`` (services with their description, the masters who do each and
the salon's synonyms; inactive ones left out, as ``book_services`` leaves them out),
``GET company/{id}/service_categories`` and ``GET book_staff``: four requests, each through
the node's one rate-limited client — and only then writes, with one
``storage.catalog.replace_catalog`` transaction (rows upserted, rows YClients no longer lists
marked inactive, never deleted). A sync that fails halfway therefore leaves the previous
complete copy untouched. Every attempt is recorded with ``record_sync`` (last success kept,
last error replaced), which ``/marketplace/status/:id`` shows.

:class:`CatalogSync` is the node's :class:`runtime.Service` that decides *when*:

- **on activation**: every ``poll_interval`` it asks storage for companies in a syncing
  status (``active``, ``reconnecting``) that were never synced — so a company that just became
  active is synced within one poll — and the activation path may call ``request`` to skip
  the wait;
- **on a schedule**: the same query returns companies whose last success is older than
  ``interval`` (``settings.sync_interval``, hourly by default), and failed ones again after
  ``retry_failed``;
- **on demand**: ``request(company_id)`` (``POST /marketplace/sync/<id>``) never blocks; the
  company is synced as soon as a slot is free (again after a sync already under way).

At most ``concurrency`` companies sync at once; the client's shared rate limiter keeps the
whole node under YClients' 5 requests per second and 200 per minute however many run.

Failures never crash the service: YClients and storage errors are recorded per company and
counted (``aiadmin_sync_failures_total``); the poll loop pauses on a storage outage.

**Upcoming visits** (when the node sends reminders: a ``planner``). After a successful catalog
sync the service also reads the salon's visits from today to ``visits_ahead_days`` ahead (the
salon's calendar), ``GET records`` page by page (:data:`VISITS_PAGE` a page, at most
:data:`MAX_VISIT_PAGES` pages), stores each one (``storage.records.apply``: an older change
never overwrites a newer one) and plans its reminders from the record as stored, so a visit
whose webhook was lost is planned within one sync interval. Records we hold that the list no
longer shows are left alone: only YClients' own ``deleted`` flag (or a delete webhook) drops a
visit. A failure of this part leaves the catalog result as it was; it is logged, counted
(``aiadmin_sync_visit_failures_total``) and shown in :attr:`SyncResult.visits_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from metrics import MetricsRegistry
from storage import (
    MAX_ID,
    Company,
    SalonRecord,
    Storage,
    StorageError,
    ValidationError,
    utc_now,
)
from storage import SalonCategory as StoredCategory
from storage import SalonDetails as StoredDetails
from storage import SalonService as StoredService
from storage import SalonStaff as StoredStaff

from .._phones import find_phone
from ..reminders._planner import salon_zone
from ._client import YClientsClient
from ._errors import YClientsAuthError, YClientsError
from ._hours import opening_hours
from ._models import SalonDetails, SalonService, SalonStaff, ServiceCategory
from ._records import record_from_api

if TYPE_CHECKING:
    from ..reminders import ReminderPlanner

log = logging.getLogger("actors.yclients.sync")

#: Statuses whose catalog is kept fresh by the schedule (installed, WhatsApp linked).
SYNC_STATUSES: tuple[str, ...] = ("active", "reconnecting")
#: Records asked for per ``GET records`` page by the visit sync, and pages read at most per
#: salon and sync (a bound on the requests one salon takes from the shared limit).
VISITS_PAGE = 200
MAX_VISIT_PAGES = 25


class SyncUnavailable(Exception):
    """No YClients client is configured on this node (``YCLIENTS_API_KEY`` unset)."""


@dataclass(frozen=True)
class SyncPolicy:
    """When and how much the service syncs (seconds)."""

    interval: float = 3600.0
    retry_failed: float = 300.0
    poll_interval: float = 30.0
    concurrency: int = 20
    batch: int = 100
    storage_pause: float = 5.0
    statuses: tuple[str, ...] = SYNC_STATUSES

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        for name in ("interval", "retry_failed", "poll_interval", "storage_pause"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class SyncResult:
    """One sync attempt: ``ok`` and counts, or the error recorded for it."""

    company_id: int
    ok: bool
    services: int = 0
    staff: int = 0
    error: str | None = None
    categories: int = 0
    #: Upcoming visits read and planned (when the node plans reminders), and why reading or
    #: planning them failed (the catalog result stands either way).
    visits: int = 0
    visits_error: str | None = None


@dataclass(frozen=True)
class SyncStatistics:
    """Counts since the service was made (this process)."""

    succeeded: int
    failed: int
    running: int
    queued: int
    failing_companies: int


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    cleaned = text.replace("\x00", "").strip()
    return cleaned[:limit] or None


def stored_details(details: SalonDetails) -> StoredDetails:
    """The company columns a sync refreshes, fitted to their lengths; the phone in the one
    canonical form (:func:`actors.find_phone`, as registration stores it) or ``None``; the
    schedule text ("" when YClients gives none) with the daily span it names, if any."""
    schedule = _clip(details.schedule, 500) or ""
    span = opening_hours(schedule)
    return StoredDetails(
        title=_clip(details.title, 255),
        phone=find_phone(details.phone),
        address=_clip(details.address, 1000),
        timezone=_clip(details.timezone, 50),
        schedule=schedule,
        opens_at=None if span is None else span[0],
        closes_at=None if span is None else span[1],
    )


MAX_SYNONYMS = 50
MAX_DESCRIPTION = 10_000


def stored_services(services: Sequence[SalonService]) -> list[StoredService]:
    """Catalog rows for the services (first of duplicate ids kept)."""
    rows: dict[int, StoredService] = {}
    for s in services:
        if not 0 < s.id <= MAX_ID or s.id in rows:
            continue
        duration = s.duration_seconds
        words = dict.fromkeys(w for w in (_clip(w, 255) for w in s.synonyms) if w)
        rows[s.id] = StoredService(
            service_id=s.id,
            title=_clip(s.title, 255) or f"#{s.id}",
            category_id=s.category_id if s.category_id and 0 < s.category_id <= MAX_ID else None,
            price_min=None if s.price_min is None else float(s.price_min),
            price_max=None if s.price_max is None else float(s.price_max),
            duration=duration if duration is not None and duration >= 0 else None,
            active=s.active,
            description=_clip(s.comment, MAX_DESCRIPTION),
            staff_ids=tuple(i for i in s.staff_ids if 0 < i <= MAX_ID),
            synonyms=tuple(words)[:MAX_SYNONYMS],
        )
    return list(rows.values())


def stored_categories(categories: Sequence[ServiceCategory]) -> list[StoredCategory]:
    """Catalog rows for the categories (first of duplicate ids kept)."""
    rows: dict[int, StoredCategory] = {}
    for c in categories:
        if not 0 < c.id <= MAX_ID or c.id in rows:
            continue
        rows[c.id] = StoredCategory(category_id=c.id, title=_clip(c.title, 255) or f"#{c.id}")
    return list(rows.values())


def stored_staff(staff: Sequence[SalonStaff]) -> list[StoredStaff]:
    """Catalog rows for the masters (first of duplicate ids kept)."""
    rows: dict[int, StoredStaff] = {}
    for m in staff:
        if m.id <= 0 or m.id in rows:
            continue
        rows[m.id] = StoredStaff(
            staff_id=m.id,
            name=_clip(m.name, 255) or f"#{m.id}",
            specialization=_clip(m.specialization, 255),
            bookable=m.bookable,
            rating=m.rating,
        )
    return list(rows.values())


async def _services_and_categories(
    client: YClientsClient, salon: int
) -> tuple[list[SalonService], list[ServiceCategory] | None]:
    """The salon's services with descriptions and masters, and its categories.

    Whether the partner token alone may read ``company/{id}/services`` for a marketplace salon
    is unverified (the reference): when YClients refuses it (401/403), the public booking list
    (``book_services``: no descriptions, no masters per service) is used instead, and the
    stored categories are left as they are (``None``) when those are refused too.
    """
    try:
        services = await client.get_company_services(salon)
    except YClientsAuthError as exc:
        log.warning("salon %s: company services refused (%s); using book_services", salon, exc)
        services = await client.get_services(salon)
    try:
        categories: list[ServiceCategory] | None = await client.get_service_categories(salon)
    except YClientsAuthError as exc:
        log.warning("salon %s: service categories refused (%s); stored ones kept", salon, exc)
        categories = None
    return services, categories


async def sync_company(storage: Storage, client: YClientsClient, company: Company) -> SyncResult:
    """Fetch the salon's details, services, categories and staff, then store them in one
    transaction.

    Records the attempt (``record_sync``) either way and returns its result; never raises
    for YClients or storage errors (when even recording fails, that is logged).
    Cancellation before the write leaves the previous copy; the write itself is atomic.
    """
    salon = company.yclients_id
    try:
        details = await client.get_company(salon)
        services, categories = await _services_and_categories(client, salon)
        staff = await client.get_staff(salon)
        # Only what clients can book, as book_services lists it: a service switched off is
        # then missing from the copy, and the write marks it inactive.
        service_rows = stored_services([s for s in services if s.active])
        category_rows = None if categories is None else stored_categories(categories)
        staff_rows = stored_staff(staff)
        await storage.catalog.replace_catalog(
            company.id, stored_details(details), service_rows, staff_rows, category_rows
        )
    except (YClientsError, StorageError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("sync of company %s (salon %s) failed: %s", company.id, salon, error)
        try:
            await storage.catalog.record_sync(company.id, ok=False, error=error)
        except StorageError as record_exc:
            log.warning("sync of company %s: cannot record the failure: %s", company.id, record_exc)
        return SyncResult(company.id, ok=False, error=error)
    try:
        await storage.catalog.record_sync(company.id, ok=True)
    except StorageError as exc:
        log.warning("sync of company %s: stored, but cannot record success: %s", company.id, exc)
    log.info(
        "synced company %s (salon %s): %d services, %d categories, %d staff",
        company.id,
        salon,
        len(service_rows),
        len(category_rows or ()),
        len(staff_rows),
    )
    return SyncResult(
        company.id,
        ok=True,
        services=len(service_rows),
        staff=len(staff_rows),
        categories=len(category_rows or ()),
    )


async def sync_visits(
    storage: Storage,
    client: YClientsClient,
    company: Company,
    planner: ReminderPlanner,
    *,
    days: int,
) -> int:
    """Store and plan the salon's visits from today (its calendar) to ``days`` ahead; returns
    how many records YClients listed. Raises ``YClientsError`` / ``StorageError`` (what was
    planned before stays planned)."""
    today = planner.wall_clock().astimezone(salon_zone(company.timezone)).date()
    last = today + timedelta(days=days)
    seen = 0
    for page in range(1, MAX_VISIT_PAGES + 1):
        raws = await client.list_records(
            company.yclients_id, start_date=today, end_date=last, page=page, count=VISITS_PAGE
        )
        records = []
        for raw in raws:
            stored = await _store_visit(storage, company, raw)
            if stored is not None:
                records.append(stored)
        await planner.plan_records(company, records)
        seen += len(raws)
        if len(raws) < VISITS_PAGE:
            return seen
    log.warning(
        "visit sync of company %s: more than %d visits listed; the rest wait for webhooks",
        company.id,
        seen,
    )
    return seen


async def _store_visit(
    storage: Storage, company: Company, raw: dict[str, Any]
) -> SalonRecord | None:
    """The record as stored after applying YClients' copy (ours when it is newer), or
    ``None`` for a record without an id, of another salon, or that storage refuses."""
    salon = raw.get("company_id")
    if isinstance(salon, int) and not isinstance(salon, bool) and salon != company.yclients_id:
        return None
    try:
        record = record_from_api(company.id, raw, timezone=company.timezone)
    except ValueError:
        return None
    try:
        if await storage.records.apply(record):
            return record
    except ValidationError as exc:
        log.warning("visit sync of company %s: record not stored: %s", company.id, exc)
        return None
    return await storage.records.get(company.id, record.record_id)


class CatalogSync:
    """The node's sync service (see the module docstring); ``run`` never returns.

    ``client`` is the node's YClients client, or ``None`` when YClients is not configured
    (then nothing is synced and ``request`` raises :class:`SyncUnavailable`).
    ``wall_clock`` gives "now" for the schedule (aware UTC ``datetime``).
    """

    def __init__(
        self,
        storage: Storage,
        client: YClientsClient | None,
        *,
        policy: SyncPolicy | None = None,
        metrics: MetricsRegistry | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
        on_synced: Callable[[int], None] | None = None,
        planner: ReminderPlanner | None = None,
        visits_ahead_days: int = 8,
    ) -> None:
        #: Told the company id after each successful sync (the assistant rereads its catalog).
        self._on_synced = on_synced
        #: Plans the reminders of upcoming visits after each successful sync, when given.
        self._planner = planner
        if visits_ahead_days < 0:
            raise ValueError("visits_ahead_days must not be negative")
        self._visits_ahead = visits_ahead_days
        self._storage = storage
        self._client = client
        self._policy = policy or SyncPolicy()
        self._wall = wall_clock
        self._limiter = trio.CapacityLimiter(self._policy.concurrency)
        self._requested: dict[int, None] = {}  # ordered set
        self._running: set[int] = set()
        self._last_ok: dict[int, bool] = {}
        self._succeeded = 0
        self._failed = 0
        self._wake = trio.Event()
        registry = metrics or MetricsRegistry()
        self._runs = registry.counter(
            "aiadmin_sync_runs_total", "Salon catalog syncs by result", ("result",)
        )
        self._failures = registry.counter(
            "aiadmin_sync_failures_total", "Salon catalog syncs that failed"
        )
        self._visit_failures = registry.counter(
            "aiadmin_sync_visit_failures_total",
            "Syncs of a salon's upcoming visits (for reminders) that failed",
        )
        registry.gauge(
            "aiadmin_sync_companies_failing",
            "Companies whose last catalog sync (in this process) failed",
            lambda: {(): float(sum(1 for ok in self._last_ok.values() if not ok))},
        )

    def __repr__(self) -> str:
        return (
            f"<CatalogSync running={len(self._running)} queued={len(self._requested)} "
            f"ok={self._succeeded} failed={self._failed}>"
        )

    @property
    def available(self) -> bool:
        """Whether a YClients client is configured (else nothing can be synced)."""
        return self._client is not None

    def failing(self) -> list[int]:
        """Companies whose last sync in this process failed (for the health view)."""
        return sorted(cid for cid, ok in self._last_ok.items() if not ok)

    def statistics(self) -> SyncStatistics:
        return SyncStatistics(
            succeeded=self._succeeded,
            failed=self._failed,
            running=len(self._running),
            queued=len(self._requested),
            failing_companies=sum(1 for ok in self._last_ok.values() if not ok),
        )

    def request(self, company_id: int) -> None:
        """Sync this company as soon as a slot is free (never blocks).

        Raises :class:`SyncUnavailable` when no YClients client is configured.
        """
        if not self.available:
            raise SyncUnavailable("YClients is not configured on this node")
        self._requested[company_id] = None
        self._wake.set()

    async def sync_now(self, company_id: int) -> SyncResult:
        """Sync one company in the caller's task (tools and tests); waits for a slot."""
        client = self._client
        if client is None:
            raise SyncUnavailable("YClients is not configured on this node")
        company = await self._storage.companies.get(company_id)
        if company is None:
            return SyncResult(company_id, ok=False, error="no such company")
        async with self._limiter:
            result = await sync_company(self._storage, client, company)
            if result.ok and self._planner is not None:
                result = await self._sync_visits(client, company, self._planner, result)
        self._count(result)
        return result

    async def _sync_visits(
        self, client: YClientsClient, company: Company, planner: ReminderPlanner, result: SyncResult
    ) -> SyncResult:
        """Read, store and plan the salon's upcoming visits (module docstring); a failure is
        logged, counted and noted in the result, never raised (bar cancellation)."""
        try:
            # read again: the catalog sync may just have changed its zone
            fresh = await self._storage.companies.get(company.id) or company
            visits = await sync_visits(
                self._storage, client, fresh, planner, days=self._visits_ahead
            )
        except (YClientsError, StorageError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("visit sync of company %s failed: %s", company.id, error)
            self._visit_failures.inc(1.0)
            return replace(result, visits_error=error)
        except Exception as exc:  # a bug must not turn the catalog's success into a crash
            log.exception("visit sync of company %s failed", company.id)
            self._visit_failures.inc(1.0)
            return replace(result, visits_error=f"{type(exc).__name__}: {exc}")
        return replace(result, visits=visits)

    def _count(self, result: SyncResult) -> None:
        self._last_ok[result.company_id] = result.ok
        if result.ok:
            self._succeeded += 1
            self._runs.labels("ok").inc()
            if self._on_synced is not None:
                self._on_synced(result.company_id)
        else:
            self._failed += 1
            self._runs.labels("failed").inc()
            self._failures.inc(1.0)

    # -- the loop --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sync what is due or requested until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                pause = self._policy.poll_interval
                due: list[int] = []
                if self._client is not None:
                    try:
                        due = await self._due()
                    except StorageError as exc:
                        log.warning("sync poll failed: %s", exc)
                        pause = self._policy.storage_pause
                requested = [cid for cid in self._requested if cid not in self._running]
                for company_id in dict.fromkeys([*requested, *due]):
                    if company_id in self._running:
                        continue
                    self._requested.pop(company_id, None)
                    self._running.add(company_id)
                    nursery.start_soon(self._sync_guarded, company_id)
                with trio.move_on_after(pause):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _due(self) -> list[int]:
        now = self._wall()
        return await self._storage.catalog.list_sync_due(
            self._policy.statuses,
            succeeded_before=now - timedelta(seconds=self._policy.interval),
            failed_before=now - timedelta(seconds=self._policy.retry_failed),
            limit=self._policy.batch,
        )

    async def _sync_guarded(self, company_id: int) -> None:
        try:
            await self.sync_now(company_id)
        except SyncUnavailable:
            log.warning("sync of company %s skipped: YClients is not configured", company_id)
        except StorageError as exc:
            log.warning("sync of company %s: storage unavailable: %s", company_id, exc)
        finally:
            self._running.discard(company_id)
            if company_id in self._requested:
                self._wake.set()  # asked again while it ran: go again
