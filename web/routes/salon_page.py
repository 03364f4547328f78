"""The salon's own page (кабинет салона): how a salon admin gets in, the page, and logging out.

* ``POST /marketplace/salon/session`` ``{"token"}`` — trades a connect token (or a company
  JWT) for the session cookie: as JSON it answers ``{"success", "company_id", "location"}``
  (401 ``invalid_token``; 410 ``uninstalled``; 403 ``csrf_failed`` when another site's
  ``Origin`` asks, so no site can sign a browser in to a salon of its choosing). As an HTML
  form post (``application/x-www-form-urlencoded``, field ``token``) — what the connect page's
  button sends, into a new tab — it answers 303 to the page with the cookie, and its refusals
  are Russian error pages. The connect page may sit in YClients' iframe, where a cookie set in
  answer to its own ``fetch`` is refused as a third-party one; a top-level tab keeps it. Pages
  of ours send ``Origin: null`` with a form post (their referrer policy is ``no-referrer``), so
  for the form ``null`` is accepted only with ``Sec-Fetch-Site: same-origin``, which the
  browser sets and no page can forge.
* ``GET /marketplace/salon/open?salon_id=…&user_data=…&user_data_sign=…`` — YClients' app
  settings link. ``user_data`` is checked as the install redirect checks it
  (``decode_user_data``: HMAC-SHA256 under the partner token); since that signature covers the
  admin, not the salon, the admin must also be bound to the salon: ``user_data`` names the
  salon (``salon_id``, ``company_id`` or ``salon_ids``), or it is the admin the salon was
  installed by (``raw_data.admin``). Then the cookie is set and the browser sent (303) to the
  page, so no credential stays in its address bar or history. Refusals are pages: 400 bad
  salon id, 403 bad signature or admin not bound, 404 unknown salon, 410 uninstalled.
  Asked inside a frame (``Sec-Fetch-Dest: iframe``: YClients may frame its settings link),
  where the browser would refuse the cookie, it answers instead a small page
  (``salon_open.html``, no cookie) whose button posts the same three fields to
* ``POST /marketplace/salon/open`` (form, ``target="_blank"``) — checked exactly as the GET,
  then the cookie and 303 in the new top-level tab.
* ``GET /marketplace/salon`` — the page (``salon.html``) of the cookie's salon; without a
  valid cookie the 401 error page.
* ``POST /marketplace/salon/logout`` — ends the session (CSRF-checked): revokes its id in
  every process until the cookie's absolute expiry, so a copy of the cookie is refused too,
  closes the session's live sockets (``web._salon_revocation``) and clears the cookie; 401
  without a session. The salon's other sessions stay.

Every page and answer here carries the connect page's headers: the page CSP (no inline
script), ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quart import Blueprint, current_app, make_response, redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from actors.yclients import MarketplaceDataError, decode_user_data
from storage import Company, CompanyStatus

from .._auth import resolve_token
from .._context import state
from .._errors import BadRequest, Forbidden, Gone, Unauthorized
from .._jwt import InvalidToken, verify_company_claims
from .._salon_revocation import end_session, session_sockets
from .._salon_session import (
    ROUTE_DOCS as ROUTE_DOCS,
)
from .._salon_session import (
    SALON_PATH,
    check_csrf,
    clear_cookie,
    csrf_token,
    issue_cookie,
    request_session,
    same_origin,
)
from .._urls import YCLIENTS_RETURN_URL, yclients_return_url
from .._validation import parse_id, read_json_object

log = logging.getLogger("aiadmin.salon")

blueprint = Blueprint("salon_page", __name__, url_prefix=SALON_PATH)

NO_STORE = {"Cache-Control": "no-store"}
FORM_TYPE = "application/x-www-form-urlencoded"
#: ``Sec-Fetch-Dest`` values of a document loaded inside a frame.
FRAMED = frozenset({"iframe", "frame"})
#: Statuses in which the salon's admin may be offered the connect page (to link or relink).
NO_CONNECT = frozenset({CompanyStatus.FROZEN, CompanyStatus.UNINSTALLED})
#: ``user_data`` keys that may name the salon(s) the admin is signed in to.
SALON_KEYS = ("salon_id", "company_id", "salon_ids")
ADMIN_KEYS = ("id", "user_id")

OUTDATED_MESSAGE = "Ссылка устарела. Откройте страницу подключения заново из YClients."

SIGN_IN_MESSAGE = (
    "Откройте кабинет из YClients (Маркетплейс → AI Admin → Настройки) или со страницы "
    "подключения WhatsApp."
)


async def _page_error(status: int, title: str, message: str, salon_id: int | None = None) -> Any:
    """The Russian error page (escaped by the template) with the connect page's headers."""
    page = await render_template(
        "error.html",
        reason="invalid",
        error_title=title,
        error_message=message,
        yclients_return_url=yclients_return_url(salon_id) if salon_id else YCLIENTS_RETURN_URL,
    )
    return page, status, NO_STORE


# ------------------------------------------------------------------------------ entry


async def _token_company(token: object) -> Company:
    """The installed company a connect token or company JWT speaks for (401 / 410)."""
    s = state()
    if not isinstance(token, str) or not token:
        raise BadRequest("token is required.", code="missing_field", field="token")
    company_id = await resolve_token(token, s.settings, s.storage)
    if company_id is None:
        # A JWT whose salon was uninstalled no longer resolves; say why rather than "invalid".
        try:
            claims = verify_company_claims(token, s.settings.jwt_secret)
        except InvalidToken:
            claims = None
        if claims is not None:
            gone = await s.storage.companies.get(claims.company_id)
            if gone is not None and gone.status is CompanyStatus.UNINSTALLED:
                raise Gone("The app was uninstalled for this salon", code="uninstalled")
        raise Unauthorized("The token is not valid or has expired", code="invalid_token")
    company = await s.storage.companies.get(company_id)
    if company is None:
        raise Unauthorized("The token is not valid or has expired", code="invalid_token")
    if company.status is CompanyStatus.UNINSTALLED:
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    return company


@blueprint.post("/session")
async def open_session() -> Any:
    """Sign in with a connect token or company JWT: JSON answer, or 303 for a form post."""
    if request.mimetype == FORM_TYPE:
        return await _open_session_from_form()
    s = state()
    if not same_origin(request.headers.get("Origin"), request.scheme, request.host, s.settings):
        raise Forbidden("The request came from another site", code="csrf_failed")
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    company = await _token_company(body.get("token"))
    response = await make_response(
        {"success": True, "company_id": company.id, "location": SALON_PATH}
    )
    issue_cookie(response, company.id, s.settings)
    await s.storage.audit.append(company.id, "salon_session_opened", {"via": "token"})
    return response


def _form_from_our_page() -> bool:
    """Whether a form post comes from a page of ours: its ``Origin`` is ours, or ``null`` (our
    pages' ``no-referrer`` policy makes browsers send that) with ``Sec-Fetch-Site:
    same-origin``; any other ``Sec-Fetch-Site`` (another site's page) is refused."""
    s = state()
    site = (request.headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site and site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    if origin is not None and origin.strip().lower() == "null":
        return site == "same-origin"
    return same_origin(origin, request.scheme, request.host, s.settings)


async def _form() -> Mapping[str, str] | None:
    """The posted form's fields, ``None`` when the body is too large to read."""
    try:
        return await request.form
    except RequestEntityTooLarge:
        return None


async def _redirect_with_cookie(company: Company, via: str) -> Any:
    """The 303 to the page with a new session cookie for ``company`` (audited)."""
    s = state()
    response = await make_response(redirect(SALON_PATH, 303))
    response.headers.update(NO_STORE)
    issue_cookie(response, company.id, s.settings)
    await s.storage.audit.append(company.id, "salon_session_opened", {"via": via})
    return response


async def _open_session_from_form() -> Any:
    """The connect page's form post (a new tab): the cookie and 303, or an error page."""
    if not _form_from_our_page():
        log.warning("salon session form refused: it came from another site")
        return await _page_error(
            403,
            "Запрос отклонён",
            "Кабинет можно открыть только со страницы подключения AI Admin. " + SIGN_IN_MESSAGE,
        )
    form = await _form()
    if form is None:
        return await _page_error(413, "Слишком большой запрос", SIGN_IN_MESSAGE)
    try:
        company = await _token_company(form.get("token"))
    except BadRequest:
        return await _page_error(400, "Ссылка недействительна", SIGN_IN_MESSAGE)
    except Unauthorized:
        return await _page_error(401, "Ссылка устарела", OUTDATED_MESSAGE)
    except Gone:
        return await _page_error(
            410, "Приложение удалено", "Установите AI Admin в маркетплейсе YClients заново."
        )
    return await _redirect_with_cookie(company, "token")


def _named_salons(admin: Mapping[str, Any]) -> set[str] | None:
    """The salon ids ``user_data`` names (as text), ``None`` when it names none."""
    named: set[str] = set()
    for key in SALON_KEYS:
        value = admin.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, (int, str)) and not isinstance(item, bool) and str(item).strip():
                named.add(str(item).strip())
    return named or None


def _installing_admin(company: Company) -> set[str]:
    """The ids of the admin whose signed install redirect registered ``company``."""
    raw = company.raw_data or {}
    admin = raw.get("admin") if isinstance(raw, dict) else None
    if not isinstance(admin, dict):
        return set()
    return {
        str(admin[k]).strip()
        for k in ADMIN_KEYS
        if isinstance(admin.get(k), (int, str)) and not isinstance(admin.get(k), bool)
    }


def _bound(admin: Mapping[str, Any], company: Company) -> bool:
    """Whether the signed ``user_data`` belongs to ``company``'s salon (see the docstring)."""
    named = _named_salons(admin)
    if named is not None:
        return str(company.yclients_id) in named
    ids = {
        str(admin[k]).strip()
        for k in ADMIN_KEYS
        if isinstance(admin.get(k), (int, str)) and not isinstance(admin.get(k), bool)
    }
    return bool(ids & _installing_admin(company))


class LinkRefused(Exception):
    """The settings link's fields were refused: the error page to show instead."""

    def __init__(self, status: int, title: str, message: str, salon_id: int | None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.salon_id = salon_id


async def _linked_company(fields: Mapping[str, str]) -> Company:
    """The installed company YClients' signed ``salon_id``/``user_data``/``user_data_sign``
    open (from the link's query or the frame page's form); :class:`LinkRefused` otherwise."""
    s = state()
    try:
        salon_id = parse_id(fields.get("salon_id"), "salon_id")
    except BadRequest:
        raise LinkRefused(
            400, "Ссылка недействительна", "В ссылке нет номера салона. " + SIGN_IN_MESSAGE, None
        ) from None
    try:
        admin = decode_user_data(
            fields.get("user_data"),
            fields.get("user_data_sign"),
            s.settings.yclients_api_key or "",
        )
    except MarketplaceDataError:
        log.warning("salon page link for salon %s: user_data refused", salon_id)
        raise LinkRefused(
            403,
            "Подпись не прошла проверку",
            "Данные входа не подтверждены YClients. " + SIGN_IN_MESSAGE,
            salon_id,
        ) from None
    company = await s.storage.companies.get_by_salon(salon_id)
    if company is None:
        raise LinkRefused(
            404,
            "Салон не найден",
            "AI Admin не подключён в этом салоне. Установите приложение в маркетплейсе YClients.",
            salon_id,
        )
    if not _bound(admin, company):
        log.warning("salon page link for salon %s: the signed admin is not bound to it", salon_id)
        raise LinkRefused(
            403,
            "Нет доступа к кабинету",
            "YClients не подтвердил, что вы администратор этого салона. " + SIGN_IN_MESSAGE,
            salon_id,
        )
    if company.status is CompanyStatus.UNINSTALLED:
        raise LinkRefused(
            410,
            "Приложение удалено",
            "Установите AI Admin в маркетплейсе YClients заново.",
            salon_id,
        )
    return company


async def _refused(refusal: LinkRefused) -> Any:
    """The error page a refused settings link gets."""
    return await _page_error(refusal.status, refusal.title, refusal.message, refusal.salon_id)


@blueprint.get("/open")
async def open_from_yclients() -> Any:
    """YClients' settings link: the cookie and 303, or in a frame the new-tab button page."""
    try:
        company = await _linked_company(request.args)
    except LinkRefused as refusal:
        return await _refused(refusal)
    framed = (request.headers.get("Sec-Fetch-Dest") or "").strip().lower() in FRAMED
    if framed:
        # A cookie set in answer to a cross-site frame is refused: offer a new tab instead.
        page = await render_template(
            "salon_open.html",
            salon_id=company.yclients_id,
            user_data=request.args.get("user_data", ""),
            user_data_sign=request.args.get("user_data_sign", ""),
            action=f"{SALON_PATH}/open",
        )
        return page, 200, {**NO_STORE, "Vary": "Sec-Fetch-Dest"}
    response = await _redirect_with_cookie(company, "yclients")
    response.headers["Vary"] = "Sec-Fetch-Dest"
    return response


@blueprint.post("/open")
async def open_from_yclients_form() -> Any:
    """The frame page's button (a new tab): the link's fields checked, the cookie and 303."""
    form = await _form()
    if form is None:
        return await _page_error(413, "Слишком большой запрос", SIGN_IN_MESSAGE)
    try:
        company = await _linked_company(form)
    except LinkRefused as refusal:
        return await _refused(refusal)
    return await _redirect_with_cookie(company, "yclients")


# ------------------------------------------------------------------------- the page


@blueprint.get("")
async def page() -> Any:
    s = state()
    session = await request_session()
    company = None if session is None else await s.storage.companies.get(session.company_id)
    if session is None or company is None:
        return await _page_error(401, "Войдите в кабинет салона", SIGN_IN_MESSAGE)
    api_base = f"{SALON_PATH}/api/{company.id}"
    body = await render_template(
        "salon.html",
        company_id=company.id,
        salon_id=company.yclients_id,
        salon_title=company.title or f"Салон {company.yclients_id}",
        csrf_token=csrf_token(session.session_id, s.settings.jwt_secret),
        api_base=api_base,
        ws_path=f"{api_base}/ws",
        connect_available=company.status not in NO_CONNECT,
    )
    return body, 200, NO_STORE


@blueprint.post("/logout")
async def logout() -> Any:
    s = state()
    session = await request_session(rotate=False)
    if session is None:
        raise Unauthorized(
            "The salon session has expired; open the salon page again",
            code="salon_session_expired",
        )
    check_csrf(session, s.settings)
    cluster = s.node.placement is not None
    await end_session(session_sockets(current_app), s.storage, session, cluster=cluster)
    await s.storage.audit.append(session.company_id, "salon_session_closed", {})
    response = await make_response({"success": True})
    clear_cookie(response, s.settings)
    return response
