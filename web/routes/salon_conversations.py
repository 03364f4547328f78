"""The salon page's reading API (issue 16): its overview, its chats and one chat's transcript.

* ``GET /marketplace/salon/api/<companyId>/overview`` — the salon (ids, title, its time zone:
  the page shows every date and time on the salon's own clock, as the assistant and the
  reminders use it, whatever the browser's zone), the assistant switch, its WhatsApp as the
  company actor sees it now (:func:`web._salon_events.whatsapp_json`, the same shape the page's
  socket sends as ``status``) and how many chats wait for a person;
* ``GET /marketplace/salon/api/<companyId>/conversations?q=&needs_person=&cursor=&limit=`` —
  the chats, newest first (the conversations API's list and cursor), each with its last
  message's text and direction;
* ``GET /marketplace/salon/api/<companyId>/conversations/<phone>`` — one chat and its latest
  :data:`~web._salon_transcript.MAX_ITEMS` items, oldest first (:mod:`web._salon_transcript`):
  404 ``conversation_not_found`` when that client never wrote.

Every route takes the salon page's cookie or the API's own credentials
(:func:`web._salon_session.salon_caller`: another salon's → 403). The clients' words are
returned as JSON data, never as markup: the page escapes them. The routes' documentation
(``ROUTE_DOCS`` for ``/openapi.json``) lives beside the transcript in
:mod:`web._salon_transcript`, since route modules import no other route module.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from actors.company import messages as m
from actors.reminders._planner import salon_zone
from storage import Company

from .._context import state
from .._conversations import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    conversation_json,
    decode_cursor,
    encode_cursor,
)
from .._errors import BadRequest, NotFound
from .._forward import company_ref
from .._salon_events import whatsapp_json
from .._salon_session import salon_caller
from .._salon_transcript import MAX_NEEDS_PERSON, SALON_API, transcript
from .._validation import bounded_text, parse_id, parse_phone

__all__ = ["blueprint"]

blueprint = Blueprint("salon_conversations", __name__, url_prefix=SALON_API)


async def _company(company_id: str) -> Company:
    """The path's company for a caller allowed to see it (401/403 before anything is read)."""
    cid = parse_id(company_id, "companyId")
    await salon_caller(cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return company


@blueprint.get("/<company_id>/overview")
async def overview(company_id: str) -> Any:
    company = await _company(company_id)
    s = state()
    view = await (await company_ref(s.node, company.id)).ask(m.GetStatus(extras=True))
    enabled = view.ai_enabled if view.held else company.ai_enabled
    waiting = await s.storage.conversations.list(
        company.id, limit=MAX_NEEDS_PERSON, needs_person=True
    )
    return jsonify(
        {
            "success": True,
            "company_id": company.id,
            "salon_id": company.yclients_id,
            "title": view.title if view.title is not None else company.title,
            "timezone": salon_zone(company.timezone).key,
            "assistant_enabled": enabled,
            "whatsapp": whatsapp_json(view),
            "needs_person": len(waiting),
        }
    )


@blueprint.get("/<company_id>/conversations")
async def conversations(company_id: str) -> Any:
    company = await _company(company_id)
    args = request.args
    limit = _limit(args.get("limit"))
    before = None if args.get("cursor") is None else decode_cursor(args["cursor"])
    needs_person = _flag(args.get("needs_person"), "needs_person")
    search = bounded_text(args.get("q", ""), "q", allow_empty=True) or None
    storage = state().storage
    rows = await storage.conversations.list(
        company.id, limit=limit + 1, before=before, needs_person=needs_person, search=search
    )
    page = rows[:limit]
    last = await storage.messages.latest_by_peer(company.id, [c.phone for c in page])
    listed = []
    for conversation in page:
        message = last.get(conversation.phone)
        listed.append(
            {
                **conversation_json(conversation),
                "last_text": None if message is None else message.text,
                "last_direction": None if message is None else message.direction,
            }
        )
    return jsonify(
        {
            "success": True,
            "company_id": company.id,
            "conversations": listed,
            "next_cursor": encode_cursor(page[-1]) if len(rows) > limit else None,
        }
    )


@blueprint.get("/<company_id>/conversations/<phone>")
async def conversation(company_id: str, phone: str) -> Any:
    company = await _company(company_id)
    client = parse_phone(phone)
    storage = state().storage
    row = await storage.conversations.get(company.id, client)
    if row is None:
        raise NotFound(
            "No conversation with this phone: the client has not written to the salon",
            code="conversation_not_found",
        )
    items = await transcript(storage, company, client)
    return jsonify(
        {
            "success": True,
            "company_id": company.id,
            "conversation": conversation_json(row),
            "items": items,
        }
    )


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT):
        raise BadRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_field", field="limit"
        )
    return int(raw)


def _flag(raw: str | None, field: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{field} must be true or false.", code="invalid_field", field=field)
    return raw == "true"
