"""Fencing tokens: a company's lease epoch, and repositories whose every call checks it.

In cluster mode a company's actor runs in the node holding its lease (``owner:{id}`` in
Redis). A lease can be lost without its holder noticing in time (a process paused by the OS,
cut from Redis), so the lease alone cannot stop an old holder from writing over the new one's
state. Each take of a lease therefore bumps the company's **epoch** in the database
(:meth:`LeaseEpochs.take`, ``lease_epochs``), and the owner's actor writes through a
:meth:`Storage.fenced` handle carrying that epoch: a call whose epoch is no longer the
company's current one is refused with :class:`StaleEpoch` and changes nothing.

The check is atomic with the call's work on both backends:

* PostgreSQL: the unit runs in one transaction that first reads the epoch ``FOR SHARE``; a
  concurrent :meth:`take` (an ``UPDATE`` of that row) waits until the unit committed, so a
  fenced write either lands before the new epoch exists or is refused after it. A unit whose
  process is paused mid-way is ended by the server after :data:`FENCED_IDLE_LIMIT`, so it
  cannot hold up the new owner.
* in memory: every method does its work synchronously after one checkpoint; the check runs on
  each access to the tables, so it happens in the same step as the write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import trio

from . import _validate as v
from ._errors import StaleEpoch

if TYPE_CHECKING:
    import asyncpg  # annotations only: the in-memory default never loads asyncpg

    from ._memory_db import MemoryDatabase
    from ._pg_pool import PgPool, Unit

P = ParamSpec("P")
T = TypeVar("T")

#: Called with (company id, the refused epoch) just before :class:`StaleEpoch` is raised.
OnRefused = Callable[[int, int], None]

_TAKE = """INSERT INTO lease_epochs (company_id, epoch) VALUES ($1, 1)
           ON CONFLICT (company_id) DO UPDATE SET epoch = lease_epochs.epoch + 1
           RETURNING epoch"""
#: Every company that exists among $1, in id order (two batches bumping the same rows lock
#: them in the same order).
_TAKE_MANY = """INSERT INTO lease_epochs (company_id, epoch)
                SELECT id, 1 FROM companies WHERE id = ANY($1::integer[]) ORDER BY id
                ON CONFLICT (company_id) DO UPDATE SET epoch = lease_epochs.epoch + 1
                RETURNING company_id, epoch"""
#: A fenced unit is one transaction holding the epoch row ``FOR SHARE`` (and the rows it
#: writes): were its process paused mid-unit (SIGSTOP), the new owner's take would wait on
#: those locks. The server ends such a transaction once its client is silent this long (a
#: unit's statements follow each other at once), which releases the locks.
FENCED_IDLE_LIMIT = "2s"
_CHECK = """WITH limit_idle AS (
                SELECT set_config('idle_in_transaction_session_timeout', $2, true))
            SELECT epoch FROM lease_epochs, limit_idle WHERE company_id = $1
            FOR SHARE OF lease_epochs"""


class PgLeaseEpochs:
    """:class:`LeaseEpochs` on PostgreSQL (``lease_epochs``)."""

    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def take(self, company_id: int) -> int:
        epoch: int = await self._pool.run(_fetchval, _TAKE, company_id)
        return epoch

    async def take_many(self, company_ids: Sequence[int]) -> dict[int, int]:
        if not company_ids:
            return {}
        ids = sorted({v.positive_int("company_id", company_id) for company_id in company_ids})
        rows = await self._pool.run(_fetch, _TAKE_MANY, ids)
        return {int(row["company_id"]): int(row["epoch"]) for row in rows}

    async def current(self, company_id: int) -> int:
        sql = "SELECT epoch FROM lease_epochs WHERE company_id = $1"
        epoch: int | None = await self._pool.run(_fetchval, sql, company_id)
        return epoch or 0


class MemoryLeaseEpochs:
    """:class:`LeaseEpochs` in memory, beside a :class:`MemoryDatabase`."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self.epochs: dict[int, int] = {}

    async def take(self, company_id: int) -> int:
        await trio.lowlevel.checkpoint()
        self._db.require_company(company_id)
        self.epochs[company_id] = self.epochs.get(company_id, 0) + 1
        return self.epochs[company_id]

    async def take_many(self, company_ids: Sequence[int]) -> dict[int, int]:
        await trio.lowlevel.checkpoint()
        taken: dict[int, int] = {}
        for company_id in sorted(set(company_ids)):
            if company_id in self._db.companies:
                taken[company_id] = self.epochs[company_id] = self.epochs.get(company_id, 0) + 1
        return taken

    async def current(self, company_id: int) -> int:
        await trio.lowlevel.checkpoint()
        return self.epochs.get(company_id, 0)


class FencedPool:
    """A view of a :class:`PgPool` whose every unit is one transaction that checks the epoch
    first (see the module docstring); repositories built on it need no change."""

    def __init__(self, pool: PgPool, company_id: int, epoch: int, on_refused: OnRefused) -> None:
        self._pool = pool
        self._company_id = company_id
        self._epoch = epoch
        self._on_refused = on_refused

    async def run(self, work: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result: T = await self._pool.transaction(
                _fenced_unit, self._company_id, self._epoch, work, args, kwargs
            )
        except StaleEpoch:
            self._on_refused(self._company_id, self._epoch)
            raise
        return result

    transaction = run


async def _fenced_unit(
    conn: asyncpg.Connection,
    company_id: int,
    epoch: int,
    work: Unit[Any, T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    current = await conn.fetchval(_CHECK, company_id, FENCED_IDLE_LIMIT) or 0
    if current != epoch:
        raise StaleEpoch(company_id, epoch, current)
    return await work(conn, *args, **kwargs)


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Any]:
    return list(await conn.fetch(sql, *args))


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


class FencedMemoryDatabase:
    """A view of a :class:`MemoryDatabase` that checks the epoch on every access to it."""

    def __init__(
        self,
        db: MemoryDatabase,
        epochs: MemoryLeaseEpochs,
        company_id: int,
        epoch: int,
        on_refused: OnRefused,
    ) -> None:
        self._fence_db = db
        self._fence_epochs = epochs
        self._fence_company = company_id
        self._fence_epoch = epoch
        self._fence_refused = on_refused

    def __getattr__(self, name: str) -> Any:
        current = self._fence_epochs.epochs.get(self._fence_company, 0)
        if current != self._fence_epoch:
            self._fence_refused(self._fence_company, self._fence_epoch)
            raise StaleEpoch(self._fence_company, self._fence_epoch, current)
        return getattr(self._fence_db, name)


def fenced_pg_pool(pool: PgPool, company_id: int, epoch: int, on_refused: OnRefused) -> PgPool:
    """``pool`` as the PostgreSQL repositories see it, every unit fenced by ``epoch``."""
    return cast("PgPool", FencedPool(pool, company_id, epoch, on_refused))


def fenced_memory_db(
    db: MemoryDatabase,
    epochs: MemoryLeaseEpochs,
    company_id: int,
    epoch: int,
    on_refused: OnRefused,
) -> MemoryDatabase:
    """``db`` as the memory repositories see it, every access fenced by ``epoch``."""
    return cast("MemoryDatabase", FencedMemoryDatabase(db, epochs, company_id, epoch, on_refused))
