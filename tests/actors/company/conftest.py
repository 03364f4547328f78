"""Fixtures: a node on in-memory storage and the simulated WhatsApp, under trio's mock clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
import trio

from actors import Node, open_node
from actors.whatsapp import SimulatedWorld, open_gateway
from config import SendPacing, Settings, settings_from_env
from storage import Storage, open_storage


class RecordingViewer:
    """A connect-page stand-in: a bounded queue of frames, like a real socket's."""

    def __init__(self, capacity: int = 64) -> None:
        self.send, self.receive = trio.open_memory_channel[dict[str, Any]](capacity)
        self.closed = False
        self.frames: list[dict[str, Any]] = []

    def send_nowait(self, frame: dict[str, Any]) -> None:
        self.send.send_nowait(frame)

    def close(self) -> None:
        self.closed = True

    async def next_status(self, status: str, timeout: float = 300.0) -> dict[str, Any]:
        """The next ``status`` frame whose status is ``status``."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.next("status", timeout=timeout)
                if frame["data"]["status"] == status:
                    return frame

    async def next(self, event: str, timeout: float = 300.0) -> dict[str, Any]:
        """The next frame named ``event`` (earlier frames of other names are kept in ``frames``)."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.receive.receive()
                self.frames.append(frame)
                if frame["event"] == event:
                    return frame


def make_settings(**changes: Any) -> Settings:
    base = settings_from_env({}, dotenv=None)
    pacing = SendPacing(min_gap=1.0, jitter=0.5, per_minute=20)
    return replace(base, pacing=pacing, **changes)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def world() -> SimulatedWorld:
    return SimulatedWorld()


@asynccontextmanager
async def running_node(
    settings: Settings,
    storage: Storage,
    world: SimulatedWorld,
    seed: int = 7,
    **node_options: Any,
) -> AsyncIterator[Node]:
    """A node (and its gateway) over given storage and world: open one after another to
    restart "the whole node" while the database and the phones stay."""
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(settings, storage, gateway, rng=random.Random(seed), **node_options) as n,
    ):
        yield n


@pytest.fixture
async def node(settings: Settings, world: SimulatedWorld) -> AsyncIterator[Node]:
    """A node; tests request ``autojump_clock`` themselves (pytest-trio reads the test's own
    arguments for the clock)."""
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        running_node(settings, storage, world) as n,
    ):
        yield n
