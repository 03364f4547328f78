"""Delivering the activation callback to YClients from the durable outbox, exactly once in effect.

When a salon's WhatsApp links, its company actor enqueues the outbox item
``kind="yclients.activation"``, key ``activation:{company_id}:{jid}`` (so repeated link events
of one device make one item). :class:`ActivationDelivery`, a service of the node, delivers it:

1. **Claim** due items with a lease (``Outbox.claim_due``): while the lease runs no other
   process (another node on the same PostgreSQL) receives the item. The claimed items are
   attempted concurrently, each bounded by ``policy.attempt_timeout``, which is shorter than
   the lease, so a lease never runs out under a live or waiting attempt. A process killed
   mid-attempt leaves the item claimed until the lease ends; then any process takes it again.
2. **Look first**: ``GET /marketplace/salon/{id}/application/{app}``. When YClients already shows
   the installation ``active`` with our webhook URL registered, an earlier attempt did reach it
   (its answer was lost, or the process died before recording it) and the item is recorded
   delivered without sending again. A failed lookup just means "send".
3. **Send** ``POST /marketplace/partner/callback`` with ``salon_id``, ``application_id``, the
   company's ``api_key``, ``webhook_urls`` (``{PUBLIC_BASE_URL}/marketplace/webhook/{id}/{whs}``)
   and ``channels: ["whatsapp"]``. The key and secret are re-derived from the server secret
   (``_keys.py``), never read from storage.
4. **Record** the outcome:

   - 2xx → ``delivered``; audit ``activation_delivered``.
   - network error, timeout, 5xx → retry after exponential backoff with jitter; 429 → retry
     after YClients' ``Retry-After`` (plus a little jitter), never sooner.
   - any other 4xx → ``failed`` with YClients' message; the company actor is told
     :class:`ActivationRejected` (status ``activation_failed``, ``last_error`` = the message).
   - still not delivered ``policy.give_up_after`` (24 h) after the item was created → ``failed``
     and the company told, the same way.
   - the company is gone or uninstalled → ``failed``, nobody told.

   The company is told before the item is closed: if telling fails, the item is retried.

Polling: every ``policy.poll_interval`` seconds one indexed ``claim_due`` query, or at once after
:meth:`ActivationDelivery.wake` (the re-send route calls it). Storage errors in a pass are
logged and the next pass retries; they never crash the service.

Errors: none of its own; it consumes ``YClientsError`` and ``StorageError``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import trio

from runtime import ActorError, Backoff
from storage import AttemptOutcome, Company, CompanyStatus, OutboxItem, Storage, StorageError

from .._business_log import BusinessEvent, log_event
from ..company import ACTIVATION_KIND, CompanyError
from ..company import messages as company_messages
from ._client import equal_jitter
from ._errors import (
    YClientsAuthError,
    YClientsError,
    YClientsRateLimited,
    YClientsRejected,
    YClientsUnavailable,
)
from ._keys import current_credentials, webhook_url

log = logging.getLogger("actors.yclients.activation")

CHANNELS = ("whatsapp",)


class PartnerApi(Protocol):
    """What delivery needs of :class:`YClientsClient` (a fake may stand in)."""

    async def send_activation_callback(
        self,
        salon_id: int,
        application_id: int,
        api_key: str,
        webhook_urls: Any,
        channels: Any = ...,
    ) -> None: ...

    async def get_installation(self, salon_id: int, application_id: int) -> dict[str, Any]: ...


class CompanyTeller(Protocol):
    """Tells a company actor something and waits for it to be handled (``ActorRef.ask``)."""

    async def __call__(self, company_id: int, message: Any) -> Any: ...


@dataclass(frozen=True)
class ActivationPolicy:
    """Timing of activation delivery.

    Backoff before retry *n* (``n`` = attempts so far, ≥ 1) is a random value in ``[d/2, d]``,
    ``d = min(backoff_max, backoff_initial * 2 ** (n - 1))`` (:func:`~._client.equal_jitter`);
    a 429 waits at least its
    ``Retry-After``. ``attempt_timeout`` must be below ``lease``.
    """

    poll_interval: float = 1.0
    batch: int = 10
    lease: float = 120.0
    attempt_timeout: float = 60.0
    backoff_initial: float = 5.0
    backoff_max: float = 900.0
    give_up_after: float = 24 * 3600.0
    tell_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.attempt_timeout < self.lease:
            raise ValueError("attempt_timeout must be positive and below lease")
        if self.poll_interval <= 0 or self.batch < 1:
            raise ValueError("poll_interval must be positive and batch at least 1")

    @property
    def retry_backoff(self) -> Backoff:
        """The waits before retries (equal jitter)."""
        return equal_jitter(self.backoff_initial, self.backoff_max)

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """The wait before retry ``attempts`` (attempts so far; below 1 counts as 1)."""
        return self.retry_backoff.delay(attempts, rng)


@dataclass(frozen=True)
class DeliveryStatistics:
    """Counters for health views and tests."""

    passes: int
    delivered: int
    recovered: int
    retried: int
    failed: int


def rejection_message(exc: YClientsError) -> str:
    """YClients' own message for a refusal (what the salon admin sees)."""
    if isinstance(exc, YClientsRejected | YClientsAuthError):
        return f"{exc.status}: {exc.message}"
    return str(exc)


class ActivationDelivery:
    """The outbox worker for ``yclients.activation`` items; a :class:`runtime.Service`.

    ``tell`` reaches company actors (the node passes ``ref.ask``); ``wall_clock`` is the clock
    the storage stamps ``created_at`` with (tests pass their fake one). ``run`` never returns;
    cancel it to stop (an attempt in flight is abandoned; its lease brings the item back).
    """

    def __init__(
        self,
        storage: Storage,
        api: PartnerApi,
        *,
        application_id: int,
        server_secret: str,
        public_base_url: str,
        tell: CompanyTeller,
        policy: ActivationPolicy | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._storage = storage
        self._api = api
        self._application_id = application_id
        self._server_secret = server_secret
        self._public_base_url = public_base_url
        self._tell = tell
        self.policy = policy or ActivationPolicy()
        self._rng = rng or random.Random()
        self._wall = wall_clock or (lambda: datetime.now(UTC))
        self._wake = trio.Event()
        self._passes = self._delivered = self._recovered = self._retried = self._failed = 0

    def __repr__(self) -> str:
        return f"<ActivationDelivery application_id={self._application_id} {self.statistics()}>"

    def statistics(self) -> DeliveryStatistics:
        return DeliveryStatistics(
            self._passes, self._delivered, self._recovered, self._retried, self._failed
        )

    def wake(self) -> None:
        """Look for due items now instead of at the next poll (never blocks)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.deliver_due()
            with trio.move_on_after(self.policy.poll_interval):
                await self._wake.wait()
            self._wake = trio.Event()

    async def deliver_due(self) -> int:
        """One pass: claim due items and deliver each; returns how many were claimed."""
        self._passes += 1
        try:
            items = await self._storage.outbox.claim_due(
                self.policy.batch, lease=self.policy.lease, kind=ACTIVATION_KIND
            )
        except StorageError as exc:
            log.warning("activation outbox unavailable: %s", exc)
            return 0
        # Every claimed item is attempted at once, each within ``attempt_timeout`` < ``lease``:
        # one slow item never holds the others past their leases (another process would take
        # them while they still wait here, and deliver them a second time).
        async with trio.open_nursery() as nursery:
            for item in items:
                nursery.start_soon(self._deliver_logged, item)
        return len(items)

    async def _deliver_logged(self, item: OutboxItem) -> None:
        try:
            await self.deliver(item)
        except StorageError as exc:
            log.warning("activation %s: storage failed, lease will retry: %s", item.id, exc)

    async def deliver(self, item: OutboxItem) -> AttemptOutcome:
        """Deliver one claimed item and record the outcome (see the module docstring)."""
        company_id = item.company_id
        company = None if company_id is None else await self._storage.companies.get(company_id)
        if company is None or company.status is CompanyStatus.UNINSTALLED:
            reason = "company is gone" if company is None else "the app was uninstalled"
            await self._storage.outbox.record_attempt(
                item.id, AttemptOutcome.FAILED, error=f"not sent: {reason}"
            )
            self._failed += 1
            return AttemptOutcome.FAILED
        error: YClientsError | None = None
        with trio.move_on_after(self.policy.attempt_timeout):
            try:
                recovered = await self._attempt(company)
            except YClientsError as exc:
                error = exc
            else:
                await self._storage.outbox.record_attempt(item.id, AttemptOutcome.DELIVERED)
                await self._storage.audit.append(
                    company.id,
                    "activation_delivered",
                    {
                        "outbox_id": item.id,
                        "salon_id": company.yclients_id,
                        "attempts": item.attempts + 1,
                        "recovered": recovered,
                    },
                )
                self._delivered += 1
                self._recovered += int(recovered)
                log_event(
                    BusinessEvent.ACTIVATION_SENT,
                    company.id,
                    salon_id=company.yclients_id,
                    attempts=item.attempts + 1,
                    recovered=recovered,
                )
                return AttemptOutcome.DELIVERED
        if error is None:
            error = YClientsUnavailable("activation attempt timed out", outcome_unknown=True)
        return await self._after_error(item, company, error)

    async def _attempt(self, company: Company) -> bool:
        """Look, then send; ``True`` when YClients already had it (nothing sent)."""
        creds = await current_credentials(self._storage.companies, company, self._server_secret)
        if creds.reissued:
            await self._storage.audit.append(
                company.id, "credentials_reissued", {"which": list(creds.reissued)}
            )
        url = webhook_url(self._public_base_url, company.id, creds.webhook_secret)
        if await self._already_active(company.yclients_id, url):
            return True
        await self._api.send_activation_callback(
            company.yclients_id, self._application_id, creds.api_key, [url], CHANNELS
        )
        return False

    async def _already_active(self, salon_id: int, url: str) -> bool:
        try:
            installation = await self._api.get_installation(salon_id, self._application_id)
        except YClientsError as exc:
            log.info("salon %s: installation lookup failed (%s); sending", salon_id, exc)
            return False
        status = installation.get("connection_status")
        if not isinstance(status, dict) or status.get("status") != "active":
            return False
        urls = status.get("webhook_urls")
        return isinstance(urls, list) and url in urls

    async def _after_error(
        self, item: OutboxItem, company: Company, error: YClientsError
    ) -> AttemptOutcome:
        if isinstance(error, YClientsRejected | YClientsAuthError):
            message = rejection_message(error)
            return await self._fail(item, company, message, f"YClients refused: {message}")
        if isinstance(error, YClientsRateLimited):
            retry_in = error.retry_after + self._rng.uniform(0, self.policy.backoff_initial / 5)
        else:
            retry_in = self.policy.backoff(item.attempts + 1, self._rng)
        age = (self._wall() - item.created_at).total_seconds()
        if age + retry_in > self.policy.give_up_after:
            hours = self.policy.give_up_after / 3600
            message = f"YClients did not confirm the activation within {hours:g} h: {error}"
            return await self._fail(item, company, message, message)
        await self._storage.outbox.record_attempt(
            item.id, AttemptOutcome.RETRY, error=str(error), retry_in=retry_in
        )
        self._retried += 1
        log.info("company %s: activation retry in %.1f s: %s", company.id, retry_in, error)
        return AttemptOutcome.RETRY

    async def _fail(
        self, item: OutboxItem, company: Company, message: str, error: str
    ) -> AttemptOutcome:
        try:
            await self._tell(company.id, company_messages.ActivationRejected(message))
        except (ActorError, CompanyError) as exc:
            # The company must learn it; try the whole item again later.
            log.warning("company %s: could not record the rejection: %s", company.id, exc)
            await self._storage.outbox.record_attempt(
                item.id,
                AttemptOutcome.RETRY,
                error=error,
                retry_in=self.policy.backoff(1, self._rng),
            )
            self._retried += 1
            return AttemptOutcome.RETRY
        await self._storage.outbox.record_attempt(item.id, AttemptOutcome.FAILED, error=error)
        await self._storage.audit.append(
            company.id, "activation_failed", {"outbox_id": item.id, "error": message}
        )
        self._failed += 1
        log_event(
            BusinessEvent.ACTIVATION_FAILED,
            company.id,
            salon_id=company.yclients_id,
            attempts=item.attempts + 1,
            reason=message,
        )
        return AttemptOutcome.FAILED
