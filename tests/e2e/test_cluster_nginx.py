"""Three ``aiadmin serve`` processes behind Debian's nginx, on real PostgreSQL and Redis — the
setup of ``make cluster`` (``scripts/cluster.py``, ``deploy/nginx.conf.template``), started by
the same code.

Everything a client does goes through nginx: the marketplace registers a salon; its connect
page, in headless Chromium, shows a QR code over its WebSocket and, once the (shared,
simulated) phone scans it, «WhatsApp подключен». Clients write; the assistant's replies are
queued in the owner's outbound queue (paced). Then the owner is killed with SIGKILL while
replies are still queued, and the test measures how long the salon's status takes to answer
200 through nginx again (at most :data:`FAILOVER_LIMIT`), and checks that every queued reply
reaches its client exactly once, under the id it was queued with.

The simulated WhatsApp is one world for the three processes (``scripts/cluster_world.py``,
``AIADMIN_SIMULATED_WORLD``): it outlives the kill and records each delivered message once
per id, so the test reads what the phones got over its HTTP API.

Real clocks; every wait is bounded. ``AIADMIN_MEMBER_TTL=2`` keeps the failover quick.

Two quick checks keep the deploy files honest: compose's nginx configuration is the template
rendered for compose's hosts, and ``.env.example`` is a production configuration the server
accepts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import trio
from dotenv import dotenv_values

from bench._server import serve_env
from config import settings_from_env
from scripts.cluster import Cluster, Member, open_cluster, render_nginx_config
from tests.support.databases import (
    delete_redis_prefix,
    new_redis_prefix,
    open_real_storage,
    temp_database,
)

from ._browser import open_mobile_page, screenshot
from .test_connect_page import assert_clean, assert_linked, in_browser_thread, open_connect_page

ROOT = Path(__file__).resolve().parents[2]

ADMIN_KEY = "adm_cluster_nginx_0123456789abcdef"
SALON_ID = 880_001
CLIENTS = 6
FAILOVER_LIMIT = 15.0
#: Bounds on each wait (generous: only a broken build should reach them).
STEP_LIMIT = 30.0
CLUSTER_ENV = {
    "AIADMIN_MEMBER_TTL": "2",
    "AIADMIN_WHATSAPP_STORE": "postgres",
    # Replies leave 0.4–1.2 s apart, so some are still queued when the owner dies.
    "AIADMIN_SEND_MIN_GAP": "0.4",
    "AIADMIN_ASSISTANT_WAIT": "0.2",
    "AIADMIN_SHUTDOWN_GRACE": "3",
    # The test polls through nginx from one address.
    "AIADMIN_API_RATE_LIMIT": "100000/60",
}


async def until(check: Callable[[], Awaitable[bool]], what: str, limit: float = STEP_LIMIT) -> None:
    """Poll ``check`` every 50 ms until it holds; fail saying ``what`` after ``limit``."""
    with trio.move_on_after(limit):
        while True:  # the processes are polled over HTTP: no event to wait on here
            if await check():
                return
            await trio.sleep(0.05)
    pytest.fail(f"not within {limit:g} s: {what}")


async def owners(cluster: Cluster, company_id: int) -> list[Member]:
    """The live processes whose supervision tree runs the company's actor."""
    found = []
    async with httpx.AsyncClient(timeout=5) as http:
        for member in cluster.members:
            if not member.alive:
                continue
            answer = await http.get(f"{member.base}/health/tree", headers={"X-API-Key": ADMIN_KEY})
            assert answer.status_code == 200, answer.text
            registry = next(c for c in answer.json()["tree"]["children"] if c["id"] == "companies")
            if any(c["id"] == str(company_id) for c in registry.get("children", [])):
                found.append(member)
    return found


async def replies(storage: Any, company_id: int) -> dict[str, tuple[str, str]]:
    """The company's outbound messages in PostgreSQL: id → (client phone, status)."""

    async def read(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT wa_message_id, peer_phone, status FROM messages"
                " WHERE company_id = $1 AND direction = 'out'",
                company_id,
            )
        )

    rows = await storage.pg.run(read)
    return {r["wa_message_id"]: (r["peer_phone"], r["status"]) for r in rows}


async def link_through_the_page(
    cluster: Cluster, world: httpx.AsyncClient, company_id: int, connect_url: str
) -> None:
    """The connect page through nginx: a QR code over the WebSocket, the phone scans, linked."""
    qr_shown = trio.Event()
    scanned = trio.Event()
    parts = urlsplit(connect_url)
    url = f"{cluster.nginx_base}{parts.path}?{parts.query}"

    def scenario() -> None:
        with open_mobile_page() as (page, log):
            open_connect_page(page, url)
            page.wait_for_function(
                "() => (document.querySelector('#qr-image').getAttribute('src') || '')"
                ".startsWith('data:image/png;base64,')"
            )
            trio.from_thread.run_sync(qr_shown.set)
            trio.from_thread.run(scanned.wait)
            assert_linked(page)
            screenshot(page, "cluster-connect-linked")
            assert log.websocket_urls, "the page opened no WebSocket"
            assert all(u.startswith(cluster.ws_base) for u in log.websocket_urls), (
                log.websocket_urls
            )
            assert_clean(page, log)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_browser_thread, scenario)
        with trio.fail_after(STEP_LIMIT):
            await qr_shown.wait()
        answer = await world.post(f"/world/{company_id}/scan")
        assert answer.status_code == 200, answer.text
        scanned.set()


def test_compose_runs_the_template_rendered_for_its_hosts() -> None:
    rendered = render_nginx_config(
        "80", ["app1:3000", "app2:3000", "app3:3000"], "/var/cache/nginx"
    )
    assert (ROOT / "deploy" / "nginx.compose.conf").read_text() == rendered, (
        "deploy/nginx.compose.conf is stale: regenerate it with `python scripts/cluster.py "
        "nginx-config --listen 80 --upstream app1:3000 --upstream app2:3000 --upstream "
        "app3:3000 --prefix /var/cache/nginx > deploy/nginx.compose.conf`"
    )


def test_env_example_is_a_production_configuration_the_server_accepts() -> None:
    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    settings = settings_from_env(values, dotenv=None)
    assert settings.production and settings.cluster
    assert settings.trusted_proxies == ("127.0.0.1",)


@pytest.mark.browser
@pytest.mark.slow
async def test_three_processes_behind_nginx_fail_over_and_deliver_each_reply_once() -> None:
    prefix = new_redis_prefix("cluster")
    try:
        async with temp_database() as database_url:
            env = serve_env(database_url, prefix, 0, ADMIN_KEY, "cluster") | CLUSTER_ENV
            async with open_cluster(processes=3, env=env, admin_key=ADMIN_KEY) as cluster:
                try:
                    await scenario(cluster, database_url, prefix)
                except BaseException:
                    print(cluster.logs())
                    raise
    finally:
        with trio.CancelScope(shield=True):
            await delete_redis_prefix(prefix)


async def scenario(cluster: Cluster, database_url: str, prefix: str) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    assert cluster.world_base is not None
    async with (
        httpx.AsyncClient(base_url=cluster.nginx_base, timeout=10) as http,
        httpx.AsyncClient(base_url=cluster.world_base, timeout=10) as world,
        open_real_storage(database_url, redis_prefix=prefix, truncate=False) as storage,
    ):
        # The marketplace registers the salon through nginx.
        created = await http.post(
            "/marketplace/register",
            json={"salon_id": SALON_ID, "title": "Салон «Кластер»"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        company_id = int(created.json()["company_id"])
        await link_through_the_page(cluster, world, company_id, created.json()["connect_url"])

        async def status() -> httpx.Response:
            return await http.get(f"/marketplace/status/{company_id}", headers=admin)

        async def connected() -> bool:
            answer = await status()
            return answer.status_code == 200 and answer.json()["whatsapp_connected"] is True

        await until(connected, "the linked salon's status says connected through nginx")
        [owner] = await owners(cluster, company_id)

        # Clients write; each gets one reply, queued in the owner's paced outbound queue.
        phones = [f"7900555{n:04d}" for n in range(CLIENTS)]
        for phone in phones:
            answer = await world.post(
                f"/world/{company_id}/inbound", json={"phone": phone, "text": "Здравствуйте"}
            )
            assert answer.status_code == 200, answer.text

        async def all_queued() -> bool:
            return len(await replies(storage, company_id)) >= CLIENTS

        await until(all_queued, f"{CLIENTS} replies recorded")
        owner.kill()
        killed_at = trio.current_time()
        at_kill = await replies(storage, company_id)
        queued = {mid for mid, (_, s) in at_kill.items() if s == "queued"}
        assert queued, f"every reply went out before the kill: {at_kill}"

        # Failover: the salon answers 200 through nginx again.
        seen: Counter[int] = Counter()

        async def answers() -> bool:
            answer = await status()
            seen[answer.status_code] += 1
            if answer.status_code == 503:
                assert answer.headers.get("Retry-After"), answer.text
                assert answer.json()["error"]["code"] != "served_elsewhere", answer.text
            return answer.status_code == 200

        await until(answers, "the salon answers 200 after its owner was killed")
        failover = trio.current_time() - killed_at
        print(f"failover_seconds={failover:.2f} statuses={dict(seen)} queued_at_kill={len(queued)}")
        assert failover < FAILOVER_LIMIT
        assert set(seen) <= {200, 503}, seen
        [new_owner] = await owners(cluster, company_id)
        assert new_owner is not owner

        # Every queued reply reaches its client once, under the id it was queued with.
        async def delivered() -> list[dict[str, str]]:
            body = (await world.get(f"/world/{company_id}/delivered")).json()
            return list(body["messages"])

        async def all_delivered() -> bool:
            return len(await delivered()) >= CLIENTS

        await until(all_delivered, "every reply delivered after the failover")
        await until(connected, "the salon's session connected again")
        final = await replies(storage, company_id)
        on_phones = await delivered()
        assert sorted(m["message_id"] for m in on_phones) == sorted(final), json.dumps(
            {"phones": on_phones, "stored": final}, ensure_ascii=False
        )
        assert Counter(m["to"] for m in on_phones) == Counter(phones)
        assert queued <= {m["message_id"] for m in on_phones}
        assert {s for _, s in final.values()} == {"sent"}, final
