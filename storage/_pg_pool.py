"""An asyncpg pool used from trio through trio-asyncio, one bridge crossing per unit of work.

A *unit* is an asyncio coroutine ``work(conn, *args)``; :meth:`PgPool.run` crosses into
asyncio once, acquires a connection, runs the unit (inside a transaction with
:meth:`PgPool.transaction`), releases the connection and crosses back.

Cancellation (the reason this module exists): a trio cancel becomes one asyncio cancel of the
unit's task. The acquire runs in its own task behind ``asyncio.shield``, so a cancel can never
strand a half-acquired connection: if the caller gives up first, the connection is released
when the acquire completes. A unit cancelled mid-query is rolled back by asyncpg, and its
connection is released in a tracked background task, so the caller returns at once and
:meth:`aclose` waits for those releases (bounded) before closing the pool.

Errors are translated here (see :data:`PG_ERRORS`): failing to get a connection is
:class:`StorageUnavailable`; inside a unit, a lost connection is ``StorageUnavailable``, a
statement or command timeout is :class:`StorageTimeout`, a unique violation :class:`Conflict`,
a foreign-key violation :class:`NotFound`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg
import trio
import trio_asyncio

from ._errors import (
    Conflict,
    ErrorFactory,
    NotFound,
    StorageError,
    StorageTimeout,
    StorageUnavailable,
    ValidationError,
    describe,
    map_exceptions,
    timed_out,
    unavailable,
)
from ._models import BackendHealth, PoolStats

BACKEND = "postgresql"
P = ParamSpec("P")
T = TypeVar("T")
Unit = Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]]

PG_ERRORS: dict[type[BaseException], ErrorFactory] = {
    asyncpg.UniqueViolationError: lambda e: Conflict(
        getattr(e, "constraint_name", None) or "unique rule"
    ),
    asyncpg.ForeignKeyViolationError: lambda e: NotFound(
        getattr(e, "constraint_name", None) or "referenced row"
    ),
    asyncpg.QueryCanceledError: timed_out(BACKEND),
    TimeoutError: timed_out(BACKEND),
    asyncpg.PostgresConnectionError: unavailable(BACKEND),
    asyncpg.CannotConnectNowError: unavailable(BACKEND),
    asyncpg.OperatorInterventionError: unavailable(BACKEND),
    asyncpg.InterfaceError: unavailable(BACKEND),
    ConnectionError: unavailable(BACKEND),
    OSError: unavailable(BACKEND),
    asyncpg.CharacterNotInRepertoireError: lambda e: ValidationError("text", describe(e)),
    asyncpg.StringDataRightTruncationError: lambda e: ValidationError("text", describe(e)),
    asyncpg.DataError: lambda e: ValidationError("value", describe(e)),
    asyncpg.PostgresError: lambda e: StorageError(f"{BACKEND} error: {describe(e)}"),
}


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Pool reset hook: our units keep no session state, so skip asyncpg's reset round trip.

    asyncpg still rolls back any transaction left open before calling this.
    """


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Every pooled connection decodes ``json``/``jsonb`` to Python values."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=_dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _State(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class PgPool:
    """The pool plus the trio-asyncio loop it lives in. Build with :meth:`open`."""

    def __init__(self, pool: asyncpg.Pool, loop: trio_asyncio.TrioEventLoop) -> None:
        self._pool = pool
        self._loop = loop
        self._releasing: set[asyncio.Task[None]] = set()
        self._state = _State.OPEN
        self._acquire_timeout = 10.0
        self._deadline = 41.0

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        acquire_timeout: float = 10.0,
        op_timeout: float | None = None,
    ) -> PgPool:
        """Create the pool inside the current trio-asyncio loop (trio-flavoured).

        ``op_timeout`` bounds one unit as a whole, waiting for a connection included (a
        server that stops answering fails the unit with :class:`StorageTimeout` then); by
        default ``command_timeout + acquire_timeout + 1`` seconds.

        Raises :class:`StorageUnavailable` if PostgreSQL cannot be reached within
        ``connect_timeout`` and ``RuntimeError`` when no trio-asyncio loop is running.
        """
        loop = trio_asyncio.current_loop.get()
        if loop is None:
            raise RuntimeError("PostgreSQL storage needs trio_asyncio.open_loop() around it")

        async def create() -> asyncpg.Pool:
            return await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                # No client-side timers: under trio-asyncio every asyncio timer costs extra
                # loop passes per query. The server enforces ``statement_timeout``; the trio
                # side adds a deadline (``_deadline``) for a server that stops answering.
                command_timeout=None,
                max_inactive_connection_lifetime=0,
                server_settings={
                    "statement_timeout": str(int(command_timeout * 1000)),
                    "application_name": "aiadmin",
                },
                reset=_no_reset,
                init=_init_connection,
            )

        with map_exceptions({Exception: unavailable(BACKEND)}):
            pool = await trio_asyncio.aio_as_trio(create, loop=loop)()
        self = cls(pool, loop)
        self._acquire_timeout = acquire_timeout
        self._deadline = command_timeout + acquire_timeout + 1.0
        if op_timeout is not None:
            self._acquire_timeout = min(acquire_timeout, op_timeout)
            self._deadline = op_timeout
        return self

    # -- running units ------------------------------------------------------------------

    async def run(self, work: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``work(conn, *args)`` on a pooled connection, crossing the bridge once."""
        return await self._cross(work, False, args, kwargs)

    async def transaction(self, work: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like :meth:`run`, inside one transaction (all or nothing)."""
        return await self._cross(work, True, args, kwargs)

    async def _cross(
        self, work: Unit[P, T], tx: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        if self._state is not _State.OPEN:
            raise StorageUnavailable(BACKEND, "the pool is closed")
        with map_exceptions(PG_ERRORS), trio.move_on_after(self._deadline):
            # The unit's asyncio task runs in a context of its own, not a copy of the caller's:
            # asyncpg arms an asyncio timer on every release, and trio-asyncio keeps a cancelled
            # timer (with the context it was armed in) until its deadline, so a copy would keep
            # the caller's context variables — a web request and its body — alive for seconds
            # after the answer, memory growing with the request rate.
            coro = self._unit(work, tx, args, kwargs)
            try:
                unit = self._loop.create_task(coro, context=self._unit_context())
            except BaseException:
                coro.close()  # never started: no "never awaited" warning
                raise
            result: T = await trio_asyncio.run_aio_future(unit)
            return result
        raise StorageTimeout(BACKEND, f"no answer within {self._deadline:g}s")

    def _unit_context(self) -> contextvars.Context:
        """A fresh context holding only the loop (what asyncio code may look up)."""
        context = contextvars.Context()
        context.run(trio_asyncio.current_loop.set, self._loop)
        return context

    async def _unit(
        self, work: Unit[P, T], tx: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """The asyncio side of one unit: acquire (cancel-safe), work, release."""
        try:
            if self._pool.get_idle_size() > 0:
                # Fast path: an idle connection is normally handed over without suspending;
                # should asyncpg suspend anyway (reconnecting a dead holder), its acquire puts
                # the holder back on cancellation. Skips the extra task of the slow path.
                conn = await self._pool.acquire()
            else:
                conn = await self._acquire_shielded()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise StorageUnavailable(BACKEND, describe(exc)) from exc
        try:
            if tx:
                async with conn.transaction():
                    result = await work(conn, *args, **kwargs)
            else:
                result = await work(conn, *args, **kwargs)
        except BaseException:
            # Possibly cancelled mid-query: asyncpg must wait for the server to confirm the
            # cancel before the connection is reusable; don't make the caller wait for that.
            self._release_later(conn)
            raise
        # A healthy connection is released without I/O (see ``_no_reset``); should a cancel
        # land here anyway, asyncpg terminates the connection and the pool replaces it.
        await self._release(conn)
        return result

    async def _acquire_shielded(self) -> asyncpg.Connection:
        """Wait for a connection in its own task; if we are cancelled meanwhile, the
        connection is released as soon as the acquire completes (never stranded)."""
        acquire = asyncio.ensure_future(
            self._pool.acquire(timeout=self._acquire_timeout), loop=self._loop
        )
        try:
            return await asyncio.shield(acquire)
        except asyncio.CancelledError:
            acquire.add_done_callback(self._release_orphan)
            raise

    def _release_task(self, conn: asyncpg.Connection) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self._loop.create_task(self._release(conn))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    def _release_later(self, conn: asyncpg.Connection) -> None:
        self._release_task(conn)

    async def _release(self, conn: asyncpg.Connection) -> None:
        # On failure asyncpg terminates the connection; the pool replaces it on next acquire.
        with contextlib.suppress(Exception):
            await self._pool.release(conn, timeout=5.0)

    def _release_orphan(self, acquire: asyncio.Future[asyncpg.Connection]) -> None:
        """An acquire finished after its caller was cancelled: give the connection back."""
        if acquire.cancelled() or acquire.exception() is not None:
            return
        self._release_later(acquire.result())

    # -- health and lifecycle ------------------------------------------------------------

    def stats(self) -> PoolStats:
        """Current pool occupancy (``releasing``: connections still being handed back)."""
        return PoolStats(
            size=self._pool.get_size(),
            idle=self._pool.get_idle_size(),
            max_size=self._pool.get_max_size(),
            releasing=len(self._releasing),
        )

    async def settle(self) -> None:
        """Wait until every background release has finished (tests and shutdown)."""

        async def wait() -> None:
            while self._releasing:
                await asyncio.gather(*list(self._releasing), return_exceptions=True)

        await trio_asyncio.aio_as_trio(wait, loop=self._loop)()

    async def ping(self) -> BackendHealth:
        """Run ``SELECT 1``; never raises (the error goes into the result)."""
        started = time.perf_counter()
        try:
            with trio.fail_after(min(5.0, self._deadline)):
                await self.run(_select_one)
        except (StorageError, trio.TooSlowError) as exc:
            return BackendHealth(name="database", kind="postgres", ok=False, error=str(exc))
        latency = (time.perf_counter() - started) * 1000
        return BackendHealth(name="database", kind="postgres", ok=True, latency_ms=latency)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the pool: graceful within ``timeout`` seconds, then terminate. Idempotent."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING

        async def close() -> None:
            try:
                if self._releasing:
                    await asyncio.wait(list(self._releasing), timeout=timeout)
                await asyncio.wait_for(self._pool.close(), timeout=timeout)
            except BaseException:
                self._pool.terminate()
                raise

        try:
            # Terminated on failure (see ``close``): nothing more can be done.
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await trio_asyncio.aio_as_trio(close, loop=self._loop)()
        finally:
            self._state = _State.CLOSED


async def _select_one(conn: asyncpg.Connection) -> None:
    await conn.fetchval("SELECT 1")
