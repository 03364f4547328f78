"""What ``/openapi.json`` says of the salon page's results route (``web.routes.salon_results``):
its span limits and its answer's schema, kept out of the route module because route modules may
not import one another (``/openapi.json``'s module gathers every route's docs)."""

from __future__ import annotations

from datetime import date
from typing import Any

from storage import DailyResults

from ._openapi import RouteDoc

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "RESULTS_SCHEMA", "ROUTE_DOCS"]

#: The span the page shows by default, and the longest one may ask for.
DEFAULT_DAYS = 30
MAX_DAYS = 90
_COUNTS = tuple(DailyResults(date.min).counts())

_COUNT = {"type": "integer", "minimum": 0}
_DAY = {
    "type": "object",
    "required": ["date", *_COUNTS],
    "properties": {
        "date": {"type": "string", "format": "date", "description": "The salon's local date"},
        **{name: _COUNT for name in _COUNTS},
    },
}
RESULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "success",
        "company_id",
        "timezone",
        "days",
        "totals",
        "ratings",
        "answered_from",
    ],
    "properties": {
        "success": {"type": "boolean", "const": True},
        "company_id": {"type": "integer"},
        "timezone": {"type": "string", "description": "The zone the days are the salon's in"},
        "days": {
            "type": "array",
            "items": _DAY,
            "description": "Every day of the span, oldest first (zeros included)",
        },
        "totals": {
            "type": "object",
            "required": list(_COUNTS),
            "properties": {name: _COUNT for name in _COUNTS},
        },
        "ratings": {
            "type": "object",
            "required": ["average", "count", "distribution"],
            "properties": {
                "average": {"type": ["number", "null"], "minimum": 1, "maximum": 5},
                "count": _COUNT,
                "distribution": {
                    "type": "object",
                    "required": ["1", "2", "3", "4", "5"],
                    "properties": {str(n): _COUNT for n in range(1, 6)},
                },
            },
        },
        "answered_from": {
            "type": ["string", "null"],
            "format": "date",
            "description": "The first day whose answered count is complete (messages are "
            "kept AIADMIN_RETENTION_DAYS days); null when every day's is",
        },
    },
}

ROUTE_DOCS: list[RouteDoc] = [
    RouteDoc(
        "/marketplace/salon/api/{companyId}/results",
        "GET",
        "The salon's results per local day: the assistant's answers, visits booked, moved and "
        "cancelled, reminders sent and confirmed, chats handed to a person, ratings",
        auth="salon",
        description="answered counts the assistant's replies to clients (not reminders, review "
        "requests, messages the salon wrote from its page, or failed sends); booked, moved and "
        "cancelled the visits the assistant changed in YClients; reminders_sent the visit "
        "reminders sent (not review requests), reminders_confirmed the visits clients "
        "confirmed in answer; handed_over the chats the assistant handed to a person; ratings "
        "the clients' ratings given that day. Days are the salon's local dates (timezone).",
        query={"days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS, "default": 30}},
        response_schema=RESULTS_SCHEMA,
        responses={
            400: "days is not an integer from 1 to 90 (invalid_field), or a bad companyId",
            404: "Unknown company (company_not_found)",
        },
    ),
]
