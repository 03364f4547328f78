"""Key names shared by the Redis adapter and its in-memory twin (the seeds' names)."""

from __future__ import annotations

import time

from . import _validate as v
from ._errors import ValidationError
from ._models import QrCode

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


def member_key_prefix(prefix: str) -> str:
    """Prefix of each process's membership key (``member:{node}`` → its advertised URL)."""
    return f"{prefix}member:"


def members_key(prefix: str) -> str:
    """The set of node ids that heartbeat (or did, until their key expired)."""
    return f"{prefix}members"


def draining_key(prefix: str) -> str:
    """The set of members handing their salons over before they leave (a graceful stop)."""
    return f"{prefix}members:draining"


def check_node(node: object) -> str:
    """A node id for membership and claims: 1–255 characters of text."""
    node = v.text("node", node, 255)
    if not node:
        raise ValidationError("node", "must not be empty")
    return node


def channel_name(prefix: str, channel: str) -> str:
    return f"{prefix}pubsub:{channel}"


def check_token(token: object) -> str | None:
    """A token as given by a client: text without NUL, ≤ 255 chars, encodable as UTF-8;
    ``None`` if malformed."""
    if not isinstance(token, str) or not token or len(token) > 255 or "\x00" in token:
        return None
    if not v.encodable(token):
        return None
    return token


def new_qr_code(qr: str, ttl: float, generated_at: float | None) -> QrCode:
    """A validated :class:`QrCode` to cache for ``ttl`` seconds (its lifetime)."""
    return QrCode(
        qr=v.text("qr", qr, 4096),
        generated_at=time.time() if generated_at is None else float(generated_at),
        lifetime=v.positive_seconds("ttl", ttl),
    )


def check_rate_args(key: str, limit: int, window: float) -> tuple[str, int, float]:
    return (
        v.text("key", key, 512),
        v.positive_int("limit", limit, high=10**9),
        v.positive_seconds("window", window),
    )
