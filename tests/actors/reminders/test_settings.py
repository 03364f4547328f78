"""ReminderSettings: the defaults, the JSON form both ways, and every refusal naming its field."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from actors.reminders import (
    InvalidReminderSettings,
    MessageKind,
    ReminderSettings,
    ReminderTexts,
    VisitFacts,
    VisitStatus,
    render_message,
)
from actors.reminders._settings import DEFAULT_TEXTS, OPTIONAL_PLACEHOLDERS, PLACEHOLDERS
from actors.reminders._timing import QuietHours

DEFAULTS = ReminderSettings()


def test_defaults_follow_the_issue() -> None:
    assert DEFAULTS.day_before_enabled and DEFAULTS.two_hours_enabled and DEFAULTS.reviews_enabled
    assert DEFAULTS.day_before_at == dt.time(18, 0)
    assert DEFAULTS.two_hours_before == dt.timedelta(hours=2)
    assert DEFAULTS.quiet == QuietHours(dt.time(21), dt.time(9))
    assert DEFAULTS.review_after == dt.timedelta(hours=2)
    assert DEFAULTS.review_link is None
    assert DEFAULTS.review_link_to == "all"
    assert DEFAULTS.high_rating == 4
    assert DEFAULTS.validate() is DEFAULTS


def test_default_texts_are_russian_and_valid() -> None:
    for kind in ("day_before", "two_hours", "review", "review_link", "review_thanks"):
        text = getattr(DEFAULT_TEXTS, kind)
        assert any("а" <= ch <= "я" for ch in text.lower()), kind
    assert "{when}" in DEFAULT_TEXTS.day_before and "{when}" in DEFAULT_TEXTS.two_hours
    assert "{link}" in DEFAULT_TEXTS.review_link
    assert "1 до 5" in DEFAULT_TEXTS.review


def test_json_round_trip() -> None:
    data = DEFAULTS.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["day_before_at"] == "18:00"
    assert data["two_hours_before_minutes"] == 120
    assert data["quiet_start"] == "21:00" and data["quiet_end"] == "09:00"
    assert ReminderSettings.from_json(data) == DEFAULTS
    custom = ReminderSettings.from_json(
        {
            "day_before_at": "12:15",
            "two_hours_before_minutes": 90,
            "quiet_start": "22:30",
            "quiet_end": "08:00",
            "review_after_minutes": 0,
            "review_link": "https://yandex.ru/maps/org/salon/123/reviews/",
            "review_link_to": "high",
            "high_rating": 5,
            "two_hours_enabled": False,
            "texts": {"review_thanks": "Спасибо, {name}!\nЖдём вас снова."},
        }
    )
    assert ReminderSettings.from_json(custom.to_json()) == custom
    assert custom.day_before_at == dt.time(12, 15)
    assert custom.two_hours_before == dt.timedelta(minutes=90)
    assert custom.review_after == dt.timedelta(0)
    assert custom.texts.review_thanks == "Спасибо, {name}!\nЖдём вас снова."
    assert custom.texts.day_before == DEFAULT_TEXTS.day_before


def test_absent_keys_keep_the_base_and_null_text_restores_the_default() -> None:
    base = ReminderSettings.from_json(
        {"day_before_at": "17:00", "texts": {"review": "Оцените визит {date} от 1 до 5"}}
    )
    changed = ReminderSettings.from_json({"quiet_end": "10:00"}, base)
    assert changed.day_before_at == dt.time(17, 0)
    assert changed.quiet_end == dt.time(10, 0)
    assert changed.texts.review == "Оцените визит {date} от 1 до 5"
    restored = ReminderSettings.from_json({"texts": {"review": None}}, changed)
    assert restored.texts.review == DEFAULT_TEXTS.review
    assert ReminderSettings.from_json({"review_link": ""}).review_link is None


def test_quiet_hours_may_be_switched_off() -> None:
    settings = ReminderSettings.from_json({"quiet_start": "00:00", "quiet_end": "00:00"})
    assert settings.quiet.empty


def test_sends_link_after() -> None:
    assert not DEFAULTS.sends_link_after(5)  # no link configured
    to_all = dataclasses.replace(DEFAULTS, review_link="https://example.com/r")
    assert all(to_all.sends_link_after(r) for r in range(1, 6))
    to_high = dataclasses.replace(to_all, review_link_to="high")
    assert [to_high.sends_link_after(r) for r in range(1, 6)] == [False, False, False, True, True]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"settings": 1}, "settings", "is not a setting"),
    ({"day_before_enabled": "yes"}, "day_before_enabled", "true or false"),
    ({"day_before_enabled": 1}, "day_before_enabled", "true or false"),
    ({"day_before_at": "24:00"}, "day_before_at", "HH:MM"),
    ({"day_before_at": "18:60"}, "day_before_at", "HH:MM"),
    ({"day_before_at": "18"}, "day_before_at", "HH:MM"),
    ({"day_before_at": 18}, "day_before_at", "HH:MM"),
    ({"day_before_at": "18:00:00"}, "day_before_at", "HH:MM"),
    ({"day_before_at": "22:00"}, "day_before_at", "falls in quiet hours (21:00–09:00)"),
    ({"day_before_at": "08:59"}, "day_before_at", "falls in quiet hours"),
    ({"quiet_start": "7:5"}, "quiet_start", "HH:MM"),
    ({"quiet_start": "18:00", "quiet_end": "12:30"}, "quiet_end", "less than 6 hours"),
    ({"two_hours_before_minutes": 59}, "two_hours_before_minutes", "from 60 to 720"),
    ({"two_hours_before_minutes": 721}, "two_hours_before_minutes", "from 60 to 720"),
    ({"two_hours_before_minutes": 90.5}, "two_hours_before_minutes", "whole number"),
    ({"two_hours_before_minutes": True}, "two_hours_before_minutes", "whole number"),
    ({"two_hours_before_minutes": 10**12}, "two_hours_before_minutes", "out of range"),
    ({"review_after_minutes": -1}, "review_after_minutes", "from 0 to 2880"),
    ({"review_after_minutes": "120"}, "review_after_minutes", "whole number"),
    ({"review_link": "javascript:alert(1)"}, "review_link", "http(s)"),
    ({"review_link": "https://"}, "review_link", "http(s)"),
    ({"review_link": "https://x.ru/a b"}, "review_link", "spaces"),
    ({"review_link": "https://x.ru/\u202e"}, "review_link", "control"),
    ({"review_link": "https://x.ru/" + "a" * 500}, "review_link", "500 characters"),
    ({"review_link": 5}, "review_link", "http(s)"),
    ({"review_link_to": "some"}, "review_link_to", '"all" or "high"'),
    ({"high_rating": 1}, "high_rating", "2–5"),
    ({"high_rating": 6}, "high_rating", "2–5"),
    ({"high_rating": 4.0}, "high_rating", "2–5"),
    ({"texts": "hi"}, "texts", "object of texts"),
    ({"texts": {"sms": "hi"}}, "texts.sms", "not a text"),
    ({"texts": {"review": ""}}, "texts.review", "non-empty"),
    ({"texts": {"review": "   \n "}}, "texts.review", "non-empty"),
    ({"texts": {"review": 5}}, "texts.review", "non-empty"),
    ({"texts": {"review": "x" * 1001}}, "texts.review", "1000 characters"),
    ({"texts": {"day_before": "Привет {client}"}}, "texts.day_before", "placeholder {client}"),
    ({"texts": {"day_before": "{service.__class__}"}}, "texts.day_before", "placeholder"),
    ({"texts": {"day_before": "ссылка {link}"}}, "texts.day_before", "placeholder {link}"),
    ({"texts": {"two_hours": "a\x00b"}}, "texts.two_hours", "control"),
    ({"texts": {"review_link": "Оставьте отзыв!"}}, "texts.review_link", "{link}"),
    ({"day_before_at": "١٨:٠٠"}, "day_before_at", "HH:MM"),  # Arabic-Indic digits
    ({"texts": {"review_thanks": "Спасибо, {name}!"}}, "texts.review_thanks", "come out empty"),
    ({"texts": {"two_hours": "{master}\n\n{address}"}}, "texts.two_hours", "come out empty"),
    ({"texts": {"review": "Мастер: {master}\n  \n"}}, "texts.review", "come out empty"),
]


@pytest.mark.parametrize(("data", "field", "reason"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_values_are_refused_naming_the_field(
    data: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidReminderSettings) as caught:
        ReminderSettings.from_json(data)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(field + " ")


@pytest.mark.parametrize("data", [None, [], "settings", 5])
def test_not_an_object_is_refused(data: object) -> None:
    with pytest.raises(InvalidReminderSettings, match="settings must be a JSON object"):
        ReminderSettings.from_json(data)


def test_validate_checks_values_built_in_code() -> None:
    bad = [
        (dataclasses.replace(DEFAULTS, day_before_at=dt.time(18, 0, 30)), "day_before_at"),
        (dataclasses.replace(DEFAULTS, two_hours_before=dt.timedelta(seconds=7230)), "two_hours"),
        (dataclasses.replace(DEFAULTS, review_after=dt.timedelta(days=3)), "review_after"),
        (dataclasses.replace(DEFAULTS, reviews_enabled=1), "reviews_enabled"),  # type: ignore[arg-type]
        (dataclasses.replace(DEFAULTS, texts={"review": "x"}), "texts"),  # type: ignore[arg-type]
        (
            dataclasses.replace(DEFAULTS, texts=ReminderTexts(review="{oops}")),
            "texts.review",
        ),
    ]
    for settings, field in bad:
        with pytest.raises(InvalidReminderSettings) as caught:
            settings.validate()
        assert caught.value.field.startswith(field)


def test_a_link_text_may_use_every_placeholder() -> None:
    text = " ".join("{" + name + "}" for name in sorted(PLACEHOLDERS)) + " {link}"
    settings = ReminderSettings.from_json({"texts": {"review_link": text}})
    assert settings.texts.review_link == text


@pytest.mark.parametrize(
    "text",
    [
        "Спасибо!",
        "{greeting}",
        "Ждём вас {when}, {master}",
        "Мастер: {master}\nДо встречи!",
        "{date} в {time}",
        "{name}, оставьте отзыв: {link}",
    ],
)
def test_a_text_with_a_line_that_always_shows_is_accepted(text: str) -> None:
    """A line survives when it has words and no placeholder, or a placeholder that always has
    a value: the message is never empty, whatever the visit lacks."""
    kind = "review_link" if "{link}" in text else "review_thanks"
    settings = ReminderSettings.from_json({"texts": {kind: text}})
    assert getattr(settings.texts, kind) == text


def test_the_optional_placeholders_are_the_ones_that_can_be_empty() -> None:
    """For a visit that lacks every optional fact (no name, services, master, salon or
    address), a text of one placeholder comes out empty exactly for OPTIONAL_PLACEHOLDERS."""
    starts = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
    bare = VisitFacts(
        company_id=1,
        record_id=1,
        visit_id=None,
        client_phone="79001234567",
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=1),
        booked_at=starts - dt.timedelta(days=7),
        status=VisitStatus.UPCOMING,
    )
    empty: set[str] = set()
    for name in sorted(PLACEHOLDERS):
        # built in code: validation would refuse the optional ones (that is the point)
        settings = dataclasses.replace(DEFAULTS, texts=ReminderTexts(day_before=f"{{{name}}}"))
        shown = render_message(
            MessageKind.DAY_BEFORE, bare, settings, ZoneInfo("Europe/Moscow"), now=starts
        )
        if not shown:
            empty.add(name)
    assert empty == OPTIONAL_PLACEHOLDERS
