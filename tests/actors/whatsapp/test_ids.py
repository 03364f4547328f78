"""Identifiers shaped like WhatsApp's (phone numbers: tests/actors/test_phones.py)."""

from __future__ import annotations

import base64
import re

from actors.whatsapp import fake_qr_code, new_message_id
from actors.whatsapp._ids import (
    device_jid,
    new_pairing_code,
    normalise_pairing_code,
    phone_of_jid,
    valid_message_id,
)


def test_message_ids_look_like_whatsmeow_ids_and_differ() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    for mid in ids:
        assert re.fullmatch(r"3EB0[0-9A-F]{18}", mid)
        assert valid_message_id(mid)
    assert not valid_message_id("bad id!")


def test_fake_qr_has_whatsmeows_shape() -> None:
    code = fake_qr_code()
    assert code.startswith("2@")
    parts = code[2:].split(",")
    assert [len(base64.b64decode(p)) for p in parts] == [72, 32, 32, 32]
    assert len(code) >= 230
    assert fake_qr_code() != code


def test_pairing_code_shape() -> None:
    code = new_pairing_code()
    assert re.fullmatch(r"[1-9A-Z]{4}-[1-9A-Z]{4}", code)
    assert normalise_pairing_code(code.lower().replace("-", " ")) == code.replace("-", "")


def test_jid_helpers() -> None:
    jid = device_jid("79001234567", 12)
    assert jid == "79001234567:12@s.whatsapp.net"
    assert phone_of_jid(jid) == "79001234567"
