"""Actors and helpers shared by the runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from runtime import Actor, Service


class Boom(Exception):
    """The crash the test actors raise on purpose."""


class Echo(Actor):
    """Answers ``(message, n)``; ``"crash"`` crashes it; ``("sleep", s)`` sleeps first.

    ``log`` (shared list) records ``(name, event, trio time)`` for order assertions.
    """

    def __init__(self, name: str = "echo", log: list[tuple[str, str, float]] | None = None):
        self.name = name
        self.log = log if log is not None else []
        self.n = 0

    def _note(self, event: str) -> None:
        self.log.append((self.name, event, trio.current_time()))

    async def on_start(self) -> None:
        self._note("start")

    async def receive(self, message: Any) -> Any:
        if message == "crash":
            raise Boom(f"{self.name} crashed on purpose")
        if message == "stop":
            self.stop()
            return "stopping"
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
        self.n += 1
        return (message, self.n)

    async def on_stop(self) -> None:
        self._note("stop")


class CrashLater(Actor):
    """Crashes ``after`` seconds after each start, from a timer in its nursery."""

    def __init__(self, after: float, log: list[float]) -> None:
        self.after = after
        self.log = log

    async def on_start(self) -> None:
        self.log.append(trio.current_time())
        self.nursery.start_soon(self._bomb)

    async def _bomb(self) -> None:
        await trio.sleep(self.after)
        raise Boom("timer went off")

    async def receive(self, message: Any) -> Any:
        return message


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[trio.Nursery]:
    """Start ``service`` in a nursery; cancel it when the block ends."""
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield nursery
        nursery.cancel_scope.cancel()


def events(log: list[tuple[str, str, float]]) -> list[str]:
    return [f"{event} {name}" for name, event, _ in log]
