"""The simulated backend in process, driven through the world's phone controls (MockClock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from actors.whatsapp import (
    BackendUnavailable,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    PairingUnavailable,
    QrCode,
    SendFailed,
    SessionEvent,
    SessionNotConnected,
    SessionState,
    SimulatedGateway,
    SimulatedSession,
    SimulatedWorld,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
    WhatsAppGateway,
    WhatsAppSession,
    WorldError,
    new_message_id,
)
from config import QrPolicy

CLIENT = "79005550001"


@pytest.fixture
def world() -> SimulatedWorld:
    return SimulatedWorld()


@pytest.fixture
async def gateway(world: SimulatedWorld) -> AsyncIterator[SimulatedGateway]:
    async with trio.open_nursery() as nursery:
        gw = SimulatedGateway(nursery, world=world, qr=QrPolicy(rotate_every=20.0, max_codes=6))
        yield gw
        await gw.aclose()
        nursery.cancel_scope.cancel()


def drain(session: WhatsAppSession) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    while True:
        try:
            events.append(session.events.receive_nowait())
        except trio.WouldBlock:
            return events


async def linked_session(
    gateway: SimulatedGateway, world: SimulatedWorld, company_id: int = 1
) -> SimulatedSession:
    session = gateway.open_session(company_id)
    await session.start()
    qr = await session.events.receive()
    assert isinstance(qr, QrCode)
    world.scan(company_id, "79001234567", code=qr.code)
    assert isinstance(await session.events.receive(), Linked)
    assert await session.events.receive() == Connected()
    return session


async def test_gateway_and_session_satisfy_the_protocols(gateway: SimulatedGateway) -> None:
    assert isinstance(gateway, WhatsAppGateway)
    assert isinstance(gateway.open_session(1), WhatsAppSession)


async def test_qr_rotation_then_silence(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = gateway.open_session(1)
    t0 = trio.current_time()
    await session.start()
    seen: list[tuple[float, str]] = []
    for _ in range(6):
        event = await session.events.receive()
        assert isinstance(event, QrCode)
        assert world.live_qr(1) == event.code
        seen.append((trio.current_time() - t0, event.code))
    assert [round(t) for t, _ in seen] == [0, 20, 40, 60, 80, 100]
    assert len({code for _, code in seen}) == 6
    assert session.state is SessionState.LINKING
    # like whatsmeow: after the last code's lifetime nothing is live and nothing is said
    with trio.move_on_after(600):
        extra = await session.events.receive()
        pytest.fail(f"unexpected event {extra!r}")
    assert world.live_qr(1) is None
    with pytest.raises(WorldError):
        world.scan(1)
    # the caller restarts linking
    await session.stop()
    await session.start()
    assert isinstance(await session.events.receive(), QrCode)


async def test_scan_links_and_connects(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = gateway.open_session(1)
    await session.start()
    first = await session.events.receive()
    second = await session.events.receive()
    assert isinstance(first, QrCode) and isinstance(second, QrCode)
    with pytest.raises(WorldError):
        world.scan(1, code=first.code)  # an expired code does not link
    jid = world.scan(1, "+7 900 123-45-67", code=second.code)
    assert await session.events.receive() == Linked(jid, "79001234567")
    assert await session.events.receive() == Connected()
    assert session.state is SessionState.CONNECTED
    assert world.linked_jid(1) == jid
    # no more QR codes once linked
    with trio.move_on_after(200):
        await session.events.receive()
        pytest.fail("QR rotation kept going after linking")


async def test_pairing_code_links(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = gateway.open_session(2)
    with pytest.raises(PairingUnavailable):
        await session.pair_phone("79001234567")  # not started
    await session.start()
    assert isinstance(await session.events.receive(), QrCode)
    with pytest.raises(PairingUnavailable):
        await session.pair_phone("12")
    code = await session.pair_phone("+7 900 765-43-21")
    assert len(code) == 9 and code[4] == "-"
    with pytest.raises(WorldError):
        world.enter_pairing_code(2, "ZZZZ-ZZZZ")
    jid = world.enter_pairing_code(2, code.lower())
    assert await session.events.receive() == Linked(jid, "79007654321")
    assert await session.events.receive() == Connected()
    with pytest.raises(PairingUnavailable):
        await session.pair_phone("79007654321")  # already linked


async def test_send_is_deduplicated_by_message_id(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    first, second = new_message_id(), new_message_id()
    assert await session.send_text(CLIENT, "one", first) == first
    assert await session.send_text(CLIENT, "one", first) == first
    assert await session.send_text("+7 900 555-00-01", "two", second) == second
    delivered = world.delivered(1)
    assert [(m.message_id, m.to_phone, m.text) for m in delivered] == [
        (first, CLIENT, "one"),
        (second, CLIENT, "two"),
    ]
    assert world.send_attempts(1) == 3
    with pytest.raises(SendFailed):
        await session.send_text("12", "bad phone", new_message_id())
    with pytest.raises(SendFailed):
        await session.send_text(CLIENT, "bad id", "not an id!")


async def test_send_requires_a_connection(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = gateway.open_session(1)
    with pytest.raises(SessionNotConnected):
        await session.send_text(CLIENT, "x", new_message_id())
    await session.start()
    with pytest.raises(SessionNotConnected):
        await session.send_text(CLIENT, "x", new_message_id())  # still linking
    assert world.delivered(1) == []


async def test_inbound_messages_and_offline_queue(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    mid = world.send_inbound(1, CLIENT, "Здравствуйте")
    event = await session.events.receive()
    assert isinstance(event, InboundMessage)
    assert (event.message_id, event.sender_phone, event.text) == (mid, CLIENT, "Здравствуйте")

    world.go_offline(1)
    assert await session.events.receive() == Disconnected("connection lost")
    assert session.state is SessionState.DISCONNECTED
    with pytest.raises(SessionNotConnected):
        await session.send_text(CLIENT, "x", new_message_id())
    queued = world.send_inbound(1, CLIENT, "вы тут?")
    world.go_online(1)
    assert await session.events.receive() == Connected()
    event = await session.events.receive()
    assert isinstance(event, InboundMessage) and event.message_id == queued


async def test_credentials_survive_stop_and_a_new_session(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    await session.stop()
    assert session.state is SessionState.IDLE
    assert not world.is_connected(1)
    world.send_inbound(1, CLIENT, "while you were away")
    await session.aclose()
    # "after a restart": a brand-new session resumes without a scan
    again = gateway.open_session(1)
    await again.start()
    assert await again.events.receive() == Connected()
    assert isinstance(await again.events.receive(), InboundMessage)
    assert again.state is SessionState.CONNECTED


async def test_unlink_from_phone_logs_out(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    world.unlink(1)
    assert await session.events.receive() == LoggedOut("device_removed")
    assert session.state is SessionState.IDLE
    assert world.linked_jid(1) is None
    await session.start()
    assert isinstance(await session.events.receive(), QrCode)  # a rescan is needed


async def test_logout_drops_credentials_and_stop_keeps_them(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    await session.logout()
    assert world.linked_jid(1) is None
    assert drain(session) == []
    await session.start()
    assert isinstance(await session.events.receive(), QrCode)
    # logout of a stopped session still drops the credentials
    other = await linked_session(gateway, world, company_id=5)
    await other.stop()
    assert world.linked_jid(5) is not None
    await other.logout()
    assert world.linked_jid(5) is None


async def test_stream_replaced_by_another_session(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    first = await linked_session(gateway, world)
    second = gateway.open_session(1)
    await second.start()
    assert await first.events.receive() == StreamReplaced()
    assert first.state is SessionState.IDLE
    assert await second.events.receive() == Connected()
    world.replace_stream(1)
    assert await second.events.receive() == StreamReplaced()
    assert drain(first) == []


async def test_temporary_ban(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    world.ban(1, expires_in=3600)
    assert await session.events.receive() == TemporaryBan("SEND_TO_TOO_MANY_PEOPLE", 3600)
    with pytest.raises(SessionNotConnected):
        await session.send_text(CLIENT, "x", new_message_id())
    await session.start()
    assert isinstance(await session.events.receive(), TemporaryBan)  # still banned
    world.lift_ban(1)
    await session.start()
    assert await session.events.receive() == Connected()


async def test_keepalive_events(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    world.keepalive_timeout(1)
    world.keepalive_restored(1)
    assert drain(session) == [KeepAliveTimeout(), KeepAliveRestored()]


async def test_world_waits(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked_session(gateway, world)
    mid = new_message_id()

    async def send_later() -> None:
        await trio.sleep(5)
        await session.send_text(CLIENT, "later", mid)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_later)
        with trio.fail_after(10):
            await world.wait_until(lambda: len(world.delivered(1)) == 1)
    assert world.delivered(1)[0].message_id == mid


async def test_closed_gateway_refuses(world: SimulatedWorld) -> None:
    async with trio.open_nursery() as nursery:
        gw = SimulatedGateway(nursery, world=world)
        session = gw.open_session(1)
        await gw.aclose()
        await gw.aclose()  # idempotent
        assert not gw.ping()
        assert session.state is SessionState.CLOSED
        with pytest.raises(BackendUnavailable):
            gw.open_session(2)
        with pytest.raises(BackendUnavailable):
            await session.start()
        # the event stream of a closed session ends
        with pytest.raises(trio.EndOfChannel):
            await session.events.receive()


async def test_ten_thousand_idle_sessions_need_no_tasks(
    world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        gw = SimulatedGateway(nursery, world=world)
        for company_id in range(10_000):
            world._company(company_id).jid = f"7900{company_id:07d}:2@s.whatsapp.net"
        sessions = [gw.open_session(company_id) for company_id in range(10_000)]
        for session in sessions:
            await session.start()
        assert all(s.state is SessionState.CONNECTED for s in sessions)
        await trio.testing.wait_all_tasks_blocked()
        assert len(nursery.child_tasks) == 0
        assert gw.snapshot().sessions == 10_000
        await gw.aclose()


async def test_media_and_staff_messages(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    """A client's voice note reaches the session with its kind; what the salon's staff type
    on the linked phone reaches it as a StaffMessage (queued while offline, like inbound)."""
    session = await linked_session(gateway, world)
    voice = world.send_inbound(1, CLIENT, "", kind="audio")
    event = await session.events.receive()
    assert isinstance(event, InboundMessage)
    assert (event.message_id, event.kind, event.text) == (voice, "audio", "")
    with pytest.raises(WorldError, match="not a message kind"):
        world.send_inbound(1, CLIENT, "", kind="hologram")
    staff = world.staff_send(1, CLIENT, "Здравствуйте, это Анна из салона")
    event = await session.events.receive()
    assert isinstance(event, StaffMessage)
    assert (event.message_id, event.to_phone, event.text, event.kind) == (
        staff,
        CLIENT,
        "Здравствуйте, это Анна из салона",
        "text",
    )
    world.go_offline(1)
    assert await session.events.receive() == Disconnected("connection lost")
    later = world.staff_send(1, CLIENT, "Перезвоню")
    world.go_online(1)
    assert await session.events.receive() == Connected()
    event = await session.events.receive()
    assert isinstance(event, StaffMessage) and event.message_id == later
    assert [(line.direction, line.text) for line in world.chat(1, CLIENT)][-3:] == [
        ("in", ""),
        ("out", "Здравствуйте, это Анна из салона"),
        ("out", "Перезвоню"),
    ]
