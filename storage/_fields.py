"""Which company columns callers may set, each with its validator; shared by every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from . import _validate as v
from ._errors import ValidationError
from ._models import CompanyStatus

Clock = Callable[[], datetime]
"""A wall clock returning an aware UTC ``datetime``."""


def utc_now() -> datetime:
    """The default wall clock."""
    return datetime.now(UTC)


def _text(max_len: int) -> Callable[[str, object], str | None]:
    return lambda name, value: v.optional_text(name, value, max_len)


COMPANY_FIELDS: Mapping[str, Callable[[str, object], object]] = {
    "company_id": v.optional_int,
    "title": _text(255),
    "phone": _text(20),
    "email": _text(255),
    "address": _text(1000),
    "timezone": lambda name, value: v.text(name, value, 50),
    "whatsapp_enabled": v.boolean,
    "whatsapp_connected": v.boolean,
    "whatsapp_replaced": v.boolean,
    "whatsapp_phone": _text(20),
    "whatsapp_jid": _text(255),
    "whatsapp_connected_at": v.timestamp,
    "connected_at": v.timestamp,
    "ai_enabled": v.boolean,
    "sync_enabled": v.boolean,
    "last_error": lambda name, value: v.clipped(name, value, 1000),
    "raw_data": v.optional_json_object,
}
"""Settable columns of ``companies`` (status changes go through ``transition``)."""


def clean_company_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``fields`` against :data:`COMPANY_FIELDS`; unknown names are refused."""
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        check = COMPANY_FIELDS.get(name)
        if check is None:
            raise ValidationError(name, "is not a company field that can be set")
        cleaned[name] = check(name, value)
    return cleaned


def status_value(status: object) -> str:
    """A valid ``integration_status`` string."""
    try:
        return CompanyStatus(str(status)).value
    except ValueError:
        raise ValidationError("integration_status", f"unknown status {status!r}") from None


def status_values(statuses: Iterable[object]) -> list[str]:
    if isinstance(statuses, str | CompanyStatus):
        statuses = [statuses]
    return [status_value(s) for s in statuses]


def limit_value(limit: int, *, high: int = 10_000) -> int:
    return v.positive_int("limit", limit, high=high)


def key_text(field: str, value: object) -> str:
    """Keys (dedupe, idempotency, kinds, event types): non-empty, ≤ 255 chars, no NUL."""
    result = v.text(field, value, 255)
    if not result:
        raise ValidationError(field, "must not be empty")
    return result
