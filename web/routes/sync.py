"""On-demand salon sync: ``POST /marketplace/sync/<companyId>`` (the admin key or the company's
own credentials) queues a refresh of the salon's details, services and staff from YClients and
answers 202 at once (503 ``sync_off`` when the node runs no sync, 503
``yclients_not_configured`` without YClients)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from actors.yclients import SyncUnavailable

from .._auth import require_company
from .._context import principal_from, state
from .._errors import Gone, NotFound, ServiceUnavailable
from .._sync_view import sync_json
from .._validation import parse_id

blueprint = Blueprint("sync", __name__, url_prefix="/marketplace")


@blueprint.post("/sync/<company_id>")
async def request_sync(company_id: str) -> Any:
    cid = parse_id(company_id, "companyId")
    principal = require_company(await principal_from(request.headers), cid)
    s = state()
    company = await s.storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    service = s.services.sync
    if service is None:
        raise ServiceUnavailable(60, "Salon sync is not running on this node", code="sync_off")
    try:
        service.request(cid)
    except SyncUnavailable:
        raise ServiceUnavailable(
            60, "YClients is not configured on this node", code="yclients_not_configured"
        ) from None
    await s.storage.audit.append(cid, "sync_requested", {"by": principal.kind})
    response = jsonify(
        {"success": True, "company_id": cid, "queued": True, "sync": await sync_json(cid)}
    )
    response.status_code = 202
    return response
