"""``ActorRef.send``: the waiting ``tell`` — backpressure, unavailability, cancellation."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from runtime import (
    Actor,
    ActorUnavailable,
    ChildSpec,
    MailboxFull,
    Registry,
    RestartPolicy,
    Supervisor,
)

from ._helpers import running


class Gated(Actor):
    """Records every message; waits on ``gate`` while handling one; ``"crash"`` crashes it."""

    def __init__(self, gate: trio.Event, seen: list[Any]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: Any) -> Any:
        await self.gate.wait()
        if message == "crash":
            raise RuntimeError("crash on purpose")
        self.seen.append(message)
        return message


def gated(gate: trio.Event, seen: list[Any], *, capacity: int = 2, **policy: Any) -> Supervisor:
    spec = ChildSpec("g", lambda: Gated(gate, seen), mailbox_capacity=capacity, shutdown=30.0)
    return Supervisor("sup", [spec], policy=RestartPolicy(**policy), rng=random.Random(7))


async def fill(ref: Any, *messages: Any) -> None:
    """Tell the first message, let the actor start on it, queue the rest (mailbox full)."""
    ref.tell(messages[0])
    await trio.testing.wait_all_tasks_blocked()
    for message in messages[1:]:
        ref.tell(message)
    with pytest.raises(MailboxFull):
        ref.tell("overflow")


async def test_send_with_room_queues_at_once(autojump_clock: trio.abc.Clock) -> None:
    gate, seen = trio.Event(), list[Any]()
    gate.set()
    sup = gated(gate, seen)
    async with running(sup):
        ref = sup.ref("g")
        await ref.send("a")
        await ref.send("b")
        assert await ref.ask("c") == "c"
        assert seen == ["a", "b", "c"]


async def test_send_waits_for_room_then_delivers_in_order(autojump_clock: trio.abc.Clock) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen)
    done: list[str] = []

    async def sender(message: str) -> None:
        await sup.ref("g").send(message)
        done.append(message)

    async with running(sup) as nursery:
        ref = sup.ref("g")
        await fill(ref, 1, 2, 3)
        nursery.start_soon(sender, "x")
        await trio.testing.wait_all_tasks_blocked()
        assert done == []  # parked: the mailbox is full and the actor is stuck on 1
        stats = sup.snapshot().children[0].mailbox
        assert stats is not None
        assert (stats.depth, stats.rejected) == (2, 1)  # the waiting send is no refusal
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert done == ["x"]
        assert seen == [1, 2, 3, "x"]
        stats = sup.snapshot().children[0].mailbox
        assert stats is not None
        assert (stats.depth, stats.accepted, stats.rejected) == (0, 4, 1)


async def test_each_message_taken_lets_one_waiting_sender_in(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen, capacity=1)
    async with running(sup) as nursery:
        ref = sup.ref("g")
        await fill(ref, 1, 2)
        for message in ("x", "y", "z"):
            nursery.start_soon(ref.send, message)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert seen[:2] == [1, 2]
        assert sorted(seen[2:]) == ["x", "y", "z"]


async def test_a_stop_while_waiting_raises_at_once(autojump_clock: trio.abc.Clock) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen)
    outcome: list[tuple[str, float]] = []

    async def sender() -> None:
        try:
            await sup.ref("g").send("x")
        except ActorUnavailable as exc:
            outcome.append((exc.state, trio.current_time()))

    async with running(sup) as nursery:
        await fill(sup.ref("g"), 1, 2, 3)
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        nursery.start_soon(sup.stop_child, "g")  # the actor is stuck: 30 s budget
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == [("stopping", t0)]  # not after the shutdown budget
        gate.set()
    assert "x" not in seen
    with pytest.raises(ActorUnavailable):
        await sup.ref("g").send("late")


async def test_a_crash_while_waiting_delivers_to_the_restarted_actor_or_raises(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen, backoff_initial=10.0, jitter=0.0)
    results: list[object] = []

    async def sender(message: str) -> None:
        try:
            await sup.ref("g").send(message)
            results.append(message)
        except ActorUnavailable as exc:
            results.append(exc.state)

    async with running(sup) as nursery:
        ref = sup.ref("g")
        # first crash: the restart is immediate, the waiting message reaches the new incarnation
        await fill(ref, "crash", 2, 3)
        nursery.start_soon(sender, "after-first")
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert results == ["after-first"]
        assert seen == ["after-first"]  # 2 and 3 were dropped with the crashed incarnation
        # second crash of the streak: 10 s of backoff, so a send is refused, not parked
        ref.tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        with pytest.raises(ActorUnavailable) as info:
            await ref.send("during-backoff")
        assert (info.value.state, trio.current_time()) == ("restarting", t0)


async def test_cancelling_a_waiting_send_leaves_the_message_unsent(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen)
    async with running(sup):
        ref = sup.ref("g")
        await fill(ref, 1, 2, 3)
        with trio.move_on_after(5) as scope:
            await ref.send("x")
        assert scope.cancelled_caught
        stats = sup.snapshot().children[0].mailbox
        assert stats is not None
        assert (stats.depth, stats.accepted) == (2, 3)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [1, 2, 3]


async def test_send_is_a_checkpoint(autojump_clock: trio.abc.Clock) -> None:
    gate, seen = trio.Event(), list[Any]()
    gate.set()
    sup = gated(gate, seen)
    async with running(sup):
        with trio.CancelScope() as scope:
            scope.cancel()
            await sup.ref("g").send("never")
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert seen == []


async def test_send_to_a_gone_actor_raises(autojump_clock: trio.abc.Clock) -> None:
    gate, seen = trio.Event(), list[Any]()
    sup = gated(gate, seen)
    async with running(sup):
        ref = sup.ref("g")
    with pytest.raises(ActorUnavailable):
        await ref.send("x")


async def test_send_through_a_registry_activates_and_waits(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate, seen = trio.Event(), list[Any]()
    reg: Registry[int] = Registry(
        "reg", lambda key: Gated(gate, seen), mailbox_capacity=1, rng=random.Random(1)
    )
    done: list[str] = []

    async def sender() -> None:
        await reg.ref(5).send("x")
        done.append("x")

    async with running(reg) as nursery:
        await reg.ref(5).send(1)  # activates key 5
        assert reg.active_keys() == [5]
        await trio.testing.wait_all_tasks_blocked()
        reg.ref(5).tell(2)
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert done == ["x"]
        assert seen == [1, 2, "x"]
    with pytest.raises(ActorUnavailable):
        await reg.ref(5).send("late")


async def test_a_passivated_key_lets_its_waiting_sender_reach_the_successor(
    autojump_clock: trio.abc.Clock,
) -> None:
    gate, seen = trio.Event(), list[Any]()
    reg: Registry[int] = Registry(
        "reg", lambda key: Gated(gate, seen), mailbox_capacity=1, rng=random.Random(1)
    )
    async with running(reg) as nursery:
        ref = reg.ref(5)
        ref.tell(1)
        await trio.testing.wait_all_tasks_blocked()
        ref.tell(2)
        nursery.start_soon(ref.send, "x")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(reg.stop, 5)  # graceful: the actor finishes 1 first, drops 2
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [1, "x"]  # x woke on the stop and activated the successor
        assert reg.active_keys() == [5]
