"""Fixtures of the WhatsApp tests: one simulated session linked to its world (mock clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from actors.whatsapp import QrCode, SimulatedGateway, SimulatedSession, SimulatedWorld
from config import QrPolicy


@pytest.fixture
async def linked(autojump_clock: object) -> AsyncIterator[tuple[SimulatedWorld, SimulatedSession]]:
    """Company 1's simulated session, scanned by 79001234567 and connected."""
    world = SimulatedWorld()
    async with trio.open_nursery() as nursery:
        gateway = SimulatedGateway(
            nursery, world=world, qr=QrPolicy(rotate_every=20.0, max_codes=6)
        )
        session = gateway.open_session(1)
        await session.start()
        qr = await session.events.receive()
        assert isinstance(qr, QrCode)
        world.scan(1, "79001234567", code=qr.code)
        await world.wait_until(lambda: world.is_connected(1))
        yield world, session
        await gateway.aclose()
        nursery.cancel_scope.cancel()
