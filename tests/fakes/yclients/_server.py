"""Serving the fake YClients with Hypercorn's trio worker on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._app import FakeYClients


def _config(host: str, port: int, *, quiet: bool) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = 0.1
    config.keep_alive_timeout = 5
    if quiet:
        config.accesslog = None
        config.errorlog = None
    else:
        config.accesslog = "-"
        config.errorlog = "-"
    return config


@asynccontextmanager
async def running_fake_yclients(
    *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[FakeYClients]:
    """Serve a fresh ``FakeYClients(**options)`` for the duration of the block.

    Yields the fake with ``.base_url`` set (``http://127.0.0.1:<port>``). On exit the server
    stops and every request still hanging is cancelled.
    """
    fake = FakeYClients(**options)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, fake, _config(host, port, quiet=True))
        fake.base_url = binds[0]
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()


async def serve_fake_yclients(
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[FakeYClients] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve the fake until cancelled (for local runs); reports the fake once listening."""
    fake = FakeYClients(**options)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, fake, _config(host, port, quiet=False))
        fake.base_url = binds[0]
        task_status.started(fake)
