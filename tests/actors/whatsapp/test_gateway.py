"""``open_gateway`` picks the backend from the settings."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from actors.whatsapp import (
    Connected,
    NeonizeGateway,
    QrCode,
    SimulatedGateway,
    SimulatedWorld,
    open_gateway,
    serve_world,
)
from config import QrPolicy, Settings, WhatsAppProvider


async def test_in_process_simulated_gateway_uses_the_given_world(
    autojump_clock: trio.testing.MockClock,
) -> None:
    world = SimulatedWorld()
    qr = QrPolicy(rotate_every=5.0, max_codes=2)
    async with open_gateway(Settings(qr=qr), world=world) as gateway:
        assert isinstance(gateway, SimulatedGateway) and gateway.world is world
        session = gateway.open_session(1)
        await session.start()
        t0 = trio.current_time()
        assert isinstance(await session.events.receive(), QrCode)
        assert isinstance(await session.events.receive(), QrCode)
        assert trio.current_time() - t0 == 5.0  # the settings' rotation period
        world.scan(1)
        await session.events.receive()
        assert await session.events.receive() == Connected()
    assert not gateway.ping()
    assert not world.is_connected(1)


async def test_simulated_gateway_makes_its_own_world() -> None:
    async with open_gateway(Settings()) as gateway:
        assert isinstance(gateway, SimulatedGateway)
        assert isinstance(gateway.world, SimulatedWorld)


async def test_simulated_gateway_joins_a_shared_world_on_its_socket(tmp_path: Path) -> None:
    """``AIADMIN_SIMULATED_WORLD``: the sessions are the served world's (as the processes of
    ``make cluster`` share one); the gateway simulates none of its own."""
    world = SimulatedWorld()
    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_world, world, str(tmp_path / "world.sock"))
        async with open_gateway(Settings(simulated_world=path)) as gateway:
            assert isinstance(gateway, SimulatedGateway) and gateway.world is None
            session = gateway.open_session(7)
            await session.start()
            assert isinstance(await session.events.receive(), QrCode)
            assert world.live_qr(7) is not None
            world.scan(7)
            await session.events.receive()
            assert await session.events.receive() == Connected()
            assert world.is_connected(7)
        nursery.cancel_scope.cancel()


async def test_in_process_neonize_gateway(tmp_path: Path) -> None:
    config = Settings(whatsapp_provider=WhatsAppProvider.NEONIZE, whatsapp_sessions_path=tmp_path)
    async with open_gateway(config) as gateway:
        assert isinstance(gateway, NeonizeGateway)
        assert gateway.ping()
        assert gateway.snapshot().backend == "neonize"
