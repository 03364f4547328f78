"""The salon logs its WhatsApp out from its own page (``LogoutRequested``, issue 16): the
device is unlinked and its credentials dropped, the status is ``logged_out``, and the connect
page can link a phone again — on the simulated WhatsApp under the mock clock, and as a pure
decision."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from actors import Node
from actors.company import CommandResult
from actors.company import _transitions as t
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld
from config import QrPolicy
from runtime import Backoff
from storage import open_storage

from .conftest import RecordingViewer, make_settings, running_node
from .test_company_actor import link, register

RULES = t.Rules(qr=QrPolicy(), reconnect=Backoff(initial=1.0, maximum=60.0, jitter=0.0))


async def test_logout_unlinks_drops_the_credentials_and_the_connect_page_links_again(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    ref = node.company(cid)
    assert world.is_connected(cid)

    assert await ref.ask(m.LogoutRequested()) == CommandResult(True, "logged out")
    frame = await viewer.next_status("logged_out")
    assert frame["data"]["whatsapp_connected"] is False
    assert world.linked_jid(cid) is None  # unlinked on WhatsApp's side: credentials gone
    assert not world.is_connected(cid)
    company = await node.storage.companies.get(cid)
    assert company is not None
    assert (company.integration_status, company.whatsapp_connected) == ("logged_out", False)
    assert company.whatsapp_jid is None
    view = await ref.ask(m.GetStatus())
    assert (view.whatsapp_connected, view.whatsapp_phone, view.session) == (False, None, "idle")
    events = [e.event_type for e in await node.storage.audit.recent(cid)]
    assert "whatsapp_logged_out_by_salon" in events
    # nothing reconnects by itself, however long we wait
    await trio.sleep(600)
    assert not world.is_connected(cid)
    assert (await ref.ask(m.GetStatus())).integration_status == "logged_out"
    # a second logout has nothing to unlink
    assert await ref.ask(m.LogoutRequested()) == CommandResult(
        False, "WhatsApp is not linked", "not_linked"
    )

    # the connect page asks for a QR, the phone scans it: linked again
    assert (await ref.ask(m.RequestQr())).ok
    await viewer.next("qr-update")
    world.scan(cid, phone="79001112233")
    done = await viewer.next("whatsapp-connected")
    assert done["data"]["phone"] == "79001112233"
    assert (await ref.ask(m.GetStatus())).integration_status == "active"


async def test_a_logged_out_salon_stays_logged_out_across_a_node_restart(
    autojump_clock: MockClock, world: SimulatedWorld
) -> None:
    settings = make_settings()
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        async with running_node(settings, storage, world, seed=1) as node:
            cid = await register(node)
            await link(node, world, cid)
            assert (await node.company(cid).ask(m.LogoutRequested())).ok
        async with running_node(settings, storage, world, seed=2) as node:
            await node.restore_done()
            assert node.restored == 0  # nothing linked to restore
            await trio.sleep(600)
            view = await node.company(cid).ask(m.GetStatus())
            assert (view.integration_status, view.session) == ("logged_out", "idle")
            assert not world.is_connected(cid)


async def test_logout_while_reconnecting_unlinks_without_a_live_session(
    autojump_clock: MockClock, node: Node, world: SimulatedWorld
) -> None:
    cid = await register(node)
    viewer = await link(node, world, cid)
    world.go_offline(cid)
    await viewer.next_status("reconnecting")
    assert (await node.company(cid).ask(m.LogoutRequested())).ok
    assert world.linked_jid(cid) is None
    world.go_online(cid)
    await trio.sleep(600)
    assert not world.is_connected(cid)
    assert (await node.company(cid).ask(m.GetStatus())).integration_status == "logged_out"


async def test_a_salon_not_linked_has_nothing_to_log_out(
    autojump_clock: MockClock, node: Node
) -> None:
    cid = await register(node)
    viewer = RecordingViewer()
    ref = node.company(cid)
    await ref.ask(m.Subscribe(viewer))
    assert await ref.ask(m.LogoutRequested()) == CommandResult(
        False, "WhatsApp is not linked", "not_linked"
    )
    assert (await ref.ask(m.GetStatus())).integration_status == "pending"


@pytest.mark.parametrize(
    ("status", "code"),
    [(t.Status.FROZEN, "frozen"), (t.Status.UNINSTALLED, "uninstalled")],
)
def test_a_frozen_or_uninstalled_salon_is_refused(status: t.Status, code: str) -> None:
    state = t.CompanyState(status=status, session=t.Session.STOPPED, jid="1@s", phone="7900")
    decision = t.decide(state, t.LogoutRequested(), RULES)
    assert decision.state == state
    assert [type(e) for e in decision.effects] == [t.Reply]
    assert decision.effects[0] == t.Reply(False, decision.effects[0].message, code)  # type: ignore[union-attr]


def test_the_decision_unlinks_then_stops_and_stores_logged_out() -> None:
    state = t.CompanyState(
        status=t.Status.RECONNECTING,
        session=t.Session.WAITING,
        jid="79001234567@s.whatsapp.net",
        phone="79001234567",
        reconnect_attempt=3,
        last_error="disconnected: network",
    )
    decision = t.decide(state, t.LogoutRequested(), RULES)
    assert decision.state == t.CompanyState(status=t.Status.LOGGED_OUT)
    kinds = [type(e) for e in decision.effects]
    assert kinds.index(t.LogoutSession) < kinds.index(t.StopSession) < kinds.index(t.Persist)
    assert t.CancelTimer(t.Timer.RECONNECT) in decision.effects
    (persist,) = [e for e in decision.effects if isinstance(e, t.Persist)]
    assert (persist.status, persist.connected, persist.jid) == (t.Status.LOGGED_OUT, False, None)
    assert decision.effects[-1] == t.Reply(True, "logged out")
