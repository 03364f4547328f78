"""Revoked salon page sessions: ``salon:session:{id}:revoked``, kept until the cookie expires.

The salon page's cookie is stateless (``web/_salon_session.py``), so logging out cannot take
back a copy of it. Logging out therefore records the session id here for as long as any copy
could still pass the cookie's own expiry checks (the TTL the caller gives); every cookie check
asks :meth:`~storage.SalonSessions.is_revoked`. On Redis the record is one key with that TTL
under the node's key prefix, so every process sharing the Redis sees it; the in-memory twin
keeps it in :class:`~storage._memory_kv.MemoryKeyValue` (its monotonic clock drives expiry).

Errors: a malformed session id raises :class:`~storage.ValidationError`, a non-positive TTL
too; Redis failures are :class:`~storage.StorageUnavailable` / :class:`~storage.StorageTimeout`
as for every Redis store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from . import _validate as v
from ._errors import ValidationError

if TYPE_CHECKING:
    from ._memory_kv import MemoryKeyValue
    from ._redis import RedisBackend

__all__ = ["MAX_SESSION_ID", "MemorySalonSessions", "RedisSalonSessions", "revoked_key"]

#: The longest session id accepted (ours are 24 characters).
MAX_SESSION_ID = 128


def check_session_id(session_id: object) -> str:
    """A session id: 1–:data:`MAX_SESSION_ID` characters of text without NUL."""
    checked = v.text("session_id", session_id, MAX_SESSION_ID)
    if not checked:
        raise ValidationError("session_id", "must not be empty")
    return checked


def revoked_key(prefix: str, session_id: str) -> str:
    """The key recording that ``session_id`` was logged out."""
    return f"{prefix}salon:session:{session_id}:revoked"


class MemorySalonSessions:
    """:class:`~storage.SalonSessions` in memory (one process)."""

    def __init__(self, kv: MemoryKeyValue) -> None:
        self._kv = kv

    async def revoke(self, session_id: str, ttl: float) -> None:
        await trio.lowlevel.checkpoint()
        key = revoked_key(self._kv.prefix, check_session_id(session_id))
        self._kv.set(key, 1, v.positive_seconds("ttl", ttl))

    async def is_revoked(self, session_id: str) -> bool:
        await trio.lowlevel.checkpoint()
        return self._kv.get(revoked_key(self._kv.prefix, check_session_id(session_id))) is not None


class RedisSalonSessions:
    """:class:`~storage.SalonSessions` on Redis: ``SET … PX`` to revoke, ``EXISTS`` to check
    (one round trip each)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend

    async def revoke(self, session_id: str, ttl: float) -> None:
        key = revoked_key(self._b.prefix, check_session_id(session_id))
        ttl_ms = max(1, int(v.positive_seconds("ttl", ttl) * 1000))
        await self._b.call(self._b.client.set(key, "1", px=ttl_ms))

    async def is_revoked(self, session_id: str) -> bool:
        key = revoked_key(self._b.prefix, check_session_id(session_id))
        found: int = await self._b.call(self._b.client.exists([key]))
        return found > 0
