"""YClients lifecycle webhooks (``uninstall``, ``freeze``): checked, stored, then handled.

The web route (``POST /marketplace/yclients/webhook``) calls :func:`check_lifecycle` (partner
token and application id), stores the event in the webhook inbox with event type
``lifecycle:<event>`` and the dedupe key of :func:`webhook_dedupe_key` with
``source="lifecycle"`` (the partner token is dropped from the stored body; the request's id is
kept in it, outside the key), answers 2xx, and calls :meth:`LifecycleWorker.wake`. Only that
route stores ``lifecycle:`` events, under keys of their own namespace: the record-webhook route
refuses lifecycle-shaped bodies, so a holder of a record-webhook secret can neither act as nor
shadow a lifecycle event.

:class:`LifecycleWorker` (a service of the node) handles ``lifecycle:`` events — the record-
webhook worker leaves that prefix alone — one company at a time, in order:

- ``uninstall`` → the company actor gets ``Uninstall()`` (session logged out, credentials and
  connect token revoked, status ``uninstalled``);
- ``freeze`` → ``Freeze()`` (session stopped, credentials kept, status ``frozen``);
- any other event → recorded in the audit log and done.

The actor is told under the webhook's request id, so the operators' log names that request
for ``frozen`` / ``uninstalled`` (``actors._business_log``). Then the event is marked done.
When the actor cannot be reached (restarting, busy, timed out) or storage fails, the event is
marked failed with a retry time; **this worker retries it** at its next pass after that time
(the claim's lease also brings back the events of a worker that died mid-handling). Handling
is idempotent: freezing a frozen salon changes nothing.

Errors raised by :func:`check_lifecycle` (besides ``MalformedWebhook``)::

    LifecycleRejected (ValueError)
    ├── LifecycleUnauthorized   the partner token is missing or wrong (HTTP 401)
    └── LifecycleForbidden      the application id is not ours (HTTP 403)
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from runtime import ActorError
from storage import MAX_ID, InboxEvent, Storage, StorageError

from .._business_log import serving_request
from ..company import CompanyError
from ..company import messages as company_messages
from ._activation import CompanyTeller
from ._errors import MalformedWebhook
from ._inbox import LIFECYCLE_PREFIX
from ._marketplace import verify_partner_token

log = logging.getLogger("actors.yclients.lifecycle")

LIFECYCLE_MESSAGES: dict[str, Callable[[], Any]] = {
    "uninstall": company_messages.Uninstall,
    "freeze": company_messages.Freeze,
}


class LifecycleRejected(ValueError):
    """A lifecycle webhook that must not be acted on."""


class LifecycleUnauthorized(LifecycleRejected):
    """The partner token is missing or not ours."""


class LifecycleForbidden(LifecycleRejected):
    """The application id is not ours."""


@dataclass(frozen=True)
class LifecycleEvent:
    """A checked lifecycle webhook: what to store (no partner token in it)."""

    salon_id: int
    application_id: int
    event: str

    @property
    def event_type(self) -> str:
        return LIFECYCLE_PREFIX + self.event

    def stored_payload(self) -> dict[str, Any]:
        return {
            "salon_id": self.salon_id,
            "application_id": self.application_id,
            "event": self.event,
        }


def _positive_id(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise MalformedWebhook(f"{name} is missing or not a positive id")
    return value


def check_lifecycle(
    payload: Any, *, partner_token: str | None, application_id: int | None
) -> LifecycleEvent:
    """Check a lifecycle webhook body: token first (constant time), then the application.

    Raises ``LifecycleUnauthorized`` (bad or missing token; also when we have no partner token
    configured), ``LifecycleForbidden`` (another application), ``MalformedWebhook`` (fields).
    """
    if not isinstance(payload, dict):
        raise MalformedWebhook("webhook body is not a JSON object")
    given = payload.get("partner_token")
    if not verify_partner_token(given if isinstance(given, str) else None, partner_token or ""):
        raise LifecycleUnauthorized("the partner token is missing or wrong")
    app = _positive_id(payload, "application_id")
    if application_id is None or app != application_id:
        raise LifecycleForbidden("the webhook is for another application")
    salon = _positive_id(payload, "salon_id")
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip() or len(event) > 32:
        raise MalformedWebhook("event is missing")
    return LifecycleEvent(salon, app, event.strip().lower())


@dataclass(frozen=True)
class LifecycleStatistics:
    passes: int
    handled: int
    failed: int


class LifecycleWorker:
    """Handles stored ``lifecycle:`` inbox events; a :class:`runtime.Service`.

    ``tell`` asks a company actor (the node passes ``ref.ask``). ``retry_in`` is the wait after
    a failed handling; ``poll_interval`` the time between passes when nobody wakes it.
    """

    def __init__(
        self,
        storage: Storage,
        tell: CompanyTeller,
        *,
        poll_interval: float = 5.0,
        lease: float = 60.0,
        retry_in: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self._storage = storage
        self._tell = tell
        self.poll_interval = poll_interval
        self.lease = lease
        self.retry_in = retry_in
        self._rng = rng or random.Random()
        self._wake = trio.Event()
        self._changed = trio.Event()
        self._passes = self._handled = self._failed = 0

    def __repr__(self) -> str:
        return f"<LifecycleWorker {self.statistics()}>"

    def statistics(self) -> LifecycleStatistics:
        return LifecycleStatistics(self._passes, self._handled, self._failed)

    def wake(self) -> None:
        """Handle stored events now (never blocks)."""
        self._wake.set()

    async def wait_handled(self, count: int) -> None:
        """Return once at least ``count`` events were handled since start (tests, tools)."""
        while self._handled < count:
            await self._changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._wake = trio.Event()
            await self.handle_due()
            with trio.move_on_after(self.poll_interval):
                await self._wake.wait()

    async def handle_due(self) -> int:
        """One pass over every company with due lifecycle events; returns events handled."""
        self._passes += 1
        done = 0
        try:
            companies = await self._storage.inbox.due_companies(prefix=LIFECYCLE_PREFIX)
            for company_id in companies:
                events = await self._storage.inbox.claim_for_company(
                    company_id, 10, lease=self.lease, prefix=LIFECYCLE_PREFIX
                )
                for event in events:
                    done += await self._handle(event)
        except StorageError as exc:
            log.warning("lifecycle inbox unavailable: %s", exc)
        return done

    async def _handle(self, event: InboxEvent) -> int:
        name = event.event_type.removeprefix(LIFECYCLE_PREFIX)
        build = LIFECYCLE_MESSAGES.get(name)
        if build is None:
            await self._storage.audit.append(
                event.company_id, "lifecycle_ignored", {"event": name[:32]}
            )
        else:
            # Served under the webhook's request (stored with the event), so the actor logs
            # ``frozen`` / ``uninstalled`` with the id YClients' call got.
            request_id = event.payload.get("request_id")
            try:
                with serving_request(request_id if isinstance(request_id, str) else None):
                    await self._tell(event.company_id, build())
            except (ActorError, CompanyError) as exc:
                wait = self.retry_in * (0.5 + self._rng.random())
                log.warning("company %s: %s not handled, retry: %s", event.company_id, name, exc)
                await self._storage.inbox.mark_failed(
                    event.id, f"{type(exc).__name__}: {exc}", retry_in=wait
                )
                self._failed += 1
                return 0
        await self._storage.inbox.mark_done(event.id)
        self._handled += 1
        self._changed.set()
        self._changed = trio.Event()
        return 1
