"""What the conversations API reads and shows, shared by its routes and ``/openapi.json``:
the body field rules, a conversation's JSON, and the list's opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any

from actors.assistant._prompts import rating_json
from storage import Conversation, ConversationMode

from ._errors import BadRequest
from ._validation import PHONE, integer_in, object_schema, one_of

_DIGITS = re.compile(r"[0-9]{5,15}")
#: Longer than any cursor :func:`encode_cursor` writes (about 90 characters).
MAX_CURSOR = 256

#: Page sizes of the list: the default and the largest a caller may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: The longest handoff a salon may set in one request: a week.
MAX_HANDOFF_MINUTES = 7 * 24 * 60

#: The modes the salon may set (``opted_out`` is the client's own choice).
SETTABLE_MODE = one_of(ConversationMode.ASSISTANT.value, ConversationMode.HANDOFF.value)
HANDOFF_MINUTES = integer_in(1, MAX_HANDOFF_MINUTES)
LISTED_MODE = one_of(*(mode.value for mode in ConversationMode))


def iso(value: datetime | None) -> str | None:
    """``value`` in ISO 8601 (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """What the API shows of a conversation (never the assistant's internal state)."""
    return {
        "phone": conversation.phone,
        "client_name": conversation.client_name,
        "mode": conversation.mode.value,
        "mode_until": iso(conversation.mode_until),
        "needs_person": conversation.needs_person,
        "last_message_at": iso(conversation.last_message_at),
        "updated_at": iso(conversation.updated_at),
        "created_at": iso(conversation.created_at),
        # the client's last rating after a review request; "low" (1-3) tells the salon
        "last_rating": rating_json(conversation.state),
    }


MODE_BODY = object_schema({"phone": PHONE, "mode": SETTABLE_MODE}, {"minutes": HANDOFF_MINUTES})


def encode_cursor(conversation: Conversation) -> str:
    """The opaque cursor after ``conversation``: its place in the newest-first order."""
    at = conversation.last_message_at or conversation.updated_at
    assert at is not None  # stored rows always have updated_at
    raw = json.dumps([at.isoformat(), conversation.phone], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The place :func:`encode_cursor` wrote; 400 ``invalid_field`` for anything else."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long for a cursor")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at_text, phone = json.loads(raw)
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(phone, str) or not _DIGITS.fullmatch(phone):
            raise ValueError("not a cursor")
        return at.astimezone(UTC), phone
    except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
        raise BadRequest(
            "cursor must be a next_cursor this list returned.", code="invalid_field", field="cursor"
        ) from None
