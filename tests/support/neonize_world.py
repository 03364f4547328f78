"""A neonize client whose WhatsApp is the :class:`SimulatedWorld`, for the gateway's
``client_factory`` seam: sessions, hosts and company actors then run on neonize's real code.

Like neonize, the client cannot pass our message id to WhatsApp: each send gets a WhatsApp id
of its own, so the world cannot deduplicate a re-send and every copy it receives is counted
(``world.delivered``, ``world.send_attempts``). Only exactly-once machinery of ours (the
sent-message ledger) keeps a message from arriving twice.
"""

from __future__ import annotations

import itertools
import threading
import types
from typing import Any

import neonize.proto.Neonize_pb2 as pb
import trio

from actors.whatsapp import SessionEvent, SimulatedWorld
from actors.whatsapp._neonize import ClientSpec, EventCallback, QrCallback


class WorldClient:
    """A neonize client on the simulated world: ``connect`` attaches and reports Connected
    from its own thread (as neonize's Go thread does), then holds until ``stop``."""

    _ids = itertools.count(1)

    def __init__(
        self, world: SimulatedWorld, spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback
    ) -> None:
        self.world = world
        self.spec = spec
        self._on_event = on_event
        self._stopped = threading.Event()
        self.connected = trio.Event()
        self._conn: Any = None

    def _sink(self, event: SessionEvent) -> bool:
        return True  # the world's own events: this client reports Connected itself

    def connect(self) -> None:
        self._conn = trio.from_thread.run_sync(self.world.attach, self.spec.company_id, self._sink)
        self._on_event(self, pb.Connected(status=True))  # returns once the session took it
        trio.from_thread.run_sync(self.connected.set)
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def send_message(self, to: str, text: str) -> object:
        wa_id = f"3EB0{next(self._ids):012X}"  # WhatsApp's id, never ours
        trio.from_thread.run_sync(self._conn.send, to, text, wa_id)
        return types.SimpleNamespace(ID=wa_id)


class WorldClients:
    """The gateways' ``client_factory``: every client made, in order."""

    def __init__(self, world: SimulatedWorld) -> None:
        self.world = world
        self.made: list[WorldClient] = []

    def __call__(self, spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> object:
        client = WorldClient(self.world, spec, on_event, on_qr)
        self.made.append(client)
        return client

    async def connected(self) -> None:
        with trio.fail_after(10):
            await self.made[-1].connected.wait()


def linked_world(company_id: int) -> SimulatedWorld:
    """A world where ``company_id``'s phone is linked (its credentials exist)."""
    world = SimulatedWorld()
    link_in_world(world, company_id)
    return world


def link_in_world(world: SimulatedWorld, company_id: int, phone: str = "79001234567") -> str:
    """Link ``company_id``'s phone in ``world`` (its credentials exist); returns the JID."""
    conn = world.attach(company_id, lambda event: None)
    conn.show_qr("2@linked")
    jid = world.scan(company_id, phone=phone)
    conn.detach()
    return jid
