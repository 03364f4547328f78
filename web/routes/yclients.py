"""The two URLs YClients itself calls: the install redirect and the lifecycle webhook.

``GET /marketplace/yclients/redirect?salon_id=…`` (or ``salon_ids[]=…``), optionally with
``user_data`` + ``user_data_sign``: the salon admin's browser arriving from the marketplace.

- ``user_data`` present → its signature must check out (constant time) or nothing happens:
  403 (an HTML page for browsers, JSON otherwise). ``user_data_sign`` without ``user_data`` is
  refused the same way.
- A new salon is registered with derived credentials (``actors/yclients/_keys.py``); its title,
  address, phone and time zone come from ``GET company/{id}`` when YClients answers within
  ``DETAILS_TIMEOUT`` (otherwise we register what we have; the catalog sync fills it in later).
- A frozen or uninstalled salon coming back gets ``Reinstall()`` (frozen with working WhatsApp
  credentials → active again without a new scan) — when the redirect is signed, or when YClients
  confirms the installation is no longer frozen/uninstalled. An unsigned redirect that YClients
  does not confirm changes nothing.
- A salon that is linked already (``active``, ``reconnecting``) is never changed by an unsigned
  redirect: no new connect token (which would revoke the admin's), no new key. The page says it
  is connected and links back to YClients.
- Otherwise: a connect token is issued and the browser is sent (302) to the connect page.

``POST /marketplace/yclients/webhook``: lifecycle events (see ``actors/yclients/_lifecycle.py``):
401 bad partner token, 403 another application, 404 unknown salon, 400 malformed; otherwise the
event is stored in the webhook inbox (deduplicated), answered 200, and the lifecycle worker is
woken to handle it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import trio
from quart import Blueprint, jsonify, redirect, render_template, request

from actors.company import messages as m
from actors.yclients import (
    FIRST_KEY_VERSION,
    LifecycleForbidden,
    LifecycleUnauthorized,
    MalformedWebhook,
    MarketplaceDataError,
    SalonDetails,
    YClientsClient,
    YClientsError,
    check_lifecycle,
    decode_user_data,
    derive_api_key,
    derive_webhook_secret,
    webhook_dedupe_key,
)
from storage import Company, CompanyStatus, PutResult
from storage import Conflict as StorageConflict

from .._context import state
from .._errors import ApiError, BadRequest, Forbidden, NotFound, Unauthorized
from .._urls import connect_url, yclients_return_url
from .._validation import parse_id, read_json_object

log = logging.getLogger("aiadmin.yclients")

blueprint = Blueprint("yclients", __name__, url_prefix="/marketplace/yclients")

DETAILS_TIMEOUT = 5.0
MAX_SALONS_PER_REDIRECT = 10
LINKED = frozenset({CompanyStatus.ACTIVE, CompanyStatus.RECONNECTING})
RETURNING = frozenset({CompanyStatus.FROZEN, CompanyStatus.UNINSTALLED})


def _client() -> YClientsClient | None:
    """The node's YClients client (``None`` when YClients is not configured)."""
    return state().services.yclients


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


async def _refuse(status: int, code: str, title: str, message: str, salon_id: int | None) -> Any:
    """An error for the browser (the error page) or for a program (JSON)."""
    if _wants_html():
        page = await render_template(
            "error.html",
            reason="invalid",
            error_title=title,
            error_message=message,
            yclients_return_url=yclients_return_url(salon_id),
        )
        return page, status
    raise ApiError(status, code, message)


def _salon_ids() -> list[int]:
    raw = request.args.getlist("salon_id") + request.args.getlist("salon_ids[]")
    raw += request.args.getlist("salon_ids")
    if not raw:
        raise BadRequest("salon_id is required", code="missing_field", field="salon_id")
    ids = list(dict.fromkeys(parse_id(value, "salon_id") for value in raw))
    if len(ids) > MAX_SALONS_PER_REDIRECT:
        raise BadRequest("Too many salons in one redirect", code="invalid_field", field="salon_id")
    return ids


async def _details(salon_id: int) -> SalonDetails | None:
    client = _client()
    if client is None:
        return None
    with trio.move_on_after(DETAILS_TIMEOUT):
        try:
            return await client.get_company(salon_id)
        except YClientsError as exc:
            log.info("salon %s: details not fetched (%s); registering without", salon_id, exc)
    return None


async def _register(salon_id: int, admin: dict[str, Any] | None) -> tuple[Company, bool]:
    """The salon's company, registered now if new; ``True`` when this call created it."""
    s = state()
    details = await _details(salon_id)
    secret = s.settings.jwt_secret
    raw: dict[str, Any] = {"source": "yclients_redirect"}
    if admin is not None:
        raw["admin"] = {k: admin[k] for k in ("id", "user_id", "name") if k in admin}
    try:
        created = await s.storage.companies.create(
            salon_id,
            title=details.title if details else None,
            phone=_short(details.phone if details else None, 20),
            address=details.address if details else None,
            timezone=details.timezone if details and details.timezone else None,
            raw_data=raw,
            api_key=derive_api_key(secret, salon_id, FIRST_KEY_VERSION),
            webhook_secret=derive_webhook_secret(secret, salon_id, FIRST_KEY_VERSION),
            key_version=FIRST_KEY_VERSION,
        )
    except StorageConflict:
        existing = await s.storage.companies.get_by_salon(salon_id)
        if existing is None:
            raise
        return existing, False
    company = created.company
    await s.storage.audit.append(
        company.id,
        "company_registered",
        {"salon_id": salon_id, "via": "yclients_redirect", "signed": admin is not None},
    )
    return company, True


def _short(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else None


async def _yclients_confirms_install(salon_id: int) -> bool:
    """Whether YClients shows our app installed and not frozen in this salon."""
    client = _client()
    app_id = state().settings.yclients_application_id
    if client is None or app_id is None:
        return False
    with trio.move_on_after(DETAILS_TIMEOUT):
        try:
            installation = await client.get_installation(salon_id, app_id)
        except YClientsError:
            return False
        status = installation.get("connection_status")
        return isinstance(status, dict) and status.get("status") in ("pending", "active")
    return False


@blueprint.get("/redirect")
async def install_redirect() -> Any:
    s = state()
    salon_ids = _salon_ids()
    first = salon_ids[0]
    user_data = request.args.get("user_data")
    sign = request.args.get("user_data_sign")
    admin: dict[str, Any] | None = None
    if user_data or sign:
        try:
            admin = decode_user_data(user_data, sign, s.settings.yclients_api_key or "")
        except MarketplaceDataError:
            log.warning("install redirect for salon %s: user_data refused", first)
            return await _refuse(
                403,
                "invalid_signature",
                "Подпись не прошла проверку",
                "Данные установки не подтверждены YClients. Откройте AI Admin из маркетплейса "
                "YClients ещё раз.",
                first,
            )
    signed = admin is not None
    # The signature covers the admin's data only, not the salon: it proves nothing about an
    # existing salon. So a redirect may act on a salon that exists already (re-activate it,
    # hand out its connect link) only when YClients itself confirms our app is installed
    # there; otherwise anyone who knows a salon id could take over its connect link.
    target: Company | None = None
    target_created = False
    confirmed: dict[int, bool] = {}
    for salon_id in salon_ids:
        company = await s.storage.companies.get_by_salon(salon_id)
        created = False
        if company is None:
            company, created = await _register(salon_id, admin)
        elif company.status in RETURNING:
            confirmed[salon_id] = await _yclients_confirms_install(salon_id)
            if confirmed[salon_id]:
                await s.node.company(company.id).ask(m.Reinstall())
                await s.storage.audit.append(company.id, "reinstall_redirect", {"signed": signed})
                company = await s.storage.companies.get(company.id) or company
        if target is None:
            target, target_created = company, created
    assert target is not None
    if target.status is CompanyStatus.UNINSTALLED:
        return await _refuse(
            409,
            "uninstalled",
            "Приложение удалено",
            "YClients ещё не подтвердил повторную установку AI Admin. Установите приложение "
            "в маркетплейсе YClients заново.",
            target.yclients_id,
        )
    if target.status in LINKED and not confirmed.get(target.yclients_id):
        # (A salon this very redirect re-activated, confirmed by YClients, goes on to its
        # connect page, which shows it connected.)
        return await _refuse(
            409,
            "already_connected",
            "WhatsApp уже подключён",
            "AI Admin уже работает в этом салоне. Управлять подключением можно из YClients.",
            target.yclients_id,
        )
    if not target_created:
        salon = target.yclients_id
        if salon not in confirmed:
            confirmed[salon] = await _yclients_confirms_install(salon)
        if not confirmed[salon]:
            log.warning("install redirect for existing salon %s not confirmed by YClients", salon)
            return await _refuse(
                403,
                "not_confirmed",
                "Откройте AI Admin из YClients",
                "YClients не подтвердил установку AI Admin в этом салоне. Откройте приложение "
                "из маркетплейса YClients или попросите ссылку у поддержки.",
                salon,
            )
    token = await s.storage.tokens.issue(target.id)
    await s.storage.audit.append(target.id, "connect_url_issued", {"via": "yclients_redirect"})
    return redirect(connect_url(token, target), 302)


@blueprint.post("/webhook")
async def lifecycle_webhook() -> Any:
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    try:
        event = check_lifecycle(
            body,
            partner_token=s.settings.yclients_api_key,
            application_id=s.settings.yclients_application_id,
        )
    except LifecycleUnauthorized:
        s.metrics.webhooks.labels("lifecycle", "unauthorized").inc()
        raise Unauthorized("The partner token is not valid", code="invalid_partner_token") from None
    except LifecycleForbidden:
        s.metrics.webhooks.labels("lifecycle", "forbidden").inc()
        raise Forbidden(
            "The webhook is for another application", code="wrong_application"
        ) from None
    except MalformedWebhook as exc:
        raise BadRequest(str(exc), code="invalid_body") from None
    company = await s.storage.companies.get_by_salon(event.salon_id)
    if company is None:
        raise NotFound("No company for this salon", code="company_not_found")
    stored = event.stored_payload()
    key = webhook_dedupe_key(stored, datetime.now(UTC))
    result = await s.storage.inbox.put(company.id, key, event.event_type, stored)
    s.metrics.webhooks.labels("lifecycle", result.value).inc()
    worker = s.services.lifecycle
    if worker is not None:
        worker.wake()
    return jsonify(
        {
            "success": True,
            "received": True,
            "event": event.event,
            "duplicate": result is PutResult.DUPLICATE,
        }
    )
