"""Benchmarks of the company actors, each figure beside a baseline measured in the same run.

    .venv/bin/python bench/actors.py [--quick]

Prints one line per figure: ``name: value unit (baseline ...; target ...)``. Everything runs
in this process on the real clock: in-memory storage and the simulated WhatsApp in process.

* ``memory_per_company_bytes``: companies whose WhatsApp is linked are restored by a node
  (each actor activated and its session connected); traced memory per company. Baseline: the
  bare runtime actor (an idle :class:`runtime.Actor` in a registry), same count.
* ``activate_10k_companies_seconds``: the same restore, timed without tracemalloc. Baseline:
  activating as many bare runtime actors.
* ``qr_fanout_p99_ms``: 100 companies linking at once, 10 viewers each; from the moment a
  session produces its QR event to the moment each viewer's queue receives the ``qr-update``
  frame. Baseline: the same run with the PNG rendering replaced by a constant.
* ``qr_fanout_staggered_p99_ms``: the same 100 companies x 10 viewers, but linking started at
  different moments, evenly over one 20 s rotation period (a rotation every 200 ms, as in
  production); each company's first rotation to its 10 viewers. ``--quick``: starts spread
  over 6 s (a code every 60 ms) and the first codes measured. Baseline: PNG replaced by a
  constant, as above.
* ``qr_image_us``: one ``qr_png_data_url`` (a WhatsApp-shaped code to a PNG data URL), the
  mean over many codes. Baseline: the same code through ``qrcode`` itself (``make(fit=True)``,
  its PIL image, saved as PNG), same run.
* ``send_ratio``: messages per second through the actor (queue, message log, session) with
  pacing off, over direct ``send_text`` calls on a simulated session.
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import qrcode
import qrcode.constants
import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import actors.company._actor as company_actor_module
from actors import Node, open_node
from actors.company import OutboundQueueFull
from actors.company import messages as m
from actors.qr import qr_png_data_url
from actors.whatsapp import (
    QrCode,
    SessionEvent,
    SimulatedGateway,
    SimulatedSession,
    SimulatedWorld,
    fake_qr_code,
    new_message_id,
)
from config import QrPolicy, SendPacing, Settings, settings_from_env
from runtime import Actor, Registry
from storage import Storage, open_storage

CLIENT = "79007654321"


def base_settings(**changes: Any) -> Settings:
    return replace(settings_from_env({}, dotenv=None), **changes)


class Idle(Actor):
    async def receive(self, message: Any) -> Any:
        return message


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Traced bytes allocated (and still alive) since entering, after a full collection."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    def used() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base

    try:
        yield used
    finally:
        tracemalloc.stop()


# -- restore: memory and activation ----------------------------------------------------------


async def make_linked(storage: Storage, world: SimulatedWorld, n: int) -> list[int]:
    """``n`` companies linked as a previous node would have left them: credentials in the
    world, ``active`` with a device in storage."""
    ids = []
    for i in range(n):
        created = await storage.companies.create(100_000 + i, title=f"Салон {i}")
        cid = created.company.id
        conn = world.attach(cid, lambda event: None)
        conn.show_qr("2@bench")
        phone = f"7900{i:07d}"
        jid = world.scan(cid, phone=phone)
        conn.detach()
        await storage.companies.transition(
            cid,
            ["pending"],
            "active",
            whatsapp_jid=jid,
            whatsapp_phone=phone,
            whatsapp_connected=True,
        )
        ids.append(cid)
    return ids


async def restore_companies(n: int, *, measure_memory: bool) -> tuple[float, float]:
    """(bytes per company, seconds): a node restores ``n`` linked companies, all connected."""
    settings = base_settings()
    world = SimulatedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        ids = await make_linked(storage, world, n)
        gateway = SimulatedGateway(nursery, world=world, qr=settings.qr)
        with traced() if measure_memory else _untraced() as used:
            start = time.perf_counter()
            async with open_node(settings, storage, gateway, rng=random.Random(1)) as node:
                await trio.testing.wait_all_tasks_blocked()
                elapsed = time.perf_counter() - start
                per_company = used() / n
                assert node.restored == n, node.restored
                connected = sum(world.is_connected(cid) for cid in ids)
                assert connected == n, f"{connected} of {n} sessions connected"
                assert node.healthy
                await gateway.aclose()
        nursery.cancel_scope.cancel()
    return per_company, elapsed


@contextmanager
def _untraced() -> Iterator[Callable[[], int]]:
    yield lambda: 0


async def bare_actors(n: int, *, measure_memory: bool) -> tuple[float, float]:
    """(bytes per actor, seconds): ``n`` idle runtime actors activated in a registry."""
    registry: Registry[int] = Registry("bare", lambda key: Idle(), idle_timeout=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        with traced() if measure_memory else _untraced() as used:
            start = time.perf_counter()
            for key in range(n):
                await registry.activate(key)
            await trio.testing.wait_all_tasks_blocked()
            elapsed = time.perf_counter() - start
            per_actor = used() / n
        assert len(registry) == n
        nursery.cancel_scope.cancel()
    return per_actor, elapsed


# -- QR fan-out ------------------------------------------------------------------------------


class StampingGateway(SimulatedGateway):
    """The simulated gateway, noting the moment each session produces a QR event."""

    def __init__(self, nursery: trio.Nursery, world: SimulatedWorld, qr: QrPolicy) -> None:
        super().__init__(nursery, world=world, qr=qr)
        self.produced: dict[str, float] = {}

    def open_session(self, company_id: int, *, jid: str | None = None) -> SimulatedSession:
        session = super().open_session(company_id, jid=jid)
        emit = session._emit
        produced = self.produced

        def stamped(event: SessionEvent) -> None:
            if isinstance(event, QrCode):
                produced[event.code] = time.perf_counter()
            emit(event)

        setattr(session, "_emit", stamped)  # noqa: B010 - instrumenting one instance
        return session


class TimingViewer:
    """A viewer that notes when each ``qr-update`` frame reaches its queue."""

    def __init__(self, produced: dict[str, float], latencies: list[list[float]]) -> None:
        self.produced = produced
        self.latencies = latencies
        self.codes = 0
        self._more = trio.Event()
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](1024)

    async def wait_for_codes(self, count: int) -> None:
        while self.codes < count:
            await self._more.wait()
            self._more = trio.Event()

    def send_nowait(self, frame: dict[str, Any]) -> None:
        self.send.send_nowait(frame)
        if frame["event"] == "qr-update":
            latency = time.perf_counter() - self.produced[frame["data"]["qr"]]
            while len(self.latencies) <= self.codes:
                self.latencies.append([])
            self.latencies[self.codes].append(latency)
            self.codes += 1
            self._more.set()

    def close(self) -> None:
        pass


def _no_image(text: str, **_: Any) -> str:
    return "data:image/png;base64,"


async def ticker(stalls: list[float]) -> None:
    """Note how late each 1 ms sleep wakes: how long the event loop was held up."""
    while True:
        start = time.perf_counter()
        await trio.sleep(0.001)
        stalls.append(time.perf_counter() - start - 0.001)


async def qr_fanout(
    companies: int,
    viewers: int,
    rotations: int,
    rotate_every: float,
    *,
    render: bool,
    spread: float = 0.0,
) -> tuple[list[list[float]], float]:
    """Latencies (seconds) per rotation (index 0 is the first code, 1 the first rotation),
    and the longest event-loop stall (seconds) while they ran.

    ``spread`` 0: every company asks for a QR in the same instant (the worst-case burst).
    Otherwise company ``i`` asks at ``i * spread / companies`` seconds, so the codes of
    different companies come evenly apart, as when salons start linking at different moments.
    """
    stalls: list[float] = []
    qr = QrPolicy(rotate_every=rotate_every, max_codes=6, first_code_lifetime=600.0)
    settings = base_settings(qr=qr)
    world = SimulatedWorld()
    latencies: list[list[float]] = []
    original = getattr(company_actor_module, "qr_png_data_url")  # noqa: B009
    if not render:
        setattr(company_actor_module, "qr_png_data_url", _no_image)  # noqa: B010
    try:
        async with (
            open_storage(monotonic_clock=trio.current_time) as storage,
            trio.open_nursery() as nursery,
        ):
            gateway = StampingGateway(nursery, world, qr)
            async with open_node(settings, storage, gateway, rng=random.Random(2)) as node:
                ids = [
                    (await storage.companies.create(200_000 + i, title=f"Салон {i}")).company.id
                    for i in range(companies)
                ]
                all_viewers = []
                for cid in ids:
                    for _ in range(viewers):
                        viewer = TimingViewer(gateway.produced, latencies)
                        all_viewers.append(viewer)
                        await node.company(cid).ask(m.Subscribe(viewer))
                nursery.start_soon(ticker, stalls)
                gap = spread / companies
                begin = trio.current_time()

                async def request_qr(index: int, cid: int) -> None:
                    await trio.sleep_until(begin + index * gap)
                    await node.company(cid).ask(m.RequestQr())

                async with trio.open_nursery() as asks:  # at once, or one every ``gap`` s
                    for index, cid in enumerate(ids):
                        asks.start_soon(request_qr, index, cid)
                with trio.fail_after(rotate_every * (rotations + 2) + 30):
                    for viewer in all_viewers:
                        await viewer.wait_for_codes(rotations + 1)
                await gateway.aclose()
            nursery.cancel_scope.cancel()
    finally:
        setattr(company_actor_module, "qr_png_data_url", original)  # noqa: B010
    return latencies[: rotations + 1], max(stalls)


# -- QR image ----------------------------------------------------------------------------------


def qrcode_reference_png(text: str) -> bytes:
    """The same code drawn the usual way with ``qrcode`` (every mask scored, PIL image)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, box_size=6, border=2)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def seconds_per_image(render: Callable[[str], object], codes: list[str]) -> float:
    for code in codes[:10]:  # warm the per-version tables
        render(code)
    start = time.perf_counter()
    for code in codes:
        render(code)
    return (time.perf_counter() - start) / len(codes)


# -- sending ---------------------------------------------------------------------------------


async def link_one(node: Node, world: SimulatedWorld) -> int:
    cid: int = (await node.storage.companies.create(300_000, title="Салон")).company.id
    await node.company(cid).ask(m.RequestQr())
    with trio.fail_after(10):
        await world.wait_until(lambda: world.live_qr(cid) is not None)
    world.scan(cid, phone="79001234567")
    await trio.testing.wait_all_tasks_blocked()
    assert (await node.company(cid).ask(m.GetStatus())).whatsapp_connected
    return cid


def sent_more_than(world: SimulatedWorld, company_id: int, seen: int) -> Callable[[], bool]:
    """A predicate: the world took more than ``seen`` sends of the company."""

    def check() -> bool:
        return world.send_attempts(company_id) > seen

    return check


async def actor_sends(n: int, producers: int = 1) -> float:
    """Messages per second through a company actor, pacing off; ``producers`` concurrent
    callers each ask ``SendText`` one message after another."""
    pacing = SendPacing(min_gap=0.0, jitter=0.0, per_minute=10**9)
    settings = base_settings(pacing=pacing)
    world = SimulatedWorld()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        gateway = SimulatedGateway(nursery, world=world, qr=settings.qr)
        async with open_node(settings, storage, gateway, rng=random.Random(3)) as node:
            cid = await link_one(node, world)
            ref = node.company(cid)

            async def produce(first: int) -> None:
                for i in range(first, n, producers):
                    while True:
                        try:
                            await ref.ask(m.SendText(CLIENT, f"сообщение {i}"))
                            break
                        except OutboundQueueFull:  # wait for the next send to make room
                            seen = world.send_attempts(cid)
                            await world.wait_until(sent_more_than(world, cid, seen))

            start = time.perf_counter()
            async with trio.open_nursery() as callers:
                for first in range(producers):
                    callers.start_soon(produce, first)
            with trio.fail_after(60):
                await world.wait_until(lambda: world.send_attempts(cid) >= n)
            elapsed = time.perf_counter() - start
            delivered = world.delivered(cid)
            assert len(delivered) == n and world.send_attempts(cid) == n
            if producers == 1:
                assert [d.text for d in delivered] == [f"сообщение {i}" for i in range(n)]
            await gateway.aclose()
        nursery.cancel_scope.cancel()
    return n / elapsed


async def direct_sends(n: int) -> float:
    """Messages per second calling ``send_text`` on a connected simulated session."""
    world = SimulatedWorld()
    async with trio.open_nursery() as nursery:
        gateway = SimulatedGateway(nursery, world=world)
        session = gateway.open_session(1)
        await session.start()
        with trio.fail_after(10):
            await world.wait_until(lambda: world.live_qr(1) is not None)
        world.scan(1, phone="79001234567")
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        for i in range(n):
            await session.send_text(CLIENT, f"сообщение {i}", new_message_id())
        elapsed = time.perf_counter() - start
        assert len(world.delivered(1)) == n
        await gateway.aclose()
        nursery.cancel_scope.cancel()
    return n / elapsed


# -- main ------------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts; within 30 s")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    companies = 2_000 if args.quick else 10_000
    sends = 2_000 if args.quick else 20_000
    rotations = 1 if args.quick else 3

    bare_mem, _ = trio.run(lambda: bare_actors(companies, measure_memory=True))
    ours_mem, _ = trio.run(lambda: restore_companies(companies, measure_memory=True))
    print(
        f"memory_per_company_bytes: {ours_mem:,.0f} bytes "
        f"({companies:,} restored companies, session connected; bare runtime actor "
        f"{bare_mem:,.0f} bytes; ratio {ours_mem / bare_mem:.1f})"
    )

    _, bare_s = trio.run(lambda: bare_actors(companies, measure_memory=False))
    _, ours_s = trio.run(lambda: restore_companies(companies, measure_memory=False))
    print(
        f"activate_10k_companies_seconds: {ours_s * 10_000 / companies:.2f} s "
        f"({companies:,} restored in {ours_s:.2f} s; bare runtime actors "
        f"{bare_s * 10_000 / companies:.2f} s per 10,000)"
    )

    every = 3.0
    bare_lat, bare_stall = trio.run(lambda: qr_fanout(100, 10, rotations, every, render=False))
    ours_lat, ours_stall = trio.run(lambda: qr_fanout(100, 10, rotations, every, render=True))
    ours_rot = [x for r in ours_lat[1:] for x in r]
    bare_rot = [x for r in bare_lat[1:] for x in r]
    print(
        f"qr_fanout_p99_ms: {p99(ours_rot) * 1000:.1f} ms "
        f"(100 companies x 10 viewers rotating at once, {len(ours_rot):,} deliveries; "
        f"median {statistics.median(ours_rot) * 1000:.1f} ms; first code p99 "
        f"{p99(ours_lat[0]) * 1000:.1f} ms; event loop held up to {ours_stall * 1000:.0f} ms; "
        f"without PNG rendering p99 {p99(bare_rot) * 1000:.1f} ms, loop held up to "
        f"{bare_stall * 1000:.0f} ms; target < 50)"
    )

    # Rotations as they come in production: linking started at different moments, spread
    # evenly over one 20 s rotation period (100 companies: a code every 200 ms). The full run
    # measures each company's first rotation (after the first codes, all 100 are linking and
    # their rotations come 200 ms apart). --quick cannot wait 40 s: it spreads the starts over
    # 6 s (a code every 60 ms, 3.3x denser than production) and measures the first codes.
    period = 20.0
    spread = 6.0 if args.quick else period
    staggered = 0 if args.quick else 1

    def run_staggered(render: bool) -> tuple[list[list[float]], float]:
        return trio.run(lambda: qr_fanout(100, 10, staggered, period, render=render, spread=spread))

    bare_lat, bare_stall = run_staggered(render=False)
    ours_lat, ours_stall = run_staggered(render=True)
    ours_st = ours_lat[-1]
    bare_st = bare_lat[-1]
    measured = "first codes" if args.quick else "first rotation of every company"
    first_codes = (
        ""
        if args.quick
        else f"first codes (starts 200 ms apart) p99 {p99(ours_lat[0]) * 1000:.1f} ms; "
    )
    print(
        f"qr_fanout_staggered_p99_ms: {p99(ours_st) * 1000:.1f} ms "
        f"(100 companies x 10 viewers, linking started {spread / 100 * 1000:.0f} ms apart over "
        f"{spread:.0f} s, rotation period {period:.0f} s; {measured}, {len(ours_st):,} "
        f"deliveries; median {statistics.median(ours_st) * 1000:.1f} ms; max "
        f"{max(ours_st) * 1000:.1f} ms; {first_codes}event loop held up to "
        f"{ours_stall * 1000:.0f} ms; without PNG rendering p99 {p99(bare_st) * 1000:.1f} ms, "
        f"loop held up to {bare_stall * 1000:.0f} ms; target < 50)"
    )

    codes = [fake_qr_code() for _ in range(300 if args.quick else 2_000)]
    ours_image = seconds_per_image(qr_png_data_url, codes)
    reference_image = seconds_per_image(qrcode_reference_png, codes[: len(codes) // 10])
    print(
        f"qr_image_us: {ours_image * 1e6:.0f} us "
        f"({len(codes):,} WhatsApp-shaped codes to PNG data URLs; qrcode with its PIL image "
        f"{reference_image * 1e6:,.0f} us; ratio {reference_image / ours_image:.0f}x faster)"
    )

    direct = trio.run(direct_sends, sends)
    ours = trio.run(actor_sends, sends)
    ours_many = trio.run(actor_sends, sends, 20)
    print(
        f"send_ratio: {ours / direct:.2f} ratio "
        f"(through the actor {ours:,.0f} msgs/s, one caller; 20 concurrent callers "
        f"{ours_many:,.0f} msgs/s; direct send_text on the simulated session "
        f"{direct:,.0f} msgs/s; {sends:,} messages, pacing off)"
    )


if __name__ == "__main__":
    main()
