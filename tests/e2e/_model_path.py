"""Dialogue sets played through the language-model understanding instead of the rules.

The model is a fake OpenAI-compatible server on loopback answering what the rules read
(``rules_echo``); our server gets ``AIADMIN_LLM_*`` pointing at it and each salon is switched to
the model through ``PATCH /marketplace/company/{id}/assistant/model``. A dialogue whose model
answers were not used would still pass on the rules' fallback, so each stand's ``/metrics`` are
read once its dialogues have played: :meth:`ModelRun.problems` says what shows the model path
was not used throughout (a fallback, a model answer not used, a request not as configured).
The one fallback by design is ``too_long``: a client text over ``MAX_MODEL_TEXT`` characters
is never sent to a model; exactly as many as the played dialogues hold must be counted.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from actors.assistant._catalog import AssistantCatalog
from actors.assistant._llm_understander import MAX_MODEL_TEXT
from tests.actors.assistant.example_catalog import salon_catalog
from tests.fakes.openai import FakeOpenAI, rules_echo, running_fake_openai

from ._dialogues import Dialogue, DialogueError, DialogueSet
from ._expectations import Played
from ._stand import ADMIN_KEY, Salon, Stand, StandError, play

SECRET = "sk-dialogues-5e4d3c2b1a"
MODEL = "echo-model"


def catalogs_by_title(sets: Sequence[DialogueSet]) -> dict[str, AssistantCatalog]:
    """The sets' salons as the assistant sees them, by title (the prompt names a salon so)."""
    catalogs: dict[str, AssistantCatalog] = {}
    for s in sets:
        for salon in s.salons.values():
            title = str(salon["title"])
            if title in catalogs:
                raise DialogueError(f"two salons played together are both called {title!r}")
            catalogs[title] = salon_catalog(salon)
    return catalogs


def too_long_texts(sets: Sequence[DialogueSet], selected: Collection[tuple[str, str]]) -> int:
    """How many client texts of the selected dialogues no model is sent (too long): a burst
    counts as the one text it is read as (its messages joined by newlines)."""
    count = 0
    for s in sets:
        for d in s.dialogues:
            if d.key not in selected:
                continue
            burst = "\n".join(t.text for t in d.burst if t.kind == "text")
            count += len(burst) > MAX_MODEL_TEXT
            count += sum(t.kind == "text" and len(t.text) > MAX_MODEL_TEXT for t in d.turns)
    return count


@dataclass
class ModelRun:
    """One play through the model path: the fake's requests and each stand's model counters."""

    fake: FakeOpenAI | None = None
    calls: float = 0.0  # aiadmin_llm_calls_total, summed over the stands
    fallbacks: dict[str, float] = field(default_factory=dict)  # by reason, summed
    stands_read: int = 0
    expected_too_long: int = 0  # client texts in the played dialogues over MAX_MODEL_TEXT
    titles: frozenset[str] = frozenset()  # salons whose dialogues played a text for a model
    errors: list[str] = field(default_factory=list)

    async def switch_on(self, stand: Stand, salon: Salon) -> None:
        """Switch the salon to the model (``salon_setup`` for :func:`play`)."""
        response = await stand.http.patch(
            f"/marketplace/company/{salon.company_id}/assistant/model",
            json={"enabled": True},
            headers={"X-API-Key": ADMIN_KEY},
        )
        if response.status_code != 200 or response.json()["model"]["in_effect"] != MODEL:
            raise StandError(f"switching salon {salon.salon_id} to the model: {response.text}")

    async def read_metrics(self, stand: Stand) -> None:
        """Add the stand's model counters (``stand_done`` for :func:`play`)."""
        try:
            got = await stand.http.get("/metrics", headers={"X-API-Key": ADMIN_KEY})
            got.raise_for_status()
        except httpx.HTTPError as exc:
            self.errors.append(f"reading {stand.base_url}/metrics failed: {exc}")
            return
        for family in text_string_to_metric_families(got.text):
            for sample in family.samples:
                if sample.name == "aiadmin_llm_calls_total":
                    self.calls += sample.value
                elif sample.name == "aiadmin_llm_fallbacks_total":
                    reason = sample.labels["reason"]
                    self.fallbacks[reason] = self.fallbacks.get(reason, 0.0) + sample.value
        self.stands_read += 1

    def problems(self) -> list[str]:
        """What shows the model path was not used for every message the model read."""
        found = list(self.errors)
        requests = self.fake.requests if self.fake is not None else []
        if self.calls != len(requests):
            found.append(
                f"{len(requests)} message(s) went to the model but {self.calls:g} model "
                "answer(s) were used (aiadmin_llm_calls_total)"
            )
        fell_back = {r: n for r, n in self.fallbacks.items() if n and r != "too_long"}
        if fell_back:
            found.append(f"the rules read instead of the model: {fell_back}")
        too_long = self.fallbacks.get("too_long", 0.0)
        if too_long != self.expected_too_long:
            found.append(
                f"{too_long:g} text(s) kept from the model as too long (too_long), but the "
                f"dialogues played hold {self.expected_too_long} over {MAX_MODEL_TEXT} characters"
            )
        asked = {_salon_named(r.body) for r in requests}
        unasked = sorted(self.titles - asked)
        if unasked:
            found.append(f"no message of these salons went to the model: {unasked}")
        if any(r.body.get("model") != MODEL for r in requests):
            found.append(f"a request named another model than {MODEL!r}")
        if any(r.headers.get("authorization") != f"Bearer {SECRET}" for r in requests):
            found.append("a request went without the configured API key")
        return found


def _has_text_for_model(dialogue: Dialogue) -> bool:
    """Whether the dialogue has a client text a model is sent (not empty, not too long)."""
    burst = "\n".join(t.text for t in dialogue.burst if t.kind == "text")
    texts = [burst, *(t.text for t in dialogue.turns if t.kind == "text")]
    return any(text.strip() and len(text) <= MAX_MODEL_TEXT for text in texts)


def _salon_named(body: Any) -> str | None:
    """The salon a model request was for (the prompt's state message names it)."""
    try:
        return str(json.loads(body["messages"][1]["content"])["salon"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


async def play_via_model(
    sets: Sequence[DialogueSet], selected: Collection[tuple[str, str]] | None = None
) -> tuple[dict[tuple[str, str], Played], ModelRun]:
    """Play the sets as :func:`play` does, every salon switched to the rules-echo model."""
    keys = set(selected) if selected is not None else {d.key for s in sets for d in s.dialogues}
    titles = frozenset(
        str(s.salons[d.salon_id]["title"])
        for s in sets
        for d in s.dialogues
        if d.key in keys and _has_text_for_model(d)
    )
    run = ModelRun(expected_too_long=too_long_texts(sets, keys), titles=titles)
    async with running_fake_openai() as fake:
        run.fake = fake
        fake.default = rules_echo(catalogs_by_title(sets))
        env = {
            "AIADMIN_LLM_BASE_URL": fake.base_url,
            "AIADMIN_LLM_MODEL": MODEL,
            "AIADMIN_LLM_API_KEY": SECRET,
        }
        played = await play(
            sets,
            keys,
            extra_env=env,
            salon_setup=run.switch_on,
            stand_done=run.read_metrics,
        )
    return played, run
