"""The salon's view of its assistant's chats (the admin key or the company's own credentials):

* ``GET /marketplace/conversations/<companyId>?phone=P`` — one client's conversation (404
  ``conversation_not_found`` when that client never wrote);
* ``GET /marketplace/conversations/<companyId>`` — the list, newest first, paged by an opaque
  ``cursor`` (``limit`` 1 … 100, filters ``mode``, ``needs_person``, and ``q``: part of a phone
  or of the client's name), with ``language_model``: the salon's model, the one in effect now
  and today's prompt and completion tokens against its daily cap (issue 15);
* ``POST /marketplace/conversations/<companyId>/mode`` ``{phone, mode, minutes?}`` — the salon
  takes a chat over (``handoff``, for ``minutes`` or the configured handoff time) or gives it
  back (``assistant``). A client who opted out stays opted out (409 ``opted_out``): only the
  client can undo that, by writing again.

A conversation's ``mode``: ``assistant`` (it answers), ``handoff`` (a person answers; it is
silent until ``mode_until`` or until the salon gives it back), ``opted_out`` (the client asked
us to stop writing). ``needs_person``: the assistant handed the chat over and nobody has
taken it yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, jsonify, request

from storage import Company, ConversationMode

from .._auth import require_company
from .._context import principal_from, state
from .._conversations import (
    DEFAULT_LIMIT,
    HANDOFF_MINUTES,
    LISTED_MODE,
    MAX_LIMIT,
    SETTABLE_MODE,
    conversation_json,
    decode_cursor,
    encode_cursor,
    iso,
)
from .._errors import BadRequest, Conflict, Gone, NotFound
from .._model_settings import model_summary, node_llm
from .._salon_events import conversation_changed
from .._validation import (
    PHONE,
    bounded_text,
    optional_field,
    parse_id,
    parse_phone,
    read_json_object,
    require_field,
)

blueprint = Blueprint("conversations", __name__, url_prefix="/marketplace")


async def _company(company_id: str) -> tuple[int, str, Company]:
    """The path's company for a caller allowed to see it: ``(id, caller kind, company)``."""
    cid = parse_id(company_id, "companyId")
    principal = require_company(await principal_from(request.headers), cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return cid, principal.kind, company


# ------------------------------------------------------------------------------ reading


@blueprint.get("/conversations/<company_id>")
async def conversations(company_id: str) -> Any:
    cid, _, company = await _company(company_id)
    raw_phone = request.args.get("phone")
    if raw_phone is not None:
        return await _one(cid, parse_phone(raw_phone))
    args = request.args
    limit = _limit(args.get("limit"))
    before = None if args.get("cursor") is None else decode_cursor(args["cursor"])
    mode = None if args.get("mode") is None else ConversationMode(LISTED_MODE(args["mode"], "mode"))
    needs_person = _flag(args.get("needs_person"), "needs_person")
    search = bounded_text(args.get("q", ""), "q", allow_empty=True) or None
    rows = await state().storage.conversations.list(
        cid,
        limit=limit + 1,
        before=before,
        mode=mode,
        needs_person=needs_person,
        search=search,
    )
    page = rows[:limit]
    more = len(rows) > limit
    s = state()
    spending = await model_summary(s.storage, company, node_llm(s.settings), datetime.now(UTC))
    return jsonify(
        {
            "success": True,
            "company_id": cid,
            "conversations": [conversation_json(c) for c in page],
            "language_model": spending,
            "next_cursor": encode_cursor(page[-1]) if more else None,
        }
    )


async def _one(company_id: int, phone: str) -> Any:
    conversation = await state().storage.conversations.get(company_id, phone)
    if conversation is None:
        raise NotFound(
            "No conversation with this phone: the client has not written to the salon",
            code="conversation_not_found",
        )
    return jsonify({"success": True, "company_id": company_id, **conversation_json(conversation)})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
        raise BadRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_field", field="limit"
        )
    return int(raw)


def _flag(raw: str | None, field: str) -> bool | None:
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{field} must be true or false.", code="invalid_field", field=field)
    return raw == "true"


# ------------------------------------------------------------------------------ writing


@blueprint.post("/conversations/<company_id>/mode")
async def set_mode(company_id: str) -> Any:
    cid, caller, company = await _company(company_id)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    phone = require_field(body, "phone", PHONE)
    mode = ConversationMode(require_field(body, "mode", SETTABLE_MODE))
    minutes = optional_field(body, "minutes", HANDOFF_MINUTES)
    if minutes is not None and mode is not ConversationMode.HANDOFF:
        raise BadRequest("minutes is only for mode handoff.", code="invalid_field", field="minutes")
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    current = await s.storage.conversations.get(cid, phone)
    if current is not None and current.mode is ConversationMode.OPTED_OUT:
        raise Conflict(
            "The client asked not to be written to; only the client can undo that",
            code="opted_out",
        )
    until = None
    if mode is ConversationMode.HANDOFF:
        length = minutes if minutes is not None else s.settings.assistant.handoff_minutes
        until = datetime.now(UTC) + timedelta(minutes=length)
    conversation = await s.storage.conversations.set_mode(
        cid, phone, mode, until=until, needs_person=False
    )
    await s.storage.audit.append(
        cid,
        "conversation_mode_set",
        {"phone": phone, "mode": mode.value, "until": iso(until), "by": caller},
    )
    await conversation_changed(cid, phone)  # the salon page's live sockets show it
    return jsonify({"success": True, "company_id": cid, **conversation_json(conversation)})
