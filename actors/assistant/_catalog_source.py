"""Where the assistant's view of a salon comes from: the synced catalog plus the company row.

:func:`assistant_catalog` is the pure mapping (storage rows → :class:`AssistantCatalog`):
active services (prices in RUB, duration in minutes, description, the masters who do them,
the salon's synonyms), bookable active masters, active categories, and the salon card from
the company row (title, address, phone, zone, opening hours).

:class:`CatalogSource` keeps each company's catalog rows for a short while (``ttl``), so a
turn does not read the whole catalog from the database; the card is rebuilt from the company
row the caller passes (read fresh every turn, so an address or a switched-off assistant
applies at once). :meth:`CatalogSource.invalidate` drops a company's copy when a sync
completes or the salon changes its own words for its services (``storage.synonyms``, merged
over the synced ones by :func:`storage.merge_synonyms`; another process's copy follows within
``ttl``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from storage import Catalog, Company, Storage, merge_synonyms

from ._catalog import DEFAULT_ZONE, AssistantCatalog, Category, Master, SalonCard, Service

__all__ = ["CatalogSource", "assistant_catalog", "salon_card"]

DEFAULT_TTL = 120.0


def _money(value: float | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(int(value)) if value == int(value) else Decimal(str(value))
    except (InvalidOperation, ValueError, OverflowError):  # nan, inf
        return None


def salon_card(company: Company) -> SalonCard:
    """The salon card of a company row."""
    opening: tuple[dt.time, dt.time] | None = None
    if company.opens_at is not None and company.closes_at is not None:
        opening = (company.opens_at, company.closes_at)
    return SalonCard(
        company_id=company.id,
        salon_id=company.yclients_id,
        title=company.title or "",
        address=company.address or "",
        phone=company.phone or "",
        timezone=company.timezone or DEFAULT_ZONE,
        opening=opening,
        schedule=company.schedule or "",
    )


def assistant_catalog(company: Company, catalog: Catalog) -> AssistantCatalog:
    """What the pure parts know of the salon: only what is active and bookable."""
    masters = tuple(
        Master(s.staff_id, s.name, s.specialization or "")
        for s in catalog.staff
        if s.active and s.bookable
    )
    services = tuple(
        Service(
            id=s.service_id,
            title=s.title,
            category_id=s.category_id,
            price_min=_money(s.price_min),
            price_max=_money(s.price_max if s.price_max is not None else s.price_min),
            minutes=s.duration // 60 if s.duration else None,
            description=s.description or "",
            staff_ids=s.staff_ids,
            synonyms=s.synonyms,
        )
        for s in catalog.services
        if s.active
    )
    categories = tuple(Category(c.category_id, c.title) for c in catalog.categories if c.active)
    return AssistantCatalog(salon_card(company), services, masters, categories)


class CatalogSource:
    """Each company's catalog rows, cached ``ttl`` seconds (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self.ttl = ttl
        self._clock = clock
        # company id → (expires at, the rows, the last view built from them)
        self._rows: dict[int, tuple[float, Catalog, AssistantCatalog | None]] = {}
        self.loads = 0

    def invalidate(self, company_id: int | None = None) -> None:
        """Forget one company's copy (a sync completed), or every copy."""
        if company_id is None:
            self._rows.clear()
        else:
            self._rows.pop(company_id, None)

    async def get(self, company: Company) -> AssistantCatalog:
        """The company's catalog as the assistant sees it (card from ``company`` itself)."""
        entry = self._rows.get(company.id)
        now = self._clock()
        if entry is None or entry[0] <= now:
            self.loads += 1
            rows = await self._storage.catalog.get_catalog(company.id)
            rows = merge_synonyms(rows, await self._storage.synonyms.get(company.id))
            entry = (now + self.ttl, rows, None)
        expires, rows, view = entry
        if view is None or view.salon != salon_card(company):
            view = assistant_catalog(company, rows)  # built once per copy and card
        self._rows[company.id] = (expires, rows, view)
        return view
