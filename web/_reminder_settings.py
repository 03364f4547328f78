"""What the reminder settings API reads and shows, shared by its routes and ``/openapi.json``:
the settings document's JSON schemas, the placeholders a UI can offer, the answer's JSON, and
the translation of :class:`~actors.reminders.InvalidReminderSettings` into a 400.

The meaning of every setting is :class:`actors.reminders.ReminderSettings`'s business (it
validates); this module only presents it. The schemas take their defaults from
``ReminderSettings().to_json()``, so the document cannot show stale defaults, and a test checks
that the documented ranges and the validator draw the same lines.

Stored form: only the settings that differ from the defaults are stored (``storable``), so a
salon that kept a default text gets a better default when the service improves it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from actors.reminders import InvalidReminderSettings, ReminderSettings
from actors.reminders._settings import LINK_PLACEHOLDER, OPTIONAL_PLACEHOLDERS, PLACEHOLDERS
from storage import Storage

from ._errors import BadRequest

__all__ = [
    "ANSWER_SCHEMA",
    "CHANGE_SCHEMA",
    "PLACEHOLDER_HELP",
    "SETTINGS_SCHEMA",
    "changed_fields",
    "current_settings",
    "parse_settings",
    "settings_answer",
    "storable",
]

log = logging.getLogger("aiadmin.web.reminders")

DEFAULTS = ReminderSettings()
DEFAULT_JSON: dict[str, Any] = DEFAULTS.to_json()
TEXT_KINDS: tuple[str, ...] = tuple(DEFAULT_JSON["texts"])

#: Placeholders a salon may use in its texts: what each means, an example value, whether it can
#: come out empty (a line whose placeholders all came out empty is left out of the message),
#: and the texts that may use it.
PLACEHOLDER_HELP: dict[str, dict[str, Any]] = {
    "greeting": {
        "description": "A greeting with the client's name, or without it when unknown",
        "example": "Здравствуйте, Анна!",
        "may_be_empty": False,
    },
    "name": {
        "description": "The client's name as YClients has it",
        "example": "Анна",
        "may_be_empty": True,
    },
    "when": {
        "description": "The visit's day and time on the salon's clock, said as of sending",
        "example": "завтра, 4 декабря, в 15:00",
        "may_be_empty": False,
    },
    "day": {
        "description": "The visit's day, said as of sending",
        "example": "завтра, 4 декабря",
        "may_be_empty": False,
    },
    "date": {
        "description": "The visit's date (the year only when more than half a year away)",
        "example": "4 декабря",
        "may_be_empty": False,
    },
    "time": {
        "description": "The visit's start time on the salon's clock",
        "example": "15:00",
        "may_be_empty": False,
    },
    "service": {
        "description": "The visit's services, comma-separated",
        "example": "Маникюр, покрытие гель-лаком",
        "may_be_empty": True,
    },
    "master": {
        "description": "The master's name",
        "example": "Дарья",
        "may_be_empty": True,
    },
    "salon": {
        "description": "The salon's name",
        "example": "Студия «Лето»",
        "may_be_empty": True,
    },
    "address": {
        "description": "The salon's address",
        "example": "ул. Ленина, 5",
        "may_be_empty": True,
    },
    LINK_PLACEHOLDER: {
        "description": "The salon's review link (texts.review_link only, where it is required)",
        "example": "https://yandex.ru/maps/org/salon/123/reviews/",
        "may_be_empty": False,
    },
}
assert PLACEHOLDER_HELP.keys() == PLACEHOLDERS | {LINK_PLACEHOLDER}
assert {name for name, h in PLACEHOLDER_HELP.items() if h["may_be_empty"]} == OPTIONAL_PLACEHOLDERS

_TIME_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
_MAX_TEXT = 1000
_TEXT_DESCRIPTIONS = {
    "day_before": "The reminder the day before the visit",
    "two_hours": "The reminder shortly before the visit",
    "review": "The review request after the visit (asks for a rating 1-5)",
    "review_link": "Sent with the review link after a rating; must contain {link}",
    "review_thanks": "The thanks for a rating when no link follows and it is not low",
    "review_sorry": "The answer to a low rating (1-3)",
}
assert _TEXT_DESCRIPTIONS.keys() == set(TEXT_KINDS)


def _clock(description: str, key: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": _TIME_PATTERN,
        "description": f"{description} (HH:MM on the salon's clock)",
        "default": DEFAULT_JSON[key],
    }


def _minutes(description: str, key: str, low: int, high: int) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "description": description,
        "default": DEFAULT_JSON[key],
    }


def _flag(description: str, key: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description, "default": DEFAULT_JSON[key]}


def _text_schema(kind: str, *, nullable: bool) -> dict[str, Any]:
    note = "; null restores the default" if nullable else ""
    return {
        "type": ["string", "null"] if nullable else "string",
        "minLength": 1,
        "maxLength": _MAX_TEXT,
        "description": f"{_TEXT_DESCRIPTIONS[kind]}. Placeholders: "
        + ", ".join("{" + name + "}" for name in sorted(PLACEHOLDERS))
        + (", {link}" if kind == "review_link" else "")
        + note,
        "default": DEFAULT_JSON["texts"][kind],
    }


def _settings_properties(*, in_change: bool) -> dict[str, Any]:
    return {
        "day_before_enabled": _flag("Send the reminder the day before", "day_before_enabled"),
        "day_before_at": _clock(
            "When the day-before reminder goes out; outside quiet hours", "day_before_at"
        ),
        "two_hours_enabled": _flag("Send the reminder shortly before", "two_hours_enabled"),
        "two_hours_before_minutes": _minutes(
            "How long before the visit the second reminder goes out",
            "two_hours_before_minutes",
            60,
            720,
        ),
        "quiet_start": _clock(
            "Quiet hours begin: nothing is sent until quiet_end (equal times: no quiet hours; "
            "at most 18 h)",
            "quiet_start",
        ),
        "quiet_end": _clock("Quiet hours end", "quiet_end"),
        "reviews_enabled": _flag("Ask for a rating after the visit", "reviews_enabled"),
        "review_after_minutes": _minutes(
            "How long after the visit ends the review request goes out (unless YClients "
            "marks the visit attended earlier)",
            "review_after_minutes",
            0,
            2880,
        ),
        "review_link": {
            "type": ["string", "null"],
            "maxLength": 500,
            # An empty text is read as null in a change; the document shows null.
            "pattern": "^(|[hH][tT][tT][pP][sS]?://.+)$"
            if in_change
            else "^[hH][tT][tT][pP][sS]?://.+$",
            "description": "The salon's review page (e.g. its map card), an http(s) address; "
            "null (or empty in a change): none",
            "default": DEFAULT_JSON["review_link"],
        },
        "review_link_to": {
            "type": "string",
            "enum": ["all", "high"],
            "description": "Send the link after every rating (all) or only after high_rating "
            "or more (high; this can breach a review site's rules)",
            "default": DEFAULT_JSON["review_link_to"],
        },
        "high_rating": {
            "type": "integer",
            "minimum": 2,
            "maximum": 5,
            "description": "The lowest rating that counts as high (for review_link_to high)",
            "default": DEFAULT_JSON["high_rating"],
        },
        "texts": {
            "type": "object",
            "description": "The message templates; {placeholder}s are filled per visit, and a "
            "line whose placeholders all came out empty is left out",
            "properties": {kind: _text_schema(kind, nullable=in_change) for kind in TEXT_KINDS},
            "additionalProperties": False,
            **({} if in_change else {"required": list(TEXT_KINDS)}),
        },
    }


#: The settings document as the API shows it: every field present.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _settings_properties(in_change=False),
    "required": list(DEFAULT_JSON),
    "additionalProperties": False,
}

#: A request body of ``PUT`` (absent fields take their defaults) or ``PATCH`` (absent fields
#: keep their current values). Unknown fields are refused.
CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _settings_properties(in_change=True),
    "additionalProperties": False,
}

_PLACEHOLDER_ITEM = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "example": {"type": "string"},
        "may_be_empty": {"type": "boolean"},
        "texts": {"type": "array", "items": {"type": "string", "enum": list(TEXT_KINDS)}},
    },
    "required": ["name", "description", "example", "may_be_empty", "texts"],
}

#: The answer of every reminder settings route.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "settings": SETTINGS_SCHEMA,
        "customised": {
            "type": "boolean",
            "description": "Whether the salon's settings differ from the defaults",
        },
        "defaults": SETTINGS_SCHEMA,
        "placeholders": {"type": "array", "items": _PLACEHOLDER_ITEM},
        "replanning": {
            "type": "boolean",
            "description": "In the answer to a change: whether the salon's visits already "
            "planned are being planned again in the background (a change of when messages are "
            "due: switches, times, offsets, quiet hours)",
        },
    },
    "required": ["success", "company_id", "settings", "customised", "defaults", "placeholders"],
}


def _placeholders() -> list[dict[str, Any]]:
    items = []
    for name, help_ in PLACEHOLDER_HELP.items():
        texts = ["review_link"] if name == LINK_PLACEHOLDER else list(TEXT_KINDS)
        items.append({"name": name, **help_, "texts": texts})
    return items


def settings_answer(company_id: int, settings: ReminderSettings) -> dict[str, Any]:
    """The JSON answer: the settings in effect, whether they differ from the defaults, the
    defaults and the placeholders (so a UI can offer them)."""
    return {
        "success": True,
        "company_id": company_id,
        "settings": settings.to_json(),
        "customised": settings != DEFAULTS,
        "defaults": DEFAULTS.to_json(),
        "placeholders": _placeholders(),
    }


async def current_settings(storage: Storage, company_id: int) -> ReminderSettings:
    """The salon's settings in effect: the stored ones, or the defaults when none are stored
    or the stored ones can no longer be read (the assistant and scheduler fall back alike)."""
    stored = await storage.reminder_settings.get(company_id)
    if stored is None:
        return DEFAULTS
    try:
        return ReminderSettings.from_json(stored)
    except InvalidReminderSettings as exc:
        log.warning("company %s: stored reminder settings unreadable: %s", company_id, exc.field)
        return DEFAULTS


# A field name we may repeat in an answer: ours, or at least short plain words (an unknown key
# is the caller's text, so anything else is not echoed).
_SHOWN_FIELD = re.compile(r"[A-Za-z0-9_]{1,40}(\.[A-Za-z0-9_]{1,40})?")
_MAX_REASON = 240


def parse_settings(body: dict[str, Any], base: ReminderSettings | None) -> ReminderSettings:
    """``ReminderSettings.from_json(body, base)``; a refusal becomes 400 ``invalid_settings``
    whose message starts with the field's name (``quiet_end leaves less than 6 hours…``)."""
    try:
        return ReminderSettings.from_json(body, base)
    except InvalidReminderSettings as exc:
        field = exc.field if _SHOWN_FIELD.fullmatch(exc.field) else "a key"
        reason = exc.reason
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 1] + "…"
        raise BadRequest(f"{field} {reason}.", code="invalid_settings", field=field) from None


def storable(settings: ReminderSettings) -> dict[str, Any]:
    """What to store for ``settings``: only the fields (and texts) that differ from the
    defaults; ``ReminderSettings.from_json`` of it gives ``settings`` back."""
    data = settings.to_json()
    kept = {
        key: value for key, value in data.items() if key != "texts" and value != DEFAULT_JSON[key]
    }
    texts = {
        kind: text for kind, text in data["texts"].items() if text != DEFAULT_JSON["texts"][kind]
    }
    if texts:
        kept["texts"] = texts
    return kept


def changed_fields(before: ReminderSettings, after: ReminderSettings) -> list[str]:
    """The names of the settings that differ (texts as ``texts.<kind>``), for the audit."""
    old, new = before.to_json(), after.to_json()
    changed = [key for key in new if key != "texts" and new[key] != old[key]]
    changed += [
        f"texts.{kind}" for kind in new["texts"] if new["texts"][kind] != old["texts"][kind]
    ]
    return changed
