"""A trio TCP proxy that can cut connections, for fault tests of PostgreSQL and Redis clients.

    async with open_tcp_proxy("127.0.0.1", 5432) as proxy:
        url = with_port(database_url, proxy.port)
        ...
        proxy.cut()             # drop every live connection now
        proxy.block()           # also drop new connections at once (backend "down")
        proxy.stall()           # keep connections open but forward nothing (a hung server)
        proxy.black_hole()      # accept and forward nothing, never deliver it (see below)
        proxy.allow()           # pass traffic again
        proxy.cut_after(n)      # trip wire: cut everything once n more client bytes passed

``stall`` holds what arrives and delivers it on ``allow`` (a paused server catching up);
``black_hole`` swallows it: new connections are accepted and hang too, and on ``allow`` every
connection that lived through the black hole is cut (its stream lost bytes), so a client must
replace them — the harder recovery. Everything stays on loopback. ``statistics()`` counts
connections and bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio


@dataclass(frozen=True)
class ProxyStatistics:
    accepted: int
    live: int
    cut: int
    upstream_bytes: int


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to the target; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.blocked = False
        self._live: set[trio.CancelScope] = set()
        self._accepted = 0
        self._cut = 0
        self._upstream_bytes = 0
        self._trip_at: int | None = None
        self._flowing = trio.Event()
        self._flowing.set()
        self._holes = 0  # black holes begun so far: a connection older than the last is cut
        self._holed = False

    def statistics(self) -> ProxyStatistics:
        return ProxyStatistics(
            accepted=self._accepted,
            live=len(self._live),
            cut=self._cut,
            upstream_bytes=self._upstream_bytes,
        )

    def cut(self) -> None:
        """Close every live connection now."""
        for scope in list(self._live):
            scope.cancel()
        self._cut += len(self._live)

    def block(self) -> None:
        """Cut live connections and close new ones at once, until :meth:`allow`."""
        self.blocked = True
        self.cut()

    def stall(self) -> None:
        """Stop forwarding bytes (connections stay open) until :meth:`allow`."""
        if self._flowing.is_set():
            self._flowing = trio.Event()

    def black_hole(self) -> None:
        """Accept connections and forward nothing until :meth:`allow`, which then cuts every
        connection that lived through it (nothing swallowed is ever delivered)."""
        self.stall()
        if not self._holed:
            self._holed = True
            self._holes += 1

    def allow(self) -> None:
        self.blocked = False
        self._trip_at = None
        if self._holed:
            self._holed = False
            self.cut()  # before the flow resumes: what they sent is never delivered
        self._flowing.set()

    def cut_after(self, upstream_bytes: int) -> None:
        """Cut (and block) once ``upstream_bytes`` more client→server bytes have passed."""
        self._trip_at = self._upstream_bytes + upstream_bytes

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, up: bool) -> None:
        while True:
            data = await source.receive_some(65536)
            await self._flowing.wait()
            if not data:
                await sink.send_eof()
                return
            if up and self._trip_at is not None:
                room = self._trip_at - self._upstream_bytes
                if room < len(data):
                    if room > 0:
                        await sink.send_all(data[:room])
                        self._upstream_bytes += room
                    self.block()
                    await trio.sleep_forever()  # cancelled by block()
            await sink.send_all(data)
            if up:
                self._upstream_bytes += len(data)

    async def _handle(self, client: trio.SocketStream) -> None:
        self._accepted += 1
        holes, holed = self._holes, self._holed
        await self._flowing.wait()
        swallowed = holed or holes != self._holes  # lived through a black hole
        if self.blocked or swallowed:
            self._cut += swallowed
            await client.aclose()
            return
        scope = trio.CancelScope()
        self._live.add(scope)
        try:
            with scope:
                upstream = await trio.open_tcp_stream(self.target_host, self.target_port)
                async with upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream, True)
                    nursery.start_soon(self._pump, upstream, client, False)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._live.discard(scope)
            with trio.CancelScope(shield=True):
                await client.aclose()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started(self.port)


@asynccontextmanager
async def open_tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    """Run a :class:`TcpProxy` for the block's lifetime."""
    proxy = TcpProxy(target_host, target_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        try:
            yield proxy
        finally:
            proxy.cut()
            nursery.cancel_scope.cancel()
