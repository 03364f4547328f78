"""Company tokens: the JWT in a salon's connect link.

A token says "the holder may connect WhatsApp for company N" for 24 hours. It is signed with
HS256 and ``JWT_SECRET`` (≥ 32 bytes); the payload is ``{"company_id", "iat", "exp", "ver"}``.
``ver`` is the company's ``credentials_version`` when the token was issued: the caller
(:func:`web._auth.resolve_token`) refuses a token whose version is no longer the company's
(the connect URL was re-issued, or the app uninstalled). A token without ``ver`` (issued
before the claim existed) counts as version 0.
Verification accepts HS256 only (``alg: none``, HS512, RS256 … are refused however the header
is dressed), requires all three claims, checks them as integers and checks the time against
an injectable ``now`` so tests need no wall clock.

Errors::

    InvalidToken(reason)     the token cannot be used; ``reason`` is one of REASONS and
                             ``code`` is ``token_expired`` or ``invalid_token`` (the
                             WebSocket error codes); the message never contains the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from storage import MAX_ID

__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "TOKEN_TTL",
    "CompanyClaims",
    "InvalidToken",
    "issue_company_token",
    "verify_company_claims",
    "verify_company_token",
]

ALGORITHM = "HS256"
TOKEN_TTL = timedelta(hours=24)
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 2048
# A token issued a little "in the future" is tolerated (clocks of several nodes drift).
CLOCK_SKEW = timedelta(seconds=60)

REASONS = frozenset(
    {
        "malformed",
        "bad_algorithm",
        "bad_signature",
        "missing_claim",
        "invalid_claim",
        "expired",
        "not_yet_valid",
    }
)


class InvalidToken(Exception):
    """A company token was refused; ``reason`` says why (one of ``REASONS``)."""

    def __init__(self, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.reason = reason
        super().__init__(f"invalid company token: {reason}")

    @property
    def code(self) -> str:
        """The client-facing error code: ``token_expired`` or ``invalid_token``."""
        return "token_expired" if self.reason == "expired" else "invalid_token"


@dataclass(frozen=True)
class CompanyClaims:
    """What a valid company token says: the company and the credentials version it carries."""

    company_id: int
    version: int


def _secret_bytes(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        # A programming/configuration error, not a client error: settings reject this at start.
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(tz=UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _check_company_id(company_id: object) -> int:
    if isinstance(company_id, bool) or not isinstance(company_id, int):
        raise TypeError("company_id must be an int")
    if not 1 <= company_id <= MAX_ID:
        raise ValueError("company_id must be a positive 32-bit integer")
    return company_id


def issue_company_token(
    company_id: int,
    secret: str | bytes,
    *,
    now: datetime | None = None,
    ttl: timedelta = TOKEN_TTL,
    version: int = 0,
) -> str:
    """A signed token for ``company_id`` at credentials ``version``, valid for ``ttl`` from
    ``now`` (default: UTC now).

    Raises ``ValueError``/``TypeError`` for a bad company id or version, a short secret or a
    non-positive ``ttl`` — those are bugs, not client errors.
    """
    company_id = _check_company_id(company_id)
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_ID:
        raise ValueError("version must be an integer in [0, 2**31 - 1]")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    issued = _now(now)
    payload = {
        "company_id": company_id,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "ver": version,
    }
    return jwt.encode(payload, _secret_bytes(secret), algorithm=ALGORITHM)


def _int_claim(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken("invalid_claim")
    return value


def verify_company_token(token: object, secret: str | bytes, *, now: datetime | None = None) -> int:
    """The ``company_id`` of a valid token, else :class:`InvalidToken` (see
    :func:`verify_company_claims`; the version is not compared here)."""
    return verify_company_claims(token, secret, now=now).company_id


def verify_company_claims(
    token: object, secret: str | bytes, *, now: datetime | None = None
) -> CompanyClaims:
    """The claims of a valid token, else :class:`InvalidToken`.

    Valid means: a compact JWS of at most 2048 characters, header ``alg`` HS256, a correct
    signature under ``secret``, integer ``company_id`` (1 … 2**31-1), ``iat`` and ``exp``,
    ``now < exp``, ``iat`` not more than a minute in the future, and ``ver`` (when present)
    an integer 0 … 2**31-1. Whether ``ver`` is still the company's is the caller's check.
    """
    key = _secret_bytes(secret)
    moment = _now(now)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("malformed")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={
                "require": ["exp", "iat", "company_id"],
                # Time claims are checked below against ``now`` (PyJWT only knows wall time).
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidAlgorithmError:
        raise InvalidToken("bad_algorithm") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("bad_signature") from None
    except jwt.MissingRequiredClaimError:
        raise InvalidToken("missing_claim") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("malformed") from None
    company_id = _int_claim(payload, "company_id")
    issued_at = _int_claim(payload, "iat")
    expires_at = _int_claim(payload, "exp")
    version = _int_claim(payload, "ver") if "ver" in payload else 0
    if not 1 <= company_id <= MAX_ID or not 0 <= version <= MAX_ID:
        raise InvalidToken("invalid_claim")
    timestamp = moment.timestamp()
    if timestamp >= expires_at:
        raise InvalidToken("expired")
    if issued_at > timestamp + CLOCK_SKEW.total_seconds():
        raise InvalidToken("not_yet_valid")
    return CompanyClaims(company_id, version)
