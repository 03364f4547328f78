"""Answers to questions that change nothing (``Ask``): prices, what a service is, the salon's
address, hours and phone, who does a service. Facts come only from the catalog and the salon
card; the wording from ``_templates``. Pure.
"""

from __future__ import annotations

from . import _templates as t
from ._catalog import AssistantCatalog, Service
from ._commands import Ask, Topic

__all__ = ["answer"]


def answer(ask: Ask, catalog: AssistantCatalog) -> str:
    """The reply to one question (never empty)."""
    services = tuple(s for i in ask.service_ids if (s := catalog.service(i)) is not None)
    category = catalog.category(ask.category_id) if ask.category_id is not None else None
    match ask.topic:
        case Topic.PRICE | Topic.SERVICES:
            if services:
                return t.prices(services)
            if category is not None:
                return t.category_list(catalog, category.id)
            return t.price_list(catalog)
        case Topic.PRICE_LIST:
            return t.price_list(catalog)
        case Topic.SERVICE_INFO:
            return _info(services, catalog, category.id if category is not None else None)
        case Topic.ADDRESS:
            return t.salon_address(catalog.salon)
        case Topic.HOURS:
            return t.salon_hours(catalog.salon)
        case Topic.PHONE:
            return t.salon_phone(catalog.salon)
        case Topic.MASTERS:
            ids = tuple(s.id for s in services)
            masters = catalog.masters_for(ids) if ids else catalog.masters
            return t.masters_list(catalog, masters, ids)
        case _:
            return t.capabilities()


def _info(services: tuple[Service, ...], catalog: AssistantCatalog, category_id: int | None) -> str:
    if services:
        return "\n".join(t.service_info(s) for s in services)
    if category_id is not None:
        return t.category_list(catalog, category_id)
    return t.price_list(catalog)
