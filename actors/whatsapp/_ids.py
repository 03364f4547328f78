"""Identifiers shaped like WhatsApp's: message ids, QR strings, pairing codes, JIDs.

Phone numbers follow the one phone rule of :mod:`actors._phones`.
"""

from __future__ import annotations

import base64
import re
import secrets

_MESSAGE_ID = re.compile(r"^[0-9A-Za-z]{8,64}$")
# Crockford-like alphabet WhatsApp uses for pairing codes (no 0/O, 1/I confusion).
_PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


def new_message_id() -> str:
    """A fresh outbound message id in whatsmeow's shape: ``3EB0`` + 18 uppercase hex digits.

    The caller generates it *before* the first attempt and reuses it on every retry, so a
    resend after an unknown outcome is recognised as the same message.
    """
    return "3EB0" + secrets.token_hex(9).upper()


def valid_message_id(message_id: str) -> bool:
    """Whether ``message_id`` is acceptable as a message id (8-64 letters and digits)."""
    return bool(_MESSAGE_ID.match(message_id))


def fake_qr_code() -> str:
    """A QR payload with the exact shape and length of whatsmeow's.

    ``2@`` + ref (base64 of 72 random bytes, as long as the server's) + ``,`` + base64 noise public
    key (32 bytes) + ``,`` + base64 identity public key (32 bytes) + ``,`` + base64 ADV secret
    (32 bytes): 233 characters.
    """
    parts = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (72, 32, 32, 32)]
    return "2@" + ",".join(parts)


def new_pairing_code() -> str:
    """An 8-character pairing code shown as ``ABCD-EFGH``."""
    chars = "".join(secrets.choice(_PAIRING_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_pairing_code(code: str) -> str:
    """``abcd efgh`` / ``ABCDEFGH`` / ``ABCD-EFGH`` → ``ABCDEFGH`` for comparison."""
    return re.sub(r"[^0-9A-Za-z]", "", code).upper()


def device_jid(phone: str, device: int) -> str:
    """The JID of a linked companion device, e.g. ``79001234567:12@s.whatsapp.net``."""
    return f"{phone}:{device}@s.whatsapp.net"


def phone_of_jid(jid: str) -> str:
    """The phone number in a JID (``79001234567:12@s.whatsapp.net`` → ``79001234567``)."""
    return jid.split("@", 1)[0].split(":", 1)[0].split(".", 1)[0]
