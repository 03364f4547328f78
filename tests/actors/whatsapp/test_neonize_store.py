"""How the configured neonize gateway starts, offline: its session store in PostgreSQL
(``AIADMIN_WHATSAPP_STORE=postgres``), and a missing library reported at start.

The real library builds the client on a real throwaway database: whatsmeow creates its tables
there (so credentials would live in PostgreSQL, not in a file), then connect fails fast for
want of WhatsApp, as everywhere on this machine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from dataclasses import replace
from pathlib import Path

import asyncpg
import neonize.client  # noqa: F401  (a hard dependency: missing fails, never skips)
import pytest
import trio

from actors.whatsapp import ConnectFailed, NeonizeGateway, open_gateway
from actors.whatsapp._gateway import whatsapp_store_url
from config import Settings, WhatsAppProvider, WhatsAppStore, settings_from_env
from tests.support.databases import temp_database


def neonize_settings(tmp_path: Path, database_url: str | None, store: WhatsAppStore) -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        whatsapp_provider=WhatsAppProvider.NEONIZE,
        whatsapp_sessions_path=tmp_path / "sessions",
        whatsapp_store=store,
        database_url=database_url,
    )


def test_store_url_prefers_ssl_unless_the_url_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    url = "postgresql://ai:secret@db.internal:5432/aiadmin"
    settings = neonize_settings(tmp_path, url, WhatsAppStore.POSTGRES)
    assert whatsapp_store_url(settings) == url + "?sslmode=prefer"
    strict = neonize_settings(tmp_path, url + "?sslmode=verify-full", WhatsAppStore.POSTGRES)
    assert whatsapp_store_url(strict) == url + "?sslmode=verify-full"
    files = neonize_settings(tmp_path, url, WhatsAppStore.FILES)
    assert whatsapp_store_url(files) is None
    monkeypatch.setenv("PGSSLMODE", "verify-full")  # the operator's choice is never lowered
    assert whatsapp_store_url(settings) == url


def whatsmeow_tables(url: str) -> list[str]:
    async def query() -> list[str]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'whatsmeow_%'"
            )
            return sorted(r["tablename"] for r in rows)
        finally:
            await conn.close()

    return asyncio.run(query())


async def test_credentials_go_to_postgres_when_configured(tmp_path: Path) -> None:
    async with temp_database(migrate=False) as url:
        settings = neonize_settings(tmp_path, url, WhatsAppStore.POSTGRES)
        async with open_gateway(settings) as gateway:
            assert isinstance(gateway, NeonizeGateway)
            assert gateway.store_url == url + "?sslmode=prefer"
            session = gateway.open_session(77)
            with trio.fail_after(30):
                await session.start()
                event = await session.events.receive()
            assert isinstance(event, ConnectFailed)
            assert "failed to dial" in event.error  # got as far as WhatsApp: the store worked
            await session.aclose()
        tables = await trio.to_thread.run_sync(whatsmeow_tables, url)
        assert "whatsmeow_device" in tables and "whatsmeow_sessions" in tables
        assert not (tmp_path / "sessions" / "company_77.sqlite3").exists()


async def test_a_missing_library_is_reported_at_start_not_at_the_first_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    settings = neonize_settings(tmp_path, None, WhatsAppStore.FILES)
    with caplog.at_level(logging.ERROR, logger="actors.whatsapp"):
        async with open_gateway(settings) as gateway:
            snapshot = gateway.snapshot()
            assert not snapshot.healthy
            assert snapshot.problem is not None
            assert "pip install neonize==0.5.2" in snapshot.problem
    assert any("pip install neonize" in r.getMessage() for r in caplog.records)


async def test_session_hosts_report_a_missing_library_when_they_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The hosts are other processes: one whose neonize lacks its Go library says so in its
    handshake, so health shows it before any salon tries to link."""
    fake = tmp_path / "fake" / "neonize"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")  # a neonize package without its .so
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    settings = replace(neonize_settings(tmp_path, None, WhatsAppStore.FILES), session_hosts=1)
    with caplog.at_level(logging.ERROR, logger="actors.whatsapp"):
        async with open_gateway(settings) as gateway:
            with trio.fail_after(30):
                while gateway.snapshot().problem is None:  # noqa: ASYNC110 -- another process
                    await trio.sleep(0.05)
            snapshot = gateway.snapshot()
            assert not snapshot.healthy
            assert snapshot.problem is not None
            assert "Go library" in snapshot.problem and "pip install neonize" in snapshot.problem
    assert any("session host 0" in r.getMessage() for r in caplog.records)
