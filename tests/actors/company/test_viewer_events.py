"""The company actor's opt-in viewer frames (``Subscribe(viewer, events)``): what a salon
page's viewer gets and the connect page's does not, and that the salon page does not keep a
linking round watched — under trio's mock clock."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actors import Node
from actors.company import messages as m
from actors.company._transitions import UNWATCHED_LINKING
from actors.whatsapp import SimulatedWorld
from tests.actors.company.conftest import RecordingViewer

CLIENT = "79005550001"


async def register(node: Node, salon_id: int = 962402) -> int:
    created = await node.storage.companies.create(salon_id, title="Салон «Ирис»")
    return created.company.id


def drain(viewer: RecordingViewer) -> list[dict[str, Any]]:
    """Every frame the viewer holds now."""
    frames = []
    while True:
        try:
            frames.append(viewer.receive.receive_nowait())
        except trio.WouldBlock:
            return frames


async def test_a_salon_viewer_alone_does_not_keep_a_linking_round(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    salon = RecordingViewer(capacity=256)
    ref = node.company(cid)
    first = await ref.ask(m.Subscribe(salon, m.SALON_EVENTS))
    assert [f["event"] for f in first] == ["view"]
    assert first[0]["data"]["integration_status"] == "pending"
    await ref.ask(m.RequestQr())
    with trio.fail_after(30):
        await world.wait_until(lambda: world.live_qr(cid) is not None)
    await trio.sleep(UNWATCHED_LINKING + 5)
    view = await ref.ask(m.GetStatus())
    assert (view.integration_status, view.session) == ("pending", "idle")
    assert view.viewers == 1  # still subscribed: it just watches no QR code
    await wait_all_tasks_blocked()
    frames = drain(salon)
    assert {f["event"] for f in frames} == {"view"}
    statuses = [f["data"]["integration_status"] for f in frames]
    assert statuses[0] == "linking" and statuses[-1] == "pending"


async def test_message_frames_reach_only_the_viewers_asking_for_them(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    connect, salon = RecordingViewer(), RecordingViewer(capacity=256)
    ref = node.company(cid)
    await ref.ask(m.Subscribe(connect))
    await ref.ask(m.Subscribe(salon, m.SALON_EVENTS))
    await ref.ask(m.RequestQr())
    await connect.next("qr-update")
    world.scan(cid, phone="79001234567")
    await connect.next("whatsapp-connected")
    world.send_inbound(cid, CLIENT, "Здравствуйте", message_id="IN-1")
    inbound = await salon.next("message")
    wa_id = await ref.ask(m.SendText(CLIENT, "Добрый день!"))
    ref.tell(m.ConversationChanged(CLIENT))
    with trio.fail_after(60):
        await world.wait_until(lambda: len(world.delivered(cid)) == 1)
    await wait_all_tasks_blocked()
    opted = [inbound, *(f for f in drain(salon) if f["event"] in ("message", "conversation"))]
    assert [(f["event"], f["data"].get("id"), f["data"].get("status")) for f in opted] == [
        ("message", "IN-1", "received"),
        ("message", wa_id, "queued"),
        ("conversation", None, None),
        ("message", wa_id, "sent"),
    ]
    assert opted[0]["data"]["by"] == "client"
    assert opted[1]["data"]["by"] == opted[3]["data"]["by"] == "assistant"
    assert opted[2]["data"] == {"phone": CLIENT}
    assert not {f["event"] for f in [*connect.frames, *drain(connect)]} & m.OPT_IN_EVENTS


async def test_a_redelivered_message_is_not_shown_twice(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    connect, salon = RecordingViewer(), RecordingViewer(capacity=256)
    ref = node.company(cid)
    await ref.ask(m.Subscribe(connect))
    await ref.ask(m.RequestQr())
    await connect.next("qr-update")
    world.scan(cid, phone="79001234567")
    await connect.next("whatsapp-connected")
    await ref.ask(m.Subscribe(salon, m.SALON_EVENTS))
    for _ in range(2):
        world.send_inbound(cid, CLIENT, "Здравствуйте", message_id="IN-SAME")
    await trio.sleep(1)
    await wait_all_tasks_blocked()
    shown = [f for f in drain(salon) if f["event"] == "message"]
    assert len(shown) == 1
