"""The words of reminders and review messages: a salon's templates filled with a visit's facts.

Pure (standard library only: the month and weekday words are a small table, not morphology).
Dates and times are the salon's local clock: ``{when}`` reads «завтра, 4 декабря, в 15:00»,
with «сегодня» / «завтра» / «послезавтра» / «вчера» counted from the moment of sending and
otherwise the weekday («в пятницу, 4 декабря, в 15:00»); the year is added only for a date
more than half a year away. The placeholders are listed in ``_settings.PLACEHOLDERS``.

Rendering rules:

- a line whose placeholders all came out empty (no master, no address known) is left out,
  so a template never shows «Мастер: » with nothing after it;
- the visit's values (names, service titles, the address) come from YClients and the
  client: each is made one line of plain text — control and invisible formatting characters
  (bidirectional overrides among them) removed, whitespace collapsed, long values cut with
  «…» — so a value can neither add lines nor reorder the text the client sees. WhatsApp has no
  escape for its ``*bold*`` / ``_italic_`` markers; they are left as the salon wrote them;
- only ``{name}`` placeholders are replaced (never ``str.format``, so a template cannot reach
  into Python objects); an unknown one stays as written (validation refuses it earlier).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ._plan import MessageKind, VisitFacts
from ._settings import LINK_PLACEHOLDER, PLACEHOLDERS, ReminderSettings
from ._timing import to_local

__all__ = [
    "LOW_RATING_MAX",
    "RatingReply",
    "fill",
    "format_date",
    "format_day",
    "format_when",
    "render_message",
    "render_rating_reply",
]

#: Ratings up to this one notify the salon (its audit, metric and the conversations API).
LOW_RATING_MAX = 3

_MONTHS_GENITIVE = (
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
# "в/во" + the weekday in the accusative, Monday first.
_ON_WEEKDAY = (
    "в понедельник",
    "во вторник",
    "в среду",
    "в четверг",
    "в пятницу",
    "в субботу",
    "в воскресенье",
)
_RELATIVE_DAYS = {-1: "вчера", 0: "сегодня", 1: "завтра", 2: "послезавтра"}
_YEAR_SHOWN_AFTER = dt.timedelta(days=183)

_PLACEHOLDER = re.compile(r"\{([^{}\s]*)\}")
_DROPPED = {"Cc", "Cs"}  # control characters, lone surrogates
_KEEP_FORMAT = {"\u200d"}  # the zero-width joiner holds emoji sequences together
_VALUE_MAX = 200
_SERVICES_MAX = 300


def format_date(day: dt.date, today: dt.date | None = None) -> str:
    """«4 декабря»; «4 декабря 2027 года» when more than half a year from ``today``."""
    text = f"{day.day} {_MONTHS_GENITIVE[day.month - 1]}"
    if today is not None and abs(day - today) > _YEAR_SHOWN_AFTER:
        text += f" {day.year} года"
    return text


def format_day(day: dt.date, today: dt.date) -> str:
    """«завтра, 4 декабря» (сегодня / завтра / послезавтра / вчера), else «в пятницу, 4
    декабря»."""
    relative = _RELATIVE_DAYS.get((day - today).days, _ON_WEEKDAY[day.weekday()])
    return f"{relative}, {format_date(day, today)}"


def format_when(moment: dt.datetime, zone: ZoneInfo, now: dt.datetime) -> str:
    """«завтра, 4 декабря, в 15:00»: ``moment`` on the salon's clock, said as of ``now``."""
    local = to_local(moment, zone)
    today = to_local(now, zone).date()
    return f"{format_day(local.date(), today)}, в {local.hour:02d}:{local.minute:02d}"


def _clean(value: str, limit: int = _VALUE_MAX) -> str:
    """``value`` as one line of plain text (see the module docstring)."""
    kept = []
    for ch in value:
        category = unicodedata.category(ch)
        if ch.isspace():
            kept.append(" ")
        elif category in _DROPPED or (category == "Cf" and ch not in _KEEP_FORMAT):
            continue
        else:
            kept.append(ch)
    text = " ".join("".join(kept).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each known ``{name}`` replaced by ``values[name]``; a line whose
    placeholders all came out empty is dropped; blank runs and trailing spaces trimmed."""
    lines: list[str] = []
    for line in template.splitlines():
        names = [name for name in _PLACEHOLDER.findall(line) if name in values]
        if names and not any(values[name] for name in names):
            continue
        filled = _PLACEHOLDER.sub(
            lambda match: values.get(match[1], match[0]),
            line,
        )
        lines.append(filled.rstrip())
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _values(
    visit: VisitFacts, zone: ZoneInfo, now: dt.datetime, salon: str, address: str
) -> dict[str, str]:
    """The placeholders' values for ``visit`` as of ``now``."""
    local = to_local(visit.starts_at, zone)
    today = to_local(now, zone).date()
    name = _clean(visit.client_name, 60)
    titles = [_clean(title) for title in visit.service_titles]
    values = {
        "greeting": f"Здравствуйте, {name}!" if name else "Здравствуйте!",
        "name": name,
        "when": format_when(visit.starts_at, zone, now),
        "day": format_day(local.date(), today),
        "date": format_date(local.date(), today),
        "time": f"{local.hour:02d}:{local.minute:02d}",
        "service": _clean(", ".join(title for title in titles if title), _SERVICES_MAX),
        "master": _clean(visit.master_name),
        "salon": _clean(salon),
        "address": _clean(address, _SERVICES_MAX),
    }
    assert values.keys() == PLACEHOLDERS
    return values


def render_message(
    kind: MessageKind,
    visit: VisitFacts,
    settings: ReminderSettings,
    zone: ZoneInfo,
    *,
    now: dt.datetime,
    salon: str = "",
    address: str = "",
) -> str:
    """The text of a day-before or two-hours reminder or of a review request for ``visit``,
    from the salon's template, said as of ``now`` (the moment of sending)."""
    template = {
        MessageKind.DAY_BEFORE: settings.texts.day_before,
        MessageKind.TWO_HOURS: settings.texts.two_hours,
        MessageKind.REVIEW: settings.texts.review,
    }[MessageKind(kind)]
    return fill(template, _values(visit, zone, now, salon, address))


@dataclass(frozen=True)
class RatingReply:
    """What follows a client's rating: the ``text`` to send, whether it carries the salon's
    review link, and whether the salon must be told (a rating of 1–3)."""

    text: str
    link_sent: bool
    notify_salon: bool


def render_rating_reply(
    rating: int,
    visit: VisitFacts,
    settings: ReminderSettings,
    zone: ZoneInfo,
    *,
    now: dt.datetime,
    salon: str = "",
    address: str = "",
) -> RatingReply:
    """The answer to a rating of 1–5: thanks (``review_thanks``), or regret for a low one
    (``review_sorry``), then the review link (``review_link``) when the salon sends it after
    this rating (to every client, or only after ``high_rating`` or more)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValueError("rating must be a whole number from 1 to 5")
    values = _values(visit, zone, now, salon, address)
    low = rating <= LOW_RATING_MAX
    link_sent = settings.sends_link_after(rating)
    parts = []
    if low:
        parts.append(fill(settings.texts.review_sorry, values))
    if link_sent:
        assert settings.review_link is not None
        link_values = {**values, LINK_PLACEHOLDER: settings.review_link}
        parts.append(fill(settings.texts.review_link, link_values))
    if not parts:
        parts.append(fill(settings.texts.review_thanks, values))
    return RatingReply(text="\n\n".join(parts), link_sent=link_sent, notify_salon=low)
