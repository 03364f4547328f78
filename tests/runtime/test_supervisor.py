"""Supervisor semantics: restart types, intensity, backoff, order, shutdown, escalation."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from runtime import (
    CANCEL_GRACE,
    Actor,
    ActorCrashed,
    ActorUnavailable,
    ChildSpec,
    ChildState,
    OnExhausted,
    Restart,
    RestartIntensityExceeded,
    RestartPolicy,
    Strategy,
    Supervisor,
    run_root,
)

from ._helpers import Boom, CrashLater, Echo, events, running


class Job:
    """A service child: ready at once, then ends normally or crashes after ``after`` s."""

    def __init__(self, outcome: str, after: float, log: list[float]) -> None:
        self.outcome = outcome
        self.after = after
        self.log = log

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.log.append(trio.current_time())
        task_status.started()
        await trio.sleep(self.after)
        if self.outcome == "crash":
            raise Boom("job crashed")


@pytest.mark.parametrize(
    ("restart", "outcome", "restarted"),
    [
        (Restart.PERMANENT, "crash", True),
        (Restart.PERMANENT, "normal", True),
        (Restart.TRANSIENT, "crash", True),
        (Restart.TRANSIENT, "normal", False),
        (Restart.TEMPORARY, "crash", False),
        (Restart.TEMPORARY, "normal", False),
    ],
)
async def test_restart_types(
    autojump_clock: trio.abc.Clock, restart: Restart, outcome: str, restarted: bool
) -> None:
    starts: list[float] = []
    sup = Supervisor(
        "s",
        [ChildSpec("job", lambda: Job(outcome, 1.0, starts), restart=restart)],
        policy=RestartPolicy(max_restarts=100, stable_after=0.5),
    )
    async with running(sup):
        await trio.sleep(1.5)
        node = sup.snapshot().children[0]
        assert starts == ([0.0, 1.0] if restarted else [0.0])
        assert node.restarts == (1 if restarted else 0)
        assert node.state is (ChildState.RUNNING if restarted else ChildState.STOPPED)
        assert (node.last_error is not None) == (outcome == "crash")


async def test_start_in_order_each_ready_before_next_stop_in_reverse(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []

    class SlowStart(Echo):
        async def on_start(self) -> None:
            await trio.sleep(1)  # not ready for a second
            await super().on_start()

    sup = Supervisor(
        "s",
        [ChildSpec(name, lambda name=name: SlowStart(name, record)) for name in "abc"],  # type: ignore[misc]
    )
    async with running(sup):
        assert trio.current_time() == 3.0  # started one after another
        assert sup.state is ChildState.RUNNING
    assert events(record) == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert [t for _, _, t in record[:3]] == [1.0, 2.0, 3.0]
    assert sup.snapshot().state is ChildState.STOPPED
    assert {n.state for n in sup.snapshot().children} == {ChildState.STOPPED}


async def test_shutdown_budget_and_a_child_that_shields_itself(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []

    class SlowStop(Echo):
        async def on_stop(self) -> None:
            await trio.sleep(100)  # ignores its budget, but can be cancelled
            await super().on_stop()

    class Stubborn:
        async def run(
            self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(50)
                record.append(("stubborn", "gone", trio.current_time()))

    sup = Supervisor(
        "s",
        [
            ChildSpec("a", lambda: Echo("a", record)),
            ChildSpec("slow", lambda: SlowStop("slow", record), shutdown=2.0),
            ChildSpec("stubborn", Stubborn, shutdown=3.0),
        ],
    )
    snapshots = []
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.sleep(10)
        t0 = trio.current_time()
        sup.stop()
        # stubborn: 3 s then given up; slow: 2 s graceful + cancelled; a: at once
        await trio.sleep(3 + 2 + 0.5)
        snapshots.append(sup.snapshot())
    t_end = trio.current_time()
    assert events(record) == ["start a", "start slow", "stop a", "gone stubborn"]
    stop_a = record[2][2]
    assert stop_a - t0 == pytest.approx(3.0 + 2.0)  # not 50 + 100
    assert t_end - t0 == pytest.approx(50.0)  # trio still joins the stubborn task
    stubborn = snapshots[0].find("stubborn")
    assert stubborn is not None
    assert stubborn.stop_timed_out
    assert stubborn.state is ChildState.STOPPING
    slow = snapshots[0].find("slow")
    assert slow is not None
    assert slow.state is ChildState.STOPPED
    assert not slow.stop_timed_out  # cancelled within CANCEL_GRACE


@pytest.mark.parametrize(
    ("cleanup", "timed_out"), [(CANCEL_GRACE / 2, False), (CANCEL_GRACE * 3, True)]
)
async def test_an_actor_cancelled_after_its_budget_gets_cancel_grace_more(
    autojump_clock: trio.abc.Clock, cleanup: float, timed_out: bool
) -> None:
    ended: list[float] = []

    class CleansUpWhenCancelled(Actor):
        async def receive(self, message: Any) -> Any:
            return message

        async def on_stop(self) -> None:
            try:
                await trio.sleep_forever()  # ignores its graceful budget
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(cleanup)  # cleanup that outlives the cancellation
                ended.append(trio.current_time())

    sup = Supervisor("s", [ChildSpec("a", CleansUpWhenCancelled, shutdown=2.0)])
    async with running(sup):
        t0 = trio.current_time()
        await sup.stop_child("a")
        returned = trio.current_time() - t0
        node = sup.snapshot().find("a")
        assert node is not None
        assert node.stop_timed_out is timed_out
        if timed_out:  # given up on after the budget plus the grace; trio still joins it later
            assert returned == pytest.approx(2.0 + CANCEL_GRACE)
            assert ended == []
            assert node.state is ChildState.STOPPING
        else:  # ended within the grace: waited for and stopped
            assert returned == pytest.approx(2.0 + cleanup)
            assert ended == [pytest.approx(t0 + 2.0 + cleanup)]
            assert node.state is ChildState.STOPPED


async def test_static_child_exceeding_intensity_escalates(autojump_clock: trio.abc.Clock) -> None:
    starts: list[float] = []
    record: list[tuple[str, str, float]] = []
    sup = Supervisor(
        "infra",
        [
            ChildSpec("steady", lambda: Echo("steady", record)),
            ChildSpec("flaky", lambda: CrashLater(1.0, starts)),
        ],
        policy=RestartPolicy(max_restarts=2, period=60, backoff_initial=0.5, jitter=0.0),
    )
    with pytest.raises(RestartIntensityExceeded) as info:
        await sup.run()
    # crash at 1 → restart at once; crash at 2 → +0.5; crash at 3.5 → third crash: give up
    assert starts == [0.0, 1.0, 2.5]
    assert trio.current_time() == 3.5
    assert info.value.path == "infra/flaky"
    assert isinstance(info.value.__cause__, Boom)
    assert events(record) == ["start steady", "stop steady"]
    snap = sup.snapshot()
    assert snap.state is ChildState.FAILED
    assert snap.last_error is not None
    assert snap.last_error.type == "RestartIntensityExceeded"
    flaky = snap.find("flaky")
    assert flaky is not None
    assert flaky.state is ChildState.FAILED
    assert flaky.restarts == 2


async def test_dynamic_child_exceeding_intensity_is_quarantined_then_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts: list[float] = []
    sup = Supervisor(
        "tenants",
        policy=RestartPolicy(
            max_restarts=1,
            period=60,
            backoff_initial=0.0,
            quarantine_retry=100.0,
            stable_after=30.0,
            jitter=0.0,
        ),
    )
    async with running(sup):
        healthy = await sup.start_child(ChildSpec("healthy", Echo))
        bad = await sup.start_child(ChildSpec("bad", lambda: CrashLater(1.0, starts)))
        await trio.sleep(2.5)  # crash at 1 (restart), crash at 2: quarantined
        assert starts == [0.0, 1.0]
        node = sup.snapshot().find("bad")
        assert node is not None
        assert node.state is ChildState.FAILED
        assert node.last_error is not None
        assert node.last_error.type == "Boom"
        assert node.next_restart_in == pytest.approx(99.5)
        with pytest.raises(ActorUnavailable) as info:
            await bad.ask("hi")
        assert info.value.state == "failed"
        assert "timer went off" in str(info.value)
        assert sup.state is ChildState.RUNNING
        assert await healthy.ask("still here") == ("still here", 1)
        # retried after quarantine_retry; it crashes before it is stable: straight back
        await trio.sleep(101)  # retried at 102, crashed at 103
        assert starts == [0.0, 1.0, 102.0]
        node = sup.snapshot().find("bad")
        assert node is not None
        assert node.state is ChildState.FAILED
        assert node.restarts == 2
        await trio.sleep(100)
        assert starts == [0.0, 1.0, 102.0, 203.0]


async def test_backoff_grows_with_jitter_is_bounded_and_resets_when_stable(
    autojump_clock: trio.abc.Clock,
) -> None:
    policy = RestartPolicy(
        max_restarts=1000,
        period=1000,
        backoff_initial=1.0,
        backoff_max=8.0,
        stable_after=20.0,
        jitter=0.25,
    )
    starts: list[float] = []
    crash_after = [0.5] * 7 + [30.0, 0.5]
    lives = iter(crash_after)

    sup = Supervisor(
        "s",
        [ChildSpec("c", lambda: CrashLater(next(lives), starts))],
        policy=policy,
        rng=random.Random(42),
    )
    async with running(sup):
        await trio.sleep(200)
    replica = random.Random(42)
    expected = [policy.backoff(i, replica) for i in range(7)] + [0.0]
    gaps = [b - a - life for a, b, life in zip(starts, starts[1:], crash_after, strict=False)]
    assert gaps == pytest.approx(expected)
    assert gaps[0] == 0.0  # first restart immediate
    assert gaps[1] == pytest.approx(1.0, rel=0.25)
    assert gaps[2] == pytest.approx(2.0, rel=0.25)
    assert max(gaps) <= 8.0 + 1e-9  # bounded
    assert gaps[-1] == 0.0  # ran 30 s > stable_after: the streak reset


async def test_siblings_lose_no_message_while_one_crashes(autojump_clock: trio.abc.Clock) -> None:
    received: list[int] = []

    class Collector(Actor):
        async def receive(self, message: Any) -> Any:
            received.append(message)
            await trio.lowlevel.checkpoint()

    sup = Supervisor(
        "s",
        [ChildSpec("steady", Collector, mailbox_capacity=16), ChildSpec("crashy", Echo)],
        policy=RestartPolicy(max_restarts=1000, backoff_initial=0.001),
    )
    async with running(sup):
        steady, crashy = sup.ref("steady"), sup.ref("crashy")

        async def crash_loop() -> None:
            for _ in range(50):
                with contextlib.suppress(ActorUnavailable):
                    crashy.tell("crash")
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(crash_loop)
            for i in range(500):
                await steady.ask(i) if i % 16 == 15 else steady.tell(i)
        await steady.ask(-1)
        assert received == [*range(500), -1]
        snap = sup.snapshot()
        assert snap.find("steady").restarts == 0  # type: ignore[union-attr]
        assert snap.find("crashy").restarts >= 5  # type: ignore[union-attr]


async def test_rest_for_one_restarts_the_later_children_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []
    sup = Supervisor(
        "s",
        [ChildSpec(n, lambda n=n: Echo(n, record)) for n in "abc"],  # type: ignore[misc]
        strategy=Strategy.REST_FOR_ONE,
    )
    async with running(sup):
        record.clear()
        with pytest.raises(ActorCrashed):
            await sup.ref("b").ask("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert events(record) == ["stop c", "start b", "start c"]
        restarts = {n.id: n.restarts for n in sup.snapshot().children}
        assert restarts == {"a": 0, "b": 1, "c": 1}
        assert await sup.ref("c").ask("x") == ("x", 1)
        assert await sup.ref("a").ask("x") == ("x", 1)


async def test_dynamic_children_start_and_stop_at_runtime(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    sup = Supervisor("s")
    async with running(sup):
        ref = await sup.start_child(ChildSpec("d", lambda: Echo("d", record)))
        assert await ref.ask(1) == (1, 1)
        with pytest.raises(ValueError, match="already"):
            await sup.start_child(ChildSpec("d", Echo))
        assert sup.child_ids() == ["d"]
        await sup.stop_child("d")
        assert sup.child_ids() == []
        assert events(record) == ["start d", "stop d"]
        with pytest.raises(ActorUnavailable):
            await ref.ask(2)
        # the id is free again; the old ref does not reach the new child
        new = await sup.start_child(ChildSpec("d", Echo))
        assert await new.ask(3) == (3, 1)
        with pytest.raises(ActorUnavailable):
            ref.tell(4)
        with pytest.raises(KeyError):
            await sup.stop_child("nope")


async def test_start_child_reports_a_failed_first_start_and_keeps_supervising(
    autojump_clock: trio.abc.Clock,
) -> None:
    attempts: list[float] = []

    class FailsOnce(Echo):
        async def on_start(self) -> None:
            attempts.append(trio.current_time())
            if len(attempts) == 1:
                raise Boom("first start fails")

    sup = Supervisor("s")
    async with running(sup):
        with pytest.raises(ActorCrashed, match="first start fails"):
            await sup.start_child(ChildSpec("f", FailsOnce))
        await trio.testing.wait_all_tasks_blocked()
        assert len(attempts) == 2  # restarted at once
        assert await sup.ref("f").ask("ok") == ("ok", 1)


async def test_a_static_child_that_cannot_start_fails_the_supervisor(
    autojump_clock: trio.abc.Clock,
) -> None:
    record: list[tuple[str, str, float]] = []

    class NoStart(Echo):
        async def on_start(self) -> None:
            raise Boom("config missing")

    sup = Supervisor(
        "s", [ChildSpec("a", lambda: Echo("a", record)), ChildSpec("b", lambda: NoStart("b"))]
    )
    with pytest.raises(Boom, match="config missing"):
        await sup.run()
    assert events(record) == ["start a", "stop a"]
    assert sup.state is ChildState.FAILED


async def test_nested_supervisor_escalation_restarts_the_subtree(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts: list[float] = []
    inner_policy = RestartPolicy(max_restarts=0, stable_after=1000)

    def inner() -> Supervisor:
        return Supervisor(
            "inner", [ChildSpec("c", lambda: CrashLater(1.0, starts))], policy=inner_policy
        )

    outer = Supervisor(
        "outer",
        [ChildSpec("inner", inner, shutdown=math.inf)],
        policy=RestartPolicy(max_restarts=10, backoff_initial=0.0, jitter=0.0),
    )
    async with running(outer):
        await trio.sleep(2.5)
        snap = outer.snapshot()
        node = snap.find("inner")
        assert node is not None
        assert node.kind == "supervisor"
        assert node.restarts == 2
        assert node.last_error is not None
        assert node.last_error.type == "RestartIntensityExceeded"
        assert starts == [0.0, 1.0, 2.0]
        assert snap.find("inner/c") is not None


async def test_a_restarted_supervisor_keeps_its_refs(autojump_clock: trio.abc.Clock) -> None:
    starts: list[float] = []
    inner = Supervisor(
        "inner",
        [ChildSpec("echo", Echo), ChildSpec("flaky", lambda: CrashLater(1.0, starts))],
        policy=RestartPolicy(max_restarts=0),
    )
    ref = inner.ref("echo")
    outer = Supervisor(
        "outer",
        [ChildSpec("inner", lambda: inner, shutdown=math.inf)],
        policy=RestartPolicy(max_restarts=10, backoff_initial=0.0, stable_after=0.5),
    )
    async with running(outer):
        assert await ref.ask("a") == ("a", 1)
        await trio.sleep(1.5)  # flaky escalated at 1: inner stopped and was restarted
        assert starts == [0.0, 1.0]
        assert outer.snapshot().find("inner").restarts == 1  # type: ignore[union-attr]
        assert await ref.ask("b") == ("b", 1)  # same ref, new incarnation
        assert inner.snapshot().find("echo").restarts == 0  # type: ignore[union-attr]


async def test_run_root_contains_a_failure_after_start(autojump_clock: trio.abc.Clock) -> None:
    failures: list[BaseException] = []
    starts: list[float] = []
    root = Supervisor(
        "root",
        [ChildSpec("c", lambda: CrashLater(1.0, starts))],
        policy=RestartPolicy(max_restarts=0),
    )
    async with trio.open_nursery() as app_nursery:
        await app_nursery.start(
            lambda task_status: run_root(root, on_failure=failures.append, task_status=task_status)
        )
        await trio.sleep(5)
        # the app's nursery is still alive and can run things
        app_nursery.start_soon(trio.sleep, 1)
    assert len(failures) == 1
    assert isinstance(failures[0], RestartIntensityExceeded)
    assert root.state is ChildState.FAILED


async def test_run_root_raises_a_boot_failure_to_the_starter(
    autojump_clock: trio.abc.Clock,
) -> None:
    class NoStart(Echo):
        async def on_start(self) -> None:
            raise Boom("cannot boot")

    root = Supervisor("root", [ChildSpec("c", NoStart)])
    with pytest.RaisesGroup(Boom):  # raised by nursery.start, i.e. to the starter
        async with trio.open_nursery() as nursery:
            await nursery.start(run_root, root)


async def test_aclose_stops_and_waits(autojump_clock: trio.abc.Clock) -> None:
    record: list[tuple[str, str, float]] = []
    sup = Supervisor("s", [ChildSpec("a", lambda: Echo("a", record))])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        with pytest.raises(RuntimeError, match="already running"):
            await sup.run()
        await sup.aclose()
        assert sup.state is ChildState.STOPPED
        assert events(record) == ["start a", "stop a"]
        await sup.aclose()  # idempotent


def test_policy_and_spec_validation() -> None:
    with pytest.raises(ValueError):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ValueError):
        RestartPolicy(jitter=2)
    with pytest.raises(ValueError):
        RestartPolicy(quarantine_retry=0)
    with pytest.raises(ValueError):
        ChildSpec("a/b", Echo)
    with pytest.raises(ValueError):
        ChildSpec("a", Echo, mailbox_capacity=0)
    with pytest.raises(ValueError):
        Supervisor("s", [ChildSpec("a", Echo), ChildSpec("a", Echo)])
    assert ChildSpec("x", Echo).on_exhausted is None
    assert OnExhausted.QUARANTINE.value == "quarantine"


def test_backoff_values_are_bounded_and_deterministic() -> None:
    policy = RestartPolicy(backoff_initial=0.1, backoff_max=30.0, jitter=0.2)
    a = [policy.backoff(i, random.Random(3)) for i in range(20)]
    b = [policy.backoff(i, random.Random(3)) for i in range(20)]
    assert a == b
    assert a[0] == 0.0
    for i, delay in enumerate(a[1:], start=1):
        base = min(30.0, 0.1 * 2 ** (i - 1))
        assert base * 0.8 - 1e-9 <= delay <= min(30.0, base * 1.2) + 1e-9
    assert max(a) <= 30.0
    no_jitter = RestartPolicy(backoff_initial=1.0, backoff_max=5.0, jitter=0.0)
    assert [no_jitter.backoff(i, random.Random()) for i in range(6)] == [0, 1, 2, 4, 5, 5]


async def test_stopping_a_child_in_backoff_or_quarantine_is_immediate(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts: list[float] = []
    sup = Supervisor(
        "s",
        policy=RestartPolicy(
            max_restarts=1, backoff_initial=50.0, quarantine_retry=500.0, jitter=0.0
        ),
    )
    async with running(sup):
        await sup.start_child(ChildSpec("a", lambda: CrashLater(1.0, starts)))
        await sup.start_child(ChildSpec("b", lambda: CrashLater(1.0, starts)))
        await trio.sleep(1.5)  # both crashed once and restarted at once
        await trio.sleep(1.0)  # both crashed again: quarantined (max_restarts=1)
        assert {n.state for n in sup.snapshot().children} == {ChildState.FAILED}
        t0 = trio.current_time()
        await sup.stop_child("a")
        assert trio.current_time() == t0
        assert sup.child_ids() == ["b"]
    assert sup.snapshot().children == ()
