"""The marketplace API of the seeds: register, connect page, QR, status, callback, webhooks,
statistics — with their request and response shapes and error codes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, current_app, jsonify, render_template, request

from actors import BusinessEvent, log_event
from actors.company import ACTIVATION_KIND, CompanyView, CurrentQr
from actors.company import messages as m
from actors.qr import qr_png_data_url
from actors.yclients import (
    FIRST_KEY_VERSION,
    MalformedWebhook,
    WebhookSource,
    derive_api_key,
    derive_webhook_secret,
    record_event_type,
    webhook_dedupe_key,
)
from config import WhatsAppProvider
from storage import Company, PutResult
from storage import Conflict as StorageConflict

from .._auth import require_admin, require_company, resolve_token
from .._companies import NO_COMPANY, CompanyExists, SalonIdGiven, salon_hint_for
from .._context import principal_from, state
from .._errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from .._forward import company_ref
from .._jwt import issue_company_token
from .._revocation import revoke_sessions, socket_registry
from .._sync_view import sync_state_json
from .._urls import YCLIENTS_RETURN_URL, connect_url, yclients_return_url
from .._validation import (
    bounded_text,
    optional_field,
    parse_id,
    parse_phone,
    read_json_object,
    require_field,
    validate_email,
)

blueprint = Blueprint("marketplace", __name__, url_prefix="/marketplace")


async def company_or_404(company_id: int) -> Company:
    company = await state().storage.companies.get(company_id)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return company


async def company_from_body(body: dict[str, Any]) -> Company:
    """The company a JSON body names by ``company_id`` or ``salon_id`` (400 / 404 otherwise)."""
    company_id = optional_field(body, "company_id", parse_id)
    salon_id = optional_field(body, "salon_id", parse_id)
    companies = state().storage.companies
    if company_id is not None:
        company = await companies.get(company_id)
    elif salon_id is not None:
        company = await companies.get_by_salon(salon_id)
    else:
        raise BadRequest("Give company_id or salon_id", code="missing_field", field="company_id")
    if company is None:
        raise NotFound("No company for this id", code="company_not_found")
    if salon_id is not None and company.yclients_id != salon_id:
        raise BadRequest(
            "company_id and salon_id name different salons; give one of them",
            code="invalid_field",
            field="salon_id",
        )
    return company


def view_json(view: CompanyView) -> dict[str, Any]:
    """The seed's status shape, plus what operators need."""
    return {
        "success": True,
        "company_id": view.company_id,
        "salon_id": view.salon_id,
        "whatsapp_connected": view.whatsapp_connected,
        "whatsapp_phone": view.whatsapp_phone,
        "integration_status": view.integration_status,
        "connected_at": view.connected_at,
        "session": view.session,
        "banned": view.banned,
        "last_error": view.last_error,
        "outbound_queued": view.outbound_queued,
    }


@blueprint.get("/")
async def landing() -> Any:
    return await render_template("landing.html")


@blueprint.get("/test")
async def readiness() -> Any:
    return jsonify(
        {
            "success": True,
            "status": "ok",
            "message": "Marketplace integration endpoints are ready",
            "endpoints": {
                "landing": "GET /marketplace/",
                "connect": "GET /marketplace/connect?token=&company=&salon=",
                "register": "POST /marketplace/register",
                "connect_url": "POST /marketplace/connect-url",
                "token": "POST /marketplace/token",
                "qr": "GET /marketplace/qr/{token}",
                "status": "GET /marketplace/status/{companyId}",
                "callback": "POST /marketplace/callback",
                "webhook": "POST /marketplace/webhook/{companyId}",
                "companies": "GET /marketplace/companies?limit=&cursor=&status=&salon_id=",
                "company_by_salon": "GET /marketplace/companies/by-salon/{salonId}",
                "docs": "GET /docs",
                "assistant": "PATCH /marketplace/company/{companyId}/assistant",
                "conversations": "GET /marketplace/conversations/{companyId}",
                "conversation_mode": "POST /marketplace/conversations/{companyId}/mode",
                "websocket": "GET /marketplace/ws",
                "yclients_redirect": "GET /marketplace/yclients/redirect",
                "yclients_webhook": "POST /marketplace/yclients/webhook",
            },
        }
    )


@blueprint.post("/register")
async def register() -> Any:
    require_admin(await principal_from(request.headers))
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    salon_id = require_field(body, "salon_id", parse_id)
    phone = optional_field(body, "phone", parse_phone)
    email = optional_field(body, "email", validate_email)
    title = optional_field(body, "title", bounded_text)
    secret = s.settings.jwt_secret
    try:
        # Derived credentials (actors/yclients/_keys.py): the activation callback can send this
        # same key to YClients later, while only its hash is stored.
        created = await s.storage.companies.create(
            salon_id,
            phone=phone,
            email=email,
            title=title,
            api_key=derive_api_key(secret, salon_id, FIRST_KEY_VERSION),
            webhook_secret=derive_webhook_secret(secret, salon_id, FIRST_KEY_VERSION),
            key_version=FIRST_KEY_VERSION,
        )
    except StorageConflict:
        existing = await s.storage.companies.get_by_salon(salon_id)
        if existing is not None:  # the body names it: a retried registration can go on
            raise CompanyExists(existing) from None
        raise Conflict("This salon could not be registered", code="company_exists") from None
    company = created.company
    token = await s.storage.tokens.issue(company.id)
    await s.storage.audit.append(company.id, "company_registered", {"salon_id": salon_id})
    log_event(BusinessEvent.SALON_REGISTERED, company.id, salon_id=salon_id, via="api")
    response = jsonify(
        {
            "success": True,
            "company_id": company.id,
            "salon_id": salon_id,
            "api_key": created.api_key,
            "connect_url": connect_url(token, company),
        }
    )
    response.status_code = 201
    return response


@blueprint.post("/connect-url")
async def reissue_connect_url() -> Any:
    """A fresh connect link for an existing company; the previous token stops working."""
    require_admin(await principal_from(request.headers))
    s = state()
    company = await company_from_body(
        await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    )
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    # Revocation reaches live sessions: the company's JWTs are refused from now on (a new
    # credentials version), the old token stops resolving, and its open sockets close (4001).
    await s.storage.companies.bump_credentials_version(company.id)
    token = await s.storage.tokens.issue(company.id)
    await revoke_sessions(
        socket_registry(current_app),
        s.storage,
        company.id,
        cluster=s.node.placement is not None,
    )
    await s.storage.audit.append(company.id, "connect_url_issued", {})
    return jsonify(
        {
            "success": True,
            "company_id": company.id,
            "salon_id": company.yclients_id,
            "connect_url": connect_url(token, company),
        }
    )


@blueprint.post("/token")
async def issue_jwt() -> Any:
    """A 24 h JWT for one company: its own key, or the admin naming ``company_id`` or
    ``salon_id``."""
    s = state()
    principal = await principal_from(request.headers)
    if principal is None:
        raise Unauthorized("Authenticate with X-API-Key")
    if principal.is_admin:
        body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
        company = await company_from_body(body)
    elif principal.kind == "company_key" and principal.company_id is not None:
        company = await company_or_404(principal.company_id)
    else:
        raise Forbidden("A JWT is issued for an API key only")
    company_id = company.id
    # The token carries the credentials version: a re-issued connect URL or an uninstall
    # moves the version on and the token is refused from then on.
    token = issue_company_token(
        company_id, s.settings.jwt_secret, version=company.credentials_version
    )
    return jsonify(
        {
            "success": True,
            "company_id": company_id,
            "salon_id": company.yclients_id,
            "token": token,
            "expires_in": 86400,
        }
    )


@blueprint.get("/connect")
async def connect_page() -> Any:
    s = state()
    token = request.args.get("token", "")
    company_param = request.args.get("company", "")
    company_id = None
    if token:
        company_id = await resolve_token(token, s.settings, s.storage)
    company = await s.storage.companies.get(company_id) if company_id is not None else None
    mismatch = company is not None and company_param and company_param != str(company.id)
    if company is None or mismatch:
        page = await render_template(
            "error.html",
            reason="expired",
            error_title="Ссылка устарела",
            error_message="Откройте подключение WhatsApp заново из маркетплейса YClients.",
            yclients_return_url=YCLIENTS_RETURN_URL,
        )
        return page, 410
    if company.integration_status == "uninstalled":
        page = await render_template(
            "error.html",
            reason="unavailable",
            error_title="Приложение удалено",
            error_message="Установите AI Admin в маркетплейсе YClients заново.",
            yclients_return_url=YCLIENTS_RETURN_URL,
        )
        return page, 410
    simulator = (
        not s.settings.production and s.settings.whatsapp_provider is WhatsAppProvider.SIMULATED
    )
    return await render_template(
        "connect.html",
        salon_title=company.title or f"Салон {company.yclients_id}",
        company_id=company.id,
        salon_id=company.yclients_id,
        yclients_return_url=yclients_return_url(company.yclients_id),
        simulator_enabled=simulator,
        ws_path="/marketplace/ws",
    )


@blueprint.get("/qr/<token>")
async def qr(token: str) -> Any:
    s = state()
    company_id = await resolve_token(token, s.settings, s.storage)
    if company_id is None:
        raise Unauthorized("The token is not valid or has expired", code="invalid_token")
    await company_or_404(company_id)
    # A read with no side effect: only the WebSocket's ``request-qr`` starts a linking round.
    # The actor hands out the cached code only if this very incarnation showed it, so a code a
    # crashed or restarted actor (or another process) left in the cache is never served.
    current = await (await company_ref(s.node, company_id)).ask(m.GetQr())
    assert isinstance(current, CurrentQr)
    if current.qr is None:
        raise _no_qr(current)
    image = qr_png_data_url(current.qr)  # ~0.2 ms: cheaper than a thread hand-off
    return jsonify(
        {
            "success": True,
            "qr": current.qr,
            "qr_image": image,
            "expires_in": _expires_in(current.generated_at, current.lifetime),
        }
    )


def _no_qr(current: CurrentQr) -> Conflict | ServiceUnavailable:
    """Why no QR code is shown: a round starting (try again), a linked, frozen or uninstalled
    salon, or no round at all (the connect page asks for one over its WebSocket)."""
    if current.linking:
        return ServiceUnavailable(2, "The QR code is not ready yet; try again")
    if current.status in ("active", "reconnecting"):
        return Conflict("WhatsApp is already connected", code="already_linked")
    if current.status in ("frozen", "uninstalled"):
        return Conflict(f"The app is {current.status} in YClients", code=current.status)
    return Conflict("No QR code is being shown; open the connect page to request one", code="no_qr")


def _expires_in(generated_at: float, lifetime: float) -> int:
    """Whole seconds the cached code has left (at least 1: it is still cached)."""
    return max(1, round(generated_at + lifetime - time.time()))


@blueprint.get("/status/<company_id>")
async def status(company_id: str) -> Any:
    """The company actor's view; the sync state and assistant switch come with it when the
    actor holds them current (no read here then), else they are read (cluster mode)."""
    cid = parse_id(company_id, "companyId")
    principal = await principal_from(request.headers, token=request.args.get("token"))
    s = state()
    if principal is not None and principal.company_id not in (None, cid):
        # A company asking with its own salon id is told its company id (its own data only).
        salon_hint_for(principal, cid, await s.storage.companies.get(principal.company_id))
    require_company(principal, cid)
    ref = await company_ref(s.node, cid)  # another process's salon: forwarded there
    company: Company | None = None
    if s.node.registry.lookup(cid) is None:
        # Not running here: the company must exist (and storage answer) before its actor starts.
        company = await _status_company(cid)
    view = await ref.ask(m.GetStatus(extras=True))
    if view.held:
        ai_enabled, sync = view.ai_enabled, view.sync
    else:
        company = company or await _status_company(cid)
        ai_enabled, sync = company.ai_enabled, await s.storage.catalog.get_sync_state(cid)
    return jsonify(
        {
            **view_json(view),
            "sync": sync_state_json(sync),
            "assistant": {"enabled": ai_enabled},
        }
    )


async def _status_company(company_id: int) -> Company:
    """The company for ``/status`` (the admin or its own credentials got here): 404 when
    there is none, naming the right company id when ``company_id`` is a salon id."""
    company = await state().storage.companies.get(company_id)
    if company is not None:
        return company
    salon = await state().storage.companies.get_by_salon(company_id)
    if salon is not None:
        raise SalonIdGiven(salon, own=False)
    raise NotFound(NO_COMPANY, code="company_not_found")


@blueprint.post("/callback")
async def resend_callback() -> Any:
    """Re-send the activation callback to YClients (queued in the outbox; idempotent)."""
    require_admin(await principal_from(request.headers))
    s = state()
    company = await company_from_body(
        await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    )
    if company.whatsapp_jid is None:
        raise Conflict("WhatsApp is not linked for this company yet", code="not_linked")
    key = f"activation:{company.id}:{company.whatsapp_jid}"
    item = await s.storage.outbox.get_by_key(key)
    if item is None:
        item = await s.storage.outbox.enqueue(
            ACTIVATION_KIND,
            key,
            company.id,
            {
                "company_id": company.id,
                "salon_id": company.yclients_id,
                "jid": company.whatsapp_jid,
            },
        )
    elif item.status != "pending":
        item = await s.storage.outbox.reopen(item.id)
    delivery = s.services.activation
    if delivery is not None:
        delivery.wake()
    await s.storage.audit.append(company.id, "activation_resend_requested", {"outbox_id": item.id})
    response = jsonify(
        {"success": True, "company_id": company.id, "queued": True, "outbox_id": item.id}
    )
    response.status_code = 202
    return response


async def _webhook(company_id: int, secret: str | None) -> Any:
    """A record webhook: stored in the inbox (deduplicated under the ``record`` namespace).

    A missing company and a wrong secret get the same 401 after the same work (one lookup of
    the stored hash), so the route does not tell which company ids exist. Only record events
    are accepted: a lifecycle-shaped body (``event``, or ``resource: lifecycle``) is a 400 and
    is never stored, so it can neither act as nor shadow a lifecycle event.
    """
    s = state()
    if not secret or not await s.storage.companies.verify_webhook_secret(company_id, secret):
        s.metrics.webhooks.labels("record", "unauthorized").inc()
        raise Unauthorized("The webhook secret is not valid", code="invalid_webhook_secret")
    company = await s.storage.companies.get(company_id)
    if company is None:  # deleted between the two reads: the secret is no longer valid
        s.metrics.webhooks.labels("record", "unauthorized").inc()
        raise Unauthorized("The webhook secret is not valid", code="invalid_webhook_secret")
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    try:
        key = webhook_dedupe_key(body, datetime.now(UTC), source=WebhookSource.RECORD)
        event_type = record_event_type(body)
    except MalformedWebhook as exc:
        # Not a record event (a lifecycle event, or a field of the wrong type): the sender's
        # mistake, so 400 — never stored, never a 500. Lifecycle events (freeze, uninstall)
        # come only through the partner-token-checked /marketplace/yclients/webhook.
        s.metrics.webhooks.labels("record", "malformed").inc()
        raise BadRequest(str(exc), code="invalid_webhook") from None
    result = await s.storage.inbox.put(company_id, key, event_type, body)
    s.metrics.webhooks.labels("record", result.value).inc()
    worker = s.services.record_inbox
    if result is PutResult.NEW and worker is not None:
        worker.poke()  # handle it now rather than at the next poll
    return jsonify({"success": True, "received": True, "duplicate": result is PutResult.DUPLICATE})


@blueprint.post("/webhook/<company_id>")
async def webhook(company_id: str) -> Any:
    cid = parse_id(company_id, "companyId")
    return await _webhook(cid, request.headers.get("X-Webhook-Secret"))


@blueprint.post("/webhook/<company_id>/<secret>")
async def webhook_with_secret(company_id: str, secret: str) -> Any:
    cid = parse_id(company_id, "companyId")
    return await _webhook(cid, secret)
