"""Node A as its own process, for the SIGSTOP test (``test_paused_owner.py``).

``python -m tests.actors.company._paused_owner DATABASE_URL REDIS_PREFIX COMPANY_ID TTL NODE``
joins the cluster as NODE (member TTL of TTL seconds), takes the company's claim, runs its
actor, prints ``ready``, then every 20 ms writes the company's ``last_error`` through the
actor's fenced storage, printing ``wrote``/``refused``, and ``stopped`` once its actor is no
longer active. One line each, flushed.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace

import trio

from actors import open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from config import settings_from_env
from storage import StaleEpoch, StorageError
from tests.support.databases import open_real_storage


def say(line: str) -> None:
    print(line, flush=True)


async def main(database_url: str, prefix: str, company_id: int, ttl: float, name: str) -> None:
    settings = replace(settings_from_env({}, dotenv=None), member_ttl=ttl)
    async with (
        open_real_storage(database_url, redis_prefix=prefix, truncate=False) as storage,
        open_gateway(settings, world=SimulatedWorld()) as gateway,
        open_node(
            settings, storage, gateway, rng=random.Random(1), cluster=True, node_id=name
        ) as node,
    ):
        assert await node.place(company_id) is None
        await node.registry.activate(company_id)
        # What the actor writes through: fenced by the epoch this node took with the claim.
        fenced = storage.fenced(company_id, await storage.epochs.current(company_id))
        say("ready")
        stopped = False
        n = 0
        while True:
            n += 1
            try:
                await fenced.companies.update(company_id, last_error=f"A {n}")
                say("wrote")
            except StaleEpoch:
                say("refused")
            except StorageError as exc:
                say(f"error {type(exc).__name__}")
            if not stopped and node.registry.lookup(company_id) is None:
                stopped = True
                say("stopped")
            await trio.sleep(0.02)


if __name__ == "__main__":
    url, prefix, company, ttl, name = sys.argv[1:6]
    trio.run(main, url, prefix, int(company), float(ttl), name)
