"""The shared sample dialogues end to end with the language-model understanding switched on,
the model being a fake on loopback that answers what the rules read (``rules_echo``): every
dialogue must come out exactly as with the rules (the same expectations hold), which proves
the model path speaks the same interface — names resolved by the rules' matchers, the same
``decide``, confirmations and YClients checks.

The stand and the model are ``_model_path.play_via_model``'s (our server for real on
PostgreSQL + Redis, the fake YClients, ``AIADMIN_LLM_*`` pointing at the fake model, each salon
switched to the model through ``PATCH /marketplace/company/{id}/assistant/model``). A dialogue
whose model answers were not used would still pass on the rules' fallback, so each stand's
``/metrics`` are read once it has played: every model answer was used
(``aiadmin_llm_calls_total``), none fell back. The whole corpus plays the same way on demand
(``ASSISTANT_DIALOGUES_VIA_MODEL=1`` for ``test_dialogues.py``). A selection of the
sample (a booking in one message, an option by number, a service the salon
lacks, a cancel, a move) keeps it short.
"""

from __future__ import annotations

import json

import pytest
import trio

from ._dialogues import Dialogue
from ._expectations import Played, problems
from ._model_path import ModelRun, play_via_model
from .test_dialogues import SAMPLE_SET

PLAYED = (
    "everything in one message",
    "pick an offered time by number",
    "a service the salon does not offer",
    "known client cancels after confirming",
    "known client moves a visit",
)
SELECTED = [d for d in SAMPLE_SET.dialogues if d.name in PLAYED]


async def _play_with_model() -> tuple[dict[tuple[str, str], Played], ModelRun]:
    return await play_via_model([SAMPLE_SET], {d.key for d in SELECTED})


@pytest.fixture(scope="module")
def with_model() -> tuple[dict[tuple[str, str], Played], ModelRun]:
    return trio.run(_play_with_model)


@pytest.mark.slow
def test_every_sample_dialogue_comes_out_as_with_the_rules(
    with_model: tuple[dict[tuple[str, str], Played], ModelRun],
) -> None:
    played, run = with_model
    failed: list[str] = []
    assert len(SELECTED) == len(PLAYED)
    for dialogue in SELECTED:
        found = problems(played[dialogue.key])
        if found:
            failed.append(_describe(dialogue, played[dialogue.key], found))
    assert not failed, "\n\n".join(failed)
    # every client message of the turns went to the model, and its answers were used
    assert run.fake is not None and len(run.fake.requests) >= len(SELECTED)
    assert not run.problems(), run.problems()


def _describe(dialogue: Dialogue, played: Played, found: list[str]) -> str:
    listed = "\n".join(f"  - {p}" for p in found)
    expected = json.dumps(dialogue.expect, ensure_ascii=False)
    return f"{dialogue.name}:\n{listed}\nexpected: {expected}\n{played.transcript()}"
