"""The company actor over session hosts: a ``kill -9`` of a host loses and repeats nothing.

The WhatsApp sessions run in real session-host child processes (simulated backend, world
served to them on a Unix socket), so these tests run on the real clock: every wait is on an
event or a bounded poll, under ``trio.fail_after``.
"""

from __future__ import annotations

import functools
import os
import random
import signal
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import trio

from actors import Node, open_node
from actors.company import CommandResult
from actors.company import messages as m
from actors.whatsapp import HostedGateway, SimulatedWorld, open_gateway
from config import QrPolicy, SendPacing, Settings, SupervisorLimits
from runtime import AskTimeout
from storage import open_storage

from .conftest import RecordingViewer, make_settings

pytestmark = pytest.mark.slow

CLIENT = "79007654321"
WAIT = 20.0  # seconds: the bound on any single wait for real processes


def hosted_settings(*, sessions_per_host: int = 1, min_gap: float = 0.2) -> Settings:
    """One host to start with, ``sessions_per_host`` sessions each, fast host restarts, and
    pacing slow enough that a queue of ten is still draining when the host dies."""
    settings = make_settings(
        session_hosts=1,
        sessions_per_host=sessions_per_host,
        qr=QrPolicy(rotate_every=600.0, max_codes=6, first_code_lifetime=600.0),
        supervisor=SupervisorLimits(backoff_initial=0.05, backoff_max=0.5),
    )
    return replace(settings, pacing=SendPacing(min_gap=min_gap, jitter=0.0, per_minute=10_000))


async def register(node: Node, salon_id: int) -> int:
    created = await node.storage.companies.create(salon_id, title=f"Салон {salon_id}")
    return created.company.id


async def link(node: Node, world: SimulatedWorld, company_id: int, phone: str) -> RecordingViewer:
    viewer = RecordingViewer(capacity=256)
    ref = node.company(company_id)
    await ref.ask(m.Subscribe(viewer))
    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    qr = await viewer.next("qr-update", timeout=WAIT)
    world.scan(company_id, phone=phone, code=qr["data"]["qr"])
    await viewer.next("whatsapp-connected", timeout=WAIT)
    return viewer


async def next_status(viewer: RecordingViewer, status: str) -> dict[str, Any]:
    """The next ``status`` frame whose status is ``status`` (real clock: bounded by WAIT)."""
    return await viewer.next_status(status, timeout=WAIT)


async def wait_for(predicate: Callable[[], bool], world: SimulatedWorld) -> None:
    with trio.fail_after(WAIT):
        await world.wait_until(predicate)


def delivered_count_is(world: SimulatedWorld, company_id: int, count: int) -> bool:
    return len(world.delivered(company_id)) == count


def texts(world: SimulatedWorld, company_id: int) -> list[str]:
    return [d.text for d in world.delivered(company_id)]


def gateway_node(tree: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in tree["children"] if c["id"] == "whatsapp"]
    assert len(found) == 1
    return found[0]


async def test_kill_9_of_a_host_delivers_every_queued_message_once_in_order() -> None:
    world = SimulatedWorld()
    settings = hosted_settings()
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(5)) as node,
    ):
        assert isinstance(gateway, HostedGateway)
        victim = await register(node, 7001)
        bystander = await register(node, 7002)
        victim_viewer = await link(node, world, victim, "79001110001")
        bystander_viewer = await link(node, world, bystander, "79001110002")
        # one session per host: the victim sits on host 0, the bystander got host 1
        hosts = gateway.snapshot().hosts
        assert [(h.index, h.sessions, h.state) for h in hosts] == [(0, 1, "ready"), (1, 1, "ready")]
        victim_pid, bystander_pid = hosts[0].pid, hosts[1].pid
        assert victim_pid is not None and bystander_pid is not None

        ref = node.company(victim)
        ids = [await ref.ask(m.SendText(CLIENT, f"сообщение {i}")) for i in range(10)]
        await wait_for(lambda: len(world.delivered(victim)) >= 3, world)
        os.kill(victim_pid, signal.SIGKILL)
        cut_short = len(world.delivered(victim))
        assert cut_short < 10  # messages were still queued when the host died

        # the victim notices, and its viewers are told
        lost = await next_status(victim_viewer, "reconnecting")
        assert lost["data"]["whatsapp_connected"] is False
        view = await ref.ask(m.GetStatus())
        assert view.integration_status == "reconnecting"
        assert "session lost" in (view.last_error or "")
        assert "SIGKILL" in (view.last_error or "")

        # meanwhile the other company, on the other host, keeps sending
        other = node.company(bystander)
        await other.ask(m.SendText(CLIENT, "пока хост перезапускается"))
        await wait_for(lambda: len(world.delivered(bystander)) == 1, world)

        # the host is restarted, the actor reconnects by itself, the queue drains
        back = await next_status(victim_viewer, "active")
        assert back["data"]["whatsapp_connected"] is True
        await wait_for(lambda: len(world.delivered(victim)) == 10, world)
        # no late duplicate (a resend under a new id would show up as an eleventh text)
        await trio.sleep(5 * settings.pacing.min_gap)
        delivered = world.delivered(victim)
        assert [d.message_id for d in delivered] == ids  # each once, in order
        assert texts(world, victim) == [f"сообщение {i}" for i in range(10)]
        assert await storage.messages.pending_outbound(victim) == []
        sent = [r for r in await storage.messages.recent(victim) if r.direction == "out"]
        assert sorted(r.status for r in sent) == ["sent"] * 10
        # the log counted every hand-over before it was made: each message at least once, and
        # no send reached WhatsApp without being counted (a retried one shows attempts > 1)
        assert all(r.attempts >= 1 for r in sent)
        assert sum(r.attempts for r in sent) >= world.send_attempts(victim)
        view = await ref.ask(m.GetStatus())
        assert (view.integration_status, view.whatsapp_connected, view.outbound_queued) == (
            "active",
            True,
            0,
        )
        assert view.last_error is None
        audit = [e.event_type for e in await storage.audit.recent(victim)]
        assert "whatsapp_disconnected" in audit and "whatsapp_reconnected" in audit

        # the bystander never saw a drop: every status pushed to it since linking says so
        statuses = [f["data"] for f in _drain(bystander_viewer) if f["event"] == "status"]
        assert all(s["status"] == "active" and s["whatsapp_connected"] for s in statuses)
        assert (await other.ask(m.GetStatus())).whatsapp_connected
        assert world.is_connected(bystander)

        # the node stayed healthy; the tree shows the host restart, no actor crashed
        hosts = gateway.snapshot().hosts
        assert hosts[0].restarts == 1 and hosts[0].last_exit == "killed by SIGKILL"
        assert hosts[0].pid not in (None, victim_pid) and hosts[0].state == "ready"
        assert hosts[1].restarts == 0 and hosts[1].pid == bystander_pid
        assert node.healthy
        assert node.restarts_total() == 0
        whatsapp = gateway_node(node.tree())
        assert whatsapp["state"] == "running" and whatsapp["restarts"] == 1
        host0, host1 = whatsapp["children"]
        assert host0["id"] == "host-0" and host0["state"] == "ready"
        assert host0["pid"] == hosts[0].pid and host0["restarts"] == 1
        assert host0["last_error"] == {"type": "exit", "message": "killed by SIGKILL"}
        assert host1["restarts"] == 0 and host1["last_error"] is None


async def test_companies_sharing_a_killed_host_both_come_back() -> None:
    """Two companies on one host: both lose their session, both reconnect, neither loses or
    repeats a message; a third company on another host is untouched."""
    world = SimulatedWorld()
    settings = hosted_settings(sessions_per_host=2, min_gap=0.1)
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(6)) as node,
    ):
        first, second, third = [await register(node, 7100 + i) for i in range(3)]
        viewers = {}
        for company_id in (first, second, third):
            viewers[company_id] = await link(node, world, company_id, f"7900222000{company_id}")
        hosts = gateway.snapshot().hosts
        assert [h.sessions for h in hosts] == [2, 1]
        pid = hosts[0].pid
        assert pid is not None

        sent: dict[int, list[str]] = {first: [], second: []}
        for i in range(8):
            for company_id in sent:
                sent[company_id].append(
                    await node.company(company_id).ask(m.SendText(CLIENT, f"{company_id}:{i}"))
                )
        await wait_for(lambda: len(world.delivered(first)) >= 2, world)
        os.kill(pid, signal.SIGKILL)
        for company_id in sent:
            await next_status(viewers[company_id], "reconnecting")
            await next_status(viewers[company_id], "active")
        for company_id, ids in sent.items():
            await wait_for(functools.partial(delivered_count_is, world, company_id, 8), world)
            assert [d.message_id for d in world.delivered(company_id)] == ids
            assert texts(world, company_id) == [f"{company_id}:{i}" for i in range(8)]
        assert world.is_connected(third)
        assert (await node.company(third).ask(m.GetStatus())).integration_status == "active"
        assert node.healthy and node.restarts_total() == 0
        assert gateway.snapshot().hosts[0].restarts == 1


def _drain(viewer: RecordingViewer) -> list[dict[str, Any]]:
    """Frames queued for ``viewer`` and not read yet."""
    frames = []
    while True:
        try:
            frames.append(viewer.receive.receive_nowait())
        except trio.WouldBlock:
            return frames


async def test_the_actor_keeps_answering_while_its_host_is_down() -> None:
    """A host that stays down (long restart backoff) must not make the company actor deaf:
    status asks are answered while it waits, and the company comes back with the host."""
    world = SimulatedWorld()
    settings = replace(
        hosted_settings(),
        supervisor=SupervisorLimits(backoff_initial=12.0, backoff_max=12.0),
    )
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(8)) as node,
    ):
        cid = await register(node, 7201)
        viewer = await link(node, world, cid, "79003330001")
        pid = gateway.snapshot().hosts[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await next_status(viewer, "reconnecting")
        ref = node.company(cid)
        # the host restarts 9-15 s from now; the actor tries to reconnect after about 1 s
        unanswered = 0
        for _ in range(8):  # about 8 s of asking, each must be answered within 5 s
            try:
                view = await ref.ask(m.GetStatus(), timeout=5.0)
            except AskTimeout:
                unanswered += 1
                break
            assert view.integration_status == "reconnecting"
            await trio.sleep(1.0)
        assert gateway.snapshot().hosts[0].state == "backoff"  # the host really was down
        if not unanswered:
            with trio.fail_after(60):
                await next_status(viewer, "active")
            assert node.healthy and node.restarts_total() == 0
    assert unanswered == 0, "the company actor did not answer while its host was down"
