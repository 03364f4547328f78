"""Sessions in real session-host processes, with the simulated world served to them.

These start real processes, so they run on the real clock; every wait is on an event and
bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from actors.whatsapp import (
    Connected,
    ConnectFailed,
    HostedGateway,
    HostedSession,
    InboundMessage,
    Linked,
    OutcomeUnknown,
    QrCode,
    SessionEvent,
    SessionLost,
    SessionNotConnected,
    SessionState,
    SimulatedWorld,
    WhatsAppGateway,
    new_message_id,
    open_gateway,
    serve_world,
)
from config import QrPolicy, Settings, SupervisorLimits, WhatsAppProvider

pytestmark = pytest.mark.slow

CLIENT = "79005550001"


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "session_hosts": 1,
        "sessions_per_host": 2,
        "qr": QrPolicy(rotate_every=600.0, max_codes=6),
        "supervisor": SupervisorLimits(backoff_initial=0.05, backoff_max=0.5),
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def world_gateway() -> AsyncIterator[tuple[SimulatedWorld, HostedGateway]]:
    world = SimulatedWorld()
    async with open_gateway(settings(), world=world) as gateway:
        assert isinstance(gateway, HostedGateway)
        yield world, gateway


async def next_event(session: HostedSession, kind: type[SessionEvent]) -> SessionEvent:
    with trio.fail_after(10):
        while True:
            event = await session.events.receive()
            if isinstance(event, kind):
                return event


async def link(world: SimulatedWorld, session: HostedSession, phone: str) -> None:
    with trio.fail_after(10):
        await session.start()
    qr = await next_event(session, QrCode)
    assert isinstance(qr, QrCode)
    world.scan(session.company_id, phone, code=qr.code)
    assert isinstance(await next_event(session, Linked), Linked)
    await next_event(session, Connected)


async def test_hosts_join_a_shared_world_on_its_socket(tmp_path: Path) -> None:
    """``AIADMIN_SIMULATED_WORLD`` with session hosts: the host's sessions connect to the
    served world (the one the processes of ``make cluster`` share), not to a world of ours."""
    world = SimulatedWorld()
    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_world, world, str(tmp_path / "world.sock"))
        async with open_gateway(settings(simulated_world=path)) as gateway:
            assert isinstance(gateway, HostedGateway) and gateway.world is None
            session = gateway.open_session(11)
            await link(world, session, CLIENT)
            assert world.is_connected(11)
        nursery.cancel_scope.cancel()


async def test_linking_and_messages_over_a_host(
    world_gateway: tuple[SimulatedWorld, HostedGateway],
) -> None:
    world, gateway = world_gateway
    assert isinstance(gateway, WhatsAppGateway)
    session = gateway.open_session(1)
    await link(world, session, "79001234567")
    assert session.host_pid is not None and session.host_pid != os.getpid()

    mid = new_message_id()
    with trio.fail_after(10):
        assert await session.send_text(CLIENT, "Добрый день", mid) == mid
        assert await session.send_text(CLIENT, "Добрый день", mid) == mid
    assert [(m.message_id, m.text) for m in world.delivered(1)] == [(mid, "Добрый день")]

    inbound = world.send_inbound(1, CLIENT, "Хочу записаться")
    event = await next_event(session, InboundMessage)
    assert isinstance(event, InboundMessage) and event.message_id == inbound

    # pairing code over the host
    other = gateway.open_session(2)
    with trio.fail_after(10):
        await other.start()
        await next_event(other, QrCode)
        code = await other.pair_phone("79007654321")
    world.enter_pairing_code(2, code)
    linked = await next_event(other, Linked)
    assert isinstance(linked, Linked) and linked.phone == "79007654321"

    snap = gateway.snapshot()
    assert snap.healthy and snap.sessions == 2
    assert [(h.pid, h.sessions, h.state) for h in snap.hosts] == [(session.host_pid, 2, "ready")]

    # stop keeps credentials and leaves the host; start resumes without a scan
    with trio.fail_after(10):
        await session.stop()
        assert session.host_pid is None and session.state is SessionState.IDLE
        await session.start()
    await next_event(session, Connected)


async def test_kill_9_of_a_host_loses_no_message_and_sends_none_twice(
    world_gateway: tuple[SimulatedWorld, HostedGateway],
) -> None:
    world, gateway = world_gateway
    sessions = [gateway.open_session(company_id) for company_id in (1, 2, 3)]
    for session in sessions:
        await link(world, session, f"7900100000{session.company_id}")
    victim_pid = sessions[0].host_pid
    assert sessions[1].host_pid == victim_pid  # two per host ...
    assert sessions[2].host_pid not in (None, victim_pid)  # ... so a second host was started
    assert len(gateway.snapshot().hosts) == 2

    per_company = 200
    outbox = {s.company_id: [new_message_id() for _ in range(per_company)] for s in sessions[:2]}
    acked: dict[int, set[str]] = {company_id: set() for company_id in outbox}

    async def send_all(session: HostedSession) -> None:
        """Like the company actor: one send at a time, stop at the first unknown outcome."""
        for mid in outbox[session.company_id]:
            try:
                await session.send_text(CLIENT, f"msg {mid}", mid)
            except (OutcomeUnknown, SessionNotConnected):
                return
            acked[session.company_id].add(mid)

    async with trio.open_nursery() as nursery:
        for session in sessions[:2]:
            nursery.start_soon(send_all, session)
        with trio.fail_after(10):
            await world.wait_until(lambda: len(world.delivered(1)) >= 5)
        assert victim_pid is not None
        os.kill(victim_pid, signal.SIGKILL)

    assert len(acked[1]) < per_company  # the kill really cut the sends short
    for session in sessions[:2]:
        lost = await next_event(session, SessionLost)
        assert isinstance(lost, SessionLost) and "SIGKILL" in lost.reason
        assert session.state is SessionState.IDLE and session.host_pid is None
    assert sessions[2].state is SessionState.CONNECTED  # the other host was not touched

    # the caller reconnects and resends everything unacknowledged with the same ids
    for session in sessions[:2]:
        with trio.fail_after(10):
            await session.start()
        await next_event(session, Connected)
        assert session.host_pid not in (None, victim_pid)
        for mid in outbox[session.company_id]:
            if mid not in acked[session.company_id]:
                with trio.fail_after(10):
                    await session.send_text(CLIENT, f"msg {mid}", mid)

    for company_id, ids in outbox.items():
        delivered = [m.message_id for m in world.delivered(company_id)]
        assert sorted(delivered) == sorted(ids)  # every message, each exactly once

    restarted = gateway.snapshot().hosts[0]
    assert restarted.restarts == 1 and restarted.last_exit == "killed by SIGKILL"
    assert restarted.pid != victim_pid and restarted.state == "ready"


async def test_in_flight_command_raises_host_crashed(
    world_gateway: tuple[SimulatedWorld, HostedGateway],
) -> None:
    world, gateway = world_gateway
    session = gateway.open_session(1)
    await link(world, session, "79001234567")
    pid = session.host_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the host hangs: the command stays in flight
    try:
        async with trio.open_nursery() as nursery:

            async def kill_soon() -> None:
                await trio.sleep(0.2)
                os.kill(pid, signal.SIGKILL)

            nursery.start_soon(kill_soon)
            with (
                pytest.raises(OutcomeUnknown, match="died during the command"),
                trio.fail_after(10),
            ):
                await session.send_text(CLIENT, "x", new_message_id())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    await next_event(session, SessionLost)


async def test_closing_the_gateway_ends_the_hosts() -> None:
    world = SimulatedWorld()
    async with open_gateway(settings(), world=world) as gateway:
        assert isinstance(gateway, HostedGateway)
        session = gateway.open_session(1)
        await link(world, session, "79001234567")
        pid = session.host_pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert world.linked_jid(1) is not None  # credentials kept
    assert not world.is_connected(1)
    assert all(h.state == "stopped" for h in gateway.snapshot().hosts)
    assert not gateway.ping()


async def test_neonize_in_a_host_fails_to_connect_offline_and_the_host_survives(
    tmp_path: Path,
) -> None:
    config = settings(whatsapp_provider=WhatsAppProvider.NEONIZE, whatsapp_sessions_path=tmp_path)
    async with open_gateway(config) as gateway:
        assert isinstance(gateway, HostedGateway)
        session = gateway.open_session(9)
        with trio.fail_after(20):
            await session.start()
            failed = await next_event(session, ConnectFailed)
        assert isinstance(failed, ConnectFailed) and "failed to dial" in failed.error
        assert (tmp_path / "company_9.sqlite3").exists()
        host = gateway.snapshot().hosts[0]
        assert host.state == "ready" and host.restarts == 0
