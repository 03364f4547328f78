"""Benchmarks of the actor runtime, each figure beside a baseline measured in the same run.

    .venv/bin/python bench/runtime.py [--quick]

Prints one line per figure: ``name: value unit (baseline ...; target ...)``. No storage and no
network: the actor runtime alone, in this process.

``restart_latency_p99_ms`` is timed from the crash: from the moment the actor's ``receive``
raises to the reply to the next ask (the restarted incarnation answering), every sample an
immediate first restart. Baseline: a bare echo task on a memory channel whose wrapper catches
the error and respawns it as a fresh task, timed from its raise the same way; the two are
interleaved in 10 chunks.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import (
    Actor,
    ActorCrashed,
    ActorUnavailable,
    ChildSpec,
    MailboxFull,
    Registry,
    RestartPolicy,
    Supervisor,
)

#: When the last "crash" message raised (``time.perf_counter()``): the restart clock starts here.
crashed_at = [0.0]


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        if message == "crash":
            crashed_at[0] = time.perf_counter()
            raise RuntimeError("crash")
        return message


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0
        self.done = trio.Event()
        self.target = -1

    async def receive(self, message: Any) -> Any:
        self.count += 1
        if self.count == self.target:
            self.done.set()
        return None


class Idle(Actor):
    async def receive(self, message: Any) -> Any:
        return message


# -- ask round trip -----------------------------------------------------------------------------


async def raw_roundtrips(n: int) -> float:
    req_send, req_recv = trio.open_memory_channel[Any](64)
    rep_send, rep_recv = trio.open_memory_channel[Any](64)

    async def server() -> None:
        async for message in req_recv:
            await rep_send.send(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        start = time.perf_counter()
        for i in range(n):
            await req_send.send(i)
            await rep_recv.receive()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return n / elapsed


async def runtime_asks(n: int) -> float:
    sup = Supervisor("bench", [ChildSpec("echo", Echo)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref = sup.ref("echo")
        start = time.perf_counter()
        for i in range(n):
            await ref.ask(i)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return n / elapsed


# -- tell throughput ----------------------------------------------------------------------------


async def raw_tells(n: int, capacity: int) -> float:
    send, recv = trio.open_memory_channel[Any](capacity)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        async for _ in recv:
            count += 1
            if count == n:
                done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        start = time.perf_counter()
        sent = 0
        while sent < n:
            try:
                send.send_nowait(sent)
                sent += 1
            except trio.WouldBlock:
                await trio.lowlevel.checkpoint()
        await done.wait()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return n / elapsed


async def runtime_tells(n: int, capacity: int) -> float:
    holder: list[Counter] = []

    def make() -> Counter:
        counter = Counter()
        counter.target = n
        holder.append(counter)
        return counter

    sup = Supervisor("bench", [ChildSpec("count", make, mailbox_capacity=capacity)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref = sup.ref("count")
        start = time.perf_counter()
        sent = 0
        while sent < n:
            try:
                ref.tell(sent)
                sent += 1
            except MailboxFull:
                await trio.lowlevel.checkpoint()
        await holder[0].done.wait()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return n / elapsed


# -- memory and activation ----------------------------------------------------------------------


async def raw_idle_tasks(n: int) -> tuple[float, float]:
    """Bytes per bare task blocked on its own memory channel, and seconds to spawn n."""
    async with trio.open_nursery() as nursery:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        channels = []
        for _ in range(n):
            send, recv = trio.open_memory_channel[Any](64)
            channels.append(send)
            nursery.start_soon(recv.receive)
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        nursery.cancel_scope.cancel()
    return used / n, elapsed


async def registry_idle_actors(n: int) -> tuple[float, float]:
    """Bytes per idle activated actor with n alive, and seconds to activate n (all ready)."""
    registry: Registry[int] = Registry("companies", lambda key: Idle(), idle_timeout=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        for key in range(n):
            registry.ref(key).tell("hello")
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        assert len(registry) == n
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        nursery.cancel_scope.cancel()
    return used / n, elapsed


async def registry_activate_seconds(n: int) -> float:
    """Activation time without tracemalloc overhead."""
    registry: Registry[int] = Registry("companies", lambda key: Idle(), idle_timeout=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        start = time.perf_counter()
        for key in range(n):
            registry.ref(key).tell("hello")
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


async def raw_spawn_seconds(n: int) -> float:
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        for _ in range(n):
            send, recv = trio.open_memory_channel[Any](64)
            send.send_nowait("hello")
            nursery.start_soon(_drain_one_then_wait, recv)
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


async def _drain_one_then_wait(recv: trio.MemoryReceiveChannel[Any]) -> None:
    await recv.receive()
    await recv.receive()


# -- restart latency ----------------------------------------------------------------------------


async def restart_latencies(samples: int) -> tuple[list[float], list[float]]:
    """Crash → restarted and answering, every sample a first restart: seconds from the moment
    ``receive`` raised to the reply to the next ask, and (for reference) from the crash reply.

    The immediate first restart runs in the crashed task before the crash reply reaches the
    asker, so a clock started at the reply would miss the restart itself."""
    # Every crash starts a new streak (``stable_after`` 0: an immediate first restart) and the
    # intensity window is empty (``period`` 0): the restart history the supervisor scans holds
    # one entry, as production's (at most ``max_restarts + 1`` in ``period``) holds a few. A
    # window of 1 s with 10**9 allowed would hold every crash of the last second (thousands
    # here) and time that scan instead of the restart.
    policy = RestartPolicy(period=0.0, stable_after=0.0)
    sup = Supervisor("bench", [ChildSpec("echo", Echo)], policy=policy)
    from_crash: list[float] = []
    from_reply: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref = sup.ref("echo")
        for _ in range(samples):
            with contextlib.suppress(ActorCrashed):
                await ref.ask("crash")
            replied = time.perf_counter()
            while True:
                try:
                    await ref.ask("ping")
                    break
                except ActorUnavailable:
                    await trio.lowlevel.checkpoint()
            answered = time.perf_counter()
            from_crash.append(answered - crashed_at[0])
            from_reply.append(answered - replied)
        nursery.cancel_scope.cancel()
    return from_crash, from_reply


class _Crash(Exception):
    """The bare baseline's failure, handed back to the asker as the crash reply."""


async def raw_respawn_latencies(samples: int) -> list[float]:
    """Baseline, timed the same way: a bare echo task on a memory channel raises on "crash";
    its wrapper catches it, replies with the error and spawns a fresh task on the same
    channel. Seconds from the raise to the reply to the next request."""
    out: list[float] = []
    raised = [0.0]
    req_send, req_recv = trio.open_memory_channel[Any](64)
    rep_send, rep_recv = trio.open_memory_channel[Any](64)

    async with trio.open_nursery() as nursery:

        async def incarnation() -> None:
            try:
                async for message in req_recv:
                    if message == "crash":
                        raised[0] = time.perf_counter()
                        raise _Crash("crash")
                    await rep_send.send(message)
            except _Crash as error:
                nursery.start_soon(incarnation)  # respawn: a fresh task on the same mailbox
                await rep_send.send(error)

        nursery.start_soon(incarnation)
        for _ in range(samples):
            await req_send.send("crash")
            assert isinstance(await rep_recv.receive(), _Crash)
            await req_send.send("ping")
            await rep_recv.receive()
            out.append(time.perf_counter() - raised[0])
        nursery.cancel_scope.cancel()
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts; within 30 s")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # crashes are the point of the restart benchmark

    asks = 20_000 if args.quick else 200_000
    tells = 50_000 if args.quick else 500_000
    actors = 10_000
    restarts = 500 if args.quick else 5_000

    raw_rt = trio.run(raw_roundtrips, asks)
    ours_rt = trio.run(runtime_asks, asks)
    print(
        f"ask_roundtrip_ratio: {ours_rt / raw_rt:.2f} ratio "
        f"(runtime {ours_rt:,.0f} asks/s vs raw channel pair {raw_rt:,.0f} round trips/s; "
        f"target >= 0.5)"
    )

    raw_tell = trio.run(raw_tells, tells, 64)
    ours_tell = trio.run(runtime_tells, tells, 64)
    print(
        f"tell_throughput: {ours_tell:,.0f} msgs/s "
        f"(raw memory channel {raw_tell:,.0f} msgs/s; ratio {ours_tell / raw_tell:.2f})"
    )

    raw_mem, _ = trio.run(raw_idle_tasks, actors)
    ours_mem, _ = trio.run(registry_idle_actors, actors)
    print(
        f"memory_per_idle_actor: {ours_mem:,.0f} bytes "
        f"(with {actors:,} alive; bare task on a memory channel {raw_mem:,.0f} bytes; "
        f"target <= 10240)"
    )

    raw_spawn = trio.run(raw_spawn_seconds, actors)
    ours_act = trio.run(registry_activate_seconds, actors)
    print(
        f"activate_10k_seconds: {ours_act:.3f} s "
        f"(spawning {actors:,} bare tasks with a message each {raw_spawn:.3f} s; target < 2)"
    )

    # Interleaved in chunks, so load that comes and goes on a shared machine touches both.
    raw_lat: list[float] = []
    ours_lat: list[float] = []
    after_reply: list[float] = []
    chunks = 10
    for _ in range(chunks):
        raw_lat += trio.run(raw_respawn_latencies, restarts // chunks)
        from_crash, from_reply = trio.run(restart_latencies, restarts // chunks)
        ours_lat += from_crash
        after_reply += from_reply
    ours_p99, ours_median = p99(ours_lat), statistics.median(ours_lat)
    raw_p99, raw_median = p99(raw_lat), statistics.median(raw_lat)
    print(
        f"restart_latency_p99_ms: {ours_p99 * 1000:.3f} ms "
        f"(from the crash to the restarted actor's first reply; median {ours_median * 1000:.3f} "
        f"ms over {restarts:,} first restarts; bare task respawn timed the same way, interleaved "
        f"in {chunks} chunks, p99 "
        f"{raw_p99 * 1000:.3f} ms, median {raw_median * 1000:.3f} ms; ratio p99 "
        f"{ours_p99 / raw_p99:.2f}, median {ours_median / raw_median:.2f}; from the crash "
        f"reply alone p99 {p99(after_reply) * 1000:.3f} ms; target < 5)"
    )


if __name__ == "__main__":
    main()
