"""Key names shared by the Redis adapter and its in-memory twin (the seeds' names)."""

from __future__ import annotations

from . import _validate as v

TOKEN_TTL = 24 * 3600.0
QR_TTL = 20.0
SWEEP_EVERY = 300.0  # in-memory twins drop expired entries at most this often


def token_key(prefix: str, token: str) -> str:
    return f"{prefix}marketplace:token:{token}"


def company_token_key(prefix: str, company_id: int) -> str:
    return f"{prefix}marketplace:company:{company_id}:token"


def qr_key(prefix: str, company_id: int) -> str:
    return f"{prefix}marketplace:qr:{company_id}"


def rate_key(prefix: str, key: str) -> str:
    return f"{prefix}ratelimit:{key}"


def owner_key(prefix: str, company_id: int) -> str:
    return f"{prefix}owner:{company_id}"


def channel_name(prefix: str, channel: str) -> str:
    return f"{prefix}pubsub:{channel}"


def check_token(token: object) -> str | None:
    """A token as given by a client: text without NUL, ≤ 255 chars; ``None`` if malformed."""
    if not isinstance(token, str) or not token or len(token) > 255 or "\x00" in token:
        return None
    return token


def check_rate_args(key: str, limit: int, window: float) -> tuple[str, int, float]:
    return (
        v.text("key", key, 512),
        v.positive_int("limit", limit, high=10**9),
        v.positive_seconds("window", window),
    )
