"""Contract: revoked salon page sessions (in-memory twin and Redis) — recorded, seen by every
process sharing the store, kept under the key prefix with the TTL asked for, then gone."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from storage import Storage, ValidationError, open_storage
from storage._salon_sessions import revoked_key
from tests.support.databases import open_real_storage

SESSION = "Qm9uam91ci1zYWxvbi0x"
OTHER = "YW5vdGhlci1zZXNzaW9u"
HOUR = 3600.0


async def ttl_of(storage: Storage, session_id: str) -> float | None:
    """Seconds the revocation record of ``session_id`` has left (``None``: no record)."""
    if storage.redis is not None:
        key = revoked_key(storage.redis.prefix, session_id)
        left_ms = await storage.redis.client.pttl(key)
        return None if left_ms < 0 else left_ms / 1000
    assert storage.memory_kv is not None
    return storage.memory_kv.ttl(revoked_key(storage.memory_kv.prefix, session_id))


async def test_a_revoked_session_is_revoked_and_no_other(storage: Storage) -> None:
    assert not await storage.salon_sessions.is_revoked(SESSION)
    await storage.salon_sessions.revoke(SESSION, 12 * HOUR)
    assert await storage.salon_sessions.is_revoked(SESSION)
    assert not await storage.salon_sessions.is_revoked(OTHER)


async def test_the_record_lives_for_the_ttl_asked(storage: Storage) -> None:
    await storage.salon_sessions.revoke(SESSION, 11 * HOUR + 61)
    left = await ttl_of(storage, SESSION)
    assert left is not None
    assert 11 * HOUR + 55 <= left <= 11 * HOUR + 61
    # Asked again, the TTL is set again (not added to).
    await storage.salon_sessions.revoke(SESSION, 90)
    left = await ttl_of(storage, SESSION)
    assert left is not None and 85 <= left <= 90


async def test_the_key_is_under_the_prefix(storage: Storage) -> None:
    await storage.salon_sessions.revoke(SESSION, HOUR)
    if storage.redis is not None:
        keys = [k async for k in storage.redis.client.scan_iter(match=f"{storage.redis.prefix}*")]
        assert keys == [f"{storage.redis.prefix}salon:session:{SESSION}:revoked"]
    else:
        assert storage.memory_kv is not None
        key = f"{storage.memory_kv.prefix}salon:session:{SESSION}:revoked"
        assert storage.memory_kv.get(key) is not None


async def test_the_memory_record_expires_with_its_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The twin's expiry follows its clock (here trio's, jumped: nothing sleeps for real)."""
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        await storage.salon_sessions.revoke(SESSION, 120)
        await trio.sleep(119)
        assert await storage.salon_sessions.is_revoked(SESSION)
        await trio.sleep(1)
        assert not await storage.salon_sessions.is_revoked(SESSION)
        assert await ttl_of(storage, SESSION) is None


async def test_refused_arguments(storage: Storage) -> None:
    for bad_id in ["", "a\x00b", "\ud800", "x" * 129]:
        with pytest.raises(ValidationError):
            await storage.salon_sessions.revoke(bad_id, HOUR)
        with pytest.raises(ValidationError):
            await storage.salon_sessions.is_revoked(bad_id)
    for bad_ttl in [0, -1.0, float("nan"), float("inf")]:
        with pytest.raises(ValidationError):
            await storage.salon_sessions.revoke(SESSION, bad_ttl)
    assert not await storage.salon_sessions.is_revoked(SESSION)


async def test_a_revocation_is_seen_by_another_process(
    database_url: str, redis_prefix: str
) -> None:
    """Two storages over one Redis prefix (two processes of a cluster)."""
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as first,
        open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False) as second,
    ):
        assert not await second.salon_sessions.is_revoked(SESSION)
        await first.salon_sessions.revoke(SESSION, HOUR)
        assert await second.salon_sessions.is_revoked(SESSION)
