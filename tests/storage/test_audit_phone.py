"""Contract: one client's audit events (``AuditLog.for_phone``, issue 16's transcript) and each
listed client's last message (``MessageLog.latest_by_peer``) on the in-memory twin and on
PostgreSQL — only that company's and those phones'; and on PostgreSQL the reads go through
migration 0015's indexes."""

from __future__ import annotations

from typing import Any

import pytest

from storage import Storage, ValidationError
from tests.support.clock import FakeWallClock

ANNA, BORIS = "79005550001", "79005550002"


async def _company(storage: Storage, salon: int) -> int:
    return (await storage.companies.create(salon)).company.id


async def test_for_phone_is_one_clients_events_newest_first(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage, 1)
    other = await _company(storage, 2)
    await storage.audit.append(cid, "assistant.booked", {"phone": ANNA, "record_id": 1})
    wall.advance(1)
    await storage.audit.append(cid, "assistant.booked", {"phone": BORIS, "record_id": 2})
    await storage.audit.append(cid, "sync_requested", {"by": "admin"})
    await storage.audit.append(other, "assistant.booked", {"phone": ANNA, "record_id": 3})
    wall.advance(1)
    await storage.audit.append(cid, "conversation_mode_set", {"phone": ANNA, "mode": "handoff"})
    # a phone given as a number is not the same client's text phone
    await storage.audit.append(cid, "odd", {"phone": 79005550001})

    mine = await storage.audit.for_phone(cid, ANNA)
    assert [(e.event_type, e.company_id) for e in mine] == [
        ("conversation_mode_set", cid),
        ("assistant.booked", cid),
    ]
    assert mine[1].data == {"phone": ANNA, "record_id": 1}
    assert [e.data["record_id"] for e in await storage.audit.for_phone(cid, BORIS)] == [2]
    assert [e.data["record_id"] for e in await storage.audit.for_phone(other, ANNA)] == [3]
    assert [e.event_type for e in await storage.audit.for_phone(cid, ANNA, limit=1)] == [
        "conversation_mode_set"
    ]
    assert await storage.audit.for_phone(cid, "79990000000") == []
    assert await storage.audit.for_phone(424242, ANNA) == []


async def test_for_phone_returns_copies(storage: Storage) -> None:
    cid = await _company(storage, 1)
    await storage.audit.append(cid, "assistant.handoff", {"phone": ANNA, "reason": "asked"})
    [event] = await storage.audit.for_phone(cid, ANNA)
    event.data["reason"] = "changed"
    [again] = await storage.audit.for_phone(cid, ANNA)
    assert again.data["reason"] == "asked"


@pytest.mark.parametrize(("phone", "limit"), [(ANNA, 0), (ANNA, -1), ("7" * 33, 10), ("7\x00", 1)])
async def test_for_phone_refuses_bad_arguments(storage: Storage, phone: str, limit: int) -> None:
    cid = await _company(storage, 1)
    with pytest.raises(ValidationError):
        await storage.audit.for_phone(cid, phone, limit)


async def test_for_phone_reads_its_index_on_postgresql(real_storage: Storage) -> None:
    """20,000 events of 1,000 clients (and some with no phone): one client's page is read
    through migration 0015's index in order, no sort, even under the generic plan asyncpg's
    cached statement gets after five runs."""
    import storage._pg_db as pg_db

    cid = await _company(real_storage, 1)
    await real_storage.audit.append(cid, "assistant.booked", {"phone": ANNA})
    pool = real_storage.pg
    assert pool is not None
    sql = pg_db.PgAuditLog.PHONE_EVENTS

    async def plan(conn: Any) -> str:
        await conn.execute(
            """INSERT INTO marketplace_events (company_id, event_type, data)
               SELECT $1, 'assistant.handoff',
                      CASE WHEN g % 10 = 0 THEN '{}'::jsonb
                           ELSE jsonb_build_object('phone', (79000000000 + g % 1000)::text) END
               FROM generate_series(1, 20000) g""",
            cid,
        )
        await conn.execute("ANALYZE marketplace_events")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            await conn.execute(f"PREPARE by_phone AS {sql}")
            text = "\n".join(
                r[0]
                # our own constants: EXPLAIN EXECUTE takes no bound parameters
                for r in await conn.fetch(
                    f"EXPLAIN (COSTS OFF) EXECUTE by_phone({cid}, '{ANNA}', 50)"
                )
            )
            await conn.execute("DEALLOCATE by_phone")
            return text
        finally:
            await conn.execute("RESET plan_cache_mode")

    found = await pool.run(plan)  # type: ignore[arg-type]
    assert "idx_marketplace_events_phone" in found and "Sort" not in found, found
    assert [e.data for e in await real_storage.audit.for_phone(cid, ANNA)] == [{"phone": ANNA}]


async def test_latest_by_peer_is_each_clients_last_message(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage, 1)
    other = await _company(storage, 2)
    assert await storage.messages.latest_by_peer(cid, []) == {}
    await storage.messages.record_inbound(cid, "wa-1", ANNA, "Здравствуйте")
    wall.advance(1)
    await storage.messages.record_inbound(cid, "wa-2", BORIS, "Борис тут")
    wall.advance(1)
    reply = await storage.messages.record_outbound(cid, ANNA, "Добрый день!")
    await storage.messages.record_inbound(other, "wa-3", ANNA, "в другой салон")
    latest = await storage.messages.latest_by_peer(cid, [ANNA, BORIS, "79990000000", ANNA])
    assert set(latest) == {ANNA, BORIS}
    assert (latest[ANNA].id, latest[ANNA].direction, latest[ANNA].text) == (
        reply.id,
        "out",
        "Добрый день!",
    )
    assert (latest[BORIS].direction, latest[BORIS].text) == ("in", "Борис тут")
    only = await storage.messages.latest_by_peer(other, [ANNA, BORIS])
    assert [(p, m.text) for p, m in only.items()] == [(ANNA, "в другой салон")]


@pytest.mark.parametrize("phones", [ANNA, ["7" * 33], ["79005550001"] * 501])
async def test_latest_by_peer_refuses_bad_phones(storage: Storage, phones: Any) -> None:
    cid = await _company(storage, 1)
    with pytest.raises(ValidationError):
        await storage.messages.latest_by_peer(cid, phones)


async def test_latest_by_peer_reads_its_index_on_postgresql(real_storage: Storage) -> None:
    """20,000 messages with 1,000 clients: each asked phone is one probe of migration 0015's
    index (newest first, no sort), even under the generic plan."""
    import storage._pg_db as pg_db

    cid = await _company(real_storage, 1)
    pool = real_storage.pg
    assert pool is not None
    sql = pg_db._LATEST_BY_PEER

    async def plan(conn: Any) -> str:
        await conn.execute(
            """INSERT INTO messages (company_id, direction, peer_phone, text, status)
               SELECT $1, 'in', (79000000000 + g % 1000)::text, 'привет', 'received'
               FROM generate_series(1, 20000) g""",
            cid,
        )
        await conn.execute("ANALYZE messages")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            await conn.execute(f"PREPARE latest AS {sql}")
            # our own constants: EXPLAIN EXECUTE takes no bound parameters
            query = f"EXPLAIN (COSTS OFF) EXECUTE latest({cid}, ARRAY['{ANNA}', '{BORIS}'])"
            text = "\n".join(r[0] for r in await conn.fetch(query))
            await conn.execute("DEALLOCATE latest")
            return text
        finally:
            await conn.execute("RESET plan_cache_mode")

    found = await pool.run(plan)  # type: ignore[arg-type]
    assert "idx_messages_peer_recent" in found and "Sort" not in found, found
    latest = await real_storage.messages.latest_by_peer(cid, [ANNA, "79000000001"])
    assert list(latest) == ["79000000001"]
