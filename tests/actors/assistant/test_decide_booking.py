"""Booking through ``decide``: what is asked, what is offered, what is proposed, and that
nothing is booked or claimed before its time (scripted conversations, see ``decide_chat``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

from actors.assistant._commands import (
    AmbiguousService,
    ChooseOption,
    Confirm,
    Deny,
    Expecting,
    Flow,
    SetMaster,
    SetName,
    SetServices,
    SmallTalk,
    SmallTalkKind,
    StartFlow,
    UnknownService,
)
from actors.assistant._effects import (
    ActionFailed,
    ArmSettle,
    Audit,
    Book,
    Booked,
    BookingPending,
    FailureKind,
    FindSlots,
    LookupClient,
    Reply,
    SetMode,
    SettleBooking,
    SettleDue,
    Slot,
)
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from storage import ConversationMode

from .decide_chat import (
    ALINA,
    BROWS,
    GEL,
    IGOR,
    KATYA,
    MANICURE,
    MEN,
    NOW,
    OLEG,
    WOMEN,
    Chat,
    Salon,
    at,
    day,
    when,
)


def book_everything(chat: Chat) -> str:
    return chat.say(
        SmallTalk(SmallTalkKind.GREETING),
        StartFlow(Flow.BOOK),
        SetServices((MEN,)),
        SetMaster(IGOR),
        when("послезавтра в 15:00"),
        SetName("Тимур"),
    )


def test_everything_in_one_message_gets_one_summary_and_books_only_on_yes() -> None:
    chat = Chat()
    reply = book_everything(chat)
    assert reply == (
        "Здравствуйте!\n"
        "Стрижка мужская у Игоря, пт 14 марта в 15:00, 1 200 ₽. Записать на имя Тимур?"
    )
    assert chat.of(Book) == []
    assert chat.state.context().expecting is Expecting.CONFIRM
    reply = chat.say(Confirm())
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    assert (book.service_ids, book.staff_id, book.start, book.client_name) == (
        (MEN,),
        IGOR,
        at(2, 15),
        "Тимур",
    )
    assert book.api_id.startswith("aia-")
    assert reply == "Готово, записала вас к Игорю: Стрижка мужская, пт 14 марта в 15:00. Ждём вас!"
    [audit] = [e for e in chat.of(Audit) if isinstance(e, Audit) and e.kind == "assistant.booked"]
    assert isinstance(audit, Audit)
    assert audit.data["api_id"] == book.api_id


def test_a_second_yes_never_books_again() -> None:
    chat = Chat()
    book_everything(chat)
    chat.say(Confirm())
    reply = chat.say(Confirm())
    assert len(chat.of(Book)) == 1
    assert "уже создана" in reply
    assert "записала" not in reply


def test_a_yes_while_the_booking_is_being_checked_does_not_book_again() -> None:
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)))
    book_everything(chat)
    chat.say(Confirm())
    reply = chat.say(Confirm())
    assert len(chat.of(Book)) == 1
    assert "уточняю" in reply.lower()


def test_step_by_step_asks_one_thing_at_a_time_in_order() -> None:
    chat = Chat()
    assert "Чем могу помочь?" in chat.say(SmallTalk(SmallTalkKind.GREETING))
    assert chat.say(StartFlow(Flow.BOOK)) == "На какую услугу вас записать?"
    assert chat.state.context().expecting is Expecting.SERVICE
    reply = chat.say(SetMaster(KATYA), SetServices((WOMEN,)))
    assert reply == "На какой день вас записать?"
    assert chat.state.context().expecting is Expecting.DAY
    reply = chat.say(when("завтра"))
    [search] = chat.of(FindSlots)
    assert search == FindSlots((WOMEN,), (day(1),), (KATYA,), None, None, 14)
    lines = reply.splitlines()
    assert lines[0] == "Свободно завтра, чт 13 марта:"
    numbered = [line for line in lines if line[:1].isdigit()]
    assert 1 < len(numbered) <= 6
    assert [line.split(")")[0] for line in numbered] == [
        str(i) for i in range(1, len(numbered) + 1)
    ]
    context = chat.state.context()
    assert context.expecting is Expecting.OPTION
    assert context.offered_count == len(numbered)
    assert context.offered_times[0] == at(1, 10)
    reply = chat.say(when("в 11 утра"))
    assert reply == "Время завтра, чт 13 марта в 11:00 свободно. Как вас зовут?"
    assert chat.state.context().expecting is Expecting.NAME
    reply = chat.say(SetName("Лилия"))
    assert reply.endswith("Записать на имя Лилия?")
    assert "Стрижка женская у Екатерины, завтра, чт 13 марта в 11:00, от 1 800 до 2 600 ₽" in reply
    chat.say(Confirm())
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    assert (book.staff_id, book.start, book.client_name) == (KATYA, at(1, 11), "Лилия")


def test_the_client_is_looked_up_once_before_the_first_reply() -> None:
    chat = Chat()
    chat.say(SmallTalk(SmallTalkKind.GREETING), auto=False)
    assert chat.effects == [LookupClient()]  # nothing said before the look-up
    chat.feed(chat.salon.answer(LookupClient()))
    chat.say(StartFlow(Flow.BOOK))
    chat.say(SetServices((MEN,)), when("завтра в 12:00"))
    assert len(chat.of(LookupClient)) == 1


def test_a_known_client_is_greeted_by_name_never_asked_and_booked_under_the_crm_name() -> None:
    chat = Chat(Salon(crm_name="Рустам"))
    reply = chat.say(
        StartFlow(Flow.BOOK), SetServices((MEN,)), SetMaster(IGOR), when("завтра в 18:00")
    )
    assert reply.startswith("Здравствуйте, Рустам!")
    assert "Записать на имя Рустам?" in reply
    chat.say(SetName("Руслан"))  # a name typed never replaces the CRM's
    chat.say(Confirm())
    assert "как вас зовут" not in "\n".join(chat.replies).lower()
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    assert book.client_name == "Рустам"


def test_a_new_client_is_asked_the_name_once() -> None:
    chat = Chat()
    chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), when("завтра в 12:00"))
    chat.say(SetName("Тимур"))
    chat.say(when("в 13:00"))  # a new time: the name is known already
    asked = [r for r in chat.replies if "Как вас зовут" in r]
    assert len(asked) == 1
    assert chat.replies[-1].endswith("Записать на имя Тимур?")


def test_a_taken_time_gets_the_nearest_free_times_in_the_same_reply() -> None:
    salon = Salon(busy={(IGOR, at(2, 15))})
    chat = Chat(salon)
    reply = chat.say(
        StartFlow(Flow.BOOK),
        SetServices((MEN,)),
        SetMaster(IGOR),
        when("послезавтра в 15:00"),
        SetName("Тимур"),
    )
    assert "Пт 14 марта в 15:00 у Игоря уже занято." in reply
    assert "1) 13:30" in reply and "6) 16:30" in reply  # the six nearest, in time order
    assert "14:30" in reply and "15:30" in reply
    assert chat.of(Book) == []
    offered = chat.state.offered
    assert len(offered) == 6
    assert all(abs((s.start - at(2, 15)).total_seconds()) <= 3 * 3600 for s in offered)
    chat.say(ChooseOption(time=dt.time(15, 30)))
    assert chat.replies[-1].endswith("Записать на имя Тимур?")
    assert "15:30" in chat.replies[-1]


def test_a_full_day_gets_the_nearest_days_in_the_same_reply() -> None:
    salon = Salon(off={(KATYA, day(2))})
    chat = Chat(salon)
    reply = chat.say(
        StartFlow(Flow.BOOK), SetMaster(KATYA), SetServices((WOMEN,)), when("послезавтра")
    )
    assert "У Екатерины на пт 14 марта свободного времени нет." in reply
    assert "Свободно сб 15 марта:" in reply
    assert "1) 10:00" in reply
    assert chat.state.context().expecting is Expecting.OPTION


def test_nothing_free_soon_is_said_plainly() -> None:
    salon = Salon(off={(KATYA, day(k)) for k in range(0, 30)})
    chat = Chat(salon)
    reply = chat.say(StartFlow(Flow.BOOK), SetMaster(KATYA), SetServices((WOMEN,)), when("завтра"))
    assert "свободного времени нет" in reply
    assert "В ближайшие 14 дней" in reply
    assert chat.state.offered == ()


def test_an_option_by_number_and_out_of_range() -> None:
    chat = Chat()
    chat.say(StartFlow(Flow.BOOK), SetServices((MANICURE,)), when("завтра"))
    count = len(chat.state.offered)
    reply = chat.say(ChooseOption(number=count + 1))
    assert reply == f"Такого варианта нет. Напишите номер от 1 до {count}."
    first = chat.state.offered[0]
    reply = chat.say(ChooseOption(number=1))
    assert chat.state.chosen == first
    assert "Как вас зовут?" in reply


def test_a_time_not_offered_is_searched_on_the_same_day() -> None:
    chat = Chat()
    chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), SetMaster(IGOR), when("завтра утром"))
    chat.say(ChooseOption(time=dt.time(19)))
    last = chat.of(FindSlots)[-1]
    assert isinstance(last, FindSlots)
    assert (last.dates, last.wanted, last.window) == ((day(1),), dt.time(19), None)


def test_a_window_offers_only_times_inside_it() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((GEL,)), when("завтра вечером"))
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert search.window is not None
    for slot in chat.state.offered:
        assert search.window[0] <= slot.start.time() <= search.window[1]
    assert "Какой вариант подходит?" in reply


def test_a_new_day_keeps_the_service_master_and_time_and_drops_the_proposal() -> None:
    chat = Chat()
    book_everything(chat)
    reply = chat.say(Confirm(), when("в субботу"))  # "да, только в субботу": not a yes to Friday
    assert chat.of(Book) == []
    search = chat.of(FindSlots)[-1]
    assert isinstance(search, FindSlots)
    assert (search.service_ids, search.staff_ids, search.dates, search.wanted) == (
        (MEN,),
        (IGOR,),
        (day(3),),
        dt.time(15),
    )
    assert "сб 15 марта в 15:00" in reply
    assert reply.endswith("Записать на имя Тимур?")


def test_a_no_to_the_summary_books_nothing() -> None:
    chat = Chat()
    book_everything(chat)
    reply = chat.say(Deny())
    assert chat.of(Book) == []
    assert reply.startswith("Хорошо, не записываю")
    assert chat.state.pending is None
    chat.say(Confirm())  # a later "да" has nothing to confirm: offers times again
    assert chat.of(Book) == []


def test_any_master_offers_times_with_the_masters_names() -> None:
    busy = {(IGOR, at(1, 10)), (KATYA, at(1, 10))}  # at 10:00 only Oleg is free
    chat = Chat(Salon(busy=busy))
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), when("завтра"))
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert set(search.staff_ids) == {IGOR, KATYA, OLEG}
    assert "1) 10:00 — Олег" in reply
    assert "2) 12:00 — Игорь" in reply  # one master per time, the first YClients gave


def test_one_master_for_every_time_needs_no_names() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), SetMaster(OLEG), when("завтра"))
    assert "— " not in reply


def test_a_master_who_does_not_do_the_service_is_said_and_the_others_searched() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((WOMEN,)), SetMaster(IGOR), when("завтра"))
    assert "Игорь не делает «Стрижка женская». Эту услугу делает: Екатерина." in reply
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert search.staff_ids == (KATYA,)


def test_an_ambiguous_service_is_asked_about_and_an_option_number_settles_it() -> None:
    chat = Chat()
    reply = chat.say(
        StartFlow(Flow.BOOK), AmbiguousService("стрижка", (MEN, WOMEN)), when("завтра")
    )
    assert "Какую именно услугу?" in reply
    assert "1) Стрижка мужская — 1 200 ₽" in reply
    assert chat.state.context().expecting is Expecting.SERVICE
    chat.say(ChooseOption(number=2))
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert search.service_ids == (WOMEN,)


def test_a_service_not_offered_is_said_with_the_closest() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), UnknownService("педикюр", (MANICURE, GEL)))
    assert "«педикюр» у нас нет" in reply
    assert "Маникюр без покрытия — 900 ₽" in reply
    assert reply.endswith("На какую услугу вас записать?")
    assert chat.of(Book) == [] and chat.of(FindSlots) == []


def test_unknown_outcome_is_checked_never_claimed_then_settled() -> None:
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)))
    book_everything(chat)
    reply = chat.say(Confirm())
    assert reply == "Уточняю запись в системе салона — подтвержу в ближайшие минуты."
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    assert isinstance(chat.last_effect, ArmSettle)
    assert chat.state.settle_due_on_start
    chat.feed(SettleDue())
    assert chat.last_effect == SettleBooking(book.api_id, start=at(2, 15))
    assert chat.feed(BookingPending(book.api_id)) == ""  # still unknown: silence, armed again
    assert isinstance(chat.last_effect, ArmSettle)
    chat.feed(SettleDue())
    reply = chat.feed(Booked(book.api_id, 901, IGOR, at(2, 15)))
    assert reply.startswith("Готово, записала вас к Игорю")
    assert not chat.state.settle_due_on_start
    assert len(chat.of(Book)) == 1
    assert all("записала" not in r for r in chat.replies[:-1])


def test_an_outcome_never_known_is_handed_to_a_person_not_claimed() -> None:
    policy = Policy(settle_delays=(1.0, 2.0))
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)), policy=policy)
    book_everything(chat)
    chat.say(Confirm())
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    for _ in range(2):
        chat.feed(SettleDue())
        chat.feed(BookingPending(book.api_id))
    modes = chat.of(SetMode)
    assert modes and isinstance(modes[-1], SetMode)
    assert modes[-1].mode is ConversationMode.HANDOFF
    assert "администратор" in chat.replies[-1]
    assert not any("записала" in r for r in chat.replies)
    assert chat.state.booking is None


def test_a_booking_not_made_is_said_and_fresh_times_offered() -> None:
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)))
    book_everything(chat)
    chat.say(Confirm())
    [book] = chat.of(Book)
    assert isinstance(book, Book)
    chat.feed(SettleDue())
    reply = chat.feed(ActionFailed("settle", FailureKind.NOT_FOUND))
    assert "запись не создалась" in reply
    assert "записала" not in reply
    assert chat.state.context().expecting is Expecting.CONFIRM  # 15:00 is free again here


def test_a_time_taken_at_booking_offers_the_alternatives() -> None:
    alternatives = (Slot(IGOR, at(2, 16)), Slot(IGOR, at(2, 17)))
    chat = Chat(Salon(on_book=lambda b: ActionFailed("book", FailureKind.TAKEN, alternatives)))
    book_everything(chat)
    reply = chat.say(Confirm())
    assert reply.startswith("Это время только что заняли.")
    assert "1) 16:00" in reply and "2) 17:00" in reply
    assert "записала" not in reply
    assert chat.state.offered == alternatives


def test_a_book_says_whether_any_master_will_do() -> None:
    named = Chat()
    book_everything(named)
    named.say(Confirm())
    anyone = Chat()
    anyone.say(StartFlow(Flow.BOOK), SetServices((MEN,)), when("послезавтра в 15:00"), SetName("Т"))
    anyone.say(Confirm())
    assert [b.any_master for b in named.of(Book) if isinstance(b, Book)] == [False]
    assert [b.any_master for b in anyone.of(Book) if isinstance(b, Book)] == [True]


def test_a_time_taken_when_any_master_will_do_proposes_it_with_another_master() -> None:
    """The client named no master: the same time with another master beats another time."""
    alternatives = (Slot(OLEG, at(2, 15)), Slot(IGOR, at(2, 14)), Slot(IGOR, at(2, 16)))
    outcomes = iter([ActionFailed("book", FailureKind.TAKEN, alternatives)])

    def on_book(book: Book) -> ActionFailed | Booked:
        return next(outcomes, Booked(book.api_id, 951, book.staff_id, book.start))

    chat = Chat(Salon(on_book=on_book))
    summary = chat.say(
        StartFlow(Flow.BOOK), SetServices((MEN,)), when("послезавтра в 15:00"), SetName("Тимур")
    )
    assert "у Игоря" in summary and "Записать" in summary
    reply = chat.say(Confirm())
    assert reply == (
        "Пт 14 марта в 15:00 у Игоря уже занято.\n"
        "Стрижка мужская у Олега, пт 14 марта в 15:00, 1 200 ₽. Записать на имя Тимур?"
    )
    assert "записала" not in reply
    chat.say(Confirm())
    first, second = chat.of(Book)
    assert isinstance(first, Book) and isinstance(second, Book)
    assert (first.staff_id, second.staff_id) == (IGOR, OLEG)
    assert first.start == second.start == at(2, 15)
    assert first.api_id != second.api_id
    assert "записала" in chat.replies[-1] and "к Олегу" in chat.replies[-1]


def test_a_time_taken_with_the_master_asked_for_never_switches_the_master() -> None:
    alternatives = (Slot(OLEG, at(2, 15)), Slot(IGOR, at(2, 14)), Slot(IGOR, at(2, 16)))
    chat = Chat(Salon(on_book=lambda b: ActionFailed("book", FailureKind.TAKEN, alternatives)))
    book_everything(chat)
    reply = chat.say(Confirm())
    assert reply.startswith("Это время только что заняли.")
    assert chat.state.offered == (Slot(IGOR, at(2, 14)), Slot(IGOR, at(2, 16)))
    assert "Записать" not in reply and "Олег" not in reply


def test_yclients_down_at_booking_asks_to_retry_with_the_same_api_id() -> None:
    outcomes = iter([ActionFailed("book", FailureKind.UNAVAILABLE)])

    def on_book(book: Book) -> ActionFailed | Booked:
        return next(outcomes, Booked(book.api_id, 950, book.staff_id, book.start))

    chat = Chat(Salon(on_book=on_book))
    book_everything(chat)
    reply = chat.say(Confirm())
    assert "не отвечает" in reply and "записала" not in reply
    chat.say(Confirm())
    first, second = chat.of(Book)
    assert isinstance(first, Book) and isinstance(second, Book)
    assert first.api_id == second.api_id
    assert "записала" in chat.replies[-1]


def test_a_refused_booking_goes_to_a_person() -> None:
    chat = Chat(Salon(on_book=lambda b: ActionFailed("book", FailureKind.REFUSED)))
    book_everything(chat)
    reply = chat.say(Confirm())
    assert "администратор" in reply and "записала" not in reply
    modes = chat.of(SetMode)
    assert isinstance(modes[-1], SetMode)
    assert modes[-1].mode is ConversationMode.HANDOFF


def test_a_restart_between_yes_and_reply_books_with_the_same_api_id() -> None:
    chat = Chat()
    book_everything(chat)
    stored = json.loads(json.dumps(chat.state.to_json()))
    chat.say(Confirm())
    [first] = chat.of(Book)
    restarted = Chat(state=ConversationState.from_json(stored))
    restarted.say(Confirm())
    [again] = restarted.of(Book)
    assert isinstance(first, Book) and isinstance(again, Book)
    assert again.api_id == first.api_id


def test_a_restart_mid_booking_settles_first() -> None:
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)))
    book_everything(chat)
    chat.say(Confirm())
    restored = ConversationState.from_json(json.loads(json.dumps(chat.state.to_json())))
    assert restored.settle_due_on_start
    again = Chat(state=restored)
    again.feed(SettleDue())
    assert isinstance(again.last_effect, SettleBooking)


def test_a_proposal_whose_time_has_passed_is_not_booked() -> None:
    chat = Chat()
    book_everything(chat)
    chat.now = at(2, 15, 1)
    chat.say(Confirm())
    assert chat.of(Book) == []
    assert any("уже прошло" in r for r in chat.replies)


def test_two_bookings_have_two_api_ids() -> None:
    chat = Chat()
    book_everything(chat)
    chat.say(Confirm())
    chat.say(StartFlow(Flow.BOOK), SetServices((BROWS,)), when("завтра в 12:00"))
    chat.say(Confirm())
    first, second = chat.of(Book)
    assert isinstance(first, Book) and isinstance(second, Book)
    assert first.api_id != second.api_id
    assert second.staff_id == ALINA


def test_options_are_capped_by_the_policy() -> None:
    chat = Chat(policy=Policy(max_options=3))
    chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), when("завтра"))
    assert len(chat.state.offered) == 3
    assert "4)" not in chat.replies[-1]


def test_one_reply_per_turn_even_with_queries_in_between() -> None:
    chat = Chat()
    chat.say(
        SmallTalk(SmallTalkKind.GREETING), StartFlow(Flow.BOOK), SetServices((MEN,)), when("завтра")
    )
    replies = [e for e in chat.effects if isinstance(e, Reply)]
    assert len(replies) == 1
    assert replies[0].text.startswith("Здравствуйте!\nСвободно завтра")


def test_a_late_outcome_for_another_booking_is_ignored() -> None:
    chat = Chat(Salon(on_book=lambda b: BookingPending(b.api_id)))
    book_everything(chat)
    chat.say(Confirm())
    before = chat.state
    assert chat.feed(Booked("aia-someone-else", 1, IGOR, at(2, 15))) == ""
    assert chat.state == before


def test_the_salon_zone_decides_today_just_after_midnight() -> None:
    late = dt.datetime(2025, 3, 12, 21, 30, tzinfo=dt.UTC)  # 00:30 on the 13th in Moscow
    chat = Chat(now=late)
    chat.say(
        StartFlow(Flow.BOOK), SetServices((MEN,)), when("сегодня", late.astimezone(NOW.tzinfo))
    )
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert search.dates == (dt.date(2025, 3, 13),)


def test_a_day_in_the_past_is_not_searched() -> None:
    chat = Chat()
    stale = replace(when("завтра"), when=replace(when("завтра").when, dates=(day(-1),)))
    reply = chat.say(StartFlow(Flow.BOOK), SetServices((MEN,)), stale)
    assert "уже прошёл" in reply
    assert chat.of(FindSlots) == []
    assert chat.state.context().expecting is Expecting.DAY


def test_a_master_named_first_is_asked_which_of_their_services() -> None:
    chat = Chat()
    reply = chat.say(StartFlow(Flow.BOOK), SetMaster(OLEG))
    assert reply.endswith(
        "На какую услугу вас записать к Олегу?\n1) Стрижка мужская — 1 200 ₽\n"
        "Напишите номер или название."
    )
    chat.say(when("в воскресенье в 12"))  # context kept while the service is still asked
    chat.say(ChooseOption(number=1))
    [search] = chat.of(FindSlots)
    assert isinstance(search, FindSlots)
    assert (search.service_ids, search.staff_ids, search.wanted) == ((MEN,), (OLEG,), dt.time(12))
