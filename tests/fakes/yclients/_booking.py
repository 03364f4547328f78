"""The fake's booking API (``/api/v1/...``) over the in-memory salons.

Handlers are plain functions (no awaits), so each request's effect is atomic. Error codes
follow the reference: 433 slot taken or not working, 436 no master, 437 overlap in one
request, 438 service gone, 431 bad phone, 434 blacklisted (HTTP 403), 435 no name.

Free times: a grid of the salon's step (30 minutes unless the catalog says otherwise) from the
start of the master's working hours, the whole visit (all its services' durations summed)
before the end of them, never before the salon's local "now", never overlapping a visit of
that master. Moving a record (``PUT book_record``) runs the same checks, the record itself
aside.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ._data import PRIVATE_STAFF_KEYS, FakeSalon
from ._wire import RecordedRequest, Reply, error, errors, ok

#: Attendance values ``PUT visits`` accepts: no-show, waiting, arrived, confirmed.
ATTENDANCE = frozenset({-1, 0, 1, 2})


@dataclass
class BookingState:
    """Everything the booking API changes, plus the knobs tests turn."""

    salons: dict[int, FakeSalon]
    #: Fixes "today" in every salon (its local "now" is then that day's midnight).
    today: date | None = None
    #: Fixes "now" (an aware datetime; read in each salon's zone). Wins over ``today``.
    now: datetime | None = None
    blacklist: set[str] = field(default_factory=set)
    leak_other_clients: bool = False
    next_record_id: int = 50_000_001
    next_client_id: int = 3_900
    next_visit_id: int = 70_000_001

    def __post_init__(self) -> None:
        # Ids go on after those the salons already hold (a catalog's records and clients).
        records = [r for s in self.salons.values() for r in s.records.values()]
        clients = [c for s in self.salons.values() for c in s.clients]
        self.next_record_id = max([self.next_record_id, *(r["id"] + 1 for r in records)])
        self.next_visit_id = max([self.next_visit_id, *(r["visit_id"] + 1 for r in records)])
        self.next_client_id = max([self.next_client_id, *(c + 1 for c in clients)])

    def salon_now(self, salon: FakeSalon) -> datetime:
        """The salon's local time now (aware), as the knobs set it."""
        tz = ZoneInfo(salon.timezone)
        if self.now is not None:
            return self.now.astimezone(tz)
        if self.today is not None:
            return datetime(self.today.year, self.today.month, self.today.day, tzinfo=tz)
        return datetime.now(tz)

    def salon_today(self, salon: FakeSalon) -> date:
        return self.salon_now(salon).date()


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


def _stamp(salon: FakeSalon) -> str:
    """A change time: the real wall clock in the salon's zone (``changed_after`` compares it)."""
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


def _day_start(salon: FakeSalon, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(salon.timezone))


def _busy(
    salon: FakeSalon, staff: dict[str, Any], ignore: int | None = None
) -> list[tuple[datetime, datetime]]:
    """The spans of the master's live visits (the record ``ignore`` aside)."""
    return [
        _record_span(record)
        for record in salon.records.values()
        if not record["deleted"] and record["staff_id"] == staff["id"] and record["id"] != ignore
    ]


def _is_free(
    state: BookingState,
    salon: FakeSalon,
    staff: dict[str, Any],
    start: datetime,
    length: int,
    *,
    ignore: int | None = None,
    busy: list[tuple[datetime, datetime]] | None = None,
) -> bool:
    """Whether the master works then, within their hours, not in the past, and has no visit
    overlapping (the record ``ignore`` aside: the one being moved). ``busy``: the master's
    visits, when the caller already gathered them (``_busy``)."""
    start = start.astimezone(ZoneInfo(salon.timezone))
    day = start.date()
    if start < state.salon_now(salon) or not salon.works_on(staff, day):
        return False
    first, last = salon.working_minutes(staff)
    midnight = _day_start(salon, day)
    end = start + timedelta(seconds=length)
    if start < midnight + timedelta(minutes=first) or end > midnight + timedelta(minutes=last):
        return False
    spans = busy if busy is not None else _busy(salon, staff, ignore)
    return not any(start < r_end and r_start < end for r_start, r_end in spans)


def _can_do(staff: dict[str, Any], service_ids: list[int]) -> bool:
    return all(sid in staff["services"] for sid in service_ids)


def _public_staff(staff: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in staff.items() if k not in PRIVATE_STAFF_KEYS}


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
    if not salon.works_on(staff, day):
        return []
    first, last = salon.working_minutes(staff)
    midnight = _day_start(salon, day)
    step = timedelta(minutes=max(1, salon.step_minutes))
    start, end = midnight + timedelta(minutes=first), midnight + timedelta(minutes=last)
    busy = [
        (r_start, r_end)
        for r_start, r_end in _busy(salon, staff)
        if r_start < end and start < r_end  # only the visits of that working day
    ]
    out: list[datetime] = []
    while start + timedelta(seconds=length) <= end:
        if _is_free(state, salon, staff, start, length, busy=busy):
            out.append(start)
        start += step
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
        works = [m for m in masters if salon.works_on(m, day)]
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
            free = [m for m in candidates if _is_free(state, salon, m, when, length)]
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
            if not _is_free(state, salon, master, when, length):
                problems.append(_taken(master, when))
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


def _taken(master: dict[str, Any], when: datetime) -> tuple[int, str]:
    stamp = when.strftime("%d.%m.%Y %H:%M")
    return (
        433,
        f"Сотрудник {master['name']} ({master['id']}) не может быть записан "
        f"на {stamp}. Выбранное время уже занято или нерабочее.",
    )


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


def make_record(
    state: BookingState,
    salon: FakeSalon,
    *,
    master: dict[str, Any],
    service_ids: list[int],
    client: dict[str, Any],
    when: datetime,
    length: int,
    api_id: str = "",
    comment: str = "",
    online: bool = True,
) -> dict[str, Any]:
    """Store a new record (a visit) in the salon and return it, shaped as ``GET record``."""
    rid = state.next_record_id
    state.next_record_id += 1
    services = []
    for sid in service_ids:
        service = salon.service(sid)
        if service is None:
            raise ValueError(f"salon {salon.id} has no service {sid}")
        services.append(
            {
                "id": sid,
                "title": service["title"],
                "cost": service["price_min"],
                "first_cost": service["price_min"],
                "amount": 1,
            }
        )
    now = _stamp(salon)
    record = {
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
        "online": online,
        "api_id": api_id,
        "comment": comment,
        "create_date": now,
        "last_change_date": now,
    }
    state.next_visit_id += 1
    salon.records[rid] = record
    return record


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
    comment = body["comment"] if isinstance(body.get("comment"), str) else ""
    created: list[dict[str, Any]] = []
    for appt, master, when, length in plan:
        record = make_record(
            state,
            salon,
            master=master,
            service_ids=appt["services"],
            client=client,
            when=when,
            length=length,
            api_id=str(api_id) if api_id is not None else "",
            comment=comment,
        )
        digest = hashlib.sha256(f"{salon.id}:{record['id']}".encode()).hexdigest()[:32]
        created.append({"id": appt.get("id"), "record_id": record["id"], "record_hash": digest})
    return ok(created, status=201)


def book_record_move(
    state: BookingState, salon: FakeSalon, req: RecordedRequest, record_id: str
) -> Reply:
    """``PUT book_record/{company_id}/{record_id}`` ``{datetime, comment}``: move a visit.

    Same master, services and length; the new time must be free for that master (433
    otherwise, nothing changes). The record keeps its id; ``last_change_date`` moves.
    """
    record = salon.records.get(int(record_id))
    if record is None or record["deleted"]:
        return error(404, "Запись не найдена")
    body = req.json if isinstance(req.json, dict) else {}
    when = _parse_when(salon, body.get("datetime"))
    if when is None:
        return error(422, "Неверный формат даты и времени")
    master = salon.master(record["staff_id"])
    if master is None:
        return errors(422, [(436, "Нет сотрудников доступных для записи")])
    if not _is_free(state, salon, master, when, int(record["seance_length"]), ignore=record["id"]):
        return errors(422, [_taken(master, when)])
    record["datetime"] = when.isoformat()
    record["date"] = when.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(body.get("comment"), str):
        record["comment"] = body["comment"]
    record["last_change_date"] = _stamp(salon)
    return ok(record)


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
    record["last_change_date"] = _stamp(salon)
    return Reply(204)


def visit_attendance(
    state: BookingState, req: RecordedRequest, visit_id: str, record_id: str
) -> Reply:
    """``PUT visits/{visit_id}/{record_id}`` ``{attendance, comment}``: mark a visit.

    ``attendance`` is 2 confirmed, 1 arrived, 0 waiting or -1 no-show.
    """
    found = next(
        (
            (salon, rec)
            for salon in state.salons.values()
            if (rec := salon.records.get(int(record_id))) is not None
        ),
        None,
    )
    if found is None or found[1]["deleted"] or found[1]["visit_id"] != int(visit_id):
        return error(404, "Визит не найден")
    salon, record = found
    if salon.installation["status"] == "uninstalled":
        return error(403, "Нет доступа к филиалу: приложение отключено")
    body = req.json if isinstance(req.json, dict) else {}
    attendance = body.get("attendance")
    if isinstance(attendance, bool) or attendance not in ATTENDANCE:
        return error(422, "Неверное значение attendance")
    record["attendance"] = attendance
    if isinstance(body.get("comment"), str):
        record["comment"] = body["comment"]
    record["last_change_date"] = _stamp(salon)
    return ok(record)


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
    # A whole Russian number matches however it is written (+7 / 8 / without the code).
    national = digits[-10:] if len(digits) >= 10 else digits
    found = []
    for client in salon.clients.values():
        if (
            not value
            or value.lower() in client["name"].lower()
            or (len(digits) >= 4 and (digits in client["phone"] or national in client["phone"]))
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
