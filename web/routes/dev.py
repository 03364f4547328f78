"""Development-only controls for the simulated WhatsApp (404 in production or with neonize)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from actors.whatsapp import WorldError
from config import WhatsAppProvider

from .._auth import require_admin
from .._context import principal_from, state
from .._errors import Conflict, NotFound
from .._validation import parse_id

blueprint = Blueprint("dev", __name__, url_prefix="/dev")


def _world() -> Any:
    s = state()
    if s.settings.production or s.settings.whatsapp_provider is not WhatsAppProvider.SIMULATED:
        raise NotFound("Not found")
    world = s.node.world
    if world is None:
        raise NotFound("Not found")
    return world


@blueprint.post("/simulator/<company_id>/scan")
async def simulate_scan(company_id: str) -> Any:
    world = _world()
    require_admin(await principal_from(request.headers))
    cid = parse_id(company_id, "companyId")
    if await state().storage.companies.get(cid) is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    try:
        jid = world.scan(cid)
    except WorldError as exc:
        raise Conflict(str(exc), code="no_live_qr") from None
    return jsonify({"success": True, "company_id": cid, "jid": jid})


@blueprint.post("/simulator/<company_id>/inbound")
async def simulate_inbound(company_id: str) -> Any:
    from .._validation import bounded_text, parse_phone, read_json_object, require_field

    world = _world()
    require_admin(await principal_from(request.headers))
    cid = parse_id(company_id, "companyId")
    body = await read_json_object(request, max_bytes=state().settings.max_body_bytes)
    phone = require_field(body, "phone", parse_phone)
    text = require_field(body, "text", bounded_text)
    try:
        message_id = world.send_inbound(cid, phone, text)
    except WorldError as exc:
        raise Conflict(str(exc), code="not_connected") from None
    return jsonify({"success": True, "message_id": message_id})
