"""Reply wording: names declined, money and days formatted, summaries and lists as clients
read them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from actors.assistant import _templates as t
from actors.assistant._catalog import Master, Service
from actors.assistant._effects import Slot, Visit
from actors.assistant._format import (
    decline_name,
    format_day,
    format_money,
    format_price,
    format_time,
)

from .decide_chat import CATALOG, TODAY, at


@pytest.mark.parametrize(
    ("name", "dative", "genitive"),
    [
        ("Сергей", "Сергею", "Сергея"),
        ("Марина", "Марине", "Марины"),
        ("Екатерина", "Екатерине", "Екатерины"),
        ("Игорь", "Игорю", "Игоря"),
        ("Маша", "Маше", "Маши"),
        ("Илья", "Илье", "Ильи"),
        ("Любовь", "Любови", "Любови"),
        ("Игорь Петров", "Игорю Петрову", "Игоря Петрова"),
        ("Алина Сафина", "Алине Сафиной", "Алины Сафиной"),
        ("Екатерина Волкова", "Екатерине Волковой", "Екатерины Волковой"),
        ("Анна-Мария", "Анне-Марии", "Анны-Марии"),
        ("Rustam", "Rustam", "Rustam"),  # not a Russian name: left as written
        ("Барбер Тони", "Барбер Тони", "Барбер Тони"),  # not a first name first: as written
    ],
)
def test_names_are_declined(name: str, dative: str, genitive: str) -> None:
    assert decline_name(name, "datv") == dative
    assert decline_name(name, "gent") == genitive
    assert decline_name(name, "nomn") == name


def test_money_and_ranges() -> None:
    assert format_money(1500) == "1 500"
    assert format_money(Decimal("900")) == "900"
    assert format_money(Decimal("1234567.5")) == "1 234 567,50"
    assert format_price(Decimal(1500), Decimal(1500)) == "1 500 ₽"
    assert format_price(Decimal(3500), Decimal(6000)) == "от 3 500 до 6 000 ₽"
    assert format_price(None, Decimal(700)) == "700 ₽"
    assert format_price(None, None) == ""


def test_days_and_times() -> None:
    friday = dt.date(2025, 3, 14)
    assert format_day(friday) == "пт 14 марта"
    assert format_day(friday, friday) == "сегодня, пт 14 марта"
    assert format_day(friday, friday - dt.timedelta(days=1)) == "завтра, пт 14 марта"
    assert format_day(dt.date(2025, 12, 31), friday) == "ср 31 декабря"
    assert format_time(dt.time(9, 5)) == "09:05"


def test_the_booking_summary() -> None:
    text = t.booking_summary(CATALOG, (6101,), Slot(6201, at(2, 15)), "Тимур", TODAY)
    assert text == "Стрижка мужская у Игоря, пт 14 марта в 15:00, 1 200 ₽. Записать на имя Тимур?"
    both = t.booking_summary(CATALOG, (6105, 6106), Slot(6203, at(1, 12)), "Лилия", TODAY)
    assert both == (
        "Маникюр с покрытием гель-лак и Коррекция бровей у Алины, завтра, чт 13 марта в 12:00, "
        "2 300 ₽. Записать на имя Лилия?"
    )
    ranged = t.booking_summary(CATALOG, (6102, 6103), Slot(6202, at(2, 11)), "Ия", TODAY)
    assert "от 4 300 до 6 100 ₽" in ranged


def test_offered_times_are_numbered() -> None:
    one_day = t.offered_times(
        CATALOG, [Slot(6201, at(1, 10)), Slot(6204, at(1, 12, 30))], TODAY, with_masters=True
    )
    assert one_day == (
        "Свободно завтра, чт 13 марта:\n1) 10:00 — Игорь\n2) 12:30 — Олег\n"
        "Какой вариант подходит? Напишите номер."
    )
    days = t.offered_times(
        CATALOG, [Slot(6201, at(3, 10)), Slot(6201, at(4, 11))], TODAY, with_masters=False
    )
    assert days.splitlines()[:3] == [
        "Свободно:",
        "1) сб 15 марта в 10:00",
        "2) вс 16 марта в 11:00",
    ]


def test_masters_sharing_a_first_name_are_called_by_full_name() -> None:
    masters = (Master(1, "Анна Иванова"), Master(2, "Анна Петрова"), Master(3, "Олег"))
    assert t.display_name(masters[0], masters) == "Анна Иванова"
    assert t.display_name(masters[2], masters) == "Олег"


def test_claims_live_only_in_the_claim_templates() -> None:
    visit = Visit(7001, at(3, 17), 6201, (6101,), ("Стрижка мужская",))
    slot = Slot(6201, at(3, 18))
    claims = {
        t.booked(CATALOG, (6101,), slot, TODAY),
        t.cancelled(CATALOG, visit, TODAY),
        t.moved(CATALOG, visit, slot, TODAY),
    }
    assert all(any(w in c for w in ("записала", "отменила", "перенесла")) for c in claims)
    others = [
        t.booking_pending(),
        t.booking_in_progress(),
        t.booking_not_made(),
        t.booking_not_confirmed(),
        t.booking_unavailable(),
        t.booking_refused(),
        t.confirm_cancel(CATALOG, visit, TODAY),
        t.confirm_move(CATALOG, visit, slot, TODAY),
        t.cancel_failed(),
        t.move_failed(),
        t.move_taken(),
        t.visits_list(CATALOG, [visit], TODAY),
        t.booking_summary(CATALOG, (6101,), slot, "Тимур", TODAY),
    ]
    for text in others:
        assert not any(w in text for w in ("записала", "отменила", "перенесла", "записаны")), text


def test_a_service_without_a_price_or_description() -> None:
    bare = Service(1, "Консультация")
    assert t.prices([bare]) == "Консультация — цену уточнит администратор"
    assert t.service_info(bare) == "Консультация. Подробнее расскажет мастер или администратор."
