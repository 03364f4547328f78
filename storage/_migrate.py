"""Schema migrations: numbered SQL files applied in order, once, under an advisory lock.

Files live in ``storage/migrations`` and are named ``NNNN_description.sql``. Each is applied
in its own transaction together with its row in ``schema_migrations``; a session advisory lock
makes concurrent ``migrate`` calls (other processes included) wait for each other, so every
file is applied exactly once.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg
import trio_asyncio

from ._errors import map_exceptions, unavailable
from ._groups import BodyError, unwrap_single
from ._pg_pool import BACKEND, PG_ERRORS

MIGRATION_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
LOCK_KEY = 0x41494144  # "AIAD": one cluster-wide lock for our migrations


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` for every migration file, in order."""
    folder = resources.files("storage") / "migrations"
    names = sorted(p.name for p in folder.iterdir() if MIGRATION_NAME.match(p.name))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in names]


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """asyncio-flavoured: apply pending migrations on ``conn``; returns the applied names."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        applied: list[str] = []
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
        return applied
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _migrate_aio(database_url: str, connect_timeout: float) -> list[str]:
    try:
        conn = await asyncpg.connect(database_url, timeout=connect_timeout)
    except Exception as exc:
        raise unavailable(BACKEND)(exc) from exc
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close(timeout=5)


async def migrate(database_url: str, *, connect_timeout: float = 10.0) -> list[str]:
    """Apply pending migrations to the database at ``database_url``; returns applied names.

    Trio-flavoured. Uses the running trio-asyncio loop, or opens one for the call. Raises
    :class:`StorageUnavailable` when PostgreSQL cannot be reached, :class:`StorageError` when
    a migration fails (that file's transaction is rolled back; earlier files stay applied).
    """
    with map_exceptions(PG_ERRORS):
        loop = trio_asyncio.current_loop.get()
        if loop is None:
            body = BodyError()
            async with unwrap_single(body), trio_asyncio.open_loop() as own:
                try:
                    result: list[str] = await trio_asyncio.aio_as_trio(_migrate_aio, loop=own)(
                        database_url, connect_timeout
                    )
                except BaseException as exc:
                    body.error = exc
                    raise
                return result
        result = await trio_asyncio.aio_as_trio(_migrate_aio, loop=loop)(
            database_url, connect_timeout
        )
        return result
