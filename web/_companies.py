"""What the partner's company API shows and reads, shared by its routes, the marketplace
routes and ``/openapi.json``: a company as a list item, the list's query, and the errors that
name a company (a repeated registration; a salon id given where a company id belongs).

Two ids name a salon: our ``company_id`` (what ``POST /marketplace/register`` returns, in
every ``/marketplace/.../{companyId}`` path) and YClients' ``salon_id``. Giving one for the
other is the integrator's most likely mistake, so the 404 says which id it was — to the
admin, and to a company about its own salon only (it learns nothing of other tenants).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage import MAX_ID, Company, CompanyStatus

from ._auth import Principal
from ._conversations import iso
from ._errors import BadRequest, Conflict, NotFound
from ._validation import parse_id

#: Page sizes of ``GET /marketplace/companies``: the default and the largest allowed.
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

STATUSES = tuple(status.value for status in CompanyStatus)
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

#: The JSON schema of :func:`company_json`.
COMPANY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "company_id": {**ID_SCHEMA, "description": "Our id: the {companyId} of every path"},
        "salon_id": {**ID_SCHEMA, "description": "YClients' salon id"},
        "title": {"type": ["string", "null"]},
        "integration_status": {"type": "string", "enum": list(STATUSES)},
        "phone": {
            "type": ["string", "null"],
            "description": "The salon's phone as registered (digits, country code first)",
        },
        "whatsapp_connected": {"type": "boolean"},
        "whatsapp_phone": {"type": ["string", "null"], "description": "The linked number"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": TIMESTAMP,
        "status_changed_at": TIMESTAMP,
        "connected_at": TIMESTAMP,
    },
    "required": [
        "company_id",
        "salon_id",
        "integration_status",
        "phone",
        "whatsapp_connected",
        "whatsapp_phone",
        "created_at",
        "updated_at",
        "status_changed_at",
        "connected_at",
    ],
}
STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "connected": {"type": "integer", "minimum": 0},
        "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["total", "connected", "by_status"],
}
LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "stats": {
            **STATS_SCHEMA,
            "description": "Connection statistics over every company (first page only: "
            "absent when a cursor is given)",
        },
        "companies": {"type": "array", "items": COMPANY_SCHEMA},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as cursor for the next page; null on the last page",
        },
    },
    "required": ["success", "companies", "next_cursor"],
}
ONE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"success": {"type": "boolean"}, **COMPANY_SCHEMA["properties"]},
    "required": ["success", *COMPANY_SCHEMA["required"]],
}
#: Query parameters of the list, for the OpenAPI document.
LIST_QUERY: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "cursor": {"type": "string", "description": "next_cursor of the previous page"},
    "status": {"type": "string", "enum": list(STATUSES)},
    "salon_id": {**ID_SCHEMA, "description": "Only the company of this YClients salon"},
}


def company_json(company: Company) -> dict[str, Any]:
    """A company as the partner sees it: ids, status, phones, timestamps (no credentials)."""
    return {
        "company_id": company.id,
        "salon_id": company.yclients_id,
        "title": company.title,
        "integration_status": company.integration_status,
        "phone": company.phone,
        "whatsapp_connected": company.whatsapp_connected,
        "whatsapp_phone": company.whatsapp_phone,
        "created_at": iso(company.created_at),
        "updated_at": iso(company.updated_at),
        "status_changed_at": iso(company.status_changed_at),
        "connected_at": iso(company.connected_at),
    }


@dataclass(frozen=True)
class ListQuery:
    """``GET /marketplace/companies``'s query: page size, where to start, filters."""

    limit: int
    after_id: int
    status: str | None
    salon_id: int | None

    @property
    def first_page(self) -> bool:
        return self.after_id == 0


def parse_list_query(args: Mapping[str, str]) -> ListQuery:
    """The list's query parameters; 400 ``invalid_field`` naming the bad one."""
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
            raise BadRequest(
                f"limit must be an integer from 1 to {MAX_LIMIT}.",
                code="invalid_field",
                field="limit",
            )
        limit = int(raw_limit)
    raw_cursor = args.get("cursor")
    after_id = 0
    if raw_cursor is not None:
        try:
            after_id = parse_id(raw_cursor, "cursor")
        except BadRequest:
            raise BadRequest(
                "cursor must be a next_cursor this list returned.",
                code="invalid_field",
                field="cursor",
            ) from None
    status = args.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(
            "status must be one of " + ", ".join(STATUSES) + ".",
            code="invalid_field",
            field="status",
        )
    raw_salon = args.get("salon_id")
    salon_id = None if raw_salon is None else parse_id(raw_salon, "salon_id")
    return ListQuery(limit=limit, after_id=after_id, status=status, salon_id=salon_id)


class CompanyExists(Conflict):
    """409 ``company_exists``: the salon is registered already; the body names its company."""

    def __init__(self, company: Company) -> None:
        self.company_id = company.id
        self.salon_id = company.yclients_id
        super().__init__(
            f"Salon {company.yclients_id} is registered already as company {company.id}; "
            "use POST /marketplace/connect-url for a fresh connect link",
            code="company_exists",
        )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "company_id": self.company_id, "salon_id": self.salon_id}


class SalonIdGiven(NotFound):
    """404 ``company_not_found`` for a salon id given as a company id; names the right one."""

    def __init__(self, company: Company, *, own: bool) -> None:
        self.company_id = company.id
        self.salon_id = company.yclients_id
        salon, cid = company.yclients_id, company.id
        if own:
            message = (
                f"{salon} is your salon id (YClients), not your company id: your company id "
                f"is {cid}. Use /marketplace/status/{cid}"
            )
        else:
            message = (
                f"{salon} is a salon id (YClients), not a company id: this salon's company id "
                f"is {cid}. Use /marketplace/status/{cid}, or look salons up with "
                f"GET /marketplace/companies/by-salon/{salon}"
            )
        super().__init__(message, code="company_not_found")

    def body(self) -> dict[str, Any]:
        return {**super().body(), "company_id": self.company_id, "salon_id": self.salon_id}


NO_COMPANY = (
    "No company with this id exists (the path takes the company_id that "
    "POST /marketplace/register returned, not the YClients salon id)"
)


def salon_hint_for(principal: Principal, requested: int, own: Company | None) -> None:
    """Raise :class:`SalonIdGiven` when a company's credential asks for ``requested`` and
    that is its own salon id; ``own`` is the caller's company. Reads nothing else, so the
    answer tells a tenant nothing about other tenants (their requests stay 403)."""
    if principal.is_admin or own is None:
        return
    if own.yclients_id == requested and own.id != requested:
        raise SalonIdGiven(own, own=True)
