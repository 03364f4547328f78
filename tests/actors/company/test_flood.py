"""The per-client flood limit forgets ended windows: its table holds only the clients heard
from within the last window (issue 17: it used to keep every sender for ever)."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from actors.company import CompanyActor
from actors.company._actor import INBOUND_FLOOD_LIMIT, INBOUND_FLOOD_WINDOW
from actors.company._flood import FloodLimit
from actors.whatsapp import InboundMessage, SimulatedWorld
from storage import open_storage

from .conftest import make_settings, running_node
from .test_company_actor import link, register


def test_a_window_lets_limit_messages_through_then_a_new_one_starts() -> None:
    flood = FloodLimit(limit=3, window=60.0)
    assert [flood.allow("a", t) for t in (0.0, 1.0, 2.0, 3.0, 59.9)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert flood.allow("b", 10.0)  # another client is not affected
    assert flood.allow("a", 60.0)  # a's window (from 0 s) has ended: a fresh one
    assert [flood.allow("a", t) for t in (61.0, 62.0, 63.0)] == [True, True, False]


def test_the_table_keeps_only_open_windows_and_shrinks_after_the_window() -> None:
    flood = FloodLimit(limit=20, window=60.0)
    for i in range(10_000):
        flood.allow(f"7900{i:07d}", float(i // 1000))  # 1,000 new clients a second for 10 s
    assert len(flood) == 10_000
    flood.allow("79990000000", 59.0)
    assert len(flood) == 10_001  # every window still open
    flood.allow("79990000000", 65.0)  # the windows that started at 0-5 s have ended
    assert len(flood) == 4_000 + 1
    flood.prune(70.0)  # all but the last client's
    assert len(flood) == 1


def test_a_message_inside_a_window_does_not_move_it_to_the_back() -> None:
    """The table is ordered by window start, so pruning stops at the first open window:
    a counted message must keep its client's place, or an ended window would hide behind
    an open one and never be dropped."""
    flood = FloodLimit(limit=20, window=60.0)
    flood.allow("a", 0.0)
    flood.allow("b", 30.0)
    flood.allow("a", 50.0)  # a's window (from 0 s) goes on
    flood.allow("c", 61.0)  # a's window ended, b's did not
    assert len(flood) == 2
    assert flood.allow("a", 62.0)  # a starts afresh
    assert len(flood) == 3


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (20, 0.0), (20, -1.0)])
def test_a_flood_limit_needs_a_positive_limit_and_window(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="flood limit"):
        FloodLimit(limit, window)


async def test_a_company_actor_forgets_its_senders_once_their_window_ended(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """Many clients write to a linked salon; a window later one writes again: the actor's
    table holds that one alone, and each message still reached the handler once."""
    handled: list[str] = []

    async def handler(company_id: int, message: object) -> None:
        assert isinstance(message, InboundMessage)
        handled.append(message.sender_phone)

    senders = [f"7901{i:07d}" for i in range(300)]
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(make_settings(), storage, world, inbound_handler=handler) as node:
            cid = await register(node)
            await link(node, world, cid)
            for phone in senders:
                world.send_inbound(cid, phone, "Здравствуйте!")
            await trio.sleep(5)
            cell = node.registry._cells[cid]
            actor = cell.instance
            assert isinstance(actor, CompanyActor)
            assert len(actor.flood) == len(senders)
            assert sorted(handled) == sorted(senders)

            await trio.sleep(INBOUND_FLOOD_WINDOW)
            world.send_inbound(cid, senders[0], "Можно записаться?")
            await trio.sleep(1)
            assert node.registry._cells[cid].instance is actor  # the same incarnation
            assert len(actor.flood) == 1
            assert handled.count(senders[0]) == 2
            assert actor.flood.limit == INBOUND_FLOOD_LIMIT
