"""Who is calling: the partner/admin key, a company's own key, its JWT, or its connect token.

* ``X-API-Key: <ADMIN_API_KEY>`` — the partner/admin: every company, operator endpoints.
* ``X-API-Key: sk_…`` — one company's own key: that company only.
* ``Authorization: Bearer <JWT>`` — a company JWT (HS256, ``company_id``): that company only.
* a connect token (the connect page's ``token``) — that company only.

A company credential never reaches another company: :func:`require_company` refuses it with
403 before any company data is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config import Settings
from storage import Storage

from ._errors import Forbidden, Unauthorized
from ._jwt import InvalidToken, verify_company_claims
from ._security import HeaderSource, constant_time_equals


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the admin (``company_id is None``) or one company."""

    kind: str  # "admin" | "company_key" | "jwt" | "connect_token"
    company_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


# Every token we issue is URL-safe base64 (connect tokens) or three such parts joined by dots
# (JWTs): anything else (a lone surrogate, a space, a quote) is refused before it reaches
# Redis, PostgreSQL or the JWT library, none of which may see text they cannot encode.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){0,2}")


UNINSTALLED = "uninstalled"


async def resolve_token(token: str, settings: Settings, storage: Storage) -> int | None:
    """The company a JWT or connect token speaks for, or ``None`` when it is not valid.

    A JWT must also carry the company's current ``credentials_version`` and the company must
    not be uninstalled; a connect token is valid while it is the company's current one.
    """
    if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
        return None
    if token.count(".") == 2:
        try:
            claims = verify_company_claims(token, settings.jwt_secret)
        except InvalidToken:
            return None
        # Revocation: a JWT issued before the connect URL was re-issued, or before uninstall,
        # carries an older credentials version than the company's.
        company = await storage.companies.get(claims.company_id)
        if (
            company is None
            or company.integration_status == UNINSTALLED
            or company.credentials_version != claims.version
        ):
            return None
        return claims.company_id
    if not 16 <= len(token) <= 256:
        return None
    return await storage.tokens.resolve(token)


async def authenticate(
    headers: HeaderSource, settings: Settings, storage: Storage, *, token: str | None = None
) -> Principal | None:
    """The caller named by the request's credentials, ``None`` when it brought none.

    Raises :class:`Unauthorized` when credentials are present but wrong.
    """
    api_key = headers.get("X-API-Key")
    if api_key:
        if constant_time_equals(api_key, settings.admin_api_key):
            return Principal("admin")
        if api_key.startswith("sk_"):
            company = await storage.companies.find_by_api_key(api_key)
            if company is not None:
                return Principal("company_key", company.id)
        raise Unauthorized("The API key is not valid")
    authorization = headers.get("Authorization") or ""
    if authorization.lower().startswith("bearer "):
        bearer = authorization[7:].strip()
        company_id = await resolve_token(bearer, settings, storage)
        if company_id is None:
            raise Unauthorized("The bearer token is not valid or has expired")
        return Principal("jwt" if bearer.count(".") == 2 else "connect_token", company_id)
    if token:
        company_id = await resolve_token(token, settings, storage)
        if company_id is None:
            raise Unauthorized("The token is not valid or has expired")
        return Principal("connect_token", company_id)
    return None


def require_admin(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("This endpoint needs the partner/admin key in X-API-Key")
    if not principal.is_admin:
        raise Forbidden("This endpoint is for the partner/admin key only")
    return principal


def require_company(principal: Principal | None, company_id: int) -> Principal:
    """Allow the admin, or a credential of exactly this company."""
    if principal is None:
        raise Unauthorized("Authentication required: X-API-Key or Authorization: Bearer")
    if principal.is_admin or principal.company_id == company_id:
        return principal
    raise Forbidden("These credentials belong to another company")
