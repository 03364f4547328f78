"""The simulated world's delivery record stays bounded over a long run (a demo, a soak), and
still delivers each recent message id once."""

from __future__ import annotations

from actors.whatsapp import SimulatedSession, SimulatedWorld
from actors.whatsapp._world import DELIVERED_PER_COMPANY

ANNA = "79005550001"


def message_id(n: int) -> str:
    """The ``n``-th message id, in whatsmeow's shape (``3EB0`` + 18 hex digits)."""
    return f"3EB0{n:018X}"


async def test_the_delivery_record_keeps_the_latest_messages_and_their_ids(
    linked: tuple[SimulatedWorld, SimulatedSession],
) -> None:
    world, session = linked
    extra = 5
    for n in range(DELIVERED_PER_COMPANY + extra):
        await session.send_text(ANNA, f"#{n}", message_id=message_id(n))
    delivered = world.delivered(1)
    assert len(delivered) == DELIVERED_PER_COMPANY
    assert (delivered[0].text, delivered[-1].text) == (
        f"#{extra}",
        f"#{DELIVERED_PER_COMPANY + extra - 1}",
    )
    assert len(world._company(1).delivered_ids) == DELIVERED_PER_COMPANY
    # A recent id sent again is still delivered once.
    await session.send_text(ANNA, "again", message_id=message_id(DELIVERED_PER_COMPANY))
    assert world.delivered(1)[-1].text == f"#{DELIVERED_PER_COMPANY + extra - 1}"
    assert len(world.delivered(1)) == DELIVERED_PER_COMPANY
