"""Development-only controls for the simulated WhatsApp (404 in production or with neonize):
the phone scans, a client writes (text or media), the salon's staff write from the linked
phone, and a client's chat as its phone shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, jsonify, request

from actors.whatsapp import SimulatedWorld, WorldError
from config import WhatsAppProvider

from .._auth import require_admin
from .._context import principal_from, state
from .._errors import BadRequest, Conflict, NotFound
from .._message_fields import CAPTION, KIND, MESSAGE_TEXT
from .._validation import optional_field, parse_id, parse_phone, read_json_object, require_field

blueprint = Blueprint("dev", __name__, url_prefix="/dev")


def _world() -> SimulatedWorld:
    s = state()
    if s.settings.production or s.settings.whatsapp_provider is not WhatsAppProvider.SIMULATED:
        raise NotFound("Not found")
    world = s.node.world
    if world is None:
        raise NotFound("Not found")
    return world


async def _company_id(company_id: str) -> int:
    """The path's company, admin key required (404 for an unknown company)."""
    require_admin(await principal_from(request.headers))
    cid = parse_id(company_id, "companyId")
    if await state().storage.companies.get(cid) is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return cid


@blueprint.post("/simulator/<company_id>/scan")
async def simulate_scan(company_id: str) -> Any:
    world = _world()
    cid = await _company_id(company_id)
    try:
        jid = world.scan(cid)
    except WorldError as exc:
        raise Conflict(str(exc), code="no_live_qr") from None
    return jsonify({"success": True, "company_id": cid, "jid": jid})


@blueprint.post("/simulator/<company_id>/inbound")
async def simulate_inbound(company_id: str) -> Any:
    world = _world()
    require_admin(await principal_from(request.headers))
    cid = parse_id(company_id, "companyId")
    body = await read_json_object(request, max_bytes=state().settings.max_body_bytes)
    phone = require_field(body, "phone", parse_phone)
    kind = optional_field(body, "kind", KIND) or "text"
    if kind == "text":
        text = require_field(body, "text", MESSAGE_TEXT)
    else:
        text = optional_field(body, "text", CAPTION) or ""
    try:
        message_id = world.send_inbound(cid, phone, text, kind=kind)
    except WorldError as exc:
        raise Conflict(str(exc), code="not_connected") from None
    return jsonify({"success": True, "message_id": message_id})


@blueprint.post("/simulator/<company_id>/staff-message")
async def simulate_staff_message(company_id: str) -> Any:
    """The salon's staff write to a client from the linked phone itself."""
    world = _world()
    require_admin(await principal_from(request.headers))
    cid = parse_id(company_id, "companyId")
    body = await read_json_object(request, max_bytes=state().settings.max_body_bytes)
    phone = require_field(body, "phone", parse_phone)
    text = require_field(body, "text", MESSAGE_TEXT)
    try:
        message_id = world.staff_send(cid, phone, text)
    except WorldError as exc:
        raise Conflict(str(exc), code="not_connected") from None
    return jsonify({"success": True, "message_id": message_id})


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


@blueprint.get("/simulator/<company_id>/chat")
async def simulated_chat(company_id: str) -> Any:
    """What the client's phone shows of its chat with the salon, oldest first."""
    world = _world()
    cid = await _company_id(company_id)
    raw = request.args.get("phone")
    if raw is None:
        raise BadRequest("phone is required.", code="missing_field", field="phone")
    phone = parse_phone(raw)
    lines = world.chat(cid, phone)
    return jsonify(
        {
            "success": True,
            "company_id": cid,
            "phone": phone,
            "messages": [
                {
                    "direction": line.direction,
                    "text": line.text,
                    "at": _iso(line.at),
                    "kind": line.kind,
                }
                for line in lines
            ],
        }
    )
