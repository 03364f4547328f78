"""neonize's session store in PostgreSQL (``AIADMIN_WHATSAPP_STORE=postgres``), offline.

The real library builds the client on a real throwaway database: whatsmeow creates its tables
there (so credentials would live in PostgreSQL, not in a file), then connect fails fast for
want of WhatsApp, as everywhere on this machine.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
import trio

from actors.whatsapp import ConnectFailed, NeonizeGateway, open_gateway
from actors.whatsapp._gateway import whatsapp_store_url
from config import Settings, WhatsAppProvider, WhatsAppStore, settings_from_env
from tests.support.databases import temp_database

pytest.importorskip("neonize.client")


def neonize_settings(tmp_path: Path, database_url: str | None, store: WhatsAppStore) -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        whatsapp_provider=WhatsAppProvider.NEONIZE,
        whatsapp_sessions_path=tmp_path / "sessions",
        whatsapp_store=store,
        database_url=database_url,
    )


def test_store_url_prefers_ssl_unless_the_url_says_otherwise(tmp_path: Path) -> None:
    url = "postgresql://ai:secret@db.internal:5432/aiadmin"
    settings = neonize_settings(tmp_path, url, WhatsAppStore.POSTGRES)
    assert whatsapp_store_url(settings) == url + "?sslmode=prefer"
    strict = neonize_settings(tmp_path, url + "?sslmode=verify-full", WhatsAppStore.POSTGRES)
    assert whatsapp_store_url(strict) == url + "?sslmode=verify-full"
    files = neonize_settings(tmp_path, url, WhatsAppStore.FILES)
    assert whatsapp_store_url(files) is None


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
