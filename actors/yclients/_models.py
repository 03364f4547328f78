"""Typed, frozen views of what YClients returns, and what we send to book.

Parsing is defensive: YClients' answers are documented loosely, so unknown fields are ignored,
numbers may come as strings, and a missing optional field becomes ``None``. A field we cannot
do without (an ``id``) raises ``ValueError``, which the client turns into
``YClientsUnavailable`` (an answer we cannot read is not the caller's fault).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{name} is not an integer: {value!r}")


def _opt_int(value: Any) -> int | None:
    try:
        return _int(value, "value")
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _timezone_name(raw: dict[str, Any]) -> str:
    """An IANA zone name for the salon; YClients gives a name, or an hour offset, or both."""
    name = raw.get("timezone_name")
    if isinstance(name, str) and "/" in name:
        return name
    tz = raw.get("timezone")
    if isinstance(tz, str) and "/" in tz:
        return tz
    offset = _opt_int(tz) if not isinstance(tz, float) else int(tz)
    if offset is not None and -12 <= offset <= 14:
        # POSIX Etc zones have the sign inverted: UTC+3 is "Etc/GMT-3".
        return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return "Europe/Moscow"  # YClients' own default; most salons are on Moscow time


@dataclass(frozen=True)
class SalonDetails:
    """A salon (YClients calls it a company): what we show and the zone reminders run in."""

    id: int
    title: str
    address: str
    phone: str
    timezone: str
    city: str | None = None
    #: The salon's opening hours in its own words ("Ежедневно 10:00–21:00"); "" if not given.
    schedule: str = ""

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> SalonDetails:
        """Build from ``GET company/{id}`` ``data``."""
        city = raw.get("city")
        schedule = raw.get("schedule")
        return cls(
            id=_int(raw.get("id"), "company id"),
            title=_text(raw.get("title")),
            address=_text(raw.get("address")),
            phone=_text(raw.get("phone")),
            timezone=_timezone_name(raw),
            city=city if isinstance(city, str) and city else None,
            schedule=schedule.strip() if isinstance(schedule, str) else "",
        )


def _ids(value: Any) -> tuple[int, ...]:
    """Ids from a list of ids or of objects with an ``id`` (unreadable items skipped)."""
    if not isinstance(value, list):
        return ()
    ids = (_opt_int(item.get("id") if isinstance(item, dict) else item) for item in value)
    return tuple(dict.fromkeys(i for i in ids if i is not None))


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item.strip() for item in value if isinstance(item, str) and item.strip())


def _duration(raw: dict[str, Any]) -> int | None:
    """Seconds: ``seance_length`` (booking API), else ``duration``, else the masters' own."""
    for key in ("seance_length", "duration"):
        seconds = _opt_int(raw.get(key))
        if seconds:
            return seconds
    staff = raw.get("staff")
    if isinstance(staff, list):
        lengths = [
            length
            for item in staff
            if isinstance(item, dict) and (length := _opt_int(item.get("seance_length")))
        ]
        if lengths:
            return max(lengths)
    return None


@dataclass(frozen=True)
class SalonService:
    """A service: prices in the salon's currency (RUB), duration in seconds.

    ``comment`` is the salon's description of it, ``staff_ids`` the masters who do it (given by
    ``company/{id}/services``; empty from ``book_services``), ``synonyms`` the salon's own
    words for it (a field of our fake YClients only; empty from the real one).
    """

    id: int
    title: str
    category_id: int | None
    price_min: Decimal | None
    price_max: Decimal | None
    duration_seconds: int | None
    active: bool
    comment: str = ""
    staff_ids: tuple[int, ...] = ()
    synonyms: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> SalonService:
        """Build from one item of ``GET book_services`` ``data.services`` or of
        ``GET company/{id}/services`` ``data``."""
        active = raw.get("active", True)
        return cls(
            id=_int(raw.get("id"), "service id"),
            title=_text(raw.get("title")),
            category_id=_opt_int(raw.get("category_id")),
            price_min=_money(raw.get("price_min")),
            price_max=_money(raw.get("price_max")),
            duration_seconds=_duration(raw),
            active=bool(active) if not isinstance(active, str) else active not in {"0", ""},
            comment=_text(raw.get("comment")).strip(),
            staff_ids=_ids(raw.get("staff")),
            synonyms=_texts(raw.get("synonyms")),
        )


@dataclass(frozen=True)
class ServiceCategory:
    """A group of services («Парикмахерский зал»); ``staff_ids``: masters doing any of them."""

    id: int
    title: str
    weight: int | None = None
    staff_ids: tuple[int, ...] = ()

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> ServiceCategory:
        """Build from one item of ``GET company/{id}/service_categories`` ``data`` (or of
        ``book_services`` ``data.categories``)."""
        return cls(
            id=_int(raw.get("id"), "category id"),
            title=_text(raw.get("title")),
            weight=_opt_int(raw.get("weight")),
            staff_ids=_ids(raw.get("staff")),
        )


class Attendance(enum.IntEnum):
    """A visit's attendance as YClients counts it (``PUT visits``)."""

    NO_SHOW = -1
    WAITING = 0
    ARRIVED = 1
    CONFIRMED = 2


@dataclass(frozen=True)
class SalonStaff:
    """A master who can be booked."""

    id: int
    name: str
    specialization: str
    bookable: bool
    rating: float | None = None

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> SalonStaff:
        """Build from one item of ``GET book_staff`` ``data``."""
        rating = raw.get("rating")
        return cls(
            id=_int(raw.get("id"), "staff id"),
            name=_text(raw.get("name")),
            specialization=_text(raw.get("specialization")),
            bookable=bool(raw.get("bookable", True)),
            rating=float(rating) if isinstance(rating, int | float) else None,
        )


@dataclass(frozen=True)
class Appointment:
    """One visit in a booking request: services with a master (0 = any) at a time.

    ``datetime`` is a timezone-aware ``datetime`` or the ISO string ``book_times`` returned.
    ``id`` is ours: YClients echoes it next to the record it created.
    """

    services: tuple[int, ...]
    staff_id: int
    datetime: datetime | str
    id: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.datetime, datetime) and self.datetime.tzinfo is None:
            raise ValueError("appointment datetime must be timezone-aware")

    @property
    def iso_datetime(self) -> str:
        """The time as YClients wants it (ISO 8601 with offset)."""
        if isinstance(self.datetime, datetime):
            return self.datetime.isoformat()
        return self.datetime

    @property
    def day(self) -> str:
        """The appointment's date (``YYYY-MM-DD``) in its own offset."""
        return self.iso_datetime[:10]

    def to_api(self) -> dict[str, Any]:
        """The JSON object for ``book_check`` / ``book_record``."""
        return {
            "id": self.id,
            "services": list(self.services),
            "staff_id": self.staff_id,
            "datetime": self.iso_datetime,
        }


@dataclass(frozen=True)
class BookedRecord:
    """A record ``book_record`` created.

    ``recovered`` is true when the booking answer was lost and we found the record by our
    ``api_id`` instead; ``record_hash`` is then unknown.
    """

    appointment_id: int | None
    record_id: int
    record_hash: str | None
    recovered: bool = False

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> BookedRecord:
        """Build from one item of ``book_record``'s ``data`` (``{id, record_id, record_hash}``)."""
        record_hash = raw.get("record_hash")
        return cls(
            appointment_id=_opt_int(raw.get("id")),
            record_id=_int(raw.get("record_id"), "record_id"),
            record_hash=record_hash if isinstance(record_hash, str) else None,
        )

    @classmethod
    def from_record(
        cls, record: dict[str, Any], appointments: tuple[Appointment, ...]
    ) -> BookedRecord:
        """Build from a record found by ``api_id``, matched to our appointment by master+time."""
        staff_id = _opt_int(record.get("staff_id"))
        when = _text(record.get("datetime"))
        appointment_id: int | None = None
        for appt in appointments:
            same_staff = appt.staff_id in (0, staff_id)
            if same_staff and _same_instant(appt.iso_datetime, when):
                appointment_id = appt.id
                break
        if appointment_id is None and len(appointments) == 1:
            appointment_id = appointments[0].id
        return cls(
            appointment_id=appointment_id,
            record_id=_int(record.get("id"), "record id"),
            record_hash=None,
            recovered=True,
        )


def _same_instant(a: str, b: str) -> bool:
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return a == b
