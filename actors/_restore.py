"""The start-up restore of linked companies, run in the background of a running node.

The node serves at once; this activates every company whose WhatsApp is linked (its actor
restores the session) a bounded number at a time, and keeps its progress for
``/health/ready``. A salon asked for before its turn is activated by that first message (the
registry activates on first message, at most one actor per key); the restore then finds it
running and counts it as restored without a second activation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from runtime import ActorUnavailable, Registry
from storage import CompanyStatus, Storage, StorageError, StorageTimeout, StorageUnavailable

log = logging.getLogger(__name__)

#: Companies read from storage per query while listing what to restore.
RESTORE_PAGE = 500
#: The first and the longest pause before listing again after storage could not be read.
LIST_RETRY_INITIAL = 0.5
LIST_RETRY_MAX = 30.0


@dataclass
class RestoreProgress:
    """How far the start-up restore is: ``total`` linked companies listed so far, of which
    ``restored`` run here, ``elsewhere`` belong to another node (cluster mode) and ``failed``
    could not be activated; ``done`` once every one was tried."""

    total: int = 0
    restored: int = 0
    failed: int = 0
    elsewhere: int = 0
    listed: bool = False
    done: bool = False
    finished: trio.Event = field(default_factory=trio.Event, repr=False)

    def finish(self) -> None:
        """Mark the restore complete (also a node started without one)."""
        self.listed = True
        self.done = True
        self.finished.set()

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "restored": self.restored,
            "total": self.total,
            "failed": self.failed,
            "elsewhere": self.elsewhere,
        }


@dataclass
class Restore:
    """One node's start-up restore (see the module's docstring).

    ``place`` is the node's placement (``None``: the company belongs here); ``after`` runs
    for every company restored here once its actor has started (the assistant's
    ``wake_pending``).
    """

    storage: Storage
    registry: Registry[int]
    place: Callable[[int], Awaitable[str | None]]
    concurrency: int
    after: Callable[[int], Awaitable[object]] | None = None
    #: Cluster mode: takes the listed companies' claims in batches before they are activated
    #: one by one (``Placement.take_many``).
    prepare: Callable[[list[int]], Awaitable[object]] | None = None
    progress: RestoreProgress = field(default_factory=RestoreProgress)

    async def run(self) -> int:
        """Restore every linked company, then reset the ones a previous node left in
        ``linking`` (activated, not counted: the actor's start resets them to ``pending``, or
        ``logged_out`` if they hold a device); returns how many were restored here."""
        progress = self.progress
        limiter = trio.CapacityLimiter(self.concurrency)
        linked = await self._list(self._linked_page)
        progress.listed = True
        if self.prepare is not None and linked:
            await self.prepare(linked)
        async with trio.open_nursery() as nursery:
            for company_id in linked:
                await limiter.acquire_on_behalf_of(company_id)
                nursery.start_soon(self._restore_one, company_id, limiter)
        interrupted = await self._list(self._linking_page, count=False)
        async with trio.open_nursery() as nursery:
            for company_id in interrupted:
                await limiter.acquire_on_behalf_of(company_id)
                nursery.start_soon(self._reset_one, company_id, limiter)
        progress.finish()
        log.info(
            "restore done: %d of %d linked companies restored here (%d elsewhere, %d failed)",
            progress.restored,
            progress.total,
            progress.elsewhere,
            progress.failed,
        )
        return progress.restored

    async def _list(
        self, page: Callable[[int], Awaitable[list[int]]], *, count: bool = True
    ) -> list[int]:
        """Every id ``page`` yields, a page at a time (retried with backoff while storage
        cannot be read: the node stays not ready meanwhile)."""
        ids: list[int] = []
        after = 0
        delay = LIST_RETRY_INITIAL
        while True:
            try:
                found = await page(after)
            except (StorageUnavailable, StorageTimeout) as exc:
                log.warning("restore: companies not listed (retrying in %gs): %s", delay, exc)
                await trio.sleep(delay)
                delay = min(delay * 2, LIST_RETRY_MAX)
                continue
            delay = LIST_RETRY_INITIAL
            if not found:
                return ids
            ids.extend(found)
            if count:
                self.progress.total += len(found)
            after = found[-1]

    async def _linked_page(self, after: int) -> list[int]:
        page = await self.storage.companies.list_linked(limit=RESTORE_PAGE, after_id=after)
        return [company.id for company in page]

    async def _linking_page(self, after: int) -> list[int]:
        page = await self.storage.companies.list_by_status(
            CompanyStatus.LINKING, limit=RESTORE_PAGE, after_id=after
        )
        return [company.id for company in page]

    async def _restore_one(self, company_id: int, limiter: trio.CapacityLimiter) -> None:
        """Place, activate (at once if a request already did) and follow up one company;
        its limiter token is released when done, whatever happened."""
        try:
            await self._restore(company_id)
        finally:
            limiter.release_on_behalf_of(company_id)

    async def _restore(self, company_id: int) -> None:
        progress = self.progress
        try:
            if await self.place(company_id) is not None:
                progress.elsewhere += 1  # another node owns it and restores it
                return
            await self.registry.activate(company_id)
        except (ActorUnavailable, StorageError) as exc:
            progress.failed += 1
            log.warning("company %s could not be restored: %s", company_id, exc)
            return
        except Exception:  # a bug in one company's start must not stop the others'
            progress.failed += 1
            log.exception("company %s could not be restored", company_id)
            return
        progress.restored += 1
        if self.after is None:
            return
        try:
            await self.after(company_id)
        except Exception:
            log.exception("company %s: restored, but its follow-up failed", company_id)

    async def _reset_one(self, company_id: int, limiter: trio.CapacityLimiter) -> None:
        try:
            if await self.place(company_id) is None:
                await self.registry.activate(company_id)
        except (ActorUnavailable, StorageError) as exc:
            log.warning("company %s: interrupted linking not reset: %s", company_id, exc)
        except Exception:
            log.exception("company %s: interrupted linking not reset", company_id)
        finally:
            limiter.release_on_behalf_of(company_id)
