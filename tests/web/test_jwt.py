"""Company tokens: issue/verify round trip and the usual JWT attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from web._jwt import (
    TOKEN_TTL,
    CompanyClaims,
    InvalidToken,
    issue_company_token,
    verify_company_claims,
    verify_company_token,
)

SECRET = "s" * 64
OTHER_SECRET = "o" * 64
NOW = datetime(2025, 1, 16, 10, 0, tzinfo=UTC)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "company_id": 7,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + TOKEN_TTL).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def reason_of(token: object, *, now: datetime = NOW, secret: str = SECRET) -> str:
    with pytest.raises(InvalidToken) as info:
        verify_company_token(token, secret, now=now)
    if isinstance(token, str) and len(token) > 8:
        assert token not in str(info.value)
    return info.value.reason


def test_round_trip() -> None:
    token = issue_company_token(7, SECRET, now=NOW)
    assert verify_company_token(token, SECRET, now=NOW) == 7
    assert verify_company_token(token, SECRET, now=NOW + TOKEN_TTL - timedelta(seconds=1)) == 7


def test_payload_and_header() -> None:
    token = issue_company_token(7, SECRET, now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == payload(ver=0)  # the credentials version it was issued at


def test_the_credentials_version_travels_in_the_token() -> None:
    token = issue_company_token(7, SECRET, now=NOW, version=5)
    assert verify_company_claims(token, SECRET, now=NOW) == CompanyClaims(7, 5)
    # issued before the claim existed: version 0
    old = jwt.encode(payload(), SECRET, algorithm="HS256")
    assert verify_company_claims(old, SECRET, now=NOW) == CompanyClaims(7, 0)


@pytest.mark.parametrize("ver", ["1", 1.0, True, -1, 2**31, None, [1]])
def test_a_malformed_version_is_refused(ver: object) -> None:
    claims = {**payload(), "ver": ver}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert reason_of(token) == "invalid_claim"


def test_default_now_is_wall_clock() -> None:
    token = issue_company_token(9, SECRET)
    assert verify_company_token(token, SECRET) == 9


def test_expires_after_24_hours() -> None:
    token = issue_company_token(7, SECRET, now=NOW)
    assert reason_of(token, now=NOW + TOKEN_TTL) == "expired"
    with pytest.raises(InvalidToken) as info:
        verify_company_token(token, SECRET, now=NOW + timedelta(days=2))
    assert info.value.code == "token_expired"


def test_custom_ttl() -> None:
    token = issue_company_token(7, SECRET, now=NOW, ttl=timedelta(minutes=5))
    assert verify_company_token(token, SECRET, now=NOW + timedelta(minutes=4)) == 7
    assert reason_of(token, now=NOW + timedelta(minutes=5)) == "expired"


def test_alg_none_is_refused() -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload())}."
    assert reason_of(token) == "bad_algorithm"
    token_upper = f"{b64({'alg': 'None', 'typ': 'JWT'})}.{b64(payload())}."
    assert reason_of(token_upper) == "bad_algorithm"


def test_hs512_with_the_right_key_is_refused() -> None:
    token = jwt.encode(payload(), SECRET, algorithm="HS512")
    assert reason_of(token) == "bad_algorithm"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "HS384", "hs256", ""])
def test_other_algorithms_are_refused(alg: str) -> None:
    # Signed "correctly" for HS256 with our key, but labelled with another algorithm: the
    # label must not be believed (algorithm confusion).
    signing_input = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload())}"
    digest = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert reason_of(f"{signing_input}.{b64(digest)}") == "bad_algorithm"


def test_hand_made_hs256_token_is_accepted() -> None:
    # The control for the test above: same construction, the right label.
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload())}"
    digest = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert verify_company_token(f"{signing_input}.{b64(digest)}", SECRET, now=NOW) == 7


def test_wrong_key_is_refused() -> None:
    token = issue_company_token(7, OTHER_SECRET, now=NOW)
    assert reason_of(token) == "bad_signature"


def test_tampered_payload_is_refused() -> None:
    header, _, signature = issue_company_token(7, SECRET, now=NOW).split(".")
    forged = f"{header}.{b64(payload(company_id=8))}.{signature}"
    assert reason_of(forged) == "bad_signature"


def test_tampered_signature_is_refused() -> None:
    token = issue_company_token(7, SECRET, now=NOW)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert reason_of(flipped) in ("bad_signature", "malformed")


@pytest.mark.parametrize("missing", ["exp", "iat", "company_id"])
def test_missing_claim_is_refused(missing: str) -> None:
    claims = payload()
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken) as info:
        verify_company_token(token, SECRET, now=NOW)
    assert info.value.reason == "missing_claim"
    assert info.value.code == "invalid_token"


@pytest.mark.parametrize("company_id", ["7", 7.0, True, [7], 0, -7, 2**31, {"id": 7}])
def test_non_int_or_out_of_range_company_id_is_refused(company_id: object) -> None:
    token = jwt.encode(payload(company_id=company_id), SECRET, algorithm="HS256")
    assert reason_of(token) == "invalid_claim"


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_non_int_time_claims_are_refused(claim: str) -> None:
    token = jwt.encode(payload(**{claim: "soon"}), SECRET, algorithm="HS256")
    assert reason_of(token) == "invalid_claim"


def test_token_issued_in_the_future_is_refused() -> None:
    token = issue_company_token(7, SECRET, now=NOW + timedelta(hours=1))
    assert reason_of(token) == "not_yet_valid"
    # A little clock skew between nodes is fine.
    token = issue_company_token(7, SECRET, now=NOW + timedelta(seconds=30))
    assert verify_company_token(token, SECRET, now=NOW) == 7


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", "a.b", "x" * 3000, None, 12, b"bytes", "...."]
)
def test_garbage_is_malformed(token: object) -> None:
    assert reason_of(token) == "malformed"


def test_token_never_in_message_or_repr() -> None:
    token = issue_company_token(7, OTHER_SECRET, now=NOW)
    with pytest.raises(InvalidToken) as info:
        verify_company_token(token, SECRET, now=NOW)
    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_short_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        issue_company_token(7, "short", now=NOW)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_company_token("a.b.c", "short", now=NOW)


@pytest.mark.parametrize("company_id", [0, -1, 2**31, True, "7"])
def test_issue_refuses_bad_company_id(company_id: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        issue_company_token(company_id, SECRET, now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        issue_company_token(7, SECRET, now=datetime(2025, 1, 1))
