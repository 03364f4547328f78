"""Re-planning a salon's visits after its reminder settings changed: a service of the node's
supervision tree (child :data:`REPLAN_CHILD`).

The settings route stores a change and calls :meth:`ReminderReplanner.request`, which never
blocks: a salon with thousands of upcoming visits takes seconds to re-plan (two small queries
per visit), too long for the request. The service then runs
:meth:`ReminderPlanner.replan_company` for each requested salon, at most ``concurrency`` salons
at once. A salon requested again while it is being re-planned is re-planned once more after
(the second change may have come after its settings were read); requests for a salon that is
waiting coalesce into one.

A failure (storage unavailable) is logged and counted in
``aiadmin_reminders_replans_total{result="failed"}``; the settings change itself stays stored,
the rows planned before stay as they were, and the scheduler still checks "kind switched off"
and "quiet hours" when it claims a row; the next periodic sync of the salon's visits plans them
with the new settings. A request is kept in memory only: one lost by a process that stops
before handling it is covered by that sync too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio

from metrics import MetricsRegistry

from ._planner import ReminderPlanner

__all__ = ["PLANNING_FIELDS", "REPLAN_CHILD", "ReminderReplanner", "affects_planning"]

log = logging.getLogger(__name__)

#: The settings (their JSON names) that decide when each message is due or whether it goes:
#: a change of one of them re-plans the salon's visits. Texts and the review link are read
#: when a message is sent.
PLANNING_FIELDS = frozenset(
    {
        "day_before_enabled",
        "day_before_at",
        "two_hours_enabled",
        "two_hours_before_minutes",
        "quiet_start",
        "quiet_end",
        "reviews_enabled",
        "review_after_minutes",
    }
)


def affects_planning(changed: Iterable[str]) -> bool:
    """Whether a change of these settings (JSON names, texts as ``texts.<kind>``) moves or
    switches messages, so the salon's planned visits must be planned again."""
    return not PLANNING_FIELDS.isdisjoint(changed)


#: The re-planning service's child id in the node's tree.
REPLAN_CHILD = "reminders.replan"


class ReminderReplanner:
    """Re-plans salons' stored visits in the background (see the module docstring); a
    ``runtime.Service`` whose ``run`` never returns. Pending requests live on the object, so a
    restarted ``run`` (the tree keeps the object) picks them up."""

    def __init__(
        self,
        planner: ReminderPlanner,
        *,
        concurrency: int = 2,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.planner = planner
        self._concurrency = concurrency
        self._requested: dict[int, None] = {}  # ordered set
        self._running: set[int] = set()
        self._wake = trio.Event()
        self._waiters: list[trio.Event] = []
        registry = metrics or MetricsRegistry()
        self._runs = registry.counter(
            "aiadmin_reminders_replans_total",
            "Salons whose stored visits were planned again after a settings change, by result",
            ("result",),
        )

    def __repr__(self) -> str:
        return f"<ReminderReplanner running={len(self._running)} queued={len(self._requested)}>"

    @property
    def busy(self) -> bool:
        """Whether a salon waits or is being re-planned."""
        return bool(self._requested or self._running)

    def request(self, company_id: int) -> None:
        """Re-plan this salon's stored visits soon (never blocks)."""
        self._requested[company_id] = None
        self._wake.set()

    async def settled(self) -> None:
        """Wait until nothing waits or runs (tests, tools)."""
        while self.busy:
            event = trio.Event()
            self._waiters.append(event)
            await event.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        limiter = trio.CapacityLimiter(self._concurrency)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                for company_id in list(self._requested):
                    if company_id in self._running:
                        continue  # again once the running one ends
                    del self._requested[company_id]
                    self._running.add(company_id)
                    nursery.start_soon(self._replan, company_id, limiter)

    async def _replan(self, company_id: int, limiter: trio.CapacityLimiter) -> None:
        done = False
        try:
            async with limiter:
                await self._replan_one(company_id)
            done = True
        finally:
            self._running.discard(company_id)
            if not done:  # cancelled (the service restarts or stops): keep the request
                self._requested.setdefault(company_id, None)
            if company_id in self._requested:
                self._wake.set()
            self._notify()

    async def _replan_one(self, company_id: int) -> None:
        try:
            company = await self.planner.storage.companies.get(company_id)
            if company is None:
                self._runs.labels("no_company").inc()
                return
            count = await self.planner.replan_company(company)
        except Exception:
            self._runs.labels("failed").inc()
            log.exception(
                "company %s: visits not planned again after a settings change "
                "(the next visit sync plans them)",
                company_id,
            )
            return
        self._runs.labels("ok").inc()
        log.info("company %s: %d visits planned again after a settings change", company_id, count)

    def _notify(self) -> None:
        if self.busy:
            return
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()
