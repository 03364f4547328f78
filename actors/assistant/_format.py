"""How values read in a reply: money, days, times and people's names declined.

Pure (standard library and pymorphy3 through ``_morph``). The templates (``_templates``) call
these; nothing else formats client-facing values, so a price or a date reads the same in every
reply.

- Money: ``1 500 ₽`` (a plain space between thousands, so every client shows it), a range
  ``от 2 500 до 3 500 ₽``.
- Days: ``пт 14 марта``; ``сегодня`` / ``завтра`` said before it when apt.
- Names: ``decline_name("Игорь Петров", "datv")`` → ``Игорю Петрову`` (first names and
  surnames agree in gender; a word the dictionary does not know as a name is left as is).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Literal

from ._morph import analyzer

__all__ = [
    "Case",
    "decline_name",
    "format_day",
    "format_money",
    "format_price",
    "format_time",
]

Case = Literal["nomn", "gent", "datv", "accs", "ablt", "loct"]

_WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
_MONTHS = (
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
)


def format_money(amount: Decimal | int) -> str:
    """``1500`` → ``1 500`` (kopecks shown only when there are any)."""
    value = Decimal(amount)
    whole = int(value)
    text = f"{abs(whole):,}".replace(",", " ")
    if whole < 0:
        text = "-" + text
    fraction = value - whole
    if fraction:
        text += f",{int(abs(fraction) * 100):02d}"
    return text


def format_price(low: Decimal | None, high: Decimal | None) -> str:
    """A price or a range with the rouble sign; ``""`` when unknown."""
    if low is None and high is None:
        return ""
    if low is None or high is None or low == high:
        value = low if low is not None else high
        assert value is not None
        return f"{format_money(value)} ₽"
    return f"от {format_money(low)} до {format_money(high)} ₽"


def format_time(moment: dt.time | dt.datetime) -> str:
    """``15:00``."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def format_day(day: dt.date, today: dt.date | None = None) -> str:
    """``пт 14 марта``; ``завтра, пт 14 марта`` when ``today`` makes it today or tomorrow."""
    text = f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"
    if today is not None:
        if day == today:
            return f"сегодня, {text}"
        if day == today + dt.timedelta(days=1):
            return f"завтра, {text}"
    return text


def _with_case_of(source: str, word: str) -> str:
    """``word`` written with ``source``'s capitalisation (``Игорь`` → ``Игорю``)."""
    if source.isupper() and len(source) > 1:
        return word.upper()
    if source[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _decline_word(
    word: str, case: Case, gender: str | None, *, first: bool
) -> tuple[str, str | None]:
    """One word of a name in ``case``; returns it and the gender it settled (first names set
    the gender the surname then agrees with). Unknown or indeclinable words stay as they are."""
    hyphen = word.split("-")
    if len(hyphen) > 1:  # "Анна-Мария", "Петров-Водкин": each part on its own
        parts = []
        for part in hyphen:
            declined, gender = _decline_word(part, case, gender, first=first)
            parts.append(declined)
        return "-".join(parts), gender
    lower = word.lower()
    wanted = "Name" if first else "Surn"
    candidates = [
        p
        for p in analyzer().parse(lower)
        if {"NOUN", "anim"} <= set(p.tag.grammemes)
        and ({wanted, "Patr"} & set(p.tag.grammemes) if not first else wanted in p.tag)
        and p.tag.case == "nomn"
        and p.tag.number == "sing"
    ]
    if gender is not None:
        same = [p for p in candidates if p.tag.gender == gender]
        candidates = same
    if not candidates:
        return word, gender
    parse = candidates[0]
    if "Fixd" in parse.tag:
        return word, gender or parse.tag.gender
    inflected = parse.inflect({case})
    if inflected is None:
        return word, gender or parse.tag.gender
    return _with_case_of(word, inflected.word), gender or parse.tag.gender


@functools.lru_cache(maxsize=1024)
def decline_name(name: str, case: Case) -> str:
    """A person's name (``Игорь``, ``Игорь Петров``, ``Алина Сафина``) in ``case``.

    The first word is read as a first name and fixes the gender; later words are read as
    surnames or patronymics of that gender. Words the dictionary does not know in that role
    (``Ким``, a nickname, Latin letters) are left as written, so a name is never mangled.
    """
    words = name.split()
    if case == "nomn" or not words:
        return name
    out: list[str] = []
    gender: str | None = None
    for index, word in enumerate(words):
        declined, gender = _decline_word(word, case, gender, first=index == 0)
        out.append(declined)
    return " ".join(out)
