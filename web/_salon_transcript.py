"""One client's chat as the salon page shows it (issue 16): the messages as the client saw
them, and what the assistant (or the salon) did in the chat, from the audit log — merged,
oldest first.

Items (JSON, the client's words as data: the page escapes them)::

    {"kind": "message", "direction": "in"|"out", "text", "at", "status",
     "by": "client"|"assistant"|"salon"}
    {"kind": "action", "action": "booked"|"moved"|"cancelled"|"handoff"|"opted_out"|
     "taken_over"|"given_back"|"visit_confirmed"|"rating", "text": "записал на …", "at"}

Where they come from:

* messages: ``storage.messages.recent(company, limit, peer_phone=phone)``. An outgoing one is
  the salon's own (``by: "salon"``) when the page sent it (audit ``salon.message_sent`` with
  ``{"phone", "message_id"}``, the message's WhatsApp id), else the assistant's (its replies
  and the reminders);
* actions: ``storage.audit.for_phone(company, phone)``, each event read by :data:`_RENDER`
  into a short Russian line in the salon's own time zone ("записал на пт 11 декабря в 11:00,
  Стрижка мужская, мастер Игорь"). Events the page does not show (a booking still being
  checked, a failed one, a rating's comment — the client's words are already there) are
  left out. A mode change is audited twice (the stored mode and the decision's own entry):
  the same action twice in a row with no message between, within :data:`SAME_ACTION_WINDOW`,
  is shown once (the fuller line).

The transcript is the latest :data:`MAX_ITEMS` items.

``ROUTE_DOCS`` documents the page's reading routes (``web/routes/salon_conversations.py``:
overview, list, transcript) for ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from actors.assistant._format import format_day, format_time
from actors.reminders._planner import salon_zone
from storage import AuditEvent, Catalog, Company, Message, Storage

from ._conversations import MAX_LIMIT
from ._openapi import RouteDoc

__all__ = [
    "MAX_ITEMS",
    "MAX_NEEDS_PERSON",
    "ROUTE_DOCS",
    "SALON_API",
    "SALON_MESSAGE_EVENT",
    "transcript",
]

#: Where the salon page's API lives (``/<companyId>/…``).
SALON_API = "/marketplace/salon/api"
#: The overview counts chats waiting for a person up to this many (this many: "or more").
MAX_NEEDS_PERSON = 100
#: The most items one transcript shows (the latest).
MAX_ITEMS = 200
#: The audit event the page's "write to the client" route appends for each message it queued.
SALON_MESSAGE_EVENT = "salon.message_sent"
#: Two entries of the same action this close, nothing between them, are one action.
SAME_ACTION_WINDOW = dt.timedelta(seconds=60)
#: Audit events read per transcript: the actions among :data:`MAX_ITEMS` items plus the
#: salon's message marks and the doubled mode entries.
_EVENTS_READ = 3 * MAX_ITEMS

_HANDOFF_REASONS = {
    "asked": "клиент попросил администратора",
    "complaint": "клиент недоволен",
    "not_understood": "не понял клиента",
    "no_catalog": "нет списка услуг салона",
    "booking_refused": "YClients не принял запись",
    "booking_unconfirmed": "запись не подтвердилась в YClients",
}
_BACK_REASONS = {
    "expired": "время передачи администратору вышло",
    "rebook": "клиент снова хочет записаться",
    "client asked to book": "клиент снова хочет записаться",
}


@dataclass(frozen=True)
class _Ctx:
    """What an event's line needs besides its data: the salon's zone and its catalog names
    (for entries written before they carried the titles themselves)."""

    zone: ZoneInfo
    services: Mapping[int, str]
    masters: Mapping[int, str]


def _moment(raw: object, zone: ZoneInfo) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment.astimezone(zone) if moment.tzinfo is not None else None


def _when(raw: object, cx: _Ctx) -> str | None:
    """``пт 11 декабря в 11:00`` in the salon's zone."""
    moment = _moment(raw, cx.zone)
    return None if moment is None else f"{format_day(moment.date())} в {format_time(moment)}"


def _until(raw: object, at: dt.datetime, cx: _Ctx) -> str:
    """`` до 15:30`` (the day too when it is not the event's day); ``""`` when unknown."""
    moment = _moment(raw, cx.zone)
    if moment is None:
        return ""
    if moment.date() == at.astimezone(cx.zone).date():
        return f" до {format_time(moment)}"
    return f" до {format_day(moment.date())} {format_time(moment)}"


def _visit(data: Mapping[str, Any], cx: _Ctx) -> str:
    """``, Стрижка мужская, мастер Игорь`` (what of it is known)."""
    titles = data.get("services")
    if not isinstance(titles, list) or not titles:
        ids = data.get("service_ids")
        titles = [cx.services[i] for i in ids if i in cx.services] if isinstance(ids, list) else []
    names = [t for t in titles if isinstance(t, str) and t]
    master = data.get("master")
    if not isinstance(master, str) or not master:
        staff = data.get("staff_id")
        master = cx.masters.get(staff) if isinstance(staff, int) else None
    parts = [", ".join(names)] if names else []
    if master:
        parts.append(f"мастер {master}")
    return "".join(f", {p}" for p in parts)


def _booked(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    when = _when(data.get("start"), cx)
    head = f"записал на {when}" if when else "записал клиента"
    return "booked", head + _visit(data, cx)


def _moved(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    old, new = _when(data.get("from"), cx), _when(data.get("start"), cx)
    head = "перенёс запись"
    if old:
        head += f" с {old}"
    if new:
        head += f" на {new}"
    return "moved", head + _visit(data, cx)


def _cancelled(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    when = _when(data.get("start"), cx)
    head = f"отменил запись на {when}" if when else "отменил запись"
    return "cancelled", head + _visit(data, cx)


def _handoff(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    reason = _HANDOFF_REASONS.get(str(data.get("reason")))
    text = "передал администратору" + (f": {reason}" if reason else "")
    until = _until(data.get("until"), at, cx)
    if until:
        text += f"; ассистент молчит{until}"
    return "handoff", text


def _opted_out(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    return "opted_out", "клиент попросил больше не писать — ассистент молчит"


def _back(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    reason = _BACK_REASONS.get(str(data.get("reason")))
    return "given_back", "ассистент снова отвечает" + (f": {reason}" if reason else "")


def _mode_set(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str] | None:
    """The salon took the chat over or gave it back (the page or the conversations API)."""
    if data.get("mode") == "handoff":
        return "taken_over", "администратор взял чат" + _until(data.get("until"), at, cx)
    if data.get("mode") == "assistant":
        return "given_back", "администратор вернул чат ассистенту"
    return None


def _staff_silence(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    until = _until(data.get("until"), at, cx)
    return "taken_over", "администратор пишет с телефона салона — ассистент молчит" + until


def _visit_confirmed(data: Mapping[str, Any], at: dt.datetime, cx: _Ctx) -> tuple[str, str]:
    when = _when(data.get("start"), cx)
    text = f"клиент подтвердил визит на {when}" if when else "клиент подтвердил визит"
    return "visit_confirmed", text + (", отмечено в YClients" if data.get("marked") else "")


def _rating(data: Mapping[str, Any], low: bool) -> tuple[str, str] | None:
    rating = data.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int):
        return None
    return "rating", f"оценка {rating} из 5" + (" — низкая, салону сообщено" if low else "")


#: Audit event type → its action and line (``None``: not shown).
_RENDER: dict[str, Callable[[Mapping[str, Any], dt.datetime, _Ctx], tuple[str, str] | None]] = {
    "assistant.booked": _booked,
    "assistant.moved": _moved,
    "assistant.cancelled": _cancelled,
    "assistant.handoff": _handoff,
    "assistant.opted_out": _opted_out,
    "assistant.assistant": _back,
    "conversation_mode_set": _mode_set,
    "assistant.staff_silence": _staff_silence,
    "assistant.visit_confirmed": _visit_confirmed,
    "assistant.rated": lambda data, at, cx: _rating(data, low=False),
    "assistant.low_rating": lambda data, at, cx: _rating(data, low=True),
}
#: Events whose lines fall back on the catalog's names (entries from before they carried them).
_NAMES_VISITS = frozenset({"assistant.booked", "assistant.moved", "assistant.cancelled"})


async def transcript(
    storage: Storage, company: Company, phone: str, limit: int = MAX_ITEMS
) -> list[dict[str, Any]]:
    """The latest ``limit`` items of ``phone``'s chat with ``company``, oldest first."""
    messages = await storage.messages.recent(company.id, limit, peer_phone=phone)
    events = await storage.audit.for_phone(company.id, phone, max(limit, _EVENTS_READ))
    salon_ids = {e.data.get("message_id") for e in events if e.event_type == SALON_MESSAGE_EVENT}
    shown = [e for e in events if e.event_type in _RENDER]
    cx = await _context(storage, company, shown)
    rows: list[tuple[tuple[dt.datetime, int, int], dict[str, Any]]] = []
    for message in messages:
        rows.append(((message.created_at, 0, message.id), _message_json(message, salon_ids)))
    for event in shown:
        rendered = _RENDER[event.event_type](event.data, event.created_at, cx)
        if rendered is not None:
            action, text = rendered
            item = {"kind": "action", "action": action, "text": text, "at": _iso(event.created_at)}
            rows.append(((event.created_at, 1, event.id), item))
    rows.sort(key=lambda row: row[0])
    return _collapse([(key[0], item) for key, item in rows])[-limit:]


async def _context(storage: Storage, company: Company, events: Sequence[AuditEvent]) -> _Ctx:
    """The zone, and the catalog's names only when an old entry needs them."""
    zone = salon_zone(company.timezone)
    needs_names = any(e.event_type in _NAMES_VISITS and not e.data.get("services") for e in events)
    if not needs_names:
        return _Ctx(zone, {}, {})
    catalog: Catalog = await storage.catalog.get_catalog(company.id, active_only=False)
    return _Ctx(
        zone,
        {s.service_id: s.title for s in catalog.services},
        {m.staff_id: m.name for m in catalog.staff},
    )


def _message_json(message: Message, salon_ids: set[object]) -> dict[str, Any]:
    if message.direction == "in":
        by = "client"
    else:
        salon = message.wa_message_id is not None and message.wa_message_id in salon_ids
        by = "salon" if salon else "assistant"
    return {
        "kind": "message",
        "direction": message.direction,
        "text": message.text,
        "at": _iso(message.created_at),
        "status": message.status,
        "by": by,
    }


def _collapse(rows: list[tuple[dt.datetime, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Drop the second of two entries of one action in a row (see the module docstring)."""
    out: list[dict[str, Any]] = []
    last_at: dt.datetime | None = None
    for at, item in rows:
        previous = out[-1] if out else None
        if (
            item["kind"] == "action"
            and previous is not None
            and previous["kind"] == "action"
            and previous["action"] == item["action"]
            and last_at is not None
            and at - last_at <= SAME_ACTION_WINDOW
        ):
            if len(item["text"]) > len(previous["text"]):
                out[-1] = item
            last_at = at
            continue
        out.append(item)
        last_at = at
    return out


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


# ------------------------------------------------------------------------------ documentation

_DATE_TIME = {"type": "string", "format": "date-time"}
_MAYBE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
_CONVERSATION: dict[str, Any] = {
    "type": "object",
    "description": "A chat as GET /marketplace/conversations/{companyId}?phone= shows it",
    "properties": {
        "phone": {"type": "string", "description": "Digits, country code first"},
        "client_name": {"type": ["string", "null"]},
        "mode": {"type": "string", "enum": ["assistant", "handoff", "opted_out"]},
        "mode_until": _MAYBE_DATE_TIME,
        "needs_person": {"type": "boolean"},
        "last_message_at": _MAYBE_DATE_TIME,
        "updated_at": _DATE_TIME,
        "created_at": _DATE_TIME,
        "last_rating": {"type": ["object", "null"]},
    },
    "required": ["phone", "client_name", "mode", "mode_until", "needs_person", "updated_at"],
}
_WHATSAPP = {
    "type": "object",
    "description": "The salon's WhatsApp now (the page socket's status frame is the same)",
    "properties": {
        "status": {
            "type": "string",
            "description": "connected, reconnecting, linking, disconnected, or the app's "
            "status when it is not running (frozen, uninstalled, activation_failed)",
        },
        "connected": {"type": "boolean"},
        "phone": {"type": ["string", "null"]},
        "last_error": {"type": ["string", "null"]},
        "connected_at": {"type": ["string", "null"]},
    },
    "required": ["status", "connected", "phone", "last_error", "connected_at"],
}
_OVERVIEW = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "salon_id": {"type": "integer"},
        "title": {"type": ["string", "null"]},
        "timezone": {
            "type": "string",
            "description": "The salon's IANA time zone (its YClients card's, else the default): "
            "the page shows dates and times on this clock",
        },
        "assistant_enabled": {"type": "boolean"},
        "whatsapp": _WHATSAPP,
        "needs_person": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_NEEDS_PERSON,
            "description": f"Chats waiting for a person (counted up to {MAX_NEEDS_PERSON})",
        },
    },
    "required": [
        "success",
        "company_id",
        "salon_id",
        "title",
        "timezone",
        "assistant_enabled",
        "whatsapp",
        "needs_person",
    ],
}
_LISTED = {
    **_CONVERSATION,
    "properties": {
        **_CONVERSATION["properties"],
        "last_text": {"type": ["string", "null"], "description": "The chat's last message"},
        "last_direction": {"type": ["string", "null"], "enum": ["in", "out", None]},
    },
    "required": [*_CONVERSATION["required"], "last_text", "last_direction"],
}
_LIST = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "conversations": {"type": "array", "items": _LISTED},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as cursor for the next page; null on the last page",
        },
    },
    "required": ["success", "company_id", "conversations", "next_cursor"],
}
_ITEM = {
    "type": "object",
    "description": 'kind "message": a message as the client saw it (direction, text, '
    'status, by: client, assistant or salon); kind "action": what the assistant or the '
    'salon did (action, and a Russian line such as "записал на пт 11 декабря в 11:00")',
    "properties": {
        "kind": {"type": "string", "enum": ["message", "action"]},
        "at": _DATE_TIME,
        "direction": {"type": "string", "enum": ["in", "out"]},
        "text": {"type": "string"},
        "status": {"type": "string"},
        "by": {"type": "string", "enum": ["client", "assistant", "salon"]},
        "action": {
            "type": "string",
            "enum": [
                "booked",
                "moved",
                "cancelled",
                "handoff",
                "opted_out",
                "taken_over",
                "given_back",
                "visit_confirmed",
                "rating",
            ],
        },
    },
    "required": ["kind", "at", "text"],
}
_TRANSCRIPT = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "conversation": _CONVERSATION,
        "items": {
            "type": "array",
            "items": _ITEM,
            "maxItems": MAX_ITEMS,
            "description": f"The latest {MAX_ITEMS} messages and actions, oldest first",
        },
    },
    "required": ["success", "company_id", "conversation", "items"],
}
_AUTH_ERRORS: dict[int, str] = {
    401: "No credential, or the salon session expired (salon_session_expired)",
    403: "Another salon's session, key or token (forbidden)",
}

ROUTE_DOCS: list[RouteDoc] = [
    RouteDoc(
        f"{SALON_API}/{{companyId}}/overview",
        "GET",
        "The salon page's overview: the salon and its time zone, the assistant switch, "
        "WhatsApp now, chats waiting for a person",
        auth="salon",
        response_schema=_OVERVIEW,
        responses={**_AUTH_ERRORS, 404: "Unknown company (company_not_found)"},
    ),
    RouteDoc(
        f"{SALON_API}/{{companyId}}/conversations",
        "GET",
        "The salon's chats, newest first, with each one's last message",
        auth="salon",
        query={
            "q": {
                "type": "string",
                "maxLength": 255,
                "description": "Part of the client's phone (digits) or name",
            },
            "needs_person": {"type": "boolean"},
            "cursor": {"type": "string", "description": "next_cursor of the previous page"},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
        },
        response_schema=_LIST,
        responses={
            400: "Invalid query parameter (invalid_field)",
            **_AUTH_ERRORS,
            404: "Unknown company (company_not_found)",
        },
    ),
    RouteDoc(
        f"{SALON_API}/{{companyId}}/conversations/{{phone}}",
        "GET",
        "One chat as the client saw it, with the assistant's and the salon's actions marked",
        auth="salon",
        response_schema=_TRANSCRIPT,
        responses={
            400: "Not a phone number (invalid_field)",
            **_AUTH_ERRORS,
            404: "Unknown company (company_not_found), or the client never wrote "
            "(conversation_not_found)",
        },
    ),
]
