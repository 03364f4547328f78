"""Session events: JSON round trips and the pure state transition function."""

from __future__ import annotations

import json

import pytest

from actors.whatsapp import (
    Connected,
    ConnectFailed,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    PairingFailed,
    QrCode,
    SessionEvent,
    SessionLost,
    SessionState,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
    event_from_dict,
    event_to_dict,
    next_state,
)

ALL_EVENTS: list[SessionEvent] = [
    QrCode("2@abc,def,ghi,jkl"),
    Linked("79001234567:3@s.whatsapp.net", "79001234567"),
    PairingFailed("bad code"),
    Connected(),
    Disconnected("connection lost"),
    LoggedOut("device_removed"),
    StreamReplaced(),
    TemporaryBan("SEND_TO_TOO_MANY_PEOPLE", 3600.0),
    KeepAliveTimeout(),
    KeepAliveRestored(),
    InboundMessage("ABCDEF123456", "79005550000", "Привет", 1700000000.0),
    StaffMessage("ABCDEF654321", "79005550000", "Это администратор", 1700000001.0, "image"),
    ConnectFailed("failed to dial"),
    SessionLost("host died"),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_json(event: SessionEvent) -> None:
    wire = json.loads(json.dumps(event_to_dict(event)))
    assert wire["type"] == type(event).__name__
    assert event_from_dict(wire) == event


def test_every_event_type_is_covered() -> None:
    from actors.whatsapp._events import EVENT_TYPES

    assert set(EVENT_TYPES) == {type(e).__name__ for e in ALL_EVENTS}


@pytest.mark.parametrize(
    "data", [{"type": "Nope"}, {}, {"type": "Linked", "jid": "x"}, {"type": "Connected", "x": 1}]
)
def test_bad_event_dicts_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        event_from_dict(data)


def test_qr_code_repr_hides_the_code() -> None:
    assert "2@" not in repr(QrCode("2@secret"))


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (SessionState.CONNECTING, QrCode("2@x"), SessionState.LINKING),
        (SessionState.LINKING, Linked("j", "p"), SessionState.CONNECTING),
        (SessionState.CONNECTING, Connected(), SessionState.CONNECTED),
        (SessionState.CONNECTED, Disconnected("x"), SessionState.DISCONNECTED),
        (SessionState.DISCONNECTED, Connected(), SessionState.CONNECTED),
        (SessionState.CONNECTED, InboundMessage("i", "p", "t", 0.0), SessionState.CONNECTED),
        (SessionState.CONNECTED, StaffMessage("i", "p", "t", 0.0), SessionState.CONNECTED),
        (SessionState.CONNECTED, KeepAliveTimeout(), SessionState.CONNECTED),
        (SessionState.CONNECTED, LoggedOut("x"), SessionState.IDLE),
        (SessionState.CONNECTED, StreamReplaced(), SessionState.IDLE),
        (SessionState.CONNECTED, TemporaryBan("c", 1.0), SessionState.IDLE),
        (SessionState.CONNECTING, ConnectFailed("x"), SessionState.IDLE),
        (SessionState.CONNECTED, SessionLost("x"), SessionState.IDLE),
        (SessionState.CLOSED, Connected(), SessionState.CLOSED),
    ],
)
def test_next_state(state: SessionState, event: SessionEvent, expected: SessionState) -> None:
    assert next_state(state, event) is expected
