"""In-memory twins of the Redis stores: tokens, QR codes, rate limits, leases, pub/sub.

Expiry uses an injectable monotonic clock (default :func:`time.monotonic`, so it works outside
trio as well; tests pass ``trio.current_time`` to drive it with ``MockClock``). Expired entries
are invisible at once and swept from memory at most every five minutes, lazily, on access.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import trio

from . import _keys
from . import _validate as v
from ._models import BackendHealth, QrCode, RateDecision

MonoClock = Callable[[], float]


class MemoryKeyValue:
    """A dict with per-key expiry; the shared state of the memory KV twins."""

    def __init__(self, clock: MonoClock = time.monotonic, prefix: str = "") -> None:
        self.clock = clock
        self.prefix = prefix
        self._data: dict[str, tuple[Any, float]] = {}
        self._last_sweep = clock()
        self.channels: dict[str, set[trio.MemorySendChannel[Any]]] = {}

    def _maybe_sweep(self, now: float) -> None:
        if now - self._last_sweep >= _keys.SWEEP_EVERY:
            self.sweep()

    def sweep(self) -> int:
        """Drop every expired entry now; returns how many were dropped."""
        now = self.clock()
        self._last_sweep = now
        stale = [k for k, (_, expires) in self._data.items() if expires <= now]
        for key in stale:
            del self._data[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Any:
        now = self.clock()
        self._maybe_sweep(now)
        entry = self._data.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def ttl(self, key: str) -> float | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        left = entry[1] - self.clock()
        return left if left > 0 else None

    def set(self, key: str, value: Any, ttl: float) -> None:
        now = self.clock()
        self._maybe_sweep(now)
        self._data[key] = (value, now + ttl)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def ping(self) -> BackendHealth:
        await trio.lowlevel.checkpoint()
        return BackendHealth(name="redis", kind="memory", ok=True, latency_ms=0.0)


class MemoryConnectTokens:
    """:class:`ConnectTokens` in memory."""

    def __init__(self, kv: MemoryKeyValue) -> None:
        self._kv = kv

    async def issue(self, company_id: int, *, ttl: float = _keys.TOKEN_TTL) -> str:
        await trio.lowlevel.checkpoint()
        v.positive_int("company_id", company_id)
        seconds = v.positive_seconds("ttl", ttl)
        token = secrets.token_urlsafe(32)
        company_key = _keys.company_token_key(self._kv.prefix, company_id)
        old = self._kv.get(company_key)
        if old is not None:
            self._kv.delete(_keys.token_key(self._kv.prefix, old))
        self._kv.set(_keys.token_key(self._kv.prefix, token), company_id, seconds)
        self._kv.set(company_key, token, seconds)
        return token

    async def resolve(self, token: str) -> int | None:
        await trio.lowlevel.checkpoint()
        checked = _keys.check_token(token)
        if checked is None:
            return None
        value = self._kv.get(_keys.token_key(self._kv.prefix, checked))
        return None if value is None else int(value)

    async def current(self, company_id: int) -> str | None:
        await trio.lowlevel.checkpoint()
        value = self._kv.get(_keys.company_token_key(self._kv.prefix, company_id))
        return None if value is None else str(value)

    async def revoke(self, company_id: int) -> None:
        await trio.lowlevel.checkpoint()
        company_key = _keys.company_token_key(self._kv.prefix, company_id)
        old = self._kv.get(company_key)
        if old is not None:
            self._kv.delete(_keys.token_key(self._kv.prefix, old))
        self._kv.delete(company_key)


class MemoryQrCodes:
    """:class:`QrCodes` in memory."""

    def __init__(self, kv: MemoryKeyValue) -> None:
        self._kv = kv

    async def put(
        self,
        company_id: int,
        qr: str,
        *,
        ttl: float = _keys.QR_TTL,
        generated_at: float | None = None,
        incarnation: str = "",
    ) -> QrCode:
        await trio.lowlevel.checkpoint()
        v.positive_int("company_id", company_id)
        code = replace(
            _keys.new_qr_code(qr, ttl, generated_at),
            incarnation=v.text("incarnation", incarnation, 255),
        )
        self._kv.set(_keys.qr_key(self._kv.prefix, company_id), code, code.lifetime)
        return code

    async def get(self, company_id: int) -> QrCode | None:
        await trio.lowlevel.checkpoint()
        value = self._kv.get(_keys.qr_key(self._kv.prefix, company_id))
        return value if isinstance(value, QrCode) else None

    async def clear(self, company_id: int) -> None:
        await trio.lowlevel.checkpoint()
        self._kv.delete(_keys.qr_key(self._kv.prefix, company_id))


class MemoryRateLimiter:
    """:class:`RateLimiter` in memory (fixed windows, same semantics as the Lua script)."""

    def __init__(self, kv: MemoryKeyValue) -> None:
        self._kv = kv

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        await trio.lowlevel.checkpoint()
        key, limit, window = _keys.check_rate_args(key, limit, window)
        name = _keys.rate_key(self._kv.prefix, key)
        count = self._kv.get(name)
        if count is None:
            count = 0
            self._kv.set(name, 0, window)
        count += 1
        ttl = self._kv.ttl(name) or window
        self._kv.set(name, count, ttl)
        return _decision(count, limit, ttl)

    async def reset(self, key: str) -> None:
        await trio.lowlevel.checkpoint()
        self._kv.delete(_keys.rate_key(self._kv.prefix, key))


def _decision(count: int, limit: int, ttl: float) -> RateDecision:
    """Shared by both backends: ``count`` hits so far in a window with ``ttl`` seconds left."""
    if count <= limit:
        return RateDecision(allowed=True, remaining=limit - count, retry_after=0.0)
    # Round up to milliseconds so a client waiting retry_after never arrives early.
    return RateDecision(allowed=False, remaining=0, retry_after=math.ceil(ttl * 1000) / 1000)


class MemoryLeases:
    """:class:`Leases` in memory (one process: the embedded default, and the tests' twin;
    membership expires on the store's clock)."""

    def __init__(self, kv: MemoryKeyValue) -> None:
        self._kv = kv
        self._member_prefix = _keys.member_key_prefix(kv.prefix)
        #: ``members``: node ids that heartbeat (dropped once their key expired).
        self._nodes: set[str] = set()
        #: ``members:draining``: members handing their salons over (not listed as live).
        self._draining: set[str] = set()

    def _key(self, company_id: int) -> str:
        return _keys.owner_key(self._kv.prefix, v.positive_int("company_id", company_id))

    def _live(self) -> dict[str, str]:
        live: dict[str, str] = {}
        for node in sorted(self._nodes):
            address = self._kv.get(self._member_prefix + node)
            if address is None:
                self._nodes.discard(node)
                self._draining.discard(node)
            elif node not in self._draining:
                live[node] = str(address)
        return live

    def _is_member(self, node: str) -> bool:
        return self._kv.get(self._member_prefix + node) is not None

    async def heartbeat(
        self, node: str, address: str, ttl: float, *, renew: bool = False, draining: bool = False
    ) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        node = _keys.check_node(node)
        address = v.text("address", address, 2048)
        ttl = v.positive_seconds("ttl", ttl)
        if not renew or self._is_member(node):
            self._kv.set(self._member_prefix + node, address, ttl)
            self._nodes.add(node)
            if draining:
                self._draining.add(node)
            else:
                self._draining.discard(node)
        return self._live()

    async def members(self) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        return self._live()

    async def leave(self, node: str) -> bool:
        await trio.lowlevel.checkpoint()
        node = _keys.check_node(node)
        was = self._is_member(node)
        self._kv.delete(self._member_prefix + node)
        self._nodes.discard(node)
        self._draining.discard(node)
        return was

    async def claim(self, company_id: int, node: str) -> str | None:
        await trio.lowlevel.checkpoint()
        key = self._key(company_id)
        node = _keys.check_node(node)
        if not self._is_member(node):
            return None
        holder = self._kv.get(key)
        if holder is None or holder == node or not self._is_member(str(holder)):
            self._kv.set(key, node, math.inf)
            return node
        return str(holder)

    async def claim_many(self, company_ids: Sequence[int], node: str) -> dict[int, str] | None:
        await trio.lowlevel.checkpoint()
        keys = {company_id: self._key(company_id) for company_id in company_ids}
        node = _keys.check_node(node)
        if not self._is_member(node):
            return None
        holders: dict[int, str] = {}
        for company_id, key in keys.items():
            holder = self._kv.get(key)
            if holder is None or holder == node or not self._is_member(str(holder)):
                self._kv.set(key, node, math.inf)
                holder = node
            holders[company_id] = str(holder)
        return holders

    async def release(self, company_id: int, node: str) -> bool:
        return await self.release_all([company_id], node) == 1

    async def release_all(self, company_ids: Sequence[int], node: str) -> int:
        await trio.lowlevel.checkpoint()
        keys = [self._key(company_id) for company_id in company_ids]
        node = _keys.check_node(node)
        done = 0
        for key in keys:
            if self._kv.get(key) == node:
                self._kv.delete(key)
                done += 1
        return done

    async def holder(self, company_id: int) -> str | None:
        await trio.lowlevel.checkpoint()
        value = self._kv.get(self._key(company_id))
        return None if value is None else str(value)


class MemoryPubSub:
    """:class:`PubSub` within one process: each subscriber gets a bounded channel.

    A subscriber whose buffer (``buffer`` messages) is full misses messages rather than
    slowing the publisher, as with Redis pub/sub.
    """

    def __init__(self, kv: MemoryKeyValue, buffer: int = 100) -> None:
        self._kv = kv
        self._buffer = buffer

    async def publish(self, channel: str, message: Any) -> int:
        await trio.lowlevel.checkpoint()
        name = _keys.channel_name(self._kv.prefix, v.text("channel", channel, 255))
        body = json.loads(json.dumps(v.json_value("message", message)))
        delivered = 0
        for send in list(self._kv.channels.get(name, ())):
            try:
                send.send_nowait(body)
                delivered += 1
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        return delivered

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        name = _keys.channel_name(self._kv.prefix, v.text("channel", channel, 255))
        send, receive = trio.open_memory_channel[Any](self._buffer)
        self._kv.channels.setdefault(name, set()).add(send)
        try:
            async with receive:
                yield receive
        finally:
            subscribers = self._kv.channels.get(name, set())
            subscribers.discard(send)
            if not subscribers:
                self._kv.channels.pop(name, None)
            send.close()
