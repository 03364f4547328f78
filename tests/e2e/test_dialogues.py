"""The acceptance dialogues, end to end: a client's phone on the simulated WhatsApp → our
server (for real, on loopback, PostgreSQL + Redis) → the assistant → the fake YClients.

One test per dialogue, ids = the dialogue's name: the shared sample (the repository's copy,
``tests/assistant_corpus/sample/`` on ``tests/fakes/yclients/catalog.example.json``) and this
repository's corpus (``tests/assistant_corpus/``). They play once per module, on a few stands
at once (``_stand_plan.py``), only the dialogues selected (``-k`` works); each test then checks
its own dialogue, and a failure shows what was expected, the dialogue's transcript and what
changed in YClients. Another set (a held-back one) plays the same way on stands of its own::

    ASSISTANT_DIALOGUES=path/catalog.json:path/dialogues.json .venv/bin/pytest -q \
        tests/e2e/test_dialogues.py

(``-k extra`` plays that set alone). ``ASSISTANT_DIALOGUES_VIA_MODEL=1`` plays every set
(sample, corpus, and the extra one) through the language-model understanding instead, each
salon switched to a fake model answering what the rules read (``_model_path.py``), with the
same expectations; each dialogue then also fails if its group's run shows the model path was
not used for every message (a fallback to the rules, a model answer not used).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from ._dialogues import (
    CORPUS_CATALOG,
    CORPUS_DIALOGUES,
    SAMPLE_CATALOG,
    SAMPLE_DIALOGUES,
    Dialogue,
    DialogueSet,
)
from ._expectations import Played, problems
from ._model_path import play_via_model
from ._stand import play

SAMPLE_SET = DialogueSet.load("sample", SAMPLE_CATALOG, SAMPLE_DIALOGUES)
CORPUS_SET = DialogueSet.load("corpus", CORPUS_CATALOG, CORPUS_DIALOGUES)


def _extra_sets() -> list[DialogueSet]:
    raw = os.environ.get("ASSISTANT_DIALOGUES", "").strip()
    if not raw:
        return []
    catalog, _, dialogues = raw.partition(":")
    return [DialogueSet.load("extra", Path(catalog), Path(dialogues))]


EXTRA_SETS = _extra_sets()
#: Play through the language-model path (the rules-echo fake model) instead of the rules.
VIA_MODEL = os.environ.get("ASSISTANT_DIALOGUES_VIA_MODEL", "").strip() not in ("", "0")
#: Sets played together, on the same stands (their salons must differ).
GROUPS: tuple[tuple[DialogueSet, ...], ...] = (
    (SAMPLE_SET, CORPUS_SET),
    *((s,) for s in EXTRA_SETS),
)


async def _play_group(
    group: Sequence[DialogueSet], keys: set[tuple[str, str]]
) -> dict[tuple[str, str], Played]:
    """Play a group through the rules, or the model path when :data:`VIA_MODEL` (then each
    dialogue also carries what shows the model path was not used throughout, if anything)."""
    if not VIA_MODEL:
        return await play(group, keys)
    played, run = await play_via_model(group, keys)
    model_problems = run.problems()
    for result in played.values():
        result.errors.extend(f"model path: {p}" for p in model_problems)
    return played


class Outcomes:
    """Plays a group of sets the first time one of its dialogues is asked for."""

    def __init__(self, selected: set[tuple[str, str]]) -> None:
        self.selected = selected
        self.played: dict[tuple[str, str], Played] = {}

    def of(self, dialogue: Dialogue) -> Played:
        if dialogue.key not in self.played:
            group = next(g for g in GROUPS if any(s.name == dialogue.set_name for s in g))
            keys = {d.key for s in group for d in s.dialogues} & self.selected
            try:
                self.played.update(trio.run(_play_group, group, keys))
            except Exception as exc:  # each test of the group reports it once
                problem = f"the dialogues could not be played: {type(exc).__name__}: {exc}"
                for s in group:
                    for d in s.dialogues:
                        if d.key in keys and d.key not in self.played:
                            self.played[d.key] = Played(d, "", errors=[problem])
        return self.played[dialogue.key]


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Outcomes:
    """The module's dialogues, played on demand (only those pytest selected)."""
    selected: set[tuple[str, str]] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and callspec is not None:
            dialogue = callspec.params.get("dialogue")
            if isinstance(dialogue, Dialogue):
                selected.add(dialogue.key)
    return Outcomes(selected)


def _check(outcomes: Outcomes, dialogue: Dialogue) -> None:
    played = outcomes.of(dialogue)
    found = problems(played)
    if found:
        listed = "\n".join(f"  - {p}" for p in found)
        expected = json.dumps(dialogue.expect, ensure_ascii=False)
        pytest.fail(
            f"{len(found)} problem(s):\n{listed}\nexpected: {expected}\n{played.transcript()}",
            pytrace=False,
        )


def _params(dialogues: Sequence[Dialogue]) -> list[object]:
    return [pytest.param(d, id=d.name) for d in dialogues]


@pytest.mark.slow
@pytest.mark.parametrize("dialogue", _params(SAMPLE_SET.dialogues))
def test_sample_dialogue(outcomes: Outcomes, dialogue: Dialogue) -> None:
    _check(outcomes, dialogue)


@pytest.mark.slow
@pytest.mark.parametrize("dialogue", _params(CORPUS_SET.dialogues))
def test_corpus_dialogue(outcomes: Outcomes, dialogue: Dialogue) -> None:
    _check(outcomes, dialogue)


if EXTRA_SETS:  # defined only when a set is given, so no empty parameter set is skipped

    @pytest.mark.slow
    @pytest.mark.parametrize("dialogue", _params([d for s in EXTRA_SETS for d in s.dialogues]))
    def test_extra_dialogue(outcomes: Outcomes, dialogue: Dialogue) -> None:
        _check(outcomes, dialogue)
