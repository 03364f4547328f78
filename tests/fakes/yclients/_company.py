"""The fake's salon catalog as the admin API shows it: services and service categories.

``GET company/{id}/services`` shows more than the booking widget's ``book_services``: every
service (inactive ones too) with its description (``comment``), length and the masters who do
it (``staff``). ``GET company/{id}/service_categories`` lists the categories with their
masters. ``synonyms`` on a service is a fake-only extension: the salon's own words for it,
which the catalog file may give.
"""

from __future__ import annotations

from typing import Any

from ._booking import BookingState
from ._data import FakeSalon
from ._wire import RecordedRequest, Reply, error, ok


def _masters_of(salon: FakeSalon, service_id: int) -> list[dict[str, Any]]:
    return [m for m in salon.staff if service_id in m.get("services", ())]


def _service_view(salon: FakeSalon, service: dict[str, Any]) -> dict[str, Any]:
    length = int(service["seance_length"])
    return {
        "id": service["id"],
        "salon_service_id": service["id"],
        "title": service["title"],
        "booking_title": service["title"],
        "category_id": service["category_id"],
        "price_min": service["price_min"],
        "price_max": service["price_max"],
        "discount": service.get("discount", 0),
        "comment": service.get("comment", ""),
        "weight": service.get("weight", 0),
        "active": service["active"],
        "api_id": str(service["id"]),
        "is_online": True,
        "duration": length,
        "staff": [
            {"id": m["id"], "seance_length": length} for m in _masters_of(salon, service["id"])
        ],
        "synonyms": list(service.get("synonyms", [])),
    }


def company_services(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    """``GET company/{id}/services`` (``staff_id``, ``category_id`` filters)."""
    services = list(salon.services)
    staff_id = req.param("staff_id")
    if staff_id and staff_id.isdigit():
        master = salon.master(int(staff_id))
        if master is None:
            return error(404, "Сотрудник не найден")
        services = [s for s in services if s["id"] in master.get("services", ())]
    category_id = req.param("category_id")
    if category_id and category_id.isdigit():
        services = [s for s in services if s["category_id"] == int(category_id)]
    return ok([_service_view(salon, s) for s in services], {"total_count": len(services)})


def service_categories(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    """``GET company/{id}/service_categories``: ``[{id, title, api_id, weight, staff}]``."""
    out = []
    for weight, category in enumerate(salon.categories):
        ids = {s["id"] for s in salon.services if s["category_id"] == category["id"]}
        staff = [m["id"] for m in salon.staff if ids & set(m.get("services", ()))]
        out.append(
            {
                "id": category["id"],
                "title": category["title"],
                "api_id": str(category["id"]),
                "weight": len(salon.categories) - weight,
                "staff": staff,
            }
        )
    return ok(out, {"total_count": len(out)})
