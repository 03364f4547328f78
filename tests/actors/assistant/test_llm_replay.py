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
    Command,
    SetMaster,
    SetServices,
    SetWhen,
    TurnContext,
)
from actors.assistant._llm_schema import check, to_commands
from actors.assistant._understand import understand_rules
from tests.fakes.openai import echo

from .test_understand_cases import _TABLE, _context
from .understand_support import CATALOGS, NOWS


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
