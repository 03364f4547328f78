"""Registry: virtual actors by key — activation, passivation, keep-alive, stop, quarantine."""

from __future__ import annotations

import gc
import random
import weakref
from typing import Any

import pytest
import trio
import trio.testing

from runtime import (
    Actor,
    ActorCrashed,
    ActorUnavailable,
    ChildSpec,
    ChildState,
    Registry,
    RestartPolicy,
    Supervisor,
)

from ._helpers import Echo, events, running


class Company(Echo):
    """An Echo that remembers its key and can hold a "live session" (keep-alive veto)."""

    live: dict[int, bool] = {}  # noqa: RUF012 - per-test state, reset by the fixture

    def __init__(self, key: int, record: list[tuple[str, str, float]]) -> None:
        super().__init__(f"c{key}", record)
        self.key = key

    def keep_alive(self) -> bool:
        return Company.live.get(self.key, False)


@pytest.fixture(autouse=True)
def _reset_live() -> None:
    Company.live = {}


def registry(
    record: list[tuple[str, str, float]], built: list[int] | None = None, **kw: Any
) -> Registry[int]:
    def factory(key: int) -> Actor:
        if built is not None:
            built.append(key)
        return Company(key, record)

    kw.setdefault("rng", random.Random(1))
    return Registry("companies", factory, **kw)


async def test_first_message_activates(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record)
    async with running(reg):
        ref = reg.ref(7)
        assert reg.lookup(7) is None
        assert len(reg) == 0
        assert await ref.ask("hi") == ("hi", 1)
        assert reg.lookup(7) == ref
        assert reg.active_keys() == [7]
        assert events(record) == ["start c7"]
        assert repr(ref) == "<ActorRef companies/7>"


async def test_concurrent_first_messages_activate_exactly_one(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []
    built: list[int] = []
    reg = registry(record, built, mailbox_capacity=128)
    answers: list[Any] = []

    async def ask(i: int) -> None:
        answers.append(await reg.ref(1).ask(i))

    async def activate() -> None:
        answers.append(await reg.activate(1))

    async with running(reg):
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(ask, i)
            nursery.start_soon(activate)
            nursery.start_soon(activate)
        assert built == [1]
        assert len(answers) == 52
        assert sorted(a[1] for a in answers if isinstance(a, tuple)) == list(range(1, 51))


async def test_idle_actor_is_passivated_and_reactivated(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    built: list[int] = []
    reg = registry(record, built, idle_timeout=10.0, sweep_interval=1.0)
    async with running(reg):
        ref = reg.ref(3)
        await ref.ask("a")
        await trio.sleep(5)
        await ref.ask("b")  # activity resets the idle clock
        await trio.sleep(9)
        assert reg.active_keys() == [3]
        await trio.sleep(2.5)
        assert reg.active_keys() == []
        stop_time = record[-1][2]
        assert events(record) == ["start c3", "stop c3"]
        assert 15.0 <= stop_time <= 16.0
        assert reg.lookup(3) is None
        # the same ref activates a fresh actor (state reloaded in on_start)
        assert await ref.ask("c") == ("c", 1)
        assert built == [3, 3]


async def test_keep_alive_vetoes_passivation(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record, idle_timeout=10.0, sweep_interval=1.0)
    async with running(reg):
        Company.live[5] = True  # e.g. a live WhatsApp session
        await reg.ref(5).ask("x")
        await reg.ref(6).ask("x")
        await trio.sleep(100)
        assert reg.active_keys() == [5]
        Company.live[5] = False
        await trio.sleep(12)
        assert reg.active_keys() == []


async def test_a_busy_actor_is_not_passivated(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record, idle_timeout=10.0, sweep_interval=1.0)
    async with running(reg):
        ref = reg.ref(1)
        ref.tell(("sleep", 50))  # one long handler
        await trio.sleep(40)
        assert reg.active_keys() == [1]
        await trio.sleep(22)
        assert reg.active_keys() == []


async def test_message_during_passivation_starts_a_successor_after_on_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []

    class SlowStop(Company):
        async def on_stop(self) -> None:
            await trio.sleep(3)  # saving state
            await super().on_stop()

    reg: Registry[int] = Registry(
        "companies", lambda k: SlowStop(k, record), idle_timeout=10.0, sweep_interval=1.0
    )
    async with running(reg):
        await reg.ref(1).ask("x")
        await trio.sleep(11.5)  # passivation began at 11, on_stop ends at 14
        assert reg.active_keys() == []
        assert await reg.ref(1).ask("y") == ("y", 1)
        assert events(record) == ["start c1", "stop c1", "start c1"]
        assert record[1][2] == record[2][2] == 14.0


async def test_a_successor_does_not_keep_its_predecessor_alive(
    autojump_clock: trio.abc.Clock,
) -> None:
    built: list[weakref.ref[Company]] = []

    class SlowStop(Company):
        async def on_stop(self) -> None:
            await trio.sleep(3)

    def factory(key: int) -> Actor:
        actor = SlowStop(key, [])
        built.append(weakref.ref(actor))
        return actor

    reg: Registry[int] = Registry("companies", factory, idle_timeout=10.0, sweep_interval=1.0)
    async with running(reg):
        await reg.ref(1).ask("x")
        await trio.sleep(11.5)  # passivating: a message now starts a successor after on_stop
        assert await reg.ref(1).ask("y") == ("y", 1)
        gc.collect()
        assert len(built) == 2
        assert built[0]() is None  # the first incarnation (and its cell) are gone
        assert built[1]() is not None


async def test_stop_deactivates_now_ignoring_keep_alive(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record, idle_timeout=None)
    async with running(reg):
        Company.live[1] = True
        await reg.ref(1).ask("x")
        assert await reg.stop(1) is True
        assert await reg.stop(1) is False
        assert events(record) == ["start c1", "stop c1"]
        assert reg.active_keys() == []
        await reg.ref(1).ask("again")
        assert reg.active_keys() == [1]


async def test_crashing_actor_is_restarted_then_quarantined(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(
        record,
        policy=RestartPolicy(max_restarts=2, backoff_initial=0.0, quarantine_retry=60.0),
    )
    async with running(reg):
        bad, good = reg.ref(1), reg.ref(2)
        await good.ask("x")
        for _ in range(3):
            with pytest.raises(ActorCrashed):
                await bad.ask("crash")
        with pytest.raises(ActorUnavailable) as info:
            await bad.ask("hello")
        assert info.value.state == "failed"
        assert sorted(reg.active_keys()) == [1, 2]  # quarantined keys stay (no reactivation storm)
        node = reg.snapshot().find("1")
        assert node is not None
        assert node.state is ChildState.FAILED
        assert node.restarts == 2
        assert await good.ask("y") == ("y", 2)
        await trio.sleep(61)
        assert await bad.ask("retried") == ("retried", 1)


async def test_activate_waits_for_on_start_and_reports_failure(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Slow(Actor):
        async def on_start(self) -> None:
            await trio.sleep(2)
            if self.id == "13":
                raise RuntimeError("cannot load")

        async def receive(self, message: Any) -> Any:
            return message

    reg: Registry[int] = Registry("r", lambda k: Slow(), policy=RestartPolicy(backoff_initial=5))
    async with running(reg):
        ref = await reg.activate(1)
        assert trio.current_time() == 2.0
        assert await ref.ask("x") == "x"
        with pytest.raises(ActorUnavailable):
            await reg.activate(13)


async def test_registry_not_running_refuses(autojump_clock: trio.abc.Clock) -> None:
    reg = registry([])
    with pytest.raises(ActorUnavailable):
        reg.ref(1).tell("x")
    async with running(reg):
        ref = reg.ref(1)
        await ref.ask("x")
    with pytest.raises(ActorUnavailable):
        await ref.ask("x")
    async with running(reg):  # run again (as a parent restarting it would): refs still work
        assert await ref.ask("y") == ("y", 1)


async def test_registry_under_a_supervisor_stops_its_actors(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record)
    root = Supervisor("root", [ChildSpec("companies", lambda: reg, shutdown=30)])
    async with running(root):
        for key in (1, 2, 3):
            await reg.ref(key).ask("x")
        node = root.snapshot().find("companies")
        assert node is not None
        assert node.kind == "registry"
        assert [c.id for c in node.children] == ["1", "2", "3"]
    assert sorted(events(record)) == sorted(
        ["start c1", "start c2", "start c3", "stop c1", "stop c2", "stop c3"]
    )


async def test_stop_a_quarantined_key_then_it_can_activate_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []
    reg = registry(record, policy=RestartPolicy(max_restarts=0, quarantine_retry=1000.0))
    async with running(reg):
        with pytest.raises(ActorCrashed):
            await reg.ref(9).ask("crash")
        with pytest.raises(ActorUnavailable):
            reg.ref(9).tell("x")
        assert await reg.stop(9) is True
        assert reg.active_keys() == []
        assert await reg.ref(9).ask("fresh") == ("fresh", 1)
