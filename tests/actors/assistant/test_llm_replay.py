"""The phrase corpus through the model path: a fake model that answers what the rules read
(in the schema's words — names, the client's words for days and times, never ids) gives the
very same commands back, so the model understanding speaks the rules' interface.

Each case of ``understand_cases.json`` is read by the rules; their commands are written as the
model's JSON (``echo``), sent through ``check`` and ``to_commands`` (names and dates resolved
by the rules' matchers again) and must come back equal.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

import pytest

from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Comment,
    Confirm,
    Deny,
    HandOver,
    NotUnderstood,
    OptOut,
    Rate,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    SmallTalk,
    StartFlow,
    TurnContext,
    UnknownService,
)
from actors.assistant._llm_schema import check, to_commands
from actors.assistant._understand import understand_rules

from .test_understand_cases import _TABLE, _context
from .understand_support import CATALOGS, NOWS


def _names(ids: tuple[int, ...], catalog: AssistantCatalog) -> list[str]:
    return [s.title for i in ids if (s := catalog.service(i)) is not None]


def _said(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    return " ".join(text[s:e] for s, e in spans)


def echo(command: Command, text: str, catalog: AssistantCatalog) -> dict[str, Any]:
    """``command`` as a model that read like the rules would write it."""
    match command:
        case StartFlow(flow):
            return {"type": "start_flow", "flow": flow.value}
        case SetServices(ids):
            return {"type": "set_services", "names": _names(ids, catalog)}
        case AmbiguousService(said, _) | UnknownService(said, _):
            return {"type": "set_services", "names": [said]}
        case SetMaster(staff_id):
            master = catalog.master(staff_id) if staff_id is not None else None
            return {"type": "set_master", "name": master.name if master else None}
        case SetWhen(when):
            return {"type": "set_when", "text": _said(text, when.spans)}
        case ChooseOption(number, at):
            if number is not None:
                return {"type": "choose_option", "number": number}
            assert at is not None
            return {"type": "choose_option", "time": at.strftime("%H:%M")}
        case ChooseVisit(number, service_ids, day):
            out: dict[str, Any] = {"type": "choose_visit"}
            if number is not None:
                out["number"] = number
            if service_ids:
                out["services"] = _names(service_ids, catalog)
            if day is not None:
                out["day"] = day.strftime("%d.%m.%Y")
            return out
        case SetName(name):
            return {"type": "set_name", "name": name}
        case Ask(topic, service_ids, category_id):
            ask: dict[str, Any] = {"type": "ask", "topic": topic.value}
            if service_ids:
                ask["services"] = _names(service_ids, catalog)
            category = catalog.category(category_id)
            if category is not None:
                ask["category"] = category.title
            return ask
        case HandOver(reason):
            return {"type": "hand_over", "reason": reason.value}
        case SmallTalk(kind):
            return {"type": "small_talk", "kind": kind.value}
        case Rate(rating, comment):
            return {"type": "rate", "rating": rating, **({"comment": comment} if comment else {})}
        case Comment(said):
            return {"type": "comment", "text": said}
        case Confirm():
            return {"type": "confirm"}
        case Deny():
            return {"type": "deny"}
        case OptOut():
            return {"type": "opt_out"}
        case NotUnderstood():
            return {"type": "not_understood"}
    raise AssertionError(f"no echo for {command!r}")


def replay(text: str, context: TurnContext, catalog: AssistantCatalog, now: dt.datetime) -> Any:
    rules = understand_rules(text, context, catalog, now)
    answer = {"commands": [echo(c, text, catalog) for c in rules]}
    # through JSON, as a server would send it
    items = check(json.loads(json.dumps(answer, ensure_ascii=False)))
    return rules, to_commands(items, text, context, catalog, now)


@pytest.mark.parametrize(
    "case", _TABLE, ids=[f"{k}:{c['text'][:40]}" for k, c in enumerate(_TABLE)]
)
def test_the_model_path_gives_the_rules_commands_back(case: dict[str, Any]) -> None:
    salon = case.get("salon", "romashka")
    now = NOWS[salon]
    rules, model = replay(case["text"], _context(case.get("ctx", {}), now), CATALOGS[salon], now)
    assert [_norm(c) for c in model] == [_norm(c) for c in rules]


def _norm(command: Command) -> Command:
    """``command`` without the text positions of a ``SetWhen`` (they point into the words
    read — the model's are a phrase of the client's — and nothing but their presence is
    used)."""
    if isinstance(command, SetWhen):
        when = command.when
        return SetWhen(replace(when, spans=(), rejected=((0, 0),) if when.rejected else ()))
    return command


def test_every_catalog_name_the_prompt_sends_resolves_to_itself() -> None:
    for catalog in CATALOGS.values():
        now = NOWS["romashka"]
        for service in catalog.services:
            got = to_commands(
                check({"commands": [{"type": "set_services", "names": [service.title]}]}),
                "",
                TurnContext(),
                catalog,
                now,
            )
            assert got == (SetServices((service.id,)),), service.title
        for master in catalog.masters:
            got = to_commands(
                check({"commands": [{"type": "set_master", "name": master.name}]}),
                "",
                TurnContext(),
                catalog,
                now,
            )
            assert got == (SetMaster(master.id),), master.name
