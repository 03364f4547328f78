"""API keys and webhook secrets: generated with ``secrets``, stored only as a SHA-256 hash.

The keys carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed);
comparison is constant-time. The plaintext is returned once, at creation or rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

API_KEY_PREFIX = "sk_"
WEBHOOK_SECRET_PREFIX = "whs_"  # noqa: S105 -- a prefix, not a secret
DISPLAY_CHARS = 8  # random characters kept after the prefix for display ("sk_Ab12Cd34")


@dataclass(frozen=True)
class IssuedSecret:
    """A freshly generated secret: the plaintext (shown once), its hash and display prefix."""

    plaintext: str = field(repr=False)
    digest: str = field(repr=False)
    display: str


def hash_secret(plaintext: str) -> str:
    """Hex SHA-256 of the secret, the only form we store."""
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def issue(kind_prefix: str) -> IssuedSecret:
    """Generate a new secret with ``kind_prefix`` (``sk_`` or ``whs_``)."""
    plaintext = kind_prefix + secrets.token_urlsafe(32)
    return IssuedSecret(
        plaintext=plaintext,
        digest=hash_secret(plaintext),
        display=plaintext[: len(kind_prefix) + DISPLAY_CHARS],
    )


def matches(stored_digest: str | None, candidate: str) -> bool:
    """Constant-time check of ``candidate`` against a stored digest (``None`` never matches)."""
    if stored_digest is None or not isinstance(candidate, str):
        return False
    return hmac.compare_digest(stored_digest, hash_secret(candidate))
