"""In-memory salons for the fake YClients: believable Russian data, fresh for every fake.

Three salons keyed by their YClients id (``--catalog`` replaces them, see ``_catalog.py``). Ids
of services, staff and clients are distinct across salons (as in YClients, where they are
global). Durations are in seconds, prices in RUB.

A master (a ``staff`` dict) carries, besides what YClients shows, the fake's own keys (never
served): ``services`` (ids the master does), ``days_off`` (weekdays, 0 = Monday),
``off_dates`` (ISO dates the master does not work) and ``work_minutes`` (``[start, end]`` in
minutes from midnight, overriding the salon's opening hours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

#: The master's keys the fake keeps for itself (never in an answer).
PRIVATE_STAFF_KEYS = frozenset({"services", "days_off", "off_dates", "work_minutes"})

LOTOS_ID = 101001
ORCHID_ID = 101002
BORODA_ID = 101003


@dataclass
class FakeSalon:
    """One salon's data and the app's installation in it."""

    id: int
    title: str
    address: str
    city: str
    phone: str
    timezone: str
    services: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    staff: list[dict[str, Any]]
    clients: dict[int, dict[str, Any]] = field(default_factory=dict)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    open_hour: int = 10
    close_hour: int = 21
    installation: dict[str, Any] = field(default_factory=lambda: {"status": "pending"})
    #: Minutes past ``open_hour`` / ``close_hour`` (a salon open 9:30–20:30).
    open_minute: int = 0
    close_minute: int = 0
    #: Free times are offered on this grid, in minutes from opening.
    step_minutes: int = 30
    #: Catalog record keys (``"rustam-haircut"``) to record ids, for tests.
    record_keys: dict[str, int] = field(default_factory=dict)

    def company(self) -> dict[str, Any]:
        """``GET company/{id}`` data."""
        return {
            "id": self.id,
            "title": self.title,
            "public_title": self.title,
            "short_descr": "Салон красоты",
            "country": "Россия",
            "city": self.city,
            "address": self.address,
            "phone": self.phone,
            "phones": [self.phone],
            "timezone": self.timezone,
            "timezone_name": self.timezone,
            "currency_short_title": "₽",
            "schedule": f"Ежедневно {_clock(self.opens)}–{_clock(self.closes)}",
            "active": 1,
        }

    @property
    def opens(self) -> int:
        """Opening time, minutes from midnight."""
        return self.open_hour * 60 + self.open_minute

    @property
    def closes(self) -> int:
        """Closing time, minutes from midnight."""
        return self.close_hour * 60 + self.close_minute

    def working_minutes(self, staff: dict[str, Any]) -> tuple[int, int]:
        """A master's working span on a working day, minutes from midnight."""
        own = staff.get("work_minutes")
        if own:
            return int(own[0]), int(own[1])
        return self.opens, self.closes

    def works_on(self, staff: dict[str, Any], day: date) -> bool:
        """Whether a master works that day (weekly days off and one-off days off)."""
        if day.weekday() in staff.get("days_off", ()):
            return False
        return day.isoformat() not in staff.get("off_dates", ())

    def service(self, service_id: int) -> dict[str, Any] | None:
        return next((s for s in self.services if s["id"] == service_id), None)

    def master(self, staff_id: int) -> dict[str, Any] | None:
        return next((s for s in self.staff if s["id"] == staff_id), None)


def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _service(
    sid: int, title: str, category: int, low: int, high: int, minutes: int, active: bool = True
) -> dict[str, Any]:
    return {
        "id": sid,
        "title": title,
        "category_id": category,
        "price_min": low,
        "price_max": high,
        "discount": 0,
        "comment": "",
        "weight": 0,
        "active": 1 if active else 0,
        "seance_length": minutes * 60,
    }


def _staff(
    sid: int,
    name: str,
    specialization: str,
    services: list[int],
    rating: float,
    days_off: tuple[int, ...] = (),
) -> dict[str, Any]:
    return {
        "id": sid,
        "name": name,
        "specialization": specialization,
        "bookable": True,
        "rating": rating,
        "votes_count": 40 + sid % 50,
        "avatar": f"https://assets.yclients.com/masters/origin/{sid}.jpg",
        "information": "",
        # Not in YClients' answer: which services the master does, and weekdays off (0=Mon).
        "services": services,
        "days_off": list(days_off),
    }


def _client(cid: int, name: str, phone: str, email: str = "") -> dict[str, Any]:
    return {"id": cid, "name": name, "phone": phone, "email": email, "visits": 3}


def _lotos() -> FakeSalon:
    return FakeSalon(
        id=LOTOS_ID,
        title="Салон красоты «Лотос»",
        address="г. Москва, ул. Тверская, д. 12, стр. 1",
        city="Москва",
        phone="+7 495 123-45-67",
        timezone="Europe/Moscow",
        categories=[
            {"id": 10, "title": "Парикмахерские услуги"},
            {"id": 11, "title": "Ногтевой сервис"},
            {"id": 12, "title": "Брови и ресницы"},
        ],
        services=[
            _service(1001, "Стрижка женская", 10, 1500, 2500, 60),
            _service(1002, "Стрижка мужская", 10, 900, 1200, 45),
            _service(1003, "Окрашивание волос в один тон", 10, 3500, 7000, 120),
            _service(1004, "Укладка", 10, 1000, 1500, 30),
            _service(1005, "Маникюр классический", 11, 1200, 1200, 60),
            _service(1006, "Покрытие гель-лаком", 11, 1800, 1800, 90),
            _service(1007, "Ламинирование ресниц", 12, 2500, 2500, 60, active=False),
        ],
        staff=[
            _staff(2001, "Анна Смирнова", "Парикмахер-стилист", [1001, 1002, 1004], 4.9, (0,)),
            _staff(2002, "Елена Кузнецова", "Мастер маникюра", [1005, 1006], 4.8, (6,)),
            _staff(2003, "Ольга Иванова", "Колорист", [1001, 1003, 1004], 4.7),
        ],
        clients={
            3001: _client(3001, "Мария Петрова", "79161234567", "maria.petrova@example.ru"),
            3002: _client(3002, "Ирина Соколова", "79031112233"),
        },
    )


def _orchid() -> FakeSalon:
    return FakeSalon(
        id=ORCHID_ID,
        title="Студия красоты «Орхидея»",
        address="г. Москва, Ленинский проспект, д. 45",
        city="Москва",
        phone="+7 495 987-65-43",
        timezone="Europe/Moscow",
        categories=[{"id": 20, "title": "Косметология"}, {"id": 21, "title": "Массаж"}],
        services=[
            _service(1101, "Чистка лица", 20, 3000, 3500, 75),
            _service(1102, "Массаж спины", 21, 2000, 2000, 45),
            _service(1103, "Пилинг", 20, 2500, 4000, 60),
        ],
        staff=[
            _staff(2101, "Наталья Волкова", "Косметолог", [1101, 1103], 5.0),
            _staff(2102, "Дмитрий Орлов", "Массажист", [1102], 4.6, (0, 1)),
        ],
        clients={3101: _client(3101, "Светлана Морозова", "79265554433")},
        open_hour=9,
        close_hour=20,
    )


def _boroda() -> FakeSalon:
    return FakeSalon(
        id=BORODA_ID,
        title="Барбершоп «Борода»",
        address="г. Санкт-Петербург, Невский проспект, д. 88",
        city="Санкт-Петербург",
        phone="+7 812 600-70-80",
        timezone="Europe/Moscow",
        categories=[{"id": 30, "title": "Барбер"}],
        services=[
            _service(1201, "Мужская стрижка", 30, 1800, 2200, 60),
            _service(1202, "Стрижка бороды", 30, 1000, 1000, 30),
            _service(1203, "Королевское бритьё", 30, 1500, 1500, 45),
        ],
        staff=[
            _staff(2201, "Алексей Соколов", "Барбер", [1201, 1202, 1203], 4.9),
            _staff(2202, "Игорь Лебедев", "Барбер", [1201, 1202], 4.5),
        ],
        clients={3201: _client(3201, "Павел Никитин", "79817778899")},
    )


def seed_salons() -> dict[int, FakeSalon]:
    """Fresh salons, keyed by salon (company) id."""
    return {s.id: s for s in (_lotos(), _orchid(), _boroda())}
