"""``decide`` on what follows a question or an offer: a service the salon lacks answered with
the closest ones only, the service asked about kept for the booking that follows, and a time
offered that has passed meanwhile neither taken nor offered again (scripted, ``decide_chat``)."""

from __future__ import annotations

from actors.assistant._commands import (
    Ask,
    ChooseOption,
    Confirm,
    Expecting,
    Flow,
    SetMaster,
    SetName,
    SetServices,
    StartFlow,
    Topic,
    UnknownService,
)
from actors.assistant._effects import Book, FindSlots

from .decide_chat import GEL, IGOR, MANICURE, MEN, WOMEN, Chat, at, day, when


def test_a_kind_the_salon_lacks_is_answered_with_the_closest_not_the_whole_list() -> None:
    chat = Chat()
    reply = chat.say(Ask(Topic.SERVICES), UnknownService("японский маникюр", (MANICURE, GEL)))
    assert "«японский маникюр» у нас нет" in reply
    assert "Маникюр без покрытия — 900 ₽" in reply
    assert "Стрижка мужская" not in reply  # the price list would bury the answer


def test_with_nothing_close_the_list_still_says_what_there_is() -> None:
    chat = Chat()
    reply = chat.say(Ask(Topic.SERVICES), UnknownService("массаж", ()))
    assert "«массаж» у нас нет" in reply
    assert "Стрижка мужская — 1 200 ₽" in reply


def test_the_client_words_are_quoted_in_the_nominative() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), UnknownService("парафинотерапию для рук", (MANICURE,)))
    assert "«парафинотерапия для рук» у нас нет" in reply


def test_the_one_service_asked_about_is_kept_for_the_booking_that_follows() -> None:
    chat = Chat()
    reply = chat.say(Ask(Topic.PRICE, (MEN,)))
    assert "Стрижка мужская — 1 200 ₽" in reply
    chat.say(when("завтра в 16:00"))
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert search.service_ids == (MEN,)
    assert search.dates == (day(1),)


def test_a_question_about_two_services_keeps_neither() -> None:
    chat = Chat()
    chat.say(Ask(Topic.PRICE, (MEN, WOMEN)))
    reply = chat.say(when("завтра в 16:00"))
    assert chat.of(FindSlots) == []
    assert chat.state.context().expecting is Expecting.SERVICE
    assert reply


def _offered_today(chat: Chat) -> None:
    chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), SetMaster(IGOR), when("сегодня"))
    assert chat.state.offered[0].start == at(0, 10, 30)


def test_an_offered_time_gone_by_is_not_taken_and_not_offered_again() -> None:
    chat = Chat()
    _offered_today(chat)
    chat.now = at(0, 10, 45)
    reply = chat.say(ChooseOption(number=1))
    assert reply.startswith("Это время уже прошло.")
    assert chat.state.chosen is None
    assert chat.state.offered
    assert all(o.start > chat.now for o in chat.state.offered)
    assert "10:30" not in reply


def test_a_yes_to_a_time_gone_by_books_nothing_and_offers_only_times_ahead() -> None:
    chat = Chat()
    _offered_today(chat)
    chat.say(ChooseOption(number=1), SetName("Тимур"))
    assert chat.state.context().expecting is Expecting.CONFIRM
    chat.now = at(0, 10, 45)
    reply = chat.say(Confirm())
    assert chat.of(Book) == []
    assert reply.startswith("Это время уже прошло.")
    assert "10:30" not in reply
    assert chat.state.offered and all(o.start > chat.now for o in chat.state.offered)
