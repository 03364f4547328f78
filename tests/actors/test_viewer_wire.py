"""The cluster viewer's wire format: every message survives JSON both ways, keeps the shape
other processes read, and anything malformed decodes to ``None`` instead of raising."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors import (
    WATCH_EVERY,
    ViewerCommand,
    ViewerEvent,
    ViewerOp,
    commands_channel,
    events_channel,
)
from actors._viewer_wire import REMOTE_VIEWER_TTL, error_frame


def over_the_wire(message: dict[str, Any]) -> object:
    """What the other process reads: the object as pub/sub carries it (JSON text)."""
    return json.loads(json.dumps(message, ensure_ascii=False))


def test_channel_names() -> None:
    assert events_channel(42) == "company:42:events"
    assert commands_channel("node-a") == "node:node-a:commands"


def test_a_viewer_keeps_watching_well_within_the_owners_patience() -> None:
    """A socket repeats ``watch`` often enough that one lost repeat does not get it forgotten."""
    assert 0 < 2 * WATCH_EVERY < REMOTE_VIEWER_TTL


@pytest.mark.parametrize(
    ("command", "encoded"),
    [
        (
            ViewerCommand(7, "v1", ViewerOp.WATCH),
            {"company_id": 7, "viewer": "v1", "op": "watch"},
        ),
        (
            ViewerCommand(7, "v1", ViewerOp.UNWATCH),
            {"company_id": 7, "viewer": "v1", "op": "unwatch"},
        ),
        (
            ViewerCommand(7, "v1", ViewerOp.REQUEST_QR),
            {"company_id": 7, "viewer": "v1", "op": "request-qr"},
        ),
        (
            ViewerCommand(7, "v1", ViewerOp.REQUEST_PAIRING_CODE, "+7 900 123-45-67"),
            {
                "company_id": 7,
                "viewer": "v1",
                "op": "request-pairing-code",
                "phone": "+7 900 123-45-67",
            },
        ),
    ],
    ids=lambda value: value.op.value if isinstance(value, ViewerCommand) else "",
)
def test_commands_round_trip(command: ViewerCommand, encoded: dict[str, Any]) -> None:
    assert command.encode() == encoded
    assert ViewerCommand.decode(over_the_wire(command.encode())) == command


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "watch",
        [7, "v1", "watch"],
        {"viewer": "v1", "op": "watch"},
        {"company_id": "7", "viewer": "v1", "op": "watch"},
        {"company_id": True, "viewer": "v1", "op": "watch"},
        {"company_id": 7, "viewer": 1, "op": "watch"},
        {"company_id": 7, "viewer": "v1", "op": "take-over"},
        {"company_id": 7, "viewer": "v1"},
        {"company_id": 7, "viewer": "v1", "op": "request-pairing-code"},
        {"company_id": 7, "viewer": "v1", "op": "request-pairing-code", "phone": 79001234567},
    ],
)
def test_malformed_commands_decode_to_none(raw: object) -> None:
    assert ViewerCommand.decode(raw) is None


def test_a_phone_travels_with_a_pairing_request_only() -> None:
    """Extra fields are ignored on the way in; a command is never built half right."""
    extra = {"company_id": 7, "viewer": "v1", "op": "watch", "phone": "79001234567"}
    assert ViewerCommand.decode(extra) == ViewerCommand(7, "v1", ViewerOp.WATCH)
    with pytest.raises(ValueError, match="phone"):
        ViewerCommand(7, "v1", ViewerOp.WATCH, "79001234567")
    with pytest.raises(ValueError, match="phone"):
        ViewerCommand(7, "v1", ViewerOp.REQUEST_PAIRING_CODE)


def test_a_command_carries_its_sockets_request_id_and_tolerates_none() -> None:
    """The socket's request id travels with the command; a command from a node that sends
    none, or a malformed one, is still served (without a request id)."""
    command = ViewerCommand(7, "v1", ViewerOp.REQUEST_QR, request_id="ws-7f3a")
    assert command.encode() == {
        "company_id": 7,
        "viewer": "v1",
        "op": "request-qr",
        "request_id": "ws-7f3a",
    }
    assert ViewerCommand.decode(over_the_wire(command.encode())) == command
    bare = {"company_id": 7, "viewer": "v1", "op": "request-qr"}
    assert ViewerCommand.decode(bare) == ViewerCommand(7, "v1", ViewerOp.REQUEST_QR)
    for bad in (12, "", "a b", "x" * 65, "id\nevent=linked"):
        decoded = ViewerCommand.decode({**bare, "request_id": bad})
        assert decoded == ViewerCommand(7, "v1", ViewerOp.REQUEST_QR, request_id=None)
        assert decoded is not None and decoded.request_id is None


STATUS = {"event": "status", "data": {"companyId": 7, "whatsapp_connected": False}}


@pytest.mark.parametrize(
    ("event", "encoded"),
    [
        (ViewerEvent(STATUS), {"frame": STATUS}),
        (ViewerEvent(STATUS, to="v1"), {"frame": STATUS, "to": "v1"}),
        (ViewerEvent(to="v1", close=True), {"to": "v1", "close": True}),
        (
            ViewerEvent(error_frame("Service moved; reconnecting", "unavailable"), "v1", True),
            {
                "frame": {
                    "event": "error",
                    "data": {"message": "Service moved; reconnecting", "code": "unavailable"},
                },
                "to": "v1",
                "close": True,
            },
        ),
    ],
    ids=["broadcast", "addressed", "close", "error-and-close"],
)
def test_events_round_trip(event: ViewerEvent, encoded: dict[str, Any]) -> None:
    assert event.encode() == encoded
    assert ViewerEvent.decode(over_the_wire(event.encode())) == event


@pytest.mark.parametrize(
    "raw",
    [None, "frame", [STATUS], {"frame": "status"}, {"frame": STATUS, "to": 3}],
)
def test_malformed_events_decode_to_none(raw: object) -> None:
    assert ViewerEvent.decode(raw) is None


def test_an_event_is_for_every_socket_or_the_one_it_names() -> None:
    assert ViewerEvent(STATUS).is_for("v1") and ViewerEvent(STATUS).is_for("v2")
    assert ViewerEvent(STATUS, to="v1").is_for("v1")
    assert not ViewerEvent(STATUS, to="v1").is_for("v2")
    assert ViewerEvent.decode({"frame": STATUS, "close": "yes"}) == ViewerEvent(STATUS)
