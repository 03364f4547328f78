"""Checking what the YClients marketplace sends us, and naming webhook deliveries for dedupe.

- ``decode_user_data``: the registration redirect may carry ``user_data`` (base64 of a JSON
  object about the salon admin) and ``user_data_sign`` (hex HMAC-SHA256 of the *decoded* JSON
  bytes, keyed with the partner token). The signature is checked in constant time before the
  JSON is even parsed.
- ``verify_partner_token``: lifecycle webhooks carry our partner token; compare it in constant
  time.
- ``webhook_dedupe_key``: YClients may deliver a webhook more than once, and its bodies carry no
  delivery id. See the function for what makes two deliveries "the same event". Keys are
  namespaced by the route the delivery came through (:class:`WebhookSource`), so a record
  webhook can never carry, or block, a lifecycle event.
- ``sign_user_data``: the inverse of ``decode_user_data``, for tests, demos and the dev tools.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ._errors import InvalidSignature, MalformedUserData, MalformedWebhook

#: How long redeliveries of a lifecycle event (which has no change time) are merged.
LIFECYCLE_DEDUPE_BUCKET = timedelta(minutes=10)

#: The resource name a record webhook may never use: lifecycle events have their own route.
LIFECYCLE_RESOURCE = "lifecycle"


class WebhookSource(enum.StrEnum):
    """The route a webhook came through; the first segment of its dedupe key."""

    #: ``POST /marketplace/webhook/{company}/{secret}``: record events, authenticated by the
    #: company's webhook secret (which anyone holding the URL knows).
    RECORD = "record"
    #: ``POST /marketplace/yclients/webhook``: ``freeze`` / ``uninstall``, authenticated by
    #: our partner token.
    LIFECYCLE = "lifecycle"


#: Record fields that carry the record's change time, in order of preference.
CHANGE_TIME_FIELDS = ("last_change_date", "last_change", "changed_at", "updated_at")

_WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (both have been seen in redirects)."""
    cleaned = "".join(text.split())
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedUserData("user_data is not valid base64") from exc


def _signature(payload: bytes, partner_token: str) -> str:
    return hmac.new(partner_token.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def decode_user_data(
    user_data_b64: str | None, user_data_sign_hex: str | None, partner_token: str
) -> dict[str, Any]:
    """Return the salon admin's data from a registration redirect, after checking its signature.

    Raises ``InvalidSignature`` when the signature is missing, not 64 hex digits or not the
    HMAC-SHA256 of the decoded bytes keyed with ``partner_token`` (or when no partner token is
    configured to check against), and ``MalformedUserData`` when ``user_data`` is missing, not
    base64, or does not decode to a UTF-8 JSON object. Callers must treat both as "this redirect
    may not change anything".
    """
    if not user_data_b64:
        raise MalformedUserData("user_data is missing")
    if not partner_token:
        raise InvalidSignature("no partner token configured to verify user_data against")
    sign = (user_data_sign_hex or "").strip()
    if not _HEX.match(sign):
        raise InvalidSignature("user_data_sign is missing or not a hex SHA-256 digest")
    raw = _b64decode(user_data_b64)
    expected = _signature(raw, partner_token)
    if not hmac.compare_digest(expected.encode("ascii"), sign.lower().encode("ascii")):
        raise InvalidSignature("user_data_sign does not match user_data")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedUserData("user_data is not UTF-8 JSON") from exc
    if not isinstance(data, dict):
        raise MalformedUserData("user_data is not a JSON object")
    return data


def sign_user_data(user_data: dict[str, Any], partner_token: str) -> tuple[str, str]:
    """Encode and sign ``user_data`` the way the marketplace does: ``(user_data, sign_hex)``."""
    raw = json.dumps(user_data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(raw).decode("ascii"), _signature(raw, partner_token)


def verify_partner_token(given: str | None, expected: str) -> bool:
    """Whether ``given`` equals our partner token, compared in constant time.

    An empty ``expected`` (not configured) matches nothing.
    """
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _key_int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool):
        raise MalformedWebhook(f"{name} is not an id")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    raise MalformedWebhook(f"{name} is missing or not a positive id")


def _key_word(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if isinstance(value, str) and _WORD.match(value.lower()):
        return value.lower()
    raise MalformedWebhook(f"{name} is missing or not a plain word")


def _bucket(received_at: datetime, bucket: timedelta) -> str:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    seconds = int(bucket.total_seconds())
    if seconds <= 0:
        raise ValueError("bucket must be positive")
    epoch = int(received_at.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)
    return start.strftime("%Y%m%dT%H%M%SZ")


def _change_marker(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for name in CHANGE_TIME_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            text = value.strip()
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return f"changed:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
            if parsed.tzinfo is None:
                return f"changed:{parsed.isoformat()}"
            return f"changed:{parsed.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
    return None


def _body_digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def record_event_type(payload: dict[str, Any]) -> str:
    """The inbox event type of a record webhook: ``<resource>:<status>``, lower case.

    Raises ``MalformedWebhook`` unless ``payload`` is a record event (see
    :func:`webhook_dedupe_key`), so the type can never name a lifecycle event.
    """
    resource = _record_resource(payload)
    return f"{resource}:{_key_word(payload, 'status')}"


def _record_resource(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise MalformedWebhook("webhook body is not a JSON object")
    if "resource" not in payload:
        raise MalformedWebhook("a record webhook needs 'resource'")
    resource = _key_word(payload, "resource")
    if resource == LIFECYCLE_RESOURCE:
        raise MalformedWebhook("lifecycle events are not accepted as record webhooks")
    return resource


def webhook_dedupe_key(
    payload: dict[str, Any],
    received_at: datetime,
    *,
    source: WebhookSource | str,
    bucket: timedelta = LIFECYCLE_DEDUPE_BUCKET,
) -> str:
    """Name a webhook delivery so that redeliveries of one event share a name.

    The name starts with ``source`` (``record/`` or ``lifecycle/``): the two routes' names can
    never be equal, so a delivery to the record-webhook URL can never make a genuine lifecycle
    event look like a duplicate. Each source accepts only its own kind of body:

    - **Record events** (``source="record"``; ``{company_id, resource, resource_id, status,
      data}``; ``resource`` never ``lifecycle``):
      ``record/yclients:<resource>:<company>:<id>:<status>:changed:<UTC change time>`` when
      ``data`` carries the record's change time (``last_change_date`` ...). The change time
      identifies the change, so a redelivery days later is still recognised, and two different
      updates are two events even if their bodies happen to be equal.
      Without a change time: ``...:<status>:body:<digest of data>:<bucket>``, so only an
      identical body within the same time bucket counts as a redelivery.
    - **Lifecycle events** (``source="lifecycle"``; ``{salon_id, application_id, event,
      partner_token}``) have no change time and no id:
      ``lifecycle/yclients:lifecycle:<application>:<salon>:<event>:<bucket>``. Two identical
      ``freeze`` events in different buckets (a day apart, or ten minutes apart with the
      default bucket) are two events; redeliveries inside one bucket merge. A redelivery that
      straddles a bucket edge is handled twice, which is harmless because handling a lifecycle
      event is idempotent for the state it leads to (freezing a frozen salon does nothing);
      merging two genuine events would not be harmless, hence a short bucket.

    The partner token is never part of the key. ``received_at`` must be timezone-aware.
    Raises ``MalformedWebhook`` when the payload is not the source's kind of event, and
    ``ValueError`` for an unknown ``source``.
    """
    kind = WebhookSource(source)
    if not isinstance(payload, dict):
        raise MalformedWebhook("webhook body is not a JSON object")
    if kind is WebhookSource.RECORD:
        resource = _record_resource(payload)
        company_id = _key_int(payload, "company_id")
        resource_id = _key_int(payload, "resource_id")
        status = _key_word(payload, "status")
        data = payload.get("data")
        marker = _change_marker(data)
        if marker is None:
            marker = f"body:{_body_digest(data)}:{_bucket(received_at, bucket)}"
        return f"{kind}/yclients:{resource}:{company_id}:{resource_id}:{status}:{marker}"
    if "event" not in payload:
        raise MalformedWebhook("a lifecycle webhook needs 'event'")
    salon_id = _key_int(payload, "salon_id")
    event = _key_word(payload, "event")
    app = payload.get("application_id")
    application = _key_int(payload, "application_id") if app is not None else 0
    stamp = _bucket(received_at, bucket)
    return f"{kind}/yclients:lifecycle:{application}:{salon_id}:{event}:{stamp}"
