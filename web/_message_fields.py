"""The fields of a simulated WhatsApp message (the dev simulator's inbound and staff-message
routes) as field rules, so the routes and ``/openapi.json`` read the same limits."""

from __future__ import annotations

from actors.whatsapp import MESSAGE_KINDS

from ._validation import PHONE, FieldRule, bounded_text, object_schema, one_of

#: The longest text a simulated message may carry: clients do send letters this long, and the
#: assistant must cope with them, so the simulator lets them through.
MAX_MESSAGE_TEXT = 4096


def _message_text(value: object, field: str) -> str:
    return bounded_text(value, field, MAX_MESSAGE_TEXT)


def _caption(value: object, field: str) -> str:
    return bounded_text(value, field, MAX_MESSAGE_TEXT, allow_empty=True)


#: A message's text: 1 … MAX_MESSAGE_TEXT characters, no control characters but tab and newlines.
MESSAGE_TEXT: FieldRule[str] = FieldRule(
    _message_text, {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_TEXT}
)
#: A media message's caption: like MESSAGE_TEXT, but may be empty.
CAPTION: FieldRule[str] = FieldRule(_caption, {"type": "string", "maxLength": MAX_MESSAGE_TEXT})
#: What a message carries: ``text`` or a kind of media.
KIND: FieldRule[str] = one_of(*MESSAGE_KINDS)

INBOUND_BODY = {
    **object_schema({"phone": PHONE}, {"text": CAPTION, "kind": KIND}),
    "description": "text is required for kind text (the default); for media it is the caption",
}
STAFF_MESSAGE_BODY = object_schema({"phone": PHONE, "text": MESSAGE_TEXT})
