"""The simulated world's chat log: what each client's phone shows, in order, bounded."""

from __future__ import annotations

from actors.whatsapp import (
    SimulatedSession,
    SimulatedWorld,
    new_message_id,
)
from actors.whatsapp._world import CHAT_LINES_PER_PHONE, CHAT_PHONES_PER_COMPANY, ChatLog

ANNA = "79005550001"
BORIS = "79005550002"


async def test_a_phone_sees_what_it_sent_and_what_was_delivered_to_it_in_order(
    linked: tuple[SimulatedWorld, SimulatedSession],
) -> None:
    world, session = linked
    world.send_inbound(1, "+7 900 555-00-01", "Здравствуйте")
    await session.send_text(ANNA, "Добрый день!", message_id=new_message_id())
    await session.send_text(BORIS, "Вам другое", message_id=new_message_id())
    world.send_inbound(1, ANNA, "спасибо")
    lines = world.chat(1, ANNA)
    assert [(line.direction, line.text) for line in lines] == [
        ("in", "Здравствуйте"),
        ("out", "Добрый день!"),
        ("in", "спасибо"),
    ]
    assert lines[0].at <= lines[1].at <= lines[2].at
    assert [line.text for line in world.chat(1, BORIS)] == ["Вам другое"]
    assert world.chat(2, ANNA) == []


async def test_a_message_sent_twice_with_one_id_shows_once(
    linked: tuple[SimulatedWorld, SimulatedSession],
) -> None:
    world, session = linked
    same = new_message_id()
    await session.send_text(ANNA, "Записала вас", message_id=same)
    await session.send_text(ANNA, "Записала вас", message_id=same)
    assert [line.text for line in world.chat(1, ANNA)] == ["Записала вас"]


def test_the_log_keeps_the_latest_lines_of_each_phone() -> None:
    log = ChatLog()
    for n in range(CHAT_LINES_PER_PHONE + 3):
        log.add(ANNA, "in", str(n))
    lines = log.lines(ANNA)
    assert len(lines) == CHAT_LINES_PER_PHONE
    assert (lines[0].text, lines[-1].text) == ("3", str(CHAT_LINES_PER_PHONE + 2))


def test_the_log_drops_the_least_recently_active_phone_first() -> None:
    log = ChatLog()
    phones = [f"7900{n:07d}" for n in range(CHAT_PHONES_PER_COMPANY)]
    for phone in phones:
        log.add(phone, "in", "привет")
    log.add(phones[0], "out", "здравствуйте")  # the oldest phone becomes the most recent
    log.add("79990000000", "in", "новый")
    assert log.lines(phones[1]) == []
    assert [line.text for line in log.lines(phones[0])] == ["привет", "здравствуйте"]
    assert [line.text for line in log.lines("79990000000")] == ["новый"]
