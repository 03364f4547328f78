"""Serving the fake OpenAI API with Hypercorn's trio worker on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ._app import FakeOpenAI


@asynccontextmanager
async def running_fake_openai(*, host: str = "127.0.0.1") -> AsyncIterator[FakeOpenAI]:
    """Serve a fresh fake for the block; ``.base_url`` is ``http://127.0.0.1:<port>/v1``."""
    fake = FakeOpenAI()
    config = Config()
    config.bind = [f"{host}:0"]
    config.graceful_timeout = 0.1
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, fake, config)
        fake.base_url = binds[0] + "/v1"
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()
