"""What a model server can make the node spend (issue 15): an answer too large is not read
past a limit, and a server that reports no ``usage`` is still held to the salon's cap
(tokens estimated from characters) — against the fake OpenAI server on real loopback HTTP,
with the real per-salon policy on in-memory storage."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from math import ceil

import pytest
import trio

from actors.assistant._commands import TurnContext
from actors.assistant._llm_client import MAX_RESPONSE_BYTES, LlmClient
from actors.assistant._llm_understander import LlmMetrics, ModelUnderstanders
from actors.assistant._model_policy import SalonModelPolicy
from actors.assistant._understand import RuleUnderstander, understand_rules
from metrics import MetricsRegistry
from storage import SalonModelSettings, Storage, open_storage
from tests.fakes.openai import FakeOpenAI, raw, running_fake_openai, tool_call

from .booking_stand import NOW
from .example_catalog import assistant_catalog

CATALOG = assistant_catalog()
PLAIN = "Мужская стрижка к Игорю послезавтра в 15:00"
ARGS = {"commands": [{"type": "start_flow", "flow": "book"}]}
WALL = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


@dataclass
class Stand:
    fake: FakeOpenAI
    storage: Storage
    models: ModelUnderstanders
    registry: MetricsRegistry
    company_id: int

    async def read(self, text: str = PLAIN) -> tuple[object, ...]:
        understander = await self.models.for_company(self.company_id, RuleUnderstander())
        assert understander is not None, "the salon's model is not in effect"
        return await understander.understand(text, TurnContext(), CATALOG, NOW)

    def metric(self, name: str, reason: str | None = None) -> float:
        labels = {"reason": reason} if reason is not None else None
        return self.registry.value(name, labels) or 0.0


@pytest.fixture
async def stand() -> AsyncIterator[Stand]:
    async with (
        running_fake_openai() as fake,
        open_storage(monotonic_clock=trio.current_time) as storage,
    ):
        company = (await storage.companies.create(777001, timezone="Europe/Moscow")).company
        registry = MetricsRegistry()
        metrics = LlmMetrics(registry)
        policy = SalonModelPolicy(storage, "m", now=lambda: WALL, fallbacks=metrics.fallbacks)
        client = LlmClient(fake.base_url, "sk-x", timeout=5.0)
        try:
            yield Stand(
                fake, storage, ModelUnderstanders(client, policy, metrics), registry, company.id
            )
        finally:
            await client.aclose()


async def test_an_answer_over_the_size_limit_is_not_read_past_it(stand: Stand) -> None:
    await stand.storage.model_usage.put_settings(
        stand.company_id, SalonModelSettings(True, None, 1_000_000)
    )
    padded = json.dumps(ARGS).encode() + b" " * MAX_RESPONSE_BYTES  # valid JSON, too long
    stand.fake.script(raw(padded))
    commands = await stand.read()
    assert commands == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)  # the rules read it
    assert stand.metric("aiadmin_llm_fallbacks_total", "too_large") == 1
    stand.fake.script(tool_call(ARGS))  # an answer under the limit is read as before
    await stand.read()
    assert stand.metric("aiadmin_llm_calls_total") == 1


def _without_usage(arguments: object, usage: object = None) -> bytes:
    """A completion calling the function with ``arguments``, with ``usage`` as given (left
    out when ``None``), as servers that do not report it answer."""
    call = {"id": "c", "type": "function", "function": {"name": "commands", "arguments": ""}}
    call["function"]["arguments"] = json.dumps(arguments)  # type: ignore[index]
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    payload: dict[str, object] = {"choices": [{"index": 0, "message": message}]}
    if usage is not None:
        payload["usage"] = usage
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "usage", [None, "lots", {"prompt_tokens": "12", "completion_tokens": 3}, {"total": 5}]
)
async def test_a_server_reporting_no_usage_is_held_to_the_cap_by_estimate(
    stand: Stand, usage: object
) -> None:
    cid = stand.company_id
    await stand.storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 3_000))
    stand.fake.script(*[raw(_without_usage(ARGS, usage)) for _ in range(10)])
    reads = 0
    while await stand.models.for_company(cid, RuleUnderstander()) is not None:
        await stand.read()
        reads += 1
        assert reads < 10, "the cap was never reached"
    sent = json.dumps(stand.fake.requests[0].body, ensure_ascii=False)
    prompt, completion = ceil(len(sent) / 4), ceil(len(json.dumps(ARGS)) / 4)
    used = await stand.storage.model_usage.usage(cid, WALL.date())
    assert (used.prompt_tokens, used.completion_tokens) == (reads * prompt, reads * completion)
    assert used.total >= 3_000 and reads >= 1
    assert stand.metric("aiadmin_llm_usage_estimated_total") == reads
    assert stand.metric("aiadmin_llm_fallbacks_total", "cap_reached") == 1


async def test_reported_usage_is_taken_as_is(stand: Stand) -> None:
    cid = stand.company_id
    await stand.storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 3_000))
    stand.fake.script(raw(_without_usage(ARGS, {"prompt_tokens": 0, "completion_tokens": 7})))
    await stand.read()
    used = await stand.storage.model_usage.usage(cid, WALL.date())
    assert (used.prompt_tokens, used.completion_tokens) == (0, 7)
    assert stand.metric("aiadmin_llm_usage_estimated_total") == 0
