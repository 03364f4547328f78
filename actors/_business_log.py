"""The operators' log of business events: one INFO line per event, one shape everywhere.

::

    event=linked company_id=12 salon_id=34 phone=***4567 request_id=-

Lines go to the ``aiadmin.events`` logger (:data:`EVENTS_LOGGER`), ``key=value`` pairs in a
fixed order: ``event``, ``company_id``, the event's own fields, ``request_id`` last. A value
with a space, ``=`` or a quote is written as a JSON string; a missing one as ``-``. The JSON
log formatter (``web._logging``) also gets them as a structured ``event`` object.

``request_id`` is the request the event serves: the HTTP request or WebSocket that caused it
(its ``X-Request-Id``, or the one the web layer made up), the lifecycle webhook for ``frozen``
and ``uninstalled`` (kept with the stored event), and ``-`` for what no request asked for just
then (a QR round that ran out, a phone that linked or unlinked, YClients' answer to the
activation callback). The id lives in :data:`request_id_var`; a contextvar does not cross an
actor's mailbox, so a command sent to a company actor carries the id of the request that built
it (:class:`FromRequest`) and the actor handles it under that id (:func:`serving_request`).

Never a secret: events carry ids, statuses and short reasons. A field named like a credential
(:data:`SECRET_FIELDS`) is written as ``[REDACTED]``, a phone number as its last four digits
(:func:`mask_phone`); the redacting log filter still runs on every line.

Pure: imports nothing but the standard library (the decisions import :class:`FromRequest`).
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "EVENTS_LOGGER",
    "BusinessEvent",
    "FromRequest",
    "current_request_id",
    "log_event",
    "mask_phone",
    "request_id_var",
    "serving_request",
]

#: The logger every business event is written to.
EVENTS_LOGGER = "aiadmin.events"
log = logging.getLogger(EVENTS_LOGGER)

#: The request the running code serves (``None``: no request). The web layer sets it for each
#: HTTP request and WebSocket; the log filter copies it into every record.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

#: Field names whose value is never written (a caller's slip must not leak a credential).
SECRET_FIELDS = frozenset(
    {"token", "api_key", "key", "secret", "webhook_secret", "password", "jwt", "qr", "code"}
)
#: Field names holding a phone number, written masked.
PHONE_FIELDS = frozenset({"phone", "to_phone", "whatsapp_phone"})
REDACTED = "[REDACTED]"
MAX_VALUE_CHARS = 200
_BARE = re.compile(r"[^\s=\"\\]+")


class BusinessEvent(enum.StrEnum):
    """The events operators follow, by the name written after ``event=``."""

    SALON_REGISTERED = "salon_registered"  # POST /marketplace/register, the install redirect
    LINKING_STARTED = "linking_started"  # request-qr / request-pairing-code began a round
    QR_EXPIRED = "qr_expired"  # the round ended with no scan (codes ran out or nobody watched)
    LINKED = "linked"  # the salon's phone linked WhatsApp
    UNLINKED = "unlinked"  # the phone removed the linked device (a new scan is needed)
    ACTIVATION_SENT = "activation_sent"  # YClients accepted the activation callback
    ACTIVATION_FAILED = "activation_failed"  # YClients refused it, or never confirmed it
    FROZEN = "frozen"  # YClients froze the app (lifecycle webhook)
    UNINSTALLED = "uninstalled"  # YClients uninstalled the app (lifecycle webhook)
    OWNERSHIP_MOVED = "ownership_moved"  # cluster: the salon's actor now runs on another node


def current_request_id() -> str | None:
    """The id of the request the running code serves, if any."""
    return request_id_var.get()


@contextmanager
def serving_request(request_id: str | None) -> Iterator[None]:
    """Run the block as serving ``request_id`` (``None``: no request), then restore the id."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


@dataclass(frozen=True)
class FromRequest:
    """A command that remembers the request it was built in (``request_id``, read from
    :data:`request_id_var` at construction unless given), so the actor that handles it later,
    in its own task, logs under that request. Not compared, not shown in ``repr``."""

    request_id: str | None = field(
        default_factory=current_request_id, kw_only=True, compare=False, repr=False
    )


def mask_phone(phone: str | None) -> str:
    """A phone number as ``***`` and its last four digits (personal data stays out of logs)."""
    if not phone:
        return "-"
    digits = "".join(c for c in phone if c.isdigit())
    return "***" + digits[-4:] if len(digits) > 4 else "***"


def _value(name: str, value: object) -> object:
    """The value as logged: secrets redacted, phones masked, long text cut."""
    if name in SECRET_FIELDS:
        return REDACTED
    if name in PHONE_FIELDS:
        return mask_phone(None if value is None else str(value))
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value.value if isinstance(value, enum.Enum) else value
    text = str(text)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _text(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def log_event(event: BusinessEvent, company_id: int | None, **fields: object) -> None:
    """Write ``event`` for ``company_id`` with ``fields`` as one INFO line (see the module).

    The request id is the current one (:data:`request_id_var`): serve a command under its
    request with :func:`serving_request` before logging what it did. Never raises for a value.
    """
    values = {name: _value(name, value) for name, value in fields.items()}
    request_id = current_request_id()
    pairs = [("event", event.value), ("company_id", company_id), *values.items()]
    pairs.append(("request_id", request_id))
    line = " ".join(f"{name}={_text(value)}" for name, value in pairs)
    structured = {"name": event.value, "company_id": company_id, **values}
    log.info("%s", line, extra={"business_event": structured})
