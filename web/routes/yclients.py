"""The two URLs YClients itself calls: the install redirect and the lifecycle webhook.

``GET /marketplace/yclients/redirect?salon_id=…`` (or ``salon_ids[]=…``), optionally with
``user_data`` + ``user_data_sign``: the salon admin's browser arriving from the marketplace.
Anyone can forge this request: it carries no credential except the optional signature, and
the signature covers the admin's data, not the salon (YClients' ``user_data`` has no salon id).

- Rate limit: each salon id of a redirect counts against ``redirect_rate_limit`` per client IP
  (every one may cost calls to YClients under our shared partner limit); over it, 429.
- ``user_data`` present → its signature must check out (constant time) or nothing happens:
  403 (an HTML page for browsers, JSON otherwise). ``user_data_sign`` without ``user_data`` is
  refused the same way.
- Every salon is looked up in YClients (``GET …/salon/{id}/application/{app}``: is our app
  installed there?). A salon YClients does not know (404) is never registered.
- A new salon is registered when the redirect is signed, or when YClients confirms our app is
  installed there (``pending`` / ``active``); its title, address, phone and time zone come from
  ``GET company/{id}`` within ``DETAILS_TIMEOUT``. An unsigned redirect that YClients does not
  confirm registers nothing (403; 503 when YClients cannot be asked).
- A frozen or uninstalled salon coming back gets ``Reinstall()`` (frozen with working WhatsApp
  credentials → active again without a new scan) only when YClients confirms the installation
  is no longer frozen/uninstalled: the state then follows YClients, whoever asked.
- A salon that exists already never gets a connect token from an unsigned redirect — not a new
  one (which would revoke the admin's and let the caller link its own phone), not the current
  one. The page says to open AI Admin from YClients or use the link already given (403
  ``open_from_yclients``, whatever the salon's state, so the answer tells nothing about it).
  A signed redirect gets one only when YClients confirms the installation too.
- A salon this redirect registered: a connect token is issued and the browser is sent (302) to
  the connect page.

``POST /marketplace/yclients/webhook``: lifecycle events (see ``actors/yclients/_lifecycle.py``):
401 bad partner token, 403 another application, 404 unknown salon, 400 malformed; otherwise the
event is stored in the webhook inbox (deduplicated under the ``lifecycle`` namespace, apart
from record webhooks), answered 200, and the lifecycle worker is woken to handle it.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trio
from quart import Blueprint, g, jsonify, redirect, render_template, request

from actors import BusinessEvent, log_event
from actors.company import messages as m
from actors.yclients import (
    FIRST_KEY_VERSION,
    LifecycleForbidden,
    LifecycleUnauthorized,
    MalformedWebhook,
    MarketplaceDataError,
    SalonDetails,
    WebhookSource,
    YClientsClient,
    YClientsError,
    YClientsRejected,
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
from .._forward import company_ref
from .._urls import connect_url, yclients_return_url
from .._validation import parse_id, read_json_object

log = logging.getLogger("aiadmin.yclients")

blueprint = Blueprint("yclients", __name__, url_prefix="/marketplace/yclients")

#: Each YClients call of the redirect (installation, then details) is bounded so both fit in
#: the request timeout (``AIADMIN_REQUEST_TIMEOUT``, 5 s by default) with room to answer.
DETAILS_TIMEOUT = 2.0
MAX_SALONS_PER_REDIRECT = 10
LINKED = frozenset({CompanyStatus.ACTIVE, CompanyStatus.RECONNECTING})
RETURNING = frozenset({CompanyStatus.FROZEN, CompanyStatus.UNINSTALLED})


def _client() -> YClientsClient | None:
    """The node's YClients client (``None`` when YClients is not configured)."""
    return state().services.yclients


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


async def _refuse(
    status: int,
    code: str,
    title: str,
    message: str,
    salon_id: int | None,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    """An error for the browser (the Russian error page, escaped) or for a program (JSON)."""
    if _wants_html():
        page = await render_template(
            "error.html",
            reason="invalid",
            error_title=title,
            error_message=message,
            yclients_return_url=yclients_return_url(salon_id),
        )
        return page, status, headers or {}
    raise ApiError(status, code, message, headers=headers)


def _salon_ids() -> list[int]:
    raw = request.args.getlist("salon_id") + request.args.getlist("salon_ids[]")
    raw += request.args.getlist("salon_ids")
    if not raw:
        raise BadRequest("salon_id is required", code="missing_field", field="salon_id")
    ids = list(dict.fromkeys(parse_id(value, "salon_id") for value in raw))
    if len(ids) > MAX_SALONS_PER_REDIRECT:
        raise BadRequest("Too many salons in one redirect", code="invalid_field", field="salon_id")
    return ids


class Install(enum.Enum):
    """What YClients says about our app in a salon."""

    CONFIRMED = "confirmed"  # installed: pending or active
    NOT_CONFIRMED = "not_confirmed"  # known, but frozen or refused for another reason
    UNKNOWN = "unknown"  # 404: no such salon, or our app is not installed there
    UNAVAILABLE = "unavailable"  # YClients unreachable, slow or refusing us
    NOT_CONFIGURED = "not_configured"  # this node has no YClients partner token or app id


async def _install_status(salon_id: int) -> Install:
    """Ask YClients whether our app is installed in ``salon_id`` (bounded by the timeout)."""
    client = _client()
    app_id = state().settings.yclients_application_id
    if client is None or app_id is None:
        return Install.NOT_CONFIGURED
    with trio.move_on_after(DETAILS_TIMEOUT):
        try:
            installation = await client.get_installation(salon_id, app_id)
        except YClientsRejected as exc:
            return Install.UNKNOWN if exc.status == 404 else Install.NOT_CONFIRMED
        except YClientsError as exc:
            log.info("salon %s: installation not checked (%s)", salon_id, type(exc).__name__)
            return Install.UNAVAILABLE
        status = installation.get("connection_status")
        if isinstance(status, dict) and status.get("status") in ("pending", "active"):
            return Install.CONFIRMED
        return Install.NOT_CONFIRMED
    return Install.UNAVAILABLE


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
    log_event(
        BusinessEvent.SALON_REGISTERED,
        company.id,
        salon_id=salon_id,
        via="yclients_redirect",
        signed=admin is not None,
    )
    return company, True


def _short(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else None


async def _within_rate_limit(salon_ids: list[int]) -> float | None:
    """Count the redirect's salons against the client's budget; seconds to wait if over."""
    s = state()
    hop = g.get("hop")
    if hop is not None and hop.client_ip is not None:
        return None  # forwarded by another process of the cluster, which counted it
    limit = s.settings.redirect_rate_limit
    key = f"redirect:{getattr(g, 'client_ip', None) or 'unknown'}"
    for _ in salon_ids:
        decision = await s.storage.rate_limiter.hit(key, limit.limit, limit.window)
        if not decision.allowed:
            s.metrics.rate_limited.labels("redirect").inc()
            return max(1.0, decision.retry_after)
    return None


@dataclass
class _Salon:
    """One salon of a redirect: its company (if any), what YClients said, and what we did."""

    salon_id: int
    company: Company | None = None
    install: Install | None = None
    created: bool = False
    reinstalled: bool = False


async def _settle(salon_id: int, admin: dict[str, Any] | None) -> _Salon:
    """Look the salon up and register or re-install it as the rules above allow."""
    s = state()
    salon = _Salon(salon_id, await s.storage.companies.get_by_salon(salon_id))
    company = salon.company
    if company is not None and admin is None and company.status not in RETURNING:
        return salon  # nothing an unsigned redirect may do here: YClients need not be asked
    salon.install = await _install_status(salon_id)
    if company is None:
        if salon.install is Install.CONFIRMED or (
            admin is not None and salon.install is not Install.UNKNOWN
        ):
            salon.company, salon.created = await _register(salon_id, admin)
        else:
            log.warning("install redirect: salon %s not registered (%s)", salon_id, salon.install)
    elif company.status in RETURNING and salon.install is Install.CONFIRMED:
        await (await company_ref(s.node, company.id)).ask(m.Reinstall())
        await s.storage.audit.append(
            company.id, "reinstall_redirect", {"signed": admin is not None}
        )
        salon.company = await s.storage.companies.get(company.id) or company
        salon.reinstalled = True
    return salon


@blueprint.get("/redirect")
async def install_redirect() -> Any:
    s = state()
    salon_ids = _salon_ids()
    first = salon_ids[0]
    wait = await _within_rate_limit(salon_ids)
    if wait is not None:
        return await _refuse(
            429,
            "rate_limited",
            "Слишком много попыток",
            "Слишком много запросов с этого адреса. Подождите минуту и откройте AI Admin из "
            "YClients ещё раз.",
            first,
            headers={"Retry-After": str(math.ceil(wait))},
        )
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
    salons = [await _settle(salon_id, admin) for salon_id in salon_ids]
    target = salons[0]
    company = target.company
    if company is None:
        return await _refuse_unregistered(target)
    if not target.created:
        refusal = await _refuse_existing(target, signed=admin is not None)
        if refusal is not None:
            return refusal
    token = await s.storage.tokens.issue(company.id)
    await s.storage.audit.append(
        company.id,
        "connect_url_issued",
        {"via": "yclients_redirect", "signed": admin is not None, "new": target.created},
    )
    return redirect(connect_url(token, company), 302)


async def _refuse_unregistered(salon: _Salon) -> Any:
    """The answer for a salon this redirect did not register (and that did not exist)."""
    if salon.install is Install.UNKNOWN:
        return await _refuse(
            404,
            "salon_not_found",
            "Салон не найден в YClients",
            "YClients не нашёл этот салон или приложение AI Admin в нём не установлено. "
            "Установите AI Admin из маркетплейса YClients.",
            None,
        )
    if salon.install is Install.NOT_CONFIGURED:
        return await _refuse(
            503,
            "yclients_not_configured",
            "AI Admin ещё не подключён к YClients",
            "На этом сервере AI Admin не настроена связь с YClients, поэтому установку "
            "проверить нельзя. Сообщите администратору сервиса.",
            salon.salon_id,
            headers={"Retry-After": "60"},
        )
    if salon.install is Install.UNAVAILABLE:
        return await _refuse(
            503,
            "yclients_unavailable",
            "Не удалось проверить установку",
            "YClients сейчас не отвечает, и мы не можем проверить установку AI Admin. "
            "Попробуйте открыть приложение из YClients через минуту.",
            salon.salon_id,
            headers={"Retry-After": "60"},
        )
    return await _refuse(
        403,
        "not_confirmed",
        "Откройте AI Admin из YClients",
        "YClients не подтвердил установку AI Admin в этом салоне. Откройте приложение из "
        "маркетплейса YClients.",
        salon.salon_id,
    )


async def _refuse_existing(salon: _Salon, *, signed: bool) -> Any | None:
    """Why a salon that existed before this redirect gets no connect token (``None``: it may).

    Unsigned: never, whatever its state (the answer is the same for every state). Signed:
    not when uninstalled, not when linked (unless YClients just re-activated it), and only
    when YClients confirms the installation.
    """
    company = salon.company
    assert company is not None
    if not signed:
        log.warning("install redirect for existing salon %s without a signature", salon.salon_id)
        return await _refuse(
            403,
            "open_from_yclients",
            "Откройте AI Admin из YClients",
            "Этот салон уже подключён к AI Admin. Чтобы получить новую ссылку для подключения "
            "WhatsApp, откройте AI Admin из личного кабинета YClients (Маркетплейс → AI Admin) "
            "или воспользуйтесь ссылкой, которую вы уже получили.",
            salon.salon_id,
        )
    if company.status is CompanyStatus.UNINSTALLED:
        return await _refuse(
            409,
            "uninstalled",
            "Приложение удалено",
            "YClients ещё не подтвердил повторную установку AI Admin. Установите приложение "
            "в маркетплейсе YClients заново.",
            salon.salon_id,
        )
    if company.status in LINKED and not salon.reinstalled:
        # (A salon this very redirect re-activated goes on to its connect page, which shows it
        # connected.)
        return await _refuse(
            409,
            "already_connected",
            "WhatsApp уже подключён",
            "AI Admin уже работает в этом салоне. Управлять подключением можно из YClients.",
            salon.salon_id,
        )
    if salon.install is not Install.CONFIRMED:
        log.warning("install redirect for salon %s not confirmed by YClients", salon.salon_id)
        return await _refuse(
            403,
            "not_confirmed",
            "Откройте AI Admin из YClients",
            "YClients не подтвердил установку AI Admin в этом салоне. Откройте приложение "
            "из маркетплейса YClients или попросите ссылку у поддержки.",
            salon.salon_id,
        )
    return None


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
    stored = event.stored_payload()
    try:
        key = webhook_dedupe_key(stored, datetime.now(UTC), source=WebhookSource.LIFECYCLE)
    except MalformedWebhook as exc:  # an event name that is not a plain word
        raise BadRequest(str(exc), code="invalid_body") from None
    company = await s.storage.companies.get_by_salon(event.salon_id)
    if company is None:
        raise NotFound("No company for this salon", code="company_not_found")
    # The request's id goes with the event: the salon is frozen or uninstalled later, by the
    # lifecycle worker, and the operators' log names this request (not part of the dedupe key).
    payload = {**stored, "request_id": g.get("request_id")}
    result = await s.storage.inbox.put(company.id, key, event.event_type, payload)
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
