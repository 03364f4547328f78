"""What the salon page's settings and actions read and show (issue 16), shared by their routes
(``web/routes/salon_settings.py``, ``web/routes/salon_actions.py``) and ``/openapi.json``:
the Russian refusals with the field they are about, the checks of the salon's own words for
its services, template previews, and the JSON shapes.

Refusals are 400 ``invalid_settings`` whose ``error`` also names the ``field`` (in the
request body's terms: ``reminders.quiet_end``, ``synonyms.101``, ``text``), so the page can
mark the input; the ``message`` is Russian, for the salon's admin. The meaning of every
reminder setting stays :class:`actors.reminders.ReminderSettings`' business: its English
reasons are put into Russian here (:func:`russian_reason`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from actors.company import CompanyView
from actors.reminders import InvalidReminderSettings, ReminderSettings
from actors.reminders._texts import fill
from storage import (
    MAX_SYNONYM_CHARS,
    MAX_SYNONYMS_PER_SERVICE,
    ConversationMode,
    Reminder,
    SalonService,
)
from storage._synonyms import word_key

from ._conversations import HANDOFF_MINUTES
from ._errors import BadRequest
from ._message_fields import MAX_MESSAGE_TEXT, MESSAGE_TEXT
from ._openapi import RouteDoc
from ._reminder_settings import CHANGE_SCHEMA as REMINDERS_CHANGE
from ._reminder_settings import PLACEHOLDER_HELP, SETTINGS_SCHEMA, TEXT_KINDS
from ._validation import object_schema

__all__ = [
    "PLAN_SIZE",
    "ROUTE_DOCS",
    "SettingsInvalid",
    "check_synonyms",
    "plan_json",
    "preview_text",
    "reminder_change",
    "synonyms_json",
]

#: Where a setting's refusal points, in the salon's words.
FIELD_LABELS: dict[str, str] = {
    "day_before_enabled": "Напоминание накануне визита",
    "day_before_at": "Время напоминания накануне",
    "two_hours_enabled": "Напоминание незадолго до визита",
    "two_hours_before_minutes": "За сколько минут до визита напоминать",
    "quiet_start": "Начало тихих часов",
    "quiet_end": "Конец тихих часов",
    "reviews_enabled": "Просьба оценить визит",
    "review_after_minutes": "Через сколько минут после визита просить оценку",
    "review_link": "Ссылка на отзывы",
    "review_link_to": "Кому отправлять ссылку на отзывы",
    "high_rating": "Какая оценка считается высокой",
    "texts": "Тексты сообщений",
    "texts.day_before": "Текст напоминания накануне",
    "texts.two_hours": "Текст напоминания перед визитом",
    "texts.review": "Текст просьбы оценить визит",
    "texts.review_link": "Текст со ссылкой на отзывы",
    "texts.review_thanks": "Текст благодарности за оценку",
    "texts.review_sorry": "Ответ на низкую оценку",
}

# The reasons ReminderSettings gives (English, ours), and their Russian.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), russian)
    for pattern, russian in (
        (r"must be true or false", "нужно включить или выключить (true или false)"),
        (r"must be a time HH:MM", "укажите время в виде ЧЧ:ММ, например 18:00"),
        (
            r"leaves less than 6 hours for sending",
            "тихие часы слишком длинные: на отправку остаётся меньше 6 часов в сутки",
        ),
        (r"falls in quiet hours \((?P<span>[^)]*)\)", "попадает в тихие часы ({span})"),
        (r"must be a whole number of minutes", "укажите целое число минут"),
        (r"must be from (?P<low>\d+) to (?P<high>\d+)", "укажите число от {low} до {high}"),
        (r"is out of range", "значение вне допустимых пределов"),
        (
            r"must be an http\(s\) address or null",
            "укажите адрес, начинающийся с http:// или https://, или оставьте поле пустым",
        ),
        (r"must be at most (?P<n>\d+) characters", "не длиннее {n} символов"),
        (r"must not contain spaces or control characters", "адрес не должен содержать пробелов"),
        (r'must be "all" or "high"', "выберите: после любой оценки или только после высокой"),
        (r"must be a whole number (?P<low>\d+)–(?P<high>\d+)", "укажите число от {low} до {high}"),
        (r"must be an object of texts", "тексты переданы в неверном виде"),
        (r"is not a text of this service", "такого текста у сервиса нет"),
        (r"must be a non-empty text", "текст не может быть пустым"),
        (r"must not contain control characters", "текст содержит недопустимые символы"),
        (
            r"uses an unknown placeholder \{(?P<name>[^{}]*)\}",
            "неизвестная подстановка {{{name}}}; доступны: {known}",
        ),
        (r"must contain \{link\}", "текст должен содержать {{link}} — туда встанет ссылка"),
        (
            r"may come out empty",
            "сообщение может оказаться пустым: добавьте строку без подстановок или используйте "
            "{{greeting}}, {{when}}, {{date}} или {{time}}",
        ),
        (r"is not a setting", "такой настройки нет"),
        (r"must be a JSON object", "настройки нужно передать объектом"),
    )
)

#: A field name we may repeat in an answer: ours, or at least short plain words (an unknown
#: key is the caller's text, so anything else is not echoed).
_SHOWN_FIELD = re.compile(r"[A-Za-z0-9_]{1,40}(\.[A-Za-z0-9_]{1,40})?")


class SettingsInvalid(BadRequest):
    """400 ``invalid_settings``: a Russian ``message`` for the salon's admin, and the
    ``field`` it is about beside it in ``error`` (so the page can mark the input)."""

    def __init__(self, field: str, message: str) -> None:
        """A refusal of ``field`` with the Russian ``message``."""
        super().__init__(message, code="invalid_settings", field=field)

    def body(self) -> dict[str, Any]:
        """The error body, with ``field`` beside ``code`` and ``message``."""
        body = super().body()
        body["error"]["field"] = self.field
        return body


def _known_placeholders(field: str) -> str:
    """The placeholders a text of ``field`` may use, for a refusal's hint."""
    names = [name for name in PLACEHOLDER_HELP if name != "link" or field.endswith("review_link")]
    return ", ".join("{" + name + "}" for name in names)


def russian_reason(field: str, reason: str) -> str:
    """The Russian for one of :class:`ReminderSettings`' refusal reasons of ``field``."""
    for pattern, russian in _REASONS:
        found = pattern.search(reason)
        if found is not None:
            return russian.format(known=_known_placeholders(field), **found.groupdict())
    return "значение не подходит"


def russian_refusal(exc: InvalidReminderSettings, *, prefix: str) -> SettingsInvalid:
    """``exc`` as a :class:`SettingsInvalid` naming ``prefix + field`` («Конец тихих часов:
    тихие часы слишком длинные…»)."""
    field = exc.field if _SHOWN_FIELD.fullmatch(exc.field) else ""
    label = FIELD_LABELS.get(field)
    reason = russian_reason(field, exc.reason)
    message = f"{label}: {reason}." if label else f"Неизвестная настройка: {reason}."
    return SettingsInvalid(prefix + field if field else prefix.rstrip("."), message)


def reminder_change(
    body: object, base: ReminderSettings, *, prefix: str = "reminders."
) -> ReminderSettings:
    """``ReminderSettings.from_json(body, base)``; a refusal is :class:`SettingsInvalid`."""
    try:
        return ReminderSettings.from_json(body, base)
    except InvalidReminderSettings as exc:
        raise russian_refusal(exc, prefix=prefix) from None


# ---------------------------------------------------------------------- template preview

#: Example values of every placeholder (``PLACEHOLDER_HELP``), as a preview shows them.
EXAMPLES: dict[str, str] = {name: help_["example"] for name, help_ in PLACEHOLDER_HELP.items()}


def preview_text(kind: str, text: str, base: ReminderSettings) -> str:
    """``text`` as the texts' ``kind`` would read, filled with :data:`EXAMPLES`; checked as a
    change of the salon's settings would be (:class:`SettingsInvalid` for ``text``)."""
    try:
        ReminderSettings.from_json({"texts": {kind: text}}, base)
    except InvalidReminderSettings as exc:
        raise SettingsInvalid("text", russian_refusal(exc, prefix="").message) from None
    values = dict(EXAMPLES)
    if kind != "review_link":
        values.pop("link")
    return fill(text, values)


def preview_kind(value: object) -> str:
    """The ``kind`` of a preview: one of the texts (:data:`TEXT_KINDS`)."""
    if not isinstance(value, str) or value not in TEXT_KINDS:
        raise SettingsInvalid("kind", "Выберите, какой текст показать: " + ", ".join(TEXT_KINDS))
    return value


def preview_body_text(value: object) -> str:
    """The ``text`` of a preview: a string (the rest is checked as the setting is)."""
    if not isinstance(value, str):
        raise SettingsInvalid("text", "Введите текст сообщения.")
    return value


# ---------------------------------------------------------------------- the salon's words

_WORD = re.compile(r"[^\W_](?:[\w \-]*[^\W_])?")
_SPACES = re.compile(r"\s+")


def _words_of(field: str, value: object) -> tuple[str, ...]:
    """One service's words from the page: trimmed, inner spaces made one, checked."""
    if not isinstance(value, list):
        raise SettingsInvalid(field, "Слова нужно передать списком.")
    if len(value) > MAX_SYNONYMS_PER_SERVICE:
        raise SettingsInvalid(field, f"Не больше {MAX_SYNONYMS_PER_SERVICE} слов для одной услуги.")
    seen: dict[str, str] = {}
    for number, raw in enumerate(value, 1):
        if not isinstance(raw, str):
            raise SettingsInvalid(field, f"Слово №{number} должно быть текстом.")
        word = _SPACES.sub(" ", raw).strip()
        if not word:
            raise SettingsInvalid(field, f"Слово №{number} пустое.")
        if len(word) > MAX_SYNONYM_CHARS:
            raise SettingsInvalid(field, f"Слово №{number} длиннее {MAX_SYNONYM_CHARS} символов.")
        if not _WORD.fullmatch(word) or "_" in word:
            raise SettingsInvalid(
                field,
                f"Слово №{number}: можно только буквы, цифры, пробелы и дефис "
                "(в начале и в конце — буква или цифра).",
            )
        key = word_key(word)
        if key in seen:
            raise SettingsInvalid(field, f"Слово «{word}» повторяется.")
        seen[key] = word
    return tuple(seen.values())


def check_synonyms(value: object, services: Sequence[SalonService]) -> dict[int, tuple[str, ...]]:
    """The page's ``synonyms`` (``[{"service_id", "words"}]``) as ``{service_id: words}``;
    every service must be an active one of the salon's catalog, named once."""
    if not isinstance(value, list):
        raise SettingsInvalid("synonyms", "Слова для услуг нужно передать списком.")
    active = {s.service_id for s in services if s.active}
    changes: dict[int, tuple[str, ...]] = {}
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"service_id", "words", "title"}:
            raise SettingsInvalid("synonyms", "Каждая услуга — это service_id и список words.")
        service_id = item.get("service_id")
        if isinstance(service_id, bool) or not isinstance(service_id, int) or service_id < 1:
            raise SettingsInvalid("synonyms", "Укажите услугу (service_id).")
        field = f"synonyms.{service_id}"
        if service_id not in active:
            raise SettingsInvalid(field, "Такой услуги нет в каталоге салона.")
        if service_id in changes:
            raise SettingsInvalid(field, "Услуга указана дважды.")
        changes[service_id] = _words_of(field, item.get("words"))
    return changes


def synonyms_json(
    services: Sequence[SalonService], words: Mapping[int, Sequence[str]]
) -> list[dict[str, Any]]:
    """Every active service of the catalog with the salon's own words for it."""
    return [
        {"service_id": s.service_id, "title": s.title, "words": list(words.get(s.service_id, ()))}
        for s in services
        if s.active
    ]


# ---------------------------------------------------------------------- other shapes


def plan_json(rows: Sequence[Reminder]) -> list[dict[str, Any]]:
    """The reminder plan as the page shows it (times in UTC, ISO 8601)."""
    return [
        {
            "record_id": r.record_id,
            "kind": r.kind,
            "visit_time": r.visit_time.isoformat(),
            "due_at": None if r.due_at is None else r.due_at.isoformat(),
            "status": r.status.value,
        }
        for r in rows
    ]


_LINKED = frozenset({"active", "reconnecting", "activation_failed"})


def can_send(view: CompanyView) -> bool:
    """Whether a text queued now goes out through the salon's WhatsApp: linked (connected,
    or reconnecting with its credentials: the queue waits for it), not stopped elsewhere."""
    return view.whatsapp_connected or (
        view.integration_status in _LINKED
        and view.session not in ("stopped", "idle")
        and view.whatsapp_phone is not None
    )


# ---------------------------------------------------------------------- /openapi.json

#: How many planned messages the reminder plan shows.
PLAN_SIZE = 50

_SERVICE_WORDS = {
    "type": "object",
    "properties": {
        "service_id": {"type": "integer", "minimum": 1},
        "title": {"type": "string"},
        "words": {
            "type": "array",
            "maxItems": MAX_SYNONYMS_PER_SERVICE,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_SYNONYM_CHARS},
        },
    },
    "required": ["service_id", "words"],
}
SETTINGS_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "assistant_enabled": {"type": "boolean"},
        "reminders": SETTINGS_SCHEMA,
        "reminders_customised": {"type": "boolean"},
        "reminder_defaults": SETTINGS_SCHEMA,
        "placeholders": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The placeholders the texts may use, with example values",
        },
        "synonyms": {
            "type": "array",
            "items": _SERVICE_WORDS,
            "description": "Every active service of the catalog with the salon's own words",
        },
        "synonym_limits": {
            "type": "object",
            "properties": {"words": {"type": "integer"}, "chars": {"type": "integer"}},
        },
        "replanning": {
            "type": "boolean",
            "description": "In the answer to a change: whether planned visits are being "
            "planned again in the background",
        },
    },
    "required": ["success", "company_id", "assistant_enabled", "reminders", "synonyms"],
}
SETTINGS_CHANGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "assistant_enabled": {"type": "boolean"},
        "reminders": REMINDERS_CHANGE,
        "synonyms": {
            "type": "array",
            "items": _SERVICE_WORDS,
            "description": "The services whose words change (an empty list removes them); "
            "each an active service of the catalog, named once; words are letters, digits, "
            "spaces and hyphens, not repeated",
        },
    },
    "additionalProperties": False,
}
PREVIEW_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": list(TEXT_KINDS)},
        "text": {"type": "string", "minLength": 1, "maxLength": 1000},
    },
    "required": ["kind", "text"],
}
PREVIEW_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "kind": {"type": "string"},
        "preview": {
            "type": "string",
            "description": "The text filled with the example values: "
            + ", ".join(f"{{{n}}} = {h['example']}" for n, h in PLACEHOLDER_HELP.items()),
        },
    },
    "required": ["success", "kind", "preview"],
}
PLAN_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "timezone": {"type": ["string", "null"], "description": "The salon's time zone"},
        "reminders": {
            "type": "array",
            "maxItems": PLAN_SIZE,
            "items": {
                "type": "object",
                "properties": {
                    "record_id": {"type": "integer"},
                    "kind": {"type": "string", "examples": ["day_before", "two_hours", "review"]},
                    "visit_time": {"type": "string", "format": "date-time"},
                    "due_at": {"type": ["string", "null"], "format": "date-time"},
                    "status": {"type": "string", "enum": ["planned", "claimed"]},
                },
                "required": ["record_id", "kind", "visit_time", "due_at", "status"],
            },
            "description": "Still to go out, soonest first",
        },
    },
    "required": ["success", "company_id", "reminders"],
}
_REFUSED = "A setting refused: error.message in Russian, error.field names it"

SETTINGS_DOCS: list[RouteDoc] = [
    RouteDoc(
        "/marketplace/salon/api/{companyId}/settings",
        "GET",
        "The salon page's settings: the assistant switch, reminders and review requests, the "
        "salon's own words for its services",
        auth="salon",
        response_schema=SETTINGS_ANSWER,
        responses={404: "No such company"},
    ),
    RouteDoc(
        "/marketplace/salon/api/{companyId}/settings",
        "PATCH",
        "Change the salon page's settings (any part); all checked before anything is stored",
        auth="salon",
        request_schema=SETTINGS_CHANGE,
        response_schema=SETTINGS_ANSWER,
        responses={400: _REFUSED, 404: "No such company", 410: "The app was uninstalled"},
    ),
    RouteDoc(
        "/marketplace/salon/api/{companyId}/templates/preview",
        "POST",
        "A message text as a client would read it, with example values",
        auth="salon",
        request_schema=PREVIEW_BODY,
        response_schema=PREVIEW_ANSWER,
        responses={400: "Unknown placeholder or a text that cannot be sent (in Russian)"},
    ),
    RouteDoc(
        "/marketplace/salon/api/{companyId}/reminders/plan",
        "GET",
        f"The next {PLAN_SIZE} reminders and review requests still to go out, soonest first",
        auth="salon",
        response_schema=PLAN_ANSWER,
        responses={404: "No such company"},
    ),
]

_PHONE_PATH = "{phone}"
_CONVERSATION_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "conversation": {
            "type": "object",
            "description": "The conversation as the conversations API shows it",
            "properties": {
                "phone": {"type": "string"},
                "mode": {"type": "string", "enum": [mode.value for mode in ConversationMode]},
                "mode_until": {"type": ["string", "null"], "format": "date-time"},
                "needs_person": {"type": "boolean"},
            },
            "required": ["phone", "mode", "mode_until", "needs_person"],
        },
    },
    "required": ["success", "company_id", "conversation"],
}
_MESSAGE_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "message": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The WhatsApp message id"},
                "status": {"type": "string", "enum": ["queued"]},
                "text": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
            },
            "required": ["id", "status", "text", "at"],
        },
    },
    "required": ["success", "company_id", "message"],
}
WHATSAPP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {
            "type": "string",
            "examples": ["connected", "reconnecting", "linking", "disconnected", "frozen"],
        },
        "connected": {"type": "boolean"},
        "phone": {"type": ["string", "null"]},
        "last_error": {"type": ["string", "null"]},
        "connected_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["status", "connected", "phone", "last_error", "connected_at"],
}
_LOGOUT_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "whatsapp": WHATSAPP_SCHEMA,
    },
    "required": ["success", "company_id", "whatsapp"],
}
_RELINK_ANSWER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer"},
        "connect_url": {
            "type": "string",
            "description": "The connect page with a fresh connect token (relative)",
        },
    },
    "required": ["success", "company_id", "connect_url"],
}
_CHAT = "/marketplace/salon/api/{companyId}/conversations/" + _PHONE_PATH
_CHAT_ERRORS = {
    400: "Not a phone number, or minutes out of range",
    404: "The client never wrote to the salon (conversation_not_found)",
    409: "The client opted out (opted_out)",
    410: "The app was uninstalled",
}

ACTION_DOCS: list[RouteDoc] = [
    RouteDoc(
        _CHAT + "/takeover",
        "POST",
        "A person answers the chat: the assistant is silent for minutes (default: the "
        "configured handoff time)",
        auth="salon",
        request_schema=object_schema({}, {"minutes": HANDOFF_MINUTES}),
        response_schema=_CONVERSATION_ANSWER,
        responses=_CHAT_ERRORS,
    ),
    RouteDoc(
        _CHAT + "/giveback",
        "POST",
        "The assistant answers the chat again",
        auth="salon",
        response_schema=_CONVERSATION_ANSWER,
        responses=_CHAT_ERRORS,
    ),
    RouteDoc(
        _CHAT + "/messages",
        "POST",
        "Write to the client through the salon's WhatsApp queue (a chat the assistant was "
        "answering is taken over first); queued, not yet sent",
        auth="salon",
        request_schema={
            **object_schema({"text": MESSAGE_TEXT}),
            "description": f"text: 1 to {MAX_MESSAGE_TEXT} characters",
        },
        responses={
            202: {
                "description": "Queued",
                "content": {"application/json": {"schema": _MESSAGE_ANSWER}},
            },
            **_CHAT_ERRORS,
            409: "The client opted out (opted_out), or the salon's WhatsApp is not linked "
            "(whatsapp_not_connected)",
            503: "The salon's send queue is full",
        },
    ),
    RouteDoc(
        "/marketplace/salon/api/{companyId}/whatsapp/logout",
        "POST",
        "Log the salon's WhatsApp out (unlinked, credentials dropped); the new status",
        auth="salon",
        response_schema=_LOGOUT_ANSWER,
        responses={
            409: "Not linked (whatsapp_not_connected), frozen or uninstalled",
            410: "The app was uninstalled",
        },
    ),
    RouteDoc(
        "/marketplace/salon/api/{companyId}/whatsapp/relink",
        "POST",
        "A connect page URL with a fresh connect token (the salon's page session stays valid)",
        auth="salon",
        response_schema=_RELINK_ANSWER,
        responses={409: "Frozen in YClients", 410: "The app was uninstalled"},
    ),
]

#: The salon page's settings and action routes, for ``/openapi.json``.
ROUTE_DOCS: list[RouteDoc] = [*SETTINGS_DOCS, *ACTION_DOCS]
