"""Properties of parse_when that hold for any text, moment and opening hours (hypothesis)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.assistant import When, parse_when
from actors.assistant._days import HORIZON

_ZONES = [ZoneInfo(z) for z in ("Europe/Moscow", "Asia/Yekaterinburg", "Asia/Vladivostok")]
# Pieces clients write, to reach the deep rules far more often than random letters would.
_PIECES = [
    "завтра",
    "завтро",
    "сегодня",
    "послезавтра",
    "в",
    "на",
    "к",
    "до",
    "после",
    "с",
    "не",
    "около",
    "часа",
    "в районе",
    "пятницу",
    "следующую",
    "эту",
    "на выходных",
    "неделе",
    "через",
    "2",
    "3",
    "12",
    "15",
    "23",
    "24",
    "31",
    "0",
    "00",
    "15:00",
    "25:61",
    "14.03",
    "31.02",
    "29.02.2028",
    "14/03",
    "15-00",
    "14-16",
    "14-го",
    "на 14-е",
    "марта",
    "февраля",
    "утром",
    "утро",
    "днём",
    "вечером",
    "вечера",
    "дня",
    "ночи",
    "полседьмого",
    "пол",
    "четверть",
    "без",
    "пятого",
    "двадцать",
    "первого",
    "числа",
    "полдень",
    "полночь",
    "час",
    "минут",
    "полчаса",
    "дней",
    "недель",
    "месяц",
    "года",
    "2027",
    "₽",
    "руб",
    "услуги",
    ",",
    ".",
    "?",
    "!",
    "-",
    " ",
    "+7 917 123-45-67",
    "1 500",
    "между",
    "и",
    "или",
    "раньше",
    "позже",
    "будни",
    "тот же день",
    "ближе к вечеру",
    "в обед",
    "второй",
    "2-й",
]
_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(_PIECES), max_size=14).map(" ".join),
    st.lists(st.sampled_from(_PIECES), max_size=14).map("".join),
)
_moments = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2035, 12, 31)),
    st.sampled_from(_ZONES),
)
_openings = st.tuples(st.integers(0, 23), st.integers(1, 24)).map(
    lambda hours: (dt.time(hours[0]), dt.time(hours[1] % 24))
)


def _sane(when: When, text: str, now: dt.datetime) -> None:
    today = now.date()
    assert list(when.dates) == sorted(set(when.dates))
    for day in when.dates:
        assert today <= day <= today + HORIZON
    if when.time is not None:
        assert dt.time(0, 0) <= when.time <= dt.time(23, 59)
        assert when.window is None
    if when.window is not None:
        assert when.window[0] < when.window[1]
    for start, end in (*when.spans, *when.rejected):
        assert 0 <= start < end <= len(text)
    for start, end in when.rejected:
        assert when.covers(start, end)
    assert len(when.rest(text)) == len(text)
    assert when.is_empty is (not when.dates and when.day_kind is None and not when.has_time)


@settings(max_examples=600, deadline=None)
@given(_texts, _moments, _openings)
def test_no_text_crashes_and_every_result_is_sane(
    text: str, now: dt.datetime, opening: tuple[dt.time, dt.time]
) -> None:
    _sane(parse_when(text, now, opening=opening), text, now)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59), st.sampled_from(["в ", "к ", "на ", ""]), _moments)
def test_a_written_time_comes_back_exactly(
    hour: int, minute: int, preposition: str, now: dt.datetime
) -> None:
    when = parse_when(f"{preposition}{hour:02d}:{minute:02d}", now)
    assert when.time == dt.time(hour, minute)
    assert not when.dates and not when.bare_hour


@settings(max_examples=300, deadline=None)
@given(_moments, st.integers(0, 365), st.sampled_from(["{d}.{m}.{y}", "{d:02d}.{m:02d}.{y}"]))
def test_a_written_date_within_a_year_comes_back_exactly(
    now: dt.datetime, ahead: int, pattern: str
) -> None:
    day = now.date() + dt.timedelta(days=ahead)
    when = parse_when(pattern.format(d=day.day, m=day.month, y=day.year), now)
    assert when.dates == (day,)


@settings(max_examples=200, deadline=None)
@given(_moments, st.integers(1, 12), _openings)
def test_a_bare_hour_is_one_of_its_two_readings(
    now: dt.datetime, hour: int, opening: tuple[dt.time, dt.time]
) -> None:
    when = parse_when(f"в {hour}", now, opening=opening)
    assert when.time is not None and when.bare_hour
    assert when.time.minute == 0 and when.time.hour % 12 == hour % 12


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 99), _moments)
def test_a_number_alone_is_never_when(number: int, now: dt.datetime) -> None:
    assert parse_when(str(number), now).is_empty
