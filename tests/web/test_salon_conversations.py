"""The salon page's reading API (issue 16): the overview, the chats (newest first, searched by
phone or name, filtered to those waiting for a person, paged) with each one's last message,
and one chat's transcript — the messages as the client saw them and the assistant's actions
marked, from a real dialogue with the assistant through the simulated WhatsApp and the fake
YClients; the salon's own messages marked ``salon``; 400/404 with reasons; another salon's
cookie 403."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
import trio

from actors import open_node
from actors.assistant import AssistantOptions
from actors.assistant._format import format_day
from actors.reminders._planner import DEFAULT_ZONE, salon_zone
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import RetryPolicy, YClientsClient, sync_company
from config import AssistantPolicy, SendPacing
from storage import ConversationMode, SalonService, SalonStaff
from tests.actors.assistant.example_catalog import EXAMPLE_CATALOG, ROMASHKA
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients
from tests.web.conftest import (
    JWT_SECRET,
    WebHarness,
    client_says,
    make_web_settings,
    open_memory_storage,
    register,
)
from tests.web.test_openapi_complete import fetch_document, schema_of
from tests.web.test_routes import error_of, link
from web._app import create_app
from web._salon_session import COOKIE_NAME, csrf_token, encode_session, new_session
from web._salon_transcript import SALON_MESSAGE_EVENT

API = "/marketplace/salon/api"
ANNA, BORIS, CLARA = "79005550001", "79005550002", "79161230003"
T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def cookie(company_id: int) -> dict[str, str]:
    """Headers carrying a fresh salon page session for ``company_id``."""
    return {"Cookie": f"{COOKIE_NAME}={encode_session(new_session(company_id), JWT_SECRET)}"}


def list_path(company_id: int, **query: Any) -> str:
    path = f"{API}/{company_id}/conversations"
    return path + ("?" + urlencode(query) if query else "")


async def ok(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert response.status_code == 200, body
    assert isinstance(body, dict) and body["success"] is True
    return body


async def chat(
    web: WebHarness, company_id: int, phone: str, minutes: int, name: str | None = None
) -> None:
    """A conversation as the assistant leaves it, its last message ``minutes`` after T0."""
    await web.storage.conversations.save(
        company_id,
        phone,
        state={},
        expected_version=0,
        client_name=name,
        last_message_at=T0 + timedelta(minutes=minutes),
    )


# ------------------------------------------------------------------------------ the list


async def test_the_list_is_newest_first_with_each_chats_last_message(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 1, "Анна Петрова")
    await chat(web, cid, BORIS, 3, "Борис")
    await chat(web, cid, CLARA, 2)
    await web.storage.messages.record_inbound(cid, "wa-1", ANNA, "Здравствуйте")
    await web.storage.messages.record_outbound(cid, ANNA, "Добрый день! <b>Чем</b> помочь?")
    await web.storage.messages.record_inbound(cid, "wa-2", BORIS, "<script>alert(1)</script>")

    body = await ok(await web.client.get(list_path(cid), headers=cookie(cid)))
    listed = body["conversations"]
    assert [c["phone"] for c in listed] == [BORIS, CLARA, ANNA]
    assert body["next_cursor"] is None
    by_phone = {c["phone"]: c for c in listed}
    # the client's words come back as data, as written (the page escapes them)
    assert (by_phone[BORIS]["last_text"], by_phone[BORIS]["last_direction"]) == (
        "<script>alert(1)</script>",
        "in",
    )
    assert (by_phone[ANNA]["last_text"], by_phone[ANNA]["last_direction"]) == (
        "Добрый день! <b>Чем</b> помочь?",
        "out",
    )
    assert (by_phone[CLARA]["last_text"], by_phone[CLARA]["last_direction"]) == (None, None)
    assert by_phone[ANNA]["client_name"] == "Анна Петрова"
    assert by_phone[ANNA]["mode"] == "assistant" and by_phone[ANNA]["needs_person"] is False
    # the same list for the partner's own credentials
    keyed = await ok(await web.client.get(list_path(cid), headers=company.key_headers))
    assert keyed["conversations"] == listed


async def test_search_by_phone_part_and_by_name_and_the_needs_person_filter(
    any_web: WebHarness,
) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 1, "Анна Петрова")
    await chat(web, cid, BORIS, 2, "Борис")
    await chat(web, cid, CLARA, 3)
    await web.storage.conversations.set_mode(
        cid, BORIS, ConversationMode.HANDOFF, needs_person=True
    )

    async def phones(**query: Any) -> list[str]:
        body = await ok(await web.client.get(list_path(cid, **query), headers=cookie(cid)))
        return [c["phone"] for c in body["conversations"]]

    assert await phones(q="анна") == [ANNA]
    assert await phones(q="ПЕТРОВА") == [ANNA]
    assert await phones(q="916") == [CLARA]
    assert await phones(q="555") == [BORIS, ANNA]
    assert await phones(q="Жанна") == []
    assert await phones(needs_person="true") == [BORIS]
    assert await phones(needs_person="false") == [CLARA, ANNA]
    assert await phones(needs_person="true", q="анна") == []
    overview = await ok(await web.client.get(f"{API}/{cid}/overview", headers=cookie(cid)))
    assert overview["needs_person"] == 1


async def test_the_cursor_pages_through_every_chat_once(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    phones = [f"7900555{n:04d}" for n in range(7)]
    for n, phone in enumerate(phones):
        await chat(web, cid, phone, n)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = await ok(await web.client.get(list_path(cid, **query), headers=cookie(cid)))
        pages += 1
        assert len(body["conversations"]) <= 3
        seen += [c["phone"] for c in body["conversations"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(reversed(phones))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"needs_person": "yes"}, "needs_person"),
        ({"q": "x" * 256}, "q"),
    ],
)
async def test_the_list_refuses_bad_parameters(
    web: WebHarness, query: dict[str, Any], field: str
) -> None:
    company = await register(web)
    cid = company.company_id
    error = await error_of(
        await web.client.get(list_path(cid, **query), headers=cookie(cid)), 400, "invalid_field"
    )
    assert field in error["message"]


# ------------------------------------------------------------------------------ one chat


async def test_an_unknown_phone_is_404_and_a_bad_one_400(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await error_of(
        await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=cookie(cid)),
        404,
        "conversation_not_found",
    )
    for bad in ("12", "not-a-phone", "7" * 40):
        error = await error_of(
            await web.client.get(f"{API}/{cid}/conversations/{bad}", headers=cookie(cid)),
            400,
            "invalid_field",
        )
        assert "phone" in error["message"]
    await error_of(
        await web.client.get(f"{API}/999999/conversations/{ANNA}", headers=web.admin),
        404,
        "company_not_found",
    )


async def test_the_salons_own_messages_are_marked_salon(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 0, "Анна")
    await web.storage.messages.record_inbound(cid, "wa-1", ANNA, "Есть кто живой?")
    assistant = await web.storage.messages.record_outbound(
        cid, ANNA, "Сейчас позову человека", wa_message_id="3EB0ASSIST01"
    )
    await web.storage.audit.append(
        cid, "conversation_mode_set", {"phone": ANNA, "mode": "handoff", "by": "salon_cookie"}
    )
    # the page's message: queued with its WhatsApp id, which the audit entry names
    await web.storage.messages.record_outbound(
        cid, ANNA, "Здравствуйте, это Мария", wa_message_id="3EB0SALON0001"
    )
    await web.storage.audit.append(
        cid, SALON_MESSAGE_EVENT, {"phone": ANNA, "message_id": "3EB0SALON0001"}
    )
    # another client's salon message does not mark this one's
    await web.storage.audit.append(
        cid, SALON_MESSAGE_EVENT, {"phone": BORIS, "message_id": assistant.wa_message_id}
    )
    await web.storage.audit.append(
        cid, "conversation_mode_set", {"phone": ANNA, "mode": "assistant", "by": "salon_cookie"}
    )

    body = await ok(await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=cookie(cid)))
    assert body["conversation"]["phone"] == ANNA
    shown = [(i["kind"], i.get("by") or i["action"], i["text"]) for i in body["items"]]
    assert shown == [
        ("message", "client", "Есть кто живой?"),
        ("message", "assistant", "Сейчас позову человека"),
        ("action", "taken_over", "администратор взял чат"),
        ("message", "salon", "Здравствуйте, это Мария"),
        ("action", "given_back", "администратор вернул чат ассистенту"),
    ]
    message = body["items"][3]
    assert message["direction"] == "out" and message["status"] == "queued"
    assert datetime.fromisoformat(message["at"]).tzinfo is not None


async def test_the_transcript_is_the_latest_items(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 0)
    for n in range(205):
        await web.storage.messages.record_inbound(cid, f"wa-{n}", ANNA, f"сообщение {n}")
    body = await ok(await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=web.admin))
    texts = [i["text"] for i in body["items"]]
    assert len(texts) == 200
    assert texts[0] == "сообщение 5" and texts[-1] == "сообщение 204"


# ------------------------------------------------------------------------------ auth


async def test_another_salons_cookie_key_or_token_is_forbidden(web: WebHarness) -> None:
    mine = await register(web)
    other = await register(web)
    cid = mine.company_id
    await chat(web, cid, ANNA, 0)
    for path in (
        f"{API}/{cid}/overview",
        list_path(cid),
        f"{API}/{cid}/conversations/{ANNA}",
    ):
        for headers in (cookie(other.company_id), other.key_headers):
            await error_of(await web.client.get(path, headers=headers), 403, "forbidden")
        await error_of(await web.client.get(path), 401, None)
        await ok(await web.client.get(path, headers=cookie(cid)))


# ------------------------------------------------------------------------------ overview


async def test_the_overview_shows_the_salon_and_its_whatsapp(web: WebHarness) -> None:
    company = await register(web, title="Ромашка")
    cid = company.company_id
    before = await ok(await web.client.get(f"{API}/{cid}/overview", headers=cookie(cid)))
    assert (before["company_id"], before["salon_id"], before["title"]) == (
        cid,
        company.salon_id,
        "Ромашка",
    )
    assert before["whatsapp"]["connected"] is False
    assert before["whatsapp"]["status"] == "disconnected"
    assert before["needs_person"] == 0
    assert isinstance(before["assistant_enabled"], bool)

    await link(web, company)
    after = await ok(await web.client.get(f"{API}/{cid}/overview", headers=cookie(cid)))
    assert after["whatsapp"]["status"] == "connected" and after["whatsapp"]["connected"] is True
    assert after["whatsapp"]["phone"] and after["whatsapp"]["connected_at"]
    assert after["whatsapp"]["last_error"] is None

    for enabled in (not after["assistant_enabled"], after["assistant_enabled"]):
        await ok(
            await web.client.post(
                f"/marketplace/company/{cid}/assistant",
                json={"enabled": enabled},
                headers=company.key_headers,
            )
        )
        again = await ok(await web.client.get(f"{API}/{cid}/overview", headers=cookie(cid)))
        assert again["assistant_enabled"] is enabled


async def test_the_overview_gives_the_salons_own_time_zone(web: WebHarness) -> None:
    """The page shows times on the salon's clock: the overview names its zone (the YClients
    card's; the default when the card's is unknown)."""
    company = await register(web)
    cid = company.company_id
    for stored, shown in (
        ("Asia/Yekaterinburg", "Asia/Yekaterinburg"),
        ("America/New_York", "America/New_York"),
        ("Mars/Olympus_Mons", DEFAULT_ZONE),
    ):
        await web.storage.companies.update(cid, timezone=stored)
        body = await ok(await web.client.get(f"{API}/{cid}/overview", headers=cookie(cid)))
        assert body["timezone"] == shown, stored


async def test_the_answers_fit_their_documented_schemas(web: WebHarness) -> None:
    document = await fetch_document(web)
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 0, "Анна")
    await web.storage.messages.record_inbound(cid, "wa-1", ANNA, "Привет")
    await web.storage.audit.append(
        cid, "assistant.handoff", {"phone": ANNA, "reason": "asked", "until": T0.isoformat()}
    )
    for template, url in (
        ("/overview", f"/{cid}/overview"),
        ("/conversations", f"/{cid}/conversations"),
        ("/conversations/{phone}", f"/{cid}/conversations/{ANNA}"),
    ):
        path = f"{API}/{{companyId}}{template}"
        operation = document["paths"][path]["get"]
        assert operation["security"][0] == {"SalonSession": []}
        body = await ok(await web.client.get(API + url, headers=cookie(cid)))
        jsonschema.validate(body, schema_of(document, "get", path, 200))


# ------------------------------------------------------------------------------ a real dialogue


@asynccontextmanager
async def booking_web(fake: FakeYClients) -> AsyncIterator[WebHarness]:
    """The app over a node whose assistant books in the fake YClients (real clocks: the fake
    answers over loopback sockets)."""
    settings = replace(
        make_web_settings(assistant=AssistantPolicy(wait=0.05)),
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
    )
    world = SimulatedWorld()
    async with (
        YClientsClient(
            fake.base_url,
            PARTNER_TOKEN,
            timeout=2.0,
            retry=RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1),
        ) as client,
        open_memory_storage() as storage,
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings,
            storage,
            gateway,
            rng=random.Random(3),
            assistant=AssistantOptions(yclients=client),
        ) as node,
    ):
        app = create_app(node)
        harness = WebHarness(app, app.test_client(), node, settings, world)
        harness.yclients = client  # type: ignore[attr-defined]
        yield harness


async def say(web: WebHarness, company_id: int, text: str) -> str:
    """The client writes ``text`` through the simulated phone; the assistant's next reply."""
    return await client_says(web, company_id, ANNA, text, wait=20)


async def test_a_real_booking_shows_in_the_transcript_as_the_client_saw_it() -> None:
    zone = salon_zone("Europe/Moscow")
    today = dt.datetime.now(zone).date()
    now = dt.datetime.combine(today, dt.time(9), tzinfo=zone)
    async with (
        running_fake_yclients(rate_limits=None, catalog=EXAMPLE_CATALOG, now=now) as fake,
        booking_web(fake) as web,
    ):
        company = await register(web, salon_id=ROMASHKA)
        cid = company.company_id
        stored = await web.storage.companies.get(cid)
        assert stored is not None
        synced = await sync_company(web.storage, web.yclients, stored)  # type: ignore[attr-defined]
        assert synced.ok, synced.error
        await link(web, company)

        said = [await say(web, cid, "Мужская стрижка к Игорю послезавтра в 15:00, Тимур")]
        if "зовут" in said[-1]:
            said.append(await say(web, cid, "Тимур"))
        assert "Записать" in said[-1], said
        said.append(await say(web, cid, "да"))
        [record] = [r for r in fake.live_records(ROMASHKA) if r["api_id"]]
        visit = dt.datetime.fromisoformat(str(record["datetime"])).astimezone(
            salon_zone((await web.storage.companies.get(cid)).timezone)  # type: ignore[union-attr]
        )

        body = await ok(
            await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=cookie(cid))
        )
    items = body["items"]
    assert body["conversation"]["client_name"] == "Тимур"
    messages = [(i["direction"], i["by"], i["text"]) for i in items if i["kind"] == "message"]
    sent = [text for direction, _, text in messages if direction == "out"]
    assert sent == said  # every reply, as the client got it, in order
    assert all(by == "assistant" for direction, by, _ in messages if direction == "out")
    assert [text for direction, _, text in messages if direction == "in"][-1] == "да"
    [booked] = [i for i in items if i["kind"] == "action"]
    assert booked["action"] == "booked"
    assert booked["text"] == (
        f"записал на {format_day(visit.date())} в 15:00, Стрижка мужская, мастер Игорь"
    )
    # marked where it happened: after the client's "да" and the reply that told the client
    kinds = [(i["kind"], i.get("direction"), i["text"]) for i in items]
    assert kinds[-3:] == [
        ("message", "in", "да"),
        ("message", "out", said[-1]),
        ("action", None, booked["text"]),
    ]
    times = [datetime.fromisoformat(i["at"]) for i in items]
    assert times == sorted(times)


async def test_each_action_reads_as_a_short_russian_line_in_the_salons_time(
    web: WebHarness,
) -> None:
    company = await register(web)
    cid = company.company_id
    await web.storage.companies.update(cid, timezone="Asia/Yekaterinburg")  # UTC+5
    await chat(web, cid, ANNA, 0)
    visit = "2026-12-11T06:00:00+00:00"  # 11:00 in Yekaterinburg
    later = "2026-12-12T10:30:00+00:00"
    until = "2026-12-12T12:00:00+00:00"
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "assistant.booked",
            {"start": visit, "services": ["Мужская стрижка"], "master": "Игорь", "record_id": 7},
        ),
        ("assistant.moved", {"from": visit, "start": later, "services": ["Мужская стрижка"]}),
        ("assistant.cancelled", {"start": later, "services": ["Мужская стрижка", "Борода"]}),
        # a handoff is audited twice (the stored mode, the decision): shown once, the fuller
        ("assistant.handoff", {"mode": "handoff", "reason": "asked", "until": until}),
        ("assistant.handoff", {"reason": "asked"}),
        ("assistant.assistant", {"mode": "assistant", "reason": "expired"}),
        ("assistant.staff_silence", {"until": until}),
        ("assistant.visit_confirmed", {"record_id": 7, "marked": True, "start": visit}),
        ("assistant.rated", {"record_id": 7, "rating": 2}),
        ("assistant.low_rating", {"record_id": 7, "rating": 2, "comment": None}),
        ("assistant.booking_pending", {"api_id": "aia-1"}),  # not shown
        ("assistant.opted_out", {"mode": "opted_out", "reason": "client asked"}),
        ("assistant.opted_out", {}),
    ]
    for kind, data in events:
        await web.storage.audit.append(cid, kind, {**data, "phone": ANNA})
    body = await ok(await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=cookie(cid)))
    assert [(i["action"], i["text"]) for i in body["items"]] == [
        ("booked", "записал на пт 11 декабря в 11:00, Мужская стрижка, мастер Игорь"),
        (
            "moved",
            "перенёс запись с пт 11 декабря в 11:00 на сб 12 декабря в 15:30, Мужская стрижка",
        ),
        ("cancelled", "отменил запись на сб 12 декабря в 15:30, Мужская стрижка, Борода"),
        (
            "handoff",
            "передал администратору: клиент попросил администратора; ассистент молчит до "
            "сб 12 декабря 17:00",
        ),
        ("given_back", "ассистент снова отвечает: время передачи администратору вышло"),
        (
            "taken_over",
            "администратор пишет с телефона салона — ассистент молчит до сб 12 декабря 17:00",
        ),
        (
            "visit_confirmed",
            "клиент подтвердил визит на пт 11 декабря в 11:00, отмечено в YClients",
        ),
        ("rating", "оценка 2 из 5 — низкая, салону сообщено"),
        ("opted_out", "клиент попросил больше не писать — ассистент молчит"),
    ]


async def test_an_older_entry_without_names_takes_them_from_the_catalog(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA, 0)
    await web.storage.catalog.replace_catalog(
        cid,
        None,
        [SalonService(501, "Маникюр с покрытием гель-лак")],
        [SalonStaff(61, "Алина")],
    )
    await web.storage.audit.append(
        cid,
        "assistant.booked",
        {"phone": ANNA, "start": "2026-03-16T10:00:00+00:00", "service_ids": [501], "staff_id": 61},
    )
    await web.storage.audit.append(cid, "assistant.cancelled", {"phone": ANNA, "record_id": 9})
    body = await ok(await web.client.get(f"{API}/{cid}/conversations/{ANNA}", headers=cookie(cid)))
    assert [i["text"] for i in body["items"]] == [
        "записал на пн 16 марта в 13:00, Маникюр с покрытием гель-лак, мастер Алина",
        "отменил запись",
    ]


async def test_what_the_salon_does_from_its_page_shows_in_the_transcript(web: WebHarness) -> None:
    """Through the page's own routes (cookie + CSRF): take the chat over, write to the client,
    give it back — the message reaches the simulated phone and the transcript marks it
    ``salon``, between the two actions."""
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    await chat(web, cid, ANNA, 0, "Анна")
    await web.storage.messages.record_inbound(cid, "wa-in-1", ANNA, "Можно живого человека?")
    session = new_session(cid)
    headers = {
        "Cookie": f"{COOKIE_NAME}={encode_session(session, JWT_SECRET)}",
        "X-CSRF-Token": csrf_token(session.session_id, JWT_SECRET),
    }
    base = f"{API}/{cid}/conversations/{ANNA}"
    await ok(await web.client.post(f"{base}/takeover", json={}, headers=headers))
    sent = await web.client.post(
        f"{base}/messages",
        json={"text": "Здравствуйте, это Мария <i>администратор</i>"},
        headers=headers,
    )
    assert sent.status_code == 202, await sent.get_json()
    with trio.fail_after(10):
        await web.world.wait_until(
            lambda: any(d.to_phone == ANNA for d in web.world.delivered(cid))
        )
    await ok(await web.client.post(f"{base}/giveback", json={}, headers=headers))

    body = await ok(await web.client.get(base, headers=cookie(cid)))
    shown = [(i["kind"], i.get("by") or i["action"], i["text"]) for i in body["items"]]
    assert shown == [
        ("message", "client", "Можно живого человека?"),
        ("action", "taken_over", shown[1][2]),
        ("message", "salon", "Здравствуйте, это Мария <i>администратор</i>"),
        ("action", "given_back", "администратор вернул чат ассистенту"),
    ]
    assert shown[1][2].startswith("администратор взял чат до ")
    assert body["conversation"]["mode"] == "assistant"
