"""On-demand salon sync: ``POST /marketplace/sync/<companyId>`` (the admin key or the company's
own credentials) queues a refresh of the salon's details, services and staff from YClients and
answers 202 at once; ``sync_json`` is the sync state shown by ``/marketplace/status/:id``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from actors.yclients import CatalogSync, SyncUnavailable
from storage import SyncState

from .._auth import require_company
from .._context import principal_from, state
from .._errors import Gone, NotFound, ServiceUnavailable
from .._validation import parse_id

blueprint = Blueprint("sync", __name__, url_prefix="/marketplace")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def sync_state_json(sync: SyncState | None) -> dict[str, Any]:
    """``{last_success_at, last_error, last_attempt_at}`` (all ``None`` before the first sync)."""
    if sync is None:
        return {"last_success_at": None, "last_error": None, "last_attempt_at": None}
    return {
        "last_success_at": _iso(sync.last_success_at),
        "last_error": sync.last_error,
        "last_attempt_at": _iso(sync.last_attempt_at),
    }


async def sync_json(company_id: int) -> dict[str, Any]:
    """The company's sync state as the status endpoint shows it."""
    return sync_state_json(await state().storage.catalog.get_sync_state(company_id))


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
    service = s.node.extensions.get("sync")
    if not isinstance(service, CatalogSync):
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
