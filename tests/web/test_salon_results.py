"""The salon page's results (``GET /marketplace/salon/api/<id>/results``, issue 16) through the
app: a simulated client talks to the real assistant just before and just after the salon's
midnight (Asia/Yekaterinburg, UTC+5) and its answers and hand-over land on the salon's two
dates; bookings, reminders, a salon-written message and ratings are the writes their flows
make; every day of the span is there; the salon's cookie, the company's key and the admin key
read it, another salon's cookie or key does not; a bad ``days`` is 400 naming it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import trio

from actors import open_node
from actors.assistant import AssistantOptions
from actors.whatsapp import SimulatedWorld, open_gateway
from config import AssistantPolicy, SendPacing
from storage import PlannedReminder, open_storage
from tests.support.clock import FakeWallClock
from tests.web.conftest import (
    Registered,
    WebHarness,
    client_says,
    delivered_to,
    eventually,
    make_web_settings,
    register,
)
from tests.web.test_routes import link
from web._app import create_app
from web._salon_session import COOKIE_NAME, encode_session, new_session

CLIENT = "79005550001"
ZONE = "Asia/Yekaterinburg"
#: 23:59 on 14 January in the salon, and two minutes later 00:01 on the 15th (still UTC's 14th).
BEFORE_MIDNIGHT = datetime(2026, 1, 14, 18, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 1, 14, 19, 1, tzinfo=UTC)
#: When the salon opens its page: 17:00 on the 15th in the salon.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
WAIT = 10.0


@asynccontextmanager
async def results_web(wall: FakeWallClock) -> AsyncIterator[WebHarness]:
    """The app over a node with the assistant, storage on the test's wall clock."""
    settings = replace(
        make_web_settings(assistant=AssistantPolicy(wait=0.05)),
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
    )
    world = SimulatedWorld()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings, storage, gateway, rng=random.Random(5), assistant=AssistantOptions()
        ) as node,
    ):
        app = create_app(node)
        yield WebHarness(app, app.test_client(), node, settings, world)


def said(web: WebHarness, company_id: int) -> list[str]:
    return delivered_to(web, company_id, CLIENT)


async def say(web: WebHarness, company_id: int, text: str) -> None:
    """The simulated client writes; returns once the assistant's reply reached the phone."""
    await client_says(web, company_id, CLIENT, text, wait=WAIT)


async def results(
    web: WebHarness, company_id: int, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    response = await web.client.get(
        f"/marketplace/salon/api/{company_id}/results{query}", headers=headers
    )
    return response.status_code, await response.get_json()


def cookie(web: WebHarness, company_id: int) -> dict[str, str]:
    """The salon page's session cookie of ``company_id``, as its browser sends it."""
    value = encode_session(new_session(company_id), web.settings.jwt_secret)
    return {"Cookie": f"{COOKIE_NAME}={value}"}


async def salon(web: WebHarness) -> Registered:
    company = await register(web)
    await web.storage.companies.update(company.company_id, timezone=ZONE)
    return company


async def test_results_count_on_the_salons_days_across_its_midnight() -> None:
    wall = FakeWallClock(BEFORE_MIDNIGHT - timedelta(hours=1))
    async with results_web(wall) as web:
        company = await salon(web)
        cid = company.company_id
        await link(web, company)
        storage = web.storage

        # 23:59 in the salon: a question the assistant answers
        wall.now = BEFORE_MIDNIGHT
        await say(web, cid, "Где вы находитесь?")
        await storage.reviews.save_rating(cid, 701, None, CLIENT, 5, None)
        # 00:01, the salon's next day: the client asks for a person — an answer and a hand-over
        wall.now = AFTER_MIDNIGHT
        await say(web, cid, "Позовите администратора, пожалуйста")

        async def handed_over() -> bool:
            events = await storage.audit.recent(cid)
            return any(e.event_type == "assistant.handoff" for e in events)

        await eventually(handed_over)
        # what the booking, reminder and rating flows write, on the salon's 15th
        await storage.audit.append(cid, "assistant.booked", {"phone": CLIENT, "record_id": 702})
        await storage.audit.append(cid, "assistant.moved", {"phone": CLIENT, "record_id": 702})
        await storage.audit.append(
            cid, "assistant.visit_confirmed", {"phone": CLIENT, "record_id": 703}
        )
        visit = NOW + timedelta(days=1)
        await storage.reminders.plan(
            cid,
            [
                PlannedReminder(
                    record_id=703,
                    kind="day_before",
                    visit_time=visit,
                    due_at=AFTER_MIDNIGHT,
                    phone=CLIENT,
                )
            ],
        )
        (reminder,) = await storage.reminders.claim_due(AFTER_MIDNIGHT, "test", 60.0)
        assert reminder.message_id is not None
        await storage.messages.record_outbound(
            cid, CLIENT, "Напоминаем о визите", wa_message_id=reminder.message_id
        )
        assert await storage.reminders.mark_sent(cid, reminder.id, "test")
        # the salon wrote to the client from its page: not the assistant's answer
        await storage.messages.record_outbound(cid, CLIENT, "Это Анна", wa_message_id="3EB0FF01")
        await storage.audit.append(
            cid, "salon.message_sent", {"phone": CLIENT, "message_id": "3EB0FF01"}
        )
        await storage.reviews.save_rating(cid, 704, None, CLIENT, 2, "долго")
        await storage.reviews.save_rating(cid, 705, None, CLIENT, 4, None)

        wall.now = NOW
        status, body = await results(web, cid, cookie(web, cid), "?days=2")
        assert status == 200, body
        assert body["success"] is True and body["company_id"] == cid
        assert body["timezone"] == ZONE
        zero = dict.fromkeys(
            [
                "answered",
                "booked",
                "moved",
                "cancelled",
                "reminders_sent",
                "reminders_confirmed",
                "handed_over",
                "ratings",
            ],
            0,
        )
        assert body["days"] == [
            {**zero, "date": "2026-01-14", "answered": 1, "ratings": 1},
            {
                **zero,
                "date": "2026-01-15",
                "answered": 1,
                "booked": 1,
                "moved": 1,
                "reminders_sent": 1,
                "reminders_confirmed": 1,
                "handed_over": 1,
                "ratings": 2,
            },
        ]
        assert body["totals"] == {
            **zero,
            "answered": 2,
            "booked": 1,
            "moved": 1,
            "reminders_sent": 1,
            "reminders_confirmed": 1,
            "handed_over": 1,
            "ratings": 3,
        }
        assert body["ratings"] == {
            "average": 3.67,
            "count": 3,
            "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
        }
        assert body["answered_from"] is None  # messages are kept 30 days: both days complete

        # the default span: the last 30 of the salon's days, oldest first, zeros included
        status, body = await results(web, cid, company.key_headers)
        assert status == 200, body
        dates = [d["date"] for d in body["days"]]
        assert (
            dates == [(date(2026, 1, 15) - timedelta(days=n)).isoformat() for n in range(30)][::-1]
        )
        assert body["days"][0] == {**zero, "date": "2025-12-17"}
        assert body["totals"]["answered"] == 2
        assert body["answered_from"] is None  # messages of the last 30 days are all kept
        # 90 days: messages older than 30 days are deleted (AIADMIN_RETENTION_DAYS), so the
        # answers are complete from the 17th of December (the cutoff falls in the 16th)
        status, body = await results(web, cid, web.admin, "?days=90")
        assert status == 200 and len(body["days"]) == 90
        assert body["answered_from"] == "2025-12-17"


async def test_only_the_salon_and_its_operators_read_it_and_days_is_checked() -> None:
    wall = FakeWallClock(NOW)
    async with results_web(wall) as web:
        a, b = await salon(web), await salon(web)
        for headers in (cookie(web, a.company_id), a.key_headers, web.admin):
            status, body = await results(web, a.company_id, headers)
            assert status == 200, body
        assert (await results(web, a.company_id, {}))[0] == 401
        for other in (cookie(web, b.company_id), b.key_headers):
            status, body = await results(web, a.company_id, other)
            assert status == 403, body
            assert body["success"] is False
        for bad in ("0", "91", "-1", "1.5", "abc", "", "%D9%A3", "1e1"):
            status, body = await results(web, a.company_id, a.key_headers, f"?days={bad}")
            assert status == 400, (bad, body)
            assert body["error"]["code"] == "invalid_field"
            assert "days" in body["error"]["message"]
        assert (await results(web, 999_999, web.admin))[0] == 404
        status, _ = await results(web, a.company_id, a.key_headers, "?days=1")
        assert status == 200


async def test_the_openapi_document_describes_it() -> None:
    wall = FakeWallClock(NOW)
    async with results_web(wall) as web:
        response = await web.client.get("/openapi.json")
        spec = await response.get_json()
        op = spec["paths"]["/marketplace/salon/api/{companyId}/results"]["get"]
        assert {"SalonSession": []} in op["security"]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(schema["required"]) >= {"days", "totals", "ratings"}
        company = await salon(web)
        status, body = await results(web, company.company_id, company.key_headers, "?days=7")
        assert status == 200 and len(body["days"]) == 7
        assert set(body) == set(schema["properties"])
