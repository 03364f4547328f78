"""Exactly one effective activation across processes, over real PostgreSQL (real clock):

- two deliverers (two nodes' services) over one database race for the same items;
- a worker process killed with SIGKILL mid-retry, and another started after it.

The fake YClients records every request; "exactly once" is read off its record.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio

from actors.yclients import ActivationDelivery, ActivationPolicy, RetryPolicy, YClientsClient
from storage import Storage
from tests.fakes.yclients import (
    APPLICATION_ID,
    BORODA_ID,
    LOTOS_ID,
    ORCHID_ID,
    PARTNER_TOKEN,
    FakeYClients,
    running_fake_yclients,
)
from tests.support.databases import open_real_storage, pg_database

from .test_activation import (
    CALLBACK,
    PUBLIC,
    SECRET,
    Teller,
    registered,
    successful_callbacks,
)

ROOT = Path(__file__).resolve().parents[3]
WAIT = 20.0


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with pg_database() as url:
        yield url


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    with trio.fail_after(10):
        async with running_fake_yclients(rate_limits=None) as server:
            yield server


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Re-check a condition held in storage (another process changes it), bounded."""
    with trio.fail_after(WAIT):
        while not await condition():  # noqa: ASYNC110 -- no event crosses processes
            await trio.sleep(0.01)


async def all_delivered(storage: Storage, ids: list[int]) -> bool:
    items = [await storage.outbox.get(i) for i in ids]
    return all(item is not None and item.status == "delivered" for item in items)


async def test_two_nodes_over_one_database_deliver_each_activation_once(
    database_url: str, fake: FakeYClients
) -> None:
    policy = ActivationPolicy(poll_interval=0.005, lease=10.0, attempt_timeout=5.0)
    fake.hang(CALLBACK, method="POST", times=1)  # the first callback hangs while others poll
    async with (
        open_real_storage(database_url, redis_url=None) as first,
        open_real_storage(database_url, redis_url=None, truncate=False) as second,
        YClientsClient(fake.base_url, PARTNER_TOKEN, retry=RetryPolicy(attempts=1)) as api_a,
        YClientsClient(fake.base_url, PARTNER_TOKEN, retry=RetryPolicy(attempts=1)) as api_b,
    ):
        items = [(await registered(first, salon))[1].id for salon in (LOTOS_ID, ORCHID_ID)]
        workers = [
            ActivationDelivery(
                st,
                api,
                application_id=APPLICATION_ID,
                server_secret=SECRET,
                public_base_url=PUBLIC,
                tell=Teller(),
                policy=policy,
                rng=random.Random(i),
            )
            for i, (st, api) in enumerate(((first, api_a), (second, api_b)))
        ]
        async with trio.open_nursery() as nursery:
            for worker in workers:
                await nursery.start(worker.run)
            with trio.fail_after(WAIT):
                await fake.wait_until(lambda: any(r.outcome == "hung" for r in fake.requests))
            # While one deliverer is stuck in the hung callback (holding the item's lease), the
            # other keeps polling and claims the second item, never the hung one.
            passes = [w.statistics().passes for w in workers]

            async def other_polled_more() -> bool:
                await trio.lowlevel.checkpoint()
                return any(
                    w.statistics().passes >= p + 20 for w, p in zip(workers, passes, strict=True)
                )

            await until(other_polled_more)
            assert len(fake.requests_to(CALLBACK, "POST")) == 2  # the hung one + the other
            fake.release_hung()
            await until(lambda: all_delivered(first, items))

            async def both_counted() -> bool:
                # A worker counts a delivery after storing it and writing the audit entry.
                await trio.lowlevel.checkpoint()
                return sum(w.statistics().delivered for w in workers) >= 2

            await until(both_counted)
            nursery.cancel_scope.cancel()
        for salon in (LOTOS_ID, ORCHID_ID):
            callbacks = [
                r
                for r in fake.requests_to(CALLBACK, "POST")
                if isinstance(r.json, dict) and r.json.get("salon_id") == salon
            ]
            assert len(callbacks) == 1 and successful_callbacks(fake, salon) == 1
        assert sum(w.statistics().delivered for w in workers) == 2


async def _start_worker(database_url: str, base_url: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.actors.yclients._activation_worker", database_url, base_url],
        cwd=str(ROOT),
    )


async def test_worker_killed_mid_retry_then_restarted_delivers_once(
    database_url: str, fake: FakeYClients
) -> None:
    fake.fail(CALLBACK, 503, method="POST", times=None)  # YClients is down
    async with open_real_storage(database_url, redis_url=None) as storage:
        _, item = await registered(storage, BORODA_ID)
        first = await _start_worker(database_url, fake.base_url)
        try:
            with trio.fail_after(WAIT):
                await fake.wait_until(lambda: len(fake.requests_to(CALLBACK, "POST")) >= 3)
        finally:
            first.kill()  # SIGKILL: no cleanup, maybe mid-request
            with trio.fail_after(WAIT):
                await first.wait()
        assert first.returncode == -9
        failed_attempts = len(fake.requests_to(CALLBACK, "POST"))
        assert successful_callbacks(fake, BORODA_ID) == 0
        pending = await storage.outbox.get(item.id)
        assert pending is not None and pending.status == "pending"

        fake.clear_faults()  # YClients recovers
        second = await _start_worker(database_url, fake.base_url)
        try:
            with trio.fail_after(WAIT):
                await fake.wait_until(lambda: successful_callbacks(fake, BORODA_ID) == 1)

            async def delivered() -> bool:
                done = await storage.outbox.get(item.id)
                return done is not None and done.status == "delivered"

            await until(delivered)
        finally:
            second.kill()
            with trio.fail_after(WAIT):
                await second.wait()
        assert successful_callbacks(fake, BORODA_ID) == 1
        assert len(fake.requests_to(CALLBACK, "POST")) == failed_attempts + 1
        assert fake.installation(BORODA_ID)["activations"] == 1
