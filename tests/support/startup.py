"""Helpers for tests of the node's background start-up restore: linked salons as a stopped
node leaves them, and company actors whose start is slowed, counted, or made to fail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import trio

from actors.company import CompanyActor
from actors.whatsapp import SimulatedWorld
from storage import Storage


async def link_stored(storage: Storage, world: SimulatedWorld, company_id: int, phone: str) -> None:
    """Link ``company_id`` as a stopped node leaves it: its credentials in the simulated world
    (a scan of its QR by ``phone``), ``active`` with that device in storage."""
    conn = world.attach(company_id, lambda event: None)
    conn.show_qr("2@linked")
    jid = world.scan(company_id, phone=phone)
    conn.detach()
    await storage.companies.transition(
        company_id,
        ["pending"],
        "active",
        whatsapp_jid=jid,
        whatsapp_phone=phone,
        whatsapp_connected=True,
    )


async def store_linked(storage: Storage, world: SimulatedWorld, n: int, first: int) -> list[int]:
    """``n`` salons linked as a stopped node leaves them: credentials in the world, ``active``
    with a device in storage; their ids, ascending."""
    ids = []
    for i in range(n):
        created = await storage.companies.create(first + i, title=f"Салон {i}")
        await link_stored(storage, world, created.company.id, f"7900{first + i:07d}")
        ids.append(created.company.id)
    return ids


class StartFailed(Exception):
    """A company actor's start made to fail by :class:`Starts`."""


@dataclass
class Starts:
    """Every company actor's ``on_start`` counted (calls per company, most at once), delayed
    by ``delay`` seconds (``slow`` only, when given) and failing for ``failing``."""

    delay: float = 0.0
    slow: set[int] | None = None
    failing: set[int] = field(default_factory=set)
    calls: Counter[int] = field(default_factory=Counter)
    running: int = 0
    most: int = 0


@contextmanager
def counted_starts(monkeypatch: pytest.MonkeyPatch, starts: Starts) -> Iterator[Starts]:
    """Patch :meth:`CompanyActor.on_start` as ``starts`` says for the block."""
    original = CompanyActor.on_start

    async def on_start(actor: CompanyActor) -> None:
        cid = actor.company_id
        starts.calls[cid] += 1
        starts.running += 1
        starts.most = max(starts.most, starts.running)
        try:
            if starts.slow is None or cid in starts.slow:
                await trio.sleep(starts.delay)
            if cid in starts.failing:
                raise StartFailed(f"company {cid} fails to start")
        finally:
            starts.running -= 1
        await original(actor)

    with monkeypatch.context() as patch:
        patch.setattr(CompanyActor, "on_start", on_start)
        yield starts
