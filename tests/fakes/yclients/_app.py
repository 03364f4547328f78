"""The fake YClients as a raw ASGI app: partner endpoints, booking API, limits and faults.

A raw ASGI app (rather than Quart) because the faults need control no framework offers:
answering nothing until released, or dropping the connection after the status line.

Per request, in order: record it; enforce the per-IP limits (5 in any 1 s, 200 in any 60 s,
sliding; 429 with ``Retry-After``); apply a matching fault (before the handler unless
``after_handler``); check the headers (``Authorization: Bearer <partner>[, User <user>]``,
``Accept: application/vnd.yclients.v2+json``); run the handler; answer ``{success, data, meta}``.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import trio

from . import _booking as booking
from . import _company as company
from ._catalog import CatalogSource, load_catalog
from ._data import FakeSalon, seed_salons
from ._wire import Fault, RecordedRequest, Reply, error, ok

PARTNER_TOKEN = "fake-partner-token-0123456789abcdef"
USER_TOKEN = "fake-user-token-fedcba9876543210"
APPLICATION_ID = 9001
ACCEPT = "application/vnd.yclients.v2+json"
#: (limit, seconds) windows enforced per client IP, sliding.
YCLIENTS_LIMITS: tuple[tuple[int, float], ...] = ((5, 1.0), (200, 60.0))

_AUTH = re.compile(r"^Bearer\s+(?P<partner>[^,\s]+)(?:\s*,\s*User\s+(?P<user>\S+))?\s*$")
_INSTALL_STATUSES = {"pending", "active", "freezed", "uninstalled"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Handler = Callable[..., Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    auth: str  # "partner" | "booking" | "none"
    handler: Handler


@dataclass
class SentWebhook:
    """A webhook the fake sent to our server, and what our server answered."""

    url: str
    payload: dict[str, Any]
    status: int | None
    error: str | None = None


class FakeYClients:
    """State and ASGI entry point of the fake; see ``running_fake_yclients`` to serve it.

    The salons are today's three (``seed_salons``), or ``salons``, or those of ``catalog`` (a
    catalog file's path or its parsed JSON, see ``_catalog.py``; its relative days counted from
    ``now``, the real clock if ``None``). ``now`` also fixes the fake's own "now" (free times,
    the past) as ``state.now``.

    Controls (synchronous, call them from the test): ``fail``, ``hang``, ``close_connection``,
    ``release_hung``, ``clear_faults``, ``set_installation_status``, ``blacklist``; attributes
    ``rate_limits`` (``None`` disables), ``leak_other_clients``, ``user_token`` (when set,
    records and clients need ``User <user_token>``), ``salons``, ``state.today``, ``state.now``.
    Observing: ``requests``, ``requests_to``, ``max_requests_in_window``, ``all_records``,
    ``live_records``, ``record_by_key``, ``installation``, ``await wait_until(predicate)``.
    Webhooks out: ``send_lifecycle_webhook``, ``send_record_webhook`` (recorded in
    ``sent_webhooks``).
    """

    def __init__(
        self,
        *,
        partner_token: str = PARTNER_TOKEN,
        application_id: int = APPLICATION_ID,
        user_token: str | None = None,
        rate_limits: tuple[tuple[int, float], ...] | None = YCLIENTS_LIMITS,
        salons: dict[int, FakeSalon] | None = None,
        catalog: CatalogSource | None = None,
        now: datetime | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if salons is not None and catalog is not None:
            raise ValueError("give salons or a catalog, not both")
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if catalog is not None:
            salons = load_catalog(catalog, now=now)
        self.partner_token = partner_token
        self.application_id = application_id
        self.user_token = user_token
        self.rate_limits = rate_limits
        self.state = booking.BookingState(salons if salons is not None else seed_salons())
        self.state.now = now
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.sent_webhooks: list[SentWebhook] = []
        self.base_url = ""
        self._clock = clock
        self._accepted: dict[str, list[float]] = {}
        self._release = trio.Event()
        self._changed = trio.Event()
        self._routes = self._build_routes()

    # -- data --------------------------------------------------------------------------------

    @property
    def salons(self) -> dict[int, FakeSalon]:
        return self.state.salons

    @property
    def leak_other_clients(self) -> bool:
        """When true, ``GET records`` ignores ``client_id`` (as YClients has been seen to)."""
        return self.state.leak_other_clients

    @leak_other_clients.setter
    def leak_other_clients(self, value: bool) -> None:
        self.state.leak_other_clients = value

    def blacklist(self, phone: str) -> None:
        """Make bookings for this phone fail with code 434 (HTTP 403)."""
        normalised = booking.normalise_phone(phone)
        if normalised is None:
            raise ValueError(f"not a phone: {phone!r}")
        self.state.blacklist.add(normalised)

    def installation(self, salon_id: int) -> dict[str, Any]:
        """Our app's installation in a salon: status, api_key, webhook_urls, channels."""
        return self.salons[salon_id].installation

    def set_installation_status(self, salon_id: int, status: str) -> None:
        if status not in _INSTALL_STATUSES:
            raise ValueError(f"unknown installation status {status!r}")
        self.salons[salon_id].installation["status"] = status

    def all_records(self, salon_id: int) -> list[dict[str, Any]]:
        """Every record of a salon, deleted ones included."""
        return list(self.salons[salon_id].records.values())

    def live_records(self, salon_id: int) -> list[dict[str, Any]]:
        """The salon's records as they stand now (not deleted), by time then id."""
        live = [r for r in self.salons[salon_id].records.values() if not r["deleted"]]
        return sorted(live, key=lambda r: (r["datetime"], r["id"]))

    def record_by_key(self, salon_id: int, key: str) -> dict[str, Any]:
        """The record a catalog named ``key`` (``"rustam-haircut"``), deleted or not, as it
        stands now; ``KeyError`` if the catalog named none so."""
        salon = self.salons[salon_id]
        return salon.records[salon.record_keys[key]]

    # -- faults ------------------------------------------------------------------------------

    def _add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def fail(
        self,
        pattern: str,
        status: int = 500,
        *,
        message: str | None = None,
        codes: tuple[int, ...] = (),
        retry_after: int | None = None,
        times: int | None = 1,
        method: str | None = None,
        after_handler: bool = False,
    ) -> Fault:
        """Answer ``status`` to the next ``times`` matching requests (``None``: always)."""
        return self._add(
            Fault(
                "status",
                pattern,
                method,
                times,
                after_handler,
                status=status,
                message=message,
                codes=codes,
                retry_after=retry_after,
            )
        )

    def hang(
        self,
        pattern: str,
        *,
        times: int | None = 1,
        method: str | None = None,
        after_handler: bool = False,
    ) -> Fault:
        """Answer nothing to matching requests until ``release_hung()``."""
        return self._add(Fault("hang", pattern, method, times, after_handler))

    def close_connection(
        self,
        pattern: str,
        *,
        times: int | None = 1,
        method: str | None = None,
        after_handler: bool = False,
    ) -> Fault:
        """Send the status line of matching requests, then drop the connection."""
        return self._add(Fault("close", pattern, method, times, after_handler))

    def release_hung(self) -> None:
        """Let every hung request proceed (those whose client left are dropped)."""
        self._release.set()
        self._release = trio.Event()

    def clear_faults(self) -> None:
        self.faults.clear()

    def _take_fault(self, rec: RecordedRequest) -> Fault | None:
        for fault in self.faults:
            if fault.matches(rec.method, rec.path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.hits += 1
                return fault
        return None

    # -- recorded traffic --------------------------------------------------------------------

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path matches ``pattern`` (fnmatch)."""
        probe = Fault("status", pattern, method, None)
        return [r for r in self.requests if probe.matches(r.method, r.path)]

    def max_requests_in_window(self, seconds: float) -> int:
        """The most requests that arrived within any span shorter than ``seconds``."""
        times = sorted(r.time for r in self.requests)
        best = 0
        for i, t in enumerate(times):
            j = bisect.bisect_left(times, t + seconds)
            best = max(best, j - i)
        return best

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; re-checked whenever a request arrives or its
        outcome changes. Bound it with ``trio.fail_after``."""
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _settle(self, rec: RecordedRequest, outcome: str) -> None:
        rec.outcome = outcome
        self._notify()

    # -- limits ------------------------------------------------------------------------------

    def _rate_limited(self, rec: RecordedRequest) -> Reply | None:
        if not self.rate_limits:
            return None
        now = rec.time
        accepted = self._accepted.setdefault(rec.client, [])
        longest = max(seconds for _, seconds in self.rate_limits)
        del accepted[: bisect.bisect_right(accepted, now - longest)]
        wait = 0.0
        for limit, seconds in self.rate_limits:
            recent = accepted[bisect.bisect_right(accepted, now - seconds) :]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + seconds - now)
        if wait > 0:
            reply = error(429, "Превышен лимит запросов")
            reply.headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
            return reply
        accepted.append(now)
        return None

    # -- routing -----------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        def r(method: str, path: str, auth: str, handler: Handler) -> _Route:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
            return _Route(method, re.compile(f"^{regex}/?$"), auth, handler)

        api = "/api/v1"
        return [
            r("POST", "/marketplace/partner/callback", "partner", self._callback),
            r("POST", "/marketplace/partner/callback/redirect", "none", self._callback_redirect),
            r("GET", "/marketplace/installed", "none", self._installed_page),
            r(
                "GET",
                "/marketplace/salon/{salon_id}/application/{application_id}",
                "partner",
                self._get_installation,
            ),
            r(
                "POST",
                "/marketplace/salon/{salon_id}/application/{application_id}/uninstall",
                "partner",
                self._uninstall,
            ),
            r("GET", f"{api}/company/{{company_id}}", "booking", booking.company),
            r(
                "GET",
                f"{api}/company/{{company_id}}/services",
                "booking",
                company.company_services,
            ),
            r(
                "GET",
                f"{api}/company/{{company_id}}/service_categories",
                "booking",
                company.service_categories,
            ),
            r("GET", f"{api}/book_services/{{company_id}}", "booking", booking.book_services),
            r("GET", f"{api}/book_staff/{{company_id}}", "booking", booking.book_staff),
            r("GET", f"{api}/book_dates/{{company_id}}", "booking", booking.book_dates),
            r(
                "GET",
                f"{api}/book_times/{{company_id}}/{{staff_id}}/{{day}}",
                "booking",
                booking.book_times,
            ),
            r("POST", f"{api}/book_check/{{company_id}}", "booking", booking.book_check),
            r("POST", f"{api}/book_record/{{company_id}}", "booking", booking.book_record),
            r(
                "PUT",
                f"{api}/book_record/{{company_id}}/{{record_id}}",
                "user",
                booking.book_record_move,
            ),
            r(
                "PUT",
                f"{api}/visits/{{visit_id}}/{{record_id}}",
                "user",
                booking.visit_attendance,
            ),
            r("GET", f"{api}/records/{{company_id}}", "user", booking.records),
            r("GET", f"{api}/record/{{company_id}}/{{record_id}}", "user", booking.record_get),
            r(
                "DELETE",
                f"{api}/record/{{company_id}}/{{record_id}}",
                "user",
                booking.record_delete,
            ),
            r(
                "POST",
                f"{api}/company/{{company_id}}/clients/search",
                "user",
                booking.clients_search,
            ),
            r("POST", f"{api}/clients/{{company_id}}", "user", booking.client_create),
        ]

    def _auth_problem(self, rec: RecordedRequest, auth: str) -> Reply | None:
        if auth == "none":
            return None
        if rec.headers.get("accept") != ACCEPT:
            return error(406, f"Заголовок Accept должен быть {ACCEPT}")
        match = _AUTH.match(rec.headers.get("authorization", ""))
        if match is None or match["partner"] != self.partner_token:
            return error(401, "Необходима авторизация: неверный токен партнёра")
        if auth == "user" and self.user_token is not None and match["user"] != self.user_token:
            return error(401, "Необходима авторизация: неверный токен пользователя")
        return None

    def _dispatch(self, rec: RecordedRequest) -> Reply:
        allowed: list[str] = []
        for route in self._routes:
            m = route.pattern.match(rec.path)
            if m is None:
                continue
            if route.method != rec.method:
                allowed.append(route.method)
                continue
            problem = self._auth_problem(rec, route.auth)
            if problem is not None:
                return problem
            params = m.groupdict()
            if route.auth in ("booking", "user") and "company_id" not in params:
                if not all(value.isdigit() for value in params.values()):
                    return error(404, "Не найдено")
                return route.handler(self.state, rec, **params)
            if route.auth in ("booking", "user"):
                company_id = params.pop("company_id")
                salon = self.salons.get(int(company_id)) if company_id.isdigit() else None
                if salon is None:
                    return error(404, "Филиал не найден")
                if salon.installation["status"] == "uninstalled":
                    return error(403, "Нет доступа к филиалу: приложение отключено")
                for name, value in params.items():
                    if name != "day" and not value.isdigit():
                        return error(404, "Не найдено")
                return route.handler(self.state, salon, rec, **params)
            return route.handler(rec, **params)
        if allowed:
            return error(405, "Метод не поддерживается")
        return error(404, "Не найдено")

    # -- partner endpoints -------------------------------------------------------------------

    def _activation_problem(self, body: dict[str, Any], *, need_channels: bool) -> Reply | None:
        salon_id = body.get("salon_id")
        if not isinstance(salon_id, int) or salon_id not in self.salons:
            return error(422, "Филиал не найден")
        if body.get("application_id") != self.application_id:
            return error(422, "Приложение не найдено")
        api_key = body.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            return error(422, "Поле api_key обязательно")
        urls = body.get("webhook_urls")
        if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls
        ):
            return error(422, "Поле webhook_urls должно быть списком URL")
        channels = body.get("channels")
        if (
            need_channels
            and channels is not None
            and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels))
        ):
            return error(422, "Поле channels должно быть списком строк")
        if self.salons[salon_id].installation["status"] == "uninstalled":
            return error(422, "Приложение не установлено в филиале")
        return None

    def _activate(self, body: dict[str, Any]) -> None:
        inst = self.salons[body["salon_id"]].installation
        inst.update(
            status="active",
            api_key=body["api_key"],
            webhook_urls=list(body["webhook_urls"]),
            channels=list(body.get("channels") or []),
            activations=inst.get("activations", 0) + 1,
        )

    def _callback(self, rec: RecordedRequest) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else None
        if body is None:
            return error(400, "Тело запроса должно быть JSON")
        problem = self._activation_problem(body, need_channels=True)
        if problem is not None:
            return problem
        self._activate(body)
        return Reply(201, {"success": True, "data": None, "meta": {"message": "Created"}})

    def _callback_redirect(self, rec: RecordedRequest) -> Reply:
        if isinstance(rec.json, dict):
            body = dict(rec.json)
        else:
            form = rec.form
            body = {
                "salon_id": int(form["salon_id"][0])
                if form.get("salon_id", [""])[0].isdigit()
                else None,
                "application_id": int(form["application_id"][0])
                if form.get("application_id", [""])[0].isdigit()
                else None,
                "api_key": form.get("api_key", [""])[0],
                "webhook_urls": form.get("webhook_urls[]", form.get("webhook_urls", [])),
            }
        problem = self._activation_problem(body, need_channels=False)
        if problem is not None:
            return problem
        self._activate(body)
        return Reply(
            301, None, [("Location", f"/marketplace/installed?salon_id={body['salon_id']}")]
        )

    def _installed_page(self, rec: RecordedRequest) -> Reply:
        page = "<!doctype html><title>YClients</title><p>Интеграция подключена</p>"
        return Reply(200, raw=page.encode(), headers=[("Content-Type", "text/html; charset=utf-8")])

    def _installation_or_404(self, salon_id: str, application_id: str) -> FakeSalon | Reply:
        salon = self.salons.get(int(salon_id)) if salon_id.isdigit() else None
        if salon is None or application_id != str(self.application_id):
            return error(404, "Филиал или приложение не найдены")
        if salon.installation["status"] == "uninstalled":
            return error(404, "Приложение не установлено в филиале")
        return salon

    def _get_installation(self, rec: RecordedRequest, salon_id: str, application_id: str) -> Reply:
        salon = self._installation_or_404(salon_id, application_id)
        if isinstance(salon, Reply):
            return salon
        inst = salon.installation
        return ok(
            {
                "salon_id": salon.id,
                "application_id": self.application_id,
                "connection_status": {
                    "status": inst["status"],
                    "webhook_urls": inst.get("webhook_urls", []),
                },
                "logs": [],
                "payments": [],
            }
        )

    def _uninstall(self, rec: RecordedRequest, salon_id: str, application_id: str) -> Reply:
        salon = self._installation_or_404(salon_id, application_id)
        if isinstance(salon, Reply):
            return salon
        salon.installation["status"] = "uninstalled"
        return ok(None)

    # -- webhooks out ------------------------------------------------------------------------

    async def _post_webhook(self, url: str, payload: dict[str, Any], timeout: float) -> SentWebhook:
        sent = SentWebhook(url, payload, None)
        self.sent_webhooks.append(sent)
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:
                response = await http.post(url, json=payload)
        except httpx.HTTPError as exc:
            sent.error = type(exc).__name__
        else:
            sent.status = response.status_code
        return sent

    async def send_lifecycle_webhook(
        self,
        url: str,
        *,
        salon_id: int,
        event: str,
        application_id: int | None = None,
        partner_token: str | None = None,
        timeout: float = 5.0,
    ) -> SentWebhook:
        """POST ``{salon_id, application_id, event, partner_token}`` to ``url``.

        ``event`` is ``uninstall`` or ``freeze``; the installation status follows it.
        """
        payload = {
            "salon_id": salon_id,
            "application_id": application_id if application_id is not None else self.application_id,
            "event": event,
            "partner_token": partner_token if partner_token is not None else self.partner_token,
        }
        if salon_id in self.salons and event in ("uninstall", "freeze"):
            self.set_installation_status(
                salon_id, "uninstalled" if event == "uninstall" else "freezed"
            )
        return await self._post_webhook(url, payload, timeout)

    async def send_record_webhook(
        self,
        url: str,
        *,
        company_id: int,
        record_id: int,
        status: str,
        data: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> SentWebhook:
        """POST ``{company_id, resource: "record", resource_id, status, data}`` to ``url``.

        ``data`` defaults to the record as the fake holds it.
        """
        if data is None:
            record = (
                self.salons[company_id].records.get(record_id)
                if company_id in self.salons
                else None
            )
            data = dict(record) if record is not None else {"id": record_id}
        payload = {
            "company_id": company_id,
            "resource": "record",
            "resource_id": record_id,
            "status": status,
            "data": data,
        }
        return await self._post_webhook(url, payload, timeout)

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        rec = await self._record(scope, receive)
        limited = self._rate_limited(rec)
        if limited is not None:
            await self._answer(send, rec, limited)
            return
        fault = self._take_fault(rec)
        before = fault is not None and not fault.after_handler
        if fault is not None and before and await self._apply_fault(fault, rec, receive, send):
            return
        reply = self._dispatch(rec)
        if fault is not None and not before and await self._apply_fault(fault, rec, receive, send):
            return
        await self._answer(send, rec, reply)

    async def _record(self, scope: Scope, receive: Receive) -> RecordedRequest:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                break
        body = b"".join(chunks)
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope["headers"]}
        parsed: Any = None
        form: dict[str, list[str]] = {}
        content_type = headers.get("content-type", "")
        if body and "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        elif body and "form" in content_type:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        client = scope.get("client") or ("unknown", 0)
        rec = RecordedRequest(
            method=scope["method"].upper(),
            path=scope["path"],
            query=parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed,
            form=form,
            time=self._clock(),
            client=str(client[0]),
        )
        self.requests.append(rec)
        self._notify()
        return rec

    async def _apply_fault(
        self, fault: Fault, rec: RecordedRequest, receive: Receive, send: Send
    ) -> bool:
        """Carry out a fault; true if the request is finished, false to go on normally."""
        if fault.kind == "status":
            reply = error(fault.status, fault.message or f"Ошибка {fault.status}", fault.codes)
            if fault.retry_after is not None:
                reply.headers.append(("Retry-After", str(fault.retry_after)))
            await self._answer(send, rec, reply)
            return True
        if fault.kind == "close":
            rec.status = 200
            self._settle(rec, "closed")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            return True  # returning without a body makes Hypercorn drop the connection
        self._settle(rec, "hung")
        release = self._release
        gone = False
        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_disconnect)
            await release.wait()
            nursery.cancel_scope.cancel()
        if gone:
            self._settle(rec, "disconnected")
            return True
        self._settle(rec, "pending")
        return False

    async def _answer(self, send: Send, rec: RecordedRequest, reply: Reply) -> None:
        if reply.raw is not None:
            payload = reply.raw
            headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers]
        else:
            payload = (
                b"" if reply.body is None else json.dumps(reply.body, ensure_ascii=False).encode()
            )
            headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers]
            if payload:
                headers.append((b"content-type", b"application/json; charset=utf-8"))
        headers.append((b"content-length", str(len(payload)).encode()))
        rec.status = reply.status
        self._settle(rec, "answered")
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
