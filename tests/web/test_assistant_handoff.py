"""A chat handed over to a person tells the salon three ways — an audit entry, the metric
``aiadmin_assistant_handoffs_total`` on ``/metrics``, and the conversations API showing
``handoff`` and ``needs_person`` — with the real understanding and decisions, through the app
(simulated WhatsApp, in-memory storage, no YClients: nothing here needs it). Then the
assistant stays silent until the salon gives the chat back through the API.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import trio

from actors import open_node
from actors.assistant import AssistantOptions
from actors.assistant import _templates as t
from actors.whatsapp import SimulatedWorld, open_gateway
from config import AssistantPolicy, SendPacing
from tests.web.conftest import (
    WebHarness,
    client_says,
    delivered_to,
    make_web_settings,
    open_memory_storage,
    register,
)
from tests.web.test_routes import link
from web._app import create_app

CLIENT = "79005550001"
WAIT = 10.0


@asynccontextmanager
async def assistant_web() -> AsyncIterator[WebHarness]:
    settings = replace(
        make_web_settings(assistant=AssistantPolicy(wait=0.05)),
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
    )
    world = SimulatedWorld()
    async with (
        open_memory_storage() as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings, storage, gateway, rng=random.Random(3), assistant=AssistantOptions()
        ) as node,
    ):
        app = create_app(node)
        yield WebHarness(app, app.test_client(), node, settings, world)


def said(web: WebHarness, company_id: int) -> list[str]:
    return delivered_to(web, company_id, CLIENT)


async def say(web: WebHarness, company_id: int, text: str) -> str:
    return await client_says(web, company_id, CLIENT, text, wait=WAIT)


async def handoffs(web: WebHarness, reason: str) -> float:
    """The counter's value on ``/metrics`` for ``reason`` (0 when not shown yet)."""
    response = await web.client.get("/metrics", headers=web.admin)
    assert response.status_code == 200
    text = await response.get_data(as_text=True)
    found = re.search(
        rf'^aiadmin_assistant_handoffs_total\{{reason="{reason}"\}} (\S+)$', text, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (["Позовите администратора, пожалуйста"], "asked"),
        (["ывфа прол джэ", "щшгн ролдж"], "not_understood"),
    ],
    ids=["asked-for-a-person", "not-understood-twice"],
)
async def test_a_handoff_tells_the_salon_and_silences_the_assistant(
    messages: list[str], reason: str
) -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        assert await handoffs(web, reason) == 0
        for text in messages:
            reply = await say(web, cid, text)
        assert t.handoff(False) in reply, reply

        # the conversations API: this chat needs a person
        one = await web.client.get(
            f"/marketplace/conversations/{cid}?phone={CLIENT}", headers=company.key_headers
        )
        body = await one.get_json()
        assert one.status_code == 200, body
        assert (body["mode"], body["needs_person"]) == ("handoff", True)
        assert body["mode_until"] is not None
        waiting = await web.client.get(
            f"/marketplace/conversations/{cid}?needs_person=true", headers=company.key_headers
        )
        listed = await waiting.get_json()
        assert [c["phone"] for c in listed["conversations"]] == [CLIENT]
        # the audit log and the metric
        events = [
            e for e in await web.storage.audit.recent(cid) if e.event_type == "assistant.handoff"
        ]
        assert events and all(e.data.get("phone") == CLIENT for e in events)
        assert any(e.data.get("reason") == reason for e in events)
        assert await handoffs(web, reason) == 1

        # silent while a person answers ...
        count = len(said(web, cid))
        response = await web.client.post(
            f"/dev/simulator/{cid}/inbound",
            json={"phone": CLIENT, "text": "алло, есть кто?"},
            headers=web.admin,
        )
        assert response.status_code == 200
        await trio.sleep(1.0)
        assert len(said(web, cid)) == count
        # ... until the salon gives the chat back
        back = await web.client.post(
            f"/marketplace/conversations/{cid}/mode",
            json={"phone": CLIENT, "mode": "assistant"},
            headers=company.key_headers,
        )
        assert back.status_code == 200, await back.get_json()
        # (a question the salon card answers: this salon's services were never synced, and a
        # price question would rightly go to a person again)
        assert await say(web, cid, "Где вы находитесь?")
        after = await web.client.get(
            f"/marketplace/conversations/{cid}?phone={CLIENT}", headers=web.admin
        )
        assert (await after.get_json())["needs_person"] is False
