"""API keys and webhook secrets: generated with ``secrets``, stored only as a SHA-256 hash.

The keys carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed);
comparison is constant-time. The plaintext is returned once, at creation or rotation.
A caller may also provide the plaintext (``provided``): the YClients integration derives keys
from the server secret and a per-company version (``actors/yclients/_keys.py``), so it can send
them again later without anything but the hash being stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from ._errors import ValidationError

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


def provided(kind_prefix: str, plaintext: str) -> IssuedSecret:
    """A secret the caller made (e.g. derived from the server secret), checked and hashed.

    It must start with ``kind_prefix``, carry at least 16 characters after it, be at most 255
    characters and hold no NUL or whitespace; otherwise :class:`ValidationError`.
    """
    field_name = "api_key" if kind_prefix == API_KEY_PREFIX else "webhook_secret"
    if not isinstance(plaintext, str) or not plaintext.startswith(kind_prefix):
        raise ValidationError(field_name, f"must be text starting with {kind_prefix!r}")
    if len(plaintext) < len(kind_prefix) + 16 or len(plaintext) > 255:
        raise ValidationError(field_name, "must be 16 to 255 characters after its prefix")
    if any(ch.isspace() or ch == "\x00" for ch in plaintext):
        raise ValidationError(field_name, "must not contain whitespace or NUL")
    return IssuedSecret(
        plaintext=plaintext,
        digest=hash_secret(plaintext),
        display=plaintext[: len(kind_prefix) + DISPLAY_CHARS],
    )


def issue_or_use(kind_prefix: str, plaintext: str | None) -> IssuedSecret:
    """``provided(kind_prefix, plaintext)`` when given, else a fresh random secret."""
    return issue(kind_prefix) if plaintext is None else provided(kind_prefix, plaintext)


def check_version(version: object) -> int:
    """A credential version: an integer in ``[0, 2**31 - 1]``."""
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**31:
        raise ValidationError("version", "must be an integer between 0 and 2**31 - 1")
    return version


def matches(stored_digest: str | None, candidate: str) -> bool:
    """Constant-time check of ``candidate`` against a stored digest (``None`` never matches)."""
    if stored_digest is None or not isinstance(candidate, str):
        return False
    return hmac.compare_digest(stored_digest, hash_secret(candidate))
