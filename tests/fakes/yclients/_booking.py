"""The fake's booking API (``/api/v1/...``) over the in-memory salons.

Handlers are plain functions (no awaits), so each request's effect is atomic. Error codes
follow the reference: 433 slot taken or not working, 436 no master, 437 overlap in one
request, 438 service gone, 431 bad phone, 434 blacklisted (HTTP 403), 435 no name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ._data import FakeSalon
from ._wire import RecordedRequest, Reply, error, errors, ok

SLOT_STEP = timedelta(minutes=30)


@dataclass
class BookingState:
    """Everything the booking API changes, plus the knobs tests turn."""

    salons: dict[int, FakeSalon]
    today: date | None = None
    blacklist: set[str] = field(default_factory=set)
    leak_other_clients: bool = False
    next_record_id: int = 50_000_001
    next_client_id: int = 3_900
    next_visit_id: int = 70_000_001

    def salon_today(self, salon: FakeSalon) -> date:
        return self.today or datetime.now(ZoneInfo(salon.timezone)).date()


def normalise_phone(raw: Any) -> str | None:
    """Digits with the country code (Russian numbers), or ``None`` if not a phone."""
    if not isinstance(raw, str | int):
        return None
    digits = re.sub(r"\D", "", str(raw))
    if len(digits) == 10 and digits.startswith("9"):
        digits = "7" + digits
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if len(digits) == 11 and digits.startswith("7"):
        return digits
    if 10 <= len(digits) <= 15 and not digits.startswith("7"):
        return digits
    return None


def _now(salon: FakeSalon) -> str:
    return datetime.now(ZoneInfo(salon.timezone)).replace(microsecond=0).isoformat()


def _parse_when(salon: FakeSalon, raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        return None
    tz = ZoneInfo(salon.timezone)
    return when.replace(tzinfo=tz) if when.tzinfo is None else when.astimezone(tz)


def _seance(salon: FakeSalon, service_ids: list[int]) -> int:
    total = 0
    for sid in service_ids:
        service = salon.service(sid)
        total += int(service["seance_length"]) if service else 0
    return total or 3600


def _record_span(record: dict[str, Any]) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(record["datetime"])
    return start, start + timedelta(seconds=int(record["seance_length"]))


def _is_free(
    salon: FakeSalon, staff: dict[str, Any], start: datetime, length: int, today: date
) -> bool:
    """Whether the master works then, within hours, and has no visit overlapping."""
    day = start.date()
    if day < today or day.weekday() in staff.get("days_off", []):
        return False
    opens = start.replace(hour=salon.open_hour, minute=0, second=0, microsecond=0)
    closes = start.replace(hour=salon.close_hour, minute=0, second=0, microsecond=0)
    end = start + timedelta(seconds=length)
    if start < opens or end > closes:
        return False
    for record in salon.records.values():
        if record["deleted"] or record["staff_id"] != staff["id"]:
            continue
        r_start, r_end = _record_span(record)
        if start < r_end and r_start < end:
            return False
    return True


def _can_do(staff: dict[str, Any], service_ids: list[int]) -> bool:
    return all(sid in staff["services"] for sid in service_ids)


def _public_staff(staff: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in staff.items() if k not in ("services", "days_off")}


# -- reads ---------------------------------------------------------------------------------


def company(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    return ok(salon.company())


def book_services(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    services = [s for s in salon.services if s["active"]]
    staff_id = req.param("staff_id")
    if staff_id and staff_id.isdigit() and int(staff_id):
        master = salon.master(int(staff_id))
        if master is None:
            return error(404, "Сотрудник не найден")
        services = [s for s in services if s["id"] in master["services"]]
    wanted = req.int_list("service_ids")
    if wanted:
        services = [s for s in services if s["id"] in wanted]
    used = {s["category_id"] for s in services}
    categories = [c for c in salon.categories if c["id"] in used]
    return ok({"events": [], "services": services, "categories": categories})


def book_staff(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    wanted = req.int_list("service_ids")
    staff = [_public_staff(s) for s in salon.staff if s["bookable"] and _can_do(s, wanted)]
    return ok(staff)


def _days(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> tuple[date, date]:
    today = state.salon_today(salon)
    try:
        first = date.fromisoformat(req.param("date_from") or today.isoformat())
        last = date.fromisoformat(req.param("date_to") or (today + timedelta(days=30)).isoformat())
    except ValueError:
        first, last = today, today + timedelta(days=30)
    return max(first, today), min(last, today + timedelta(days=90))


def _free_times(
    state: BookingState, salon: FakeSalon, staff: dict[str, Any], day: date, length: int
) -> list[datetime]:
    tz = ZoneInfo(salon.timezone)
    today = state.salon_today(salon)
    start = datetime(day.year, day.month, day.day, salon.open_hour, tzinfo=tz)
    out: list[datetime] = []
    while start + timedelta(seconds=length) <= start.replace(hour=salon.close_hour):
        if _is_free(salon, staff, start, length, today):
            out.append(start)
        start += SLOT_STEP
    return out


def book_dates(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    wanted = req.int_list("service_ids")
    length = _seance(salon, wanted)
    staff_id = req.param("staff_id")
    masters = salon.staff
    if staff_id and staff_id.isdigit() and int(staff_id):
        masters = [m for m in salon.staff if m["id"] == int(staff_id)]
    masters = [m for m in masters if m["bookable"] and _can_do(m, wanted)]
    first, last = _days(state, salon, req)
    booking: list[str] = []
    working: list[str] = []
    day = first
    while day <= last:
        works = [m for m in masters if day.weekday() not in m["days_off"]]
        if works:
            working.append(day.isoformat())
        if any(_free_times(state, salon, m, day, length) for m in works):
            booking.append(day.isoformat())
        day += timedelta(days=1)
    return ok({"booking_days": {}, "booking_dates": booking, "working_dates": working})


def book_times(
    state: BookingState, salon: FakeSalon, req: RecordedRequest, staff_id: str, day: str
) -> Reply:
    master = salon.master(int(staff_id))
    if master is None:
        return error(404, "Сотрудник не найден")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        return error(422, "Неверный формат даты")
    wanted = req.int_list("service_ids")
    if not _can_do(master, wanted):
        return ok([])
    length = _seance(salon, wanted)
    times = _free_times(state, salon, master, when, length)
    return ok(
        [
            {"time": t.strftime("%H:%M"), "seance_length": length, "datetime": t.isoformat()}
            for t in times
        ]
    )


# -- checking and booking --------------------------------------------------------------------


def _check(
    state: BookingState, salon: FakeSalon, appointments: Any
) -> tuple[list[tuple[dict[str, Any], dict[str, Any], datetime, int]], list[tuple[int, str]]]:
    """Validate appointments: ``(plan, errors)``; the plan pairs each with master, time, length."""
    if not isinstance(appointments, list) or not appointments:
        return [], [(422, "Не указаны услуги или акции")]
    today = state.salon_today(salon)
    plan: list[tuple[dict[str, Any], dict[str, Any], datetime, int]] = []
    problems: list[tuple[int, str]] = []
    for appt in appointments:
        if not isinstance(appt, dict):
            problems.append((422, "Неверный формат записи"))
            continue
        services = [s for s in appt.get("services") or [] if isinstance(s, int)]
        if not services:
            problems.append((422, "Не указаны услуги или акции"))
            continue
        if any((svc := salon.service(s)) is None or not svc["active"] for s in services):
            problems.append((438, "Нет записи на указанную услугу/акцию"))
            continue
        when = _parse_when(salon, appt.get("datetime"))
        if when is None:
            problems.append((422, "Неверный формат даты и времени"))
            continue
        length = _seance(salon, services)
        staff_id = appt.get("staff_id")
        if staff_id == 0:
            candidates = [m for m in salon.staff if m["bookable"] and _can_do(m, services)]
            free = [m for m in candidates if _is_free(salon, m, when, length, today)]
            if not free:
                problems.append((436, "Нет сотрудников доступных для записи"))
                continue
            master = free[0]
        else:
            found = salon.master(staff_id) if isinstance(staff_id, int) else None
            if found is None or not _can_do(found, services):
                problems.append((436, "Нет сотрудников доступных для записи"))
                continue
            master = found
            if not _is_free(salon, master, when, length, today):
                stamp = when.strftime("%d.%m.%Y %H:%M")
                problems.append(
                    (
                        433,
                        f"Сотрудник {master['name']} ({master['id']}) не может быть записан "
                        f"на {stamp}. Выбранное время уже занято или нерабочее.",
                    )
                )
                continue
        end = when + timedelta(seconds=length)
        for other, other_master, other_when, other_length in plan:
            other_end = other_when + timedelta(seconds=other_length)
            if other_master["id"] == master["id"] and when < other_end and other_when < end:
                problems.append((437, f"Пересечение с записью {other.get('id')} в этом же запросе"))
                break
        else:
            plan.append((appt, master, when, length))
    return plan, problems


def book_check(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    _, problems = _check(state, salon, body.get("appointments"))
    if problems:
        return errors(422, problems)
    return Reply(201, {"success": True, "data": None, "meta": {"message": "Created"}})


def _find_or_create_client(
    state: BookingState, salon: FakeSalon, phone: str, name: str, email: str
) -> dict[str, Any]:
    for client in salon.clients.values():
        if client["phone"] == phone:
            return client
    cid = state.next_client_id
    state.next_client_id += 1
    client = {"id": cid, "name": name, "phone": phone, "email": email, "visits": 0}
    salon.clients[cid] = client
    return client


def book_record(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    fullname = body.get("fullname")
    if not isinstance(fullname, str) or not fullname.strip():
        return error(422, "Не указано имя клиента", (435,))
    phone = normalise_phone(body.get("phone"))
    if phone is None:
        return error(422, "Неверный формат номера телефона", (431,))
    if phone in state.blacklist:
        return error(403, "Запись невозможна: клиент в чёрном списке", (434,))
    plan, problems = _check(state, salon, body.get("appointments"))
    if problems:
        return errors(422, problems)
    email = body.get("email") if isinstance(body.get("email"), str) else ""
    client = _find_or_create_client(state, salon, phone, fullname.strip(), email or "")
    api_id = body.get("api_id")
    created: list[dict[str, Any]] = []
    now = _now(salon)
    for appt, master, when, length in plan:
        rid = state.next_record_id
        state.next_record_id += 1
        services = []
        for sid in appt["services"]:
            service = salon.service(sid)
            assert service is not None
            services.append(
                {
                    "id": sid,
                    "title": service["title"],
                    "cost": service["price_min"],
                    "first_cost": service["price_min"],
                    "amount": 1,
                }
            )
        salon.records[rid] = {
            "id": rid,
            "company_id": salon.id,
            "staff_id": master["id"],
            "staff": {
                "id": master["id"],
                "name": master["name"],
                "specialization": master["specialization"],
            },
            "services": services,
            "client": {
                "id": client["id"],
                "name": client["name"],
                "phone": client["phone"],
                "email": client["email"],
            },
            "datetime": when.isoformat(),
            "date": when.strftime("%Y-%m-%d %H:%M:%S"),
            "seance_length": length,
            "length": length,
            "attendance": 0,
            "confirmed": 1,
            "visit_id": state.next_visit_id,
            "deleted": False,
            "online": True,
            "api_id": str(api_id) if api_id is not None else "",
            "comment": body.get("comment") if isinstance(body.get("comment"), str) else "",
            "create_date": now,
            "last_change_date": now,
        }
        state.next_visit_id += 1
        digest = hashlib.sha256(f"{salon.id}:{rid}".encode()).hexdigest()[:32]
        created.append({"id": appt.get("id"), "record_id": rid, "record_hash": digest})
    return ok(created, status=201)


# -- records -------------------------------------------------------------------------------


def records(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    items = [r for r in salon.records.values() if not r["deleted"]]
    client_id = req.param("client_id")
    if client_id and client_id.isdigit() and not state.leak_other_clients:
        items = [r for r in items if r["client"]["id"] == int(client_id)]
    start, end = req.param("start_date"), req.param("end_date")
    if start:
        items = [r for r in items if r["datetime"][:10] >= start[:10]]
    if end:
        items = [r for r in items if r["datetime"][:10] <= end[:10]]
    changed_after = _parse_when(salon, req.param("changed_after"))
    if changed_after is not None:
        items = [r for r in items if datetime.fromisoformat(r["last_change_date"]) > changed_after]
    items.sort(key=lambda r: (r["datetime"], r["id"]))
    page = int(req.param("page") or 1) if (req.param("page") or "1").isdigit() else 1
    count = int(req.param("count") or 25) if (req.param("count") or "25").isdigit() else 25
    count = max(1, min(count, 300))
    chunk = items[(max(page, 1) - 1) * count : max(page, 1) * count]
    return ok(chunk, {"page": page, "total_count": len(items), "count": len(items)})


def record_get(
    state: BookingState, salon: FakeSalon, req: RecordedRequest, record_id: str
) -> Reply:
    record = salon.records.get(int(record_id))
    if record is None:
        return error(404, "Запись не найдена")
    return ok(record)


def record_delete(
    state: BookingState, salon: FakeSalon, req: RecordedRequest, record_id: str
) -> Reply:
    record = salon.records.get(int(record_id))
    if record is None or record["deleted"]:
        return error(404, "Запись не найдена")
    record["deleted"] = True
    record["last_change_date"] = _now(salon)
    return Reply(204)


# -- clients -------------------------------------------------------------------------------


def clients_search(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    page_size = body.get("page_size", 25)
    if not isinstance(page_size, int) or not 1 <= page_size <= 200:
        return error(422, "page_size должен быть от 1 до 200")
    page = body.get("page", 1) if isinstance(body.get("page", 1), int) else 1
    value = ""
    for f in body.get("filters") or []:
        if isinstance(f, dict) and f.get("type") == "quick_search":
            state_ = f.get("state")
            if isinstance(state_, dict) and isinstance(state_.get("value"), str):
                value = state_["value"].strip()
    digits = re.sub(r"\D", "", value)
    found = []
    for client in salon.clients.values():
        if (
            not value
            or value.lower() in client["name"].lower()
            or (len(digits) >= 4 and digits in client["phone"])
        ):
            found.append(client)
    chunk = found[(max(page, 1) - 1) * page_size : max(page, 1) * page_size]
    return ok(chunk, {"total_count": len(found)})


def client_create(state: BookingState, salon: FakeSalon, req: RecordedRequest) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return error(422, "Не указано имя клиента")
    phone = normalise_phone(body.get("phone"))
    if phone is None:
        return error(422, "Неверный формат номера телефона", (431,))
    if any(c["phone"] == phone for c in salon.clients.values()):
        return error(422, "Клиент с таким номером телефона уже существует")
    email = body.get("email") if isinstance(body.get("email"), str) else ""
    client = _find_or_create_client(state, salon, phone, name.strip(), email or "")
    if isinstance(body.get("comment"), str):
        client["comment"] = body["comment"]
    return ok(client, status=201)
