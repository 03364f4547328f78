"""A salon's reminder and review settings through the API: ``GET`` shows the defaults or the
stored settings, ``PUT`` replaces and ``PATCH`` merges them, every bad value is a 400 naming
its field with nothing stored, and only the salon itself (or the admin) reaches them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from actors.reminders import ReminderSettings
from actors.reminders._settings import DEFAULT_TEXTS, PLACEHOLDERS
from tests.web.conftest import WebHarness, issue_jwt, register, uninstall
from tests.web.test_isolation import COMPANY_ROUTES
from tests.web.test_routes import error_of
from web._reminder_settings import ANSWER_SCHEMA, CHANGE_SCHEMA, SETTINGS_SCHEMA

DEFAULTS = ReminderSettings().to_json()


def path(company_id: int) -> str:
    return f"/marketplace/company/{company_id}/reminders"


async def answer(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert response.status_code == 200, body
    jsonschema.validate(body, ANSWER_SCHEMA)
    assert isinstance(body, dict)
    return body


async def test_a_new_salon_gets_the_defaults_and_the_placeholders(web: WebHarness) -> None:
    company = await register(web)
    body = await answer(await web.client.get(path(company.company_id), headers=web.admin))
    assert body["company_id"] == company.company_id
    assert body["settings"] == DEFAULTS == body["defaults"]
    assert body["customised"] is False
    settings = body["settings"]
    assert (settings["day_before_at"], settings["quiet_start"], settings["quiet_end"]) == (
        "18:00",
        "21:00",
        "09:00",
    )
    assert settings["texts"]["day_before"] == DEFAULT_TEXTS.day_before
    assert "Напоминаем" in settings["texts"]["day_before"]
    names = {item["name"] for item in body["placeholders"]}
    assert names == PLACEHOLDERS | {"link"}
    link = next(item for item in body["placeholders"] if item["name"] == "link")
    assert link["texts"] == ["review_link"]
    # nothing stored by a read
    assert await web.storage.reminder_settings.get(company.company_id) is None


async def test_put_and_patch_round_trip_on_both_backends(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    new = {
        "day_before_at": "17:30",
        "two_hours_enabled": False,
        "quiet_start": "22:00",
        "quiet_end": "08:00",
        "review_link": "https://yandex.ru/maps/org/salon/123/reviews/",
        "review_link_to": "high",
        "texts": {"day_before": "{greeting}\nЖдём вас {when} по адресу {address}."},
    }
    put = await answer(await web.client.put(path(cid), json=new, headers=company.key_headers))
    assert put["customised"] is True
    shown = put["settings"]
    assert shown["day_before_at"] == "17:30" and shown["two_hours_enabled"] is False
    assert shown["review_link_to"] == "high"
    assert shown["texts"]["day_before"] == new["texts"]["day_before"]  # type: ignore[index]
    assert shown["texts"]["review"] == DEFAULT_TEXTS.review
    # only what differs from the defaults is stored; it reads back as the same settings
    stored = await web.storage.reminder_settings.get(cid)
    assert stored is not None
    assert set(stored) == set(new) and set(stored["texts"]) == {"day_before"}
    assert ReminderSettings.from_json(stored).to_json() == shown
    got = await answer(await web.client.get(path(cid), headers=company.key_headers))
    assert got["settings"] == shown

    jwt = {"Authorization": f"Bearer {await issue_jwt(web, company)}"}
    patch = {"quiet_end": "09:30", "texts": {"review_thanks": "Спасибо за оценку, {name}!\nЖдём"}}
    patched = await answer(await web.client.patch(path(cid), json=patch, headers=jwt))
    after = patched["settings"]
    assert after["quiet_end"] == "09:30"
    assert after["day_before_at"] == "17:30"  # kept
    assert after["texts"]["day_before"] == shown["texts"]["day_before"]  # kept
    assert after["texts"]["review_thanks"] == "Спасибо за оценку, {name}!\nЖдём"
    assert (await answer(await web.client.get(path(cid), headers=web.admin)))["settings"] == after

    # PUT replaces the whole document: what it leaves out is the default again
    reset = await answer(
        await web.client.put(path(cid), json={"reviews_enabled": False}, headers=web.admin)
    )
    assert reset["settings"] == {**DEFAULTS, "reviews_enabled": False}
    assert await web.storage.reminder_settings.get(cid) == {"reviews_enabled": False}

    events = [
        (e.event_type, e.data)
        for e in await web.storage.audit.recent(cid)
        if e.event_type == "reminder_settings_changed"
    ]
    assert [data["by"] for _, data in events] == ["admin", "jwt", "company_key"]
    assert events[1][1]["fields"] == ["quiet_end", "texts.review_thanks"]
    assert "https://" not in json.dumps([data for _, data in events])


async def test_a_text_set_to_null_gets_its_default_back(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await answer(
        await web.client.patch(
            path(cid), json={"texts": {"review": "Оцените визит от 1 до 5"}}, headers=web.admin
        )
    )
    restored = await answer(
        await web.client.patch(path(cid), json={"texts": {"review": None}}, headers=web.admin)
    )
    assert restored["settings"]["texts"]["review"] == DEFAULT_TEXTS.review
    assert restored["customised"] is False
    assert await web.storage.reminder_settings.get(cid) == {}


async def test_an_unchanged_setting_is_not_audited(web: WebHarness) -> None:
    company = await register(web)
    for _ in range(2):
        await answer(
            await web.client.patch(
                path(company.company_id), json={"day_before_at": "18:00"}, headers=web.admin
            )
        )
    kinds = [e.event_type for e in await web.storage.audit.recent(company.company_id)]
    assert "reminder_settings_changed" not in kinds


BAD: list[tuple[dict[str, Any], str]] = [
    ({"day_before_at": "25:00"}, "day_before_at"),
    ({"day_before_at": "6pm"}, "day_before_at"),
    ({"quiet_start": "12:00", "quiet_end": "08:00"}, "quiet_end"),  # 20 h of quiet
    ({"day_before_at": "22:00"}, "day_before_at"),  # in the default quiet hours
    ({"texts": {"day_before": "Привет, {client}!"}}, "texts.day_before"),
    ({"texts": {"review": "x" * 1001}}, "texts.review"),
    ({"texts": {"review_link": "Оставьте отзыв!"}}, "texts.review_link"),
    ({"review_link": "ftp://example.org/reviews"}, "review_link"),
    ({"review_link": "javascript:alert(1)"}, "review_link"),
    ({"review_link_to": "everyone"}, "review_link_to"),
    ({"two_hours_before_minutes": -120}, "two_hours_before_minutes"),
    ({"review_after_minutes": -1}, "review_after_minutes"),
    ({"two_hours_before_minutes": "120"}, "two_hours_before_minutes"),
    ({"day_before_enabled": "yes"}, "day_before_enabled"),
    ({"high_rating": 4.5}, "high_rating"),
    ({"texts": "Привет"}, "texts"),
    ({"colour": "red"}, "colour"),
    ({"texts": {"sms": "Привет"}}, "texts.sms"),
    ({"texts": {"review_thanks": "Спасибо, {name}!"}}, "texts.review_thanks"),  # may be empty
]


# Rules across fields and inside texts: the validator's alone (the schema cannot say them).
BEYOND_THE_SCHEMA = {2, 3, 4, 6, 18}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("index", range(len(BAD)), ids=[field for _, field in BAD])
async def test_a_bad_value_is_a_400_naming_the_field(
    web: WebHarness, method: str, index: int
) -> None:
    body, field = BAD[index]
    company = await register(web)
    response = await web.client.open(
        path(company.company_id), method=method, json=body, headers=company.key_headers
    )
    error = await error_of(response, 400, "invalid_settings")
    assert error["message"].startswith(field + " "), error
    assert await web.storage.reminder_settings.get(company.company_id) is None
    if index not in BEYOND_THE_SCHEMA:  # the document refuses the same body
        assert not jsonschema.Draft202012Validator(CHANGE_SCHEMA).is_valid(body)


async def test_a_patch_is_checked_with_the_stored_settings(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await answer(await web.client.patch(path(cid), json={"quiet_end": "08:00"}, headers=web.admin))
    # 08:30 is in the default quiet hours (21:00-09:00) but not in the salon's (21:00-08:00)
    moved = await web.client.patch(path(cid), json={"day_before_at": "08:30"}, headers=web.admin)
    assert (await answer(moved))["settings"]["day_before_at"] == "08:30"
    # quiet hours until 09:00 again would now cover the stored 08:30: refused, nothing stored
    response = await web.client.patch(path(cid), json={"quiet_end": "09:00"}, headers=web.admin)
    error = await error_of(response, 400, "invalid_settings")
    assert error["message"].startswith("day_before_at ")
    stored = {"quiet_end": "08:00", "day_before_at": "08:30"}
    assert await web.storage.reminder_settings.get(cid) == stored


async def test_an_unknown_key_is_named_only_when_it_is_a_plain_word(web: WebHarness) -> None:
    company = await register(web)
    long_key = "<script>" + "k" * 500
    response = await web.client.put(path(company.company_id), json={long_key: 1}, headers=web.admin)
    error = await error_of(response, 400, "invalid_settings")
    assert "<script>" not in error["message"] and "kkkk" not in error["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "invalid_body"),
        (b'{"texts": {"review": "\\ud800"}}', "application/json", 400, "invalid_unicode"),
        (b'{"day_before_at": "18:00"}', "text/plain", 415, None),
        (b'{"texts": {"review": "' + b"x" * 70_000 + b'"}}', "application/json", 413, None),
    ],
    ids=["malformed", "not-an-object", "lone-surrogate", "not-json", "too-large"],
)
async def test_bodies_go_through_the_usual_checks(
    web: WebHarness, data: bytes, content_type: str, status: int, code: str | None
) -> None:
    company = await register(web)
    response = await web.client.patch(
        path(company.company_id),
        data=data,
        headers={**web.admin, "Content-Type": content_type},
    )
    await error_of(response, status, code)
    assert await web.storage.reminder_settings.get(company.company_id) is None


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
async def test_another_companys_credentials_are_refused(web: WebHarness, method: str) -> None:
    a = await register(web)
    b = await register(web)
    b_jwt = {"Authorization": f"Bearer {await issue_jwt(web, b)}"}
    for headers in (b.key_headers, b_jwt, {"Authorization": f"Bearer {b.token}"}):
        response = await web.client.open(
            path(a.company_id), method=method, json={"reviews_enabled": False}, headers=headers
        )
        await error_of(response, 403, "forbidden")
    response = await web.client.open(path(a.company_id), method=method, json={})
    await error_of(response, 401)
    assert await web.storage.reminder_settings.get(a.company_id) is None


def test_the_tenant_matrix_covers_the_routes() -> None:
    assert {
        ("GET", "/marketplace/company/{companyId}/reminders"),
        ("PUT", "/marketplace/company/{companyId}/reminders"),
        ("PATCH", "/marketplace/company/{companyId}/reminders"),
    } <= set(COMPANY_ROUTES)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
async def test_an_unknown_company_is_404_for_the_admin(web: WebHarness, method: str) -> None:
    response = await web.client.open(path(987_654), method=method, json={}, headers=web.admin)
    await error_of(response, 404, "company_not_found")


async def test_an_uninstalled_salon_can_be_read_but_not_changed(web: WebHarness) -> None:
    company = await register(web)
    await uninstall(web, company.company_id)
    await answer(await web.client.get(path(company.company_id), headers=web.admin))
    response = await web.client.patch(
        path(company.company_id), json={"reviews_enabled": False}, headers=web.admin
    )
    await error_of(response, 410, "uninstalled")
    assert await web.storage.reminder_settings.get(company.company_id) is None


async def test_unreadable_stored_settings_show_the_defaults(web: WebHarness) -> None:
    """Settings an older version stored that no longer validate: the defaults are in effect
    (as for the assistant), and a PATCH starts from them."""
    company = await register(web)
    cid = company.company_id
    await web.storage.reminder_settings.put(cid, {"quiet_start": "nonsense"})
    got = await answer(await web.client.get(path(cid), headers=web.admin))
    assert got["settings"] == DEFAULTS
    patched = await answer(
        await web.client.patch(path(cid), json={"high_rating": 5}, headers=web.admin)
    )
    assert patched["settings"] == {**DEFAULTS, "high_rating": 5}
    assert await web.storage.reminder_settings.get(cid) == {"high_rating": 5}


# --------------------------------------------------------------------- document vs checks


def test_the_documented_defaults_are_the_defaults() -> None:
    properties = SETTINGS_SCHEMA["properties"]
    for key, value in DEFAULTS.items():
        if key == "texts":
            for kind, text in value.items():
                assert properties["texts"]["properties"][kind]["default"] == text
        else:
            assert properties[key]["default"] == value, key
    jsonschema.validate(DEFAULTS, SETTINGS_SCHEMA)


EDGES: list[tuple[str, object]] = [
    *((key, n) for key in ("two_hours_before_minutes",) for n in (59, 60, 720, 721)),
    *(("review_after_minutes", n) for n in (-1, 0, 2880, 2881)),
    *(("high_rating", n) for n in (1, 2, 5, 6, True)),
    *(("day_before_at", t) for t in ("0:00", "9:05", "23:59", "24:00", "12:60", "12:5", "1200")),
    *(("review_link", v) for v in (None, "", "http://a.ru", "HTTPS://a.ru/x", "ftp://a.ru", "a")),
    *(("review_link_to", v) for v in ("all", "high", "HIGH", None)),
    *(("reviews_enabled", v) for v in (True, False, 0, "true")),
]


@pytest.mark.parametrize(("key", "value"), EDGES, ids=[f"{k}={v!r}" for k, v in EDGES])
def test_the_change_schema_and_the_validator_draw_the_same_lines(key: str, value: object) -> None:
    """A single-field change the validator takes is valid under the document and vice versa
    (day_before_at is checked with the quiet hours switched off: that rule spans fields)."""
    body: dict[str, Any] = {key: value}
    if key == "day_before_at":
        body.update(quiet_start="00:00", quiet_end="00:00")
    try:
        ReminderSettings.from_json(body)
        accepted = True
    except ValueError:
        accepted = False
    assert jsonschema.Draft202012Validator(CHANGE_SCHEMA).is_valid(body) == accepted
