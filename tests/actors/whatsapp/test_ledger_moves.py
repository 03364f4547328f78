"""Credentials move with the salon (issue 13): with ``AIADMIN_WHATSAPP_STORE=postgres`` neonize's
ledger of sent messages lives in PostgreSQL, so a session that moves to another process keeps
exactly-once sends.

The neonize sessions here run on real code (gateway, session, ledger, session-host service)
with a neonize client whose WhatsApp is the :class:`SimulatedWorld`
(:mod:`tests.support.neonize_world`): like the real one, it cannot pass our message id, so the
world cannot deduplicate a resend and counts every copy it receives. "Node A" and "node B" are two
gateways with sessions paths of their own (two machines) over the same database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from actors.whatsapp import (
    Connected,
    HostedGateway,
    NeonizeGateway,
    OutcomeUnknown,
    SimulatedWorld,
    _neonize,
    new_message_id,
    open_gateway,
)
from actors.whatsapp._host import _HostService
from actors.whatsapp._ledger import FileLedger
from actors.whatsapp._neonize import NeonizeSession
from config import Settings, WhatsAppProvider, WhatsAppStore, settings_from_env
from storage import SentLedger, Storage, StorageUnavailable
from tests.support.databases import open_real_storage
from tests.support.neonize_world import WorldClients, linked_world

CLIENT = "79005550001"
TEXT = "Напоминаем: завтра в 10:00 стрижка у Анны"


def node_settings(database_url: str, sessions: Path, store: WhatsAppStore) -> Settings:
    """One node's settings: neonize sessions in this process, their files under ``sessions``."""
    return replace(
        settings_from_env({}, dotenv=None),
        whatsapp_provider=WhatsAppProvider.NEONIZE,
        whatsapp_store=store,
        whatsapp_sessions_path=sessions,
        database_url=database_url,
        session_hosts=0,
    )


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with open_real_storage(database_url, redis_url=None) as st:
        yield st


@asynccontextmanager
async def node_session(
    settings: Settings, clients: WorldClients, company_id: int
) -> AsyncIterator[NeonizeSession]:
    """A node's gateway, built from its settings, and the company's session on it, connected."""
    async with open_gateway(settings) as gateway:
        assert isinstance(gateway, NeonizeGateway)
        gateway.client_factory = clients
        session = gateway.open_session(company_id)
        await session.start()
        await clients.connected()
        assert await session.events.receive() == Connected()
        yield session


async def test_a_resend_after_the_salon_moved_is_not_sent_again(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    """Node A sends X, and its owner dies before marking X sent; node B takes the salon over
    and sends X again with the same id: WhatsApp receives X exactly once."""
    company_id = (await storage.companies.create(913_001)).company.id
    world = linked_world(company_id)
    clients = WorldClients(world)
    message_id = new_message_id()
    node_a = node_settings(database_url, tmp_path / "a", WhatsAppStore.POSTGRES)
    async with node_session(node_a, clients, company_id) as session:
        wa_id = await session.send_text(CLIENT, TEXT, message_id)
    assert await storage.sent.sent(company_id, message_id) == wa_id  # the ledger row
    assert not (tmp_path / "a" / f"company_{company_id}.sent").exists()  # not a local file

    node_b = node_settings(database_url, tmp_path / "b", WhatsAppStore.POSTGRES)
    async with node_session(node_b, clients, company_id) as session:
        assert await session.send_text(CLIENT, TEXT, message_id) == wa_id  # suppressed
        other = await session.send_text(CLIENT, "Ждём вас!", new_message_id())
    assert [m.text for m in world.delivered(company_id)] == [TEXT, "Ждём вас!"]
    assert world.send_attempts(company_id) == 2  # X once, the other message once
    assert other != wa_id


async def test_with_the_files_store_the_ledger_stays_on_its_machine(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    """The files store keeps the ledger beside the credentials: a resend on the same machine
    is suppressed from that file (which is why cluster mode refuses this store)."""
    company_id = (await storage.companies.create(913_002)).company.id
    world = linked_world(company_id)
    clients = WorldClients(world)
    message_id = new_message_id()
    node = node_settings(database_url, tmp_path / "a", WhatsAppStore.FILES)
    async with node_session(node, clients, company_id) as session:
        wa_id = await session.send_text(CLIENT, TEXT, message_id)
    ledger = tmp_path / "a" / f"company_{company_id}.sent"
    assert ledger.read_text() == f"{message_id} {wa_id}\n"
    assert await storage.sent.sent(company_id, message_id) is None
    async with node_session(node, clients, company_id) as session:  # restarted, same machine
        assert await session.send_text(CLIENT, TEXT, message_id) == wa_id
    assert world.send_attempts(company_id) == 1


async def test_file_ledgers_of_two_hosts_on_one_machine_agree(tmp_path: Path) -> None:
    """With the files store, a salon's session may move between session hosts on the same
    machine and back: each host's ledger sees what the other appended since it last looked."""
    first, second = FileLedger(tmp_path), FileLedger(tmp_path)
    await first.record(5, "m-1", "WA1")
    assert await second.sent(5, "m-1") == "WA1"
    await second.record(5, "m-2", "WA2")
    assert await first.sent(5, "m-2") == "WA2"  # appended after ``first`` had read the file
    assert await first.recent(5) == ["WA2", "WA1"]
    path = trio.Path(first.path(5))
    await path.write_text(await path.read_text() + "m-3 WA")  # a line still being written
    assert await second.sent(5, "m-3") is None
    await path.write_text(await path.read_text() + "3\n")
    assert await second.sent(5, "m-3") == "WA3"
    first.forget(5)  # a logout deletes it
    assert await second.sent(5, "m-1") is None
    await first.record(5, "m-4", "WA4")
    assert await second.recent(5) == ["WA4"]


async def test_session_hosts_record_sends_in_postgres_themselves(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    """A session host told ``ledger_url`` holds the ledger itself and records each send as
    WhatsApp takes it; another host (another machine) then suppresses the resend."""
    company_id = (await storage.companies.create(913_003)).company.id
    world = linked_world(company_id)
    clients = WorldClients(world)
    message_id = new_message_id()
    send = {"sid": 1, "to_phone": CLIENT, "text": TEXT, "message_id": message_id}
    answers = []
    for machine in ("a", "b"):
        config = {
            "backend": "neonize",
            "sessions_path": str(tmp_path / machine),
            "ledger_url": database_url,
        }
        async with trio.open_nursery() as nursery:
            host = _HostService(nursery)
            await host.handle("hello", {"config": config})
            gateway = host._gateway
            assert isinstance(gateway, NeonizeGateway)
            gateway.client_factory = clients
            await host.handle("open", {"sid": 1, "company_id": company_id, "jid": None})
            await host.handle("start", {"sid": 1})
            await clients.connected()
            answers.append(await host.handle("send", send))
            await host.shutdown()
            nursery.cancel_scope.cancel()
    assert answers[0] == answers[1] == await storage.sent.sent(company_id, message_id)
    assert world.send_attempts(company_id) == 1


async def test_a_session_host_process_opens_the_ledger_it_is_told(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    """A real session host process (neonize backend) gets ``ledger_url`` and opens the ledger's
    pool in its ``hello``: it becomes ready only if that worked."""
    settings = replace(
        node_settings(database_url, tmp_path / "a", WhatsAppStore.POSTGRES), session_hosts=1
    )
    async with open_gateway(settings) as gateway:
        assert isinstance(gateway, HostedGateway)
        assert gateway.host_config["ledger_url"] == database_url
        [host] = gateway._hosts
        with trio.fail_after(60):
            while host.state != "ready":
                await host.wait_changed()
        assert host.restarts == 0
    files = replace(settings, whatsapp_store=WhatsAppStore.FILES)
    async with open_gateway(files) as gateway:
        assert isinstance(gateway, HostedGateway)
        assert gateway.host_config["ledger_url"] is None  # a file per company on the host


async def test_a_session_host_whose_ledger_database_is_unreachable_never_gets_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The host opens the ledger in its ``hello``: with nothing listening at ``ledger_url`` it
    refuses to serve (sends without a ledger could go out twice) and is restarted, its log
    saying why, without the URL's password."""
    unreachable = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere"
    settings = replace(
        node_settings(unreachable, tmp_path / "a", WhatsAppStore.POSTGRES), session_hosts=1
    )
    async with open_gateway(settings) as gateway:
        assert isinstance(gateway, HostedGateway)
        [host] = gateway._hosts
        seen = [host.state]
        with trio.fail_after(60):
            while host.state != "backoff":
                await host.wait_changed()
                seen.append(host.state)
        assert "ready" not in seen
        assert not gateway.snapshot().healthy
    failed = [r.getMessage() for r in caplog.records if "failed to start" in r.getMessage()]
    assert failed and "sent-message ledger's database is unreachable" in failed[0]
    assert "hunter2" not in caplog.text


class BrokenLedger:
    """A ledger whose database is down (``sent``/``record`` fail as PostgreSQL's would)."""

    def __init__(self, fail_reads: bool) -> None:
        self.fail_reads = fail_reads
        self.records: list[tuple[int, str, str]] = []

    async def sent(self, company_id: int, message_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        if self.fail_reads:
            raise StorageUnavailable("postgresql", "connection refused")
        return None

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        await trio.lowlevel.checkpoint()
        raise StorageUnavailable("postgresql", "connection refused")

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        await trio.lowlevel.checkpoint()
        raise StorageUnavailable("postgresql", "connection refused")


class FlakyLedger:
    """A working ledger whose first ``fail`` records fail as over a PostgreSQL connection
    that dropped (the pool's next connection works)."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.rows: dict[tuple[int, str], str] = {}

    async def sent(self, company_id: int, message_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self.rows.get((company_id, message_id))

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail > 0:
            self.fail -= 1
            raise StorageUnavailable("postgresql", "connection was closed mid-operation")
        self.rows.setdefault((company_id, message_id), wa_id)

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        await trio.lowlevel.checkpoint()
        return []


@asynccontextmanager
async def broken_ledger_session(
    ledger: SentLedger, tmp_path: Path
) -> AsyncIterator[tuple[NeonizeSession, SimulatedWorld]]:
    world = linked_world(7)
    clients = WorldClients(world)
    async with trio.open_nursery() as nursery:
        gateway = NeonizeGateway(
            nursery, sessions_path=tmp_path, client_factory=clients, ledger=ledger
        )
        session = gateway.open_session(7)
        await session.start()  # an unreadable ledger at start: the session still connects
        await clients.connected()
        assert await session.events.receive() == Connected()
        yield session, world
        await gateway.aclose()
        nursery.cancel_scope.cancel()


async def test_an_unreadable_ledger_sends_nothing(tmp_path: Path) -> None:
    """Whether the id went out cannot be known: the send fails as uncertain (the queue tries
    again later) and nothing reaches WhatsApp."""
    async with broken_ledger_session(BrokenLedger(fail_reads=True), tmp_path) as (session, world):
        with pytest.raises(OutcomeUnknown, match="sent-message ledger"):
            await session.send_text(CLIENT, TEXT, new_message_id())
    assert world.send_attempts(7) == 0


async def test_a_record_that_fails_once_is_written_on_a_retry(tmp_path: Path) -> None:
    """WhatsApp took the message and the ledger's connection dropped as it was recorded: the
    record is tried again, so the salon's next owner (or this process after a restart) finds
    it and does not send the message a second time."""
    ledger = FlakyLedger(fail=2)
    async with broken_ledger_session(ledger, tmp_path) as (session, world):
        message_id = new_message_id()
        wa_id = await session.send_text(CLIENT, TEXT, message_id)
    assert ledger.rows == {(7, message_id): wa_id}
    assert world.send_attempts(7) == 1


async def test_a_send_whose_record_fails_still_counts_as_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WhatsApp took the message: the caller gets its id (an error would make it send again),
    the failure is logged once the record's time is up, and this session still answers a
    resend without sending."""
    monkeypatch.setattr(_neonize, "RECORD_TIMEOUT", 0.3)  # not the 10 s a real one gets
    async with broken_ledger_session(BrokenLedger(fail_reads=False), tmp_path) as (session, world):
        message_id = new_message_id()
        wa_id = await session.send_text(CLIENT, TEXT, message_id)
        assert await session.send_text(CLIENT, TEXT, message_id) == wa_id
    assert world.send_attempts(7) == 1
    assert any("could not record it in the ledger" in r.getMessage() for r in caplog.records)


async def test_a_file_ledger_begun_again_while_another_host_was_not_looking_is_read_whole(
    tmp_path: Path,
) -> None:
    """A logout on one host deletes the salon's ledger; the salon links again and its new
    ledger grows past what the other host had read of the old one before that host looks
    again. The other host reads the new file from its start: a resend of the first new
    message is suppressed, and the old file's ids are gone."""
    first, second = FileLedger(tmp_path), FileLedger(tmp_path)
    await first.record(5, "m-1", "WA1")
    assert await second.sent(5, "m-1") == "WA1"  # ``second`` has read the old file
    first.forget(5)
    await first.record(5, "m-2", "WA2")
    await first.record(5, "m-3", "WA3")  # the new file is now longer than the old one
    assert await second.sent(5, "m-2") == "WA2"
    assert await second.sent(5, "m-1") is None
    assert await second.recent(5) == ["WA3", "WA2"]


async def test_a_file_ledger_begun_again_at_the_same_size_is_read_again(tmp_path: Path) -> None:
    """The same, when the new file has exactly the old one's size (one line each)."""
    first, second = FileLedger(tmp_path), FileLedger(tmp_path)
    await first.record(5, "m-1", "WA1")
    assert await second.sent(5, "m-1") == "WA1"
    old = os.stat(first.path(5))
    first.forget(5)
    await first.record(5, "m-2", "WA2")
    # Linking again takes a scan: the new file is written seconds after the old one (and may
    # well get the old one's inode back).
    os.utime(first.path(5), ns=(old.st_atime_ns, old.st_mtime_ns + 5_000_000_000))
    assert await second.sent(5, "m-2") == "WA2"
    assert await second.recent(5) == ["WA2"]
