"""The salon page's settings (issue 16), through the app with the page's cookie: the assistant
switch, reminders and review requests, the salon's own words for its services — checked as a
whole with Russian refusals naming the field, nothing stored on a refusal; template previews;
the reminder plan following a changed reminder time; and a word set on the page understood by
the assistant in a chat on the simulated WhatsApp, surviving a catalog sync."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors.reminders import ReminderSettings
from config import Settings
from storage import SalonService, open_storage
from tests.actors.reminders.test_planner import NOW, ZONE, local
from tests.support.clock import FakeWallClock
from tests.web.conftest import WebHarness, register
from tests.web.test_assistant_handoff import assistant_web, say
from tests.web.test_forwarding import register as cluster_register
from tests.web.test_forwarding import roles, two_served_nodes
from tests.web.test_reminder_replan import open_reminder_web, replanner, visits
from tests.web.test_routes import link
from tests.web.test_salon_actions import API, salon

NAILS = SalonService(101, "Маникюр с покрытием гель-лак", price_min=2500, duration=5400)
CUT = SalonService(102, "Стрижка женская", price_min=1800, duration=3600)
COLOUR = SalonService(103, "Окрашивание волос", price_min=4000, duration=7200)
OLD = SalonService(104, "Снятие покрытия", active=False)


@pytest.fixture
async def reminder_web(settings: Settings) -> AsyncIterator[WebHarness]:
    """The app over a node that plans reminders, its wall clock at ``NOW`` (a week before the
    visits of :func:`~tests.web.test_reminder_replan.visits`)."""
    wall = FakeWallClock(NOW.astimezone(dt.UTC))
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage,
        open_reminder_web(settings, storage, wall) as harness,
    ):
        yield harness


async def salon_with_catalog(web: WebHarness) -> int:
    company = await register(web)
    await web.storage.catalog.replace_catalog(
        company.company_id, None, [NAILS, CUT, COLOUR, OLD], []
    )
    return company.company_id


async def get_settings(web: WebHarness, cid: int) -> dict[str, Any]:
    response = await web.client.get(f"{API}/{cid}/settings", headers=salon(web, cid))
    body = await response.get_json()
    assert response.status_code == 200, body
    return dict(body)


async def patch(web: WebHarness, cid: int, body: Any) -> tuple[int, dict[str, Any]]:
    response = await web.client.patch(f"{API}/{cid}/settings", json=body, headers=salon(web, cid))
    return response.status_code, await response.get_json()


async def test_the_settings_show_the_switch_the_reminders_and_every_active_service(
    web: WebHarness,
) -> None:
    cid = await salon_with_catalog(web)
    body = await get_settings(web, cid)
    assert body["assistant_enabled"] is True
    assert body["reminders"] == ReminderSettings().to_json()
    assert body["reminder_defaults"] == ReminderSettings().to_json()
    assert "greeting" in [p["name"] for p in body["placeholders"]]
    assert body["synonyms"] == [
        {"service_id": 101, "title": "Маникюр с покрытием гель-лак", "words": []},
        {"service_id": 102, "title": "Стрижка женская", "words": []},
        {"service_id": 103, "title": "Окрашивание волос", "words": []},
    ]
    assert body["synonym_limits"] == {"words": 20, "chars": 60}


async def test_a_change_of_every_part_is_stored_audited_and_answered(web: WebHarness) -> None:
    cid = await salon_with_catalog(web)
    status, body = await patch(
        web,
        cid,
        {
            "assistant_enabled": False,
            "reminders": {"day_before_at": "19:30", "review_link": "https://example.com/r"},
            "synonyms": [
                {"service_id": 101, "words": ["  шеллак ", "гель  лак", "бархатка"]},
                {"service_id": 103, "words": ["лисичка"]},
            ],
        },
    )
    assert status == 200, body
    assert body["assistant_enabled"] is False
    assert (body["reminders"]["day_before_at"], body["reminders"]["review_link"]) == (
        "19:30",
        "https://example.com/r",
    )
    words = {s["service_id"]: s["words"] for s in body["synonyms"]}
    assert words == {101: ["шеллак", "гель лак", "бархатка"], 102: [], 103: ["лисичка"]}
    assert await get_settings(web, cid) == {k: v for k, v in body.items() if k != "replanning"}
    company = await web.storage.companies.get(cid)
    assert company is not None and company.ai_enabled is False
    assert await web.storage.synonyms.get(cid) == {
        101: ("шеллак", "гель лак", "бархатка"),
        103: ("лисичка",),
    }
    events = {e.event_type: e.data for e in await web.storage.audit.recent(cid)}
    assert events["assistant_disabled"] == {"by": "salon_cookie"}
    assert events["reminder_settings_changed"]["fields"] == ["day_before_at", "review_link"]
    assert events["salon.synonyms_changed"] == {"by": "salon_cookie", "services": [101, 103]}
    # an empty list takes a service's words away
    status, body = await patch(web, cid, {"synonyms": [{"service_id": 103, "words": []}]})
    assert status == 200, body
    assert await web.storage.synonyms.get(cid) == {101: ("шеллак", "гель лак", "бархатка")}


@pytest.mark.parametrize(
    ("change", "field", "words_in_message"),
    [
        (
            {"reminders": {"quiet_start": "20:00", "quiet_end": "19:00"}},
            "reminders.quiet_end",
            ["Конец тихих часов", "меньше 6 часов"],
        ),
        (
            {"reminders": {"day_before_at": "23:30"}},
            "reminders.day_before_at",
            ["Время напоминания накануне", "тихие часы"],
        ),
        (
            {"reminders": {"day_before_at": "7 вечера"}},
            "reminders.day_before_at",
            ["ЧЧ:ММ"],
        ),
        (
            {"reminders": {"texts": {"review": "Оцените {visit}"}}},
            "reminders.texts.review",
            ["неизвестная подстановка {visit}"],
        ),
        ({"reminders": {"review_link": "ftp://x"}}, "reminders.review_link", ["https://"]),
        ({"reminders": {"colour": "red"}}, "reminders.colour", ["Неизвестная настройка"]),
        ({"assistant_enabled": "да"}, "assistant_enabled", ["Ассистента"]),
        ({"theme": "dark"}, "settings", ["Такой настройки нет"]),
        (
            {"synonyms": [{"service_id": 101, "words": [f"слово{n}" for n in range(21)]}]},
            "synonyms.101",
            ["Не больше 20 слов"],
        ),
        (
            {"synonyms": [{"service_id": 101, "words": ["шеллак", "Шеллак"]}]},
            "synonyms.101",
            ["«Шеллак» повторяется"],
        ),
        (
            {"synonyms": [{"service_id": 101, "words": ["ёжик", "Ежик"]}]},
            "synonyms.101",
            ["повторяется"],
        ),
        (
            {"synonyms": [{"service_id": 101, "words": ["я" * 61]}]},
            "synonyms.101",
            ["длиннее 60 символов"],
        ),
        (
            {"synonyms": [{"service_id": 101, "words": ["<script>"]}]},
            "synonyms.101",
            ["буквы, цифры, пробелы и дефис"],
        ),
        ({"synonyms": [{"service_id": 101, "words": [""]}]}, "synonyms.101", ["пустое"]),
        (
            {"synonyms": [{"service_id": 104, "words": ["снятие"]}]},
            "synonyms.104",
            ["нет в каталоге"],
        ),
        (
            {"synonyms": [{"service_id": 999, "words": ["что-то"]}]},
            "synonyms.999",
            ["нет в каталоге"],
        ),
        (
            {"synonyms": [{"service_id": 101, "words": []}, {"service_id": 101, "words": []}]},
            "synonyms.101",
            ["дважды"],
        ),
        ({"synonyms": {"101": ["шеллак"]}}, "synonyms", ["списком"]),
    ],
)
async def test_a_refusal_is_russian_names_the_field_and_stores_nothing(
    web: WebHarness, change: dict[str, Any], field: str, words_in_message: list[str]
) -> None:
    cid = await salon_with_catalog(web)
    before = await get_settings(web, cid)
    # a valid part beside the refused one is not stored either
    body = {"assistant_enabled": False, **change}
    if "synonyms" not in change:
        body["synonyms"] = [{"service_id": 102, "words": ["каре"]}]
    status, answer = await patch(web, cid, body)
    assert status == 400, answer
    error = answer["error"]
    assert (error["code"], error["field"]) == ("invalid_settings", field)
    for words in words_in_message:
        assert words in error["message"], error["message"]
    assert await get_settings(web, cid) == before
    assert not [
        e for e in await web.storage.audit.recent(cid) if e.event_type != "company_registered"
    ]


async def test_a_template_preview_fills_the_example_values(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    headers = salon(web, cid)
    response = await web.client.post(
        f"{API}/{cid}/templates/preview",
        json={"kind": "day_before", "text": "{greeting}\nЖдём вас {when} в «{salon}».\n{master}"},
        headers=headers,
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["preview"] == (
        "Здравствуйте, Анна!\nЖдём вас завтра, 4 декабря, в 15:00 в «Студия «Лето»».\nДарья"
    )
    response = await web.client.post(
        f"{API}/{cid}/templates/preview",
        json={"kind": "review_link", "text": "Оставьте отзыв: {link}"},
        headers=headers,
    )
    body = await response.get_json()
    assert body["preview"] == "Оставьте отзыв: https://yandex.ru/maps/org/salon/123/reviews/"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"kind": "day_before", "text": "Ждём вас {когда}"}, "text", "{когда}"),
        ({"kind": "review_link", "text": "Оставьте отзыв"}, "text", "{link}"),
        ({"kind": "day_before", "text": ""}, "text", "пустым"),
        ({"kind": "day_before", "text": "Ссылка {link}"}, "text", "{link}"),
        ({"kind": "weekly", "text": "Привет"}, "kind", "day_before"),
        ({"kind": "day_before"}, "text", "Введите текст"),
    ],
)
async def test_a_preview_of_a_text_that_cannot_be_sent_is_refused_in_russian(
    web: WebHarness, body: dict[str, Any], field: str, words: str
) -> None:
    company = await register(web)
    cid = company.company_id
    response = await web.client.post(
        f"{API}/{cid}/templates/preview", json=body, headers=salon(web, cid)
    )
    answer = await response.get_json()
    assert response.status_code == 400, answer
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_settings", field)
    assert words in answer["error"]["message"]


async def test_the_plan_lists_what_is_still_to_go_and_follows_a_new_reminder_time(
    reminder_web: WebHarness,
) -> None:
    web = reminder_web
    company = await visits(web, local(9, 15), local(10, 12))
    cid = company.id
    headers = salon(web, cid)
    response = await web.client.get(f"{API}/{cid}/reminders/plan", headers=headers)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["timezone"] == ZONE.key
    plan = [(r["record_id"], r["kind"], r["due_at"]) for r in body["reminders"]]
    assert plan[:2] == [
        (501, "day_before", local(8, 18).isoformat()),
        (501, "two_hours", local(9, 13).isoformat()),
    ]
    dues = [r["due_at"] for r in body["reminders"]]
    assert dues == sorted(dues)
    assert {r["status"] for r in body["reminders"]} == {"planned"}

    response = await web.client.patch(
        f"{API}/{cid}/settings", json={"reminders": {"day_before_at": "19:00"}}, headers=headers
    )
    answer = await response.get_json()
    assert response.status_code == 200, answer
    assert answer["replanning"] is True
    await replanner(web).settled()
    body = await (await web.client.get(f"{API}/{cid}/reminders/plan", headers=headers)).get_json()
    day_before = [r["due_at"] for r in body["reminders"] if r["kind"] == "day_before"]
    assert day_before == [
        local(8, 19).isoformat(),
        local(9, 19).isoformat(),
    ]


async def test_a_word_set_on_the_page_is_understood_and_survives_a_catalog_sync(
    autojump_clock: MockClock,
) -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        await web.storage.catalog.replace_catalog(cid, None, [NAILS, CUT, COLOUR], [])
        # the assistant has read the catalog once (and keeps it two minutes)
        # (a word it does not know: the whole price list, not the one service)
        before = await say(web, cid, "Сколько стоит бархатка?")
        assert "Стрижка женская" in before and "Окрашивание волос" in before, before
        status, body = await patch(
            web, cid, {"synonyms": [{"service_id": 101, "words": ["бархатка"]}]}
        )
        assert status == 200, body
        reply = await say(web, cid, "Сколько стоит бархатка?")
        assert "Маникюр с покрытием гель-лак" in reply and "2 500 ₽" in reply, reply
        assert "Стрижка женская" not in reply and "Окрашивание волос" not in reply, reply
        # YClients' next sync brings the catalog again (its own words for the service changed)
        synced = SalonService(101, NAILS.title, price_min=2700, duration=5400, synonyms=("гель",))
        await web.storage.catalog.replace_catalog(cid, None, [synced, CUT, COLOUR], [])
        assert web.node.assistant is not None
        web.node.assistant.catalog_synced(cid)
        reply = await say(web, cid, "А бархатка сколько?")
        assert "Маникюр с покрытием гель-лак" in reply and "2 700 ₽" in reply, reply
        assert "Стрижка женская" not in reply, reply
        assert (await get_settings(web, cid))["synonyms"][0]["words"] == ["бархатка"]


async def test_in_a_cluster_a_change_of_words_is_served_where_the_salons_chats_run(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """The salon's conversations (and their catalog copy) live in the process running its
    company actor: a change of its words asked elsewhere is forwarded there; other changes
    are served where they land."""
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await cluster_register(client, pair[0].url, 900_171)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        await other.node.storage.catalog.replace_catalog(cid, None, [NAILS, CUT], [])
        key = {"X-API-Key": company["api_key"]}
        url = f"{other.url}{API}/{cid}/settings"
        switched = await client.patch(url, json={"assistant_enabled": False}, headers=key)
        assert switched.status_code == 200, switched.text
        assert other.forwarded("2xx") == 0
        words = {"synonyms": [{"service_id": 101, "words": ["бархатка"]}]}
        changed = await client.patch(url, json=words, headers=key)
        assert changed.status_code == 200, changed.text
        assert other.forwarded("2xx") == 1
        assert changed.json()["synonyms"][0]["words"] == ["бархатка"]
        assert await owner.node.storage.synonyms.get(cid) == {101: ("бархатка",)}
