"""understand_rules beyond the phrase table: the async wrapper, the safety net, odd inputs,
catalogs with little in them, and the per-catalog indexes."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import trio

import actors.assistant as assistant
from actors.assistant import _understand
from actors.assistant._catalog import AssistantCatalog, Master, SalonCard, Service
from actors.assistant._commands import (
    AmbiguousService,
    Confirm,
    Expecting,
    Flow,
    NotUnderstood,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    StartFlow,
    TurnContext,
    Understander,
    UnknownService,
)
from actors.assistant._names import MasterIndex
from actors.assistant._services_match import ServiceIndex

from .understand_support import CATALOGS, NOWS

ROMASHKA = CATALOGS["romashka"]
NOW = NOWS["romashka"]


def test_the_package_exports_understanding() -> None:
    assert assistant.understand_rules is _understand.understand_rules
    assert assistant.RuleUnderstander is _understand.RuleUnderstander
    assert {"understand_rules", "RuleUnderstander"} <= set(assistant.__all__)


def test_rule_understander_is_the_rules_behind_the_protocol() -> None:
    understander: Understander = assistant.RuleUnderstander()
    text = "запишите на шеллак завтра"

    async def main() -> tuple[object, ...]:
        return await understander.understand(text, TurnContext(), ROMASHKA, NOW)

    assert trio.run(main) == assistant.understand_rules(text, TurnContext(), ROMASHKA, NOW)


def test_a_bug_is_logged_and_read_as_not_understood(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> tuple[object, ...]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(_understand, "read_message", broken)
    with caplog.at_level(logging.ERROR, logger="actors.assistant._understand"):
        assert assistant.understand_rules("да", TurnContext(), ROMASHKA, NOW) == (NotUnderstood(),)
    assert "understanding failed" in caplog.text


def test_a_naive_now_is_caught_by_the_safety_net() -> None:
    naive = NOW.replace(tzinfo=None)
    assert assistant.understand_rules("завтра", TurnContext(), ROMASHKA, naive) == (
        NotUnderstood(),
    )


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\n", "а" * 4000, "запишите на маникюр завтра " * 150, "😀" * 3000, "1" * 4000],
)
def test_empty_and_long_messages(text: str) -> None:
    commands = _understand.read_message(text, TurnContext(), ROMASHKA, NOW)
    assert commands


def test_a_long_message_still_reads_its_request() -> None:
    text = "Здравствуйте! " + "Я у вас давно хожу, всё нравится. " * 100 + "Запишите на шеллак"
    commands = _understand.read_message(text, TurnContext(), ROMASHKA, NOW)
    assert StartFlow(assistant._commands.Flow.BOOK) in commands
    assert SetServices((6105,)) in commands


def test_an_empty_catalog_names_nothing() -> None:
    empty = AssistantCatalog(SalonCard(company_id=1, salon_id=1, title="Пусто"))
    commands = _understand.read_message("запишите к Игорю на маникюр", TurnContext(), empty, NOW)
    assert not any(isinstance(c, (SetServices, SetMaster, AmbiguousService)) for c in commands)
    assert _understand.read_message("да", TurnContext(), empty, NOW) == (Confirm(),)


def test_two_masters_with_one_first_name_need_the_surname() -> None:
    catalog = AssistantCatalog(
        SalonCard(company_id=2, salon_id=2, title="Два мастера"),
        services=(Service(1, "Стрижка"),),
        masters=(Master(11, "Анна Петрова"), Master(12, "Анна Соколова")),
    )
    read = _understand.read_message
    assert not any(
        isinstance(c, SetMaster) for c in read("к Анне на стрижку", TurnContext(), catalog, NOW)
    )
    assert SetMaster(12) in read("к Анне Соколовой на стрижку", TurnContext(), catalog, NOW)
    assert SetMaster(11) in read("к Петровой", TurnContext(), catalog, NOW)


def test_a_master_named_with_an_ordinary_word_needs_a_cue() -> None:
    catalog = AssistantCatalog(
        SalonCard(company_id=3, salon_id=3, title="Вера"),
        services=(Service(1, "Маникюр"),),
        masters=(Master(21, "Вера"),),
    )
    read = _understand.read_message
    assert SetMaster(21) in read("к Вере на маникюр", TurnContext(), catalog, NOW)
    assert not any(
        isinstance(c, SetMaster)
        for c in read("вера в лучшее и маникюр", TurnContext(), catalog, NOW)
    )


def test_a_name_asked_for_is_not_a_service_or_a_yes() -> None:
    asked = TurnContext(expecting=Expecting.NAME)
    for text in ("маникюр", "да", "завтра", "Привет", "ывапролдж"):
        commands = _understand.read_message(text, asked, ROMASHKA, NOW)
        assert not any(isinstance(c, SetName) for c in commands), (text, commands)


def test_indexes_are_built_once_per_catalog() -> None:
    assert ServiceIndex.of(ROMASHKA) is ServiceIndex.of(ROMASHKA)
    assert MasterIndex.of(ROMASHKA) is MasterIndex.of(ROMASHKA)
    same_content = AssistantCatalog(
        ROMASHKA.salon, ROMASHKA.services, ROMASHKA.masters, ROMASHKA.categories
    )
    assert ServiceIndex.of(same_content) is ServiceIndex.of(ROMASHKA)  # equal: one index
    assert ServiceIndex.of(CATALOGS["barber"]) is not ServiceIndex.of(ROMASHKA)


def test_times_of_an_offer_on_another_day_are_not_picked_by_a_time_alone() -> None:
    tomorrow_17 = dt.datetime.combine(
        NOW.date() + dt.timedelta(days=1), dt.time(17), tzinfo=NOW.tzinfo
    )
    context = TurnContext(Expecting.OPTION, 1, (tomorrow_17,))
    commands = _understand.read_message("сегодня в 17", context, ROMASHKA, NOW)
    assert not any(type(c).__name__ == "ChooseOption" for c in commands)


def _salon(*titles: str) -> AssistantCatalog:
    return AssistantCatalog(
        SalonCard(company_id=4, salon_id=4, title="Салон"),
        services=tuple(Service(k, title) for k, title in enumerate(titles, start=1)),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("хочу осветлить волосы", 1),  # осветлить → Осветление
        ("можно отбелить зубы завтра?", 2),  # отбелить → Отбеливание
        ("хочу почистить лицо", 3),  # почистить → чистка (the lexicon)
        ("надо удалить бородавку", 4),  # удалить → Удаление
    ],
)
def test_a_verb_names_the_service_made_from_it(text: str, expected: int) -> None:
    catalog = _salon("Осветление волос", "Отбеливание зубов", "Чистка лица", "Удаление бородавок")
    commands = _understand.read_message(text, TurnContext(), catalog, NOW)
    assert SetServices((expected,)) in commands, commands


def test_a_verb_that_names_no_title_picks_nothing() -> None:
    catalog = _salon("Осветление волос", "Окрашивание волос")
    commands = _understand.read_message("хочу сделать что-нибудь", TurnContext(), catalog, NOW)
    assert not any(isinstance(c, (SetServices, AmbiguousService)) for c in commands), commands


def test_a_kind_the_salon_lacks_is_unknown_and_a_plain_word_is_not() -> None:
    catalog = _salon("Массаж спины", "Общий массаж")
    read = _understand.read_message
    lacks = [c for c in read("хочу тайский массаж", TurnContext(), catalog, NOW)]
    assert UnknownService("тайский массаж", (1, 2)) in lacks
    assert not any(isinstance(c, (SetServices, AmbiguousService)) for c in lacks)
    plain = read("хочу хороший общий массаж", TurnContext(), catalog, NOW)
    assert SetServices((2,)) in plain
    assert not any(isinstance(c, UnknownService) for c in plain)


def test_a_name_signing_a_message_is_the_client_even_when_a_master_has_it() -> None:
    catalog = AssistantCatalog(
        SalonCard(company_id=5, salon_id=5, title="Спа"),
        services=(Service(1, "Массаж спины"),),
        masters=(Master(31, "Анна Ли"),),
    )
    read = _understand.read_message
    for text in (
        "запишите на массаж спины завтра в 15:00, Анна",
        "Анна, запишите на массаж спины завтра",
        "меня Анна, хочу на массаж спины",
    ):
        commands = read(text, TurnContext(), catalog, NOW)
        assert SetName("Анна") in commands, (text, commands)
        assert not any(isinstance(c, SetMaster) for c in commands), (text, commands)
    for text in ("хочу к Анне на массаж спины", "на массаж спины к мастеру Анна"):
        commands = read(text, TurnContext(), catalog, NOW)
        assert SetMaster(31) in commands, (text, commands)
        assert not any(isinstance(c, SetName) for c in commands), (text, commands)
    asked_master = TurnContext(expecting=Expecting.MASTER, flow=Flow.BOOK)
    commands = read("давайте завтра, Анна", asked_master, catalog, NOW)
    assert SetMaster(31) in commands and not any(isinstance(c, SetName) for c in commands)


@pytest.mark.parametrize(
    ("text", "hour"), [("опоздаю минут на 10", None), ("стрижка на 30 минут на 15:00", 15)]
)
def test_minutes_said_before_a_number_are_no_time(text: str, hour: int | None) -> None:
    """ "минут на 10" is about ten minutes; a time said after a duration is still the time."""
    commands = _understand.read_message(text, TurnContext(), ROMASHKA, NOW)
    times = [c.when.time for c in commands if isinstance(c, SetWhen)]
    assert times == ([] if hour is None else [dt.time(hour)])
