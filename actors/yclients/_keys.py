"""A company's API key and webhook secret, derived from the server secret: sendable, not stored.

The problem: DESIGN stores only hashes of API keys and webhook secrets, yet the activation
callback must send the company's ``api_key`` and its webhook URL (which carries the webhook
secret) to YClients — possibly hours after registration, from another process, after restarts.

The answer: the credentials are a deterministic function of the server secret (``JWT_SECRET``,
which already grants full access through company JWTs, so it adds no new secret to guard), the
salon id and a small per-company *version* counter that is stored in the clear::

    k_purpose  = HMAC-SHA256(key=JWT_SECRET, msg="aiadmin/yclients/v1/" + purpose)  # HKDF-style
    api_key    = "sk_"  + b64url(HMAC-SHA256(k_api-key,        f"{salon_id}:{version}"))
    webhook    = "whs_" + b64url(HMAC-SHA256(k_webhook-secret, f"{salon_id}:{version}"))

(b64url without padding: 43 characters, 256 bits.) Storage keeps only SHA-256 hashes plus the
versions (``companies.api_key_version`` / ``webhook_secret_version``). Whoever delivers the
callback re-derives both from the stored versions (:func:`current_credentials`) and checks them
against the stored hashes before sending.

Rotation and re-issue: a new credential is the derivation at ``version + 1``, written together
with its version in one storage call, so a crash never leaves a hash that its version does not
derive. Two processes re-issuing at once derive the same value and converge. When the stored
hash does not match the derivation (credentials revoked by an uninstall and the salon came
back; a key rotated to a random one; ``JWT_SECRET`` changed) :func:`current_credentials`
re-issues at the next version — the callback always carries a key that works.

Consequences worth knowing: changing ``JWT_SECRET`` changes every derivable key (the next
activation re-issues; keys handed out earlier stop working once re-issued); the versions leak
nothing without the secret. Secrets never appear in logs or reprs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass, field

from storage import API_KEY_PREFIX, WEBHOOK_SECRET_PREFIX, Company, CompanyRepository

log = logging.getLogger("actors.yclients")

DERIVATION_LABEL = "aiadmin/yclients/v1/"
#: The version registration starts at (0 marks a random, non-derivable credential).
FIRST_VERSION = 1


def _purpose_key(server_secret: str, purpose: str) -> bytes:
    if not server_secret:
        raise ValueError("a server secret is required to derive credentials")
    label = (DERIVATION_LABEL + purpose).encode("ascii")
    return hmac.new(server_secret.encode("utf-8"), label, hashlib.sha256).digest()


def _derive(server_secret: str, purpose: str, prefix: str, salon_id: int, version: int) -> str:
    if salon_id <= 0 or version < 0:
        raise ValueError("salon_id must be positive and version non-negative")
    mac = hmac.new(
        _purpose_key(server_secret, purpose), f"{salon_id}:{version}".encode(), hashlib.sha256
    ).digest()
    return prefix + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def derive_api_key(server_secret: str, salon_id: int, version: int) -> str:
    """The ``sk_`` API key of a salon at ``version`` (deterministic)."""
    return _derive(server_secret, "api-key", API_KEY_PREFIX, salon_id, version)


def derive_webhook_secret(server_secret: str, salon_id: int, version: int) -> str:
    """The ``whs_`` webhook secret of a salon at ``version`` (deterministic)."""
    return _derive(server_secret, "webhook-secret", WEBHOOK_SECRET_PREFIX, salon_id, version)


def webhook_url(public_base_url: str, company_id: int, secret: str) -> str:
    """Our per-company record-webhook URL as registered with YClients."""
    return f"{public_base_url.rstrip('/')}/marketplace/webhook/{company_id}/{secret}"


@dataclass(frozen=True)
class CompanyCredentials:
    """A company's current API key and webhook secret, as derived (never printed)."""

    company_id: int
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_key_version: int
    webhook_secret_version: int
    reissued: tuple[str, ...] = ()  # which ones had to be re-issued ("api_key", "webhook_secret")


async def current_credentials(
    companies: CompanyRepository, company: Company, server_secret: str
) -> CompanyCredentials:
    """Re-derive the company's credentials from their stored versions; re-issue what no longer
    matches its stored hash (revoked, rotated at random, or another server secret).

    Storage errors propagate. Re-issuing writes the new hash and version in one call.
    """
    salon = company.yclients_id
    key_version = company.api_key_version
    api_key = derive_api_key(server_secret, salon, key_version)
    reissued: list[str] = []
    if key_version < FIRST_VERSION or not await companies.verify_api_key(company.id, api_key):
        key_version = max(key_version, FIRST_VERSION - 1) + 1
        api_key = derive_api_key(server_secret, salon, key_version)
        await companies.rotate_api_key(company.id, api_key, version=key_version)
        reissued.append("api_key")
    secret_version = company.webhook_secret_version
    secret = derive_webhook_secret(server_secret, salon, secret_version)
    if secret_version < FIRST_VERSION or not await companies.verify_webhook_secret(
        company.id, secret
    ):
        secret_version = max(secret_version, FIRST_VERSION - 1) + 1
        secret = derive_webhook_secret(server_secret, salon, secret_version)
        await companies.rotate_webhook_secret(company.id, secret, version=secret_version)
        reissued.append("webhook_secret")
    if reissued:
        log.info("company %s: re-issued %s", company.id, ", ".join(reissued))
    return CompanyCredentials(
        company.id, api_key, secret, key_version, secret_version, tuple(reissued)
    )
