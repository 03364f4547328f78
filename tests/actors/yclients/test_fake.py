"""The fake YClients itself: its limits, faults and webhooks behave as the tests rely on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from actors.yclients import webhook_dedupe_key
from tests.fakes.yclients import (
    ACCEPT,
    APPLICATION_ID,
    LOTOS_ID,
    PARTNER_TOKEN,
    FakeYClients,
    RecordedRequest,
    running_fake_yclients,
)

HEADERS = {"Authorization": f"Bearer {PARTNER_TOKEN}", "Accept": ACCEPT}


async def test_more_than_5_requests_in_a_second_get_429_with_retry_after() -> None:
    with trio.fail_after(10):
        async with (
            running_fake_yclients() as fake,
            httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS) as http,
        ):
            statuses = [(await http.get(f"/api/v1/company/{LOTOS_ID}")) for _ in range(6)]
    assert [r.status_code for r in statuses[:5]] == [200] * 5
    refused = statuses[5]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["meta"]["message"] == "Превышен лимит запросов"
    assert [r.status for r in fake.requests] == [200] * 5 + [429]
    assert fake.max_requests_in_window(1.0) == 6  # it counts what arrived, refused included


def test_window_count_is_sliding() -> None:
    fake = FakeYClients()
    for t in (0.0, 0.5, 0.99, 1.0, 1.4, 3.0):
        fake.requests.append(_rec(t))
    assert fake.max_requests_in_window(1.0) == 4  # 0.5, 0.99, 1.0, 1.4
    assert fake.max_requests_in_window(0.5) == 3  # 0.99, 1.0, 1.4


def _rec(t: float) -> RecordedRequest:
    return RecordedRequest("GET", "/", {}, {}, b"", None, {}, t, "127.0.0.1")


async def test_faults_count_down_and_match_method_and_pattern(fake: FakeYClients) -> None:
    fake.fail("/api/v1/company/*", 500, times=2, method="GET")
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS) as http:
        codes = [(await http.get(f"/api/v1/company/{LOTOS_ID}")).status_code for _ in range(3)]
        other = await http.get(f"/api/v1/book_staff/{LOTOS_ID}")
    assert codes == [500, 500, 200]
    assert other.status_code == 200
    assert fake.faults[0].hits == 2


async def test_missing_accept_header_is_refused(fake: FakeYClients) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        response = await http.get(
            f"/api/v1/company/{LOTOS_ID}", headers={"Authorization": HEADERS["Authorization"]}
        )
    assert response.status_code == 406


async def test_browser_redirect_callback_activates_and_redirects(fake: FakeYClients) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        response = await http.post(
            "/marketplace/partner/callback/redirect",
            data={
                "salon_id": str(LOTOS_ID),
                "application_id": str(APPLICATION_ID),
                "api_key": "sk_from_browser",
                "webhook_urls[]": ["https://ai-admin.app/wh/1"],
            },
        )
    assert response.status_code == 301
    assert response.headers["location"].startswith("/marketplace/installed")
    assert fake.installation(LOTOS_ID)["webhook_urls"] == ["https://ai-admin.app/wh/1"]


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny server on loopback that records JSON bodies posted to it and answers 200."""
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append(json.loads(body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, app, config)
        yield binds[0], received
        nursery.cancel_scope.cancel()


async def test_lifecycle_and_record_webhooks_reach_our_url(fake: FakeYClients) -> None:
    with trio.fail_after(10):
        async with receiver() as (url, received):
            sent = await fake.send_lifecycle_webhook(
                f"{url}/hook", salon_id=LOTOS_ID, event="freeze"
            )
            assert sent.status == 200
            record = await fake.send_record_webhook(
                f"{url}/hook",
                company_id=LOTOS_ID,
                record_id=5,
                status="update",
                data={"id": 5, "last_change_date": "2030-06-04T12:00:00+03:00"},
            )
            assert record.status == 200
    assert received[0] == {
        "salon_id": LOTOS_ID,
        "application_id": APPLICATION_ID,
        "event": "freeze",
        "partner_token": PARTNER_TOKEN,
    }
    assert fake.installation(LOTOS_ID)["status"] == "freezed"
    assert received[1]["resource"] == "record" and received[1]["status"] == "update"
    # The bodies are what the dedupe helper expects.
    key = webhook_dedupe_key(received[1], datetime.now(UTC), source="record")
    assert key.endswith("20300604T090000.000000Z")


async def test_webhook_to_a_dead_url_is_recorded_not_raised(fake: FakeYClients) -> None:
    sent = await fake.send_lifecycle_webhook(
        "http://127.0.0.1:9/hook", salon_id=LOTOS_ID, event="uninstall", timeout=1.0
    )
    assert sent.status is None and sent.error is not None
    assert fake.sent_webhooks == [sent]


async def test_hung_request_ends_when_the_client_gives_up(fake: FakeYClients) -> None:
    fake.hang("/api/v1/company/*")
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"/api/v1/company/{LOTOS_ID}")
    with trio.fail_after(5):
        await fake.wait_until(lambda: fake.requests[0].outcome == "disconnected")
    assert fake.requests[0].status is None


async def test_released_request_is_answered(fake: FakeYClients) -> None:
    fake.hang("/api/v1/company/*")
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS) as http:
        async with trio.open_nursery() as nursery:
            responses: list[httpx.Response] = []

            async def call() -> None:
                responses.append(await http.get(f"/api/v1/company/{LOTOS_ID}"))

            nursery.start_soon(call)
            with trio.fail_after(5):
                await fake.wait_until(lambda: [r.outcome for r in fake.requests] == ["hung"])
            fake.release_hung()
    assert responses[0].status_code == 200
    assert fake.requests[0].outcome == "answered"
