"""``/openapi.json``: every route of the app, described (a test fails if one is missing)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from actors import MAX_PHONE_TEXT
from storage import MAX_ID, ConversationMode

from .._companies import LIST_QUERY as COMPANIES_QUERY
from .._companies import LIST_SCHEMA as COMPANIES_LIST
from .._companies import ONE_SCHEMA as ONE_COMPANY
from .._conversations import MAX_LIMIT, MODE_BODY
from .._message_fields import INBOUND_BODY, STAFF_MESSAGE_BODY
from .._model_settings import ANSWER_SCHEMA as MODEL_ANSWER
from .._model_settings import CHANGE_SCHEMA as MODEL_CHANGE
from .._model_settings import MAX_HISTORY_DAYS as MODEL_HISTORY_DAYS
from .._model_settings import SUMMARY_SCHEMA as MODEL_SUMMARY
from .._openapi import RouteDoc, build_openapi
from .._reminder_settings import ANSWER_SCHEMA as REMINDERS_ANSWER
from .._reminder_settings import CHANGE_SCHEMA as REMINDERS_CHANGE
from .._salon_events import ROUTE_DOCS as SALON_LIVE_ROUTES
from .._salon_results_docs import ROUTE_DOCS as SALON_RESULTS_ROUTES
from .._salon_session import ROUTE_DOCS as SALON_PAGE_ROUTES
from .._salon_settings import ROUTE_DOCS as SALON_SETTINGS_ROUTES
from .._salon_transcript import ROUTE_DOCS as SALON_CONVERSATIONS_ROUTES
from .._validation import BOOLEAN, EMAIL, PHONE, TEXT, object_schema
from .._validation import ID as ID_FIELD

blueprint = Blueprint("openapi", __name__)

# Ids in responses and query strings; request body fields take their schemas from the
# validators (web._validation field rules), so the document and the checks agree.
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
SUCCESS = {
    "type": "object",
    "properties": {"success": {"type": "boolean"}},
    "required": ["success"],
}
ASSISTANT_STATE = {
    "type": "object",
    "description": "Whether the assistant answers the salon's clients (companies.ai_enabled)",
    "properties": {"enabled": {"type": "boolean"}},
    "required": ["enabled"],
}
ASSISTANT_SWITCHED = {
    "type": "object",
    "properties": {"success": {"type": "boolean"}, "company_id": ID, "assistant": ASSISTANT_STATE},
    "required": ["success", "company_id", "assistant"],
}
CONVERSATION_FIELDS: dict[str, Any] = {
    "phone": {"type": "string", "description": "Digits, country code first"},
    "client_name": {"type": ["string", "null"]},
    "mode": {
        "type": "string",
        "enum": [mode.value for mode in ConversationMode],
        "description": "assistant: it answers; handoff: a person answers, the assistant is "
        "silent until mode_until or until given back; opted_out: the client asked us to "
        "stop writing",
    },
    "mode_until": {"type": ["string", "null"], "format": "date-time"},
    "needs_person": {
        "type": "boolean",
        "description": "Handed over by the assistant and not yet taken by the salon",
    },
    "last_message_at": {"type": ["string", "null"], "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "created_at": {"type": "string", "format": "date-time"},
    "last_rating": {
        "type": ["object", "null"],
        "description": "The client's last rating of a visit after a review request (null: "
        "none); low is a rating of 1-3, which the salon is told of",
        "properties": {
            "record_id": {"type": "integer"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "comment": {"type": ["string", "null"]},
            "low": {"type": "boolean"},
            "at": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["record_id", "rating", "comment", "low", "at"],
    },
}
CONVERSATION_REQUIRED = ["phone", "client_name", "mode", "mode_until", "needs_person", "updated_at"]
CONVERSATION = {
    "type": "object",
    "properties": CONVERSATION_FIELDS,
    "required": CONVERSATION_REQUIRED,
}
CONVERSATION_ANSWER = {
    "type": "object",
    "properties": {"success": {"type": "boolean"}, "company_id": ID, **CONVERSATION_FIELDS},
    "required": CONVERSATION_REQUIRED,
}
CONVERSATIONS_ANSWER = {
    "type": "object",
    "description": "With ?phone=P: that client's conversation (the fields of one list item, "
    "at the top level); without: the list",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": ID,
        "conversations": {"type": "array", "items": CONVERSATION},
        "language_model": MODEL_SUMMARY,
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as cursor for the next page; null on the last page",
        },
    },
}
STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": ID,
        "salon_id": ID,
        "whatsapp_connected": {"type": "boolean"},
        "whatsapp_phone": {"type": ["string", "null"]},
        "integration_status": {"type": "string"},
        "connected_at": {"type": ["string", "null"]},
        "sync": {
            "type": "object",
            "description": "Salon catalog sync from YClients",
            "properties": {
                "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                "last_error": {"type": ["string", "null"]},
                "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "assistant": ASSISTANT_STATE,
    },
}
HTML = {"type": "string", "description": "An HTML page"}


def answer(**properties: Any) -> dict[str, Any]:
    """The schema of a JSON answer: ``success`` and ``properties``, all of them present."""
    return {
        "type": "object",
        "properties": {"success": {"type": "boolean"}, **properties},
        "required": ["success", *properties],
    }


STRING = {"type": "string"}
BOOL = {"type": "boolean"}
READY = answer(
    status={"type": "string", "enum": ["ready", "restoring", "not_ready"]},
    checks={"type": "object", "additionalProperties": {"type": "object"}},
)
TREE = answer(
    tree={"type": "object", "description": "The supervision tree (see aiadmin tree)"},
    attention={
        "type": "array",
        "description": "Salons that need an operator: failed activation, failing sync",
        "items": {"type": "object"},
    },
)
OPENAPI_DOCUMENT = {
    "type": "object",
    "description": "An OpenAPI 3.1 document",
    "required": ["openapi", "info", "paths"],
}
REGISTERED = answer(
    company_id=ID,
    salon_id=ID,
    api_key={"type": "string", "description": "The company's sk_ key: shown this once"},
    connect_url={"type": "string", "description": "Relative to the server"},
)
CONNECT_URL = answer(company_id=ID, salon_id=ID, connect_url=STRING)
TOKEN = answer(
    company_id=ID, salon_id=ID, token=STRING, expires_in={"type": "integer", "const": 86400}
)
QR = answer(
    qr=STRING,
    qr_image={"type": "string", "description": "data:image/png;base64,…"},
    expires_in={"type": "integer", "minimum": 1},
)
CALLBACK_QUEUED = answer(
    company_id=ID, queued={"const": True}, outbox_id={"type": "integer", "minimum": 1}
)
WEBHOOK_RECEIVED = answer(received={"const": True}, duplicate=BOOL)
LIFECYCLE_RECEIVED = answer(received={"const": True}, event=STRING, duplicate=BOOL)
SYNC_QUEUED = answer(company_id=ID, queued={"const": True}, sync=STATUS["properties"]["sync"])
SCANNED = answer(company_id=ID, jid=STRING)
SENT = answer(message_id=STRING)
ID_PAIR = {
    "company_id": {**ID, "description": "The salon's company id"},
    "salon_id": {**ID, "description": "Its YClients salon id"},
}


def error_with_ids(description: str) -> dict[str, Any]:
    """An error response whose body also names a company (``company_id``, ``salon_id``)."""
    schema = {
        "allOf": [
            {"$ref": "#/components/schemas/ErrorResponse"},
            {"type": "object", "properties": ID_PAIR},
        ]
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


REGISTER_BODY = object_schema(
    {"salon_id": ID_FIELD}, {"phone": PHONE, "email": EMAIL, "title": TEXT}
)
COMPANY_OR_SALON = object_schema({}, {"company_id": ID_FIELD, "salon_id": ID_FIELD})
ANY_OBJECT = {"type": "object"}
ASSISTANT_BODY = object_schema({"enabled": BOOLEAN})
PHONE_QUERY = {
    "type": "string",
    "maxLength": MAX_PHONE_TEXT,
    "description": "The client's phone (+7 900 123-45-67, 79001234567, …)",
}
CHAT = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": ID,
        "phone": {"type": "string"},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "direction": {"type": "string", "enum": ["in", "out"]},
                    "text": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                },
                "required": ["direction", "text", "at"],
            },
        },
    },
    "required": ["messages"],
}

ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc("/health", "GET", "Liveness", response_schema=SUCCESS),
    RouteDoc(
        "/health/ready",
        "GET",
        "Readiness of PostgreSQL, Redis, WhatsApp",
        response_schema=READY,
        responses={200: "Ready", 503: "A dependency is down"},
    ),
    RouteDoc("/health/tree", "GET", "The supervision tree", auth="admin", response_schema=TREE),
    RouteDoc(
        "/metrics",
        "GET",
        "Prometheus metrics",
        auth="admin",
        content_type="text/plain",
        response_schema={"type": "string", "description": "Prometheus text format"},
    ),
    RouteDoc("/openapi.json", "GET", "This document", response_schema=OPENAPI_DOCUMENT),
    RouteDoc(
        "/docs",
        "GET",
        "This document, readable in a browser (served from our own files)",
        content_type="text/html",
        response_schema=HTML,
    ),
    RouteDoc(
        "/marketplace/", "GET", "Landing page", content_type="text/html", response_schema=HTML
    ),
    RouteDoc("/marketplace/test", "GET", "Readiness and endpoint list", response_schema=SUCCESS),
    RouteDoc(
        "/marketplace/register",
        "POST",
        "Register a salon; returns its API key (shown once) and connect URL",
        auth="admin",
        request_schema=REGISTER_BODY,
        response_schema=REGISTERED,
        responses={
            201: "Registered",
            400: "Invalid field",
            409: error_with_ids(
                "Salon already registered (code company_exists): the body names its company_id"
            ),
        },
    ),
    RouteDoc(
        "/marketplace/connect-url",
        "POST",
        "Issue a fresh connect URL (the old token stops working)",
        auth="admin",
        request_schema=COMPANY_OR_SALON,
        response_schema=CONNECT_URL,
        responses={404: "Unknown company", 410: "Uninstalled"},
    ),
    RouteDoc(
        "/marketplace/token",
        "POST",
        "Issue a 24 h company JWT",
        description="The admin names the company by company_id or salon_id (400 when neither, "
        "or when the two name different salons); a company's own sk_ key gets its own token "
        "(no body needed).",
        auth="admin",
        request_schema=COMPANY_OR_SALON,
        response_schema=TOKEN,
        responses={404: "Unknown company or salon"},
    ),
    RouteDoc(
        "/marketplace/connect",
        "GET",
        "The connect page (QR code / pairing code)",
        query={"token": {"type": "string"}, "company": ID, "salon": ID},
        content_type="text/html",
        response_schema=HTML,
        responses={410: "Link expired"},
    ),
    RouteDoc(
        "/marketplace/qr/{token}",
        "GET",
        "The current QR code of a linking session (a read: request-qr starts a round)",
        auth="token",
        response_schema=QR,
        responses={
            401: "Invalid token",
            409: "Already linked, or no linking round runs",
            503: "Not ready yet",
        },
    ),
    RouteDoc(
        "/marketplace/status/{companyId}",
        "GET",
        "Connection status of a company (by company id, not the YClients salon id)",
        description="companyId is the company_id POST /marketplace/register returned. Given a "
        "salon id instead, the 404 says so and names the company id: to the admin for any "
        "salon, to a company's own credentials for its own salon only.",
        auth="company",
        response_schema=STATUS,
        query={"token": {"type": "string"}},
        responses={
            401: "No credentials",
            403: "Another company's credentials",
            404: error_with_ids(
                "No company with this id (code company_not_found); when the id is a salon id, "
                "the message and the body's company_id name the company to ask for"
            ),
        },
    ),
    RouteDoc(
        "/marketplace/callback",
        "POST",
        "Re-send the activation callback to YClients (queued, idempotent)",
        auth="admin",
        request_schema=COMPANY_OR_SALON,
        response_schema=CALLBACK_QUEUED,
        responses={202: "Queued", 404: "Unknown company", 409: "WhatsApp not linked"},
    ),
    RouteDoc(
        "/marketplace/webhook/{companyId}",
        "POST",
        "YClients record webhook (secret in X-Webhook-Secret)",
        request_schema=ANY_OBJECT,
        response_schema=WEBHOOK_RECEIVED,
        responses={
            400: "Not a record event (lifecycle events have their own URL)",
            401: "Bad secret or unknown company (the same answer)",
            410: "Uninstalled",
        },
    ),
    RouteDoc(
        "/marketplace/webhook/{companyId}/{secret}",
        "POST",
        "YClients record webhook (secret in the registered URL)",
        request_schema=ANY_OBJECT,
        response_schema=WEBHOOK_RECEIVED,
        responses={
            400: "Not a record event (lifecycle events have their own URL)",
            401: "Bad secret or unknown company (the same answer)",
            410: "Uninstalled",
        },
    ),
    RouteDoc(
        "/marketplace/companies",
        "GET",
        "The partner's companies, a page at a time, with connection statistics",
        description="In company id order, keyset-paged: pass next_cursor as cursor until it "
        "is null. stats (every company, by status) comes with the first page only.",
        auth="admin",
        query=COMPANIES_QUERY,
        response_schema=COMPANIES_LIST,
        responses={200: "A page", 400: "Invalid limit, cursor, status or salon_id"},
    ),
    RouteDoc(
        "/marketplace/companies/by-salon/{salonId}",
        "GET",
        "One company by YClients salon id",
        auth="admin",
        response_schema=ONE_COMPANY,
        responses={200: "The company", 400: "Invalid salon id", 404: "No company for the salon"},
    ),
    RouteDoc(
        "/marketplace/sync/{companyId}",
        "POST",
        "Queue a sync of the salon's details, services and staff from YClients",
        auth="company",
        response_schema=SYNC_QUEUED,
        responses={
            202: "Queued",
            401: "No credentials",
            403: "Another company's credentials",
            404: "Unknown company",
            410: "Uninstalled",
            503: "Sync not available (YClients not configured)",
        },
    ),
    *(
        RouteDoc(
            "/marketplace/company/{companyId}/assistant",
            method,
            "Switch the salon's assistant on or off (off: messages are recorded, not answered)",
            auth="company",
            request_schema=ASSISTANT_BODY,
            response_schema=ASSISTANT_SWITCHED,
            responses={
                200: "Switched (or already so)",
                404: "Unknown company",
                410: "Uninstalled",
            },
        )
        for method in ("PATCH", "POST")
    ),
    RouteDoc(
        "/marketplace/company/{companyId}/assistant/model",
        "GET",
        "The salon's language model: its choice (off until it opts in), the model in effect "
        "now (null: the rules, and why) and today's tokens against its daily cap; with days, "
        "its spending on each of its last local days",
        auth="company",
        query={
            "days": {
                "type": "integer",
                "minimum": 1,
                "maximum": MODEL_HISTORY_DAYS,
                "description": "Also list the spending of the salon's last N local days",
            }
        },
        response_schema=MODEL_ANSWER,
        responses={400: "Invalid days", 404: "Unknown company"},
    ),
    RouteDoc(
        "/marketplace/company/{companyId}/assistant/model",
        "PATCH",
        "Switch the salon's language model on or off, choose it, set its daily token cap "
        "(absent fields are kept)",
        auth="company",
        request_schema=MODEL_CHANGE,
        response_schema=MODEL_ANSWER,
        responses={
            200: "Changed (or already so); the settings and spending now",
            400: "A bad value, an unknown field (the message names it), an empty body, or a "
            "body that is not a JSON object",
            404: "Unknown company",
            410: "Uninstalled",
        },
    ),
    RouteDoc(
        "/marketplace/company/{companyId}/reminders",
        "GET",
        "The salon's reminder and review settings (the defaults when it has none), the "
        "defaults and the placeholders its texts may use",
        auth="company",
        response_schema=REMINDERS_ANSWER,
        responses={404: "Unknown company"},
    ),
    *(
        RouteDoc(
            "/marketplace/company/{companyId}/reminders",
            method,
            summary,
            auth="company",
            request_schema=REMINDERS_CHANGE,
            response_schema=REMINDERS_ANSWER,
            responses={
                200: "Changed; the settings now in effect",
                400: "A bad value or an unknown field (code invalid_settings, the message "
                "starts with the field's name), or a body that is not a JSON object",
                404: "Unknown company",
                410: "Uninstalled",
            },
        )
        for method, summary in (
            ("PUT", "Replace the salon's reminder settings (absent fields take their defaults)"),
            ("PATCH", "Change some of the salon's reminder settings (absent fields are kept)"),
        )
    ),
    RouteDoc(
        "/marketplace/conversations/{companyId}",
        "GET",
        "The salon's assistant conversations, newest first (or one client's, with phone)",
        auth="company",
        query={
            "phone": PHONE_QUERY,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
            "cursor": {"type": "string", "description": "next_cursor of the previous page"},
            "mode": {"type": "string", "enum": [mode.value for mode in ConversationMode]},
            "needs_person": {"type": "boolean"},
            "q": {
                "type": "string",
                "maxLength": 255,
                "description": "Part of the client's phone (digits) or name",
            },
        },
        response_schema=CONVERSATIONS_ANSWER,
        responses={
            400: "Invalid query parameter",
            404: "Unknown company, or no conversation with this phone",
        },
    ),
    RouteDoc(
        "/marketplace/conversations/{companyId}/mode",
        "POST",
        "Take a chat over (handoff, for minutes or the configured time) or give it back to "
        "the assistant",
        auth="company",
        request_schema=MODE_BODY,
        response_schema=CONVERSATION_ANSWER,
        responses={
            404: "Unknown company",
            409: "The client opted out",
            410: "Uninstalled",
        },
    ),
    RouteDoc(
        "/marketplace/ws",
        "GET",
        "WebSocket of the connect page (first frame: auth {token})",
        responses={101: "Switching protocols"},
    ),
    RouteDoc(
        "/dev/simulator/{companyId}/scan",
        "POST",
        "Development: the simulated phone scans the current QR (404 in production)",
        auth="admin",
        response_schema=SCANNED,
    ),
    RouteDoc(
        "/dev/simulator/{companyId}/inbound",
        "POST",
        "Development: the simulated client sends a message, text or media (404 in production)",
        auth="admin",
        request_schema=INBOUND_BODY,
        response_schema=SENT,
        responses={409: "WhatsApp not linked"},
    ),
    RouteDoc(
        "/dev/simulator/{companyId}/staff-message",
        "POST",
        "Development: the salon's staff write to a client from the linked phone itself "
        "(the assistant keeps quiet in that chat for a while; 404 in production)",
        auth="admin",
        request_schema=STAFF_MESSAGE_BODY,
        response_schema=SENT,
        responses={409: "WhatsApp not linked"},
    ),
    RouteDoc(
        "/dev/simulator/{companyId}/chat",
        "GET",
        "Development: what the client's phone shows of its chat with the salon, in order "
        "(404 in production)",
        auth="admin",
        query={"phone": PHONE_QUERY},
        response_schema=CHAT,
        responses={400: "Missing or invalid phone", 404: "Unknown company or not development"},
    ),
)

EXTRA_ROUTES: list[RouteDoc] = [
    RouteDoc(
        "/marketplace/yclients/redirect",
        "GET",
        "YClients install redirect: registers the salon (signed, or confirmed installed by "
        "YClients) and sends the browser to the connect page; an existing salon's connect page "
        "needs a valid user_data_sign and YClients' confirmation",
        query={
            "salon_id": ID,
            "salon_ids[]": {"type": "array", "items": ID},
            "user_data": {"type": "string", "description": "base64 JSON of the salon admin"},
            "user_data_sign": {"type": "string", "description": "hex HMAC-SHA256"},
        },
        content_type="text/html",
        responses={
            302: "To the connect page",
            400: "No or invalid salon id",
            403: "Signature refused, unsigned redirect for an existing salon, or not confirmed",
            404: "YClients does not know the salon (or our app in it)",
            409: "Already connected or uninstalled (signed redirect)",
            429: "Too many salons looked up from this address",
            503: "YClients could not be asked (unsigned redirect)",
        },
    ),
    RouteDoc(
        "/marketplace/yclients/webhook",
        "POST",
        "YClients lifecycle webhook (uninstall, freeze): stored, then handled",
        request_schema={
            "type": "object",
            "required": ["salon_id", "application_id", "event", "partner_token"],
            "properties": {
                "salon_id": ID,
                "application_id": ID,
                "event": {"type": "string", "enum": ["uninstall", "freeze"]},
                "partner_token": {"type": "string"},
            },
        },
        response_schema=LIFECYCLE_RECEIVED,
        responses={
            400: "Malformed body",
            401: "Bad partner token",
            403: "Another application",
            404: "Unknown salon",
        },
    ),
    *SALON_PAGE_ROUTES,
    *SALON_CONVERSATIONS_ROUTES,
    *SALON_RESULTS_ROUTES,
    *SALON_SETTINGS_ROUTES,
    *SALON_LIVE_ROUTES,
]


def document() -> dict[str, Any]:
    return build_openapi(
        [*ROUTES, *EXTRA_ROUTES],
        description="AI Admin: the YClients marketplace integration for WhatsApp.",
    )


@blueprint.get("/openapi.json")
async def openapi() -> Any:
    return jsonify(document())
