"""Cancelling, moving and listing visits through ``decide``: the right visit, only after a
yes, nothing moved to a time that is not free, nothing claimed that YClients did not do."""

from __future__ import annotations

import datetime as dt

from actors.assistant._commands import (
    ChooseOption,
    ChooseVisit,
    Confirm,
    Deny,
    Expecting,
    Flow,
    SetServices,
    StartFlow,
)
from actors.assistant._effects import (
    ActionFailed,
    CancelVisit,
    FailureKind,
    FindSlots,
    FindVisits,
    MoveVisit,
    Slot,
    Visit,
)

from .decide_chat import ALINA, GEL, IGOR, MEN, Chat, Salon, at, when

HAIRCUT = Visit(7001, at(3, 17), IGOR, (MEN,), ("Стрижка мужская",), 45)
NAILS = Visit(7002, at(4, 13), ALINA, (GEL,), ("Маникюр с покрытием гель-лак",), 90)
PAST = Visit(7000, at(-1, 12), IGOR, (MEN,), ("Стрижка мужская",), 45)


def test_one_visit_is_cancelled_only_after_a_yes() -> None:
    chat = Chat(Salon(visits=[HAIRCUT], crm_name="Рустам"))
    reply = chat.say(StartFlow(Flow.CANCEL))
    assert chat.of(FindVisits) == [FindVisits()]
    assert reply == (
        "Здравствуйте, Рустам!\nОтменить запись: Стрижка мужская у Игоря, сб 15 марта в 17:00?"
    )
    assert chat.of(CancelVisit) == []
    reply = chat.say(Confirm())
    assert chat.of(CancelVisit) == [CancelVisit(HAIRCUT.record_id)]
    assert reply == "Готово, отменила запись: Стрижка мужская у Игоря, сб 15 марта в 17:00."


def test_a_no_keeps_the_visit() -> None:
    chat = Chat(Salon(visits=[HAIRCUT]))
    chat.say(StartFlow(Flow.CANCEL))
    reply = chat.say(Deny())
    assert reply == "Хорошо, запись остаётся."
    assert chat.of(CancelVisit) == []
    chat.say(Confirm())  # a late "да" confirms nothing any more
    assert chat.of(CancelVisit) == []


def test_several_visits_are_listed_and_picked_by_number() -> None:
    chat = Chat(Salon(visits=[NAILS, HAIRCUT]))
    reply = chat.say(StartFlow(Flow.CANCEL))
    assert reply.splitlines()[1:] == [
        "Какую запись отменить? Напишите номер.",
        "1) Стрижка мужская у Игоря, сб 15 марта в 17:00",
        "2) Маникюр с покрытием гель-лак у Алины, вс 16 марта в 13:00",
    ]
    context = chat.state.context()
    assert (context.expecting, context.offered_count) == (Expecting.VISIT, 2)
    reply = chat.say(ChooseOption(number=2))
    assert reply == "Отменить запись: Маникюр с покрытием гель-лак у Алины, вс 16 марта в 13:00?"
    chat.say(Confirm())
    assert chat.of(CancelVisit) == [CancelVisit(NAILS.record_id)]


def test_a_visit_is_picked_by_the_service_named() -> None:
    chat = Chat(Salon(visits=[HAIRCUT, NAILS]))
    reply = chat.say(StartFlow(Flow.CANCEL), SetServices((GEL,)))
    assert reply.endswith(
        "Отменить запись: Маникюр с покрытием гель-лак у Алины, вс 16 марта в 13:00?"
    )


def test_a_visit_is_picked_by_its_day() -> None:
    chat = Chat(Salon(visits=[HAIRCUT, NAILS]))
    chat.say(StartFlow(Flow.CANCEL))
    reply = chat.say(ChooseVisit(day=NAILS.start.date()))
    assert "Маникюр" in reply and reply.endswith("?")
    chat.say(Confirm())
    assert chat.of(CancelVisit) == [CancelVisit(NAILS.record_id)]


def test_no_visits_is_said() -> None:
    chat = Chat(Salon(visits=[PAST]))
    reply = chat.say(StartFlow(Flow.CANCEL))
    assert reply.endswith("У вас нет предстоящих записей в нашем салоне.")
    assert chat.state.flow is None


def test_my_visits_are_listed() -> None:
    chat = Chat(Salon(visits=[NAILS, HAIRCUT, PAST]))
    reply = chat.say(StartFlow(Flow.VISITS))
    assert reply.splitlines()[1:] == [
        "Ваши предстоящие записи:",
        "1) Стрижка мужская у Игоря, сб 15 марта в 17:00",
        "2) Маникюр с покрытием гель-лак у Алины, вс 16 марта в 13:00",
    ]
    assert chat.of(CancelVisit) == [] and chat.of(MoveVisit) == []


def test_a_cancel_that_failed_is_not_claimed() -> None:
    chat = Chat(Salon(visits=[HAIRCUT]))
    chat.say(StartFlow(Flow.CANCEL))
    chat.say(Confirm(), auto=False)
    reply = chat.feed(ActionFailed("cancel", FailureKind.UNAVAILABLE))
    assert "Не получилось отменить" in reply
    assert "отменила" not in reply
    reply = Chat(Salon(visits=[HAIRCUT]))
    reply.say(StartFlow(Flow.CANCEL))
    reply.say(Confirm(), auto=False)
    assert "уже нет" in reply.feed(ActionFailed("cancel", FailureKind.NOT_FOUND))


def test_a_move_to_a_free_time_on_the_same_day() -> None:
    chat = Chat(Salon(visits=[HAIRCUT, NAILS], crm_name="Гульнара"))
    reply = chat.say(StartFlow(Flow.MOVE), SetServices((GEL,)), when("на 16:00 в тот же день"))
    [search] = chat.of(FindSlots)
    assert search == FindSlots((GEL,), (NAILS.start.date(),), (ALINA,), None, dt.time(16), 14)
    assert reply.endswith(
        "Перенести запись (Маникюр с покрытием гель-лак у Алины, вс 16 марта в 13:00) "
        "на вс 16 марта в 16:00 у Алины?"
    )
    assert chat.of(MoveVisit) == []
    reply = chat.say(Confirm())
    assert chat.of(MoveVisit) == [MoveVisit(NAILS.record_id, ALINA, at(4, 16), (GEL,))]
    assert reply == (
        "Готово, перенесла: Маникюр с покрытием гель-лак у Алины, теперь вс 16 марта в 16:00. "
        "Ждём вас!"
    )


def test_a_move_to_a_taken_time_moves_nothing_and_offers_nearby() -> None:
    chat = Chat(Salon(visits=[NAILS], busy={(ALINA, at(4, 16))}))
    reply = chat.say(StartFlow(Flow.MOVE), when("на 16:00"))
    assert "16:00 у Алины уже занято" in reply
    assert chat.state.context().expecting is Expecting.OPTION
    assert chat.of(MoveVisit) == []
    reply = chat.say(ChooseOption(time=dt.time(16, 30)))
    assert reply.startswith("Перенести запись")
    chat.say(Confirm())
    assert chat.of(MoveVisit) == [MoveVisit(NAILS.record_id, ALINA, at(4, 16, 30), (GEL,))]


def test_a_move_asks_when_if_not_said() -> None:
    chat = Chat(Salon(visits=[HAIRCUT]))
    reply = chat.say(StartFlow(Flow.MOVE))
    assert reply.endswith(
        "На какой день и время перенести запись (Стрижка мужская у Игоря, сб 15 марта в 17:00)?"
    )
    assert chat.state.context().expecting is Expecting.DAY
    chat.say(when("в понедельник в 12"))
    search = chat.of(FindSlots)[-1]
    assert isinstance(search, FindSlots)
    assert (search.dates, search.staff_ids, search.wanted) == (
        (dt.date(2025, 3, 17),),
        (IGOR,),
        dt.time(12),
    )


def test_a_move_refused_as_taken_is_not_claimed_and_offers_the_alternatives() -> None:
    chat = Chat(Salon(visits=[NAILS]))
    chat.say(StartFlow(Flow.MOVE), when("на 16:00"))
    chat.say(Confirm(), auto=False)
    alternatives = (Slot(ALINA, at(4, 17)),)
    reply = chat.feed(ActionFailed("move", FailureKind.TAKEN, alternatives))
    assert reply.startswith("Это время уже занято, запись осталась как была.")
    assert "перенесла" not in reply
    assert chat.state.offered == alternatives


def test_a_no_to_the_move_keeps_the_visit() -> None:
    chat = Chat(Salon(visits=[NAILS]))
    chat.say(StartFlow(Flow.MOVE), when("на 16:00"))
    assert chat.say(Deny()) == "Хорошо, запись остаётся как была."
    assert chat.of(MoveVisit) == []


def test_a_failed_move_is_not_claimed() -> None:
    chat = Chat(Salon(visits=[NAILS]))
    chat.say(StartFlow(Flow.MOVE), when("на 16:00"))
    chat.say(Confirm(), auto=False)
    reply = chat.feed(ActionFailed("move", FailureKind.UNAVAILABLE))
    assert "Не получилось перенести" in reply and "перенесла" not in reply


def test_visits_unavailable_is_said_and_nothing_claimed() -> None:
    chat = Chat(Salon(visits=[NAILS]))
    chat.say(StartFlow(Flow.CANCEL), auto=False)
    chat.feed(chat.salon.answer(chat.effects[-1]), auto=False)  # the client look-up
    reply = chat.feed(ActionFailed("visits", FailureKind.UNAVAILABLE))
    assert "не отвечает" in reply
    assert chat.of(CancelVisit) == []
