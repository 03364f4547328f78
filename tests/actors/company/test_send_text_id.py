"""``SendText`` with a caller's ``message_id`` (the reminder scheduler's): idempotent — a
company that already has the id queues nothing again, after a restart of its actor too, and
a racing record of the same id (the unique rule's ``Conflict``) is not an error."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from actors import Node
from actors.company import SendingUnavailable
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, new_message_id
from storage import Direction, Message

from .test_company_actor import link, register

PHONE = "79007654321"


async def outbound(node: Node, company_id: int) -> list[Message]:
    rows = await node.storage.messages.recent(company_id, 100)
    return [r for r in rows if r.direction == Direction.OUTBOUND]


async def test_a_message_id_the_company_has_is_not_queued_again(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    wa_id = new_message_id()
    assert await ref.ask(m.SendText(PHONE, "Напоминание", message_id=wa_id)) == wa_id
    assert await ref.ask(m.SendText(PHONE, "Напоминание", message_id=wa_id)) == wa_id
    await trio.sleep(30.0)
    assert [d.message_id for d in world.delivered(cid)] == [wa_id]
    assert world.send_attempts(cid) == 1
    assert [r.wa_message_id for r in await outbound(node, cid)] == [wa_id]

    # the actor restarted (passivated, crashed): the id is still known, from storage
    await node.registry.stop(cid)
    assert await node.company(cid).ask(m.SendText(PHONE, "Ещё раз", message_id=wa_id)) == wa_id
    await trio.sleep(30.0)
    assert world.send_attempts(cid) == 1
    assert len(await outbound(node, cid)) == 1

    # without an id every send is a new message
    first = await node.company(cid).ask(m.SendText(PHONE, "раз"))
    second = await node.company(cid).ask(m.SendText(PHONE, "раз"))
    assert first != second
    await trio.sleep(30.0)
    assert len(world.delivered(cid)) == 3


async def test_a_known_id_is_answered_even_when_sending_is_unavailable(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """A retry of a send that was queued before the company was frozen is not an error: the
    message exists (its fate is the queue's)."""
    cid = await register(node)
    await link(node, world, cid)
    wa_id = new_message_id()
    ref = node.company(cid)
    assert await ref.ask(m.SendText(PHONE, "до заморозки", message_id=wa_id)) == wa_id
    await ref.ask(m.Freeze())
    assert await ref.ask(m.SendText(PHONE, "до заморозки", message_id=wa_id)) == wa_id
    fresh = new_message_id()
    try:
        await ref.ask(m.SendText(PHONE, "после", message_id=fresh))
    except SendingUnavailable:
        pass
    else:
        raise AssertionError("a new message was queued for a frozen company")
    assert await node.storage.messages.get_by_wa_id(cid, fresh) is None


async def test_a_racing_record_of_the_same_id_queues_nothing(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """The lookup missed it (another writer recorded the id just after): the unique rule
    refuses the second record, the id is returned and nothing more is queued."""
    cid = await register(node)
    await link(node, world, cid)
    wa_id = new_message_id()
    # the other writer's row, recorded while our lookup (patched to miss it) was under way
    await node.storage.messages.record_outbound(cid, PHONE, "первый", wa_message_id=wa_id)
    messages = node.storage.messages
    real_lookup = messages.get_by_wa_id

    async def missing(company_id: int, wa_message_id: str) -> Message | None:
        return None

    messages.get_by_wa_id = missing  # type: ignore[method-assign]
    try:
        assert await node.company(cid).ask(m.SendText(PHONE, "второй", message_id=wa_id)) == wa_id
    finally:
        messages.get_by_wa_id = real_lookup  # type: ignore[method-assign]
    await trio.sleep(30.0)
    assert world.send_attempts(cid) == 0  # the other writer's actor sends its own row
    assert [r.text for r in await outbound(node, cid)] == ["первый"]


async def test_a_send_the_company_can_take_looks_nothing_up_first(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """A new id and a known one are both one insert (the unique rule answers the known id):
    no lookup by id while the company can send; one when it cannot (frozen)."""
    cid = await register(node)
    await link(node, world, cid)
    messages = node.storage.messages
    real_lookup = messages.get_by_wa_id
    lookups: list[str] = []

    async def counted(company_id: int, wa_message_id: str) -> Message | None:
        lookups.append(wa_message_id)
        return await real_lookup(company_id, wa_message_id)

    messages.get_by_wa_id = counted  # type: ignore[method-assign]
    try:
        ref = node.company(cid)
        wa_id = new_message_id()
        assert await ref.ask(m.SendText(PHONE, "Напоминание", message_id=wa_id)) == wa_id
        assert await ref.ask(m.SendText(PHONE, "Напоминание", message_id=wa_id)) == wa_id
        assert lookups == []
        await ref.ask(m.Freeze())
        assert await ref.ask(m.SendText(PHONE, "Напоминание", message_id=wa_id)) == wa_id
        assert lookups == [wa_id]
    finally:
        messages.get_by_wa_id = real_lookup  # type: ignore[method-assign]
    await trio.sleep(30.0)
    assert [r.wa_message_id for r in await outbound(node, cid)] == [wa_id]
