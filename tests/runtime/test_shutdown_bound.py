"""The whole stop of a supervision tree is bounded by one deadline (issue 12, item 14).

A registry child runs with ``shutdown=math.inf`` (OTP's advice for a nested supervisor) and its
actors with a 5 s budget each; an ``on_stop`` that hangs used to hold the tree for those
budgets whatever the caller could afford. With a stop deadline every budget ends by it,
nested registries included. Under ``MockClock(autojump_threshold=0)``: exact times, no sleeps.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from runtime import Actor, ChildSpec, ChildState, Registry, Supervisor, run_root

GRACE = 3.0


class HangsOnStop(Actor):
    """Answers every message; its ``on_stop`` never returns (until cancelled)."""

    def __init__(self, name: str, log: list[tuple[str, str, float]]) -> None:
        self.name = name
        self.log = log

    async def receive(self, message: Any) -> Any:
        return message

    async def on_stop(self) -> None:
        self.log.append((self.name, "on_stop", trio.current_time()))
        try:
            await trio.sleep_forever()
        finally:
            self.log.append((self.name, "cancelled", trio.current_time()))


def build_tree(log: list[tuple[str, str, float]], *, static_budget: float) -> Supervisor:
    """A node-shaped tree: a registry of hanging actors (``shutdown=math.inf``, 5 s per actor)
    then a static actor that hangs too, with ``static_budget``."""
    registry: Registry[int] = Registry(
        "companies", lambda key: HangsOnStop(f"company-{key}", log), shutdown=5.0
    )
    return Supervisor(
        "node",
        [
            ChildSpec("companies", lambda: registry, shutdown=math.inf),
            ChildSpec("service", lambda: HangsOnStop("service", log), shutdown=static_budget),
        ],
    )


def registry_of(tree: Supervisor) -> Registry[int]:
    registry = tree._cells["companies"].instance
    assert isinstance(registry, Registry)
    return registry


async def test_a_hanging_on_stop_in_a_registry_is_cut_at_the_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[tuple[str, str, float]] = []
    tree = build_tree(log, static_budget=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        for key in (1, 2, 3):
            assert await registry_of(tree).ref(key).ask("ping", timeout=1) == "ping"
        start = trio.current_time()
        await tree.aclose(deadline=start + GRACE)
        took = trio.current_time() - start
    assert took <= GRACE  # was 0.5 (the service) + 5 (the companies' budget) = 5.5 s
    # Every company had its graceful stop, and was cancelled at the deadline.
    for key in (1, 2, 3):
        assert (f"company-{key}", "on_stop", start + 0.5) in log
        assert (f"company-{key}", "cancelled", start + GRACE) in log
    assert tree.state is ChildState.STOPPED
    companies = next(c for c in tree.snapshot().children if c.id == "companies")
    assert not companies.stop_timed_out
    assert all(child.state is ChildState.STOPPED for child in companies.children)


async def test_budgets_share_the_deadline_across_children(autojump_clock: trio.abc.Clock) -> None:
    """A child that spends the whole deadline leaves none to the children stopped after it:
    they are cancelled at once, and the tree is still done by the deadline."""
    log: list[tuple[str, str, float]] = []
    tree = build_tree(log, static_budget=60.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await registry_of(tree).ref(7).ask("ping", timeout=1)
        start = trio.current_time()
        await tree.aclose(deadline=start + GRACE)
        took = trio.current_time() - start
    assert took <= GRACE  # was 60 (the service) + 5 (the company) = 65 s
    assert ("service", "cancelled", start + GRACE) in log
    assert tree.state is ChildState.STOPPED


async def test_a_deadline_set_before_a_cancellation_bounds_that_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The shape the server uses: ``stop_by`` when the shutdown begins, then the nursery that
    runs the tree is cancelled."""
    log: list[tuple[str, str, float]] = []
    tree = build_tree(log, static_budget=0.5)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_root(tree, task_status=task_status))
            await registry_of(tree).ref(1).ask("ping", timeout=1)
            start = trio.current_time()
            tree.stop_by(start + GRACE)
            nursery.cancel_scope.cancel()
    assert trio.current_time() - start <= GRACE
    assert ("company-1", "cancelled", start + GRACE) in log


async def test_without_a_deadline_the_budgets_apply_as_they_are(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[tuple[str, str, float]] = []
    tree = build_tree(log, static_budget=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await registry_of(tree).ref(1).ask("ping", timeout=1)
        start = trio.current_time()
        await tree.aclose()
        took = trio.current_time() - start
    # 0.5 s for the service, then the company's 5 s budget and its cancel.
    assert ("company-1", "cancelled", start + 0.5 + 5.0) in log
    assert took >= 5.5


async def test_a_new_run_forgets_the_last_deadline(autojump_clock: trio.abc.Clock) -> None:
    log: list[tuple[str, str, float]] = []
    tree = build_tree(log, static_budget=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await tree.aclose(deadline=trio.current_time())
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.run)
        await registry_of(tree).ref(1).ask("ping", timeout=1)
        start = trio.current_time()
        await tree.aclose()
    assert ("company-1", "cancelled", start + 0.5 + 5.0) in log
