"""Marketplace helpers: the user_data signature, the partner token, webhook dedupe keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from actors.yclients import (
    InvalidSignature,
    MalformedUserData,
    MalformedWebhook,
    WebhookSource,
    decode_user_data,
    record_event_type,
    sign_user_data,
    verify_partner_token,
    webhook_dedupe_key,
)

TOKEN = "partner-token-for-signatures"
USER = {"id": 777, "name": "Анна Смирнова", "phone": "79161234567", "email": "anna@example.ru"}


def _marketplace_sign(raw: bytes, token: str = TOKEN) -> str:
    """Computed independently of the code under test."""
    return hmac.new(token.encode(), raw, hashlib.sha256).hexdigest()


def test_good_signature_returns_the_user() -> None:
    raw = json.dumps(USER, ensure_ascii=False).encode()
    encoded = base64.b64encode(raw).decode()
    assert decode_user_data(encoded, _marketplace_sign(raw), TOKEN) == USER


def test_signature_is_over_the_exact_decoded_bytes() -> None:
    raw = b'{ "user_id": 5,  "name": "X" }'  # odd spacing: no re-serialisation may happen
    encoded = base64.b64encode(raw).decode()
    assert decode_user_data(encoded, _marketplace_sign(raw).upper(), TOKEN) == {
        "user_id": 5,
        "name": "X",
    }


def test_urlsafe_unpadded_base64_is_accepted() -> None:
    raw = json.dumps({"id": 1, "name": "Ёлка???>>>"}).encode()
    encoded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_user_data(encoded, _marketplace_sign(raw), TOKEN)["id"] == 1


def test_sign_user_data_round_trips() -> None:
    encoded, sign = sign_user_data(USER, TOKEN)
    assert sign == _marketplace_sign(base64.b64decode(encoded))
    assert decode_user_data(encoded, sign, TOKEN) == USER


@pytest.mark.parametrize("sign", [None, "", "   ", "abc", "z" * 64, "0" * 63])
def test_missing_or_garbled_signature_is_invalid(sign: str | None) -> None:
    encoded, _ = sign_user_data(USER, TOKEN)
    with pytest.raises(InvalidSignature):
        decode_user_data(encoded, sign, TOKEN)


def test_signature_with_another_key_is_invalid() -> None:
    encoded, sign = sign_user_data(USER, "someone-elses-token")
    with pytest.raises(InvalidSignature, match="does not match"):
        decode_user_data(encoded, sign, TOKEN)


def test_tampered_user_data_is_invalid() -> None:
    _, sign = sign_user_data(USER, TOKEN)
    forged, _ = sign_user_data({**USER, "id": 1}, TOKEN)
    with pytest.raises(InvalidSignature):
        decode_user_data(forged, sign, TOKEN)


def test_unconfigured_partner_token_verifies_nothing() -> None:
    encoded, sign = sign_user_data(USER, "")
    with pytest.raises(InvalidSignature, match="no partner token"):
        decode_user_data(encoded, sign, "")


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2, 3]", b"\xff\xfe", b'"a string"'],
)
def test_signed_but_not_a_json_object_is_malformed(raw: bytes) -> None:
    encoded = base64.b64encode(raw).decode()
    with pytest.raises(MalformedUserData):
        decode_user_data(encoded, _marketplace_sign(raw), TOKEN)


@pytest.mark.parametrize("encoded", [None, "", "@@@not-base64@@@"])
def test_missing_or_undecodable_user_data_is_malformed(encoded: str | None) -> None:
    with pytest.raises(MalformedUserData):
        decode_user_data(encoded, "0" * 64, TOKEN)


def test_verify_partner_token() -> None:
    assert verify_partner_token(TOKEN, TOKEN)
    assert not verify_partner_token(TOKEN + "x", TOKEN)
    assert not verify_partner_token("", TOKEN)
    assert not verify_partner_token(None, TOKEN)
    assert not verify_partner_token("", "")
    assert verify_partner_token("токен", "токен")  # non-ASCII does not crash compare_digest


# -- dedupe keys -----------------------------------------------------------------------------

T0 = datetime(2025, 3, 10, 9, 0, 5, tzinfo=UTC)
RECORD = WebhookSource.RECORD
LIFECYCLE = WebhookSource.LIFECYCLE


def _freeze(token: str = TOKEN) -> dict[str, object]:
    return {"salon_id": 101001, "application_id": 9001, "event": "freeze", "partner_token": token}


def test_lifecycle_redelivery_within_minutes_is_the_same_event() -> None:
    first = webhook_dedupe_key(_freeze(), T0, source=LIFECYCLE)
    assert webhook_dedupe_key(_freeze(), T0 + timedelta(minutes=3), source=LIFECYCLE) == first
    assert first.startswith("lifecycle/yclients:lifecycle:9001:101001:freeze:")


def test_identical_freeze_a_day_apart_is_two_events() -> None:
    assert webhook_dedupe_key(_freeze(), T0, source=LIFECYCLE) != webhook_dedupe_key(
        _freeze(), T0 + timedelta(days=1), source=LIFECYCLE
    )
    # Any two deliveries at least one bucket apart are distinct.
    assert webhook_dedupe_key(_freeze(), T0, source=LIFECYCLE) != webhook_dedupe_key(
        _freeze(), T0 + timedelta(minutes=10), source=LIFECYCLE
    )


def test_lifecycle_key_ignores_the_token_and_the_received_zone() -> None:
    key = webhook_dedupe_key(_freeze(), T0, source=LIFECYCLE)
    assert TOKEN not in key
    assert webhook_dedupe_key(_freeze("other"), T0, source=LIFECYCLE) == key
    moscow = T0.astimezone(timezone(timedelta(hours=3)))
    assert webhook_dedupe_key(_freeze(), moscow, source=LIFECYCLE) == key


def test_lifecycle_events_differ_by_event_and_salon() -> None:
    uninstall = {**_freeze(), "event": "uninstall"}
    other_salon = {**_freeze(), "salon_id": 101002}
    keys = {
        webhook_dedupe_key(p, T0, source=LIFECYCLE) for p in (_freeze(), uninstall, other_salon)
    }
    assert len(keys) == 3


def _record_event(status: str, changed: str | None, **data: object) -> dict[str, object]:
    body: dict[str, object] = {"id": 50000001, "staff_id": 2001, **data}
    if changed is not None:
        body["last_change_date"] = changed
    return {
        "company_id": 101001,
        "resource": "record",
        "resource_id": 50000001,
        "status": status,
        "data": body,
    }


def test_record_event_with_change_time_dedupes_across_days() -> None:
    event = _record_event("update", "2025-03-10T12:00:00+0300")
    key = webhook_dedupe_key(event, T0, source=RECORD)
    assert webhook_dedupe_key(event, T0 + timedelta(days=2), source=RECORD) == key
    assert key == "record/yclients:record:101001:50000001:update:changed:20250310T090000.000000Z"
    # The same instant written in another offset is the same change.
    same = _record_event("update", "2025-03-10T09:00:00+00:00")
    assert webhook_dedupe_key(same, T0, source=RECORD) == key


def test_two_updates_with_equal_bodies_but_different_change_times_are_two_events() -> None:
    a = _record_event("update", "2025-03-10T12:00:00+03:00")
    b = _record_event("update", "2025-03-10T12:05:00+03:00")
    assert webhook_dedupe_key(a, T0, source=RECORD) != webhook_dedupe_key(b, T0, source=RECORD)


def test_status_is_part_of_the_key() -> None:
    changed = "2025-03-10T12:00:00+03:00"
    keys = {
        webhook_dedupe_key(_record_event(s, changed), T0, source=RECORD)
        for s in ("create", "update", "delete")
    }
    assert len(keys) == 3


def test_record_event_without_change_time_uses_body_and_bucket() -> None:
    event = _record_event("delete", None)
    key = webhook_dedupe_key(event, T0, source=RECORD)
    assert ":body:" in key
    assert webhook_dedupe_key(event, T0 + timedelta(minutes=2), source=RECORD) == key
    assert webhook_dedupe_key(event, T0 + timedelta(days=1), source=RECORD) != key
    changed_body = _record_event("delete", None, comment="другой")
    assert webhook_dedupe_key(changed_body, T0, source=RECORD) != key


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"salon_id": 1},
        {"salon_id": "x", "event": "freeze"},
        {"salon_id": 1, "event": "freeze; drop table"},
        {"resource": "record", "company_id": 1, "resource_id": 0, "status": "create"},
        {"resource": "record", "company_id": True, "resource_id": 5, "status": "create"},
        {"resource": "record", "company_id": 1, "resource_id": 5},
    ],
)
def test_malformed_webhooks_are_refused(payload: dict[str, object]) -> None:
    for source in WebhookSource:
        with pytest.raises(MalformedWebhook):
            webhook_dedupe_key(payload, T0, source=source)


def test_each_source_takes_only_its_own_kind_and_keys_never_meet() -> None:
    """A record-webhook delivery can neither be a lifecycle event nor share its key."""
    record = _record_event("update", "2025-03-10T12:00:00+03:00")
    with pytest.raises(MalformedWebhook):
        webhook_dedupe_key(_freeze(), T0, source=RECORD)
    with pytest.raises(MalformedWebhook):
        webhook_dedupe_key(record, T0, source=LIFECYCLE)
    disguised = {**record, "resource": "Lifecycle", "status": "freeze"}
    with pytest.raises(MalformedWebhook):
        webhook_dedupe_key(disguised, T0, source=RECORD)
    with pytest.raises(MalformedWebhook):
        record_event_type(disguised)
    # a body carrying both shapes is keyed by the route it came through, apart from the other
    both = {**record, **_freeze()}
    assert webhook_dedupe_key(both, T0, source=RECORD).startswith("record/")
    assert webhook_dedupe_key(both, T0, source=LIFECYCLE).startswith("lifecycle/")
    assert record_event_type({**record, "resource": "Record"}) == "record:update"
    with pytest.raises(ValueError, match="webhook"):
        webhook_dedupe_key(record, T0, source="webhook")


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        webhook_dedupe_key(_freeze(), datetime(2025, 3, 10, 9, 0), source=LIFECYCLE)
