"""The neonize backend: event mapping with neonize's own protobuf classes, sessions driven
through the gateway's ``client_factory`` seam, and offline behaviour.

Offline here: neonize imports and builds clients, and ``connect()`` fails fast with
"failed to dial" — the session must report ``ConnectFailed`` and nothing may die.

Sessions with a :class:`FakeClient` (made by the gateway's ``client_factory``) get their
events the way neonize delivers them: its callbacks called from another thread, where they
block until trio has taken the event. No test waits on the wall clock: events, threads
joined, and ``wait_all_tasks_blocked`` order the steps.
"""

from __future__ import annotations

import platform
import threading
import types
from collections.abc import AsyncIterator
from pathlib import Path

# neonize is a hard dependency (pinned in pyproject): a missing one fails here, never skips.
import neonize.proto.Neonize_pb2 as pb
import neonize.proto.waE2E.WAWebProtobufsE2E_pb2 as e2e
import pytest
import trio
import trio.testing

from actors.whatsapp import (
    Connected,
    ConnectFailed,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    NeonizeGateway,
    NeonizeMissing,
    PairingFailed,
    PairingUnavailable,
    QrCode,
    SessionNotConnected,
    SessionState,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
    check_neonize,
    map_event,
    new_message_id,
)
from actors.whatsapp._neonize import ClientSpec, EventCallback, QrCallback


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> object:
    return pb.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0)


def message(text_message: object, **source: object) -> object:
    src = pb.MessageSource(
        Chat=source.pop("Chat", jid("79005550001")),
        Sender=source.pop("Sender", jid("79005550001")),
        IsFromMe=source.pop("IsFromMe", False),
        IsGroup=source.pop("IsGroup", False),
        **source,
    )
    info = pb.MessageInfo(MessageSource=src, ID="3A1B2C3D4E5F", Timestamp=1_700_000_000)
    return pb.Message(Info=info, Message=text_message)


def test_connection_events() -> None:
    assert map_event(pb.Connected(status=True)) == Connected()
    assert isinstance(map_event(pb.Disconnected(status=True)), Disconnected)
    assert map_event(pb.StreamReplaced()) == StreamReplaced()
    assert map_event(pb.KeepAliveTimeout(ErrorCount=2)) == KeepAliveTimeout()
    assert map_event(pb.KeepAliveRestored()) == KeepAliveRestored()


def test_pair_status() -> None:
    ok = pb.PairStatus(ID=jid("79001234567", device=14), Status=pb.PairStatus.SUCCESS)
    assert map_event(ok) == Linked("79001234567:14@s.whatsapp.net", "79001234567")
    bad = pb.PairStatus(Status=pb.PairStatus.ERROR, Error="key mismatch")
    assert map_event(bad) == PairingFailed("key mismatch")


def test_logged_out_and_ban() -> None:
    out = map_event(pb.LoggedOut(OnConnect=True, Reason=pb.MAIN_DEVICE_GONE))
    assert out == LoggedOut("main_device_gone (on connect)")
    ban = map_event(pb.TemporaryBan(Code=pb.TemporaryBan.BLOCKED_BY_USERS, Expire=3600))
    assert ban == TemporaryBan("BLOCKED_BY_USERS", 3600.0)


def test_connect_failure() -> None:
    failed = map_event(pb.ConnectFailure(Reason=pb.SERVICE_UNAVAILABLE, Message="try later"))
    assert isinstance(failed, ConnectFailed) and "service unavailable" in failed.error
    # whatsmeow reports these as LoggedOut / TemporaryBan too: no duplicate event
    assert map_event(pb.ConnectFailure(Reason=pb.LOGGED_OUT)) is None
    assert map_event(pb.ConnectFailure(Reason=pb.TEMP_BANNED)) is None
    assert isinstance(map_event(pb.ClientOutdated()), ConnectFailed)


def test_text_messages() -> None:
    plain = map_event(message(e2e.Message(conversation="Хочу записаться")))
    assert plain == InboundMessage("3A1B2C3D4E5F", "79005550001", "Хочу записаться", 1.7e9)
    extended = map_event(
        message(e2e.Message(extendedTextMessage=e2e.ExtendedTextMessage(text="see https://x")))
    )
    assert isinstance(extended, InboundMessage) and extended.text == "see https://x"


def test_lid_sender_uses_the_phone_number() -> None:
    event = map_event(
        message(
            e2e.Message(conversation="hi"),
            Sender=jid("123456789012345", server="lid"),
            SenderAlt=jid("79005550009"),
        )
    )
    assert isinstance(event, InboundMessage) and event.sender_phone == "79005550009"


def test_ignored_messages_and_events() -> None:
    assert map_event(message(e2e.Message(conversation="group"), IsGroup=True)) is None
    assert map_event(message(e2e.Message(conversation="status"), Chat=status_chat())) is None
    reaction = e2e.Message(reactionMessage=e2e.ReactionMessage(text="👍"))
    assert map_event(message(reaction)) is None
    revoke = e2e.Message(protocolMessage=e2e.ProtocolMessage(type=e2e.ProtocolMessage.REVOKE))
    assert map_event(message(revoke)) is None
    assert map_event(message(e2e.Message())) is None
    assert map_event(pb.Receipt()) is None


def status_chat() -> object:
    return jid("status", server="broadcast")


@pytest.mark.parametrize(
    ("content", "kind", "text"),
    [
        (e2e.Message(imageMessage=e2e.ImageMessage(caption="")), "image", ""),
        (e2e.Message(imageMessage=e2e.ImageMessage(caption="вот так")), "image", "вот так"),
        (e2e.Message(audioMessage=e2e.AudioMessage(PTT=True, seconds=7)), "audio", ""),
        (e2e.Message(videoMessage=e2e.VideoMessage(caption="видео")), "video", "видео"),
        (e2e.Message(ptvMessage=e2e.VideoMessage()), "video", ""),
        (e2e.Message(documentMessage=e2e.DocumentMessage(fileName="a.pdf")), "document", ""),
        (
            e2e.Message(
                documentWithCaptionMessage=e2e.FutureProofMessage(
                    message=e2e.Message(documentMessage=e2e.DocumentMessage(caption="прайс?"))
                )
            ),
            "document",
            "прайс?",
        ),
        (e2e.Message(stickerMessage=e2e.StickerMessage()), "sticker", ""),
        (e2e.Message(locationMessage=e2e.LocationMessage(degreesLatitude=55.7)), "other", ""),
        (e2e.Message(contactMessage=e2e.ContactMessage(displayName="Маша")), "other", ""),
        (
            e2e.Message(
                viewOnceMessageV2=e2e.FutureProofMessage(
                    message=e2e.Message(imageMessage=e2e.ImageMessage(caption="раз"))
                )
            ),
            "image",
            "раз",
        ),
    ],
)
def test_media_messages_carry_their_kind_and_caption(content: object, kind: str, text: str) -> None:
    event = map_event(message(content))
    assert event == InboundMessage("3A1B2C3D4E5F", "79005550001", text, 1.7e9, kind)


def test_a_message_from_the_linked_phone_is_the_staffs() -> None:
    """``IsFromMe`` in a 1:1 chat: the salon wrote to the client from the phone itself."""
    event = map_event(message(e2e.Message(conversation="Добрый день, это Анна"), IsFromMe=True))
    assert event == StaffMessage("3A1B2C3D4E5F", "79005550001", "Добрый день, это Анна", 1.7e9)
    photo = e2e.Message(imageMessage=e2e.ImageMessage(caption="наш прайс"))
    staff_photo = map_event(message(photo, IsFromMe=True))
    assert staff_photo == StaffMessage("3A1B2C3D4E5F", "79005550001", "наш прайс", 1.7e9, "image")
    lid = map_event(
        message(
            e2e.Message(conversation="hi"),
            IsFromMe=True,
            Chat=jid("123456789012345", server="lid"),
            RecipientAlt=jid("79005550009"),
        )
    )
    assert isinstance(lid, StaffMessage) and lid.to_phone == "79005550009"
    # a LID chat with no phone to name it by, and staff messages in groups: not for us
    anonymous = message(
        e2e.Message(conversation="hi"), IsFromMe=True, Chat=jid("1234567890", server="lid")
    )
    assert map_event(anonymous) is None
    group = message(e2e.Message(conversation="всем"), IsFromMe=True, IsGroup=True)
    assert map_event(group) is None


def test_library_is_present() -> None:
    assert check_neonize().name.startswith("neonize-linux-")


def test_missing_library_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    with pytest.raises(NeonizeMissing, match="Linux x86_64/aarch64"):
        check_neonize()
    monkeypatch.undo()
    fake = importlib.util.spec_from_file_location("neonize", tmp_path / "__init__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(NeonizeMissing, match=r"is missing: install it with `pip install neonize"):
        check_neonize()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(NeonizeMissing, match="not installed"):
        check_neonize()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[NeonizeGateway]:
    async with trio.open_nursery() as nursery:
        gw = NeonizeGateway(nursery, sessions_path=tmp_path / "sessions")
        yield gw
        await gw.aclose()
        nursery.cancel_scope.cancel()


class FakeClient:
    """A neonize client as the session uses it: ``connect`` holds its thread until ``stop``;
    the test plays neonize's Go thread with :meth:`emit` and :meth:`emit_qr`."""

    def __init__(self, spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> None:
        self.spec = spec
        self._on_event = on_event
        self._on_qr = on_qr
        self._stopped = threading.Event()
        self.sent: list[tuple[str, str]] = []

    def connect(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def send_message(self, to: str, text: str) -> object:
        self.sent.append((to, text))
        return types.SimpleNamespace(ID=f"3EB0{len(self.sent)}")

    async def emit(self, event: object) -> None:
        """Deliver a protobuf event from another thread; returns once trio has taken it."""
        await trio.to_thread.run_sync(self._on_event, self, event)

    async def emit_qr(self, code: str) -> None:
        await trio.to_thread.run_sync(self._on_qr, self, code.encode())


class FakeClients:
    """The gateway's ``client_factory``: makes clients of ``kind`` and keeps them in order."""

    def __init__(self, kind: type[FakeClient] = FakeClient) -> None:
        self.kind = kind
        self.made: list[FakeClient] = []

    def __call__(self, spec: ClientSpec, on_event: EventCallback, on_qr: QrCallback) -> object:
        client = self.kind(spec, on_event, on_qr)
        self.made.append(client)
        return client


@pytest.fixture
def clients() -> FakeClients:
    return FakeClients()


@pytest.fixture
async def fake_gateway(tmp_path: Path, clients: FakeClients) -> AsyncIterator[NeonizeGateway]:
    async with trio.open_nursery() as nursery:
        gw = NeonizeGateway(nursery, sessions_path=tmp_path / "sessions", client_factory=clients)
        yield gw
        await gw.aclose()
        nursery.cancel_scope.cancel()


async def test_the_factory_gets_the_companys_own_store(
    fake_gateway: NeonizeGateway, clients: FakeClients, tmp_path: Path
) -> None:
    session = fake_gateway.open_session(41, jid="79001234567:3@s.whatsapp.net")
    await session.start()
    await session.start()  # already started: no second client
    [client] = clients.made
    assert client.spec == ClientSpec(
        company_id=41,
        store=str(tmp_path / "sessions" / "company_41.sqlite3"),
        shared_store=False,
        jid="79001234567:3@s.whatsapp.net",
    )
    assert session.state is SessionState.CONNECTING


async def test_qr_codes_carry_whatsmeows_lifetimes(
    fake_gateway: NeonizeGateway, clients: FakeClients
) -> None:
    """The first code of a connection is shown ~60 s, later ones 20 s. Events from a client
    the session no longer uses are dropped."""
    session = fake_gateway.open_session(43)
    await session.start()
    [first] = clients.made
    for code in ("2@one", "2@two", "2@three"):
        await first.emit_qr(code)
    lifetimes = [(await session.events.receive()) for _ in range(3)]
    assert lifetimes == [QrCode("2@one", 60.0), QrCode("2@two", 20.0), QrCode("2@three", 20.0)]
    # A new connection gets a new client; the old one's late callbacks are not its events.
    await session.stop()
    await session.start()
    second = clients.made[1]
    await first.emit_qr("2@stale")
    await first.emit(pb.Connected(status=True))
    assert session.events.statistics().current_buffer_used == 0
    await second.emit_qr("2@fresh")
    assert await session.events.receive() == QrCode("2@fresh", 60.0)
    assert session.events.statistics().current_buffer_used == 0


async def test_a_retried_send_joins_the_one_still_running(tmp_path: Path) -> None:
    """A caller that timed out retries with the same id while the first send is still in
    neonize (a slow network): the retry waits for it rather than sending a second copy, and
    both get the same WhatsApp id; later retries answer from the ledger."""
    sending = trio.Event()  # the first send is inside neonize
    release = threading.Event()  # the network answers

    class SlowClient(FakeClient):
        def send_message(self, to: str, text: str) -> object:
            self.sent.append((to, text))
            trio.from_thread.run_sync(sending.set)
            release.wait(10)
            return types.SimpleNamespace(ID="3EB0FROMWHATSAPP")

    clients = FakeClients(SlowClient)
    async with trio.open_nursery() as background:
        gateway = NeonizeGateway(
            background, sessions_path=tmp_path / "sessions", client_factory=clients
        )
        session = gateway.open_session(44)
        await session.start()
        [client] = clients.made
        await client.emit(pb.Connected(status=True))
        assert await session.events.receive() == Connected()
        message_id = new_message_id()
        results: list[str] = []

        async def send() -> None:
            results.append(await session.send_text("79005550001", "Запись на завтра", message_id))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                await sending.wait()
                nursery.start_soon(send)  # the retry, while the first is still sending
                # Every task is blocked now: the first in neonize's thread, and the retry
                # either waiting for it (right) or in a thread of its own (a second copy).
                await trio.testing.wait_all_tasks_blocked()
                release.set()
        assert results == ["3EB0FROMWHATSAPP", "3EB0FROMWHATSAPP"]
        assert client.sent == [("79005550001", "Запись на завтра")]
        assert await session.send_text("79005550001", "Запись на завтра", message_id) == (
            "3EB0FROMWHATSAPP"
        )
        assert len(client.sent) == 1
        await gateway.aclose()


async def test_offline_connect_reports_connect_failed(
    gateway: NeonizeGateway, tmp_path: Path
) -> None:
    session = gateway.open_session(42)
    with pytest.raises(PairingUnavailable):
        await session.pair_phone("79001234567")
    with trio.fail_after(20):
        await session.start()
        assert session.state is SessionState.CONNECTING
        event = await session.events.receive()
    assert isinstance(event, ConnectFailed)
    assert "could not connect to WhatsApp" in event.error
    assert "failed to dial" in event.error
    after: SessionState = session.state  # (mypy narrowed the property above)
    assert after is SessionState.IDLE
    assert (tmp_path / "sessions" / "company_42.sqlite3").exists()
    with pytest.raises(SessionNotConnected):
        await session.send_text("79005550001", "x", new_message_id())
    # the session is reusable: start again, fail again, nothing died
    with trio.fail_after(20):
        await session.start()
        assert isinstance(await session.events.receive(), ConnectFailed)
    await session.logout()
    assert not (tmp_path / "sessions" / "company_42.sqlite3").exists()
    assert gateway.ping()


async def test_staff_messages_skip_the_ones_this_session_sent(
    fake_gateway: NeonizeGateway, clients: FakeClients
) -> None:
    """whatsmeow may echo a message this device sent as ``IsFromMe``: only messages the
    staff typed on the phone are :class:`StaffMessage` events."""
    session = fake_gateway.open_session(45)
    await session.start()
    [client] = clients.made
    await client.emit(pb.Connected(status=True))
    assert await session.events.receive() == Connected()
    wa_id = await session.send_text("79005550001", "Записала вас", new_message_id())
    assert wa_id == "3EB01"

    def from_phone(msg_id: str, text: str) -> object:
        src = pb.MessageSource(Chat=jid("79005550001"), Sender=jid("79001234567"), IsFromMe=True)
        info = pb.MessageInfo(MessageSource=src, ID=msg_id, Timestamp=1_700_000_000)
        return pb.Message(Info=info, Message=e2e.Message(conversation=text))

    await client.emit(from_phone(wa_id, "Записала вас"))  # our own send, echoed
    await client.emit(from_phone("3A0000STAFF", "Я перезвоню"))  # typed on the phone
    assert await session.events.receive() == StaffMessage(
        "3A0000STAFF", "79005550001", "Я перезвоню", 1.7e9
    )
    assert session.events.statistics().current_buffer_used == 0


async def test_an_echo_during_the_send_is_ours_too(tmp_path: Path) -> None:
    """The echo of a send can arrive before ``send_message`` returns its id: recognised by
    chat and text while that send is in flight."""
    echoed = threading.Event()

    class EchoingClient(FakeClient):
        def send_message(self, to: str, text: str) -> object:
            self.sent.append((to, text))
            src = pb.MessageSource(Chat=jid(to), Sender=jid("79001234567"), IsFromMe=True)
            info = pb.MessageInfo(MessageSource=src, ID="3EB0ECHO", Timestamp=1_700_000_000)
            self._on_event(self, pb.Message(Info=info, Message=e2e.Message(conversation=text)))
            echoed.set()
            return types.SimpleNamespace(ID="3EB0ECHO")

    clients = FakeClients(EchoingClient)
    async with trio.open_nursery() as background:
        gateway = NeonizeGateway(
            background, sessions_path=tmp_path / "sessions", client_factory=clients
        )
        session = gateway.open_session(46)
        await session.start()
        [client] = clients.made
        await client.emit(pb.Connected(status=True))
        assert await session.events.receive() == Connected()
        with trio.fail_after(10):
            await session.send_text("79005550001", "Ждём вас", new_message_id())
        assert echoed.is_set()
        assert session.events.statistics().current_buffer_used == 0
        await gateway.aclose()
