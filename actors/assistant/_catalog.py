"""What the assistant knows of one salon: its card, services, categories and masters.

A frozen view built from the synced catalog (``storage``) and the company row; the pure parts
(understanding, ``decide``, templates) read only this, never storage or YClients. Every fact a
reply states (a price, a description, an address, a master's name) comes from here or from a
YClients answer, never from our own text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["AssistantCatalog", "Category", "Master", "SalonCard", "Service"]

DEFAULT_ZONE = "Europe/Moscow"


@dataclass(frozen=True)
class SalonCard:
    """The salon card: how clients find and reach the salon, and the zone it lives in.

    ``company_id`` is ours; ``salon_id`` is YClients' id (the same number for companies
    registered from YClients). ``opening`` is ``(open, close)`` local time when known: it
    settles 12-hour ambiguity ("на 3" = 15:00) and bounds time windows ("вечером").
    """

    company_id: int
    salon_id: int
    title: str
    address: str = ""
    phone: str = ""
    timezone: str = DEFAULT_ZONE
    opening: tuple[dt.time, dt.time] | None = None
    schedule: str = ""  # the salon's own words for its hours, e.g. "Ежедневно 10:00–21:00"

    @property
    def zone(self) -> ZoneInfo:
        """The salon's time zone (Moscow when the stored name is unknown)."""
        try:
            return ZoneInfo(self.timezone or DEFAULT_ZONE)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class Category:
    """A service category ("Ногтевой сервис")."""

    id: int
    title: str


@dataclass(frozen=True)
class Service:
    """A bookable service as YClients describes it.

    Prices are RUB (``price_min == price_max`` for a fixed price, ``None`` when unknown);
    ``minutes`` is the duration; ``staff_ids`` the masters who do it (empty: unknown, ask
    YClients); ``synonyms`` the salon's own words for it ("шеллак").
    """

    id: int
    title: str
    category_id: int | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    minutes: int | None = None
    description: str = ""
    staff_ids: tuple[int, ...] = ()
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Master:
    """A master who can be booked (``name`` as YClients has it: "Екатерина", "Игорь Петров")."""

    id: int
    name: str
    specialization: str = ""


@dataclass(frozen=True)
class AssistantCatalog:
    """One salon's catalog: only active services and bookable masters."""

    salon: SalonCard
    services: tuple[Service, ...] = ()
    masters: tuple[Master, ...] = ()
    categories: tuple[Category, ...] = ()

    @cached_property
    def _services_by_id(self) -> dict[int, Service]:
        return {s.id: s for s in self.services}

    @cached_property
    def _masters_by_id(self) -> dict[int, Master]:
        return {m.id: m for m in self.masters}

    def service(self, service_id: int) -> Service | None:
        """The service with this id, if the salon offers it."""
        return self._services_by_id.get(service_id)

    def master(self, staff_id: int) -> Master | None:
        """The master with this id, if bookable."""
        return self._masters_by_id.get(staff_id)

    def category(self, category_id: int | None) -> Category | None:
        """The category with this id."""
        return next((c for c in self.categories if c.id == category_id), None)

    def in_category(self, category_id: int) -> tuple[Service, ...]:
        """The services of one category, in catalog order."""
        return tuple(s for s in self.services if s.category_id == category_id)

    def masters_for(self, service_ids: tuple[int, ...]) -> tuple[Master, ...]:
        """Masters who do every one of these services (all masters when the catalog does not
        say who does a service)."""
        chosen = [self.service(i) for i in service_ids]
        known = [s for s in chosen if s is not None and s.staff_ids]
        if not known:
            return self.masters
        allowed = set.intersection(*(set(s.staff_ids) for s in known))
        return tuple(m for m in self.masters if m.id in allowed)
