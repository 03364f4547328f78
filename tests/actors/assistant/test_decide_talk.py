"""Everything but bookings through ``decide``: answers from the catalog, hand-over to a person,
opting out, media, small talk and messages it does not understand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from actors.assistant._commands import (
    Ask,
    Confirm,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    OptOut,
    SetServices,
    SmallTalk,
    SmallTalkKind,
    StartFlow,
    Topic,
    UnknownService,
)
from actors.assistant._effects import (
    Audit,
    Book,
    FindSlots,
    NonTextTurn,
    Reply,
    SetMode,
)
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from storage import ConversationMode

from .decide_chat import MEN, NOW, ROOTS, Chat, when


def first_turn_done(chat: Chat) -> None:
    chat.say(SmallTalk(SmallTalkKind.GREETING))


def test_price_of_one_service() -> None:
    chat = Chat()
    first_turn_done(chat)
    assert chat.say(Ask(Topic.PRICE, (ROOTS,))) == "Окрашивание корней — от 2 500 до 3 500 ₽"
    assert chat.say(Ask(Topic.PRICE, (MEN,))) == "Стрижка мужская — 1 200 ₽"


def test_price_of_a_category_and_the_whole_list_grouped() -> None:
    chat = Chat()
    first_turn_done(chat)
    assert chat.say(Ask(Topic.SERVICES, category_id=62)) == (
        "Ногтевой сервис:\nМаникюр без покрытия — 900 ₽\nМаникюр с покрытием гель-лак — 1 700 ₽"
    )
    whole = chat.say(Ask(Topic.PRICE_LIST))
    assert whole.split("\n\n") == [
        "Парикмахерский зал:\nСтрижка мужская — 1 200 ₽\nСтрижка женская — от 1 800 до 2 600 ₽\n"
        "Окрашивание корней — от 2 500 до 3 500 ₽",
        "Ногтевой сервис:\nМаникюр без покрытия — 900 ₽\nМаникюр с покрытием гель-лак — 1 700 ₽",
        "Брови:\nКоррекция бровей — 600 ₽",
    ]
    assert chat.say(Ask(Topic.PRICE)) == whole


def test_what_a_service_is_comes_from_its_description() -> None:
    chat = Chat()
    first_turn_done(chat)
    assert chat.say(Ask(Topic.SERVICE_INFO, (ROOTS,))) == (
        "Окрашивание корней (от 2 500 до 3 500 ₽, 90 мин): "
        "Окрашивание отросших корней в один тон, краска салона включена."
    )
    assert "Подробнее расскажет" in chat.say(Ask(Topic.SERVICE_INFO, (MEN,)))


def test_address_hours_and_phone_from_the_salon_card_in_one_reply() -> None:
    chat = Chat()
    first_turn_done(chat)
    reply = chat.say(Ask(Topic.ADDRESS), Ask(Topic.HOURS), Ask(Topic.PHONE))
    assert reply == (
        "Наш адрес: г. Казань, ул. Баумана, д. 21.\n"
        "Работаем ежедневно с 10:00 до 21:00.\n"
        "Телефон салона: +7 843 200-10-10."
    )
    assert len([e for e in chat.effects if isinstance(e, Reply)]) == 2


def test_who_does_a_service() -> None:
    chat = Chat()
    first_turn_done(chat)
    reply = chat.say(Ask(Topic.MASTERS, (MEN,)))
    assert reply.splitlines() == [
        "«Стрижка мужская» делают:",
        "Игорь Смирнов — Барбер",
        "Екатерина Волкова — Парикмахер-стилист",
        "Олег Ким — Барбер",
    ]


def test_a_question_mid_booking_keeps_the_booking_where_it_was() -> None:
    chat = Chat()
    chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)))
    asked = chat.state.expecting
    chat.say(Ask(Topic.ADDRESS))
    assert chat.state.expecting is asked
    chat.say(when("завтра в 12:00"))
    search = chat.of(FindSlots)[-1]
    assert isinstance(search, FindSlots)
    assert search.service_ids == (MEN,)


def test_asking_for_a_person_hands_over_for_the_policys_time() -> None:
    chat = Chat(policy=Policy(handoff_for=dt.timedelta(hours=3)))
    first_turn_done(chat)
    reply = chat.say(HandOver(HandOverReason.ASKED))
    assert reply == "Передаю ваш вопрос администратору — вам ответят здесь, в этом чате."
    assert chat.effects[-2:] == [
        SetMode(ConversationMode.HANDOFF, until=NOW + dt.timedelta(hours=3), reason="asked"),
        Audit("assistant.handoff", {"reason": "asked"}),
    ]


def test_a_complaint_is_met_with_an_apology() -> None:
    chat = Chat()
    first_turn_done(chat)
    reply = chat.say(HandOver(HandOverReason.COMPLAINT))
    assert reply.startswith("Мне очень жаль")
    modes = chat.of(SetMode)
    assert isinstance(modes[-1], SetMode)
    assert modes[-1].reason == "complaint"


def test_two_messages_not_understood_in_a_row_hand_over() -> None:
    chat = Chat()
    reply = chat.say(NotUnderstood())
    assert "запис" in reply
    assert chat.of(SetMode) == []
    chat.say(NotUnderstood())
    modes = chat.of(SetMode)
    assert len(modes) == 1 and isinstance(modes[0], SetMode)
    assert (modes[0].mode, modes[0].reason) == (ConversationMode.HANDOFF, "not_understood")


def test_not_understood_then_understood_starts_the_count_again() -> None:
    chat = Chat()
    chat.say(NotUnderstood())
    chat.say(Ask(Topic.ADDRESS))
    chat.say(NotUnderstood())
    assert chat.of(SetMode) == []


def test_not_understood_mid_booking_asks_the_question_again() -> None:
    chat = Chat()
    chat.say(StartFlow(Flow.BOOK))
    reply = chat.say(NotUnderstood())
    assert reply == "Не совсем поняла вас. На какую услугу вас записать?"


def test_opting_out_confirms_once_then_stays_silent() -> None:
    chat = Chat()
    first_turn_done(chat)
    reply = chat.say(OptOut())
    assert reply.startswith("Хорошо, больше не будем вам писать.")
    assert chat.effects[-2:] == [
        SetMode(ConversationMode.OPTED_OUT, reason="client asked"),
        Audit("assistant.opted_out", {}),
    ]
    count = len(chat.effects)
    assert chat.say(Ask(Topic.PRICE_LIST)) == ""
    assert chat.say(NotUnderstood()) == ""
    assert chat.feed(NonTextTurn(NOW)) == ""
    assert len(chat.effects) == count


def test_an_opted_out_client_asking_to_book_is_answered_again() -> None:
    chat = Chat()
    first_turn_done(chat)
    chat.say(OptOut())
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)))
    assert SetMode(ConversationMode.ASSISTANT, reason="client asked to book") in chat.effects
    assert reply == "На какой день вас записать?"


def test_an_opted_out_client_is_not_even_looked_up() -> None:
    chat = Chat(state=ConversationState(opted_out=True))
    assert chat.say(Ask(Topic.PRICE_LIST)) == ""
    assert chat.effects == []


def test_media_gets_the_text_only_reply() -> None:
    chat = Chat()
    reply = chat.feed(NonTextTurn(NOW, "voice"))
    assert reply == "Я читаю только текст. Напишите, пожалуйста, словами, чем могу помочь."


def test_small_talk() -> None:
    chat = Chat(Chat().salon)
    first = chat.say(SmallTalk(SmallTalkKind.GREETING))
    assert first.startswith("Здравствуйте!\nЧем могу помочь?")
    assert chat.say(SmallTalk(SmallTalkKind.THANKS)).startswith("Пожалуйста!")
    assert chat.say(SmallTalk(SmallTalkKind.GOODBYE)).startswith("До свидания!")


def test_a_yes_out_of_the_blue_books_nothing() -> None:
    chat = Chat()
    reply = chat.say(Confirm())
    assert chat.of(Book) == []
    assert "Чем могу помочь?" in reply


def test_every_turn_gets_a_reply() -> None:
    chat = Chat()
    for commands in (
        (Confirm(),),
        (SmallTalk(SmallTalkKind.GOODBYE),),
        (Ask(Topic.CAPABILITIES),),
        (StartFlow(Flow.VISITS),),
    ):
        before = len(chat.replies)
        chat.say(*commands)
        assert len(chat.replies) == before + 1


def test_a_salon_whose_services_are_unknown_claims_nothing_and_hands_over() -> None:
    """Never synced: no "we don't have it", no price; the address still answers from the card."""
    empty = replace(Chat().catalog, services=(), categories=())
    chat = Chat(catalog=empty)
    first_turn_done(chat)
    address = chat.say(Ask(Topic.ADDRESS))
    assert "Баумана" in address and chat.of(SetMode) == []
    reply = chat.say(StartFlow(Flow.BOOK), UnknownService("стрижка"), when("завтра"))
    assert "у нас нет" not in reply and "администратор" in reply
    assert chat.of(SetMode)[-1] == SetMode(
        ConversationMode.HANDOFF, until=NOW + Policy().handoff_for, reason="no_catalog"
    )
    assert not chat.of(FindSlots) and not chat.of(Book)
    chat2 = Chat(catalog=empty)
    first_turn_done(chat2)
    assert "₽" not in chat2.say(Ask(Topic.PRICE_LIST)) and chat2.of(SetMode)
