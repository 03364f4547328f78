"""The Quart-Trio app factory: hooks for security headers, rate limits, request ids and the
redacted access log, error mapping, and the route modules.

The app holds no state of its own: everything lives in the node passed to :func:`create_app`
and in the node's typed services (``node.services``, built by the composition root).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
from quart import Response, g, request
from quart import websocket as current_websocket
from quart.ctx import RequestContext
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from actors import Node
from actors.company import (
    CompanyNotFound,
    OutboundQueueFull,
    OwnedElsewhere,
    SendingUnavailable,
)
from runtime import ActorCrashed, ActorUnavailable, AskTimeout, MailboxFull
from storage import StorageTimeout, StorageUnavailable
from storage import ValidationError as StorageValidationError

from ._context import WebMetrics, WebState, install_state, remote_ip, state
from ._errors import TooManyRequests, error_response, register_error_handlers
from ._forward import Forwarder, OwnerAddresses, received_hop
from ._logging import register_secrets, request_id_var
from ._salon_session import COOKIE_NAME, SALON_PATH
from ._security import constant_time_equals, cors_headers, redact_url, security_headers

log = logging.getLogger("aiadmin.access")

PACKAGE_DIR = Path(__file__).parent
# Routes not counted against the per-IP API limit: operators' probes and static files.
UNLIMITED_PREFIXES = ("/health", "/metrics", "/static/", "/favicon")
PAGE_ENDPOINTS = frozenset(
    {"marketplace.landing", "marketplace.connect_page", "yclients.install_redirect"}
)


class RequestTimedOut(Exception):
    """An HTTP request outlived ``AIADMIN_REQUEST_TIMEOUT`` (a backend slow or hanging)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the request took longer than {seconds:g}s")


class BoundedQuartTrio(QuartTrio):
    """QuartTrio with one deadline per HTTP request over its before-request hooks and its view
    (``request_timeout`` seconds from the first hook): past it, whatever the request waits
    for is cancelled and :class:`RequestTimedOut` answers 503 with ``Retry-After``, so a hung
    backend never holds a client. After-request hooks and WebSockets are not bounded here."""

    request_timeout: float = math.inf

    @contextmanager
    def _within_deadline(self) -> Iterator[None]:
        deadline: float = g.get("request_deadline", math.inf)
        try:
            with trio.fail_at(deadline):
                yield
        except trio.TooSlowError:
            raise RequestTimedOut(self.request_timeout) from None

    async def preprocess_request(
        self, request_context: RequestContext | None = None
    ) -> ResponseReturnValue | None:
        g.request_deadline = trio.current_time() + self.request_timeout
        with self._within_deadline():
            return await super().preprocess_request(request_context)

    async def dispatch_request(
        self, request_context: RequestContext | None = None
    ) -> ResponseReturnValue:
        with self._within_deadline():
            return await super().dispatch_request(request_context)


def create_app(
    node: Node,
    *,
    owner_addresses: OwnerAddresses | None = None,
    hop_clock: Callable[[], float] = time.time,
) -> QuartTrio:
    """Build the app for ``node``; it serves until the node closes.

    In cluster mode a request for a salon owned by another process is forwarded to it
    (:mod:`web._forward`), at the address ``owner_addresses`` (default: the node's placement)
    gives for the owner's node id; hops are stamped and checked with the wall clock
    ``hop_clock`` (Unix seconds; tests tie it to trio's mock clock)."""
    settings = node.settings
    # Redacted from every log line by value, whatever name or shape they arrive under.
    register_secrets(settings.admin_api_key, settings.jwt_secret, settings.yclients_api_key)
    app = BoundedQuartTrio(
        __name__,
        static_folder=str(PACKAGE_DIR / "static"),
        static_url_path="/static",
        template_folder=str(PACKAGE_DIR / "templates"),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=2,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=True,
    )
    app.request_timeout = settings.request_timeout
    web_state = WebState(
        node=node, settings=settings, metrics=WebMetrics(node), services=node.services
    )
    install_state(app, web_state)
    forwarder = Forwarder(
        node.node_id,
        owner_addresses if owner_addresses is not None else node.placement,
        secret=settings.jwt_secret,
        timeout=settings.request_timeout,
        metrics=node.metrics,
        clock=hop_clock,
    )
    register_error_handlers(app)
    _register_domain_errors(app, forwarder)

    @app.after_serving
    async def close_forwarder() -> None:
        await forwarder.aclose()

    from .routes import (
        assistant,
        assistant_model,
        companies,
        conversations,
        dev,
        docs,
        health,
        marketplace,
        openapi,
        reminders,
        salon_actions,
        salon_conversations,
        salon_live,
        salon_page,
        salon_results,
        salon_settings,
        sync,
        websocket,
        yclients,
    )

    for module in (
        health,
        marketplace,
        websocket,
        dev,
        openapi,
        sync,
        yclients,
        assistant,
        assistant_model,
        conversations,
        reminders,
        companies,
        docs,
        salon_page,
        salon_conversations,
        salon_results,
        salon_actions,
        salon_settings,
        salon_live,
    ):
        app.register_blueprint(module.blueprint)

    @app.before_websocket
    async def before_socket() -> None:
        # A WebSocket serves under one request id, like a request: the commands it sends to
        # the company actor (request-qr …) carry it into the operators' log.
        g.request_id = request_id_from(current_websocket.headers)
        request_id_var.set(g.request_id)

    @app.before_request
    async def before() -> Response | None:
        request_id = request_id_from(request.headers)
        g.request_id = request_id
        request_id_var.set(request_id)
        g.started = time.perf_counter()
        g.client_ip = remote_ip(request.remote_addr, request.headers)
        # A request another process of the cluster forwarded (web._forward): if its signature
        # checks (fresh, over this query and body), the client IP is the one the entry
        # process saw, and the API limit was counted there already (one limiter shared
        # through Redis).
        hop = await received_hop(forwarder.key, forwarder.clock())
        if isinstance(hop, Response):
            return hop  # a signed hop's body too large or too slow: as the route would answer
        g.hop = hop
        if hop is not None and hop.client_ip is not None:
            g.client_ip = hop.client_ip
            return None
        if request.method == "OPTIONS" or request.path.startswith(UNLIMITED_PREFIXES):
            return None
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if constant_time_equals(request.headers.get("X-API-Key"), settings.admin_api_key):
            # The partner's servers poll every salon: the admin key has its own, much higher
            # budget per route, shared by wherever it calls from (no extra read: the key
            # is compared, as authentication will compare it again).
            limit, scope, bucket = settings.admin_rate_limit, "admin", "admin"
        elif request.path.startswith(SALON_PATH + "/") and request.cookies.get(COOKIE_NAME):
            # The salon page reloads a chat on each live frame: a browser with the page's
            # cookie gets a larger budget per IP (a forged cookie only gets this bucket, and
            # is refused by the route anyway).
            limit, scope, bucket = settings.salon_rate_limit, "salon", g.client_ip
        else:
            limit, scope, bucket = settings.api_rate_limit, "api", g.client_ip
        decision = await state().storage.rate_limiter.hit(
            f"{scope}:{request.method}:{rule}:{bucket}", limit.limit, limit.window
        )
        if not decision.allowed:
            web_state.metrics.rate_limited.labels(scope).inc()
            raise TooManyRequests(max(1.0, decision.retry_after))
        return None

    @app.after_request
    async def after(response: Response) -> Response:
        is_page = request.endpoint in PAGE_ENDPOINTS or (
            response.mimetype == "text/html" and not request.path.startswith("/static/")
        )
        static = request.path.startswith("/static/")
        headers = security_headers(
            is_page,
            connect_page=request.endpoint == "marketplace.connect_page",
            production=settings.production,
            no_store=False if static else None,
        )
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        origin = request.headers.get("Origin")
        if origin:
            for name, value in cors_headers(
                origin, settings, preflight=request.method == "OPTIONS"
            ).items():
                response.headers[name] = value
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-Id"] = request_id
        started = getattr(g, "started", None)
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if started is not None:
            elapsed = time.perf_counter() - started
            web_state.metrics.requests.labels(rule, request.method).observe(elapsed)
            web_state.metrics.responses.labels(rule, str(response.status_code)).inc()
            log.info(
                "%s %s %d %.1fms ip=%s",
                request.method,
                redact_url(request.full_path if request.query_string else request.path),
                response.status_code,
                elapsed * 1000,
                getattr(g, "client_ip", "-"),
            )
        return response

    return app


def request_id_from(headers: Any) -> str:
    """The client's ``X-Request-Id`` when it is a plain id (≤ 64 letters, digits, ``-``),
    else a new random one."""
    request_id = str(headers.get("X-Request-Id", ""))
    if 0 < len(request_id) <= 64 and request_id.replace("-", "").isalnum():
        return request_id
    return secrets.token_hex(8)


def _register_domain_errors(app: QuartTrio, forwarder: Forwarder) -> None:
    """Map errors from the actors and storage to the API's error shape (never a 500)."""

    async def busy(error: Exception) -> Response:
        log.warning("busy: %s", type(error).__name__)
        return error_response(
            503,
            "service_unavailable",
            "The salon's assistant is busy or restarting; try again shortly.",
            headers={"Retry-After": "1"},
        )

    async def storage_down(error: Exception) -> Response:
        log.warning("storage unavailable: %s", error)
        return error_response(
            503,
            "storage_unavailable",
            "Storage is temporarily unavailable; try again shortly.",
            headers={"Retry-After": "5"},
        )

    async def too_slow(error: RequestTimedOut) -> Response:
        log.warning("request timed out after %gs", error.seconds)
        return error_response(
            503,
            "request_timeout",
            "The service is answering too slowly right now; try again shortly.",
            headers={"Retry-After": "5"},
        )

    async def not_found(error: CompanyNotFound) -> Response:
        return error_response(404, "company_not_found", "No company with this id exists.")

    async def queue_full(error: OutboundQueueFull) -> Response:
        return error_response(503, "queue_full", str(error), headers={"Retry-After": "30"})

    async def cannot_send(error: SendingUnavailable) -> Response:
        return error_response(409, "sending_unavailable", str(error))

    async def elsewhere(error: OwnedElsewhere) -> Response:
        # Cluster mode: the salon's actor runs in another process (this one never starts a
        # second WhatsApp session for it): the request is served there (web._forward).
        return await forwarder.forward(error.owner, g.get("hop"))

    async def invalid_value(error: StorageValidationError) -> Response:
        # Our own checks word the problem without the value; a refusal the driver made (raised
        # ``from`` its error) may quote the value and the query, so it is never echoed.
        if error.__cause__ is not None:
            message = "A value in the request cannot be stored."
        else:
            message = str(error)
        return error_response(400, "invalid_field", message)

    busy_errors: tuple[type[Exception], ...] = (
        MailboxFull,
        ActorUnavailable,
        AskTimeout,
        ActorCrashed,
    )
    for exc_type in busy_errors:
        app.register_error_handler(exc_type, busy)
    storage_errors: tuple[type[Exception], ...] = (StorageUnavailable, StorageTimeout)
    for exc_type in storage_errors:
        app.register_error_handler(exc_type, storage_down)
    app.register_error_handler(RequestTimedOut, too_slow)
    app.register_error_handler(CompanyNotFound, not_found)
    app.register_error_handler(OutboundQueueFull, queue_full)
    app.register_error_handler(SendingUnavailable, cannot_send)
    app.register_error_handler(OwnedElsewhere, elsewhere)
    app.register_error_handler(StorageValidationError, invalid_value)
