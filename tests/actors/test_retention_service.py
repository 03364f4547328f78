"""The retention service (``actors._retention``) on in-memory storage under trio's mock clock:
old finished rows deleted at start and then every interval, in batches, pending work kept;
the node runs it as ``storage.retention`` with ``AIADMIN_RETENTION_DAYS``."""

from __future__ import annotations

import datetime as dt

import pytest
import trio
from trio.testing import MockClock

from actors import Services
from actors._retention import DAY, RetentionService
from actors._services import RETENTION_SERVICE
from config import settings_from_env
from storage import Storage, open_storage

EPOCH = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def wall() -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=trio.current_time())


async def _finished_events(storage: Storage, company: int, prefix: str, count: int) -> None:
    for n in range(count):
        await storage.inbox.put(company, f"{prefix}{n}", "handled", {})
    for event in await storage.inbox.claim_for_company(company, 100, lease=5, prefix="handled"):
        await storage.inbox.mark_done(event.id)


async def test_prunes_at_start_and_every_interval_in_batches(
    autojump_clock: MockClock,
) -> None:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage:
        company = (await storage.companies.create(1)).company.id
        await _finished_events(storage, company, "old", 5)
        await storage.inbox.put(company, "waiting", "record", {})  # pending: never deleted
        await trio.sleep(3 * DAY)
        service = RetentionService(storage, keep_days=2, interval=DAY, batch=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await trio.sleep(1)
            assert (service.passes, service.deleted) == (1, 5)  # three calls: 2 + 2 + 1
            await _finished_events(storage, company, "new", 3)
            await trio.sleep(DAY)  # the new ones are one day old: kept
            assert (service.passes, service.deleted) == (2, 5)
            await trio.sleep(2 * DAY)
            assert (service.passes, service.deleted) == (4, 8)
            nursery.cancel_scope.cancel()
        assert await storage.inbox.pending_count() == 1


def test_refuses_nonsense_and_is_a_node_child() -> None:
    with pytest.raises(ValueError):
        RetentionService(None, keep_days=0)  # type: ignore[arg-type]
    service = RetentionService(None, keep_days=30)  # type: ignore[arg-type]
    assert (RETENTION_SERVICE, service) in Services(retention=service).children()
    assert settings_from_env({}, dotenv=None).retention_days == 30.0
    assert settings_from_env({"AIADMIN_RETENTION_DAYS": "7"}, dotenv=None).retention_days == 7.0
    with pytest.raises(Exception, match="AIADMIN_RETENTION_DAYS"):
        settings_from_env({"AIADMIN_RETENTION_DAYS": "0"}, dotenv=None)
