"""Length-prefixed JSON frames and a small request/reply peer on top of them.

Used on both wires of this package: the session-host pipes (parent ↔ child stdin/stdout) and
the simulated world's socket. A frame is a 4-byte big-endian length and that many bytes of
UTF-8 JSON (an object). Three kinds of frame travel:

* ``{"id": n, "op": "...", "args": {...}}``  a request; answered by exactly one reply
* ``{"re": n, "result": ...}`` or ``{"re": n, "error": {...}}``  the reply
* ``{"note": {...}}``  a one-way notification (session events)

:class:`RpcPeer` runs one reader and one writer task; every send goes through a bounded
outgoing queue, so ``notify_nowait`` can be called from synchronous code. The reader never
waits on a handler, so replies are never stuck behind notes: notes that must not outrun their
receiver (session events) are flow-controlled above this layer with a :class:`CreditWindow`.
Requests are handled each in their own task. When the stream ends, every pending ``call``
raises :class:`PeerLost`.
Errors of this package cross the wire by class name and attributes (see :func:`error_to_dict`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import math
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import _errors
from ._errors import WhatsAppError

log = logging.getLogger(__name__)

MAX_FRAME = 16 * 2**20
OUTGOING_BUFFER = 100_000
_HEADER = struct.Struct(">I")

RequestHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
NoteHandler = Callable[[dict[str, Any]], None]


class PeerLost(Exception):
    """The other side closed the stream or died; the call's outcome is unknown."""


class FrameError(Exception):
    """A frame was malformed (bad length or not a JSON object)."""


_STREAM_ERRORS = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    FrameError,
    OSError,
    ValueError,
)


class FrameStream:
    """Reads and writes length-prefixed JSON objects over a pair of trio byte streams."""

    def __init__(self, receive: trio.abc.ReceiveStream, send: trio.abc.SendStream) -> None:
        self._receive = receive
        self._send = send
        self._buffer = bytearray()

    async def send(self, obj: dict[str, Any]) -> None:
        """Write one frame. Not safe to call concurrently (the peer's writer task owns it)."""
        body = json.dumps(obj, separators=(",", ":")).encode()
        if len(body) > MAX_FRAME:
            raise FrameError(f"frame of {len(body)} bytes is over the {MAX_FRAME} limit")
        await self._send.send_all(_HEADER.pack(len(body)) + body)

    async def receive(self) -> dict[str, Any] | None:
        """Read one frame; ``None`` at a clean end of stream."""
        header = await self._read_exactly(_HEADER.size)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        if length > MAX_FRAME:
            raise FrameError(f"frame length {length} is over the {MAX_FRAME} limit")
        body = await self._read_exactly(length)
        if body is None:
            raise FrameError("stream ended inside a frame")
        obj = json.loads(body)
        if not isinstance(obj, dict):
            raise FrameError("a frame must hold a JSON object")
        return obj

    async def _read_exactly(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            chunk = await self._receive.receive_some(65536)
            if not chunk:
                if self._buffer:
                    raise FrameError("stream ended inside a frame")
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def aclose(self) -> None:
        """Close both directions; never raises."""
        for stream in (self._send, self._receive):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await stream.aclose()


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    """Describe an error for the wire: our classes by name with their plain attributes."""
    if isinstance(exc, WhatsAppError):
        attrs = {
            k: v for k, v in vars(exc).items() if isinstance(v, str | int | float | bool | None)
        }
        return {"type": type(exc).__name__, "message": str(exc), "attrs": attrs}
    return {"type": "WhatsAppError", "message": f"internal error: {type(exc).__name__}: {exc}"}


def error_from_dict(data: dict[str, Any]) -> WhatsAppError:
    """Rebuild an error described by :func:`error_to_dict` (unknown types → ``WhatsAppError``)."""
    cls = getattr(_errors, str(data.get("type")), WhatsAppError)
    if not (isinstance(cls, type) and issubclass(cls, WhatsAppError)):
        cls = WhatsAppError
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("message", "")))
    attrs = data.get("attrs")
    if isinstance(attrs, dict):
        exc.__dict__.update(attrs)
    return exc


class CreditWindow:
    """Credit-based flow control for one stream of notes on a wire.

    The sender may have ``size`` notes out that the receiver has not granted back: it calls
    :meth:`acquire` before each (waits while none is left) and the receiver's ``credit`` notes
    feed :meth:`grant`. :meth:`close` ends the stream: waiting and later ``acquire`` calls
    return ``False`` at once (send nothing more).
    """

    def __init__(self, size: int) -> None:
        self._available = size
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def available(self) -> int:
        return self._available

    async def acquire(self) -> bool:
        """Take one credit, waiting for it; ``False`` once the window is closed."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._available <= 0 and not self._closed:
            await self._lot.park()
        if self._closed:
            return False
        self._available -= 1
        return True

    def grant(self, credits: int) -> None:
        """The receiver took ``credits`` more notes."""
        if credits > 0:
            self._available += credits
            self._lot.unpark_all()

    def close(self) -> None:
        self._closed = True
        self._lot.unpark_all()


class RpcPeer:
    """One end of a framed request/reply conversation.

    ``run()`` serves until the stream ends (returns) or the peer's scope is cancelled; after
    it ends, ``call`` raises :class:`PeerLost` at once. ``on_request(op, args)`` answers
    requests (its ``WhatsAppError`` travels back to the caller); ``on_note(note)`` receives
    notifications in order, on the reader task, and must not block.
    """

    def __init__(
        self,
        frames: FrameStream,
        *,
        on_request: RequestHandler | None = None,
        on_note: NoteHandler | None = None,
        name: str = "peer",
    ) -> None:
        self.name = name
        self._frames = frames
        self._on_request = on_request
        self._on_note = on_note
        self._ids = itertools.count(1)
        self._pending: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._out_send, self._out_recv = trio.open_memory_channel[dict[str, Any]](OUTGOING_BUFFER)
        self._lost = False
        self.closed = trio.Event()

    @property
    def lost(self) -> bool:
        """Whether the conversation has ended."""
        return self._lost

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read and write frames until the stream ends; then fail every pending call."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._guarded, self._writer, nursery.cancel_scope)
                task_status.started()
                await self._guarded(functools.partial(self._reader, nursery), nursery.cancel_scope)
        finally:
            self._finish()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self._frames.aclose()

    async def _guarded(self, fn: Callable[[], Awaitable[None]], scope: trio.CancelScope) -> None:
        """Run the reader or writer; when either ends (cleanly or broken), end the other."""
        try:
            await fn()
        except _STREAM_ERRORS as exc:
            log.debug("%s: stream ended: %s", self.name, exc)
        finally:
            scope.cancel()

    def _finish(self) -> None:
        self._lost = True
        for chan in self._pending.values():
            chan.close()
        self._pending.clear()
        self._out_send.close()
        self.closed.set()

    async def _reader(self, nursery: trio.Nursery) -> None:
        while True:
            frame = await self._frames.receive()
            if frame is None:
                return
            if "re" in frame:
                chan = self._pending.pop(int(frame["re"]), None)
                if chan is not None:
                    chan.send_nowait(frame)
                    chan.close()
            elif "op" in frame:
                nursery.start_soon(self._answer, frame)
            elif "note" in frame and self._on_note is not None:
                self._on_note(frame["note"])

    async def _writer(self) -> None:
        async for frame in self._out_recv:
            await self._frames.send(frame)

    async def _answer(self, frame: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"re": frame.get("id")}
        try:
            if self._on_request is None:
                raise WhatsAppError(f"{self.name} accepts no requests")
            args = frame.get("args") or {}
            reply["result"] = await self._on_request(str(frame["op"]), dict(args))
        except WhatsAppError as exc:
            reply["error"] = error_to_dict(exc)
        except Exception as exc:
            log.exception("%s: request %r failed", self.name, frame.get("op"))
            reply["error"] = error_to_dict(exc)
        self._put(reply)

    def _put(self, frame: dict[str, Any]) -> None:
        try:
            self._out_send.send_nowait(frame)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("%s: dropped an outgoing frame (queue full or closed)", self.name)

    def notify_nowait(self, note: dict[str, Any]) -> None:
        """Queue a notification; dropped (with a warning) if the peer is gone."""
        self._put({"note": note})

    async def call(self, op: str, args: dict[str, Any], *, timeout: float = math.inf) -> Any:
        """Send a request and wait for its reply.

        Raises the remote ``WhatsAppError``, :class:`PeerLost` if the stream ends first, or
        ``trio.TooSlowError`` after ``timeout`` seconds (the outcome is then unknown).
        """
        if self._lost:
            raise PeerLost(f"{self.name} is gone")
        call_id = next(self._ids)
        send, recv = trio.open_memory_channel[dict[str, Any]](1)
        self._pending[call_id] = send
        self._put({"id": call_id, "op": op, "args": args})
        try:
            with trio.fail_after(timeout):
                try:
                    reply = await recv.receive()
                except trio.EndOfChannel:
                    raise PeerLost(f"{self.name} went away during {op!r}") from None
        finally:
            self._pending.pop(call_id, None)
            recv.close()
        if "error" in reply:
            raise error_from_dict(reply["error"])
        return reply.get("result")

    async def aclose(self) -> None:
        """Close the stream (the reader then ends and ``run`` returns)."""
        self._out_send.close()
        await self._frames.aclose()
