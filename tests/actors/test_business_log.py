"""``actors._business_log``: the shape of an event line, the request id it carries, and what it
never writes (credentials by name, whole phone numbers)."""

from __future__ import annotations

import logging

import pytest

from actors import (
    EVENTS_LOGGER,
    BusinessEvent,
    FromRequest,
    current_request_id,
    log_event,
    mask_phone,
    serving_request,
)
from actors.company import messages as m


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == EVENTS_LOGGER]


def test_one_info_line_event_first_request_id_last(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    with serving_request("abc-123"):
        log_event(BusinessEvent.SALON_REGISTERED, 12, salon_id=34, via="api")
    log_event(BusinessEvent.QR_EXPIRED, 12, salon_id=34)
    assert lines(caplog) == [
        "event=salon_registered company_id=12 salon_id=34 via=api request_id=abc-123",
        "event=qr_expired company_id=12 salon_id=34 request_id=-",
    ]
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]


def test_values_are_quoted_when_they_would_break_the_pairs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    log_event(
        BusinessEvent.ACTIVATION_FAILED,
        None,
        reason='422: "Филиал" не найден',
        recovered=False,
        attempts=3,
        empty="",
        missing=None,
        note="x" * 500,
    )
    (line,) = lines(caplog)
    assert line.startswith("event=activation_failed company_id=- reason=")
    assert 'reason="422: \\"Филиал\\" не найден"' in line
    assert "recovered=false attempts=3 empty=- missing=-" in line
    note = line.split("note=")[1].split(" ")[0]
    assert len(note) == 200 and note.endswith("…")


def test_credentials_by_name_are_never_written(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    log_event(
        BusinessEvent.LINKED,
        1,
        token="t0ken-value-123",
        api_key="sk_live_value",
        webhook_secret="whs_value",
        code="ABCD-EFGH",
        phone="+7 (900) 123-45-67",
    )
    (line,) = lines(caplog)
    for value in ("t0ken-value-123", "sk_live_value", "whs_value", "ABCD-EFGH", "79001234567"):
        assert value not in line
    assert "token=[REDACTED] api_key=[REDACTED]" in line
    assert "phone=***4567" in line


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ("79001234567", "***4567"),
        ("+44 20 7946 0958", "***0958"),
        ("1234", "***"),
        ("", "-"),
        (None, "-"),
    ],
)
def test_mask_phone_keeps_the_last_four_digits(phone: str | None, shown: str) -> None:
    assert mask_phone(phone) == shown


def test_serving_request_restores_the_outer_id() -> None:
    assert current_request_id() is None
    with serving_request("outer"):
        with serving_request(None):
            assert current_request_id() is None
        assert current_request_id() == "outer"
    assert current_request_id() is None


def test_a_command_remembers_the_request_it_was_built_in() -> None:
    """The company actor's commands carry the id across the mailbox; equality ignores it."""
    with serving_request("ws-7"):
        asked = m.RequestPairingCode("79001234567")
        freeze = m.Freeze()
    assert asked.request_id == "ws-7" and freeze.request_id == "ws-7"
    assert m.RequestQr().request_id is None
    assert m.RequestQr(request_id="given").request_id == "given"
    assert asked == m.RequestPairingCode("79001234567") and hash(freeze) == hash(m.Freeze())
    assert "ws-7" not in repr(asked)
    for command in (m.RequestQr, m.Freeze, m.Uninstall, m.Reinstall):
        assert issubclass(command, FromRequest)
