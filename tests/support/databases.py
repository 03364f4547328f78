"""Real PostgreSQL and Redis for tests: a throwaway database and key prefix per session.

Environment (optional): ``AIADMIN_TEST_PG`` — an admin DSN of the server to create databases
on (default ``postgresql://postgres@127.0.0.1:5432/postgres``); ``AIADMIN_TEST_REDIS``
(default ``redis://127.0.0.1:6379/0``).

Use from any test folder:

* session fixtures (sync, so they work with pytest-trio's per-test runs)::

      from tests.support.databases import pg_database, redis_prefix_fixture
      @pytest.fixture(scope="session")
      def database_url():
          with pg_database() as url:      # created + migrated, dropped at the end
              yield url

* per test, inside trio::

      async with open_real_storage(database_url, redis_prefix=prefix) as storage:
          ...   # opens a trio-asyncio loop if none runs, truncates tables first

* ad hoc: ``async with temp_database() as url`` creates and drops one database inside a test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import coredis
import trio
import trio_asyncio

from storage import Storage, open_storage
from storage._migrate import apply_migrations

PG_ADMIN_URL = os.environ.get("AIADMIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIADMIN_TEST_REDIS", "redis://127.0.0.1:6379/0")

TABLES = (
    "salon_sync_state",
    "salon_staff",
    "salon_services",
    "messages",
    "outbox",
    "webhook_events",
    "marketplace_events",
    "companies",
)


def database_url(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """The DSN of database ``name`` on the admin URL's server."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


def with_port(url: str, port: int, host: str = "127.0.0.1") -> str:
    """The same DSN pointed at another host/port (e.g. a :class:`TcpProxy`)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{port}"))


# -- asyncio-flavoured admin operations (run with asyncio.run, from any thread) -----------


async def _create(name: str, migrate: bool) -> str:
    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url(name)
    if migrate:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
    return url


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def new_database_name(prefix: str = "aiadmin_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def create_database_sync(*, migrate: bool = True, prefix: str = "aiadmin_test") -> str:
    """Create a fresh database (migrated unless told not to); returns its DSN. Blocking."""
    return asyncio.run(_create(new_database_name(prefix), migrate))


def drop_database_sync(url: str) -> None:
    """Drop the database at ``url`` (connections are terminated). Blocking."""
    asyncio.run(_drop(urlsplit(url).path.lstrip("/")))


@contextmanager
def pg_database(*, migrate: bool = True) -> Iterator[str]:
    """Sync context manager for session fixtures: a migrated throwaway database's DSN."""
    url = create_database_sync(migrate=migrate)
    try:
        yield url
    finally:
        drop_database_sync(url)


@asynccontextmanager
async def temp_database(*, migrate: bool = True) -> AsyncIterator[str]:
    """Trio-flavoured: a throwaway database for one test (admin work in a worker thread)."""
    url = await trio.to_thread.run_sync(lambda: create_database_sync(migrate=migrate))
    try:
        yield url
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(drop_database_sync, url)


# -- Redis ----------------------------------------------------------------------------------


def new_redis_prefix(tag: str = "t") -> str:
    return f"aiadmin-test:{tag}:{uuid.uuid4().hex[:12]}:"


async def delete_redis_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Trio-flavoured: delete every key under ``prefix``; returns how many."""
    client: coredis.Redis[str] = coredis.Redis.from_url(url, decode_responses=True)
    deleted = 0
    async with client:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            deleted += await client.delete(keys[start : start + 500])
    return deleted


@contextmanager
def redis_prefix_session(tag: str = "t") -> Iterator[str]:
    """Sync context manager for session fixtures: a prefix whose keys are deleted at the end."""
    prefix = new_redis_prefix(tag)
    try:
        yield prefix
    finally:
        trio.run(delete_redis_prefix, prefix)


# -- storage --------------------------------------------------------------------------------


async def _truncate(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


async def truncate_all(storage: Storage) -> None:
    """Empty every table of a PostgreSQL-backed storage (ids restart at 1)."""
    assert storage.pg is not None
    await storage.pg.run(_truncate)


@asynccontextmanager
async def _maybe_loop() -> AsyncIterator[None]:
    if trio_asyncio.current_loop.get() is None:
        async with trio_asyncio.open_loop():
            yield
    else:
        yield


@asynccontextmanager
async def open_real_storage(
    database_url: str | None,
    *,
    redis_prefix: str | None = None,
    redis_url: str | None = REDIS_URL,
    truncate: bool = True,
    **options: Any,
) -> AsyncIterator[Storage]:
    """Open storage on real PostgreSQL (and Redis unless ``redis_url=None``) for one test.

    Opens a trio-asyncio loop around it if none is running. The database must exist and be
    migrated (see :func:`pg_database`); its tables are emptied first unless ``truncate=False``.
    A ``redis_prefix`` of ``None`` gets a fresh one, whose keys are deleted afterwards.
    ``options`` go to :func:`storage.open_storage` (e.g. ``wall_clock``, ``pool_max_size``).
    """
    own_prefix = redis_prefix is None
    prefix = new_redis_prefix() if redis_prefix is None else redis_prefix
    async with _maybe_loop():
        try:
            async with open_storage(
                database_url=database_url,
                redis_url=redis_url,
                redis_prefix=prefix,
                apply_migrations=False,
                **options,
            ) as storage:
                if truncate and storage.pg is not None:
                    await truncate_all(storage)
                yield storage
        finally:
            if own_prefix and redis_url:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await delete_redis_prefix(prefix, redis_url)
