"""The node's services as one typed, frozen object, built once by the composition root.

``web/server.py`` builds the company side of the node first (:func:`actors.build_companies`),
then the services with their collaborators passed to their constructors (storage, metrics,
the YClients client, a teller that asks company actors), then runs the node with them and
gives the same object to the app. Nothing is looked up by name: mypy checks every use.

Restarts keep the instance. Each service is a long-lived object whose ``run`` loop the node
supervises as an infrastructure child; a crash cancels that loop and the supervisor starts
``run`` again on the *same* object. So the reference the web layer holds (to wake a worker,
queue a sync, read statistics) always reaches the running service, and what the object keeps
across passes — queued sync requests, counters, its registered metrics — survives a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime import Service

    from ._retention import RetentionService
    from .yclients import (
        ActivationDelivery,
        CatalogSync,
        LifecycleWorker,
        RecordInboxWorker,
        YClientsClient,
    )

#: Child ids of the services in the node's supervision tree (``/health/tree`` shows them).
ACTIVATION_SERVICE = "yclients.activation"
LIFECYCLE_SERVICE = "yclients.lifecycle"
INBOX_SERVICE = "yclients.records"
SYNC_SERVICE = "yclients.sync"
RETENTION_SERVICE = "storage.retention"


@dataclass(frozen=True)
class Services:
    """The node's services; ``None`` where one does not run on this node.

    - ``yclients``: the REST client (``None`` without ``YCLIENTS_API_KEY``);
    - ``activation``: activation-callback delivery (needs the client and
      ``YCLIENTS_APPLICATION_ID``);
    - ``lifecycle``: lifecycle-webhook handling (needs the client);
    - ``record_inbox``: the record-webhook worker; ``sync``: the catalog sync (both run
      without a client too: they wait for YClients, and on-demand syncs answer 503);
    - ``retention``: deletes finished inbox/outbox rows and old messages (``actors._retention``).
    """

    yclients: YClientsClient | None = None
    activation: ActivationDelivery | None = None
    lifecycle: LifecycleWorker | None = None
    record_inbox: RecordInboxWorker | None = None
    sync: CatalogSync | None = None
    retention: RetentionService | None = None

    def children(self) -> list[tuple[str, Service]]:
        """``(child id, service)`` of the running services, in start order: activation,
        lifecycle, record inbox, sync, retention (stopped in reverse)."""
        named: tuple[tuple[str, Service | None], ...] = (
            (ACTIVATION_SERVICE, self.activation),
            (LIFECYCLE_SERVICE, self.lifecycle),
            (INBOX_SERVICE, self.record_inbox),
            (SYNC_SERVICE, self.sync),
            (RETENTION_SERVICE, self.retention),
        )
        return [(name, service) for name, service in named if service is not None]


#: A node without services (tests and tools that need only the company actors).
NO_SERVICES = Services()
