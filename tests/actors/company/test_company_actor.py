"""The company actor end to end on the simulated WhatsApp and in-memory storage (mock clock)."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from actors import Node, open_node
from actors.company import ACTIVATION_KIND, CommandResult, CompanyView
from actors.company import messages as m
from actors.whatsapp import SimulatedGateway, SimulatedWorld
from config import Settings
from runtime import ActorRef
from storage import OutboxStatus, open_storage

from .conftest import RecordingViewer, make_settings, running_node


async def register(node: Node, salon_id: int = 962302) -> int:
    created = await node.storage.companies.create(salon_id, title="Салон «Лотос»")
    return created.company.id


async def start_linking(node: Node, company_id: int) -> tuple[ActorRef, RecordingViewer]:
    """A connect page opens and asks for a QR: the company's ref and that page's viewer."""
    viewer = RecordingViewer()
    ref = node.company(company_id)
    await ref.ask(m.Subscribe(viewer))
    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    return ref, viewer


async def link(node: Node, world: SimulatedWorld, company_id: int) -> RecordingViewer:
    _, viewer = await start_linking(node, company_id)
    await viewer.next("qr-update")
    world.scan(company_id, phone="79001234567")
    await viewer.next("whatsapp-connected")
    return viewer


async def test_linking_flow_shows_qr_links_and_writes_one_outbox_item(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = RecordingViewer()
    ref = node.company(cid)
    initial = await ref.ask(m.Subscribe(viewer))
    assert initial[0]["event"] == "status"
    assert initial[0]["data"]["status"] == "pending"

    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    qr = await viewer.next("qr-update")
    assert qr["data"]["qr"].startswith("2@")
    assert qr["data"]["qr_image"].startswith("data:image/png;base64,")
    assert qr["data"]["expiresIn"] == 20
    cached = await node.storage.qr.get(cid)
    assert cached is not None
    assert cached.qr == qr["data"]["qr"]

    world.scan(cid, phone="79001234567")
    done = await viewer.next("whatsapp-connected")
    assert done["data"] == {
        "success": True,
        "phone": "79001234567",
        "message": "WhatsApp успешно подключен!",
        "companyId": cid,
    }
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "active"
    assert company.whatsapp_connected is True
    assert company.whatsapp_phone == "79001234567"
    assert company.whatsapp_jid is not None
    assert company.whatsapp_connected_at is not None
    item = await node.storage.outbox.get_by_key(f"activation:{cid}:{company.whatsapp_jid}")
    assert item is not None
    assert item.kind == ACTIVATION_KIND
    assert item.status == OutboxStatus.PENDING
    assert await node.storage.outbox.backlog() == 1
    view = await ref.ask(m.GetStatus())
    assert isinstance(view, CompanyView)
    assert view.whatsapp_connected
    assert view.integration_status == "active"
    events = [e.event_type for e in await node.storage.audit.recent(cid)]
    assert "whatsapp_linked" in events
    assert "linking_started" in events


async def test_many_viewers_asking_at_once_start_one_session(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    ref = node.company(cid)
    viewers = [RecordingViewer() for _ in range(20)]
    results: list[object] = []

    async def ask(viewer: RecordingViewer) -> None:
        await ref.ask(m.Subscribe(viewer))
        results.append(await ref.ask(m.RequestQr()))

    async with trio.open_nursery() as nursery:
        for viewer in viewers:
            nursery.start_soon(ask, viewer)
    assert results.count(CommandResult(True, "linking started")) == 1
    assert results.count(CommandResult(True, "linking in progress")) == 19
    firsts = [(await v.next("qr-update"))["data"]["qr"] for v in viewers]
    assert len(set(firsts)) == 1
    assert node.gateway.snapshot().sessions == 1


async def test_qr_rotates_every_20_seconds_and_linking_expires(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    start = trio.current_time()
    ref, viewer = await start_linking(node, cid)
    codes = []
    times = []
    for _ in range(6):
        frame = await viewer.next("qr-update")
        codes.append(frame["data"]["qr"])
        times.append(trio.current_time() - start)
    assert len(set(codes)) == 6
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps == [20.0] * 5
    await viewer.next("qr-expired")
    # the sixth code lived its 20 s (plus grace): linking ends ~25 s after it
    assert 120.0 <= trio.current_time() - start <= 130.0
    assert (await ref.ask(m.GetStatus())).integration_status == "pending"
    assert await node.storage.qr.get(cid) is None
    assert world.live_qr(cid) is None
    # a new request starts a new round
    assert await ref.ask(m.RequestQr()) == CommandResult(True, "linking started")
    await viewer.next("qr-update")


async def test_a_first_code_that_lives_60_seconds_like_whatsmeows_keeps_linking_going(
    autojump_clock: MockClock, settings: Settings, world: SimulatedWorld
) -> None:
    """whatsmeow shows its first code ~60 s and each later one 20 s: the actor takes each
    code's lifetime from the session, so linking lasts all six codes (~160 s), the frames
    and the cached code say how long each one is valid, and only then comes qr-expired."""
    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        trio.open_nursery() as nursery,
    ):
        gateway = SimulatedGateway(nursery, world=world, qr=settings.qr, first_code_lifetime=60.0)
        async with open_node(settings, storage, gateway, rng=random.Random(1)) as node:
            cid = await register(node)
            start = trio.current_time()
            ref, viewer = await start_linking(node, cid)
            shown = []
            for _ in range(6):
                frame = await viewer.next("qr-update")
                shown.append((round(trio.current_time() - start), frame["data"]["expiresIn"]))
                cached = await storage.qr.get(cid)
                assert cached is not None and cached.qr == frame["data"]["qr"]
                assert cached.lifetime == frame["data"]["expiresIn"]
            assert shown == [(0, 60), (60, 20), (80, 20), (100, 20), (120, 20), (140, 20)]
            await trio.sleep(15)  # a viewer joining 15 s into the sixth code gets, as its
            first_frames = await ref.ask(m.Subscribe(RecordingViewer()))  # opening frames:
            [qr_frame] = [f for f in first_frames if f["event"] == "qr-update"]
            assert qr_frame["data"]["expiresIn"] == 5  # what is left, not the full lifetime
            await viewer.next("qr-expired")
            assert 160.0 <= trio.current_time() - start <= 170.0
            assert not [f for f in viewer.frames if f["event"] == "qr-expired"][:-1]
            await gateway.aclose()
        nursery.cancel_scope.cancel()


async def test_repeated_link_notices_make_one_activation_and_a_relink_makes_another(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    await link(node, world, cid)
    first = await node.storage.companies.get(cid)
    assert first is not None and first.whatsapp_jid is not None
    for _ in range(3):
        world.repeat_link_notice(cid)
    await trio.sleep(1)
    assert await node.storage.outbox.backlog() == 1
    assert (await node.company(cid).ask(m.GetStatus())).integration_status == "active"
    # unlinked on the phone, then linked again: a new device, a new activation callback
    world.unlink(cid)
    viewer = RecordingViewer()
    await node.company(cid).ask(m.Subscribe(viewer))
    await viewer.next_status("logged_out")
    assert await node.company(cid).ask(m.RequestQr()) == CommandResult(True, "linking started")
    await viewer.next("qr-update")
    world.scan(cid, phone="79001234567")
    await viewer.next("whatsapp-connected")
    second = await node.storage.companies.get(cid)
    assert second is not None and second.whatsapp_jid not in (None, first.whatsapp_jid)
    assert await node.storage.outbox.backlog() == 2
    for company in (first, second):
        key = f"activation:{cid}:{company.whatsapp_jid}"
        assert await node.storage.outbox.get_by_key(key) is not None


async def test_request_qr_never_tears_down_a_linked_session(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    result = await ref.ask(m.RequestQr())
    assert result == CommandResult(False, "WhatsApp is already connected", "already_linked")
    assert world.is_connected(cid)


async def test_pairing_code_links_without_a_scan(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = RecordingViewer()
    ref = node.company(cid)
    await ref.ask(m.Subscribe(viewer))
    assert (await ref.ask(m.RequestPairingCode("79001234567"))).ok
    frame = await viewer.next("pairing-code")
    code = frame["data"]["code"]
    assert len(code) == 9
    assert code[4] == "-"
    world.enter_pairing_code(cid, code)
    connected = await viewer.next("whatsapp-connected")
    assert connected["data"]["phone"] == "79001234567"


async def test_repeated_link_events_enqueue_one_activation(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    world.go_offline(cid)
    world.go_online(cid)
    await viewer.next("status")
    # a full restart of the actor resumes and reports connected again
    await node.registry.stop(cid)
    await node.registry.activate(cid)
    await world.wait_until(lambda: world.is_connected(cid))
    assert await node.storage.outbox.backlog() == 1


async def test_reconnect_attempts_back_off_exponentially_with_jitter_up_to_a_minute(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """WhatsApp cannot be reached: each connect fails, and the next one waits twice as long
    (1, 2, 4 ... s, never more than 60 s), each delay jittered by up to 30 % — also the
    first, so an outage's sessions do not all dial back at the same instant. When WhatsApp
    is back the session reconnects, and a later outage starts again from about a second."""
    cid = await register(node)
    viewer = await link(node, world, cid)
    before = len(world.connect_attempts(cid))
    lost_at = trio.current_time()
    world.go_unreachable(cid)
    await viewer.next_status("reconnecting")
    with trio.fail_after(600):
        await world.wait_until(lambda: len(world.connect_attempts(cid)) >= before + 9)
    attempts = world.connect_attempts(cid)[before:]
    delays = [b - a for a, b in itertools.pairwise([lost_at, *attempts])]
    for n, delay in enumerate(delays[:9], start=1):
        nominal = min(60.0, 2.0 ** (n - 1))
        assert nominal * 0.7 - 1e-6 <= delay <= min(60.0, nominal * 1.3) + 1e-6, (n, delays)
    assert delays[0] > 0.0  # never an immediate redial
    assert len({round(d / min(60.0, 2.0**n), 3) for n, d in enumerate(delays[:7])}) > 1  # jitter
    assert (await node.company(cid).ask(m.GetStatus())).integration_status == "reconnecting"
    world.go_reachable(cid)
    await viewer.next_status("active")
    assert (await node.company(cid).ask(m.GetStatus())).whatsapp_connected
    before = len(world.connect_attempts(cid))
    lost_at = trio.current_time()
    world.go_unreachable(cid)
    with trio.fail_after(60):
        await world.wait_until(lambda: len(world.connect_attempts(cid)) > before)
    assert world.connect_attempts(cid)[before] - lost_at <= 1.3  # the count started over


async def test_reconnect_with_backoff_after_going_offline(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    ref = node.company(cid)
    world.go_offline(cid)
    await viewer.next_status("reconnecting")
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "reconnecting"
    await trio.sleep(120)
    assert (await ref.ask(m.GetStatus())).integration_status == "reconnecting"
    world.go_online(cid)
    await viewer.next_status("active")
    assert (await ref.ask(m.GetStatus())).whatsapp_connected


async def test_logged_out_drops_credentials_and_waits_for_a_scan(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    world.unlink(cid)
    await viewer.next_status("logged_out")
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "logged_out"
    assert company.whatsapp_jid is None
    assert world.linked_jid(cid) is None
    ref = node.company(cid)
    assert (await ref.ask(m.RequestQr())).ok
    await viewer.next("qr-update")


async def test_stream_replaced_stops_the_session(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    world.replace_stream(cid)
    status = await viewer.next("status")
    while status["data"]["whatsapp_connected"]:
        status = await viewer.next("status")
    view = await node.company(cid).ask(m.GetStatus())
    assert view.session == "stopped"
    assert "stream_replaced" in (view.last_error or "")
    assert status["data"]["whatsapp_connected"] is False


async def test_temporary_ban_pauses_sending_until_lifted(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    ref = node.company(cid)
    world.ban(cid, expires_in=600)
    status = await viewer.next("status")
    while not status["data"].get("banned"):
        status = await viewer.next("status")
    assert status["data"]["banned"] is True
    await ref.ask(m.SendText("79007654321", "Напоминание о визите"))
    await trio.sleep(300)
    assert world.delivered(cid) == []
    world.lift_ban(cid)  # WhatsApp ends the ban; the actor resumes when its timer runs out
    await trio.sleep(200)
    assert world.delivered(cid) == []
    with trio.fail_after(200):
        await world.wait_until(lambda: len(world.delivered(cid)) == 1)
    assert world.delivered(cid)[0].text == "Напоминание о визите"


async def test_freeze_keeps_credentials_and_reinstall_resumes(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    assert (await ref.ask(m.Freeze())).ok
    assert not world.is_connected(cid)
    assert world.linked_jid(cid) is not None
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "frozen"
    assert (await ref.ask(m.Reinstall())).message == "resumed"
    await world.wait_until(lambda: world.is_connected(cid))
    assert (await ref.ask(m.GetStatus())).integration_status == "active"


async def test_uninstall_logs_out_and_revokes_the_key(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    created = await node.storage.companies.create(555, title="Салон")
    cid = created.company.id
    await node.storage.tokens.issue(cid)
    await link(node, world, cid)
    ref = node.company(cid)
    assert (await ref.ask(m.Uninstall())).ok
    assert world.linked_jid(cid) is None
    assert not await node.storage.companies.verify_api_key(cid, created.api_key)
    assert await node.storage.tokens.current(cid) is None
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "uninstalled"


async def test_outbound_messages_are_paced_and_in_order(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    for i in range(25):
        await ref.ask(m.SendText("79007654321", f"сообщение {i}"))
    stamps: list[float] = []  # trio time at which each message reached the phone
    with trio.fail_after(600):
        for i in range(25):
            await world.wait_until(lambda i=i: len(world.delivered(cid)) > i)
            stamps.append(trio.current_time())
    texts = [d.text for d in world.delivered(cid)]
    assert texts == [f"сообщение {i}" for i in range(25)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 1.0  # the minimum gap
    assert stamps[19] - stamps[0] < 60.0  # the first 20 go out within a minute
    # the per-minute cap: no 60-second window holds more than 20 sends
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 60.0


async def test_a_send_with_a_lost_reply_is_retried_with_its_id_and_the_log_shows_it(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """WhatsApp took the message but the reply never came (a timed-out command) while the
    connection stays up: the queue does not stall; it retries the same message id after a
    pause (the backend delivers it once) and goes on in order. The message log counts the
    hand-overs, so the row shows the message may have gone twice."""
    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    world.lose_send_replies(cid, 2)
    await ref.ask(m.SendText("79007654321", "первое"))
    await ref.ask(m.SendText("79007654321", "второе"))
    with trio.fail_after(600):
        await world.wait_until(lambda: len(world.delivered(cid)) == 2)
    assert [d.text for d in world.delivered(cid)] == ["первое", "второе"]
    assert world.send_attempts(cid) == 4  # first: three hand-overs, second: one
    status = await ref.ask(m.GetStatus())
    assert status.outbound_queued == 0 and status.whatsapp_connected
    rows = {r.text: r for r in await node.storage.messages.recent(cid)}
    with trio.fail_after(60):
        while rows["второе"].status != "sent":
            await trio.sleep(1)
            rows = {r.text: r for r in await node.storage.messages.recent(cid)}
    assert (rows["первое"].attempts, rows["первое"].status) == (3, "sent")
    assert (rows["второе"].attempts, rows["второе"].status) == (1, "sent")


async def test_a_message_never_answered_is_marked_unconfirmed_and_the_queue_moves_on(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """Every hand-over of one message goes unanswered: after a bounded number of tries it is
    marked ``unconfirmed`` (it may have gone out) and the next message is sent."""
    from actors.company._outbound import MAX_UNCERTAIN_SENDS

    cid = await register(node)
    await link(node, world, cid)
    ref = node.company(cid)
    world.lose_send_replies(cid, MAX_UNCERTAIN_SENDS)
    await ref.ask(m.SendText("79007654321", "без ответа"))
    await ref.ask(m.SendText("79007654321", "следующее"))
    with trio.fail_after(900):
        await world.wait_until(lambda: [d.text for d in world.delivered(cid)][-1:] == ["следующее"])
    await trio.sleep(1)  # the status write after the send
    assert (await ref.ask(m.GetStatus())).outbound_queued == 0
    rows = {r.text: r for r in await node.storage.messages.recent(cid)}
    assert (rows["без ответа"].status, rows["без ответа"].attempts) == (
        "unconfirmed",
        MAX_UNCERTAIN_SENDS,
    )
    assert (rows["следующее"].status, rows["следующее"].attempts) == ("sent", 1)
    assert world.send_attempts(cid) == MAX_UNCERTAIN_SENDS + 1


async def test_sends_wait_while_reconnecting_and_overflow_is_an_error(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    from actors.company import OutboundQueueFull
    from actors.company._actor import OUTBOUND_QUEUE_LIMIT

    cid = await register(node)
    viewer = await link(node, world, cid)
    ref = node.company(cid)
    world.go_offline(cid)
    await viewer.next_status("reconnecting")
    for i in range(OUTBOUND_QUEUE_LIMIT):
        await ref.ask(m.SendText("79007654321", f"m{i}"))
    with pytest.raises(OutboundQueueFull) as info:
        await ref.ask(m.SendText("79007654321", "one too many"))
    assert info.value.limit == OUTBOUND_QUEUE_LIMIT
    await trio.sleep(30)
    assert world.delivered(cid) == []
    world.go_online(cid)
    await world.wait_until(lambda: len(world.delivered(cid)) >= 3)
    assert [d.text for d in world.delivered(cid)[:3]] == ["m0", "m1", "m2"]


async def test_inbound_messages_are_recorded_once_and_handled_once(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """WhatsApp redelivers a message (same id) after a reconnect: it is recorded once and
    reaches the handler (the assistant) once; a new message from the same client does too."""
    from actors.whatsapp import InboundMessage

    handled: list[tuple[str, str]] = []

    async def handler(company_id: int, message: InboundMessage) -> None:
        handled.append((message.message_id, message.text))

    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        running_node(make_settings(), storage, world, inbound_handler=handler) as node,
    ):
        cid = await register(node)
        await link(node, world, cid)
        text = "Здравствуйте, можно записаться?"
        first = world.send_inbound(cid, "79005550000", text)
        await trio.sleep(1)
        world.send_inbound(cid, "79005550000", text, message_id=first)  # redelivered
        await trio.sleep(1)
        second = world.send_inbound(cid, "79005550000", "На завтра")
        await trio.sleep(1)
        recent = await storage.messages.recent(cid)
        assert [(r.direction, r.wa_message_id, r.text) for r in reversed(recent)] == [
            ("in", first, text),
            ("in", second, "На завтра"),
        ]
        assert handled == [(first, text), (second, "На завтра")]


async def test_media_and_staff_messages_reach_the_handler(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """A voice note reaches the handler with its kind (logged by its kind, having no text);
    what the staff write to a client from the linked phone reaches it too, unlogged (a row
    would look like a message still to send)."""
    from actors.whatsapp import InboundMessage, StaffMessage

    handled: list[InboundMessage | StaffMessage] = []

    async def handler(company_id: int, message: InboundMessage | StaffMessage) -> None:
        handled.append(message)

    async with (
        open_storage(monotonic_clock=trio.current_time) as storage,
        running_node(make_settings(), storage, world, inbound_handler=handler) as node,
    ):
        cid = await register(node)
        await link(node, world, cid)
        voice = world.send_inbound(cid, "79005550000", "", kind="audio")
        await trio.sleep(1)
        staff = world.staff_send(cid, "79005550000", "Добрый день! Это Анна")
        await trio.sleep(1)
        assert [(type(h).__name__, h.message_id, h.kind) for h in handled] == [
            ("InboundMessage", voice, "audio"),
            ("StaffMessage", staff, "text"),
        ]
        recent = await storage.messages.recent(cid)
        assert [(r.direction, r.wa_message_id, r.text) for r in recent] == [
            ("in", voice, "[audio]")
        ]
        assert await storage.messages.pending_outbound(cid) == []


async def test_a_slow_viewer_is_dropped_and_never_slows_the_actor(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    slow = RecordingViewer(capacity=1)
    fast = RecordingViewer()
    ref = node.company(cid)
    await ref.ask(m.Subscribe(slow))
    await ref.ask(m.Subscribe(fast))
    await ref.ask(m.RequestQr())
    for _ in range(3):
        await fast.next("qr-update")
    assert slow.closed
    assert (await ref.ask(m.GetStatus())).viewers == 1


async def test_unknown_company_is_an_error_not_a_crash(
    autojump_clock: MockClock, node: Node
) -> None:
    from actors.company import CompanyNotFound

    with pytest.raises(CompanyNotFound) as info:
        await node.company(999).ask(m.GetStatus())
    assert info.value.company_id == 999
    assert node.healthy


async def test_linked_companies_come_back_when_the_node_restarts(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """A new node over the same storage and world restores the session without a scan."""
    settings = make_settings()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(settings, storage, world, seed=1) as node:
            cid = await register(node)
            await link(node, world, cid)
        assert not world.is_connected(cid)
        async with running_node(settings, storage, world, seed=2) as node:
            await node.restore_done()  # restored in the background after the node is up
            assert node.restored == 1
            await world.wait_until(lambda: world.is_connected(cid))
            view = await node.company(cid).ask(m.GetStatus())
            while not view.whatsapp_connected:
                await trio.sleep(0.1)
                view = await node.company(cid).ask(m.GetStatus())
            assert view.integration_status == "active"


async def test_a_replaced_session_stays_stopped_across_a_restart_until_taken_back(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """The session was opened on another device: a new node must not take it back on its
    own (the two would replace each other in a loop); the admin's request-qr does."""
    settings = make_settings()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(settings, storage, world, seed=1) as node:
            cid = await register(node)
            viewer = await link(node, world, cid)
            world.replace_stream(cid)
            while (await viewer.next("status"))["data"]["whatsapp_connected"]:
                pass
        async with running_node(settings, storage, world, seed=2) as node:
            ref = node.company(cid)
            await trio.sleep(600)  # restore, reconnect timers: nothing may take it back
            view = await ref.ask(m.GetStatus())
            assert (view.session, view.whatsapp_connected) == ("stopped", False)
            assert "stream_replaced" in (view.last_error or "")
            assert not world.is_connected(cid)
            viewer = RecordingViewer()
            await ref.ask(m.Subscribe(viewer))
            assert await ref.ask(m.RequestQr()) == CommandResult(True, "resuming the session here")
            while not (await viewer.next("status"))["data"]["whatsapp_connected"]:
                pass
            assert world.is_connected(cid)
            view = await ref.ask(m.GetStatus())
            assert view.whatsapp_connected and view.last_error is None
            stored = await storage.companies.get(cid)
            assert stored is not None and stored.last_error is None
            assert stored.whatsapp_replaced is False  # the mark is gone from storage too


async def test_queued_messages_survive_a_node_restart(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """Messages still queued when the node stops are sent, once each, by the next node."""
    settings = make_settings()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(settings, storage, world, seed=1) as node:
            cid = await register(node)
            viewer = await link(node, world, cid)
            world.go_offline(cid)
            await viewer.next_status("reconnecting")
            for i in range(3):
                await node.company(cid).ask(m.SendText("79007654321", f"после рестарта {i}"))
        assert world.delivered(cid) == []
        world.go_online(cid)
        async with running_node(settings, storage, world, seed=2) as node:
            with trio.fail_after(120):
                await world.wait_until(lambda: len(world.delivered(cid)) == 3)
            await trio.sleep(30)
            texts = [d.text for d in world.delivered(cid)]
            assert texts == [f"после рестарта {i}" for i in range(3)]
            assert await storage.messages.pending_outbound(cid) == []


async def test_a_linking_round_nobody_watches_ends_after_a_minute(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    from actors.company._transitions import UNWATCHED_LINKING

    cid = await register(node)
    ref, viewer = await start_linking(node, cid)
    await viewer.next("qr-update")
    await ref.ask(m.Unsubscribe(viewer))
    left = trio.current_time()
    await trio.sleep(UNWATCHED_LINKING - 5)
    assert world.live_qr(cid) is not None  # still linking just before the minute is up
    await trio.sleep(10)
    view = await ref.ask(m.GetStatus())
    assert view.integration_status == "pending"
    assert view.session == "idle"
    assert world.live_qr(cid) is None
    assert trio.current_time() - left < UNWATCHED_LINKING + 10


async def test_a_round_whose_last_viewer_was_dropped_as_too_slow_counts_as_unwatched(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """A viewer dropped while frames go out (not one that unsubscribed) also leaves the round
    unwatched: the actor tells its decisions, and the round ends a minute later."""
    from actors.company._transitions import UNWATCHED_LINKING

    cid = await register(node)
    slow = RecordingViewer(capacity=1)  # room for the status frame, not for the first code
    ref = node.company(cid)
    await ref.ask(m.Subscribe(slow))
    start = trio.current_time()
    await ref.ask(m.RequestQr())
    with trio.fail_after(30):
        await world.wait_until(lambda: world.live_qr(cid) is not None)
    await wait_all_tasks_blocked()
    assert slow.closed
    assert (await ref.ask(m.GetStatus())).viewers == 0
    await trio.sleep(UNWATCHED_LINKING + 5)
    view = await ref.ask(m.GetStatus())
    assert view.session == "idle" and view.integration_status == "pending"
    assert world.live_qr(cid) is None
    assert trio.current_time() - start < 120.0  # not the full six codes of a watched round


def test_persist_writes_only_the_columns_it_names() -> None:
    from datetime import UTC, datetime

    from actors.company._actor import company_changes
    from actors.company._transitions import Persist, Status

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert company_changes(Persist("app_unfrozen", Status.ACTIVE), now) == {}
    assert company_changes(
        Persist("whatsapp_logged_out", Status.LOGGED_OUT, connected=False, jid=None), now
    ) == {"whatsapp_connected": False, "whatsapp_jid": None}
    linked = Persist(
        "whatsapp_linked",
        Status.ACTIVE,
        connected=True,
        jid="79001234567@s.whatsapp.net",
        phone="79001234567",
        replaced=False,
        last_error=None,
        linked_now=True,
    )
    assert company_changes(linked, now) == {
        "whatsapp_connected": True,
        "whatsapp_jid": "79001234567@s.whatsapp.net",
        "whatsapp_phone": "79001234567",
        "whatsapp_replaced": False,
        "last_error": None,
        "whatsapp_connected_at": now,
        "connected_at": now,
    }


async def test_a_watched_linking_round_runs_its_full_course(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    start = trio.current_time()
    _, viewer = await start_linking(node, cid)
    await viewer.next("qr-expired")
    assert trio.current_time() - start >= 120.0  # six codes of 20 s, not cut at a minute


async def test_a_crash_between_activating_and_queueing_the_callback_loses_nothing(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    """The status is stored before the callback is queued; if the queueing fails (storage
    blip, crash) the restarted actor queues it — exactly one item, never none."""
    from storage import StorageUnavailable

    cid = await register(node)
    outbox = node.storage.outbox
    real_enqueue = outbox.enqueue
    failures = []

    async def failing_once(*args: object, **kwargs: object) -> object:
        if not failures:
            failures.append(1)
            raise StorageUnavailable("postgresql", "connection lost")
        return await real_enqueue(*args, **kwargs)  # type: ignore[arg-type]

    outbox.enqueue = failing_once  # type: ignore[method-assign]
    _, viewer = await start_linking(node, cid)
    await viewer.next("qr-update")
    world.scan(cid)
    # the actor crashed on the failed enqueue and was restarted by the registry
    with trio.fail_after(60):
        while await outbox.backlog() == 0:  # noqa: ASYNC110 (polling storage, no event)
            await trio.sleep(0.5)
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert company.integration_status == "active"
    assert failures == [1]
    assert await outbox.backlog() == 1
    item = await outbox.get_by_key(f"activation:{cid}:{company.whatsapp_jid}")
    assert item is not None


async def test_inbound_flood_from_one_client_is_cut_at_the_per_minute_limit(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    """Every message is recorded, but one client's flood reaches the handler (the assistant)
    only up to the per-minute limit; other clients are not affected."""
    from actors.company._actor import INBOUND_FLOOD_LIMIT
    from actors.whatsapp import InboundMessage

    handled: list[str] = []

    async def handler(company_id: int, message: InboundMessage) -> None:
        handled.append(message.sender_phone)

    settings = make_settings()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(settings, storage, world, inbound_handler=handler) as node:
            cid = await register(node)
            await link(node, world, cid)
            for i in range(INBOUND_FLOOD_LIMIT + 5):
                world.send_inbound(cid, "79005550001", f"спам {i}")
            world.send_inbound(cid, "79005550002", "Здравствуйте!")
            await trio.sleep(5)
            assert handled.count("79005550001") == INBOUND_FLOOD_LIMIT
            assert handled.count("79005550002") == 1
            recorded = await storage.messages.recent(cid, limit=100, peer_phone="79005550001")
            assert len(recorded) == INBOUND_FLOOD_LIMIT + 5
            assert node.metrics.render().count("aiadmin_inbound_flood_dropped_total 5") == 1
            # a minute later the client is heard again
            await trio.sleep(60)
            world.send_inbound(cid, "79005550001", "а теперь серьёзно")
            await trio.sleep(1)
            assert handled.count("79005550001") == INBOUND_FLOOD_LIMIT + 1
