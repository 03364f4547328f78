"""The YClients services of a node, built by the composition root.

:func:`yclients_services` builds the node's :class:`actors.Services`, each service given its
collaborators in its constructor: the REST client; activation delivery (when YClients and
``YCLIENTS_APPLICATION_ID`` are configured) and lifecycle handling (when YClients is
configured), which tell company actors through :func:`company_teller`; the record-webhook
worker and the catalog sync (always: without a client they wait for YClients).
:func:`data_services` builds the last two alone.

``companies`` is the node's company side (:func:`actors.build_companies`): its storage,
settings, metrics and the way to ask a company actor. The node then runs the services with
``companies.open_node(services)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._services import Services
from ._activation import ActivationDelivery, ActivationPolicy, CompanyTeller
from ._client import YClientsClient
from ._inbox import InboxPolicy, RecordInboxWorker
from ._lifecycle import LifecycleWorker
from ._sync import CatalogSync, SyncPolicy

if TYPE_CHECKING:
    from .._node import Companies


def company_teller(companies: Companies, timeout: float) -> CompanyTeller:
    """Asks a company actor and waits at most ``timeout`` seconds for its reply."""

    async def tell(company_id: int, message: Any) -> Any:
        return await companies.ask(company_id, message, timeout)

    return tell


def record_inbox_worker(
    companies: Companies, client: YClientsClient | None, *, policy: InboxPolicy | None = None
) -> RecordInboxWorker:
    """The record-webhook worker over the node's storage, counting into its metrics (and
    telling the node's assistant, if any, that a salon's records changed, and planning the
    reminders of each changed record when the node sends reminders)."""
    assistant = companies.assistant
    return RecordInboxWorker(
        companies.storage,
        client,
        policy=policy,
        metrics=companies.metrics,
        on_record=assistant.record_changed if assistant is not None else None,
        planner=companies.planner,
    )


def catalog_sync(
    companies: Companies, client: YClientsClient | None, *, policy: SyncPolicy | None = None
) -> CatalogSync:
    """The catalog sync over the node's storage; by default every ``settings.sync_interval``.
    When the node sends reminders it also reads and plans each salon's upcoming visits
    (``ReminderOptions.visits_ahead_days`` ahead)."""
    chosen = policy or SyncPolicy(interval=companies.settings.sync_interval)
    assistant = companies.assistant
    options = companies.reminder_options
    return CatalogSync(
        companies.storage,
        client,
        policy=chosen,
        metrics=companies.metrics,
        on_synced=assistant.catalog_synced if assistant is not None else None,
        planner=companies.planner,
        visits_ahead_days=options.visits_ahead_days if options is not None else 8,
    )


def data_services(
    companies: Companies,
    client: YClientsClient | None,
    *,
    inbox_policy: InboxPolicy | None = None,
    sync_policy: SyncPolicy | None = None,
) -> Services:
    """The record-webhook worker and the catalog sync, nothing else.

    Both run even without a client (``None``: YClients not configured): record events that
    need YClients then wait in the inbox, and on-demand syncs answer 503.
    """
    return Services(
        yclients=client,
        record_inbox=record_inbox_worker(companies, client, policy=inbox_policy),
        sync=catalog_sync(companies, client, policy=sync_policy),
    )


def yclients_services(
    companies: Companies,
    client: YClientsClient | None,
    *,
    activation_policy: ActivationPolicy | None = None,
    lifecycle_poll: float = 5.0,
    lifecycle_retry: float = 30.0,
    inbox_policy: InboxPolicy | None = None,
    sync_policy: SyncPolicy | None = None,
    wall_clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> Services:
    """Every YClients service this configuration can run (see the module docstring).

    Without ``settings.yclients_application_id`` there is no activation delivery: activation
    items stay queued in the outbox until a node with it runs.
    """
    data = data_services(companies, client, inbox_policy=inbox_policy, sync_policy=sync_policy)
    if client is None:
        return data
    settings = companies.settings
    policy = activation_policy or ActivationPolicy()
    teller = company_teller(companies, policy.tell_timeout)
    activation = None
    if settings.yclients_application_id is not None:
        activation = ActivationDelivery(
            companies.storage,
            client,
            application_id=settings.yclients_application_id,
            server_secret=settings.jwt_secret,
            public_base_url=settings.public_base_url,
            tell=teller,
            policy=policy,
            rng=rng,
            wall_clock=wall_clock,
        )
    lifecycle = LifecycleWorker(
        companies.storage,
        teller,
        poll_interval=lifecycle_poll,
        retry_in=lifecycle_retry,
        rng=rng,
    )
    return Services(
        yclients=client,
        activation=activation,
        lifecycle=lifecycle,
        record_inbox=data.record_inbox,
        sync=data.sync,
    )
