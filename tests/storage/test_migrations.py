"""Migrations: ordered files, each applied once, even when several processes race."""

from __future__ import annotations

import json
import sys

import asyncpg
import trio
import trio_asyncio

from storage import migrate, migration_files
from tests.support.databases import temp_database


def test_files_are_numbered_and_ordered() -> None:
    names = [name for name, _ in migration_files()]
    assert names == sorted(names)
    assert names[0] == "0001_initial.sql"


async def _applied(url: str) -> list[str]:
    async def query() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        finally:
            await conn.close()

    async with trio_asyncio.open_loop() as loop:
        result: list[str] = await trio_asyncio.aio_as_trio(query, loop=loop)()
        return result


async def test_racing_migrations_apply_each_file_once() -> None:
    everything = [name for name, _ in migration_files()]
    async with temp_database(migrate=False) as url:
        results: list[list[str]] = []

        async def run() -> None:
            results.append(await migrate(url))  # each call opens its own connection

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(run)
        assert sorted(n for r in results for n in r) == everything
        assert sorted(await _applied(url)) == everything
        assert await migrate(url) == []


async def test_racing_migrations_in_two_processes() -> None:
    everything = [name for name, _ in migration_files()]
    script = (
        "import sys, json, trio; from storage import migrate; "
        "print(json.dumps(trio.run(migrate, sys.argv[1])))"
    )
    async with temp_database(migrate=False) as url:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                outputs: list[bytes] = []

                async def spawn() -> None:
                    done = await trio.run_process(
                        [sys.executable, "-c", script, url], capture_stdout=True
                    )
                    outputs.append(done.stdout)

                nursery.start_soon(spawn)
                nursery.start_soon(spawn)
        applied = [n for out in outputs for n in json.loads(out)]
        assert sorted(applied) == everything
        assert sorted(await _applied(url)) == everything
