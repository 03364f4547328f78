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


async def test_in_process_neonize_gateway(tmp_path: Path) -> None:
    config = Settings(whatsapp_provider=WhatsAppProvider.NEONIZE, whatsapp_sessions_path=tmp_path)
    async with open_gateway(config) as gateway:
        assert isinstance(gateway, NeonizeGateway)
        assert gateway.ping()
        assert gateway.snapshot().backend == "neonize"
