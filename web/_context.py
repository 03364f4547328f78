"""The node and settings the app serves, reachable from any request or WebSocket handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quart import current_app

from actors import MetricsRegistry, Node
from config import Settings
from storage import Storage

from ._auth import Principal, authenticate
from ._security import client_ip


@dataclass
class WebMetrics:
    """The web layer's own metrics (registered on the node's registry)."""

    registry: MetricsRegistry
    viewers: int = 0

    def __post_init__(self) -> None:
        r = self.registry
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


@dataclass
class WebState:
    """Everything the handlers need, stored on ``app.extensions['aiadmin']``."""

    node: Node
    settings: Settings
    metrics: WebMetrics
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def storage(self) -> Storage:
        return self.node.storage


def state() -> WebState:
    value = current_app.extensions["aiadmin"]
    assert isinstance(value, WebState)
    return value


def remote_ip(remote_addr: str | None, headers: Any) -> str:
    return client_ip(remote_addr, headers, state().settings.trusted_proxies)


async def principal_from(headers: Any, *, token: str | None = None) -> Principal | None:
    s = state()
    return await authenticate(headers, s.settings, s.storage, token=token)
