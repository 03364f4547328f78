"""Reading a YClients record (a booked visit) into our ``storage.SalonRecord``.

YClients' record shape is documented loosely (see ``reference/yclients-api.md``): numbers may
come as strings, times as ISO 8601 with an offset or as naive local times (``"2026-01-20
14:00:00"``, in the salon's time zone), the client as an object or as loose fields. Parsing is
defensive: a field we cannot read becomes ``None``; only a missing record id is an error
(``ValueError``). The client's phone is kept in the canonical form of
:func:`actors.find_phone` (``79161234567``), so it matches WhatsApp's ids, or ``None``.

``is_complete`` says whether a webhook's ``data`` carries the whole record (so the worker
can store it without asking YClients) — it must at least carry its change time, without which
an out-of-order delivery could not be recognised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage import SalonRecord

from .._phones import find_phone
from ._marketplace import CHANGE_TIME_FIELDS

#: Fields a webhook's ``data`` must hold for us to store it without fetching the record.
COMPLETE_FIELDS = ("id", "datetime", "staff_id", "services", "client")

DEFAULT_TIMEZONE = "Europe/Moscow"


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def parse_time(value: Any, timezone: str | None = None) -> datetime | None:
    """An aware UTC ``datetime`` from YClients' text (naive times are the salon's local time)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(timezone))
    return parsed.astimezone(UTC)


def change_time(data: Any, timezone: str | None = None) -> datetime | None:
    """The record's last change time (``last_change_date`` or a synonym), if it has one."""
    if not isinstance(data, dict):
        return None
    for name in CHANGE_TIME_FIELDS:
        parsed = parse_time(data.get(name), timezone)
        if parsed is not None:
            return parsed
    return None


def is_complete(data: Any, record_id: int) -> bool:
    """Whether webhook ``data`` is the whole record ``record_id``, change time included."""
    if not isinstance(data, dict) or _int(data.get("id")) != record_id:
        return False
    if any(name not in data for name in COMPLETE_FIELDS):
        return False
    return isinstance(data.get("services"), list) and change_time(data) is not None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _positive(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _bounded(value: Any, low: int, high: int) -> int | None:
    number = _int(value)
    return number if number is not None and low <= number <= high else None


def _text(value: Any, max_len: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:max_len] or None


def _services(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _deleted(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false"}
    return bool(value)


def record_from_api(
    company_id: int,
    raw: dict[str, Any],
    *,
    timezone: str | None = None,
    deleted: bool | None = None,
) -> SalonRecord:
    """Our row for a YClients record of company ``company_id`` (our id, not the salon's).

    ``deleted`` overrides the record's own flag (a ``delete`` webhook's data may still say
    ``deleted: false``). Raises ``ValueError`` when the record has no positive id.
    """
    record_id = _positive(raw.get("id"))
    if record_id is None:
        raise ValueError("record without an id")
    client = raw.get("client")
    client_obj: dict[str, Any] = client if isinstance(client, dict) else {}
    api_id = _text(raw.get("api_id"), 255)
    return SalonRecord(
        company_id=company_id,
        record_id=record_id,
        client_id=_positive(client_obj.get("id", raw.get("client_id"))),
        client_phone=find_phone(_text(client_obj.get("phone", raw.get("phone")), 64) or ""),
        client_name=_text(client_obj.get("name", raw.get("fullname")), 255),
        staff_id=_positive(raw.get("staff_id")),
        services=_services(raw.get("services")),
        starts_at=parse_time(raw.get("datetime"), timezone),
        seance_length=_bounded(raw.get("seance_length", raw.get("length")), 0, 2**31 - 1),
        attendance=_bounded(raw.get("attendance", raw.get("visit_attendance")), -32768, 32767),
        deleted=_deleted(raw.get("deleted")) if deleted is None else deleted,
        api_id=api_id,
        changed_at=change_time(raw, timezone),
        raw=raw,
    )
