"""A fake model that answers what the rules read: ``rules_echo(catalogs)`` is a
``FakeOpenAI.default`` that reads the request as our prompt writes it (the salon's name, "now",
what was asked and offered, the client's message), runs ``understand_rules`` on the salon's
catalog and answers their commands in the schema's words (names, the client's words for days
and times, never ids). Used to prove the model path speaks the rules' interface."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

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
    Expecting,
    Flow,
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
from actors.assistant._prompts import PromptKind
from actors.assistant._understand import understand_rules

from ._app import Answer, SeenRequest, tool_call

__all__ = ["echo", "rules_echo"]


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


def rules_echo(catalogs: Mapping[str, AssistantCatalog]) -> Callable[[SeenRequest], Answer]:
    """The fake's answer for a salon of ``catalogs`` (by its title, as the prompt names it)."""

    def answer(request: SeenRequest) -> Answer:
        messages = request.body["messages"]
        state = json.loads(messages[1]["content"])
        text = messages[-1]["content"]
        catalog = catalogs[state["salon"]]
        now = dt.datetime.fromisoformat(state["now"])
        context = TurnContext(
            expecting=Expecting(state["last_reply_asked_for"]),
            offered_count=state["offered_count"],
            offered_times=tuple(dt.datetime.fromisoformat(t) for t in state["offered_times"]),
            flow=Flow(state["flow_under_way"]) if state["flow_under_way"] else None,
            prompt=PromptKind(state["salon_prompt"]) if state["salon_prompt"] else None,
        )
        commands = understand_rules(text, context, catalog, now)
        return tool_call({"commands": [echo(c, text, catalog) for c in commands]})

    return answer
