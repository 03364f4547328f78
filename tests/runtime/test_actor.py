"""Actor and ActorRef behaviour: tell/ask, crashes, restarts, stop, backpressure."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from runtime import (
    Actor,
    ActorCrashed,
    ActorUnavailable,
    AskTimeout,
    ChildSpec,
    ChildState,
    MailboxFull,
    Restart,
    RestartPolicy,
    Supervisor,
)

from ._helpers import Boom, CrashLater, Echo, events, running


def sup_of(*specs: ChildSpec, **policy: Any) -> Supervisor:
    return Supervisor("sup", specs, policy=RestartPolicy(**policy), rng=random.Random(7))


async def test_tell_then_ask_handles_in_order(autojump_clock: trio.abc.Clock) -> None:
    sup = sup_of(ChildSpec("echo", Echo))
    async with running(sup):
        ref = sup.ref("echo")
        ref.tell("a")
        ref.tell("b")
        assert await ref.ask("c") == ("c", 3)
        assert sup.snapshot().children[0].handled == 3


async def test_crash_fails_the_asker_with_cause_and_restarts_fresh(
    autojump_clock: trio.abc.Clock,
) -> None:
    sup = sup_of(ChildSpec("echo", Echo))
    async with running(sup):
        ref = sup.ref("echo")
        assert await ref.ask("x") == ("x", 1)
        with pytest.raises(ActorCrashed) as info:
            await ref.ask("crash")
        assert isinstance(info.value.__cause__, Boom)
        assert info.value.path == "sup/echo"
        # first restart is immediate; the ref now reaches a fresh incarnation
        assert await ref.ask("y") == ("y", 1)
        node = sup.snapshot().children[0]
        assert node.restarts == 1
        assert node.last_error is not None
        assert node.last_error.type == "Boom"


async def test_queued_asks_fail_at_once_when_the_actor_dies(
    autojump_clock: trio.abc.Clock,
) -> None:
    class SlowCrash(Echo):
        async def receive(self, message: Any) -> Any:
            if message == "slow-crash":
                await trio.sleep(1)
                raise Boom("slow")
            return await super().receive(message)

    sup = sup_of(ChildSpec("a", SlowCrash))
    outcomes: list[tuple[str, float]] = []

    async def ask(message: str) -> None:
        try:
            await ref.ask(message, timeout=100)
        except ActorCrashed:
            outcomes.append((message, trio.current_time() - t0))

    async with running(sup):
        ref = sup.ref("a")
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "slow-crash")
            await trio.testing.wait_all_tasks_blocked()
            for i in range(3):
                nursery.start_soon(ask, f"queued-{i}")
        assert sorted(m for m, _ in outcomes) == ["queued-0", "queued-1", "queued-2", "slow-crash"]
        assert all(elapsed == pytest.approx(1.0) for _, elapsed in outcomes)
        assert sup.snapshot().children[0].mailbox.dropped == 3  # type: ignore[union-attr]


async def test_ask_while_restarting_is_refused_promptly(autojump_clock: trio.abc.Clock) -> None:
    log: list[float] = []
    sup = sup_of(ChildSpec("c", lambda: CrashLater(1.0, log)), backoff_initial=10.0, jitter=0.0)
    async with running(sup):
        ref = sup.ref("c")
        await trio.sleep(2.5)  # crashed at 1 (restarted at once) and at 2 (backoff 10 s)
        assert log == [0.0, 1.0]
        t = trio.current_time()
        with pytest.raises(ActorUnavailable) as info:
            await ref.ask("hello", timeout=30)
        assert trio.current_time() == t
        assert info.value.state == "restarting"
        assert "Boom" in str(info.value)
        with pytest.raises(ActorUnavailable):
            ref.tell("hello")
        node = sup.snapshot().children[0]
        assert node.state is ChildState.RESTARTING
        assert node.next_restart_in == pytest.approx(9.5)
        await trio.sleep(10)  # restarted at 12, crashes again at 13
        assert await ref.ask("back") == "back"
        assert log == [0.0, 1.0, 12.0]


async def test_stopped_actor_refuses_and_ref_stays_dead(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    sup = sup_of(ChildSpec("e", lambda: Echo("e", record)))
    async with running(sup):
        ref = sup.ref("e")
        await ref.ask("x")
        await sup.stop_child("e")
        assert events(record) == ["start e", "stop e"]
        with pytest.raises(ActorUnavailable) as info:
            await ref.ask("x")
        assert info.value.state == "stopped"
        with pytest.raises(ActorUnavailable):
            ref.tell("x")
    with pytest.raises(ActorUnavailable):
        ref.tell("after the supervisor stopped")


async def test_ask_times_out_without_hanging(autojump_clock: trio.abc.Clock) -> None:
    sup = sup_of(ChildSpec("e", Echo))
    async with running(sup):
        ref = sup.ref("e")
        t0 = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 10), timeout=1.5)
        assert trio.current_time() - t0 == pytest.approx(1.5)
        # the message is still handled later; the next ask gets its own reply
        assert await ref.ask("next", timeout=20) == ("next", 2)


async def test_full_mailbox_raises_instead_of_blocking(autojump_clock: trio.abc.Clock) -> None:
    gate = trio.Event()

    class Gated(Actor):
        async def receive(self, message: Any) -> Any:
            await gate.wait()
            return message

    sup = sup_of(ChildSpec("g", Gated, mailbox_capacity=2))
    async with running(sup):
        ref = sup.ref("g")
        ref.tell(1)
        await trio.testing.wait_all_tasks_blocked()  # 1 is being handled
        ref.tell(2)
        ref.tell(3)
        with pytest.raises(MailboxFull) as info:
            ref.tell(4)
        assert info.value.capacity == 2
        with pytest.raises(MailboxFull):
            await ref.ask(5)
        stats = sup.snapshot().children[0].mailbox
        assert stats is not None
        assert (stats.depth, stats.capacity, stats.rejected) == (2, 2, 2)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(6) == 6


async def test_expected_errors_reach_the_asker_without_a_crash(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Strict(Actor):
        expected_errors = (ValueError,)

        async def receive(self, message: Any) -> Any:
            if message < 0:
                raise ValueError("negative")
            return message * 2

    sup = sup_of(ChildSpec("s", Strict))
    async with running(sup):
        ref = sup.ref("s")
        with pytest.raises(ValueError, match="negative"):
            await ref.ask(-1)
        ref.tell(-2)  # logged and dropped
        assert await ref.ask(4) == 8
        assert sup.snapshot().children[0].restarts == 0


async def test_a_crash_in_a_timer_is_a_crash_of_the_actor(autojump_clock: trio.abc.Clock) -> None:
    log: list[float] = []
    sup = sup_of(ChildSpec("c", lambda: CrashLater(5.0, log)), stable_after=1.0)
    async with running(sup):
        await trio.sleep(12)
        node = sup.snapshot().children[0]
        # stable for 5 s > stable_after each time, so every restart is immediate
        assert log == [0.0, 5.0, 10.0]
        assert node.restarts == 2
        assert node.last_error is not None
        assert node.last_error.message == "timer went off"


@pytest.mark.parametrize(
    ("restart", "restarted"),
    [(Restart.PERMANENT, True), (Restart.TRANSIENT, False), (Restart.TEMPORARY, False)],
)
async def test_stop_from_inside_is_a_normal_exit(
    autojump_clock: trio.abc.Clock, restart: Restart, restarted: bool
) -> None:
    record: list[tuple[str, str, float]] = []
    sup = sup_of(ChildSpec("e", lambda: Echo("e", record), restart=restart))
    async with running(sup):
        ref = sup.ref("e")
        assert await ref.ask("stop") == "stopping"
        await trio.testing.wait_all_tasks_blocked()
        expected = ["start e", "stop e", "start e"] if restarted else ["start e", "stop e"]
        assert events(record) == expected
        node = sup.snapshot().children[0]
        assert node.state is (ChildState.RUNNING if restarted else ChildState.STOPPED)
        assert node.last_error is None


async def test_actor_ref_and_identity(autojump_clock: trio.abc.Clock) -> None:
    seen: list[Any] = []

    class Self(Actor):
        async def on_start(self) -> None:
            seen.append(self.ref)
            seen.append(self.id)

        async def receive(self, message: Any) -> Any:
            return self.ref

    sup = sup_of(ChildSpec("me", Self))
    async with running(sup):
        ref = sup.ref("me")
        assert await ref.ask("who") == ref
        assert seen == [ref, "me"]
        assert hash(ref) == hash(sup.ref("me"))
        assert repr(ref) == "<ActorRef sup/me>"


def test_actor_outside_a_supervisor_says_so() -> None:
    actor = Echo()
    with pytest.raises(RuntimeError):
        _ = actor.nursery
    with pytest.raises(RuntimeError):
        _ = actor.ref
    with pytest.raises(RuntimeError):
        actor.stop()
