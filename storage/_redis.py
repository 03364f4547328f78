"""Redis stores on coredis (anyio-native: runs on trio directly, no bridge).

One client per :class:`Storage`, entered for the storage's lifetime. coredis reconnects by
itself after Redis restarts (its retry policy re-dials on ``ConnectionError``); while Redis is
down every call fails with :class:`StorageUnavailable` within ``op_timeout`` seconds, because
connects and reads are bounded and each call is wrapped in a deadline.

All keys live under one prefix (``settings.redis_prefix``). Multi-key updates (token issue and
revoke), the rate-limit check-and-count, the membership heartbeat (refresh and read the live
members in one call) and the claims' compare-and-set are Lua scripts, so they are atomic across
processes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import coredis
import coredis.exceptions
import trio
from coredis.commands.script import Script

from . import _keys
from . import _validate as v
from ._errors import (
    ErrorFactory,
    StorageError,
    StorageUnavailable,
    describe,
    map_exceptions,
    timed_out,
    unavailable,
)
from ._groups import BodyError, unwrap_single
from ._memory_kv import _decision
from ._models import BackendHealth, QrCode, RateDecision

BACKEND = "redis"
T = TypeVar("T")

REDIS_ERRORS: dict[type[BaseException], ErrorFactory] = {
    coredis.exceptions.ConnectionError: unavailable(BACKEND),
    coredis.exceptions.AuthenticationError: unavailable(BACKEND),
    coredis.exceptions.BusyLoadingError: unavailable(BACKEND),
    TimeoutError: timed_out(BACKEND),
    OSError: unavailable(BACKEND),
    coredis.exceptions.RedisError: lambda e: StorageError(f"{BACKEND} error: {describe(e)}"),
}

# KEYS[1] counter; ARGV[1] window in ms. Returns {count, ttl_ms}.
RATE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# KEYS[1] company->token key, KEYS[2] new token key; ARGV[1] token key prefix,
# ARGV[2] new token, ARGV[3] company id, ARGV[4] ttl ms.
ISSUE_SCRIPT = """
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[1] .. old) end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
return 1
"""

# KEYS[1] company->token key; ARGV[1] token key prefix.
REVOKE_SCRIPT = """
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[1] .. old) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS[1] members set, KEYS[2] draining set; ARGV[1] member key prefix, ARGV[2] node, ARGV[3]
# address, ARGV[4] ttl ms (ARGV[2] empty: only read), ARGV[5] '1': renew only (a key that
# lapsed is not set again), ARGV[6] '1': draining. Returns {id, address, ...} of the live
# members that are not draining.
MEMBERS_SCRIPT = """
if ARGV[2] ~= '' and (ARGV[5] ~= '1' or redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 1) then
  redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3], 'PX', ARGV[4])
  redis.call('SADD', KEYS[1], ARGV[2])
  if ARGV[6] == '1' then
    redis.call('SADD', KEYS[2], ARGV[2])
  else
    redis.call('SREM', KEYS[2], ARGV[2])
  end
end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local address = redis.call('GET', ARGV[1] .. id)
  if not address then
    redis.call('SREM', KEYS[1], id)
    redis.call('SREM', KEYS[2], id)
  elseif redis.call('SISMEMBER', KEYS[2], id) == 0 then
    table.insert(out, id)
    table.insert(out, address)
  end
end
return out
"""

# KEYS[1] claim key; ARGV[1] member key prefix, ARGV[2] node. Returns the holder after the
# call, or false when the node itself is not a live member.
CLAIM_SCRIPT = """
if redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then return false end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[2] then return holder end
if (not holder) or redis.call('EXISTS', ARGV[1] .. holder) == 0 then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return holder
"""

# KEYS claim keys; ARGV[1] member key prefix, ARGV[2] node. CLAIM_SCRIPT for each key: the
# holders after the call in KEYS order, or false when the node itself is not a live member.
CLAIM_MANY_SCRIPT = """
if redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then return false end
local out = {}
local live = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[2] and live[holder] == nil then
    live[holder] = redis.call('EXISTS', ARGV[1] .. holder) == 1
  end
  if (not holder) or (holder ~= ARGV[2] and not live[holder]) then
    redis.call('SET', key, ARGV[2])
    holder = ARGV[2]
  end
  out[i] = holder
end
return out
"""

# KEYS claim keys; ARGV[1] node. Returns how many were released.
RELEASE_SCRIPT = """
local done = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    done = done + redis.call('DEL', key)
  end
end
return done
"""

#: Claims released (or taken) per round trip by :meth:`RedisLeases.release_all` (and
#: :meth:`RedisLeases.claim_many`).
RELEASE_BATCH = 500


class RedisBackend:
    """The shared coredis client plus the deadline every call runs under."""

    def __init__(self, client: coredis.Redis[str], prefix: str, op_timeout: float) -> None:
        self.client = client
        self.prefix = prefix
        self.op_timeout = op_timeout
        self.rate_script = client.register_script(RATE_SCRIPT)
        self.issue_script = client.register_script(ISSUE_SCRIPT)
        self.revoke_script = client.register_script(REVOKE_SCRIPT)
        self.members_script = client.register_script(MEMBERS_SCRIPT)
        self.claim_script = client.register_script(CLAIM_SCRIPT)
        self.claim_many_script = client.register_script(CLAIM_MANY_SCRIPT)
        self.release_script = client.register_script(RELEASE_SCRIPT)

    async def call(self, request: Awaitable[T]) -> T:
        """Await one coredis request with error mapping and a deadline."""
        # Hot path (every rate-limit check): plain try/except instead of map_exceptions.
        try:
            with trio.move_on_after(self.op_timeout):
                return await request
        except StorageError:
            raise
        except Exception as exc:
            for foreign, build in REDIS_ERRORS.items():
                if isinstance(exc, foreign):
                    raise build(exc) from exc
            raise
        raise StorageUnavailable(BACKEND, f"no answer within {self.op_timeout:g}s")

    async def eval_script(self, script: Script[str], keys: list[str], args: list[str | int]) -> Any:
        """``EVALSHA`` (one round trip), loading the script once if the server lost it."""
        try:
            return await self.call(self.client.evalsha(script.sha, keys=keys, args=args))
        except StorageError as exc:
            if not isinstance(exc.__cause__, coredis.exceptions.NoScriptError):
                raise
        await self.call(self.client.script_load(script.script))
        return await self.call(self.client.evalsha(script.sha, keys=keys, args=args))

    async def ping(self) -> BackendHealth:
        """``PING``; never raises (the error goes into the result)."""
        started = time.perf_counter()
        try:
            await self.call(self.client.ping())
        except StorageError as exc:
            return BackendHealth(name="redis", kind="redis", ok=False, error=str(exc))
        latency = (time.perf_counter() - started) * 1000
        return BackendHealth(name="redis", kind="redis", ok=True, latency_ms=latency)

    async def delete_prefixed(self) -> int:
        """Delete every key under our prefix (tests and benchmarks clean up with it)."""
        deleted = 0
        batch: list[str] = []
        async for key in self.client.scan_iter(match=f"{self.prefix}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self.call(self.client.delete(batch))
                batch = []
        if batch:
            deleted += await self.call(self.client.delete(batch))
        return deleted


@asynccontextmanager
async def open_redis(
    url: str,
    *,
    prefix: str,
    password: str | None = None,
    connect_timeout: float = 1.0,
    read_timeout: float = 2.0,
    op_timeout: float = 3.0,
    max_connections: int = 32,
) -> AsyncIterator[RedisBackend]:
    """Open the client for the lifetime of the block. Redis need not be up yet."""
    kwargs: dict[str, Any] = {
        "decode_responses": True,
        "connect_timeout": connect_timeout,
        "stream_timeout": read_timeout,
        "max_connections": max_connections,
        "pool_timeout": op_timeout,
    }
    if password:
        kwargs["password"] = password
    client: coredis.Redis[str] = coredis.Redis.from_url(url, **kwargs)
    body = BodyError()
    async with unwrap_single(body), client:
        try:
            yield RedisBackend(client, prefix, op_timeout)
        except BaseException as exc:
            body.error = exc
            raise


class RedisConnectTokens:
    """:class:`ConnectTokens` on Redis."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend

    async def issue(self, company_id: int, *, ttl: float = _keys.TOKEN_TTL) -> str:
        v.positive_int("company_id", company_id)
        ttl_ms = int(v.positive_seconds("ttl", ttl) * 1000)
        token = secrets.token_urlsafe(32)
        prefix = _keys.token_key(self._b.prefix, "")
        await self._b.call(
            self._b.issue_script(
                keys=[
                    _keys.company_token_key(self._b.prefix, company_id),
                    _keys.token_key(self._b.prefix, token),
                ],
                args=[prefix, token, str(company_id), str(ttl_ms)],
            )
        )
        return token

    async def resolve(self, token: str) -> int | None:
        checked = _keys.check_token(token)
        if checked is None:
            return None
        value = await self._b.call(self._b.client.get(_keys.token_key(self._b.prefix, checked)))
        return None if value is None else int(value)

    async def current(self, company_id: int) -> str | None:
        key = _keys.company_token_key(self._b.prefix, company_id)
        value: str | None = await self._b.call(self._b.client.get(key))
        return value

    async def revoke(self, company_id: int) -> None:
        await self._b.call(
            self._b.revoke_script(
                keys=[_keys.company_token_key(self._b.prefix, company_id)],
                args=[_keys.token_key(self._b.prefix, "")],
            )
        )


class RedisQrCodes:
    """:class:`QrCodes` on Redis: ``marketplace:qr:{id}`` → ``{"qr", "generated_at", "lifetime",
    "incarnation"}`` with the lifetime as the key's TTL."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend

    async def put(
        self,
        company_id: int,
        qr: str,
        *,
        ttl: float = _keys.QR_TTL,
        generated_at: float | None = None,
        incarnation: str = "",
    ) -> QrCode:
        v.positive_int("company_id", company_id)
        code = replace(
            _keys.new_qr_code(qr, ttl, generated_at),
            incarnation=v.text("incarnation", incarnation, 255),
        )
        body = json.dumps(
            {
                "qr": code.qr,
                "generated_at": code.generated_at,
                "lifetime": code.lifetime,
                "incarnation": code.incarnation,
            }
        )
        ttl_ms = int(code.lifetime * 1000)
        key = _keys.qr_key(self._b.prefix, company_id)
        await self._b.call(self._b.client.set(key, body, px=ttl_ms))
        return code

    async def get(self, company_id: int) -> QrCode | None:
        raw = await self._b.call(self._b.client.get(_keys.qr_key(self._b.prefix, company_id)))
        if raw is None:
            return None
        data = json.loads(raw)
        return QrCode(
            qr=str(data["qr"]),
            generated_at=float(data["generated_at"]),
            lifetime=float(data.get("lifetime", _keys.QR_TTL)),  # older records: 20 s
            incarnation=str(data.get("incarnation", "")),  # older records: no live actor's
        )

    async def clear(self, company_id: int) -> None:
        await self._b.call(self._b.client.delete([_keys.qr_key(self._b.prefix, company_id)]))


class RedisRateLimiter:
    """:class:`RateLimiter` on Redis: one Lua script per hit (INCR + PEXPIRE + PTTL)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        key, limit, window = _keys.check_rate_args(key, limit, window)
        window_ms = max(1, int(window * 1000))
        reply: list[int] = await self._b.eval_script(
            self._b.rate_script, [_keys.rate_key(self._b.prefix, key)], [window_ms]
        )
        count, ttl_ms = reply
        return _decision(int(count), limit, int(ttl_ms) / 1000)

    async def reset(self, key: str) -> None:
        await self._b.call(self._b.client.delete([_keys.rate_key(self._b.prefix, key)]))


class RedisLeases:
    """:class:`Leases` on Redis: ``member:{node}`` keys with a TTL listed in ``members``, and
    ``owner:{id}`` claims, each update one Lua script (atomic across processes)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend
        self._members = _keys.members_key(backend.prefix)
        self._draining = _keys.draining_key(backend.prefix)
        self._member_prefix = _keys.member_key_prefix(backend.prefix)

    def _key(self, company_id: int) -> str:
        return _keys.owner_key(self._b.prefix, v.positive_int("company_id", company_id))

    async def _members_call(self, args: list[str | int]) -> dict[str, str]:
        keys = [self._members, self._draining]
        flat: list[str] = await self._b.eval_script(self._b.members_script, keys, args)
        return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}

    async def heartbeat(
        self, node: str, address: str, ttl: float, *, renew: bool = False, draining: bool = False
    ) -> dict[str, str]:
        node = _keys.check_node(node)
        address = v.text("address", address, 2048)
        ttl_ms = max(1, int(v.positive_seconds("ttl", ttl) * 1000))
        flags = ["1" if renew else "0", "1" if draining else "0"]
        return await self._members_call([self._member_prefix, node, address, ttl_ms, *flags])

    async def members(self) -> dict[str, str]:
        return await self._members_call([self._member_prefix, "", "", 1, "0", "0"])

    async def leave(self, node: str) -> bool:
        node = _keys.check_node(node)
        removed = await self._b.call(self._b.client.delete([self._member_prefix + node]))
        await self._b.call(self._b.client.srem(self._members, [node]))
        await self._b.call(self._b.client.srem(self._draining, [node]))
        return bool(removed)

    async def claim(self, company_id: int, node: str) -> str | None:
        key = self._key(company_id)
        node = _keys.check_node(node)
        holder = await self._b.eval_script(self._b.claim_script, [key], [self._member_prefix, node])
        return None if holder is None else str(holder)

    async def claim_many(self, company_ids: Sequence[int], node: str) -> dict[int, str] | None:
        ids = list(dict.fromkeys(company_ids))
        keys = [self._key(company_id) for company_id in ids]
        node = _keys.check_node(node)
        holders: dict[int, str] = {}
        for start in range(0, len(keys), RELEASE_BATCH):
            batch = keys[start : start + RELEASE_BATCH]
            script = self._b.claim_many_script
            found = await self._b.eval_script(script, batch, [self._member_prefix, node])
            if found is None:
                return None
            holders.update(zip(ids[start : start + RELEASE_BATCH], map(str, found), strict=True))
        return holders

    async def release(self, company_id: int, node: str) -> bool:
        return await self.release_all([company_id], node) == 1

    async def release_all(self, company_ids: Sequence[int], node: str) -> int:
        keys = [self._key(company_id) for company_id in company_ids]
        node = _keys.check_node(node)
        done = 0
        for start in range(0, len(keys), RELEASE_BATCH):
            batch = keys[start : start + RELEASE_BATCH]
            done += int(await self._b.eval_script(self._b.release_script, batch, [node]))
        return done

    async def holder(self, company_id: int) -> str | None:
        value: str | None = await self._b.call(self._b.client.get(self._key(company_id)))
        return value


class RedisPubSub:
    """:class:`PubSub` on Redis channels under our prefix, JSON-encoded."""

    def __init__(self, backend: RedisBackend, buffer: int = 100) -> None:
        self._b = backend
        self._buffer = buffer

    async def publish(self, channel: str, message: Any) -> int:
        name = _keys.channel_name(self._b.prefix, v.text("channel", channel, 255))
        body = json.dumps(v.json_value("message", message), ensure_ascii=False)
        receivers: int = await self._b.call(self._b.client.publish(name, body))
        return receivers

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        name = _keys.channel_name(self._b.prefix, v.text("channel", channel, 255))
        send, receive = trio.open_memory_channel[Any](self._buffer)
        pubsub = self._b.client.pubsub(channels=[name], ignore_subscribe_messages=True)

        async def pump() -> None:
            async with send:
                async for message in pubsub:
                    if message.get("type") != "message":
                        continue
                    try:
                        send.send_nowait(json.loads(str(message["data"])))
                    except trio.WouldBlock:
                        pass  # a slow subscriber misses messages, as Redis would drop them
                    except ValueError:
                        pass  # not our JSON: ignore

        body = BodyError()
        # coredis bounds the SUBSCRIBE handshake itself (``subscription_timeout``); the pubsub
        # and our pump nursery nest strictly, as trio requires.
        async with unwrap_single(body):
            with map_exceptions(REDIS_ERRORS):
                async with pubsub, trio.open_nursery() as nursery:
                    nursery.start_soon(pump)
                    try:
                        async with receive:
                            yield receive
                    except BaseException as exc:
                        body.error = exc
                        raise
                    finally:
                        nursery.cancel_scope.cancel()
