"""Switching a salon's assistant on or off: ``PATCH`` (or ``POST``)
``/marketplace/company/<companyId>/assistant`` ``{"enabled": bool}`` (the admin key or the
company's own credentials). The switch is ``companies.ai_enabled``; the status response shows
it as ``assistant.enabled``; this route is its only writer and marks each write in
``Storage.changes``. Off, inbound messages are only recorded: nobody answers them."""

from __future__ import annotations

import contextlib
from typing import Any

from quart import Blueprint, jsonify, request

from .._auth import require_company
from .._context import principal_from, state
from .._errors import Gone, NotFound
from .._validation import BOOLEAN, parse_id, read_json_object, require_field

blueprint = Blueprint("assistant", __name__, url_prefix="/marketplace")


@blueprint.route("/company/<company_id>/assistant", methods=["PATCH", "POST"])
async def switch_assistant(company_id: str) -> Any:
    cid = parse_id(company_id, "companyId")
    principal = require_company(await principal_from(request.headers), cid)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    enabled = require_field(body, "enabled", BOOLEAN)
    company = await s.storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    if company.ai_enabled != enabled:
        # Marked (``Storage.changes``): the company actor keeps the switch for the status
        # route and must know to read it again.
        changes = s.storage.changes
        with changes.changing(cid) if changes is not None else contextlib.nullcontext():
            await s.storage.companies.update(cid, ai_enabled=enabled)
        event = "assistant_enabled" if enabled else "assistant_disabled"
        await s.storage.audit.append(cid, event, {"by": principal.kind})
    return jsonify({"success": True, "company_id": cid, "assistant": {"enabled": enabled}})
