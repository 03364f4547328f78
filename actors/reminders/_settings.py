"""A salon's reminder and review settings: one frozen value, validated, with a JSON form.

Pure (standard library only). The admin and company API read and change a salon's settings
through :meth:`ReminderSettings.from_json` / :meth:`ReminderSettings.to_json`; anything it
cannot use raises :class:`InvalidReminderSettings` naming the field and the reason in our own
words (the web layer answers 400 with them).

The JSON form (every key optional in a change; absent keys keep the current value; unknown
keys are refused)::

    {
      "day_before_enabled": true,      "day_before_at": "18:00",
      "two_hours_enabled": true,       "two_hours_before_minutes": 120,
      "quiet_start": "21:00",          "quiet_end": "09:00",
      "reviews_enabled": true,         "review_after_minutes": 120,
      "review_link": null,             "review_link_to": "all",      "high_rating": 4,
      "texts": {"day_before": "...", "two_hours": "...", "review": "...",
                "review_link": "...", "review_thanks": "...", "review_sorry": "..."}
    }

Rules checked by :meth:`ReminderSettings.validate`:

- times are ``HH:MM`` on the salon's clock; ``quiet_start == quiet_end`` means no quiet
  hours; quiet hours last at most 18 h (so at least 6 h of the day are for sending);
- ``day_before_at`` must lie outside quiet hours (a day-before reminder at 08:00 with quiet
  hours until 09:00 would have to move to the evening two days before);
- ``two_hours_before_minutes`` is 60–720; ``review_after_minutes`` is 0–2880;
- ``review_link`` is an ``http(s)`` address up to 500 characters, or ``null`` for none;
  ``review_link_to`` is ``"all"`` (after every rating) or ``"high"`` (only after a rating of
  ``high_rating`` or more, 2–5). Sending the link only after high ratings can breach a review
  site's rules, so it is the salon's choice and ``"all"`` is the default;
- each text is 1–1000 characters and uses only the placeholders of :data:`PLACEHOLDERS`
  (``texts.review_link`` must contain ``{link}``); ``null`` for a text restores its default;
- a text cannot come out empty: ``_texts`` leaves out a line whose placeholders all came out
  empty, so at least one line must have words and no placeholder, or a placeholder that always
  has a value (not one of :data:`OPTIONAL_PLACEHOLDERS`) — «Спасибо, {name}!» alone would be
  an empty message to a client whose name is unknown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._timing import QuietHours

__all__ = [
    "DEFAULT_TEXTS",
    "LINK_PLACEHOLDER",
    "OPTIONAL_PLACEHOLDERS",
    "PLACEHOLDERS",
    "InvalidReminderSettings",
    "LinkAudience",
    "ReminderSettings",
    "ReminderTexts",
]

LinkAudience = Literal["all", "high"]

#: Placeholders a text may use; each is replaced by a value of the visit (see ``_texts``).
PLACEHOLDERS = frozenset(
    {
        "greeting",  # «Здравствуйте, Анна!» or «Здравствуйте!» without a name
        "name",  # the client's name as YClients has it
        "when",  # «завтра, 4 декабря, в 15:00»
        "day",  # «завтра, 4 декабря»
        "date",  # «4 декабря»
        "time",  # «15:00»
        "service",  # the visit's services, comma-separated
        "master",  # the master's name
        "salon",  # the salon's name
        "address",  # the salon's address
    }
)
#: The review link's placeholder, allowed (and required) in ``texts.review_link`` only.
LINK_PLACEHOLDER = "link"
#: Placeholders that come out empty when the fact is unknown (the others always have a value).
OPTIONAL_PLACEHOLDERS = frozenset({"name", "service", "master", "salon", "address"})

_PLACEHOLDER = re.compile(r"\{([^{}\s]*)\}")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_TEXT_MAX = 1000
_LINK_MAX = 500
_QUIET_MAX_MINUTES = 18 * 60
_TWO_HOURS_RANGE = (60, 720)
_REVIEW_AFTER_RANGE = (0, 2880)
_HIGH_RATING_RANGE = (2, 5)


class InvalidReminderSettings(ValueError):
    """A setting the service cannot use: ``field`` (e.g. ``"quiet_start"``,
    ``"texts.review"``) and ``reason`` (``"must be a time HH:MM"``) in our own words."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field} {reason}")


@dataclass(frozen=True, kw_only=True)
class ReminderTexts:
    """The message templates, one per kind; ``{placeholder}``s are filled by ``_texts``.

    A line whose placeholders all came out empty (no master, no address) is left out of the
    message, so the defaults put each optional fact on its own line.
    """

    day_before: str = (
        "{greeting}\n"
        "Напоминаем о вашей записи {when}.\n"
        "Услуга: {service}\n"
        "Мастер: {master}\n"
        "Адрес: {address}\n"
        "Ответьте «да», если всё в силе. Если планы изменились, напишите — перенесём "
        "или отменим запись."
    )
    two_hours: str = (
        "{greeting}\n"
        "Ждём вас {when}.\n"
        "Услуга: {service}\n"
        "Мастер: {master}\n"
        "Адрес: {address}\n"
        "Если планы изменились или вы опаздываете, напишите нам."
    )
    review: str = (
        "{greeting}\n"
        "Спасибо, что были у нас {date}! Оцените, пожалуйста, визит от 1 до 5 — пришлите "
        "одну цифру. Если хотите, добавьте пару слов о том, что понравилось или нет."
    )
    review_link: str = "Спасибо за оценку! Будем благодарны, если оставите отзыв здесь: {link}"
    review_thanks: str = "Спасибо за оценку! Нам важно ваше мнение."
    review_sorry: str = (
        "Спасибо, что рассказали. Нам жаль, что визит вас не порадовал: мы передали ваш "
        "отзыв администратору салона."
    )


DEFAULT_TEXTS = ReminderTexts()
_TEXT_KINDS = tuple(f.name for f in dataclasses.fields(ReminderTexts))


@dataclass(frozen=True, kw_only=True)
class ReminderSettings:
    """One salon's reminder and review settings (defaults: both reminders and reviews on,
    the day-before reminder at 18:00, the other 2 h before, quiet 21:00–09:00, the review
    request 2 h after the visit, no review link)."""

    day_before_enabled: bool = True
    day_before_at: dt.time = dt.time(18, 0)
    two_hours_enabled: bool = True
    two_hours_before: dt.timedelta = dt.timedelta(hours=2)
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(9, 0)
    reviews_enabled: bool = True
    review_after: dt.timedelta = dt.timedelta(hours=2)
    review_link: str | None = None
    review_link_to: LinkAudience = "all"
    high_rating: int = 4
    texts: ReminderTexts = DEFAULT_TEXTS

    @property
    def quiet(self) -> QuietHours:
        """The quiet span as a value ``_timing`` works with."""
        return QuietHours(self.quiet_start, self.quiet_end)

    def sends_link_after(self, rating: int) -> bool:
        """Whether the review link goes to a client who rated the visit ``rating``."""
        if self.review_link is None:
            return False
        return self.review_link_to == "all" or rating >= self.high_rating

    def validate(self) -> ReminderSettings:
        """Check every rule of the module docstring; return ``self`` or raise
        :class:`InvalidReminderSettings` for the first field that breaks one."""
        for name in ("day_before_enabled", "two_hours_enabled", "reviews_enabled"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidReminderSettings(name, "must be true or false")
        for name in ("day_before_at", "quiet_start", "quiet_end"):
            _check_clock(name, getattr(self, name))
        quiet_minutes = (_minutes_of(self.quiet_end) - _minutes_of(self.quiet_start)) % 1440
        if quiet_minutes > _QUIET_MAX_MINUTES:
            raise InvalidReminderSettings("quiet_end", "leaves less than 6 hours for sending")
        if self.quiet.covers(self.day_before_at):
            raise InvalidReminderSettings(
                "day_before_at",
                f"falls in quiet hours ({_clock_text(self.quiet_start)}–"
                f"{_clock_text(self.quiet_end)})",
            )
        _check_minutes("two_hours_before_minutes", self.two_hours_before, _TWO_HOURS_RANGE)
        _check_minutes("review_after_minutes", self.review_after, _REVIEW_AFTER_RANGE)
        if self.review_link is not None:
            _check_link(self.review_link)
        if self.review_link_to not in ("all", "high"):
            raise InvalidReminderSettings("review_link_to", 'must be "all" or "high"')
        low, high = _HIGH_RATING_RANGE
        if (
            isinstance(self.high_rating, bool)
            or not isinstance(self.high_rating, int)
            or not low <= self.high_rating <= high
        ):
            raise InvalidReminderSettings("high_rating", f"must be a whole number {low}–{high}")
        if not isinstance(self.texts, ReminderTexts):
            raise InvalidReminderSettings("texts", "must be an object of texts")
        for kind in _TEXT_KINDS:
            _check_text(kind, getattr(self.texts, kind))
        return self

    def to_json(self) -> dict[str, Any]:
        """The JSON form (see the module docstring); ``from_json`` reads it back unchanged."""
        return {
            "day_before_enabled": self.day_before_enabled,
            "day_before_at": _clock_text(self.day_before_at),
            "two_hours_enabled": self.two_hours_enabled,
            "two_hours_before_minutes": int(self.two_hours_before.total_seconds() // 60),
            "quiet_start": _clock_text(self.quiet_start),
            "quiet_end": _clock_text(self.quiet_end),
            "reviews_enabled": self.reviews_enabled,
            "review_after_minutes": int(self.review_after.total_seconds() // 60),
            "review_link": self.review_link,
            "review_link_to": self.review_link_to,
            "high_rating": self.high_rating,
            "texts": {kind: getattr(self.texts, kind) for kind in _TEXT_KINDS},
        }

    @classmethod
    def from_json(cls, data: object, base: ReminderSettings | None = None) -> ReminderSettings:
        """Settings from their JSON form, each absent key taken from ``base`` (the defaults
        when ``None``); validated. Raises :class:`InvalidReminderSettings`."""
        current = base if base is not None else cls()
        if not isinstance(data, Mapping):
            raise InvalidReminderSettings("settings", "must be a JSON object")
        unknown = sorted(str(key) for key in data if key not in _JSON_KEYS)
        if unknown:
            raise InvalidReminderSettings(unknown[0], "is not a setting")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            field, parse = _JSON_KEYS[key]
            changes[field] = parse(key, value, current)
        return dataclasses.replace(current, **changes).validate()


# --------------------------------------------------------------------------- checks


def _minutes_of(clock: dt.time) -> int:
    return clock.hour * 60 + clock.minute


def _clock_text(clock: dt.time) -> str:
    return f"{clock.hour:02d}:{clock.minute:02d}"


def _check_clock(field: str, value: object) -> None:
    if (
        not isinstance(value, dt.time)
        or value.tzinfo is not None
        or value.second
        or value.microsecond
    ):
        raise InvalidReminderSettings(field, "must be a time HH:MM")


def _check_minutes(field: str, value: object, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not isinstance(value, dt.timedelta) or value % dt.timedelta(minutes=1):
        raise InvalidReminderSettings(field, "must be a whole number of minutes")
    if not dt.timedelta(minutes=low) <= value <= dt.timedelta(minutes=high):
        raise InvalidReminderSettings(field, f"must be from {low} to {high}")


def _check_link(link: object) -> None:
    field = "review_link"
    if not isinstance(link, str) or not link:
        raise InvalidReminderSettings(field, "must be an http(s) address or null")
    if len(link) > _LINK_MAX:
        raise InvalidReminderSettings(field, f"must be at most {_LINK_MAX} characters")
    if any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf"} for ch in link):
        raise InvalidReminderSettings(field, "must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(link)
    except ValueError:
        raise InvalidReminderSettings(field, "must be an http(s) address or null") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidReminderSettings(field, "must be an http(s) address or null")


def _check_text(kind: str, text: object) -> None:
    field = f"texts.{kind}"
    if not isinstance(text, str) or not text.strip():
        raise InvalidReminderSettings(field, "must be a non-empty text")
    if len(text) > _TEXT_MAX:
        raise InvalidReminderSettings(field, f"must be at most {_TEXT_MAX} characters")
    if any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text):
        raise InvalidReminderSettings(field, "must not contain control characters")
    allowed = PLACEHOLDERS | {LINK_PLACEHOLDER} if kind == "review_link" else PLACEHOLDERS
    used = set(_PLACEHOLDER.findall(text))
    unknown = sorted(used - allowed)
    if unknown:
        raise InvalidReminderSettings(field, f"uses an unknown placeholder {{{unknown[0]}}}")
    if kind == "review_link" and LINK_PLACEHOLDER not in used:
        raise InvalidReminderSettings(field, "must contain {link}")
    if not any(_always_shown(line) for line in text.splitlines()):
        raise InvalidReminderSettings(
            field,
            "may come out empty (a line whose placeholders are all empty is left out): add "
            "a line without placeholders, or use {greeting}, {when}, {date} or {time}",
        )


def _always_shown(line: str) -> bool:
    """Whether ``line`` shows in every message: words without placeholders, or a placeholder
    that always has a value (``_texts.fill`` drops a line whose placeholders are all empty)."""
    names = _PLACEHOLDER.findall(line)
    if not names:
        return bool(line.strip())
    return any(name not in OPTIONAL_PLACEHOLDERS for name in names)


# --------------------------------------------------------------------------- JSON parsing


def _parse_bool(key: str, value: object, _current: ReminderSettings) -> bool:
    if not isinstance(value, bool):
        raise InvalidReminderSettings(key, "must be true or false")
    return value


def _parse_clock(key: str, value: object, _current: ReminderSettings) -> dt.time:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise InvalidReminderSettings(key, "must be a time HH:MM")
    return dt.time(int(match[1]), int(match[2]))


def _parse_minutes(key: str, value: object, _current: ReminderSettings) -> dt.timedelta:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidReminderSettings(key, "must be a whole number of minutes")
    if abs(value) > 10**6:
        raise InvalidReminderSettings(key, "is out of range")
    return dt.timedelta(minutes=value)


def _parse_link(key: str, value: object, _current: ReminderSettings) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidReminderSettings(key, "must be an http(s) address or null")
    return value


def _parse_audience(key: str, value: object, _current: ReminderSettings) -> LinkAudience:
    if value not in ("all", "high"):
        raise InvalidReminderSettings(key, 'must be "all" or "high"')
    return value


def _parse_rating(key: str, value: object, _current: ReminderSettings) -> int:
    low, high = _HIGH_RATING_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidReminderSettings(key, f"must be a whole number {low}–{high}")
    return value


def _parse_texts(key: str, value: object, current: ReminderSettings) -> ReminderTexts:
    if not isinstance(value, Mapping):
        raise InvalidReminderSettings(key, "must be an object of texts")
    unknown = sorted(str(kind) for kind in value if kind not in _TEXT_KINDS)
    if unknown:
        raise InvalidReminderSettings(f"{key}.{unknown[0]}", "is not a text of this service")
    changes: dict[str, str] = {}
    for kind, text in value.items():
        if text is None:
            changes[kind] = getattr(DEFAULT_TEXTS, kind)
        elif not isinstance(text, str):
            raise InvalidReminderSettings(f"{key}.{kind}", "must be a non-empty text")
        else:
            changes[kind] = text
    return dataclasses.replace(current.texts, **changes)


_JSON_KEYS: dict[str, tuple[str, Any]] = {
    "day_before_enabled": ("day_before_enabled", _parse_bool),
    "day_before_at": ("day_before_at", _parse_clock),
    "two_hours_enabled": ("two_hours_enabled", _parse_bool),
    "two_hours_before_minutes": ("two_hours_before", _parse_minutes),
    "quiet_start": ("quiet_start", _parse_clock),
    "quiet_end": ("quiet_end", _parse_clock),
    "reviews_enabled": ("reviews_enabled", _parse_bool),
    "review_after_minutes": ("review_after", _parse_minutes),
    "review_link": ("review_link", _parse_link),
    "review_link_to": ("review_link_to", _parse_audience),
    "high_rating": ("high_rating", _parse_rating),
    "texts": ("texts", _parse_texts),
}
