"""Carrying out the assistant's queries and actions against YClients.

``decide`` (pure) asks for ``LookupClient``, ``FindSlots``, ``FindVisits``, ``Book``,
``SettleBooking``, ``CancelVisit`` and ``MoveVisit``; :meth:`YClientsOperations.carry_out`
does one of them through the node's YClients client (its shared 5/s, 200/min limit) and
answers with exactly one event of ``_effects``. It never raises for YClients' sake: every
error of the client becomes :class:`ActionFailed` (``UNAVAILABLE`` when YClients did not
answer, ``TAKEN`` when the time is gone, ``REFUSED`` for another no, ``NOT_FOUND`` when the
record is gone), so a failing YClients never crashes a conversation.

Facts are YClients' own: a free time is one ``book_times`` returned, a booking is ``Booked``
only when YClients returned (or, after a lost answer, listed) the record with our ``api_id``.
A booking whose outcome stays unknown is :class:`BookingPending`, settled later by ``api_id``.

Calls are few, because the limit is shared by every salon: free times are cached briefly
(``SlotCache``), masters come from the synced catalog when it knows who does a service, the
following days are found with one ``book_dates`` call rather than a day-by-day walk. The
calls each effect made are counted (``calls``, and the metric
``aiadmin_assistant_yclients_calls_total{effect}``).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from metrics import MetricsRegistry

from .._phones import find_phone
from ..yclients import (
    Appointment,
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
    VisitMoved,
    VisitsFound,
)
from ._slot_cache import SlotCache, SlotKey

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

QueryEffect = LookupClient | FindSlots | FindVisits | Book | SettleBooking | CancelVisit | MoveVisit


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
        self.cache = cache or SlotCache()
        self.calls: collections.Counter[str] = collections.Counter()
        registry = metrics or MetricsRegistry()
        self._calls = registry.counter(
            "aiadmin_assistant_yclients_calls_total",
            "YClients requests the assistant made, by the effect that made them",
            ("effect",),
        )

    def _count(self, effect: str) -> None:
        self.calls[effect] += 1
        self._calls.inc(1.0, effect)

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
        cached = self.cache.get(key)
        if cached is None:
            self._count("slots")
            raw = await self.api.get_book_times(
                party.salon_id, staff_id, day, service_ids=key.service_ids
            )
            zone = party.catalog.salon.zone
            cached = tuple(
                Slot(staff_id, start)
                for item in raw
                if (start := _start(item, day, zone)) is not None
            )
            self.cache.put(key, cached)
        return cached

    async def _day_slots(
        self, party: Party, masters: Sequence[int], day: dt.date, request: FindSlots
    ) -> list[Slot]:
        slots: list[Slot] = []
        for staff_id in masters:
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
                s for s in await self._day_slots(party, masters, day, request) if _fits(s, request)
            )
        wanted_free = request.wanted is None or any(
            s.start.time().replace(tzinfo=None) == request.wanted for s in slots
        )
        nearest: tuple[Slot, ...] = ()
        if (not slots or not wanted_free) and request.search_days > 0:
            after = max([today - dt.timedelta(days=1), *request.dates])
            nearest = await self._nearest(party, masters, after, request)
        return SlotsFound(request, tuple(slots), nearest)

    async def _nearest(
        self, party: Party, masters: Sequence[int], after: dt.date, request: FindSlots
    ) -> tuple[Slot, ...]:
        """Free times on the first days after ``after`` that have any (in the window when
        one was asked; the first free day's times otherwise), found with one ``book_dates``."""
        first = after + dt.timedelta(days=1)
        self._count("slots")
        days = await self.api.get_book_dates(
            party.salon_id,
            service_ids=request.service_ids,
            staff_id=masters[0] if len(masters) == 1 else None,
            date_from=first,
            date_to=after + dt.timedelta(days=request.search_days),
        )
        fallback: list[Slot] = []
        for day in [d for d in days if d >= first][:NEAREST_DAYS_PROBED]:
            free = await self._day_slots(party, masters, day, request)
            fitting = [s for s in free if _fits(s, request)]
            if fitting:
                return tuple(fitting)
            if not fallback:
                fallback = free
        return tuple(fallback)

    # -- booking ----------------------------------------------------------------------------

    async def _book(self, effect: Book, party: Party) -> Event:
        appointment = Appointment(effect.service_ids, effect.staff_id, effect.start)
        try:
            self._count("book")
            await self.api.book_check(party.salon_id, [appointment])
        except YClientsRejected as exc:
            return await self._refused(
                "book", exc, party, effect.staff_id, effect.start, effect.service_ids
            )
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
            return await self._refused(
                "book", exc, party, effect.staff_id, effect.start, effect.service_ids
            )
        except (YClientsUnavailable, YClientsRateLimited):
            # The client already looked for our api_id after each lost answer; the record
            # may still appear (YClients slow): one more look, then settle later.
            return await self._settle(
                SettleBooking(effect.api_id, effect.start), party, effect.start
            )
        finally:
            self.cache.invalidate(party.salon_id, staff_id=effect.staff_id, day=effect.start.date())
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
        self,
        action: str,
        exc: YClientsRejected,
        party: Party,
        staff_id: int,
        start: dt.datetime,
        service_ids: tuple[int, ...],
    ) -> Event:
        """A no from YClients: ``TAKEN`` with free times near the asked one when the time is
        gone, ``NOT_FOUND`` for a record that is gone, ``REFUSED`` otherwise."""
        if exc.status == 404:
            return ActionFailed(action, FailureKind.NOT_FOUND)
        if not TAKEN_CODES.intersection(exc.codes):
            return ActionFailed(action, FailureKind.REFUSED)
        self.cache.invalidate(party.salon_id, staff_id=staff_id)
        near = await self._alternatives(party, staff_id, start, service_ids)
        return ActionFailed(action, FailureKind.TAKEN, near)

    async def _alternatives(
        self, party: Party, staff_id: int, start: dt.datetime, service_ids: tuple[int, ...]
    ) -> tuple[Slot, ...]:
        """The master's free times that day nearest to ``start`` (in time order)."""
        zone = party.catalog.salon.zone
        local = start.astimezone(zone)
        try:
            free = await self._times(party, staff_id, local.date(), service_ids)
        except YClientsError:
            return ()
        nearest = sorted(free, key=lambda s: abs((s.start - local).total_seconds()))
        return tuple(sorted(nearest[:ALTERNATIVES], key=lambda s: s.start))

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
            return await self._refused(
                "move", exc, party, effect.staff_id, start, effect.service_ids
            )
        finally:
            self.cache.invalidate(party.salon_id)
        when = _record_start(moved, zone) if moved else None
        staff_id = _int(moved.get("staff_id")) if moved else None
        return VisitMoved(effect.record_id, staff_id or effect.staff_id, when or start)


_ACTION: dict[type, str] = {
    LookupClient: "lookup",
    FindSlots: "slots",
    FindVisits: "visits",
    Book: "book",
    SettleBooking: "settle",
    CancelVisit: "cancel",
    MoveVisit: "move",
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
