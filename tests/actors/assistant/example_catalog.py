"""The shared example catalog (``catalog.example.json``) as the assistant sees a salon of it,
for tests that run against the fake YClients serving the same file."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.assistant._catalog import AssistantCatalog, Category, Master, SalonCard, Service
from tests.e2e._dialogues import SAMPLE_CATALOG

#: The example catalog: the repository's copy of the shared ``catalog.example.json``
#: (``tests/fakes/yclients/catalog.example.json``), the shared sample's salon among its own.
EXAMPLE_CATALOG = SAMPLE_CATALOG
ROMASHKA = 555100


def _hour(raw: Any) -> dt.time:
    if isinstance(raw, int):
        return dt.time(raw)
    return dt.time.fromisoformat(str(raw))


def assistant_catalog(
    salon_id: int = ROMASHKA, *, company_id: int | None = None, path: Path = EXAMPLE_CATALOG
) -> AssistantCatalog:
    """The salon ``salon_id`` of a catalog file as an :class:`AssistantCatalog`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    raw = next(s for s in data["salons"] if s["id"] == salon_id)
    return salon_catalog(raw, company_id=company_id)


def salon_catalog(raw: Mapping[str, Any], *, company_id: int | None = None) -> AssistantCatalog:
    """A catalog file's salon entry (parsed) as an :class:`AssistantCatalog`."""
    salon_id = int(raw["id"])
    card = SalonCard(
        company_id=company_id if company_id is not None else salon_id,
        salon_id=salon_id,
        title=raw["title"],
        address=raw.get("address", ""),
        phone=raw.get("phone", ""),
        timezone=raw["timezone"],
        opening=(_hour(raw["open_hour"]), _hour(raw["close_hour"])),
    )
    services = tuple(
        Service(
            id=s["id"],
            title=s["title"],
            category_id=s.get("category_id"),
            price_min=Decimal(s["price_min"]) if "price_min" in s else None,
            price_max=Decimal(s["price_max"]) if "price_max" in s else None,
            minutes=s.get("minutes"),
            description=s.get("comment", ""),
            staff_ids=tuple(s.get("staff", ())),
            synonyms=tuple(s.get("synonyms", ())),
        )
        for s in raw["services"]
    )
    masters = tuple(Master(m["id"], m["name"], m.get("specialization", "")) for m in raw["staff"])
    categories = tuple(Category(c["id"], c["title"]) for c in raw.get("categories", ()))
    return AssistantCatalog(card, services, masters, categories)
