"""Carrying out the assistant's queries and actions against YClients.

``decide`` (pure) asks for ``LookupClient``, ``FindSlots``, ``FindVisits``, ``Book``,
``SettleBooking``, ``CancelVisit``, ``MoveVisit`` and ``ConfirmVisit`` (a reminded visit
confirmed: ``PUT visits`` with attendance 2); :meth:`YClientsOperations.carry_out`
does one of them through the node's YClients client (its shared 5/s, 200/min limit) and
answers with exactly one event of ``_effects``. It never raises for YClients' sake: every
error of the client becomes :class:`ActionFailed` (``UNAVAILABLE`` when YClients did not
answer, ``TAKEN`` when the time is gone, ``REFUSED`` for another no, ``NOT_FOUND`` when the
record is gone), so a failing YClients never crashes a conversation.

Facts are YClients' own: a free time is one ``book_times`` returned, a booking is ``Booked``
only when YClients returned (or, after a lost answer, listed) the record with our ``api_id``.
A booking whose outcome stays unknown is :class:`BookingPending`, settled later by ``api_id``.

Calls are few, because the limit is shared by every salon (the figure watched is requests
per completed booking: 4 for a lone client — the lookup, one ``book_times`` per master who
may work that day, ``book_check``, ``book_record``):

- free times are cached briefly (``SlotCache``), and clients asking the same question at once
  share one request (a change meanwhile is not cached: see ``SlotCache.begin``);
- masters come from the synced catalog when it knows who does a service;
- the following days are found with one ``book_dates`` call rather than a day-by-day walk;
  for one master it covers the whole search window and is kept, so a later question skips
  the days that master has no free time (a booking keeps these lists: it only takes time);
- who works on a day is not asked for on its own: one ``book_dates`` per master (or one
  ``book_staff`` with ``datetime``, which the fake YClients does not filter by) cost as much
  as the ``book_times`` of the master who is off, and measured over the dialogues they only
  added requests (``tests/actors/assistant/test_calls_per_booking.py``, BENCHMARKS.md);
- a master's bookings on this node are checked and made one at a time, so when two of our
  clients say "да" to the same time the second's ``book_check`` says it is taken (one
  request) rather than passing and its ``book_record`` being refused (two);
- when a time is taken and the client named no master, the alternatives come from every
  master who does the services, the same time with another master first.

The calls each effect made are counted (``calls``, and the metric
``aiadmin_assistant_yclients_calls_total{effect}``).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from metrics import MetricsRegistry

from .._phones import find_phone
from ..yclients import (
    Appointment,
    Attendance,
    BookedRecord,
    SalonStaff,
    YClientsError,
    YClientsRateLimited,
    YClientsRejected,
    YClientsUnavailable,
)
from ._catalog import AssistantCatalog
from ._effects import (
    ActionFailed,
    Book,
    Booked,
    BookingPending,
    CancelVisit,
    ClientFound,
    ConfirmVisit,
    Event,
    FailureKind,
    FindSlots,
    FindVisits,
    LookupClient,
    MoveVisit,
    SettleBooking,
    Slot,
    SlotsFound,
    Visit,
    VisitCancelled,
    VisitConfirmed,
    VisitMoved,
    VisitsFound,
)
from ._slot_cache import CacheKey, DaysKey, SlotCache, SlotKey, Ticket

__all__ = [
    "QUERY_EFFECTS",
    "BookingApi",
    "Party",
    "QueryEffect",
    "YClientsOperations",
    "unanswered",
]

log = logging.getLogger(__name__)

#: YClients' codes for "that time cannot be booked": taken or not working (433), no master
#: free (436), overlapping visits in one request (437).
TAKEN_CODES = frozenset({433, 436, 437})
#: Days with free time probed after the asked ones, at most, to find the nearest free times.
NEAREST_DAYS_PROBED = 3
#: Free times offered in place of a taken one, at most.
ALTERNATIVES = 6
#: Without a day to look on, a settle by ``api_id`` searches this many days from today.
SETTLE_HORIZON_DAYS = 60
#: Records of one client read per visit lookup (upcoming visits are few).
VISITS_PAGE = 50

QueryEffect = (
    LookupClient
    | FindSlots
    | FindVisits
    | Book
    | SettleBooking
    | CancelVisit
    | MoveVisit
    | ConfirmVisit
)


class BookingApi(Protocol):
    """What the operations use of :class:`actors.yclients.YClientsClient` (tests may pass
    anything with these methods)."""

    async def search_clients(
        self, company_id: int, query: str, *, page: int = 1, page_size: int = 50
    ) -> list[dict[str, Any]]: ...

    async def get_staff(
        self, company_id: int, *, service_ids: Iterable[int] = (), at: dt.datetime | None = None
    ) -> list[SalonStaff]: ...

    async def get_book_dates(
        self,
        company_id: int,
        *,
        service_ids: Iterable[int] = (),
        staff_id: int | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> list[dt.date]: ...

    async def get_book_times(
        self, company_id: int, staff_id: int, day: dt.date, *, service_ids: Iterable[int] = ()
    ) -> list[dict[str, Any]]: ...

    async def book_check(self, company_id: int, appointments: Sequence[Appointment]) -> None: ...

    async def book_record(
        self,
        company_id: int,
        *,
        phone: str,
        fullname: str,
        appointments: Sequence[Appointment],
        api_id: str,
        email: str | None = None,
        comment: str | None = None,
    ) -> list[BookedRecord]: ...

    async def find_records_by_api_id(
        self, company_id: int, api_id: str, *, start_date: dt.date, end_date: dt.date
    ) -> list[dict[str, Any]]: ...

    async def list_records(
        self,
        company_id: int,
        *,
        client_id: int | None = None,
        start_date: dt.date | None = None,
        end_date: dt.date | None = None,
        changed_after: dt.datetime | None = None,
        page: int = 1,
        count: int = 50,
    ) -> list[dict[str, Any]]: ...

    async def get_record(self, company_id: int, record_id: int) -> dict[str, Any]: ...

    async def delete_record(self, company_id: int, record_id: int) -> None: ...

    async def move_record(
        self, company_id: int, record_id: int, when: dt.datetime, *, comment: str | None = None
    ) -> dict[str, Any]: ...

    async def set_visit_attendance(
        self,
        visit_id: int,
        record_id: int,
        attendance: Attendance,
        *,
        comment: str | None = None,
    ) -> dict[str, Any]: ...


@dataclass(eq=False)
class _Flight:
    """One fetch in flight, shared by the concurrent askers of the same question."""

    ticket: Ticket
    done: trio.Event = field(default_factory=trio.Event)
    answer: tuple[Any, ...] | None = None
    error: YClientsError | None = None


@dataclass(frozen=True)
class Party:
    """Who the effect is for: the salon (its catalog: YClients id, zone, who does what), the
    client's phone (canonical digits) and, once known, their YClients client id."""

    catalog: AssistantCatalog
    phone: str
    client_id: int | None = None

    @property
    def salon_id(self) -> int:
        return self.catalog.salon.salon_id


class YClientsOperations:
    """Carries out query and action effects (see the module docstring). One per node."""

    def __init__(
        self,
        api: BookingApi,
        cache: SlotCache | None = None,
        *,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.api = api
        # not "cache or ...": an empty cache is falsy (it has a length)
        self.cache = cache if cache is not None else SlotCache()
        self.calls: collections.Counter[str] = collections.Counter()
        self._flights: dict[CacheKey, _Flight] = {}
        self._locks: dict[tuple[int, int], trio.Lock] = {}
        registry = metrics or MetricsRegistry()
        self._calls = registry.counter(
            "aiadmin_assistant_yclients_calls_total",
            "YClients requests the assistant made, by the effect that made them",
            ("effect",),
        )

    def _count(self, effect: str) -> None:
        self.calls[effect] += 1
        self._calls.labels(effect).inc()

    async def read_record(self, salon_id: int, record_id: int) -> dict[str, Any]:
        """One record as YClients holds it now (after our own booking or move, for its
        reminders); counted as the effect ``record``. Raises ``YClientsError``."""
        self._count("record")
        return await self.api.get_record(salon_id, record_id)

    def record_changed(self, salon_id: int) -> None:
        """A record of the salon changed in YClients (a webhook): forget its free times."""
        self.cache.invalidate(salon_id)

    async def carry_out(self, effect: QueryEffect, party: Party, now: dt.datetime) -> Event:
        """The one outcome event of ``effect``; ``now`` is aware (any zone). Never raises a
        YClients error."""
        try:
            match effect:
                case LookupClient():
                    return await self._lookup_client(party)
                case FindSlots():
                    return await self._find_slots(effect, party, now)
                case FindVisits():
                    return await self._find_visits(party, now)
                case Book():
                    return await self._book(effect, party)
                case SettleBooking():
                    return await self._settle(effect, party, now)
                case CancelVisit():
                    return await self._cancel(effect, party)
                case MoveVisit():
                    return await self._move(effect, party)
                case ConfirmVisit():
                    return await self._confirm(effect)
        except YClientsError as exc:
            log.warning(
                "salon %s: %s failed: %s", party.salon_id, type(effect).__name__, type(exc).__name__
            )
            return ActionFailed(_ACTION[type(effect)], _failure(exc))
        raise TypeError(f"not a query or action effect: {effect!r}")

    # -- the client -------------------------------------------------------------------------

    async def find_client(self, party: Party) -> tuple[int, str] | None:
        """``(client_id, name)`` of the salon's client with this phone, if any."""
        self._count("lookup")
        found = await self.api.search_clients(party.salon_id, party.phone, page_size=20)
        for client in found:
            phone = client.get("phone")
            if isinstance(phone, str | int) and find_phone(str(phone)) == party.phone:
                client_id = _int(client.get("id"))
                if client_id is not None:
                    name = client.get("name")
                    return client_id, name.strip() if isinstance(name, str) else ""
        return None

    async def _lookup_client(self, party: Party) -> Event:
        found = await self.find_client(party)
        if found is None:
            return ClientFound(None)
        client_id, name = found
        return ClientFound(name or None, client_id)

    # -- free times -------------------------------------------------------------------------

    async def _shared(
        self, key: CacheKey, fetch: Callable[[], Awaitable[tuple[Any, ...]]]
    ) -> tuple[Any, ...]:
        """The cached answer to ``key``, else one fetch shared by every concurrent asker of
        the same question (a fetch an invalidation made stale is not joined, nor cached).
        A YClients error of the fetch is every waiter's; a cancelled fetch is asked again."""
        while True:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
            flight = self._flights.get(key)
            if flight is None or flight.ticket.stale:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.answer is not None:
                return flight.answer
        flight = _Flight(self.cache.begin(key))
        self._flights[key] = flight
        try:
            answer = await fetch()
            flight.answer = answer
            self.cache.put(key, answer, ticket=flight.ticket)
            return answer
        except YClientsError as exc:
            flight.error = exc
            raise
        finally:
            if flight.answer is None:
                self.cache.end(flight.ticket)
            flight.done.set()
            if self._flights.get(key) is flight:
                del self._flights[key]

    async def _masters(self, party: Party, service_ids: tuple[int, ...]) -> tuple[int, ...]:
        """Who can do all the services: the catalog's answer, or YClients' when the catalog
        does not say who does them."""
        services = [party.catalog.service(i) for i in service_ids]
        if service_ids and all(s is not None and s.staff_ids for s in services):
            return tuple(m.id for m in party.catalog.masters_for(service_ids))
        self._count("slots")
        staff = await self.api.get_staff(party.salon_id, service_ids=service_ids)
        return tuple(s.id for s in staff if s.bookable)

    async def _times(
        self, party: Party, staff_id: int, day: dt.date, services: tuple[int, ...]
    ) -> tuple[Slot, ...]:
        """A master's free starts on a day (cached briefly), as aware salon-zone slots."""
        key = SlotKey.of(party.salon_id, staff_id, day, services)

        async def fetch() -> tuple[Slot, ...]:
            self._count("slots")
            raw = await self.api.get_book_times(
                party.salon_id, staff_id, day, service_ids=key.service_ids
            )
            zone = party.catalog.salon.zone
            return tuple(
                Slot(staff_id, start)
                for item in raw
                if (start := _start(item, day, zone)) is not None
            )

        return await self._shared(key, fetch)

    async def _free_days(
        self, party: Party, staff_id: int, services: tuple[int, ...], first: dt.date, last: dt.date
    ) -> tuple[dt.date, ...]:
        """The days from ``first`` to ``last`` on which the master has free time (one
        ``book_dates``, cached like the free times)."""
        key = DaysKey.of(party.salon_id, staff_id, services, first, last)

        async def fetch() -> tuple[dt.date, ...]:
            self._count("slots")
            days = await self.api.get_book_dates(
                party.salon_id,
                service_ids=key.service_ids,
                staff_id=staff_id,
                date_from=first,
                date_to=last,
            )
            return tuple(sorted({d for d in days if first <= d <= last}))

        return tuple(await self._shared(key, fetch))

    def _window(self, request: FindSlots, today: dt.date) -> tuple[dt.date, dt.date]:
        """The days a master's days list covers: the days a client may ask for and the
        nearest free days after them, so one ``book_dates`` answers both."""
        return today, today + dt.timedelta(days=2 * max(request.search_days, 0))

    def _may_work(
        self,
        party: Party,
        masters: Sequence[int],
        day: dt.date,
        request: FindSlots,
        today: dt.date,
    ) -> list[int]:
        """``masters`` less those whose days list (cached: fetched for a nearest-days search)
        says they have no free time on ``day``. No list is fetched for this alone: one
        ``book_dates`` per master costs as much as the ``book_times`` it could save (see the
        module docstring)."""
        first, last = self._window(request, today)
        if not first <= day <= last:
            return list(masters)
        out = []
        for m in masters:
            known = self.cache.get(DaysKey.of(party.salon_id, m, request.service_ids, first, last))
            if known is None or day in known:
                out.append(m)
        return out

    async def _day_slots(
        self,
        party: Party,
        masters: Sequence[int],
        day: dt.date,
        request: FindSlots,
        today: dt.date,
    ) -> list[Slot]:
        slots: list[Slot] = []
        for staff_id in self._may_work(party, masters, day, request, today):
            slots.extend(await self._times(party, staff_id, day, request.service_ids))
        return sorted(slots, key=lambda s: (s.start, masters.index(s.staff_id)))

    async def _find_slots(self, request: FindSlots, party: Party, now: dt.datetime) -> Event:
        zone = party.catalog.salon.zone
        today = now.astimezone(zone).date()
        masters = request.staff_ids or await self._masters(party, request.service_ids)
        if not masters:
            return SlotsFound(request, ())
        slots: list[Slot] = []
        for day in sorted(set(request.dates)):
            if day < today:
                continue
            slots.extend(
                s
                for s in await self._day_slots(party, masters, day, request, today)
                if _fits(s, request)
            )
        wanted_free = request.wanted is None or any(
            s.start.time().replace(tzinfo=None) == request.wanted for s in slots
        )
        nearest: tuple[Slot, ...] = ()
        if (not slots or not wanted_free) and request.search_days > 0:
            after = max([today - dt.timedelta(days=1), *request.dates])
            nearest = await self._nearest(party, masters, after, request, today)
        return SlotsFound(request, tuple(slots), nearest)

    async def _next_days(
        self,
        party: Party,
        masters: Sequence[int],
        after: dt.date,
        request: FindSlots,
        today: dt.date,
    ) -> list[dt.date]:
        """The days after ``after`` (within the search) with free time for any of the
        masters: from their days lists when known (one ``book_dates`` for one master, cached
        for the whole window so later questions reuse it), else one ``book_dates`` for all."""
        first, last = self._window(request, today)
        until = after + dt.timedelta(days=request.search_days)
        if until <= last:
            lists = [
                self.cache.get(DaysKey.of(party.salon_id, m, request.service_ids, first, last))
                for m in masters
            ]
            if len(masters) == 1 and lists[0] is None:
                lists = [await self._free_days(party, masters[0], request.service_ids, first, last)]
            if all(days is not None for days in lists):
                return sorted({d for days in lists if days for d in days if after < d <= until})
        self._count("slots")
        found = await self.api.get_book_dates(
            party.salon_id,
            service_ids=request.service_ids,
            staff_id=masters[0] if len(masters) == 1 else None,
            date_from=after + dt.timedelta(days=1),
            date_to=until,
        )
        return sorted({d for d in found if after < d <= until})

    async def _nearest(
        self,
        party: Party,
        masters: Sequence[int],
        after: dt.date,
        request: FindSlots,
        today: dt.date,
    ) -> tuple[Slot, ...]:
        """Free times on the first days after ``after`` that have any (in the window when
        one was asked; the first free day's times otherwise)."""
        fallback: list[Slot] = []
        days = await self._next_days(party, masters, after, request, today)
        for day in days[:NEAREST_DAYS_PROBED]:
            free = await self._day_slots(party, masters, day, request, today)
            fitting = [s for s in free if _fits(s, request)]
            if fitting:
                return tuple(fitting)
            if not fallback:
                fallback = free
        return tuple(fallback)

    # -- booking ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _booking(self, salon_id: int, staff_id: int) -> AsyncIterator[None]:
        """One booking of a master at a time on this node: a client who said "да" to a time
        another client of ours is booking right now has it checked after that booking, so the
        check says it is taken (one call) instead of passing and the record failing (two)."""
        key = (salon_id, staff_id)
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            idle = not lock.locked() and lock.statistics().tasks_waiting == 0
            if idle and self._locks.get(key) is lock:
                del self._locks[key]

    async def _book(self, effect: Book, party: Party) -> Event:
        async with self._booking(party.salon_id, effect.staff_id):
            outcome = await self._check_and_record(effect, party)
        if isinstance(outcome, YClientsRejected):
            return await self._refused("book", outcome, party, effect)
        return outcome

    async def _check_and_record(self, effect: Book, party: Party) -> Event | YClientsRejected:
        """``book_check`` then ``book_record``: the outcome, or YClients' no."""
        appointment = Appointment(effect.service_ids, effect.staff_id, effect.start)
        try:
            self._count("book")
            await self.api.book_check(party.salon_id, [appointment])
        except YClientsRejected as exc:
            return exc
        try:
            self._count("book")
            records = await self.api.book_record(
                party.salon_id,
                phone=party.phone,
                fullname=effect.client_name,
                appointments=[appointment],
                api_id=effect.api_id,
            )
        except YClientsRejected as exc:
            return exc
        except (YClientsUnavailable, YClientsRateLimited):
            # The client already looked for our api_id after each lost answer; the record
            # may still appear (YClients slow): one more look, then settle later.
            return await self._settle(
                SettleBooking(effect.api_id, effect.start), party, effect.start
            )
        finally:
            # a booking only takes time away: the master's days lists stay a safe superset
            self.cache.invalidate(
                party.salon_id,
                staff_id=effect.staff_id,
                day=effect.start.astimezone(party.catalog.salon.zone).date(),
                times_only=True,
            )
        if not records:
            return BookingPending(effect.api_id)
        return Booked(effect.api_id, records[0].record_id, effect.staff_id, effect.start)

    async def _settle(self, effect: SettleBooking, party: Party, now: dt.datetime) -> Event:
        zone = party.catalog.salon.zone
        if effect.start is not None:
            first = last = effect.start.astimezone(zone).date()
        else:
            first = now.astimezone(zone).date()
            last = first + dt.timedelta(days=SETTLE_HORIZON_DAYS)
        try:
            self._count("settle")
            found = await self.api.find_records_by_api_id(
                party.salon_id, effect.api_id, start_date=first, end_date=last
            )
        except (YClientsUnavailable, YClientsRateLimited):
            return BookingPending(effect.api_id)
        for record in found:
            record_id = _int(record.get("id"))
            start = _record_start(record, zone)
            staff_id = _int(record.get("staff_id"))
            if record_id is not None and start is not None and staff_id is not None:
                return Booked(effect.api_id, record_id, staff_id, start)
        return ActionFailed("settle", FailureKind.NOT_FOUND)

    async def _refused(
        self, action: str, exc: YClientsRejected, party: Party, effect: Book | MoveVisit
    ) -> Event:
        """A no from YClients: ``TAKEN`` with free times near the asked one when the time is
        gone, ``NOT_FOUND`` for a record that is gone, ``REFUSED`` otherwise."""
        if exc.status == 404:
            return ActionFailed(action, FailureKind.NOT_FOUND)
        if not TAKEN_CODES.intersection(exc.codes):
            return ActionFailed(action, FailureKind.REFUSED)
        local = effect.start.astimezone(party.catalog.salon.zone)
        # someone took the time: what we knew of that master's day is out of date
        self.cache.invalidate(
            party.salon_id, staff_id=effect.staff_id, day=local.date(), times_only=True
        )
        masters: tuple[int, ...] = (effect.staff_id,)
        if isinstance(effect, Book) and effect.any_master:
            try:
                able = await self._masters(party, effect.service_ids)
            except YClientsError:
                able = ()
            masters += tuple(m for m in able if m != effect.staff_id)
        near = await self._alternatives(party, masters, local, effect.service_ids)
        return ActionFailed(action, FailureKind.TAKEN, near)

    async def _alternatives(
        self,
        party: Party,
        masters: tuple[int, ...],
        start: dt.datetime,
        service_ids: tuple[int, ...],
    ) -> tuple[Slot, ...]:
        """Free times that day nearest to ``start`` with ``masters`` (the one tried first):
        the same time with another master first, then the nearest other times (one per
        start, at most ``ALTERNATIVES``) in time order."""
        free: list[Slot] = []
        for staff_id in masters:
            try:
                free.extend(await self._times(party, staff_id, start.date(), service_ids))
            except YClientsError:
                continue
        same = [s for s in free if s.start == start]
        by_start: dict[dt.datetime, Slot] = {}
        for slot in sorted(free, key=lambda s: masters.index(s.staff_id)):
            if slot.start != start:
                by_start.setdefault(slot.start, slot)
        nearest = sorted(by_start.values(), key=lambda s: abs((s.start - start).total_seconds()))
        return (*same, *sorted(nearest[:ALTERNATIVES], key=lambda s: s.start))

    # -- visits -----------------------------------------------------------------------------

    async def _find_visits(self, party: Party, now: dt.datetime) -> Event:
        client_id = party.client_id
        if client_id is None:
            found = await self.find_client(party)
            if found is None:
                return VisitsFound(())
            client_id = found[0]
        zone = party.catalog.salon.zone
        today = now.astimezone(zone).date()
        self._count("visits")
        records = await self.api.list_records(
            party.salon_id, client_id=client_id, start_date=today, count=VISITS_PAGE
        )
        visits: list[Visit] = []
        for record in records:
            visit = _visit(record, party, zone)
            if visit is not None and visit.start > now:
                visits.append(visit)
        visits.sort(key=lambda v: (v.start, v.record_id))
        return VisitsFound(tuple(visits))

    async def _cancel(self, effect: CancelVisit, party: Party) -> Event:
        try:
            self._count("cancel")
            await self.api.delete_record(party.salon_id, effect.record_id)
        except YClientsRejected as exc:
            if exc.status == 404:
                return ActionFailed("cancel", FailureKind.NOT_FOUND)
            return ActionFailed("cancel", FailureKind.REFUSED)
        except YClientsUnavailable as exc:
            if not exc.outcome_unknown:
                raise
            # The answer was lost: read the record to know whether it went.
            self._count("cancel")
            record = await self.api.get_record(party.salon_id, effect.record_id)
            if not record.get("deleted"):
                raise
        finally:
            self.cache.invalidate(party.salon_id)
        return VisitCancelled(effect.record_id)

    async def _move(self, effect: MoveVisit, party: Party) -> Event:
        zone = party.catalog.salon.zone
        start = effect.start.astimezone(zone)
        self.cache.invalidate(party.salon_id, staff_id=effect.staff_id, day=start.date())
        free = await self._times(party, effect.staff_id, start.date(), effect.service_ids)
        if not any(s.start == start for s in free):
            # The visit's own time hides free minutes from book_times: when the new time
            # overlaps it, YClients' own check on the PUT decides.
            self._count("move")
            record = await self.api.get_record(party.salon_id, effect.record_id)
            if record.get("deleted"):
                return ActionFailed("move", FailureKind.NOT_FOUND)
            if not _overlaps_itself(record, start, zone):
                return ActionFailed("move", FailureKind.TAKEN, _near(free, start))
        try:
            self._count("move")
            moved = await self.api.move_record(party.salon_id, effect.record_id, start)
        except YClientsRejected as exc:
            return await self._refused("move", exc, party, effect)
        finally:
            self.cache.invalidate(party.salon_id)
        when = _record_start(moved, zone) if moved else None
        staff_id = _int(moved.get("staff_id")) if moved else None
        return VisitMoved(effect.record_id, staff_id or effect.staff_id, when or start)

    async def _confirm(self, effect: ConfirmVisit) -> Event:
        """Attendance 2 on the visit; a 404 (no such visit or record) is ``NOT_FOUND``."""
        self._count("confirm")
        await self.api.set_visit_attendance(effect.visit_id, effect.record_id, Attendance.CONFIRMED)
        return VisitConfirmed(effect.record_id)


_ACTION: dict[type, str] = {
    LookupClient: "lookup",
    FindSlots: "slots",
    FindVisits: "visits",
    Book: "book",
    SettleBooking: "settle",
    CancelVisit: "cancel",
    MoveVisit: "move",
    ConfirmVisit: "confirm",
}


#: The effects :meth:`YClientsOperations.carry_out` answers (for ``isinstance``).
QUERY_EFFECTS = tuple(_ACTION)


def unanswered(effect: QueryEffect) -> ActionFailed:
    """The outcome of an effect no YClients could be asked about (none is configured)."""
    return ActionFailed(_ACTION[type(effect)], FailureKind.UNAVAILABLE)


def _failure(exc: YClientsError) -> FailureKind:
    if isinstance(exc, YClientsRejected):
        return FailureKind.NOT_FOUND if exc.status == 404 else FailureKind.REFUSED
    return FailureKind.UNAVAILABLE


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _aware(text: Any, zone: dt.tzinfo) -> dt.datetime | None:
    """An aware salon-zone time from YClients' text (naive text is the salon's local time)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=zone)
    return when.astimezone(zone)


def _start(item: dict[str, Any], day: dt.date, zone: dt.tzinfo) -> dt.datetime | None:
    """The start of one ``book_times`` item: its ``datetime``, else ``time`` on ``day``."""
    when = _aware(item.get("datetime"), zone)
    if when is not None:
        return when
    raw = item.get("time")
    if isinstance(raw, str):
        try:
            clock = dt.time.fromisoformat(raw.strip())
        except ValueError:
            return None
        return dt.datetime.combine(day, clock, tzinfo=zone)
    return None


def _record_start(record: dict[str, Any], zone: dt.tzinfo) -> dt.datetime | None:
    return _aware(record.get("datetime"), zone) or _aware(record.get("date"), zone)


def _fits(slot: Slot, request: FindSlots) -> bool:
    if request.window is None:
        return True
    start = slot.start.time().replace(tzinfo=None)
    low, high = request.window
    return low <= start < high if low < high else start >= low


def _near(free: Iterable[Slot], start: dt.datetime) -> tuple[Slot, ...]:
    nearest = sorted(free, key=lambda s: abs((s.start - start).total_seconds()))
    return tuple(sorted(nearest[:ALTERNATIVES], key=lambda s: s.start))


def _overlaps_itself(record: dict[str, Any], start: dt.datetime, zone: dt.tzinfo) -> bool:
    """Whether the new start falls inside the visit's current span (or the span it would
    take starts inside it): then the visit itself hides that time from ``book_times``."""
    current = _record_start(record, zone)
    length = _int(record.get("seance_length")) or _int(record.get("length")) or 0
    if current is None or length <= 0:
        return False
    span = dt.timedelta(seconds=length)
    return current - span < start < current + span


def _visit(record: dict[str, Any], party: Party, zone: dt.tzinfo) -> Visit | None:
    """A record as the client's visit, or ``None`` when it is deleted, unreadable or (the
    list has been seen to leak them) another client's."""
    if record.get("deleted"):
        return None
    client = record.get("client")
    if isinstance(client, dict):
        phone = client.get("phone")
        if isinstance(phone, str | int) and find_phone(str(phone)) not in (None, party.phone):
            return None
        if party.client_id is not None and _int(client.get("id")) not in (None, party.client_id):
            return None
    record_id = _int(record.get("id"))
    start = _record_start(record, zone)
    if record_id is None or start is None:
        return None
    services = [s for s in record.get("services") or [] if isinstance(s, dict)]
    ids = tuple(i for s in services if (i := _int(s.get("id"))) is not None)
    titles = tuple(str(s.get("title") or "") for s in services)
    length = _int(record.get("seance_length")) or _int(record.get("length"))
    return Visit(
        record_id=record_id,
        start=start,
        staff_id=_int(record.get("staff_id")),
        service_ids=ids,
        service_titles=titles,
        minutes=length // 60 if length else None,
    )
