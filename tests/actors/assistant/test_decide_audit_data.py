"""What the assistant's audit entries say of a visit, for the salon's page (issue 16): a booking,
a move, a cancellation, a confirmed visit and a rating carry the time, the services' titles and
the master's name the client was told, so the transcript can say "записал на …" without the
catalog at hand (scripted conversations, see ``decide_chat``)."""

from __future__ import annotations

from actors.assistant._commands import Confirm, Flow, SetServices, StartFlow
from actors.assistant._effects import Audit

from .decide_chat import GEL, Chat, Salon, at, when
from .test_decide_booking import book_everything
from .test_decide_reminders import RECORD, REMINDED, reminded_chat, review_chat, say
from .test_decide_visits import HAIRCUT, NAILS


def audits(chat: Chat, kind: str) -> list[dict[str, object]]:
    return [e.data for e in chat.of(Audit) if isinstance(e, Audit) and e.kind == kind]


def test_a_booking_names_its_services_and_master() -> None:
    chat = Chat()
    book_everything(chat)
    chat.say(Confirm())
    [booked] = audits(chat, "assistant.booked")
    assert booked["start"] == at(2, 15).isoformat()
    assert (booked["services"], booked["master"]) == (["Стрижка мужская"], "Игорь")
    assert isinstance(booked["record_id"], int) and isinstance(booked["service_ids"], list)


def test_a_cancellation_names_the_visit_it_cancelled() -> None:
    chat = Chat(Salon(visits=[HAIRCUT]))
    chat.say(StartFlow(Flow.CANCEL))
    chat.say(Confirm())
    [cancelled] = audits(chat, "assistant.cancelled")
    assert cancelled == {
        "record_id": HAIRCUT.record_id,
        "start": HAIRCUT.start.isoformat(),
        "service_ids": list(HAIRCUT.service_ids),
        "services": ["Стрижка мужская"],
        "master": "Игорь",
    }


def test_a_move_says_from_when_to_when() -> None:
    chat = Chat(Salon(visits=[HAIRCUT, NAILS]))
    chat.say(StartFlow(Flow.MOVE), SetServices((GEL,)), when("на 16:00 в тот же день"))
    chat.say(Confirm())
    [moved] = audits(chat, "assistant.moved")
    assert moved["from"] == NAILS.start.isoformat()
    assert moved["start"] == at(4, 16).isoformat()
    assert (moved["services"], moved["master"]) == (["Маникюр с покрытием гель-лак"], "Алина")


def test_a_confirmed_visit_says_when_it_is() -> None:
    chat = reminded_chat()
    say(chat, "да")
    [confirmed] = audits(chat, "assistant.visit_confirmed")
    assert confirmed == {"record_id": RECORD, "marked": True, "start": REMINDED.start.isoformat()}


def test_every_rating_is_told_not_only_a_low_one() -> None:
    high = review_chat()
    say(high, "5")
    assert audits(high, "assistant.rated") == [{"record_id": RECORD, "rating": 5}]
    assert audits(high, "assistant.low_rating") == []
    low = review_chat()
    say(low, "2")
    assert audits(low, "assistant.rated") == [{"record_id": RECORD, "rating": 2}]
    assert len(audits(low, "assistant.low_rating")) == 1
