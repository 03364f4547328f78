"""The simulated world over a Unix socket, so sessions in host processes can reach it.

Like a real WhatsApp session holds a websocket to WhatsApp, a simulated session in another
process holds one socket connection to :func:`serve_world` for as long as it runs; when its
process dies the socket closes and the world drops that connection (credentials stay).
Frames are those of :mod:`._rpc`; requests: ``attach``, ``show_qr``, ``send``, ``pair``,
``logout``, ``detach``, ``forget``; the world pushes ``{"event": {...}}`` notes.

Flow control: at most :data:`WIRE_WINDOW` event notes are in flight that the session has not
taken into its buffer; the session grants credits back as ``{"credit": n}`` notes. Without
credit the world holds the connection's events itself (its sink answers "no room").
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import trio

from ._errors import BackendUnavailable, SessionNotConnected
from ._events import SessionEvent, event_to_dict
from ._rpc import FrameStream, RpcPeer
from ._session import WIRE_WINDOW
from ._world import SimulatedWorld, WorldConnection

log = logging.getLogger(__name__)


async def serve_world(
    world: SimulatedWorld,
    path: str,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``world`` on a Unix socket at ``path`` until cancelled; ``started(path)``."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket from a previous run
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(128)
        listener = trio.SocketListener(sock)
    except BaseException:
        sock.close()
        raise
    try:
        async with listener, trio.open_nursery() as nursery:
            task_status.started(path)
            while True:
                stream = await listener.accept()
                nursery.start_soon(_serve_connection, world, stream)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


async def _serve_connection(world: SimulatedWorld, stream: trio.SocketStream) -> None:
    conn: WorldConnection | None = None
    peer: RpcPeer
    in_flight = 0  # event notes sent that the session has not granted credit for

    def sink(event: SessionEvent) -> bool:
        nonlocal in_flight
        if in_flight >= WIRE_WINDOW:
            return False  # the world holds it until credit comes back
        in_flight += 1
        peer.notify_nowait({"event": event_to_dict(event)})
        return True

    def on_note(note: dict[str, Any]) -> None:
        nonlocal in_flight
        credit = note.get("credit")
        if isinstance(credit, int) and credit > 0:
            in_flight = max(0, in_flight - credit)
            if conn is not None:
                conn.resume()

    def live() -> WorldConnection:
        if conn is None:
            raise SessionNotConnected(0, "not attached")
        return conn

    async def handle(op: str, args: dict[str, Any]) -> Any:
        nonlocal conn
        if op == "attach":
            if conn is not None:
                conn.detach()
            conn = world.attach(int(args["company_id"]), sink)
            return {"needs_qr": world.needs_qr(conn)}
        if op == "show_qr":
            live().show_qr(args.get("code"))
            return None
        if op == "send":
            return live().send(str(args["to_phone"]), str(args["text"]), str(args["message_id"]))
        if op == "pair":
            return live().request_pairing_code(str(args["phone"]))
        if op == "logout":
            live().logout()
            return None
        if op == "detach":
            if conn is not None:
                conn.detach()
            return None
        if op == "forget":
            world.forget(int(args["company_id"]))
            return None
        raise BackendUnavailable(f"unknown world request {op!r}")

    peer = RpcPeer(
        FrameStream(stream, stream), on_request=handle, on_note=on_note, name="world-client"
    )
    try:
        await peer.run()
    finally:
        if conn is not None:
            conn.detach()
