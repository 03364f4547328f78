"""The assistant's housekeeping (``_sweep.ConversationSweep``) on in-memory storage under trio's
mock clock: idle state cleared on a schedule (never before it is idle), in batches; and, when
a node starts, the conversations a stopped node left with an unsettled booking woken so they
settle it (and no other conversation activated).

The storage's wall clock and the assistant's are the same function of trio's clock, so the
stored ``updated_at`` moves with the mock clock.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

import trio
from trio.testing import MockClock

from actors import Node, open_node
from actors._node import SWEEP_CHILD
from actors.assistant import AssistantOptions
from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import Flow
from actors.assistant._effects import Effect, Event, SettleDue, Slot
from actors.assistant._policy import Policy
from actors.assistant._state import Booking, ConversationState, Wish
from actors.assistant._sweep import SWEEP_INTERVAL, WAKE_PAGE, ConversationSweep
from actors.whatsapp import SimulatedWorld, open_gateway
from runtime import Registry
from storage import ConversationMode, Storage, open_storage

from ..company.test_company_actor import link
from .test_conversation import EPOCH, ScriptedUnderstander, settings, wall

MSK = ZoneInfo("Europe/Moscow")
HOUR = 3600.0
DAY = 24 * HOUR
STALE, FRESH, BOOKING, PLAIN, OLD_BOOKING = (
    "79990000001",
    "79990000002",
    "79990000003",
    "79990000004",
    "79990000005",
)


class RecordingDecide:
    """Records (phone-less) the events decide is given; changes nothing."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(
        self,
        state: ConversationState,
        event: Event,
        catalog: AssistantCatalog,
        policy: Policy,
        now: dt.datetime,
    ) -> tuple[ConversationState, Sequence[Effect]]:
        self.events.append(event)
        return state, ()


@asynccontextmanager
async def wall_storage() -> AsyncIterator[Storage]:
    async with open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage:
        yield storage


@asynccontextmanager
async def assistant_node(
    storage: Storage, world: SimulatedWorld, decide: RecordingDecide, idle_days: float = 1.0
) -> AsyncIterator[Node]:
    config = settings(idle_days=idle_days)
    options = AssistantOptions(understander=ScriptedUnderstander(), decide=decide, wall_clock=wall)
    async with (
        open_gateway(config, world=world) as gateway,
        open_node(config, storage, gateway, rng=random.Random(9), assistant=options) as node,
    ):
        yield node


def talking() -> dict[str, object]:
    return ConversationState(flow=Flow.BOOK, wish=Wish(service_ids=(6101,)), seq=1).to_json()


def booking_sent() -> dict[str, object]:
    start = dt.datetime(2026, 3, 13, 15, 0, tzinfo=MSK)
    booking = Booking("555100-x-1", Slot(6201, start), (6101,), "Тимур")
    return ConversationState(booking=booking, seq=1).to_json()


async def save(storage: Storage, company_id: int, phone: str, state: dict[str, object]) -> None:
    row = await storage.conversations.get(company_id, phone)
    await storage.conversations.save(
        company_id,
        phone,
        state=state,
        expected_version=0 if row is None else row.version,
        client_name="Тимур",
        last_message_at=wall(),
    )


async def state_of(storage: Storage, company_id: int, phone: str) -> dict[str, object]:
    row = await storage.conversations.get(company_id, phone)
    assert row is not None
    return row.state


async def test_idle_state_is_cleared_on_schedule_and_never_before_it_is_idle(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    async with wall_storage() as storage:
        cid = (await storage.companies.create(555100, title="Ромашка")).company.id
        await save(storage, cid, STALE, talking())
        await storage.conversations.set_mode(cid, STALE, ConversationMode.HANDOFF)
        async with assistant_node(storage, world, RecordingDecide()) as node:
            assert node.assistant is not None
            sweep = node.assistant.sweep
            assert any(child.id == SWEEP_CHILD for child in node.snapshot().walk())
            await trio.sleep(1)
            assert sweep.passes == 1  # a pass as the node starts
            await trio.sleep(23 * HOUR)
            assert await state_of(storage, cid, STALE) == talking()  # 23 h idle: kept
            await save(storage, cid, FRESH, talking())
            await trio.sleep(2 * HOUR)  # now 25 h after STALE's last write, 2 h after FRESH's
            assert await state_of(storage, cid, STALE) == {}
            kept = await storage.conversations.get(cid, STALE)
            assert kept is not None
            assert kept.mode is ConversationMode.HANDOFF and kept.client_name == "Тимур"
            assert await state_of(storage, cid, FRESH) == talking()
            # one pass an hour, the first at start: 0 h, 1 h ... 25 h
            assert sweep.passes == 26 and sweep.cleared == 1
            assert (trio.current_time() - 1) // SWEEP_INTERVAL == 25


async def test_a_pass_clears_every_idle_conversation_in_batches(autojump_clock: MockClock) -> None:
    async with wall_storage() as storage:
        cid = (await storage.companies.create(555100, title="Ромашка")).company.id
        for n in range(5):
            await save(storage, cid, f"7999000100{n}", talking())
        await trio.sleep(2 * DAY)
        await save(storage, cid, FRESH, talking())
        sweep = ConversationSweep(
            storage,
            Registry("unused", lambda key: NotImplemented),
            idle=dt.timedelta(days=1),
            wall_clock=wall,
            batch=2,
        )
        assert await sweep.expire_idle() == 5
        assert await sweep.expire_idle() == 0
        for n in range(5):
            assert await state_of(storage, cid, f"7999000100{n}") == {}
        assert await state_of(storage, cid, FRESH) == talking()


async def test_a_starting_node_wakes_the_conversations_holding_an_unsettled_booking(
    autojump_clock: MockClock,
) -> None:
    world = SimulatedWorld()
    async with wall_storage() as storage:
        first = RecordingDecide()
        async with assistant_node(storage, world, first, idle_days=2.0) as node:
            cid = (await node.storage.companies.create(555100, title="Ромашка")).company.id
            await link(node, world, cid)
        # what a node stopped mid-booking leaves: a booking older than the idle time (its state
        # counts as fresh), then one recent booking, and recent chats without one
        await save(storage, cid, OLD_BOOKING, booking_sent())
        await trio.sleep(3 * DAY)
        await save(storage, cid, BOOKING, booking_sent())
        await save(storage, cid, PLAIN, talking())
        for n in range(WAKE_PAGE + 5):  # newer chats: the booking is on the second page
            await trio.sleep(1)
            await save(storage, cid, f"7999200{n:04d}", talking())
        second = RecordingDecide()
        async with assistant_node(storage, world, second, idle_days=2.0) as node:
            assert node.assistant is not None
            await trio.sleep(1)
            registry = node.assistant.registry
            assert registry.active_keys() == [(cid, BOOKING)]
            assert node.assistant.sweep.woken == 1
            assert [type(e) for e in second.events] == [SettleDue]
        assert first.events == []
        assert wall() > EPOCH + dt.timedelta(days=3)
