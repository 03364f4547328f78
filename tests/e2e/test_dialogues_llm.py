"""The shared sample dialogues end to end with the language-model understanding switched on,
the model being a fake on loopback that answers what the rules read (``rules_echo``): every
dialogue must come out exactly as with the rules (the same expectations hold), which proves
the model path speaks the same interface — names resolved by the rules' matchers, the same
``decide``, confirmations and YClients checks.

The stand is ``_stand.play``'s (our server for real on PostgreSQL + Redis, the fake YClients),
with ``AIADMIN_LLM_*`` pointing at the fake model and each salon switched to the model through
``PATCH /marketplace/company/{id}/assistant/model``. A dialogue whose model answers were not
used would still pass on the rules' fallback, so the server's ``/metrics`` are watched while
it plays: every model answer was used (``aiadmin_llm_calls_total``), none fell back. A
selection of the sample (a booking in one message, an option by number, a service the salon
lacks, a cancel, a move) keeps it short.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.actors.assistant.example_catalog import assistant_catalog
from tests.fakes.openai import FakeOpenAI, rules_echo, running_fake_openai

from ._dialogues import SAMPLE_CATALOG, Dialogue
from ._expectations import Played, problems
from ._stand import ADMIN_KEY, Salon, Stand, play
from .test_dialogues import SAMPLE_SET

SECRET = "sk-dialogues-5e4d3c2b1a"
CATALOGS = {
    str(s["title"]): assistant_catalog(int(s["id"]), path=SAMPLE_CATALOG)
    for s in SAMPLE_SET.catalog["salons"]
}


PLAYED = (
    "everything in one message",
    "pick an offered time by number",
    "a service the salon does not offer",
    "known client cancels after confirming",
    "known client moves a visit",
)
SELECTED = [d for d in SAMPLE_SET.dialogues if d.name in PLAYED]


@dataclass
class Watch:
    """The server's model counters, read from ``/metrics`` while the dialogues play."""

    base_url: str = ""
    calls: float = 0.0
    fallbacks: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                await trio.sleep(0.2)
                if not self.base_url:
                    continue
                try:
                    got = await http.get(
                        f"{self.base_url}/metrics", headers={"X-API-Key": ADMIN_KEY}
                    )
                    got.raise_for_status()
                    text = got.text
                except httpx.HTTPError:
                    continue  # stopping
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name == "aiadmin_llm_calls_total":
                            self.calls = max(self.calls, sample.value)
                        elif sample.name == "aiadmin_llm_fallbacks_total":
                            self.fallbacks[sample.labels["reason"]] = sample.value


WATCH = Watch()


async def _switch_on(stand: Stand, salon: Salon) -> None:
    response = await stand.http.patch(
        f"/marketplace/company/{salon.company_id}/assistant/model",
        json={"enabled": True},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"]["in_effect"] == "echo-model", response.text
    WATCH.base_url = stand.base_url


async def _play_with_model() -> tuple[dict[tuple[str, str], Played], FakeOpenAI, str]:
    async with running_fake_openai() as fake:
        fake.default = rules_echo(CATALOGS)
        env = {
            "AIADMIN_LLM_BASE_URL": fake.base_url,
            "AIADMIN_LLM_MODEL": "echo-model",
            "AIADMIN_LLM_API_KEY": SECRET,
        }
        keys = {d.key for d in SELECTED}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(WATCH.run)
            played = await play([SAMPLE_SET], keys, extra_env=env, salon_setup=_switch_on)
            nursery.cancel_scope.cancel()
        return played, fake, fake.base_url


@pytest.fixture(scope="module")
def with_model() -> tuple[dict[tuple[str, str], Played], FakeOpenAI, str]:
    return trio.run(_play_with_model)


@pytest.mark.slow
def test_every_sample_dialogue_comes_out_as_with_the_rules(
    with_model: tuple[dict[tuple[str, str], Played], FakeOpenAI, str],
) -> None:
    played, fake, _ = with_model
    failed: list[str] = []
    assert len(SELECTED) == len(PLAYED)
    for dialogue in SELECTED:
        found = problems(played[dialogue.key])
        if found:
            failed.append(_describe(dialogue, played[dialogue.key], found))
    assert not failed, "\n\n".join(failed)
    # every client message of the turns went to the model, and its answers were used
    assert len(fake.requests) >= len(SELECTED)
    assert WATCH.calls == len(fake.requests), (WATCH.calls, len(fake.requests))
    assert not any(WATCH.fallbacks.values()), WATCH.fallbacks
    assert all(r.body["model"] == "echo-model" for r in fake.requests)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in fake.requests)


def _describe(dialogue: Dialogue, played: Played, found: list[str]) -> str:
    listed = "\n".join(f"  - {p}" for p in found)
    expected = json.dumps(dialogue.expect, ensure_ascii=False)
    return f"{dialogue.name}:\n{listed}\nexpected: {expected}\n{played.transcript()}"
