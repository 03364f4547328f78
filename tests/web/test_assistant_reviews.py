"""A rating after a review request, through the app (simulated WhatsApp, in-memory storage,
the real understanding and decisions): stored in ``reviews``; answered with thanks and the
salon's review link as the salon chose (here: only after a high rating); a low rating (1–3)
tells the salon three ways — an audit entry, ``aiadmin_assistant_low_ratings_total`` on
``/metrics``, and ``last_rating`` with ``low: true`` in the conversations API.
"""

from __future__ import annotations

import datetime as dt
import re

import trio

from actors.assistant import Prompt, PromptKind
from actors.reminders import ReminderSettings
from tests.web.conftest import WebHarness, register
from tests.web.test_assistant_handoff import assistant_web, said
from tests.web.test_routes import link

LINK = "https://maps.example/romashka/reviews"
LOW, HIGH = "79005550001", "79005550002"  # the handoff harness's client, and a second one


async def low_ratings(web: WebHarness) -> float:
    response = await web.client.get("/metrics", headers=web.admin)
    assert response.status_code == 200
    text = await response.get_data(as_text=True)
    found = re.search(r"^aiadmin_assistant_low_ratings_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def say_as(web: WebHarness, company_id: int, phone: str, text: str) -> str:
    before = len([d for d in web.world.delivered(company_id) if d.to_phone == phone])
    response = await web.client.post(
        f"/dev/simulator/{company_id}/inbound",
        json={"phone": phone, "text": text},
        headers=web.admin,
    )
    assert response.status_code == 200, await response.get_json()
    with trio.fail_after(10):
        await web.world.wait_until(
            lambda: (
                len([d for d in web.world.delivered(company_id) if d.to_phone == phone]) > before
            )
        )
    return [d.text for d in web.world.delivered(company_id) if d.to_phone == phone][before]


def review_request(record_id: int) -> Prompt:
    now = dt.datetime.now(dt.UTC)
    return Prompt(
        PromptKind.REVIEW, record_id, 70_000 + record_id, now - dt.timedelta(hours=3), now
    )


async def test_a_low_rating_is_stored_and_tells_the_salon() -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        settings = ReminderSettings(review_link=LINK, review_link_to="high")
        await web.storage.reminder_settings.put(cid, settings.to_json())
        assistant = web.node.assistant
        assert assistant is not None
        assert await assistant.note_sent_prompt(cid, LOW, review_request(801))
        assert await assistant.note_sent_prompt(cid, HIGH, review_request(802))
        assert await low_ratings(web) == 0

        low = await say_as(web, cid, LOW, "2, долго ждала мастера")
        assert "жаль" in low and LINK not in low  # only after a high rating, as the salon chose
        high = await say_as(web, cid, HIGH, "⭐⭐⭐⭐⭐")
        assert LINK in high

        # stored
        stored = await web.storage.reviews.get(cid, 801)
        assert stored is not None
        assert (stored.rating, stored.comment, stored.phone) == (2, "2, долго ждала мастера", LOW)
        assert stored.visit_id == 70_801
        assert (await web.storage.reviews.get(cid, 802)).rating == 5  # type: ignore[union-attr]
        # the salon is told: the audit log, the metric, the conversations API
        events = [
            e for e in await web.storage.audit.recent(cid) if e.event_type == "assistant.low_rating"
        ]
        assert len(events) == 1
        assert events[0].data["rating"] == 2 and events[0].data["phone"] == LOW
        assert await low_ratings(web) == 1
        one = await web.client.get(
            f"/marketplace/conversations/{cid}?phone={LOW}", headers=company.key_headers
        )
        body = await one.get_json()
        assert one.status_code == 200, body
        assert body["last_rating"]["rating"] == 2 and body["last_rating"]["low"] is True
        assert body["last_rating"]["comment"] == "2, долго ждала мастера"
        listed = await web.client.get(
            f"/marketplace/conversations/{cid}", headers=company.key_headers
        )
        ratings = {c["phone"]: c["last_rating"] for c in (await listed.get_json())["conversations"]}
        assert ratings[LOW]["low"] is True and ratings[HIGH]["low"] is False

        # a comment in the next message is stored with the rating of the visit
        await say_as(web, cid, HIGH, "Игорь лучший мастер, спасибо")
        again = await web.storage.reviews.get(cid, 802)
        assert again is not None and (again.rating, again.comment) == (
            5,
            "Игорь лучший мастер, спасибо",
        )
        assert await low_ratings(web) == 1  # a comment is no second low rating
        assert said(web, cid) == [low]  # the handoff harness's client is LOW: one reply
