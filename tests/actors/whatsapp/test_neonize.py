"""The neonize backend: event mapping with neonize's own protobuf classes, and offline behaviour.

Offline here: neonize imports and builds clients, and ``connect()`` fails fast with
"failed to dial" — the session must report ``ConnectFailed`` and nothing may die.
"""

from __future__ import annotations

import platform
import threading
import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

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
    StreamReplaced,
    TemporaryBan,
    check_neonize,
    map_event,
    new_message_id,
)

pb = pytest.importorskip("neonize.proto.Neonize_pb2")
e2e = pytest.importorskip("neonize.proto.waE2E.WAWebProtobufsE2E_pb2")


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> object:
    return pb.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0)


def message(text_message: object, **source: object) -> object:
    src = pb.MessageSource(
        Chat=jid("79005550001"),
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
    assert map_event(message(e2e.Message(conversation="mine"), IsFromMe=True)) is None
    assert map_event(message(e2e.Message(conversation="group"), IsGroup=True)) is None
    image = e2e.Message(imageMessage=e2e.ImageMessage(caption=""))
    assert map_event(message(image)) is None
    assert map_event(pb.Receipt()) is None


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


async def test_qr_codes_carry_whatsmeows_lifetimes(gateway: NeonizeGateway) -> None:
    """The first code of a connection is shown ~60 s, later ones 20 s. Events from a client
    the session no longer uses are dropped."""
    session = gateway.open_session(43)
    client = object()
    session._client = client  # what start() sets; the callbacks hand events in like this
    for code in ("2@one", "2@two", "2@three"):
        session._on_event(client, QrCode(code))
    session._on_event(object(), QrCode("2@stale"))
    lifetimes = [(await session.events.receive()) for _ in range(3)]
    assert lifetimes == [QrCode("2@one", 60.0), QrCode("2@two", 20.0), QrCode("2@three", 20.0)]
    assert session.events.statistics().current_buffer_used == 0


async def test_a_retried_send_joins_the_one_still_running(gateway: NeonizeGateway) -> None:
    """A caller that timed out retries with the same id while the first send is still in
    neonize (a slow network): the retry waits for it rather than sending a second copy, and
    both get the same WhatsApp id; later retries answer from the ledger."""
    release = threading.Event()
    calls: list[tuple[str, str]] = []

    class SlowClient:
        def send_message(self, to: str, text: str) -> object:
            calls.append((to, text))
            release.wait(10)
            return types.SimpleNamespace(ID="3EB0FROMWHATSAPP")

    gateway.sessions_path.mkdir(parents=True)
    session = gateway.open_session(44)
    session._client, session._connected = SlowClient(), True  # what a connected start() leaves
    message_id = new_message_id()
    results: list[str] = []

    async def send() -> None:
        results.append(await session.send_text("79005550001", "Запись на завтра", message_id))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        with trio.fail_after(10):
            while not calls:  # noqa: ASYNC110 -- the call is in a worker thread
                await trio.sleep(0.01)
        nursery.start_soon(send)  # the retry, while the first is still sending
        await trio.sleep(0.2)
        release.set()
    assert results == ["3EB0FROMWHATSAPP", "3EB0FROMWHATSAPP"]
    assert calls == [("79005550001", "Запись на завтра")]
    assert await session.send_text("79005550001", "Запись на завтра", message_id) == (
        "3EB0FROMWHATSAPP"
    )
    assert len(calls) == 1


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
