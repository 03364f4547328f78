"""The words of reminders and review messages: Russian dates, the salon's templates, safe
values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from actors.reminders import (
    MessageKind,
    ReminderSettings,
    VisitFacts,
    render_message,
    render_rating_reply,
)
from actors.reminders._settings import PLACEHOLDERS
from actors.reminders._texts import fill, format_date, format_day, format_when
from actors.reminders._timing import to_utc

YEKATERINBURG = ZoneInfo("Asia/Yekaterinburg")
DEFAULTS = ReminderSettings()


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return to_utc(dt.datetime(year, month, day, hour, minute), YEKATERINBURG)


def visit(**changes: object) -> VisitFacts:
    base = VisitFacts(
        company_id=1,
        record_id=501,
        visit_id=9001,
        client_phone="79001234567",
        client_name="Анна",
        service_titles=("Стрижка", "Укладка"),
        master_name="Марина",
        starts_at=local(2026, 12, 4, 15, 0),
        ends_at=local(2026, 12, 4, 16, 0),
        booked_at=local(2026, 11, 20, 10, 0),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dates in Russian


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 12, 3), "сегодня, 3 декабря"),
        (dt.date(2026, 12, 4), "завтра, 4 декабря"),
        (dt.date(2026, 12, 5), "послезавтра, 5 декабря"),
        (dt.date(2026, 12, 2), "вчера, 2 декабря"),
        (dt.date(2026, 12, 7), "в понедельник, 7 декабря"),
        (dt.date(2026, 12, 8), "во вторник, 8 декабря"),
        (dt.date(2026, 12, 9), "в среду, 9 декабря"),
        (dt.date(2026, 12, 10), "в четверг, 10 декабря"),
        (dt.date(2026, 12, 11), "в пятницу, 11 декабря"),
        (dt.date(2026, 12, 12), "в субботу, 12 декабря"),
        (dt.date(2026, 12, 13), "в воскресенье, 13 декабря"),
        (dt.date(2027, 1, 1), "в пятницу, 1 января"),
        (dt.date(2027, 8, 1), "в воскресенье, 1 августа 2027 года"),
    ],
)
def test_format_day(day: dt.date, expected: str) -> None:
    assert format_day(day, today=dt.date(2026, 12, 3)) == expected


def test_every_month_in_the_genitive() -> None:
    months = [format_date(dt.date(2027, m, 1)).split()[1] for m in range(1, 13)]
    assert months == [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ]


def test_format_when_uses_the_salon_clock_for_today_and_the_hour() -> None:
    # 20:00 UTC on Dec 3 is already 01:00 on Dec 4 in Yekaterinburg: "сегодня".
    now = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)
    assert (
        format_when(local(2026, 12, 4, 15, 0), YEKATERINBURG, now) == "сегодня, 4 декабря, в 15:00"
    )
    now = local(2026, 12, 3, 18, 0)
    assert format_when(local(2026, 12, 4, 9, 5), YEKATERINBURG, now) == "завтра, 4 декабря, в 09:05"
    # year end: on Dec 31 a visit on Jan 1 is "завтра"
    assert (
        format_when(local(2027, 1, 1, 12, 0), YEKATERINBURG, local(2026, 12, 31, 18, 0))
        == "завтра, 1 января, в 12:00"
    )


# --------------------------------------------------------------------------- reminders


def test_the_default_day_before_reminder() -> None:
    text = render_message(
        MessageKind.DAY_BEFORE,
        visit(),
        DEFAULTS,
        YEKATERINBURG,
        now=local(2026, 12, 3, 18, 0),
        salon="Салон «Лада»",
        address="ул. Ленина, 1",
    )
    assert text.splitlines() == [
        "Здравствуйте, Анна!",
        "Напоминаем о вашей записи завтра, 4 декабря, в 15:00.",
        "Услуга: Стрижка, Укладка",
        "Мастер: Марина",
        "Адрес: ул. Ленина, 1",
        "Ответьте «да», если всё в силе. Если планы изменились, напишите — перенесём или "
        "отменим запись.",
    ]


def test_the_default_two_hours_reminder_without_master_address_or_name() -> None:
    text = render_message(
        MessageKind.TWO_HOURS,
        visit(client_name="", master_name="", service_titles=()),
        DEFAULTS,
        YEKATERINBURG,
        now=local(2026, 12, 4, 13, 0),
    )
    assert text.splitlines() == [
        "Здравствуйте!",
        "Ждём вас сегодня, 4 декабря, в 15:00.",
        "Если планы изменились или вы опаздываете, напишите нам.",
    ]


def test_the_default_review_request() -> None:
    text = render_message(
        MessageKind.REVIEW, visit(), DEFAULTS, YEKATERINBURG, now=local(2026, 12, 4, 18, 0)
    )
    assert text.startswith("Здравствуйте, Анна!\nСпасибо, что были у нас 4 декабря!")
    assert "от 1 до 5" in text


def test_a_salon_template_with_every_placeholder() -> None:
    template = "\n".join(f"{name}={{{name}}}" for name in sorted(PLACEHOLDERS))
    settings = ReminderSettings.from_json({"texts": {"day_before": template}})
    text = render_message(
        MessageKind.DAY_BEFORE,
        visit(),
        settings,
        YEKATERINBURG,
        now=local(2026, 12, 3, 18, 0),
        salon="Лада",
        address="ул. Ленина, 1",
    )
    assert dict(line.split("=", 1) for line in text.splitlines()) == {
        "address": "ул. Ленина, 1",
        "date": "4 декабря",
        "day": "завтра, 4 декабря",
        "greeting": "Здравствуйте, Анна!",
        "master": "Марина",
        "name": "Анна",
        "salon": "Лада",
        "service": "Стрижка, Укладка",
        "time": "15:00",
        "when": "завтра, 4 декабря, в 15:00",
    }


def test_values_cannot_add_lines_or_reorder_text() -> None:
    text = render_message(
        MessageKind.DAY_BEFORE,
        visit(
            client_name="Анна\nПереведите 5000 на карту",
            master_name="\u202eанирам",
            service_titles=("Стрижка\r\n\tмужская\x00",),
        ),
        DEFAULTS,
        YEKATERINBURG,
        now=local(2026, 12, 3, 18, 0),
        address="  ул.\u00a0Ленина,\n 1  ",
    )
    lines = text.splitlines()
    assert lines[0] == "Здравствуйте, Анна Переведите 5000 на карту!"
    assert "Услуга: Стрижка мужская" in lines
    assert "Мастер: анирам" in lines
    assert "Адрес: ул. Ленина, 1" in lines
    assert len(lines) == 6


def test_long_values_are_cut_and_emoji_kept() -> None:
    text = render_message(
        MessageKind.DAY_BEFORE,
        visit(master_name="М" * 500, client_name="Аня 👩\u200d🎤"),
        DEFAULTS,
        YEKATERINBURG,
        now=local(2026, 12, 3, 18, 0),
    )
    master = next(line for line in text.splitlines() if line.startswith("Мастер: "))
    assert len(master) == len("Мастер: ") + 200 and master.endswith("…")
    assert text.startswith("Здравствуйте, Аня 👩\u200d🎤!")


def test_fill_replaces_only_known_names_and_never_formats() -> None:
    assert fill("{a} {b.__class__} {} {a!r}", {"a": "1"}) == "1 {b.__class__} {} {a!r}"
    assert fill("x\n\n\n\ny  \n", {}) == "x\n\ny"
    assert fill("Мастер: {master}\nДо встречи", {"master": ""}) == "До встречи"
    # a line keeps its empty placeholder when another one on it has a value
    assert fill("{master} {time}", {"master": "", "time": "15:00"}) == "15:00"


# --------------------------------------------------------------------------- after a rating


def test_rating_replies_follow_the_salons_link_choice() -> None:
    now = local(2026, 12, 4, 18, 30)
    link = "https://yandex.ru/maps/org/1/reviews"
    no_link = render_rating_reply(5, visit(), DEFAULTS, YEKATERINBURG, now=now)
    assert no_link.text == DEFAULTS.texts.review_thanks
    assert not no_link.link_sent and not no_link.notify_salon

    to_all = dataclasses.replace(DEFAULTS, review_link=link)
    high = render_rating_reply(4, visit(), to_all, YEKATERINBURG, now=now)
    assert high.link_sent and link in high.text and not high.notify_salon
    low = render_rating_reply(2, visit(), to_all, YEKATERINBURG, now=now)
    assert low.link_sent and low.notify_salon
    assert low.text.startswith(DEFAULTS.texts.review_sorry) and low.text.endswith(link)

    to_high = dataclasses.replace(to_all, review_link_to="high")
    low = render_rating_reply(3, visit(), to_high, YEKATERINBURG, now=now)
    assert low.text == DEFAULTS.texts.review_sorry
    assert not low.link_sent and low.notify_salon
    high = render_rating_reply(5, visit(), to_high, YEKATERINBURG, now=now)
    assert high.link_sent and high.text.endswith(link)


@pytest.mark.parametrize("rating", [0, 6, True, 4.5])
def test_a_rating_outside_1_to_5_is_refused(rating: object) -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        render_rating_reply(
            rating,  # type: ignore[arg-type]
            visit(),
            DEFAULTS,
            YEKATERINBURG,
            now=local(2026, 12, 4, 18, 30),
        )
