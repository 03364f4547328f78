"""Replies to a reminder and to a review request, through the real understanding and ``decide``
(no trio, no YClients: ``Chat`` answers the queries).

A reminder about visit 501 (tomorrow 15:00, men's haircut with Igor; the client also has visit
502) was noted in the state. Each phrasing below is read with the state's context and decided:
a plain yes confirms THAT visit (``ConfirmVisit`` → attendance 2, "Ждём вас!"); a no, "не
смогу", "отмените" start the cancel flow for it (confirmation asked, nothing cancelled yet);
"перенесите …" the move flow for it; anything else ("да, но хочу перенести", "есть вопрос", a
question) is no confirmation. After a review request a 1–5 rating is stored (``SaveRating``),
answered with the salon's texts and link (to all, or only after a high rating), and 1–3
tells the salon (``Audit`` ``assistant.low_rating``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest

from actors.assistant._commands import (
    Comment,
    Confirm,
    Flow,
    Rate,
    SetWhen,
    SmallTalk,
    StartFlow,
    TurnContext,
)
from actors.assistant._effects import (
    ActionFailed,
    Audit,
    CancelVisit,
    ConfirmVisit,
    Effect,
    Event,
    FailureKind,
    SaveRating,
    Visit,
    VisitConfirmed,
)
from actors.assistant._policy import Policy
from actors.assistant._prompts import REVIEW_WINDOW, Prompt, PromptKind, may_prompt, rating_json
from actors.assistant._ratings import read_rating
from actors.assistant._state import ConfirmKind, ConversationState
from actors.assistant._understand import read_message
from actors.reminders import ReminderSettings
from storage import Conversation, ConversationMode

from .decide_chat import CATALOG, IGOR, KATYA, MANICURE, MEN, NOW, Chat, Salon, at

RECORD, VISIT_ID, OTHER = 501, 7001, 502
REMINDED = Visit(RECORD, at(1, 15), IGOR, (MEN,), ("Мужская стрижка",), 60)
ANOTHER = Visit(OTHER, at(3, 12), KATYA, (MANICURE,), ("Маникюр",), 60)
LINK = "https://maps.example/salon-romashka"


@dataclass
class ReminderSalon(Salon):
    """The test salon, which also confirms visits (``ConfirmVisit``)."""

    confirm_outcome: Event | None = None

    def answer(self, effect: Effect) -> Event:
        if isinstance(effect, ConfirmVisit):
            return self.confirm_outcome or VisitConfirmed(effect.record_id)
        return super().answer(effect)


def reminder(kind: PromptKind = PromptKind.DAY_BEFORE, visit_id: int | None = VISIT_ID) -> Prompt:
    return Prompt(
        kind,
        RECORD,
        visit_id,
        REMINDED.start,
        NOW - dt.timedelta(minutes=5),
        ("Мужская стрижка",),
        "Игорь",
    )


def reminded_chat(prompt: Prompt | None = None, **salon: object) -> Chat:
    chat = Chat(salon=ReminderSalon(visits=[REMINDED, ANOTHER], crm_name="Анна", **salon))  # type: ignore[arg-type]
    chat.state = chat.state.noted(prompt or reminder())
    return chat


def say(chat: Chat, text: str) -> str:
    """The client writes ``text``: read with the state's context, then decided."""
    commands = read_message(text, chat.state.context(), CATALOG, chat.now)
    return chat.say(*commands, text=text)


CONFIRMATIONS = [
    "да",
    "Да!",
    "буду",
    "ок",
    "👍",
    "подтверждаю",
    "Да, буду",
    "конечно",
    "обязательно приду",
    "+",
    "ага",
    "да, спасибо",
    "Подтверждаю запись",
    "всё в силе",
    "Хорошо, спасибо, буду",
    "👌",
    "Да да",
    "Буду обязательно!",
    "Окей",
    "Будем",
    "да конечно",
    "Ок, до встречи",
    "Приду",
    "угу",
    "Да, всё в силе",
    "Договорились",
    "Спасибо, приду",
    "норм",
    "Окк",
    "прийду",
    "подверждаю",
    "Да, до завтра!",
]
CANCELS = [
    "не смогу",
    "отмените",
    "нет",
    "не буду",
    "не приду",
    "Я не смогу прийти, отмените пожалуйста",
    "Отмените запись",
    "К сожалению, не получится прийти",
    "Нет, не смогу",
]
MOVES = [
    "можно перенести на пятницу?",
    "да, но хочу перенести",
    "перенесите на другое время",
    "Можно перенести на послезавтра в 16:00?",
    "Давайте перенесём",
    "Да, но можно перенести на вечер?",
]
NOT_CONFIRMATIONS = [
    "есть вопрос",
    "спасибо",
    "а где вы находитесь?",
    "сколько стоит маникюр?",
    "Приду, но опоздаю минут на 10",
    "да, а можно ещё маникюр?",
    "yes",
    "хочу записаться на маникюр",
    "Позовите администратора",
    "опоздаю минут на 10",
    "не знаю пока",
    "а во сколько?",
]


def test_there_are_at_least_forty_phrasings() -> None:
    total = CONFIRMATIONS + CANCELS + MOVES + NOT_CONFIRMATIONS
    assert len(total) >= 40 and len(set(total)) == len(total)


@pytest.mark.parametrize("text", CONFIRMATIONS)
def test_a_yes_to_a_reminder_confirms_that_visit(text: str) -> None:
    chat = reminded_chat()
    reply = say(chat, text)
    assert chat.of(ConfirmVisit) == [ConfirmVisit(RECORD, VISIT_ID)]
    assert reply == "Ждём вас!"
    assert chat.state.prompt is None  # answered: a second "да" confirms nothing again
    visit_confirmed = {"record_id": RECORD, "marked": True, "start": REMINDED.start.isoformat()}
    assert Audit("assistant.visit_confirmed", visit_confirmed) in chat.of(Audit)
    assert not chat.of(CancelVisit)


@pytest.mark.parametrize("text", CANCELS)
def test_a_no_to_a_reminder_asks_to_cancel_that_visit(text: str) -> None:
    chat = reminded_chat()
    reply = say(chat, text)
    pending = chat.state.pending
    assert pending is not None and pending.kind is ConfirmKind.CANCEL, reply
    assert pending.visit is not None and pending.visit.record_id == RECORD  # not visit 502
    assert not chat.of(ConfirmVisit) and not chat.of(CancelVisit)  # only after its "да"
    assert "Отменить" in reply or "отменить" in reply


def test_the_cancel_started_by_a_reminder_reply_cancels_after_its_yes() -> None:
    chat = reminded_chat()
    say(chat, "не смогу")
    say(chat, "да")
    assert chat.of(CancelVisit) == [CancelVisit(RECORD)]
    assert not chat.of(ConfirmVisit)
    assert chat.state.prompt is None  # the visit is gone: nothing left to confirm


@pytest.mark.parametrize("text", MOVES)
def test_a_move_after_a_reminder_moves_that_visit(text: str) -> None:
    chat = reminded_chat()
    reply = say(chat, text)
    assert chat.state.flow is Flow.MOVE, reply
    assert chat.state.chosen_visit is not None and chat.state.chosen_visit.record_id == RECORD
    assert not chat.of(ConfirmVisit) and not chat.of(CancelVisit)


@pytest.mark.parametrize("text", NOT_CONFIRMATIONS)
def test_other_replies_to_a_reminder_are_ordinary_messages(text: str) -> None:
    chat = reminded_chat()
    reply = say(chat, text)
    assert reply.strip()
    assert not chat.of(ConfirmVisit) and not chat.of(CancelVisit)
    pending = chat.state.pending
    assert pending is None or pending.kind is ConfirmKind.BOOK
    assert "Ждём вас" not in reply


@pytest.mark.parametrize("text", ["а во сколько?", "а когда?", "во сколько мне приходить?"])
def test_asking_when_after_a_reminder_lists_the_visits(text: str) -> None:
    chat = reminded_chat()
    reply = say(chat, text)
    assert "у Игоря, завтра, чт 13 марта в 15:00" in reply, reply  # the reminded visit
    assert not chat.of(ConfirmVisit) and chat.state.prompt is not None


@pytest.mark.parametrize(
    "text",
    [
        "не знаю пока",
        "опоздаю минут на 10",
        "Да, но я опоздаю на 15 минут",
        "опоздаю на 10-15 минут",
        "минут на 5 задержусь",
    ],
)
def test_a_doubt_or_a_delay_is_no_farewell_and_no_booking(text: str) -> None:
    chat = reminded_chat()
    commands = read_message(text, chat.state.context(), CATALOG, chat.now)
    assert not any(isinstance(c, (SmallTalk, SetWhen, StartFlow, Confirm)) for c in commands)
    reply = say(chat, text)
    assert "До свидания" not in reply and chat.state.flow is None
    assert chat.state.prompt is not None  # a yes may still come


def test_a_question_then_a_yes_still_confirms() -> None:
    chat = reminded_chat()
    say(chat, "а где вы находитесь?")
    assert say(chat, "буду") == "Ждём вас!"
    assert chat.of(ConfirmVisit) == [ConfirmVisit(RECORD, VISIT_ID)]


def test_a_yes_after_the_visit_began_confirms_nothing() -> None:
    chat = reminded_chat(reminder(PromptKind.TWO_HOURS))
    chat.now = REMINDED.start + dt.timedelta(minutes=1)
    reply = say(chat, "да")
    assert not chat.of(ConfirmVisit) and "Ждём вас" not in reply
    assert chat.state.prompt is None


def test_a_yes_to_a_booking_summary_books_rather_than_confirming_the_reminded_visit() -> None:
    chat = reminded_chat()
    say(chat, "хочу мужскую стрижку послезавтра в 12:00")
    assert chat.state.pending is not None and chat.state.pending.kind is ConfirmKind.BOOK
    say(chat, "да")
    assert not chat.of(ConfirmVisit)
    assert chat.state.last_booked is not None


def test_without_a_visit_id_the_yes_is_answered_and_the_salon_told() -> None:
    chat = reminded_chat(reminder(visit_id=None))
    assert say(chat, "да") == "Ждём вас!"
    assert not chat.of(ConfirmVisit)
    visit_confirmed = {"record_id": RECORD, "marked": False, "start": REMINDED.start.isoformat()}
    assert Audit("assistant.visit_confirmed", visit_confirmed) in chat.of(Audit)


def test_a_visit_gone_from_yclients_is_said_so() -> None:
    chat = reminded_chat(confirm_outcome=ActionFailed("confirm", FailureKind.NOT_FOUND))
    reply = say(chat, "да")
    assert "нет в системе" in reply and "Ждём" not in reply


def test_yclients_down_still_answers_and_tells_the_salon() -> None:
    chat = reminded_chat(confirm_outcome=ActionFailed("confirm", FailureKind.UNAVAILABLE))
    assert say(chat, "да") == "Ждём вас!"
    audit = Audit("assistant.visit_not_marked", {"record_id": RECORD, "kind": "unavailable"})
    assert audit in chat.of(Audit)


def test_an_opted_out_client_gets_nothing_for_a_yes() -> None:
    chat = reminded_chat()
    chat.state = replace(chat.state, opted_out=True, looked_up=True)
    assert say(chat, "да") == ""
    assert not chat.of(ConfirmVisit)


def test_the_reminder_survives_the_json_round_trip() -> None:
    state = ConversationState().noted(reminder())
    assert ConversationState.from_json(state.to_json()) == state
    assert state.context() == TurnContext(prompt=PromptKind.DAY_BEFORE)
    old = {k: v for k, v in state.to_json().items() if k not in ("prompt", "rating")}
    assert ConversationState.from_json(old).prompt is None  # a row from before: still read


# --------------------------------------------------------------------------- review requests

RATINGS = [
    ("5", 5, False),
    ("5!", 5, False),
    ("пять", 5, False),
    ("Пятёрка", 5, False),
    ("отлично", 5, False),
    ("⭐⭐⭐⭐", 4, False),
    ("⭐️⭐️⭐️⭐️⭐️", 5, False),
    ("★★★", 3, False),
    ("5/5", 5, False),
    ("на 4", 4, False),
    ("4 из 5", 4, False),
    ("Оценка 5", 5, False),
    ("ставлю 5, спасибо", 5, False),
    ("5 баллов", 5, False),
    ("Четыре", 4, False),
    ("Ужасно", 1, False),
    ("5+", 5, False),
    ("Всё отлично, спасибо!", 5, False),
    ("3, мастер опоздал", 3, True),
    ("2 — долго ждала", 2, True),
    ("1, ужасно, администратор нахамил", 1, True),
    ("Спасибо большое, всё очень понравилось, мастер супер, 5", 5, True),
]
NOT_RATINGS = [
    "10 из 10",
    "4,5",
    "не очень",
    "где вы находитесь?",
    "запишите меня на маникюр на 5 число",
    "приду в 15:00",
]


def test_there_are_at_least_fifteen_rating_phrasings() -> None:
    assert len(RATINGS) >= 15


@pytest.mark.parametrize(("text", "rating", "has_comment"), RATINGS)
def test_a_rating_is_read(text: str, rating: int, has_comment: bool) -> None:
    found = read_rating(text)
    assert found is not None and found[0] == rating
    assert bool(found[1]) is has_comment
    context = TurnContext(prompt=PromptKind.REVIEW)
    assert read_message(text, context, CATALOG, NOW) == (Rate(rating, found[1]),)


@pytest.mark.parametrize("text", NOT_RATINGS)
def test_no_rating_is_made_up(text: str) -> None:
    context = TurnContext(prompt=PromptKind.REVIEW)
    assert not any(isinstance(c, Rate) for c in read_message(text, context, CATALOG, NOW))


def review_chat(settings: ReminderSettings | None = None) -> Chat:
    chat = Chat(salon=ReminderSalon(crm_name="Анна"))
    if settings is not None:
        chat.policy = Policy(conversation_key="555100:79170000000", reminders=settings)
    prompt = Prompt(
        PromptKind.REVIEW, RECORD, VISIT_ID, at(-1, 15), NOW - dt.timedelta(hours=1), ("Стрижка",)
    )
    chat.state = chat.state.noted(prompt)
    return chat


@pytest.mark.parametrize(
    ("link_to", "rating", "link_sent"),
    [
        ("all", 5, True),
        ("all", 2, True),
        ("high", 5, True),
        ("high", 4, True),
        ("high", 3, False),
        ("high", 1, False),
    ],
)
def test_a_rating_is_stored_and_the_link_follows_the_salons_choice(
    link_to: str, rating: int, link_sent: bool
) -> None:
    chat = review_chat(ReminderSettings(review_link=LINK, review_link_to=link_to))  # type: ignore[arg-type]
    reply = say(chat, str(rating))
    low = rating <= 3
    assert chat.of(SaveRating) == [SaveRating(RECORD, VISIT_ID, rating, "", notify=low)]
    assert (LINK in reply) is link_sent
    assert "Спасибо" in reply
    lows = [a for a in chat.of(Audit) if isinstance(a, Audit) and a.kind == "assistant.low_rating"]
    assert bool(lows) is low
    assert chat.state.rating is not None and chat.state.rating.rating == rating
    assert rating_json(chat.state.to_json()) == {
        "record_id": RECORD,
        "rating": rating,
        "comment": None,
        "low": low,
        "at": NOW.isoformat(),
    }


def test_no_link_when_the_salon_set_none() -> None:
    chat = review_chat()
    reply = say(chat, "5")
    assert "http" not in reply and "Спасибо" in reply


def test_a_comment_in_the_next_message_is_stored_with_the_rating() -> None:
    chat = review_chat()
    say(chat, "2")
    assert chat.state.context().prompt is PromptKind.REVIEW_COMMENT
    commands = read_message("мастер опоздал на 20 минут", chat.state.context(), CATALOG, NOW)
    assert commands == (Comment("мастер опоздал на 20 минут"),)
    reply = chat.say(*commands, text="мастер опоздал на 20 минут")
    assert "Спасибо" in reply
    assert chat.of(SaveRating)[-1] == SaveRating(
        RECORD, VISIT_ID, 2, "мастер опоздал на 20 минут", notify=False
    )
    assert chat.state.prompt is None
    assert rating_json(chat.state.to_json())["comment"] == "мастер опоздал на 20 минут"  # type: ignore[index]


def test_a_comment_with_the_rating_is_stored_at_once() -> None:
    chat = review_chat()
    say(chat, "3, мастер опоздал")
    assert chat.of(SaveRating) == [SaveRating(RECORD, VISIT_ID, 3, "3, мастер опоздал", True)]
    assert chat.state.prompt is None


def test_a_request_after_a_rating_is_no_comment() -> None:
    chat = review_chat()
    say(chat, "5")
    reply = say(chat, "где вы находитесь?")
    assert len(chat.of(SaveRating)) == 1
    assert CATALOG.salon.address.split(",")[0] in reply


@pytest.mark.parametrize("text", ["где вы находитесь?", "хочу записаться на маникюр", "👍"])
def test_a_non_rating_after_a_review_request_is_an_ordinary_message(text: str) -> None:
    chat = review_chat()
    reply = say(chat, text)
    assert reply.strip() and not chat.of(SaveRating)
    assert chat.state.prompt is not None  # a rating may still come


def test_an_old_review_request_takes_no_rating() -> None:
    chat = review_chat()
    chat.now = NOW + REVIEW_WINDOW + dt.timedelta(hours=1)
    say(chat, "5")
    assert not chat.of(SaveRating)


def test_a_yes_after_a_review_request_confirms_no_visit() -> None:
    chat = review_chat()
    assert read_message("да", chat.state.context(), CATALOG, NOW) == (Confirm(),)
    reply = say(chat, "да")
    assert not chat.of(ConfirmVisit) and not chat.of(SaveRating)
    assert "Ждём вас" not in reply


# --------------------------------------------------------------------------- may_prompt


def row(mode: ConversationMode, until: dt.datetime | None = None, **state: object) -> Conversation:
    return Conversation(1, "79170000000", mode, dict(state), 1, mode_until=until)


@pytest.mark.parametrize(
    ("conversation", "allowed"),
    [
        (None, True),
        (row(ConversationMode.ASSISTANT), True),
        (row(ConversationMode.OPTED_OUT), False),
        (row(ConversationMode.ASSISTANT, opted_out=True), False),
        (row(ConversationMode.HANDOFF), False),
        (row(ConversationMode.HANDOFF, NOW + dt.timedelta(minutes=5)), False),
        (row(ConversationMode.HANDOFF, NOW - dt.timedelta(minutes=5)), True),
    ],
)
def test_may_prompt(conversation: Conversation | None, allowed: bool) -> None:
    assert may_prompt(conversation, NOW) is allowed
