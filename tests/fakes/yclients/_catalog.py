"""Salons from a catalog file (``--catalog FILE``), in the format of
``shared/assistant/catalog.example.json``.

The file is ``{"salons": [...]}`` (other top-level keys, such as ``about``, are ignored). Per
salon: ``id``, ``title``, ``timezone`` (IANA), ``open_hour`` / ``close_hour`` (an hour, or
``"HH:MM"``), optional ``step`` (minutes between offered times, 30 by default), ``address``,
``city``, ``phone``, ``categories``, ``services``, ``staff``, ``clients``, ``records``.

- A service: ``id``, ``title``, ``category_id``, ``price_min``, ``price_max``, ``minutes``,
  ``staff`` (the masters who do it; all of them when absent), ``comment`` (its description),
  ``synonyms`` (the salon's own words for it), ``active``.
- A master: ``id``, ``name``, ``specialization``, ``days_off`` (weekdays: ``mon``..``sun``),
  ``off_days`` (day offsets from today), ``hours`` (``[start, end]``, overriding the salon's).
- A client: ``id``, ``name``, ``phone``.
- A record: ``key`` (how tests name it), ``client_id``, ``staff_id``, ``services``, ``day``
  (offset from today) and ``time`` (``"HH:MM"``), both in the salon's zone.

Relative days are resolved against "today" in each salon's zone when the catalog is loaded.
Unknown keys are ignored; a missing or malformed needed one raises :class:`CatalogError`
naming where it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._booking import BookingState, make_record, normalise_phone
from ._data import FakeSalon, _client, _service, _staff

WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("mon", "monday", "пн"),
            ("tue", "tuesday", "вт"),
            ("wed", "wednesday", "ср"),
            ("thu", "thursday", "чт"),
            ("fri", "friday", "пт"),
            ("sat", "saturday", "сб"),
            ("sun", "sunday", "вс"),
        )
    )
    for name in names
}

CatalogSource = str | os.PathLike[str] | Mapping[str, Any]


class CatalogError(ValueError):
    """A catalog the fake cannot serve; the message says where and what is wrong."""


def load_catalog(source: CatalogSource, *, now: datetime | None = None) -> dict[int, FakeSalon]:
    """Salons (with their clients and records) from a catalog file path or its parsed JSON.

    ``now`` (aware) fixes the moment relative days are counted from; the real clock otherwise.
    """
    data = _read(source)
    salons_raw = data.get("salons")
    if not isinstance(salons_raw, list) or not salons_raw:
        raise CatalogError("the catalog needs a non-empty 'salons' list")
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise CatalogError("'now' must be timezone-aware")
    salons: dict[int, FakeSalon] = {}
    pending: list[tuple[FakeSalon, list[Any], date]] = []
    for index, raw in enumerate(salons_raw):
        where = f"salons[{index}]"
        salon, today = _salon(_mapping(raw, where), where, moment)
        if salon.id in salons:
            raise CatalogError(f"{where}: salon id {salon.id} appears twice")
        salons[salon.id] = salon
        pending.append((salon, _list(raw.get("records"), f"{where}.records"), today))
    state = BookingState(salons)
    for salon, records, today in pending:
        for index, raw in enumerate(records):
            _record(state, salon, _mapping(raw, f"salon {salon.id} records[{index}]"), today)
    return salons


def _read(source: CatalogSource) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CatalogError(f"the catalog {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"the catalog {path} is not a JSON object")
    return data


# -- small readers ----------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(f"{where}: expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogError(f"{where}: expected a list")
    return value


def _int(raw: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _str(raw: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise CatalogError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _clock(value: Any, where: str) -> int:
    """Minutes from midnight from an hour (``10``) or ``"HH:MM"``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24:
        return value * 60
    if isinstance(value, str):
        hours, _, minutes = value.strip().partition(":")
        if hours.isdigit() and (minutes or "0").isdigit():
            total = int(hours) * 60 + int(minutes or 0)
            if 0 <= total <= 24 * 60 and int(minutes or 0) < 60:
                return total
    raise CatalogError(f"{where}: expected an hour or 'HH:MM', got {value!r}")


# -- salons -----------------------------------------------------------------------------------


def _salon(raw: Mapping[str, Any], where: str, moment: datetime) -> tuple[FakeSalon, date]:
    salon_id = _int(raw, "id", where)
    zone_name = _str(raw, "timezone", where, "Europe/Moscow")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CatalogError(f"{where}.timezone: unknown zone {zone_name!r}") from exc
    today = moment.astimezone(zone).date()
    opens = _clock(raw.get("open_hour", 10), f"{where}.open_hour")
    closes = _clock(raw.get("close_hour", 21), f"{where}.close_hour")
    if closes <= opens:
        raise CatalogError(f"{where}: closes before it opens")
    step = raw.get("step", raw.get("step_minutes", 30))
    if isinstance(step, bool) or not isinstance(step, int) or not 5 <= step <= 240:
        raise CatalogError(f"{where}.step: expected minutes between 5 and 240, got {step!r}")
    categories = []
    for i, c in enumerate(_list(raw.get("categories"), f"{where}.categories")):
        at = f"{where}.categories[{i}]"
        category = _mapping(c, at)
        categories.append({"id": _int(category, "id", at), "title": _str(category, "title", at)})
    staff = [
        _master(_mapping(m, f"{where}.staff[{i}]"), f"{where}.staff[{i}]", today)
        for i, m in enumerate(_list(raw.get("staff"), f"{where}.staff"))
    ]
    staff_ids = {m["id"] for m in staff}
    services = []
    for i, s in enumerate(_list(raw.get("services"), f"{where}.services")):
        service, masters = _service_of(
            _mapping(s, f"{where}.services[{i}]"), f"{where}.services[{i}]"
        )
        unknown = set(masters or ()) - staff_ids
        if unknown:
            raise CatalogError(f"{where}.services[{i}].staff: no master {sorted(unknown)}")
        for master in staff:
            if masters is None or master["id"] in masters:
                master["services"].append(service["id"])
        services.append(service)
    clients: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(_list(raw.get("clients"), f"{where}.clients")):
        client = _client_of(_mapping(c, f"{where}.clients[{i}]"), f"{where}.clients[{i}]")
        clients[client["id"]] = client
    salon = FakeSalon(
        id=salon_id,
        title=_str(raw, "title", where),
        address=_str(raw, "address", where, ""),
        city=_str(raw, "city", where, ""),
        phone=_str(raw, "phone", where, ""),
        timezone=zone_name,
        services=services,
        categories=categories,
        staff=staff,
        clients=clients,
        open_hour=opens // 60,
        open_minute=opens % 60,
        close_hour=closes // 60,
        close_minute=closes % 60,
        step_minutes=step,
    )
    return salon, today


def _service_of(raw: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[int] | None]:
    low = _int(raw, "price_min", where, 0)
    service = _service(
        _int(raw, "id", where),
        _str(raw, "title", where),
        _int(raw, "category_id", where, 0),
        low,
        _int(raw, "price_max", where, low),
        _int(raw, "minutes", where, 60),
        active=bool(raw.get("active", True)),
    )
    service["comment"] = _str(raw, "comment", where, "")
    synonyms = _list(raw.get("synonyms"), f"{where}.synonyms")
    if not all(isinstance(s, str) for s in synonyms):
        raise CatalogError(f"{where}.synonyms: expected strings")
    service["synonyms"] = list(synonyms)
    masters = raw.get("staff")
    if masters is None:
        return service, None
    ids = _list(masters, f"{where}.staff")
    if not all(isinstance(m, int) and not isinstance(m, bool) for m in ids):
        raise CatalogError(f"{where}.staff: expected master ids")
    return service, list(ids)


def _master(raw: Mapping[str, Any], where: str, today: date) -> dict[str, Any]:
    weekdays: list[int] = []
    for day in _list(raw.get("days_off"), f"{where}.days_off"):
        number = WEEKDAYS.get(day.strip().lower()) if isinstance(day, str) else None
        if number is None:
            raise CatalogError(f"{where}.days_off: {day!r} is not a weekday (mon..sun)")
        weekdays.append(number)
    rating = raw.get("rating", 4.8)
    master = _staff(
        _int(raw, "id", where),
        _str(raw, "name", where),
        _str(raw, "specialization", where, ""),
        [],
        float(rating) if isinstance(rating, int | float) else 4.8,
        tuple(weekdays),
    )
    master["bookable"] = bool(raw.get("bookable", True))
    offsets = _list(raw.get("off_days"), f"{where}.off_days")
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in offsets):
        raise CatalogError(f"{where}.off_days: expected day offsets")
    master["off_dates"] = sorted({(today + timedelta(days=d)).isoformat() for d in offsets})
    hours = raw.get("hours")
    if hours is not None:
        span = _list(hours, f"{where}.hours")
        if len(span) != 2:
            raise CatalogError(f"{where}.hours: expected [start, end]")
        start, end = _clock(span[0], f"{where}.hours[0]"), _clock(span[1], f"{where}.hours[1]")
        if end <= start:
            raise CatalogError(f"{where}.hours: ends before it starts")
        master["work_minutes"] = [start, end]
    return master


def _client_of(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    phone = normalise_phone(raw.get("phone"))
    if phone is None:
        raise CatalogError(f"{where}.phone: not a phone number: {raw.get('phone')!r}")
    return _client(
        _int(raw, "id", where), _str(raw, "name", where), phone, _str(raw, "email", where, "")
    )


def _record(state: BookingState, salon: FakeSalon, raw: Mapping[str, Any], today: date) -> None:
    where = f"salon {salon.id} record {raw.get('key', '?')!r}"
    client = salon.clients.get(_int(raw, "client_id", where))
    if client is None:
        raise CatalogError(f"{where}: no client {raw.get('client_id')!r} in the salon")
    master = salon.master(_int(raw, "staff_id", where))
    if master is None:
        raise CatalogError(f"{where}: no master {raw.get('staff_id')!r} in the salon")
    service_ids = _list(raw.get("services"), f"{where}.services")
    if not service_ids or any(not isinstance(s, int) or not salon.service(s) for s in service_ids):
        raise CatalogError(f"{where}.services: expected ids of the salon's services")
    minutes = _clock(_str(raw, "time", where), f"{where}.time")
    day = today + timedelta(days=_int(raw, "day", where))
    when = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(salon.timezone)) + timedelta(
        minutes=minutes
    )
    length = sum(
        int(service["seance_length"]) for s in service_ids if (service := salon.service(s))
    )
    record = make_record(
        state,
        salon,
        master=master,
        service_ids=service_ids,
        client=client,
        when=when,
        length=length,
        online=False,
    )
    key = raw.get("key")
    if isinstance(key, str) and key:
        if key in salon.record_keys:
            raise CatalogError(f"{where}: the key appears twice")
        salon.record_keys[key] = record["id"]
