"""A node sending reminders in its own process, for the kill -9 test (``test_scheduler_kill``).

``python -m tests.actors.reminders._kill_worker DATABASE_URL REDIS_PREFIX WORLD_PATH NODE_ID
LEASE`` runs what ``aiadmin serve`` runs for reminders — ``build_companies`` with the assistant
and the reminder scheduler (``ReminderOptions`` at their defaults but for a claim lease of
LEASE seconds), the default single-node mode, the linked companies restored at start — over
the real PostgreSQL and Redis (REDIS_PREFIX). Its simulated WhatsApp is a session of the world
that the test process serves on the Unix socket WORLD_PATH, as a session host's is: the phones
outlive this process. Sends are paced at :data:`PACING`. Prints ``ready`` once the node runs,
then runs until killed; logs (warnings and up) go to stderr.
"""

from __future__ import annotations

import logging
import random
import sys
from dataclasses import replace

import trio

from actors import open_node
from actors.assistant import AssistantOptions
from actors.reminders import ReminderOptions
from actors.whatsapp import SimulatedGateway
from config import SendPacing, settings_from_env
from tests.support.databases import open_real_storage

#: Quick but real pacing: 50–100 ms between two messages of a salon, so a burst of reminders
#: takes seconds to reach the phones and a kill lands while they are going out.
PACING = SendPacing(min_gap=0.05, jitter=0.05, per_minute=10_000)


async def main(database_url: str, prefix: str, world_path: str, node_id: str, lease: float) -> None:
    settings = replace(settings_from_env({}, dotenv=None), pacing=PACING)
    async with (
        open_real_storage(database_url, redis_prefix=prefix, truncate=False) as storage,
        trio.open_nursery() as nursery,
    ):
        gateway = SimulatedGateway(nursery, world_path=world_path, qr=settings.qr)
        try:
            async with open_node(
                settings,
                storage,
                gateway,
                rng=random.Random(),
                node_id=node_id,
                assistant=AssistantOptions(),
                reminders=ReminderOptions(claim_lease=lease),
            ):
                print("ready", flush=True)
                await trio.sleep_forever()
        finally:
            await gateway.aclose()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    url, redis_prefix, path, node, lease_seconds = sys.argv[1:6]
    trio.run(main, url, redis_prefix, path, node, float(lease_seconds))
