"""A session whose reader lags never drops an event: the producer waits instead.

In process, the simulated world keeps what the session has no room for (as WhatsApp's
servers keep an offline backlog); a neonize callback blocks its Go thread; over a session
host, the host sends a session's events only with credit, and the pipe keeps carrying the
other sessions' events and replies meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import neonize.proto.Neonize_pb2 as pb
import neonize.proto.waE2E.WAWebProtobufsE2E_pb2 as e2e
import pytest
import trio
import trio.testing

from actors.whatsapp import (
    Connected,
    Disconnected,
    HostedGateway,
    HostedSession,
    InboundMessage,
    Linked,
    NeonizeGateway,
    QrCode,
    SimulatedGateway,
    SimulatedSession,
    SimulatedWorld,
    WhatsAppSession,
    new_message_id,
    open_gateway,
)
from actors.whatsapp._neonize import ClientSpec, EventCallback, QrCallback
from actors.whatsapp._rpc import CreditWindow
from actors.whatsapp._session import EVENT_BUFFER
from config import QrPolicy, Settings, SupervisorLimits

CLIENT = "79005550001"
BURST = 3 * EVENT_BUFFER


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


async def linked(gateway: SimulatedGateway, world: SimulatedWorld) -> SimulatedSession:
    session = gateway.open_session(1)
    await session.start()
    qr = await session.events.receive()
    assert isinstance(qr, QrCode)
    world.scan(1, "79001234567", code=qr.code)
    assert isinstance(await session.events.receive(), Linked)
    assert await session.events.receive() == Connected()
    return session


async def inbound_ids(session: WhatsAppSession, count: int) -> list[str]:
    """The ids of the next ``count`` inbound messages (other events skipped), bounded."""
    ids: list[str] = []
    with trio.fail_after(10):
        while len(ids) < count:
            event = await session.events.receive()
            if isinstance(event, InboundMessage):
                ids.append(event.message_id)
    return ids


async def test_a_backlog_bigger_than_the_buffer_waits_in_the_world(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    session = await linked(gateway, world)
    world.go_offline(1)
    sent = [world.send_inbound(1, CLIENT, f"сообщение {i}") for i in range(BURST)]
    world.go_online(1)
    await trio.testing.wait_all_tasks_blocked()
    # the session holds its buffer and one more; WhatsApp (the world) keeps the rest
    assert session.snapshot().queued_events <= EVENT_BUFFER + 1
    assert await session.events.receive() == Disconnected("connection lost")
    assert await session.events.receive() == Connected()
    assert await inbound_ids(session, BURST) == sent  # every one, once, in order
    await trio.testing.wait_all_tasks_blocked()
    assert session.snapshot().queued_events == 0


async def test_a_stop_in_the_middle_of_a_burst_loses_nothing(
    gateway: SimulatedGateway, world: SimulatedWorld, autojump_clock: trio.testing.MockClock
) -> None:
    """What the world still held when the session stopped goes back to WhatsApp's queue and
    comes with the next connection, after what the session had already taken."""
    session = await linked(gateway, world)
    world.go_offline(1)
    sent = [world.send_inbound(1, CLIENT, f"сообщение {i}") for i in range(BURST)]
    world.go_online(1)
    first = await inbound_ids(session, 100)
    await session.stop()
    assert not world.is_connected(1)
    await session.start()
    rest = await inbound_ids(session, BURST - 100)
    assert first + rest == sent


# -- neonize: the callback blocks its thread instead of dropping ----------------------------


def inbound_event(index: int) -> object:
    sender = pb.JID(User=CLIENT, Server="s.whatsapp.net", Device=0, RawAgent=0, Integrator=0)
    src = pb.MessageSource(Chat=sender, Sender=sender, IsFromMe=False, IsGroup=False)
    info = pb.MessageInfo(MessageSource=src, ID=f"3A{index:010d}", Timestamp=1_700_000_000)
    return pb.Message(Info=info, Message=e2e.Message(conversation=f"сообщение {index}"))


class BurstClient:
    """A neonize client whose "Go thread" delivers a backlog in one go, counting the callbacks
    that returned (a blocked callback holds the thread, like whatsmeow's handler queue)."""

    def __init__(self, spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> None:
        self.on_event = on_event
        self.returned = 0
        self._stopped = threading.Event()

    def connect(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def deliver(self, count: int) -> None:
        self.on_event(self, pb.Connected(status=True))
        for index in range(count):
            self.on_event(self, inbound_event(index))
            self.returned += 1


@pytest.fixture
async def neonize(tmp_path: Path) -> AsyncIterator[tuple[NeonizeGateway, list[BurstClient]]]:
    made: list[BurstClient] = []

    def factory(spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> BurstClient:
        client = BurstClient(spec, on_event, on_qr)
        made.append(client)
        return client

    async with trio.open_nursery() as nursery:
        gw = NeonizeGateway(nursery, sessions_path=tmp_path / "sessions", client_factory=factory)
        yield gw, made
        await gw.aclose()
        nursery.cancel_scope.cancel()


async def wait_for(predicate: object) -> None:
    """Poll a condition another thread makes true (bounded)."""
    assert callable(predicate)
    with trio.fail_after(10):
        while not predicate():  # noqa: ASYNC110 -- another thread makes it true
            await trio.sleep(0.01)


async def test_a_neonize_callback_blocks_its_thread_while_the_buffer_is_full(
    neonize: tuple[NeonizeGateway, list[BurstClient]],
) -> None:
    gateway, made = neonize
    session = gateway.open_session(7, jid="79001234567:3@s.whatsapp.net")
    await session.start()
    [client] = made
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, client.deliver, BURST)
        await wait_for(lambda: session.events.statistics().current_buffer_used == EVENT_BUFFER)
        await trio.sleep(0.1)
        # the thread waits on its callback: WhatsApp keeps the rest of the backlog
        assert client.returned < EVENT_BUFFER
        assert session.snapshot().queued_events == EVENT_BUFFER + 1
        assert await session.events.receive() == Connected()
        with trio.fail_after(10):
            ids = await inbound_ids(session, BURST)
    assert ids == [f"3A{index:010d}" for index in range(BURST)]
    assert client.returned == BURST


async def test_stopping_releases_a_blocked_neonize_callback(
    neonize: tuple[NeonizeGateway, list[BurstClient]],
) -> None:
    gateway, made = neonize
    session = gateway.open_session(8, jid="79001234567:3@s.whatsapp.net")
    await session.start()
    [client] = made
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, client.deliver, BURST)
        await wait_for(lambda: session.snapshot().queued_events == EVENT_BUFFER + 1)
        with trio.fail_after(5):
            await session.stop()  # never waits for a reader that is not reading
        # the client is gone: its thread runs to the end without waiting
        await wait_for(lambda: client.returned == BURST)
        # a new connection's callbacks block again while the buffer is full
        await session.start()
        again = made[1]
        nursery.start_soon(trio.to_thread.run_sync, again.deliver, 10)
        await trio.sleep(0.2)
        assert again.returned == 0
        taken = await inbound_ids(session, EVENT_BUFFER)  # what the first client got in
        assert taken == [f"3A{index:010d}" for index in range(EVENT_BUFFER)]
        assert await inbound_ids(session, 10) == [f"3A{index:010d}" for index in range(10)]
        await wait_for(lambda: again.returned == 10)


# -- the wire: credits ----------------------------------------------------------------------


async def test_a_credit_window_waits_for_credit_and_ends_on_close() -> None:
    window = CreditWindow(2)
    assert await window.acquire() and await window.acquire()
    taken: list[bool] = []

    async def take() -> None:
        taken.append(await window.acquire())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        assert taken == []
        window.grant(1)
    assert taken == [True] and window.available == 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        window.close()
    assert taken == [True, False]
    assert not await window.acquire()


# -- over a session host: one lagging session does not hold up the pipe -----------------------


def hosted_settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        session_hosts=1,
        sessions_per_host=2,
        qr=QrPolicy(rotate_every=600.0, max_codes=6),
        supervisor=SupervisorLimits(backoff_initial=0.05, backoff_max=0.5),
    )


async def hosted_link(world: SimulatedWorld, session: HostedSession, phone: str) -> None:
    with trio.fail_after(10):
        await session.start()
        while not isinstance(qr := await session.events.receive(), QrCode):
            pass
        world.scan(session.company_id, phone, code=qr.code)
        while not isinstance(await session.events.receive(), Connected):
            pass


@pytest.mark.slow
async def test_a_lagging_session_on_a_host_holds_up_neither_the_pipe_nor_its_neighbour() -> None:
    world = SimulatedWorld()
    async with open_gateway(hosted_settings(), world=world) as gateway:
        assert isinstance(gateway, HostedGateway)
        slow, other = gateway.open_session(1), gateway.open_session(2)
        await hosted_link(world, slow, "79001110001")
        await hosted_link(world, other, "79001110002")
        assert slow.host_pid == other.host_pid

        world.go_offline(1)
        sent = [world.send_inbound(1, CLIENT, f"сообщение {i}") for i in range(BURST)]
        world.go_online(1)
        with trio.fail_after(10):
            # nobody reads the slow session; the parent takes its buffer and its window
            while slow.snapshot().queued_events < EVENT_BUFFER:  # noqa: ASYNC110 -- a host
                await trio.sleep(0.02)
            # ... while its neighbour on the same pipe still gets its messages and replies
            mid = world.send_inbound(2, CLIENT, "Здравствуйте")
            assert await inbound_ids(other, 1) == [mid]
            out = new_message_id()
            assert await other.send_text(CLIENT, "Добрый день", out) == out
            # and the slow one's own commands are answered too
            out = new_message_id()
            assert await slow.send_text(CLIENT, "Минуту", out) == out
        assert slow.snapshot().queued_events <= EVENT_BUFFER + 256
        with trio.fail_after(10):
            assert await inbound_ids(slow, BURST) == sent
