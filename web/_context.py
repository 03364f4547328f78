"""The node and settings the app serves, reachable from any request or WebSocket handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quart import Quart, current_app

from actors import Node, Services
from config import Settings
from storage import Storage

from ._auth import Principal, authenticate
from ._security import client_ip


@dataclass
class WebMetrics:
    """The web layer's metrics and the node-wide gauges ``/metrics`` shows, registered once.

    Gauges read live state at scrape time; the few figures that live in storage are kept in
    ``stored``, which the ``/metrics`` route refreshes before rendering.
    """

    node: Node
    viewers: int = 0
    stored: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        node = self.node
        r = node.metrics
        self.requests = r.histogram(
            "aiadmin_http_request_duration_seconds", "HTTP request latency", ("route", "method")
        )
        self.responses = r.counter(
            "aiadmin_http_responses_total", "HTTP responses", ("route", "status")
        )
        self.rate_limited = r.counter(
            "aiadmin_rate_limit_rejections_total", "Requests refused by a rate limit", ("scope",)
        )
        self.webhooks = r.counter(
            "aiadmin_webhooks_received_total", "YClients webhooks received", ("kind", "result")
        )
        self.ws_connections = r.counter(
            "aiadmin_websocket_connections_total", "WebSocket connections", ("result",)
        )
        r.gauge(
            "aiadmin_websocket_viewers",
            "Connect-page WebSockets open now",
            lambda: {(): float(self.viewers)},
        )
        stored = self.stored
        r.gauge(
            "aiadmin_companies",
            "Companies by integration status",
            lambda: {(k,): float(v) for k, v in stored.get("companies", {}).items()},
            ("status",),
        )
        r.gauge(
            "aiadmin_outbox_backlog",
            "Outbox items pending",
            lambda: {(): float(stored.get("outbox_backlog", 0))},
        )
        r.gauge(
            "aiadmin_webhook_inbox_pending",
            "Webhook events to handle",
            lambda: {(): float(stored.get("inbox_pending", 0))},
        )
        r.gauge(
            "aiadmin_whatsapp_sessions",
            "WhatsApp sessions open",
            lambda: {(): float(node.gateway.snapshot().sessions)},
        )
        r.gauge(
            "aiadmin_actor_restarts",
            "Restarts across the supervision tree",
            lambda: {(): float(node.restarts_total())},
        )
        r.gauge(
            "aiadmin_active_actors",
            "Company actors activated",
            lambda: {(): float(len(node.registry))},
        )


#: Where the app keeps its :class:`WebState` in Quart's ``app.extensions`` (read it through
#: :func:`app_state` or :func:`state`, never by the key).
STATE_KEY = "aiadmin"


@dataclass
class WebState:
    """Everything the handlers need, kept on the app (:func:`install_state`): the node, its
    settings, the web metrics, and the node's typed services."""

    node: Node
    settings: Settings
    metrics: WebMetrics
    services: Services

    @property
    def storage(self) -> Storage:
        return self.node.storage


def install_state(app: Quart, web_state: WebState) -> None:
    """Keep ``web_state`` on ``app`` (once, when the app is made)."""
    app.extensions[STATE_KEY] = web_state


def app_state(app: Quart) -> WebState:
    """The :class:`WebState` kept on ``app``."""
    value = app.extensions[STATE_KEY]
    assert isinstance(value, WebState)
    return value


def state() -> WebState:
    """The current app's :class:`WebState` (inside a request or WebSocket handler)."""
    return app_state(current_app)


def remote_ip(remote_addr: str | None, headers: Any) -> str:
    return client_ip(remote_addr, headers, state().settings.trusted_proxies)


async def principal_from(headers: Any, *, token: str | None = None) -> Principal | None:
    s = state()
    return await authenticate(headers, s.settings, s.storage, token=token)
