"""Contract: retention deletes audit events (``marketplace_events``) older than their own
cutoff, oldest first in bounded batches, on both backends; without that cutoff they stay
(issue 17). The retention service passes ``AIADMIN_AUDIT_RETENTION_DAYS`` (default 180)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors._retention import DAY, RetentionService
from config import settings_from_env
from storage import Storage, ValidationError, open_storage
from tests.support.clock import FakeWallClock

KEEP = 30 * DAY
AUDIT_KEEP = 180 * DAY


async def _events(storage: Storage, company: int | None, kind: str, count: int) -> None:
    for n in range(count):
        await storage.audit.append(company, kind, {"n": n})


async def test_old_audit_events_go_oldest_first_and_recent_ones_stay(
    storage: Storage, wall: FakeWallClock
) -> None:
    a = (await storage.companies.create(1)).company.id
    b = (await storage.companies.create(2)).company.id
    await _events(storage, a, "oldest", 2)
    await _events(storage, None, "node_event", 1)  # an event of no company goes the same way
    wall.advance(10 * DAY)
    await _events(storage, b, "old", 2)
    await _events(storage, a, "old", 1)
    wall.advance(100 * DAY)
    await _events(storage, a, "recent", 2)
    wall.advance(75 * DAY)  # the first three are 185 days old, the next three 175, the last 75
    # Without the audit cutoff nothing of the audit log goes, whatever its age.
    assert (await storage.retention.prune(KEEP)).audit == 0
    assert len(await storage.audit.recent(a, 50)) == 5

    first = await storage.retention.prune(KEEP, limit=2, audit_older_than=AUDIT_KEEP)
    assert first.audit == 2 and first.full(2)
    assert [e.event_type for e in await storage.audit.recent(a, 50)] == ["recent"] * 2 + ["old"]
    second = await storage.retention.prune(KEEP, limit=2, audit_older_than=AUDIT_KEEP)
    assert second.audit == 1 and not second.full(2)  # the node's event; the rest is younger
    assert (await storage.retention.prune(KEEP, audit_older_than=AUDIT_KEEP)).audit == 0
    assert len(await storage.audit.recent(b, 50)) == 2

    wall.advance(10 * DAY)  # now the three "old" ones are 185 days old too
    assert (await storage.retention.prune(KEEP, audit_older_than=AUDIT_KEEP)).audit == 3
    assert await storage.audit.recent(b, 50) == []
    kept = await storage.audit.recent(a, 50)
    assert [e.event_type for e in kept] == ["recent", "recent"]
    # the log still takes new events, and reads them with the kept ones
    await storage.audit.append(b, "new", {})
    assert [e.event_type for e in await storage.audit.recent(b, 50)] == ["new"]


async def test_audit_cutoff_is_checked(storage: Storage) -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValidationError):
            await storage.retention.prune(KEEP, audit_older_than=bad)


async def test_postgres_audit_prune_reads_the_time_index(real_storage: Storage) -> None:
    """20,000 audit events, ten of them past the cutoff: a prune batch finds those through
    the (created_at, id) index of migration 0014, not by scanning the log."""
    import storage._retention as retention

    assert real_storage.pg is not None

    async def plan(conn: Any) -> str:
        company = await conn.fetchval(
            "INSERT INTO companies (yclients_id, integration_status) VALUES (99002, 'active') "
            "RETURNING id"
        )
        await conn.execute(
            """INSERT INTO marketplace_events (company_id, event_type, created_at)
               SELECT $1, 'assistant.booked',
                      TIMESTAMPTZ '2026-06-04 10:20Z' + g * INTERVAL '10 min'
                 FROM generate_series(0, 19999) g""",
            company,
        )
        await conn.execute("ANALYZE marketplace_events")
        rows = await conn.fetch(
            "EXPLAIN (COSTS OFF) " + retention._AUDIT_SQL,
            dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
            180 * DAY,  # the cutoff: 2026-06-04 12:00, after the first ten events
            500,
        )
        return "\n".join(r[0] for r in rows)

    found: str = await real_storage.pg.run(plan)  # type: ignore[arg-type]
    assert "idx_marketplace_events_created" in found, found
    assert "Seq Scan on marketplace_events" not in found, found


async def test_the_service_prunes_audit_events_on_their_own_retention(
    autojump_clock: MockClock,
) -> None:
    epoch = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def wall() -> dt.datetime:
        return epoch + dt.timedelta(seconds=trio.current_time())

    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage:
        company = (await storage.companies.create(1)).company.id
        await _events(storage, company, "old", 3)
        await trio.sleep(100 * DAY)
        await _events(storage, company, "newer", 2)
        await trio.sleep(81 * DAY)  # 181 and 81 days old: past 30 days both, 180 only the first
        service = RetentionService(storage, keep_days=30, audit_keep_days=180, batch=2)
        assert await service.prune() == 3
        assert [e.event_type for e in await storage.audit.recent(company)] == ["newer"] * 2
        # a service without the audit retention keeps the audit log whole
        await trio.sleep(200 * DAY)
        assert await RetentionService(storage, keep_days=30).prune() == 0
        assert len(await storage.audit.recent(company)) == 2
    with pytest.raises(ValueError):
        RetentionService(storage, keep_days=30, audit_keep_days=0)


def test_the_setting_defaults_to_180_days_and_stays_above_the_results_span() -> None:
    assert settings_from_env({}, dotenv=None).audit_retention_days == 180.0
    env = {"AIADMIN_AUDIT_RETENTION_DAYS": "365"}
    assert settings_from_env(env, dotenv=None).audit_retention_days == 365.0
    with pytest.raises(Exception, match="AIADMIN_AUDIT_RETENTION_DAYS"):
        settings_from_env({"AIADMIN_AUDIT_RETENTION_DAYS": "30"}, dotenv=None)
