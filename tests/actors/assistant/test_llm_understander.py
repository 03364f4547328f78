"""The language-model understanding against a fake OpenAI-compatible server on loopback.

Each failure of the model (timeout, 429, 500, malformed JSON, a schema-invalid or
unresolvable command) must leave the message to the rules — the answer is exactly the rules'
— and count ``aiadmin_llm_fallbacks_total{reason}``; the API key must appear nowhere but in
the request's ``Authorization`` header.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors.assistant._commands import (
    ChooseOption,
    Command,
    Comment,
    Expecting,
    Flow,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    StartFlow,
    TurnContext,
    UnknownService,
)
from actors.assistant._llm_client import LlmClient
from actors.assistant._llm_understander import LlmMetrics, LlmUnderstander, ModelUnderstanders
from actors.assistant._understand import RuleUnderstander, understand_rules
from config import ConfigError, settings_from_env
from metrics import MetricsRegistry
from tests.fakes.openai import (
    Answer,
    FakeOpenAI,
    SeenRequest,
    hang,
    running_fake_openai,
    status,
    text_answer,
    tool_call,
)

from .booking_stand import NOW
from .example_catalog import assistant_catalog

SECRET = "sk-test-4f9a1c0b7e2d"
CATALOG = assistant_catalog()
COMPANY = 555100
#: Words the rules cannot read (they answer NotUnderstood) but a model might.
MUMBLE = "ну это самое, как в тот раз, только покороче"
#: A message the rules read well, to tell their answer from the model's.
PLAIN = "Мужская стрижка к Игорю послезавтра в 15:00"
FALLBACKS = "aiadmin_llm_fallbacks_total"


@dataclass
class RecordingPolicy:
    """A ``ModelPolicy`` double: one model for every salon, usage kept."""

    model: str | None = "test-model"
    usage: list[tuple[int, int, int]] = field(default_factory=list)
    broken: bool = False

    async def choice(self, company_id: int) -> str | None:
        if self.broken:
            raise RuntimeError("policy storage down")
        return self.model

    async def record_usage(
        self, company_id: int, prompt_tokens: int, completion_tokens: int
    ) -> None:
        self.usage.append((company_id, prompt_tokens, completion_tokens))


@dataclass
class Rig:
    fake: FakeOpenAI
    llm: LlmUnderstander
    metrics: MetricsRegistry
    policy: RecordingPolicy

    async def read(self, text: str, context: TurnContext | None = None) -> tuple[Command, ...]:
        return await self.llm.understand(text, context or TurnContext(), CATALOG, NOW)

    def fallbacks(self, reason: str) -> float:
        return self.metrics.value(FALLBACKS, {"reason": reason}) or 0.0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_fake_openai() as fake:
        client = LlmClient(fake.base_url, SECRET, timeout=5.0)
        metrics = MetricsRegistry()
        policy = RecordingPolicy()
        llm = LlmUnderstander(
            client,
            "test-model",
            RuleUnderstander(),
            LlmMetrics(metrics),
            company_id=COMPANY,
            policy=policy,
        )
        try:
            yield Rig(fake, llm, metrics, policy)
        finally:
            await client.aclose()


BOOKING = {
    "commands": [
        {"type": "start_flow", "flow": "book"},
        {"type": "set_services", "names": ["мужская стрижка"]},
        {"type": "set_master", "name": "Игорь"},
        {"type": "set_when", "text": "послезавтра в 15:00"},
    ]
}


def assert_booking(commands: tuple[Command, ...]) -> None:
    assert commands[:3] == (StartFlow(Flow.BOOK), SetServices((6101,)), SetMaster(6201))
    when = commands[3]
    assert isinstance(when, SetWhen)
    assert when.when.date == dt.date(2026, 3, 13) and when.when.time == dt.time(15, 0)


async def test_a_tool_call_becomes_the_rules_commands_and_its_tokens_are_reported(rig: Rig) -> None:
    rig.fake.script(tool_call(BOOKING, usage={"prompt_tokens": 321, "completion_tokens": 45}))
    commands = await rig.read(MUMBLE)
    assert understand_rules(MUMBLE, TurnContext(), CATALOG, NOW) != commands  # the model's reading
    assert_booking(commands)
    assert rig.policy.usage == [(COMPANY, 321, 45)]
    assert rig.metrics.value("aiadmin_llm_calls_total") == 1
    assert rig.metrics.value(FALLBACKS, {"reason": "timeout"}) is None
    (seen,) = rig.fake.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    body = seen.body
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["tools"][0]["function"]["name"] == "commands"
    sent = str(body["messages"])
    # catalog names, never ids or the salon's phone; "now" in the salon's zone
    assert "Стрижка мужская" in sent and "Игорь Смирнов" in sent
    assert "6101" not in sent and "6201" not in sent and "555100" not in sent
    assert CATALOG.salon.phone and CATALOG.salon.phone not in sent
    assert "2026-03-11T09:00:00+03:00" in sent
    assert body["messages"][-1] == {"role": "user", "content": MUMBLE}


async def test_the_last_turns_and_the_offer_are_sent(rig: Rig) -> None:
    offered = (dt.datetime(2026, 3, 13, 15, 0, tzinfo=NOW.tzinfo),)
    context = TurnContext(
        expecting=Expecting.OPTION,
        offered_count=1,
        offered_times=offered,
        flow=Flow.BOOK,
        history=(("client", "хочу стрижку"), ("assistant", "Есть 15:00. Подходит?")),
    )
    rig.fake.script(tool_call({"commands": [{"type": "choose_option", "time": "15:00"}]}))
    assert await rig.read("давай на три", context) == (ChooseOption(time=dt.time(15)),)
    messages = rig.fake.requests[0].body["messages"]
    assert messages[-3:] == [
        {"role": "user", "content": "хочу стрижку"},
        {"role": "assistant", "content": "Есть 15:00. Подходит?"},
        {"role": "user", "content": "давай на три"},
    ]
    assert "2026-03-13T15:00+03:00" in messages[1]["content"]


async def test_json_in_the_message_text_is_read_fenced_or_not(rig: Rig) -> None:
    import json

    raw = json.dumps(BOOKING, ensure_ascii=False)
    rig.fake.script(text_answer(f"Вот ответ:\n```json\n{raw}\n```"), text_answer(raw))
    assert_booking(await rig.read(MUMBLE))
    assert_booking(await rig.read(MUMBLE))
    assert rig.fallbacks("malformed") == 0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (tool_call('{"commands": [{"type": "confirm"'), "malformed"),
        (text_answer("Конечно! Записываю вас на завтра."), "malformed"),
        (status(429), "http_429"),
        (status(500), "http_5xx"),
        (status(401), "http_4xx"),
        (tool_call({"commands": [{"type": "cancel_all_records"}]}), "invalid"),
        (tool_call({"commands": [{"type": "set_master", "name": 6201}]}), "invalid"),
        (tool_call({"commands": [{"type": "confirm", "record_id": 1}]}), "invalid"),
        (tool_call({"commands": []}), "invalid"),
        (tool_call({"commands": [{"type": "rate", "rating": 9}]}), "invalid"),
        (tool_call({"commands": [{"type": "set_master", "name": "Василий"}]}), "unresolvable"),
        (tool_call({"commands": [{"type": "choose_option", "number": 3}]}), "unresolvable"),
        (tool_call({"commands": [{"type": "set_name", "name": "Тимур"}]}), "unresolvable"),
        (tool_call({"commands": [{"type": "set_when", "text": "когда-нибудь"}]}), "unresolvable"),
        (tool_call({"commands": [{"type": "comment", "text": "Салон ужасен"}]}), "unresolvable"),
    ],
)
async def test_a_failed_or_unusable_answer_leaves_the_message_to_the_rules(
    rig: Rig, answer: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.fake.script(answer)  # type: ignore[arg-type]
    assert await rig.read(PLAIN) == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)
    assert rig.fallbacks(reason) == 1
    assert len(rig.fake.requests) == 1
    assert SECRET not in caplog.text


def refusing(*refused: str) -> Callable[[SeenRequest], Answer]:
    """A server that answers 400 to a request carrying any of ``refused`` (body keys), naming
    it as real servers do, and the booking as text JSON otherwise."""

    def answer(request: SeenRequest) -> Answer:
        for key in refused:
            if key in request.body:
                return status(400, f'{{"error": {{"message": "{key} is not supported"}}}}')
        return text_answer(json.dumps(BOOKING, ensure_ascii=False))

    return answer


async def test_a_server_refusing_tools_is_asked_with_a_json_schema_from_then_on(rig: Rig) -> None:
    rig.fake.default = refusing("tool_choice")
    assert_booking(await rig.read(MUMBLE))  # the model's reading, not the rules'
    refused, schema = rig.fake.requests
    assert "tools" in refused.body and "response_format" not in refused.body
    assert "tools" not in schema.body and "tool_choice" not in schema.body
    assert schema.body["response_format"]["type"] == "json_schema"
    assert schema.body["response_format"]["json_schema"]["schema"]["required"] == ["commands"]
    assert_booking(await rig.read(MUMBLE))  # remembered: one request, straight to the schema
    assert len(rig.fake.requests) == 3
    assert "response_format" in rig.fake.requests[2].body
    assert sum(rig.fallbacks(r) for r in ("http_4xx", "malformed")) == 0
    assert rig.metrics.value("aiadmin_llm_calls_total") == 2


async def test_a_server_refusing_both_gets_the_schema_as_instructions(rig: Rig) -> None:
    rig.fake.default = refusing("tool_choice", "response_format")
    assert_booking(await rig.read(MUMBLE))
    assert len(rig.fake.requests) == 3
    plain = rig.fake.requests[2].body
    assert "tools" not in plain and "response_format" not in plain
    system = plain["messages"][0]  # the schema ends the first system message
    assert system["role"] == "system" and '"required": ["commands"]' in system["content"]
    assert plain["messages"][-1] == {"role": "user", "content": MUMBLE}
    assert_booking(await rig.read(MUMBLE))
    assert len(rig.fake.requests) == 4 and "tools" not in rig.fake.requests[3].body


async def test_a_400_once_tools_worked_that_names_no_tools_is_a_fallback(rig: Rig) -> None:
    rig.fake.script(tool_call(BOOKING), status(400, '{"error": {"message": "context too long"}}'))
    assert_booking(await rig.read(MUMBLE))
    assert await rig.read(PLAIN) == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)
    assert rig.fallbacks("http_4xx") == 1
    assert len(rig.fake.requests) == 2  # no retry without tools: tools work for this model
    assert "tools" in rig.fake.requests[1].body


async def test_an_invented_service_is_one_the_salon_lacks_never_an_id(rig: Rig) -> None:
    rig.fake.script(
        tool_call({"commands": [{"type": "set_services", "names": ["ботокс для волос"]}]})
    )
    (command,) = await rig.read("хочу ботокс для волос")
    assert isinstance(command, UnknownService)
    assert set(command.closest) <= {s.id for s in CATALOG.services}
    assert rig.metrics.value("aiadmin_llm_calls_total") == 1


async def test_a_name_the_client_wrote_is_taken(rig: Rig) -> None:
    rig.fake.script(tool_call({"commands": [{"type": "set_name", "name": "Тимур"}]}))
    assert await rig.read("я Тимур", TurnContext(expecting=Expecting.NAME)) == (SetName("Тимур"),)


async def test_a_server_that_never_answers_times_out_into_the_rules(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeOpenAI()
    fake.script(hang())
    metrics = MetricsRegistry()
    client = LlmClient(
        "http://llm.test/v1", SECRET, timeout=8.0, transport=httpx.ASGITransport(app=fake)
    )
    llm = LlmUnderstander(client, "m", RuleUnderstander(), LlmMetrics(metrics))
    start = trio.current_time()
    commands = await llm.understand(PLAIN, TurnContext(), CATALOG, NOW)
    assert trio.current_time() - start == pytest.approx(8.0)
    assert commands == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)
    assert metrics.value(FALLBACKS, {"reason": "timeout"}) == 1
    assert SECRET not in caplog.text
    await client.aclose()


async def test_an_unreachable_server_is_a_connect_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics = MetricsRegistry()
    client = LlmClient(f"http://127.0.0.1:{port}/v1", SECRET, timeout=5.0)
    llm = LlmUnderstander(client, "m", RuleUnderstander(), LlmMetrics(metrics))
    commands = await llm.understand(PLAIN, TurnContext(), CATALOG, NOW)
    assert commands == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)
    assert metrics.value(FALLBACKS, {"reason": "connect"}) == 1
    assert SECRET not in caplog.text and SECRET not in repr(client)
    await client.aclose()


async def test_the_salon_policy_picks_the_model_or_the_rules(rig: Rig) -> None:
    client = LlmClient(rig.fake.base_url, SECRET)
    models = ModelUnderstanders(client, rig.policy, LlmMetrics(rig.metrics))
    rules = RuleUnderstander()
    rig.policy.model = "salon-model"
    chosen = await models.for_company(COMPANY, rules)
    assert chosen is not None
    rig.fake.script(tool_call(BOOKING))
    assert_booking(await chosen.understand(MUMBLE, TurnContext(), CATALOG, NOW))
    assert rig.fake.requests[-1].body["model"] == "salon-model"
    rig.policy.model = None  # switched off, or the daily cap reached
    assert await models.for_company(COMPANY, rules) is None
    rig.policy.broken = True
    assert await models.for_company(COMPANY, rules) is None
    assert rig.fallbacks("policy_error") == 1
    await client.aclose()


def test_settings_enable_the_model_and_never_show_the_key() -> None:
    off = settings_from_env({}, dotenv=None)
    assert not off.llm.enabled
    on = settings_from_env(
        {
            "AIADMIN_LLM_BASE_URL": "https://api.example.com/v1",
            "AIADMIN_LLM_MODEL": "gpt-4o-mini",
            "AIADMIN_LLM_API_KEY": SECRET,
            "AIADMIN_LLM_TIMEOUT": "3",
        },
        dotenv=None,
    )
    assert on.llm.enabled and on.llm.model == "gpt-4o-mini" and on.llm.timeout == 3.0
    assert on.llm.api_key == SECRET
    assert SECRET not in repr(on) and SECRET not in repr(on.llm)
    with pytest.raises(ConfigError) as bad:
        settings_from_env({"AIADMIN_LLM_BASE_URL": f"ftp://{SECRET}@x"}, dotenv=None)
    assert "AIADMIN_LLM_BASE_URL" in str(bad.value) and SECRET not in str(bad.value)


async def test_a_review_comment_must_be_whole_words_the_client_wrote(rig: Rig) -> None:
    # "хорошо" is inside "нехорошо": stored as the client's comment it would say the opposite
    said = "Нехорошо вышло, мастер опоздал"
    rig.fake.script(tool_call({"commands": [{"type": "comment", "text": "хорошо"}]}))
    commands = await rig.read(said)
    assert Comment("хорошо") not in commands
    assert commands == understand_rules(said, TurnContext(), CATALOG, NOW)
    assert rig.fallbacks("unresolvable") == 1


async def test_a_name_inside_another_word_is_not_the_clients_name(rig: Rig) -> None:
    # the client is Жанна; "Анна" is only a part of her name
    rig.fake.script(tool_call({"commands": [{"type": "set_name", "name": "Анна"}]}))
    context = TurnContext(expecting=Expecting.NAME)
    commands = await rig.read("Жанна", context)
    assert SetName("Анна") not in commands
    assert rig.fallbacks("unresolvable") == 1


async def test_json_too_deep_to_parse_is_a_fallback_not_a_crash(rig: Rig) -> None:
    rig.fake.script(text_answer("[" * 100_000 + "]" * 100_000))
    assert await rig.read(PLAIN) == understand_rules(PLAIN, TurnContext(), CATALOG, NOW)
    assert rig.fallbacks("error") == 1


async def test_a_huge_message_is_read_by_the_rules_and_never_sent(rig: Rig) -> None:
    # a burst of 20 messages of 5,000 characters each: ~100,000 characters of tokens to spend
    text = "\n".join([PLAIN, *["бла " * 1250] * 19])
    assert await rig.read(text) == understand_rules(text, TurnContext(), CATALOG, NOW)
    assert rig.fake.requests == []
    assert rig.fallbacks("too_long") == 1
