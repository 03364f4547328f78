"""What the model must answer, checked strictly, and how it becomes commands.

The model answers ``{"commands": [{"type": ..., ...}, ...]}`` — names and words only, never
ids. :func:`check` rejects anything else (an unknown type or field, a wrong kind, a missing
field, a number out of range) with :class:`InvalidOutput`; :func:`to_commands` resolves the
names and dates with the rules' own matchers (``ServiceIndex``, ``MasterIndex``,
``parse_when``) and raises :class:`Unresolvable` for what they do not find (a master the salon
lacks, a time that was not offered, a name or a review comment the client never wrote as
whole words, a yes to a message the rules read as a no: a summary's "да" is what books,
cancels or moves; a rating other than the one the rules read), so the message is read by the
rules instead. A service the salon lacks is an
``UnknownService``, as with the rules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ._catalog import AssistantCatalog
from ._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Comment,
    Confirm,
    Deny,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    OptOut,
    Rate,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    SmallTalk,
    SmallTalkKind,
    StartFlow,
    Topic,
    TurnContext,
    UnknownService,
)
from ._names import MasterIndex
from ._services_match import ServiceIndex
from ._understand import understand_rules
from ._when import parse_when
from ._words import words

__all__ = ["FUNCTION_NAME", "PARAMETERS", "InvalidOutput", "Unresolvable", "check", "to_commands"]

FUNCTION_NAME = "commands"
MAX_COMMANDS = 8
MAX_TEXT = 200

_STR = {"type": "string", "maxLength": MAX_TEXT}
_NAMES = {"type": "array", "items": _STR, "maxItems": 5}


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values]}


#: Each command type's fields: name → (JSON schema, required).
_FIELDS: dict[str, dict[str, tuple[dict[str, Any], bool]]] = {
    "start_flow": {"flow": (_enum(Flow), True)},
    "set_services": {"names": (_NAMES, True)},
    "set_master": {"name": ({"type": ["string", "null"], "maxLength": MAX_TEXT}, True)},
    "set_when": {"text": (_STR, True)},
    "choose_option": {
        "number": ({"type": "integer", "minimum": 1, "maximum": 50}, False),
        "time": ({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}, False),
    },
    "choose_visit": {
        "number": ({"type": "integer", "minimum": 1, "maximum": 50}, False),
        "services": (_NAMES, False),
        "day": (_STR, False),
    },
    "set_name": {"name": (_STR, True)},
    "confirm": {},
    "deny": {},
    "ask": {
        "topic": (_enum(Topic), True),
        "services": (_NAMES, False),
        "category": (_STR, False),
    },
    "hand_over": {"reason": (_enum(HandOverReason), True)},
    "opt_out": {},
    "small_talk": {"kind": (_enum(SmallTalkKind), True)},
    "rate": {
        "rating": ({"type": "integer", "minimum": 1, "maximum": 5}, True),
        "comment": (_STR, False),
    },
    "comment": {"text": (_STR, True)},
    "not_understood": {},
}


def _command_schema(kind: str, fields: Mapping[str, tuple[dict[str, Any], bool]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"type": {"const": kind}, **{k: s for k, (s, _) in fields.items()}},
        "required": ["type", *(k for k, (_, req) in fields.items() if req)],
        "additionalProperties": False,
    }


#: The function's parameters (JSON Schema), sent to the model.
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "commands": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_COMMANDS,
            "items": {"anyOf": [_command_schema(k, f) for k, f in _FIELDS.items()]},
        }
    },
    "required": ["commands"],
    "additionalProperties": False,
}


class InvalidOutput(Exception):
    """The model's JSON does not fit the schema."""


class Unresolvable(Exception):
    """A command names something the salon's catalog or the conversation does not have."""


def check(value: Any) -> list[dict[str, Any]]:
    """The commands of a schema-valid answer; :class:`InvalidOutput` otherwise."""
    if not isinstance(value, dict) or set(value) != {"commands"}:
        raise InvalidOutput("the answer must be an object with only 'commands'")
    commands = value["commands"]
    if not isinstance(commands, list) or not 1 <= len(commands) <= MAX_COMMANDS:
        raise InvalidOutput(f"'commands' must be a list of 1 to {MAX_COMMANDS}")
    for k, command in enumerate(commands):
        if not isinstance(command, dict):
            raise InvalidOutput(f"command {k} is not an object")
        kind = command.get("type")
        fields = _FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None:
            raise InvalidOutput(f"command {k}: unknown type")
        extra = set(command) - {"type", *fields}
        if extra:
            raise InvalidOutput(f"command {k}: unknown fields {sorted(extra)}")
        for name, (schema, required) in fields.items():
            if name not in command:
                if required:
                    raise InvalidOutput(f"command {k}: '{name}' missing")
                continue
            if not _fits(command[name], schema):
                raise InvalidOutput(f"command {k}: '{name}' is not valid")
    return commands


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` fits one of the field schemas above (the subset they use)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if value is None:
        return "null" in kinds
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and "string" in kinds:
        if "enum" in schema and value not in schema["enum"]:
            return False
        if "pattern" in schema and _clock(value) is None:
            return False
        return len(value) <= schema.get("maxLength", MAX_TEXT) and bool(value.strip())
    if isinstance(value, int) and "integer" in kinds:
        return bool(schema.get("minimum", value) <= value <= schema.get("maximum", value))
    if isinstance(value, list) and "array" in kinds:
        return len(value) <= schema.get("maxItems", 5) and all(
            _fits(v, schema["items"]) for v in value
        )
    return False


def _clock(text: str) -> dt.time | None:
    try:
        return dt.time.fromisoformat(text) if len(text) == 5 else None
    except ValueError:
        return None


def to_commands(
    items: list[dict[str, Any]],
    text: str,
    context: TurnContext,
    catalog: AssistantCatalog,
    now: dt.datetime,
) -> tuple[Command, ...]:
    """Commands for checked ``items`` (``check``); :class:`Unresolvable` when one cannot be
    resolved against the catalog, the offered options or the client's own words."""
    return tuple(_command(item, text, context, catalog, now) for item in items)


def _command(
    item: dict[str, Any],
    text: str,
    context: TurnContext,
    catalog: AssistantCatalog,
    now: dt.datetime,
) -> Command:
    kind = item["type"]
    if kind == "start_flow":
        return StartFlow(Flow(item["flow"]))
    if kind == "set_services":
        return _services(item["names"], text, context, catalog, now)
    if kind == "set_master":
        name = item["name"]
        return SetMaster(None if name is None else _master(name, catalog))
    if kind == "set_when":
        return SetWhen(_when(item["text"], catalog, now))
    if kind == "choose_option":
        return _option(item, context)
    if kind == "choose_visit":
        number = item.get("number")
        if number is not None and number > context.offered_count:
            raise Unresolvable("a visit number beyond the list")
        ids = _service_ids(item.get("services", ()), catalog)
        day = _when(item["day"], catalog, now).date if "day" in item else None
        if number is None and not ids and day is None:
            raise Unresolvable("a visit with nothing to find it by")
        return ChooseVisit(number=number, service_ids=ids, day=day)
    if kind == "set_name":
        if not _written(item["name"], text):
            raise Unresolvable("a name the client did not write")
        return SetName(item["name"].strip())
    if kind == "ask":
        category = _category(item["category"], catalog) if "category" in item else None
        ids = _service_ids(item.get("services", ()), catalog)
        return Ask(Topic(item["topic"]), service_ids=ids, category_id=category)
    if kind == "hand_over":
        return HandOver(HandOverReason(item["reason"]))
    if kind == "small_talk":
        return SmallTalk(SmallTalkKind(item["kind"]))
    if kind == "rate":
        rules = understand_rules(text, context, catalog, now)
        if any(isinstance(c, Rate) and c.rating != item["rating"] for c in rules):
            raise Unresolvable("a rating other than the one the client gave")
        return Rate(item["rating"], _own_words(item.get("comment", ""), text))
    if kind == "comment":
        return Comment(_own_words(item["text"], text))
    if kind == "confirm" and any(
        isinstance(c, Deny) for c in understand_rules(text, context, catalog, now)
    ):
        raise Unresolvable("a yes where the client said no")
    simple: dict[str, Command] = {
        "confirm": Confirm(),
        "deny": Deny(),
        "opt_out": OptOut(),
        "not_understood": NotUnderstood(),
    }
    return simple[kind]


def _own_words(said: str, text: str) -> str:
    """``said`` when the client wrote it (a review comment is stored as theirs), else
    :class:`Unresolvable`."""
    if said and not _written(said, text):
        raise Unresolvable("words the client did not write")
    return said


def _written(said: str, text: str) -> bool:
    """Whether ``said`` is in ``text`` as whole words (case, ``ё`` and spacing aside): "Анна"
    is not in "Жанна", nor "хорошо" in "нехорошо"."""

    def plain(value: str) -> str:
        return " ".join(value.lower().replace("ё", "е").split())

    wanted = plain(said)
    return bool(wanted) and re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", plain(text)) is not None


def _services(
    names: list[str],
    text: str,
    context: TurnContext,
    catalog: AssistantCatalog,
    now: dt.datetime,
) -> Command:
    """The services named, through the rules' matcher: their ids, one ambiguity, or one the
    salon does not offer (with its closest: as the rules find them in the client's whole
    message when they read the same words there, else from the words alone)."""
    if not names:
        raise Unresolvable("no service named")
    index = ServiceIndex.of(catalog)
    ids: list[int] = []
    for name in names:
        found = index.match(words(name))
        if found.unknown and not found.mentions:
            said, closest = found.unknown[0]
            return UnknownService(
                said, _closest_in_text(said, text, context, catalog, now, closest)
            )
        if len(found.mentions) == 1 and len(found.mentions[0].ids) > 1:
            if len(names) == 1:
                mention = found.mentions[0]
                return AmbiguousService(mention.text, mention.ids)
            raise Unresolvable("an ambiguous service among several")
        if not found.ids:
            closest = index.closest(name, name)
            return UnknownService(
                name, _closest_in_text(name, text, context, catalog, now, closest)
            )
        ids.extend(found.ids)
    return SetServices(index.sort(ids))


def _closest_in_text(
    said: str,
    text: str,
    context: TurnContext,
    catalog: AssistantCatalog,
    now: dt.datetime,
    default: tuple[int, ...],
) -> tuple[int, ...]:
    """The closest services the rules name for the same unknown words in the client's
    message (they weigh the words said with it), else ``default``."""
    for command in understand_rules(text, context, catalog, now):
        if isinstance(command, UnknownService) and command.text.lower() == said.lower():
            return command.closest
    return default


def _service_ids(names: Any, catalog: AssistantCatalog) -> tuple[int, ...]:
    index = ServiceIndex.of(catalog)
    ids: list[int] = []
    for name in names:
        found = index.match(words(name))
        if not found.ids:
            raise Unresolvable("a service the salon does not have")
        ids.extend(found.ids)
    return index.sort(ids)


def _category(title: str, catalog: AssistantCatalog) -> int:
    """A category by its catalog title (as the prompt lists them)."""
    wanted = " ".join(title.lower().replace("ё", "е").split())
    for category in catalog.categories:
        if " ".join(category.title.lower().replace("ё", "е").split()) == wanted:
            return category.id
    raise Unresolvable("a category the salon does not have")


def _master(name: str, catalog: AssistantCatalog) -> int:
    hits = MasterIndex.of(catalog).find(words(name))
    ids = {h.staff_id for h in hits}
    if len(ids) != 1:
        raise Unresolvable("a master the salon does not have (or several)")
    return ids.pop()


def _when(said: str, catalog: AssistantCatalog, now: dt.datetime) -> Any:
    opening = catalog.salon.opening
    when = parse_when(said, now, opening=opening) if opening else parse_when(said, now)
    if when.is_empty:
        raise Unresolvable("no day or time in the words given")
    return when


def _option(item: dict[str, Any], context: TurnContext) -> ChooseOption:
    number, at = item.get("number"), item.get("time")
    if (number is None) == (at is None):
        raise Unresolvable("an option needs exactly one of number and time")
    if number is not None:
        if number > context.offered_count:
            raise Unresolvable("an option number beyond those offered")
        return ChooseOption(number=number)
    clock = _clock(str(at))
    if clock is None or all(t.time() != clock for t in context.offered_times):
        raise Unresolvable("a time that was not offered")
    return ChooseOption(time=clock)
