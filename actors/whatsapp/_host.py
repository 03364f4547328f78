"""The session host: a child process that runs WhatsApp sessions for the main process.

Started as ``python -m actors.whatsapp.host`` by :class:`HostedGateway`. It speaks
:mod:`._rpc` frames on its stdin/stdout; stderr carries its logs. Because a stray ``print``
(neonize prints login statuses) would corrupt the frame stream, the frames get a private copy
of the stdout descriptor and descriptor 1 is pointed at stderr before anything else runs.

Requests (all but ``hello`` and ``ping`` carry ``sid``, the parent's session key):
``hello {config}`` → ``{"pid"}`` builds the backend (a neonize config with ``ledger_url``
opens the sent-message ledger in that PostgreSQL database); ``open {sid, company_id, jid}``;
``start``; ``send {to_phone, text, message_id}`` → id; ``pair {phone}`` → code; ``logout``;
``stop``; ``close``; ``ping`` → ``{"pid", "sessions"}``. Events go up as notes
``{"sid": n, "event": {...}}`` in the order each session produced them, at most
:data:`WIRE_WINDOW` per session ahead of the parent, which grants credits back as notes
``{"sid": n, "credit": k}``; without credit a session's events wait in it (its backend then
waits too: backpressure down to WhatsApp, never a drop).
The host exits when its stdin closes (the parent is gone or asked it to stop).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import trio

from config import QrPolicy

from ._errors import BackendUnavailable, WhatsAppError
from ._events import event_to_dict
from ._rpc import CreditWindow, FrameStream, RpcPeer
from ._session import WIRE_WINDOW, WhatsAppGateway, WhatsAppSession

log = logging.getLogger("actors.whatsapp.host")


class _HostService:
    """Owns this process's gateway and sessions and answers the parent's requests."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._gateway: WhatsAppGateway | None = None
        self._sessions: dict[int, WhatsAppSession] = {}
        self._windows: dict[int, CreditWindow] = {}
        self.peer: RpcPeer | None = None

    def on_note(self, note: dict[str, Any]) -> None:
        """The parent's credit for a session's events (``{"sid", "credit"}``)."""
        window = self._windows.get(int(note.get("sid", -1)))
        credit = note.get("credit")
        if window is not None and isinstance(credit, int):
            window.grant(credit)

    def _forget(self, sid: int) -> None:
        self._sessions.pop(sid, None)
        window = self._windows.pop(sid, None)
        if window is not None:
            window.close()

    async def _build_gateway(self, config: dict[str, Any]) -> WhatsAppGateway:
        backend = config.get("backend")
        if backend == "simulated":
            from ._simulated import SimulatedGateway

            qr = QrPolicy(**config.get("qr", {}))
            return SimulatedGateway(self._nursery, world_path=str(config["world_path"]), qr=qr)
        if backend == "neonize":
            from ._ledger import hold_pg_ledger
            from ._neonize import NeonizeGateway

            ledger_url = config.get("ledger_url")
            # The sent-message ledger in PostgreSQL, held by this host for its lifetime: the
            # host records each send itself, the moment WhatsApp took it (see ``._ledger``).
            ledger = await self._nursery.start(hold_pg_ledger, ledger_url) if ledger_url else None
            return NeonizeGateway(
                self._nursery,
                sessions_path=Path(config["sessions_path"]),
                store_url=config.get("store_url"),
                ledger=ledger,
            )
        raise BackendUnavailable(f"unknown WhatsApp backend {backend!r}")

    def _session(self, args: dict[str, Any]) -> WhatsAppSession:
        session = self._sessions.get(int(args["sid"]))
        if session is None:
            raise BackendUnavailable(f"no session {args.get('sid')} on this host")
        return session

    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        if op == "hello":
            if self._gateway is None:
                config = dict(args["config"])
                level = str(config.get("log_level", "info")).upper()
                logging.getLogger().setLevel(getattr(logging, level, logging.INFO))
                self._gateway = await self._build_gateway(config)
            return {"pid": os.getpid(), "problem": self._gateway.snapshot().problem}
        if op == "ping":
            return {"pid": os.getpid(), "sessions": len(self._sessions)}
        if self._gateway is None:
            raise BackendUnavailable("host not configured (no hello)")
        if op == "open":
            sid = int(args["sid"])
            old = self._sessions.get(sid)
            self._forget(sid)
            if old is not None:
                await old.aclose()
            session = self._gateway.open_session(int(args["company_id"]), jid=args.get("jid"))
            window = CreditWindow(WIRE_WINDOW)
            self._sessions[sid] = session
            self._windows[sid] = window
            self._nursery.start_soon(self._forward, sid, session, window)
            return None
        session = self._session(args)
        if op == "start":
            await session.start()
            return None
        if op == "send":
            return await session.send_text(
                str(args["to_phone"]), str(args["text"]), str(args["message_id"])
            )
        if op == "pair":
            return await session.pair_phone(str(args["phone"]))
        if op == "logout":
            await session.logout()
            return None
        if op == "stop":
            await session.stop()
            return None
        if op == "close":
            self._forget(int(args["sid"]))
            await session.aclose()
            return None
        raise WhatsAppError(f"unknown host request {op!r}")

    async def _forward(self, sid: int, session: WhatsAppSession, window: CreditWindow) -> None:
        """Send the session's events up in order, each only with credit from the parent."""
        async for event in session.events:
            if not await window.acquire():
                return  # the parent closed this session: nobody reads its events any more
            if self.peer is not None:
                self.peer.notify_nowait({"sid": sid, "event": event_to_dict(event)})

    async def shutdown(self) -> None:
        """Stop every session (credentials kept) within a few seconds."""
        with trio.move_on_after(5):
            if self._gateway is not None:
                await self._gateway.aclose()


async def _serve(frames_fd: int) -> None:
    receive = trio.lowlevel.FdStream(os.dup(0))
    send = trio.lowlevel.FdStream(frames_fd)
    async with trio.open_nursery() as nursery:
        service = _HostService(nursery)
        peer = RpcPeer(
            FrameStream(receive, send),
            on_request=service.handle,
            on_note=service.on_note,
            name="parent",
        )
        service.peer = peer
        await peer.run()
        log.info("parent closed the pipe; shutting down")
        with trio.CancelScope(shield=True):
            await service.shutdown()
        nursery.cancel_scope.cancel()


def main() -> None:
    """Entry point of ``python -m actors.whatsapp.host``; never returns normally."""
    frames_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, never into the frames
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"host[{os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    code = 0
    try:
        trio.run(_serve, frames_fd)
    except KeyboardInterrupt:
        pass
    except BaseException:
        log.exception("session host failed")
        code = 1
    finally:
        sys.stderr.flush()
    os._exit(code)  # do not wait for non-daemon threads a Go library may have left behind
