"""``GET /marketplace/status/:id`` answers from the company actor: once the actor holds the
sync state and assistant switch, a request reads nothing more (on PostgreSQL: the trio-asyncio
bridge is crossed only by the credential check), and what it shows is never older than the
last write made in this process. In cluster mode another process may write them, so the
route reads them itself (issue 17)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
import trio

from storage import Storage
from storage._company_changes import TrackedCatalog

from .conftest import WebHarness, issue_jwt, register
from .test_placement import by_owner, two_nodes


class Counter:
    """Counts the calls of the methods it wraps (on one object, by monkeypatch)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def wrap(self, monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> None:
        real: Callable[..., Awaitable[Any]] = getattr(target, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await real(*args, **kwargs)

        monkeypatch.setattr(target, name, counted)


def count_reads(monkeypatch: pytest.MonkeyPatch, storage: Storage) -> Counter:
    """Every PostgreSQL unit (the bridge crossings) or, in memory, every company and sync
    state read."""
    counter = Counter()
    if storage.pg is not None:
        counter.wrap(monkeypatch, storage.pg, "run")
        counter.wrap(monkeypatch, storage.pg, "transaction")
    else:
        for name in ("get", "find_by_api_key"):
            counter.wrap(monkeypatch, storage.companies, name)
        counter.wrap(monkeypatch, storage.catalog, "get_sync_state")
    return counter


async def status_of(web: WebHarness, company_id: int, headers: dict[str, str]) -> dict[str, Any]:
    response = await web.client.get(f"/marketplace/status/{company_id}", headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert isinstance(body, dict)
    return body


async def test_a_status_request_reads_only_the_credentials(
    any_web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    first = await status_of(web, cid, web.admin)  # starts the actor, which reads them once
    jwt = {"Authorization": f"Bearer {await issue_jwt(web, company)}"}
    reads = count_reads(monkeypatch, web.storage)
    for _ in range(5):
        assert await status_of(web, cid, web.admin) == first
    assert reads.calls == []  # the admin key is checked without storage
    for _ in range(5):
        assert await status_of(web, cid, company.key_headers) == first
    for _ in range(5):
        assert await status_of(web, cid, jwt) == first
    # One read per request: the sk_ key's lookup by hash, the JWT's credentials version.
    expected = ["run"] if web.storage.pg is not None else ["find_by_api_key"]
    assert reads.calls[:5] == expected * 5
    assert len(reads.calls) == 10
    assert first["assistant"] == {"enabled": True}
    assert first["sync"] == {"last_success_at": None, "last_error": None, "last_attempt_at": None}


async def test_a_sync_recorded_after_the_actor_read_it_shows_at_once(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    assert (await status_of(web, cid, web.admin))["sync"]["last_error"] is None
    failed = await web.storage.catalog.record_sync(cid, ok=False, error="YClientsUnavailable: 502")
    sync = (await status_of(web, cid, web.admin))["sync"]
    assert sync["last_error"] == "YClientsUnavailable: 502"
    assert failed.last_attempt_at is not None
    assert datetime.fromisoformat(sync["last_attempt_at"]) == failed.last_attempt_at
    fixed = await web.storage.catalog.record_sync(cid, ok=True)
    sync = (await status_of(web, cid, company.key_headers))["sync"]
    assert sync["last_error"] is None
    assert fixed.last_success_at is not None
    assert datetime.fromisoformat(sync["last_success_at"]) == fixed.last_success_at


async def test_a_copy_read_while_a_sync_was_being_recorded_is_not_kept(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status read while ``record_sync`` runs (before its write) must not be kept: once the
    write is stored, even before ``record_sync`` has returned, the status shows it."""
    company = await register(web)
    cid = company.company_id
    await status_of(web, cid, web.admin)
    catalog = web.storage.catalog
    assert isinstance(catalog, TrackedCatalog)
    real = catalog.inner.record_sync
    may_write, may_return, written = trio.Event(), trio.Event(), trio.Event()

    async def slow(company_id: int, *, ok: bool, error: str | None = None) -> Any:
        await may_write.wait()
        state = await real(company_id, ok=ok, error=error)
        written.set()
        await may_return.wait()  # stored, but the caller does not know yet
        return state

    monkeypatch.setattr(catalog.inner, "record_sync", slow)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: catalog.record_sync(cid, ok=False, error="timeout"))
        await trio.testing.wait_all_tasks_blocked()
        assert (await status_of(web, cid, web.admin))["sync"]["last_error"] is None  # not yet
        may_write.set()
        await written.wait()
        assert (await status_of(web, cid, web.admin))["sync"]["last_error"] == "timeout"
        may_return.set()
    assert (await status_of(web, cid, web.admin))["sync"]["last_error"] == "timeout"


async def test_a_status_for_no_such_company_starts_no_actor(web: WebHarness) -> None:
    response = await web.client.get("/marketplace/status/777", headers=web.admin)
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "company_not_found"
    assert web.node.registry.lookup(777) is None


async def test_in_cluster_mode_the_route_reads_what_another_process_wrote(
    settings: Any, database_url: str, redis_prefix: str
) -> None:
    """Node B switches the assistant off and records a sync of a salon whose actor runs in
    node A: A's status shows both (its actor does not vouch for them in cluster mode)."""
    async with two_nodes(settings, database_url, redis_prefix) as nodes:
        company = await register(nodes[0])
        cid = company.company_id
        a, b = by_owner(cid, *nodes)  # A: the node the placement gives the salon to
        await a.node.registry.activate(cid)
        before = await status_of(a, cid, company.key_headers)
        assert before["assistant"] == {"enabled": True}
        assert before["sync"]["last_error"] is None
        switched = await b.client.patch(
            f"/marketplace/company/{cid}/assistant", json={"enabled": False}, headers=b.admin
        )
        assert switched.status_code == 200
        await b.storage.catalog.record_sync(cid, ok=False, error="YClientsUnavailable: 503")
        after = await status_of(a, cid, company.key_headers)
        assert after["assistant"] == {"enabled": False}
        assert after["sync"]["last_error"] == "YClientsUnavailable: 503"
