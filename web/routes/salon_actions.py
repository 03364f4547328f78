"""What the salon does from its page (issue 16), under ``/marketplace/salon/api/<companyId>``;
each route takes the salon's page cookie (with CSRF) or the company's own credentials or the
admin key (:func:`web._salon_session.salon_caller`):

* ``POST /conversations/<phone>/takeover`` ``{"minutes"?}`` — a person answers the chat: the
  assistant is silent for ``minutes`` (default: the configured handoff time);
* ``POST /conversations/<phone>/giveback`` — the assistant answers again;
* ``POST /conversations/<phone>/messages`` ``{"text"}`` — write to the client: the text is
  queued through the company actor (``SendText``), so it goes out through the salon's own
  WhatsApp queue, paced like every message; a chat the assistant was answering is taken over
  first (the assistant goes silent), and the audit log gets ``salon.message_sent`` with the
  message's id (the transcript marks it "by: salon"). 202: queued, not yet sent;
* ``POST /whatsapp/logout`` — log the salon's WhatsApp out (the company actor's
  ``LogoutRequested``: the device unlinked, its credentials dropped); answers the new status;
* ``POST /whatsapp/relink`` — a connect page URL with a fresh connect token, to link a phone
  again. The salon's page cookie does not depend on connect tokens or the company's
  credentials version, so it stays valid (the version is not moved: the company's JWTs keep
  working too).

A conversation must exist (the client wrote to the salon): 404 ``conversation_not_found``.
A client who opted out stays opted out: 409 ``opted_out``. Writing needs a linked WhatsApp:
409 ``whatsapp_not_connected`` otherwise (nothing is queued). Routes that ask the company actor
get its ref before writing anything, so in cluster mode the request is forwarded whole to the
salon's owner process first. A changed chat mode is announced to the salon's live pages
(:func:`web._salon_events.conversation_changed`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quart import Blueprint, jsonify, request

from actors.company import CommandResult, CompanyView, SendingUnavailable
from actors.company import messages as m
from storage import Company, Conversation, ConversationMode

from .._context import state
from .._conversations import HANDOFF_MINUTES, conversation_json, iso
from .._errors import BadRequest, Conflict, Gone, NotFound, UnsupportedMediaType
from .._forward import company_ref
from .._message_fields import MESSAGE_TEXT
from .._salon_events import conversation_changed, whatsapp_json
from .._salon_session import SalonCaller, salon_caller
from .._salon_settings import can_send
from .._urls import connect_url
from .._validation import (
    optional_field,
    parse_id,
    parse_phone,
    read_json_object,
    require_field,
)

blueprint = Blueprint("salon_actions", __name__, url_prefix="/marketplace/salon/api")


async def _salon(company_id: str) -> tuple[int, SalonCaller, Company]:
    """The path's salon for a caller allowed to it: ``(id, caller, company)``; 410 once
    uninstalled (every route here changes something)."""
    cid = parse_id(company_id, "companyId")
    caller = await salon_caller(cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    if company.integration_status == "uninstalled":
        raise Gone("Приложение удалено в YClients", code="uninstalled")
    return cid, caller, company


async def _body() -> dict[str, Any]:
    """The JSON body, or ``{}`` when none was sent (a body, if any, must be JSON)."""
    if request.content_length == 0:
        return {}
    if request.mimetype != "application/json":
        if await request.get_data(cache=True):  # bounded by the app's MAX_CONTENT_LENGTH
            raise UnsupportedMediaType()
        return {}
    try:
        return await read_json_object(request, max_bytes=state().settings.max_body_bytes)
    except BadRequest as exc:
        # ``Content-Type: application/json`` with nothing after it: no body either.
        if exc.code == "malformed_json" and not await request.get_data(cache=True):
            return {}
        raise


async def _conversation(company_id: int, phone: str) -> Conversation:
    """The client's conversation; 404 when the client never wrote, 409 when opted out."""
    conversation = await state().storage.conversations.get(company_id, phone)
    if conversation is None:
        raise NotFound("Клиент с этим номером ещё не писал салону", code="conversation_not_found")
    if conversation.mode is ConversationMode.OPTED_OUT:
        raise Conflict(
            "Клиент попросил не писать ему; снять запрет может только сам клиент",
            code="opted_out",
        )
    return conversation


async def _set_mode(
    cid: int,
    caller: SalonCaller,
    phone: str,
    mode: ConversationMode,
    until: datetime | None,
    *,
    audit: bool = True,
) -> Conversation:
    """Set the chat's mode (nobody is waiting for a person any more); audited with the caller
    unless ``audit`` is false."""
    s = state()
    conversation = await s.storage.conversations.set_mode(
        cid, phone, mode, until=until, needs_person=False
    )
    if audit:
        await s.storage.audit.append(
            cid,
            "conversation_mode_set",
            {"phone": phone, "mode": mode.value, "until": iso(until), "by": caller.kind},
        )
    return conversation


def _handoff_until(minutes: int | None = None) -> datetime:
    """When a handoff of ``minutes`` (default: the configured handoff time) ends."""
    length = minutes if minutes is not None else state().settings.assistant.handoff_minutes
    return datetime.now(UTC) + timedelta(minutes=length)


def _answer(cid: int, conversation: Conversation) -> Any:
    """The answer of takeover and giveback: the conversation as the conversations API shows it."""
    return jsonify(
        {"success": True, "company_id": cid, "conversation": conversation_json(conversation)}
    )


@blueprint.post("/<company_id>/conversations/<phone>/takeover")
async def take_over(company_id: str, phone: str) -> Any:
    """``POST …/conversations/<phone>/takeover``: a person answers the chat."""
    cid, caller, _ = await _salon(company_id)
    number = parse_phone(phone)
    minutes = optional_field(await _body(), "minutes", HANDOFF_MINUTES)
    await _conversation(cid, number)
    until = _handoff_until(minutes)
    conversation = await _set_mode(cid, caller, number, ConversationMode.HANDOFF, until)
    await conversation_changed(cid, number)
    return _answer(cid, conversation)


@blueprint.post("/<company_id>/conversations/<phone>/giveback")
async def give_back(company_id: str, phone: str) -> Any:
    """``POST …/conversations/<phone>/giveback``: the assistant answers again."""
    cid, caller, _ = await _salon(company_id)
    number = parse_phone(phone)
    await _body()
    await _conversation(cid, number)
    conversation = await _set_mode(cid, caller, number, ConversationMode.ASSISTANT, None)
    await conversation_changed(cid, number)
    return _answer(cid, conversation)


@blueprint.post("/<company_id>/conversations/<phone>/messages")
async def write_to_client(company_id: str, phone: str) -> Any:
    """``POST …/conversations/<phone>/messages``: queue the salon's text to the client (202)."""
    cid, caller, _ = await _salon(company_id)
    number = parse_phone(phone)
    s = state()
    ref = await company_ref(s.node, cid)
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    text = require_field(body, "text", MESSAGE_TEXT)
    conversation = await _conversation(cid, number)
    view = await ref.ask(m.GetStatus())
    assert isinstance(view, CompanyView)
    if not can_send(view):
        raise _not_connected()
    # A person writes: the assistant goes silent in this chat for the handoff time (it is
    # extended, never shortened, and whoever was waiting for a person now has one).
    until = _handoff_until()
    held = conversation.mode_until
    if conversation.mode is ConversationMode.ASSISTANT:
        await _set_mode(cid, caller, number, ConversationMode.HANDOFF, until)
        await conversation_changed(cid, number)
    elif conversation.needs_person or (held is not None and held < until):
        later = until if held is None else max(held, until)
        await _set_mode(cid, caller, number, ConversationMode.HANDOFF, later, audit=False)
        await conversation_changed(cid, number)
    try:
        message_id = await ref.ask(m.SendText(number, text, by="salon"))
    except SendingUnavailable:
        raise _not_connected() from None
    assert isinstance(message_id, str)
    await s.storage.audit.append(
        cid, "salon.message_sent", {"phone": number, "message_id": message_id}
    )
    row = await s.storage.messages.get_by_wa_id(cid, message_id)
    at = row.created_at if row is not None else datetime.now(UTC)
    response = jsonify(
        {
            "success": True,
            "company_id": cid,
            "message": {"id": message_id, "status": "queued", "text": text, "at": iso(at)},
        }
    )
    response.status_code = 202
    return response


def _not_connected() -> Conflict:
    """409 ``whatsapp_not_connected``: the salon's WhatsApp cannot send now."""
    return Conflict(
        "WhatsApp салона не подключён: подключите его заново, и сообщение можно будет отправить",
        code="whatsapp_not_connected",
    )


_LOGOUT_REFUSALS = {
    "not_linked": ("WhatsApp салона и так не подключён", "whatsapp_not_connected"),
    "frozen": ("Приложение приостановлено в YClients", "frozen"),
    "uninstalled": ("Приложение удалено в YClients", "uninstalled"),
}


@blueprint.post("/<company_id>/whatsapp/logout")
async def log_out_whatsapp(company_id: str) -> Any:
    """``POST …/whatsapp/logout``: unlink the salon's WhatsApp; the new status."""
    cid, caller, _ = await _salon(company_id)
    s = state()
    ref = await company_ref(s.node, cid)
    await _body()
    result = await ref.ask(m.LogoutRequested())
    assert isinstance(result, CommandResult)
    if not result.ok:
        message, code = _LOGOUT_REFUSALS.get(result.code, (result.message, result.code))
        raise Conflict(message, code=code or "conflict")
    await s.storage.audit.append(cid, "whatsapp_logout_requested", {"by": caller.kind})
    view = await ref.ask(m.GetStatus())
    assert isinstance(view, CompanyView)
    return jsonify({"success": True, "company_id": cid, "whatsapp": whatsapp_json(view)})


@blueprint.post("/<company_id>/whatsapp/relink")
async def relink_whatsapp(company_id: str) -> Any:
    """``POST …/whatsapp/relink``: a connect page URL with a fresh connect token."""
    cid, caller, company = await _salon(company_id)
    s = state()
    await _body()
    if company.integration_status == "frozen":
        raise Conflict("Приложение приостановлено в YClients", code="frozen")
    # A fresh connect token (the previous one stops resolving). The credentials version is
    # not moved: the salon's page cookie and the company's JWTs stay valid.
    token = await s.storage.tokens.issue(cid)
    await s.storage.audit.append(cid, "connect_url_issued", {"by": caller.kind, "via": "salon"})
    return jsonify({"success": True, "company_id": cid, "connect_url": connect_url(token, company)})
