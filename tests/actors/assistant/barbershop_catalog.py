"""A second salon for the understanding tests, unlike the example one: a barbershop in
Yekaterinburg (UTC+5) with other masters, combined services and its own synonyms, so no rule
is tuned to one salon."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from actors.assistant._catalog import AssistantCatalog, Category, Master, SalonCard, Service

BARBERSHOP = 777300


def _service(
    sid: int,
    title: str,
    category: int,
    price: int,
    minutes: int,
    staff: tuple[int, ...],
    *,
    synonyms: tuple[str, ...] = (),
    description: str = "",
) -> Service:
    return Service(
        id=sid,
        title=title,
        category_id=category,
        price_min=Decimal(price),
        price_max=Decimal(price),
        minutes=minutes,
        description=description,
        staff_ids=staff,
        synonyms=synonyms,
    )


def barbershop_catalog() -> AssistantCatalog:
    """«Борода и Ко», Екатеринбург: haircuts, beard, grooming; four masters."""
    card = SalonCard(
        company_id=BARBERSHOP,
        salon_id=BARBERSHOP,
        title="Барбершоп «Борода и Ко»",
        address="г. Екатеринбург, ул. Малышева, д. 5",
        phone="+7 343 300-20-20",
        timezone="Asia/Yekaterinburg",
        opening=(dt.time(9), dt.time(22)),
    )
    services = (
        _service(7101, "Мужская стрижка", 71, 1500, 60, (7201, 7202, 7203, 7204)),
        _service(7102, "Детская стрижка", 71, 1000, 45, (7202, 7203)),
        _service(7103, "Стрижка машинкой", 71, 900, 30, (7201, 7202, 7203), synonyms=("налысо",)),
        _service(
            7104,
            "Моделирование бороды",
            72,
            1000,
            30,
            (7201, 7203),
            synonyms=("оформление бороды",),
        ),
        _service(7105, "Королевское бритьё", 72, 1800, 45, (7201,)),
        _service(7106, "Стрижка + борода", 72, 2300, 90, (7201, 7203), synonyms=("комплекс",)),
        _service(
            7107,
            "Камуфляж седины",
            73,
            1200,
            30,
            (7202,),
            description="Тонирование седых волос и бороды за 20 минут, естественный цвет.",
        ),
        _service(7108, "Укладка", 73, 500, 15, (7202, 7203)),
    )
    masters = (
        Master(7201, "Сергей Иванов", "Барбер"),
        Master(7202, "Мария Кузнецова", "Барбер"),
        Master(7203, "Наталья Орлова", "Топ-барбер"),
        Master(7204, "Артём Белов", "Барбер"),
    )
    categories = (
        Category(71, "Стрижки"),
        Category(72, "Борода и бритьё"),
        Category(73, "Уход"),
    )
    return AssistantCatalog(card, services, masters, categories)
