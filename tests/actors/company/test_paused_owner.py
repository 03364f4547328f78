"""A process paused with SIGSTOP past its membership, then SIGCONT: it must not keep or
overwrite the salon's state. Node A runs in its own process (``_paused_owner``); this test is
node B, on the same PostgreSQL and Redis prefix. A is named so that it wins the salon while
both are members: once resumed it rejoins and gets the salon back, by a handover, under a
newer epoch, so its writes through the old epoch stay refused."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import trio

from actors import open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from config import Settings
from tests.support.cluster import winning_name
from tests.support.databases import open_real_storage

ROOT = Path(__file__).resolve().parents[3]
TTL = 2.0
OWNER = [sys.executable, "-m", "tests.actors.company._paused_owner"]


async def test_a_paused_owner_resumed_past_its_lease_is_fenced_and_stops(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    settings = replace(settings, member_ttl=TTL, passivate_after=3600.0)
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
        open_gateway(settings, world=SimulatedWorld()) as gateway,
        open_node(
            settings, storage, gateway, rng=random.Random(2), cluster=True, node_id="node-b"
        ) as b,
    ):
        cid = (await storage.companies.create(777001, title="Салон")).company.id
        a_name = winning_name(cid, "node-a", ["node-b"])
        process = await trio.lowlevel.open_process(
            [*OWNER, database_url, redis_prefix, str(cid), str(TTL), a_name],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        lines: list[str] = []
        buffer = bytearray()

        async def read() -> None:
            assert process.stdout is not None
            async for chunk in process.stdout:
                buffer.extend(chunk)
                *done, rest = buffer.split(b"\n")
                lines.extend(line.decode() for line in done)
                buffer[:] = rest

        async def until(line: str, timeout: float, start: int = 0) -> None:
            with trio.fail_after(timeout):
                while line not in lines[start:]:  # noqa: ASYNC110 -- another process
                    await trio.sleep(0.02)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                await until("ready", 30)
                await until("wrote", 20)
                assert await storage.leases.holder(cid) == a_name

                process.send_signal(signal.SIGSTOP)  # A is paused, its membership runs out
                with trio.fail_after(TTL * 5):  # a unit paused mid-way ends after 2 s
                    while await b.place(cid) is not None:  # noqa: ASYNC110 -- member expiry
                        await trio.sleep(0.05)
                await b.registry.activate(cid)
                await storage.companies.update(cid, last_error="B owns it")
                paused_at = len(lines)

                process.send_signal(signal.SIGCONT)
                await until("refused", 20, paused_at)
                await until("stopped", 20, paused_at)
                # A rejoined and wins the salon: B hands it over (stops its actor).
                with trio.fail_after(TTL * 3):
                    while b.registry.lookup(cid) is not None:  # noqa: ASYNC110 -- no event
                        await trio.sleep(0.02)
                await trio.sleep(0.2)
                nursery.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            with trio.move_on_after(5):
                await process.wait()
        after = lines[paused_at:]
        # Writes A made before it was paused may be read late; none came after a refusal.
        first_refusal = after.index("refused")
        assert "wrote" not in after[first_refusal:]
        company = await storage.companies.get(cid)
        assert company is not None and company.last_error == "B owns it"
        assert await storage.leases.holder(cid) in (a_name, None)  # B released it
