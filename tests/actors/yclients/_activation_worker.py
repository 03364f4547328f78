"""A separate process that only delivers activations: ``python -m
tests.actors.yclients._activation_worker DATABASE_URL YCLIENTS_BASE_URL``.

The crash test starts it, kills it with SIGKILL mid-retry and starts another. It uses the same
``ActivationDelivery`` as the server, with short timings; it runs no company actors, so a
rejection is only printed. Prints ``ready`` once it polls.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import trio
import trio_asyncio

from actors.yclients import ActivationDelivery, ActivationPolicy, RetryPolicy, YClientsClient
from storage import open_storage
from tests.fakes.yclients import APPLICATION_ID, PARTNER_TOKEN

SECRET = "server-secret-for-tests-0123456789abcdef-xyz"
PUBLIC = "https://ai-admin.example"
POLICY = ActivationPolicy(
    poll_interval=0.02, lease=3.0, attempt_timeout=2.0, backoff_initial=0.05, backoff_max=0.2
)


async def _print_told(company_id: int, message: Any) -> None:
    await trio.lowlevel.checkpoint()
    print(f"told {company_id}: {message!r}", flush=True)


async def main(database_url: str, base_url: str) -> None:
    async with (
        trio_asyncio.open_loop(),
        open_storage(database_url=database_url, apply_migrations=False) as storage,
        YClientsClient(base_url, PARTNER_TOKEN, timeout=2.0, retry=RetryPolicy(attempts=1)) as api,
    ):
        worker = ActivationDelivery(
            storage,
            api,
            application_id=APPLICATION_ID,
            server_secret=SECRET,
            public_base_url=PUBLIC,
            tell=_print_told,
            policy=POLICY,
            rng=random.Random(),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            print("ready", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
