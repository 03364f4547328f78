"""The conversation state's JSON form: exact round trip, plain types, and a fresh state (never
a crash) for a row of another version or shape; what understanding is told (``context``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from actors.assistant._commands import (
    Confirm,
    Expecting,
    Flow,
    SetServices,
    SetWhen,
    StartFlow,
    TurnContext,
)
from actors.assistant._effects import ClientTurn, FindSlots, Slot, Visit
from actors.assistant._state import (
    STATE_VERSION,
    Booking,
    ConfirmKind,
    ConversationState,
    Pending,
    VisitHint,
    Wish,
)
from actors.assistant._when import parse_when

from .decide_chat import NOW, at, day

SLOT = Slot(6201, at(2, 15))
VISIT = Visit(7001, at(3, 17), 6201, (6101,), ("Стрижка мужская",), 45)
RICH = ConversationState(
    flow=Flow.BOOK,
    wish=Wish((6101, 6106), 6201, (day(1), day(2)), None, (dt.time(17), dt.time(21)), False),
    chosen=SLOT,
    client_name="Тимур",
    client_id=6301,
    looked_up=True,
    greeted=True,
    service_choices=(6101, 6102),
    offered=(SLOT, Slot(6204, at(2, 16, 30))),
    searched=FindSlots((6101,), (day(2),), (6201,), None, dt.time(15), 14),
    visits=(VISIT,),
    listed_visits=(VISIT,),
    chosen_visit=VISIT,
    hint=VisitHint((6105,), day(4)),
    expecting=Expecting.CONFIRM,
    question="Записать?",
    pending=Pending(ConfirmKind.BOOK, SLOT, (6101,), "Тимур", "aia-1"),
    booking=Booking("aia-0", SLOT, (6101,), "Тимур", 0, 2),
    last_booked=Booking("aia-x", SLOT, (6101,), "Тимур", 901),
    not_understood=1,
    draft=("Здравствуйте!",),
    deferred=ClientTurn(
        "завтра в 15",
        (
            StartFlow(Flow.BOOK),
            SetServices((6101,)),
            SetWhen(parse_when("завтра в 15", NOW)),
            Confirm(),
        ),
        NOW,
    ),
    seq=3,
)


def test_a_rich_state_round_trips_through_plain_json() -> None:
    data = RICH.to_json()
    text = json.dumps(data)  # plain JSON types only
    assert data["v"] == STATE_VERSION
    assert ConversationState.from_json(json.loads(text)) == RICH


def test_the_default_state_round_trips() -> None:
    assert ConversationState.from_json(ConversationState().to_json()) == ConversationState()


def test_times_keep_their_instant_across_zones() -> None:
    restored = ConversationState.from_json(json.loads(json.dumps(RICH.to_json())))
    assert restored.chosen is not None
    assert restored.chosen.start.utcoffset() == dt.timedelta(hours=3)
    assert restored.chosen.start == SLOT.start


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        "state",
        {},
        {"v": STATE_VERSION + 1, "flow": "book"},
        {"v": 0},
        {"v": STATE_VERSION, "flow": "teleport"},
        {"v": STATE_VERSION, "seq": "three"},
        {"v": STATE_VERSION, "seq": True},
        {"v": STATE_VERSION, "offered": [{"t": "Slot", "staff_id": 1}]},
        {"v": STATE_VERSION, "chosen": {"t": "Slot", "staff_id": 1, "start": "2025-03-14T15:00"}},
        {"v": STATE_VERSION, "wish": {"t": "Visit"}},
        {
            "v": STATE_VERSION,
            "deferred": {"t": "ClientTurn", "text": "x", "at": "bad", "commands": []},
        },
        {
            "v": STATE_VERSION,
            "deferred": {
                "t": "ClientTurn",
                "text": "x",
                "at": NOW.isoformat(),
                "commands": [{"t": "Rm"}],
            },
        },
    ],
)
def test_a_row_of_another_version_or_shape_gives_a_fresh_state(stored: object) -> None:
    assert ConversationState.from_json(stored) == ConversationState()


def test_unknown_keys_are_ignored_missing_ones_default() -> None:
    data = _without(RICH.to_json(), "greeted") | {"from_the_future": 1}
    restored = ConversationState.from_json(data)
    assert restored.greeted is False
    assert restored.client_name == "Тимур"


def test_context_tells_understanding_what_was_asked_and_offered() -> None:
    options = ConversationState(
        flow=Flow.BOOK, expecting=Expecting.OPTION, offered=RICH.offered
    ).context()
    assert options == TurnContext(Expecting.OPTION, 2, (SLOT.start, at(2, 16, 30)), Flow.BOOK)
    visits = ConversationState(
        flow=Flow.CANCEL, expecting=Expecting.VISIT, listed_visits=(VISIT, VISIT)
    ).context()
    assert (visits.expecting, visits.offered_count, visits.offered_times) == (
        Expecting.VISIT,
        2,
        (),
    )
    # Times offered earlier are not "offered" once the assistant asked something else.
    asked = ConversationState(expecting=Expecting.NAME, offered=RICH.offered).context()
    assert (asked.offered_count, asked.offered_times) == (0, ())


def test_a_booking_in_flight_is_settled_on_start() -> None:
    assert RICH.settle_due_on_start
    assert not ConversationState().settle_due_on_start
