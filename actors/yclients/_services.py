"""The YClients services of a node: activation delivery and lifecycle handling.

``open_node(settings, storage, gateway, services=yclients_services(client))`` starts them as
supervised children after the company registry. Each build puts the fresh instance in
``node.extensions`` (``"yclients.activation"``, ``"yclients.lifecycle"``) so the web layer can
wake it; ``"yclients"`` holds the REST client itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runtime import Service

from ._activation import ActivationDelivery, ActivationPolicy, CompanyTeller, PartnerApi
from ._lifecycle import LifecycleWorker

if TYPE_CHECKING:
    from .._node import Node

ACTIVATION_SERVICE = "yclients.activation"
LIFECYCLE_SERVICE = "yclients.lifecycle"
CLIENT_EXTENSION = "yclients"


def _teller(node: Node, timeout: float) -> CompanyTeller:
    async def tell(company_id: int, message: Any) -> Any:
        return await node.company(company_id).ask(message, timeout)

    return tell


def yclients_services(
    api: PartnerApi,
    *,
    policy: ActivationPolicy | None = None,
    lifecycle_poll: float = 5.0,
    lifecycle_retry: float = 30.0,
    wall_clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
    activation: bool = True,
) -> list[tuple[str, Callable[[Node], Service]]]:
    """``(id, build)`` pairs for ``open_node``: activation delivery, then lifecycle handling.

    Activation needs ``settings.yclients_application_id`` (its build raises ``RuntimeError``
    without it): pass ``activation=False`` then, and activation items stay queued.
    """
    chosen = policy or ActivationPolicy()

    def build_activation(node: Node) -> Service:
        app_id = node.settings.yclients_application_id
        if app_id is None:
            raise RuntimeError("YCLIENTS_APPLICATION_ID is needed to deliver activations")
        node.extensions[CLIENT_EXTENSION] = api
        service = ActivationDelivery(
            node.storage,
            api,
            application_id=app_id,
            server_secret=node.settings.jwt_secret,
            public_base_url=node.settings.public_base_url,
            tell=_teller(node, chosen.tell_timeout),
            policy=chosen,
            rng=rng,
            wall_clock=wall_clock,
        )
        node.extensions[ACTIVATION_SERVICE] = service
        return service

    def build_lifecycle(node: Node) -> Service:
        node.extensions[CLIENT_EXTENSION] = api
        service = LifecycleWorker(
            node.storage,
            _teller(node, chosen.tell_timeout),
            poll_interval=lifecycle_poll,
            retry_in=lifecycle_retry,
            rng=rng,
        )
        node.extensions[LIFECYCLE_SERVICE] = service
        return service

    services: list[tuple[str, Callable[[Node], Service]]] = []
    if activation:
        services.append((ACTIVATION_SERVICE, build_activation))
    services.append((LIFECYCLE_SERVICE, build_lifecycle))
    return services
