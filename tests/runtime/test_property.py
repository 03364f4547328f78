"""Property: random tell / ask / crash / stop sequences against a supervised pool.

Invariants checked for every example:
- every ask completes (reply or error) within its timeout, never later;
- asks to a stopped child fail at once with ``ActorUnavailable``;
- restart counts equal the crashes the actors actually handled;
- no task outlives its supervisor.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import (
    Actor,
    ActorError,
    ActorUnavailable,
    ChildSpec,
    RestartPolicy,
    Supervisor,
)

POOL = 3

ops = st.lists(
    st.one_of(
        st.tuples(st.just("tell"), st.integers(0, POOL - 1)),
        st.tuples(
            st.just("ask"),
            st.integers(0, POOL - 1),
            st.sampled_from([0.0, 0.05, 0.5]),  # handler duration
            st.sampled_from([0.01, 0.1, 1.0]),  # ask timeout
        ),
        st.tuples(st.just("crash"), st.integers(0, POOL - 1)),
        st.tuples(st.just("stop"), st.integers(0, POOL - 1)),
        st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.01, 0.2])),
    ),
    max_size=30,
)


def all_tasks() -> set[trio.lowlevel.Task]:
    found: set[trio.lowlevel.Task] = set()
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        if task is None:
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return found


class Worker(Actor):
    def __init__(self, index: int, crashes: list[int]) -> None:
        self.index = index
        self.crashes = crashes

    async def on_start(self) -> None:
        self.nursery.start_soon(trio.sleep_forever)  # a timer that must not leak

    async def receive(self, message: Any) -> Any:
        if message == "crash":
            self.crashes[self.index] += 1
            raise RuntimeError("injected")
        if isinstance(message, float):
            await trio.sleep(message)
        return message


async def scenario(steps: list[tuple[Any, ...]], seed: int) -> None:
    crashes = [0] * POOL
    stopped: set[int] = set()
    asks: list[tuple[float, float, float, str]] = []  # start, end, timeout, outcome
    policy = RestartPolicy(
        max_restarts=10_000, backoff_initial=0.05, backoff_max=0.4, stable_after=1_000
    )
    sup = Supervisor(
        "pool",
        [ChildSpec(str(i), lambda i=i: Worker(i, crashes)) for i in range(POOL)],  # type: ignore[misc]
        policy=policy,
        rng=random.Random(seed),
    )
    before = all_tasks()

    async def ask(index: int, duration: float, timeout: float, was_stopped: bool) -> None:
        start = trio.current_time()
        try:
            await sup.ref(str(index)).ask(duration, timeout=timeout)
            outcome = "ok"
        except ActorUnavailable:
            outcome = "unavailable"
        except ActorError as exc:
            outcome = type(exc).__name__
        asks.append((start, trio.current_time(), timeout, outcome))
        if was_stopped:  # stopped before this ask was sent: refused at once
            assert outcome == "unavailable"
            assert trio.current_time() == start

    async with trio.open_nursery() as outer:
        await outer.start(sup.run)
        async with trio.open_nursery() as nursery:
            for step in steps:
                kind, *args = step
                if kind == "tell":
                    with contextlib.suppress(ActorError):
                        sup.ref(str(args[0])).tell(0.0)
                elif kind == "crash":
                    with contextlib.suppress(ActorError):
                        sup.ref(str(args[0])).tell("crash")
                elif kind == "ask":
                    index, duration, timeout = args
                    nursery.start_soon(ask, index, duration, timeout, index in stopped)
                elif kind == "stop":
                    await sup.stop_child(str(args[0]))
                    stopped.add(args[0])
                else:
                    await trio.sleep(args[0])
        # every ask is done (the nursery joined them); let pending restarts happen
        await trio.sleep(5)
        snapshot = sup.snapshot()
        outer.cancel_scope.cancel()

    for start, end, timeout, outcome in asks:
        assert end - start <= timeout + 1e-9, (outcome, end - start, timeout)
    for i in range(POOL):
        node = snapshot.find(str(i))
        assert node is not None
        if i in stopped:
            assert node.restarts <= crashes[i] <= node.restarts + 1
        else:
            assert node.restarts == crashes[i], (i, node.restarts, crashes)
    assert all_tasks() <= before  # nothing the supervisor started is still alive


@settings(max_examples=50, deadline=None)
@given(steps=ops, seed=st.integers(0, 2**32 - 1))
def test_random_operations_keep_the_invariants(steps: list[tuple[Any, ...]], seed: int) -> None:
    trio.run(scenario, steps, seed, clock=trio.testing.MockClock(autojump_threshold=0))
