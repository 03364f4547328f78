"""The partner's view of its salons (the partner/admin key only):

* ``GET /marketplace/companies`` — connection statistics (``stats``, on the first page) and
  the companies, in id order, a page at a time: ``limit`` 1 … 500 (default 100), ``cursor``
  (the previous page's ``next_cursor``), ``status`` (one ``integration_status``), ``salon_id``
  (only that salon's company). Each page is one indexed read (keyset on the id), so polling
  every salon costs the same per page at 100 salons as at 100,000; a company whose status
  changes between pages is never listed twice.
* ``GET /marketplace/companies/by-salon/<salonId>`` — one company by YClients' salon id (404
  ``company_not_found`` when none is registered).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from .._auth import require_admin
from .._companies import company_json, parse_list_query
from .._context import principal_from, state
from .._errors import NotFound
from .._validation import parse_id

blueprint = Blueprint("companies", __name__, url_prefix="/marketplace")


@blueprint.get("/companies")
async def companies() -> Any:
    require_admin(await principal_from(request.headers))
    query = parse_list_query(request.args)
    repo = state().storage.companies
    answer: dict[str, Any] = {"success": True}
    if query.first_page:
        by_status = await repo.count_by_status()
        answer["stats"] = {
            "total": sum(by_status.values()),
            "connected": await repo.count_linked(),
            "by_status": by_status,
        }
    if query.salon_id is not None:
        found = await repo.get_by_salon(query.salon_id)
        listed = []
        if (
            found is not None
            and found.id > query.after_id
            and query.status in (None, found.integration_status)
        ):
            listed = [company_json(found)]
        answer["companies"] = listed
        answer["next_cursor"] = None
        return jsonify(answer)
    rows = await repo.list_by_status(query.status, limit=query.limit + 1, after_id=query.after_id)
    page = rows[: query.limit]
    answer["companies"] = [company_json(c) for c in page]
    answer["next_cursor"] = str(page[-1].id) if len(rows) > query.limit else None
    return jsonify(answer)


@blueprint.get("/companies/by-salon/<salon_id>")
async def by_salon(salon_id: str) -> Any:
    require_admin(await principal_from(request.headers))
    salon = parse_id(salon_id, "salonId")
    company = await state().storage.companies.get_by_salon(salon)
    if company is None:
        raise NotFound(
            f"No company is registered for salon {salon} (register it with "
            "POST /marketplace/register)",
            code="company_not_found",
        )
    return jsonify({"success": True, **company_json(company)})
