"""The salon's opening hours read from YClients' free-text schedule."""

from __future__ import annotations

from datetime import time

import pytest

from actors.yclients._hours import opening_hours


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Ежедневно 10:00–21:00", (time(10), time(21))),
        ("Ежедневно 9:30–21:00", (time(9, 30), time(21))),
        ("ежедневно с 10:00 до 22:00", (time(10), time(22))),
        ("Пн-Пт 9.00 - 20.00", (time(9), time(20))),
        ("Пн–Пт 10:00—20:00, Сб–Вс 11:00–18:00", (time(10), time(20))),
        ("Будни 10:00-21:00; выходные 09:00-19:00", (time(9), time(21))),
        ("с 10 до 22", (time(10), time(22))),
        ("Работаем с 9 до 21 без выходных", (time(9), time(21))),
        ("10:00-24:00", (time(10), time(23, 59))),
        ("Круглосуточно", (time(0), time(23, 59))),
        ("24/7", (time(0), time(23, 59))),
        ("", None),
        (None, None),
        ("По записи", None),
        ("Пн–Пт", None),
        ("20:00–02:00", None),  # past midnight: not one day's span
        ("25:00–26:00", None),
        ("10:00", None),
        ("1-5 января выходные", None),
    ],
)
def test_opening_hours(text: str | None, span: tuple[time, time] | None) -> None:
    assert opening_hours(text) == span
