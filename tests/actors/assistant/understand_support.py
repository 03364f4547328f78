"""Helpers of the understanding tests: the two salons, their fixed "now", and commands
written as short strings so a table of cases stays readable.

A command as a string: ``book`` / ``cancel`` / ``move`` / ``visits`` (StartFlow),
``services:6101,6102``, ``ambiguous:6104,6105``, ``unknown:6104,6105`` (the closest ids),
``master:6201`` or ``master:any``, ``when:d1@15:00`` (day offsets from now joined by ``|``,
``same`` for "в тот же день", then ``@HH:MM`` or ``@HH:MM-HH:MM``), ``option:2``,
``option@17:00``, ``visit:2``, ``visit:s6104,6105``, ``visit:d4``, ``name:Тимур``,
``ask:price:6103``, ``ask:services:c62``, ``ask:address``, ``handover:asked``,
``handover:complaint``, ``opt_out``, ``confirm``, ``deny``, ``greeting``, ``thanks``,
``goodbye``, ``not_understood``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Confirm,
    Deny,
    HandOver,
    NotUnderstood,
    OptOut,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    SmallTalk,
    StartFlow,
    UnknownService,
)
from actors.assistant._days import DayKind

from .barbershop_catalog import barbershop_catalog
from .example_catalog import assistant_catalog

#: The acceptance corpus's salons (``tests/assistant_corpus/catalog.json``).
CORPUS_CATALOG = Path(__file__).resolve().parents[2] / "assistant_corpus" / "catalog.json"

CATALOGS: dict[str, AssistantCatalog] = {
    "romashka": assistant_catalog(),
    "barber": barbershop_catalog(),
    "nails": assistant_catalog(777301, path=CORPUS_CATALOG),
    "spa": assistant_catalog(777501, path=CORPUS_CATALOG),
}
# Romashka: a Wednesday morning in Moscow. The barbershop: 00:30 on the last day of March in
# Yekaterinburg (UTC+5), when UTC is still the day before. The corpus's nail studio: a Friday
# evening in Novosibirsk; its spa: ten to midnight on the last day of April in Vladivostok.
NOWS: dict[str, dt.datetime] = {
    "romashka": dt.datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("Europe/Moscow")),
    "barber": dt.datetime(2025, 3, 31, 0, 30, tzinfo=ZoneInfo("Asia/Yekaterinburg")),
    "nails": dt.datetime(2025, 3, 14, 18, 0, tzinfo=ZoneInfo("Asia/Novosibirsk")),
    "spa": dt.datetime(2025, 4, 30, 23, 50, tzinfo=ZoneInfo("Asia/Vladivostok")),
}


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(map(str, ids))


def _hhmm(t: dt.time) -> str:
    return t.strftime("%H:%M")


def as_text(command: Command, now: dt.datetime) -> str:
    """``command`` in the short form (module docstring); days as offsets from ``now``."""
    match command:
        case StartFlow(flow=flow):
            return str(flow.value)
        case SetServices(ids=ids):
            return f"services:{_ids(ids)}"
        case AmbiguousService(candidates=ids):
            return f"ambiguous:{_ids(ids)}"
        case UnknownService(closest=ids):
            return f"unknown:{_ids(ids)}"
        case SetMaster(staff_id=staff):
            return f"master:{'any' if staff is None else staff}"
        case SetWhen(when=when):
            days = "|".join(f"d{(d - now.date()).days}" for d in when.dates)
            if when.day_kind is DayKind.SAME_DAY:
                days = "same"
            clock = ""
            if when.time is not None:
                clock = f"@{_hhmm(when.time)}"
            elif when.window is not None:
                clock = f"@{_hhmm(when.window[0])}-{_hhmm(when.window[1])}"
            return f"when:{days}{clock}"
        case ChooseOption(number=number, time=time):
            return f"option:{number}" if time is None else f"option@{_hhmm(time)}"
        case ChooseVisit(number=number, service_ids=ids, day=day):
            if number is not None:
                return f"visit:{number}"
            parts = ([f"s{_ids(ids)}"] if ids else []) + (
                [f"d{(day - now.date()).days}"] if day is not None else []
            )
            return "visit:" + ";".join(parts)
        case SetName(name=name):
            return f"name:{name}"
        case Ask(topic=topic, service_ids=ids, category_id=category):
            tail = f":{_ids(ids)}" if ids else (f":c{category}" if category is not None else "")
            return f"ask:{topic.value}{tail}"
        case HandOver(reason=reason):
            return f"handover:{reason.value}"
        case OptOut():
            return "opt_out"
        case Confirm():
            return "confirm"
        case Deny():
            return "deny"
        case SmallTalk(kind=kind):
            return str(kind.value)
        case NotUnderstood():
            return "not_understood"
    raise AssertionError(f"unknown command {command!r}")
