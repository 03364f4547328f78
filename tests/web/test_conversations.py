"""The conversations API: one client's conversation, the salon's list (newest first, paged,
filtered) and the salon taking a chat over or giving it back — on both storage backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import Conversation, ConversationMode
from tests.web.conftest import WebHarness, issue_jwt, register, uninstall
from tests.web.test_routes import error_of
from web._conversations import decode_cursor, encode_cursor
from web._errors import BadRequest

ANNA = "79005550001"
T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def list_path(company_id: int, **query: Any) -> str:
    path = f"/marketplace/conversations/{company_id}"
    if query:
        path += "?" + urlencode(query)
    return path


def mode_path(company_id: int) -> str:
    return f"/marketplace/conversations/{company_id}/mode"


async def chat(
    web: WebHarness,
    company_id: int,
    phone: str,
    *,
    minutes: int = 0,
    name: str | None = None,
) -> None:
    """A conversation as the assistant leaves it, its last message ``minutes`` after T0."""
    await web.storage.conversations.save(
        company_id,
        phone,
        state={"flow": "booking"},
        expected_version=0,
        client_name=name,
        last_message_at=T0 + timedelta(minutes=minutes),
    )


async def ok(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert response.status_code == 200, body
    assert isinstance(body, dict)
    return body


async def test_one_clients_conversation(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await error_of(
        await web.client.get(list_path(cid, phone=ANNA), headers=company.key_headers),
        404,
        "conversation_not_found",
    )
    await chat(web, cid, ANNA, name="Анна Петрова")
    body = await ok(
        await web.client.get(list_path(cid, phone="8(900)555-00-01"), headers=company.key_headers)
    )
    assert body["success"] is True and body["company_id"] == cid
    assert {k: body[k] for k in ("phone", "client_name", "mode", "mode_until", "needs_person")} == {
        "phone": ANNA,
        "client_name": "Анна Петрова",
        "mode": "assistant",
        "mode_until": None,
        "needs_person": False,
    }
    assert datetime.fromisoformat(body["last_message_at"]) == T0
    assert datetime.fromisoformat(body["updated_at"]).tzinfo is not None
    assert "state" not in body  # the assistant's internal state stays inside


async def test_the_list_is_newest_first_and_pages_through_every_row_once(
    any_web: WebHarness,
) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    phones = [f"7900555{n:04d}" for n in range(7)]
    for n, phone in enumerate(phones):
        await chat(web, cid, phone, minutes=n)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            query["cursor"] = cursor
        body = await ok(await web.client.get(list_path(cid, **query), headers=web.admin))
        pages += 1
        assert len(body["conversations"]) <= 3
        seen += [c["phone"] for c in body["conversations"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(phones))
    everything = await ok(await web.client.get(list_path(cid), headers=web.admin))
    assert [c["phone"] for c in everything["conversations"]] == seen
    assert everything["next_cursor"] is None


async def test_an_exactly_full_page_is_the_last(web: WebHarness) -> None:
    company = await register(web)
    for n in range(2):
        await chat(web, company.company_id, f"7900555{n:04d}", minutes=n)
    body = await ok(await web.client.get(list_path(company.company_id, limit=2), headers=web.admin))
    assert len(body["conversations"]) == 2
    assert body["next_cursor"] is None


async def test_the_list_filters_by_mode_by_needs_person_and_by_search(
    any_web: WebHarness,
) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, "79005550001", minutes=1, name="Анна Петрова")
    await chat(web, cid, "79005550002", minutes=2, name="Борис")
    await chat(web, cid, "79161230003", minutes=3)
    await web.storage.conversations.set_mode(
        cid, "79005550002", ConversationMode.HANDOFF, needs_person=True
    )
    await web.storage.conversations.set_mode(cid, "79161230003", ConversationMode.OPTED_OUT)

    async def phones(**query: Any) -> list[str]:
        body = await ok(await web.client.get(list_path(cid, **query), headers=web.admin))
        return [c["phone"] for c in body["conversations"]]

    assert await phones(mode="handoff") == ["79005550002"]
    assert await phones(mode="opted_out") == ["79161230003"]
    assert await phones(needs_person="true") == ["79005550002"]
    assert await phones(needs_person="false") == ["79161230003", "79005550001"]
    assert await phones(q="анна") == ["79005550001"]
    assert await phones(q="916") == ["79161230003"]
    assert await phones(q="555") == ["79005550002", "79005550001"]
    assert await phones(q="Жанна") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ5ZXN0ZXJkYXkiLCI3OTAwIl0"}, "cursor"),  # ["yesterday","7900"]
        ({"mode": "robot"}, "mode"),
        ({"needs_person": "yes"}, "needs_person"),
        ({"q": "x" * 256}, "q"),
        ({"phone": "12"}, "phone"),
    ],
)
async def test_the_list_refuses_bad_parameters(
    web: WebHarness, query: dict[str, Any], field: str
) -> None:
    company = await register(web)
    error = await error_of(
        await web.client.get(list_path(company.company_id, **query), headers=web.admin),
        400,
        "invalid_field",
    )
    assert field in error["message"]


async def test_the_salon_takes_a_chat_over_and_gives_it_back(any_web: WebHarness) -> None:
    web = any_web
    company = await register(web)
    cid = company.company_id
    await chat(web, cid, ANNA)
    await web.storage.conversations.set_mode(cid, ANNA, ConversationMode.HANDOFF, needs_person=True)
    jwt = {"Authorization": f"Bearer {await issue_jwt(web, company)}"}

    before = datetime.now(UTC)
    taken = await ok(
        await web.client.post(
            mode_path(cid),
            json={"phone": "+7 900 555-00-01", "mode": "handoff", "minutes": 30},
            headers=jwt,
        )
    )
    after = datetime.now(UTC)
    assert (taken["phone"], taken["mode"], taken["needs_person"]) == (ANNA, "handoff", False)
    until = datetime.fromisoformat(taken["mode_until"])
    assert before + timedelta(minutes=30) <= until <= after + timedelta(minutes=30)

    given = await ok(
        await web.client.post(
            mode_path(cid), json={"phone": ANNA, "mode": "assistant"}, headers=company.key_headers
        )
    )
    assert (given["mode"], given["mode_until"], given["needs_person"]) == ("assistant", None, False)
    stored = await web.storage.conversations.get(cid, ANNA)
    assert stored is not None and stored.mode is ConversationMode.ASSISTANT
    assert stored.state == {"flow": "booking"}  # the assistant's state is left alone
    events = [e for e in await web.storage.audit.recent(cid) if e.event_type.startswith("conv")]
    assert [(e.data["mode"], e.data["by"]) for e in reversed(events)] == [
        ("handoff", "jwt"),
        ("assistant", "company_key"),
    ]


async def test_a_handoff_without_minutes_lasts_the_configured_time(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    before = datetime.now(UTC)
    body = await ok(
        await web.client.post(
            mode_path(cid), json={"phone": ANNA, "mode": "handoff"}, headers=web.admin
        )
    )
    configured = timedelta(minutes=web.settings.assistant.handoff_minutes)
    until = datetime.fromisoformat(body["mode_until"])
    assert before + configured <= until <= datetime.now(UTC) + configured
    # the salon may take over a client before the client writes: the conversation now exists
    assert await web.storage.conversations.get(cid, ANNA) is not None


async def test_a_client_who_opted_out_stays_opted_out(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await web.storage.conversations.set_mode(cid, ANNA, ConversationMode.OPTED_OUT)
    for mode in ("assistant", "handoff"):
        await error_of(
            await web.client.post(
                mode_path(cid), json={"phone": ANNA, "mode": mode}, headers=web.admin
            ),
            409,
            "opted_out",
        )
    stored = await web.storage.conversations.get(cid, ANNA)
    assert stored is not None and stored.mode is ConversationMode.OPTED_OUT


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"mode": "handoff"}, "missing_field", "phone"),
        ({"phone": ANNA}, "missing_field", "mode"),
        ({"phone": ANNA, "mode": "opted_out"}, "invalid_field", "mode"),
        ({"phone": ANNA, "mode": "HANDOFF"}, "invalid_field", "mode"),
        ({"phone": ANNA, "mode": "assistant", "minutes": 30}, "invalid_field", "minutes"),
        ({"phone": ANNA, "mode": "handoff", "minutes": 0}, "invalid_field", "minutes"),
        ({"phone": ANNA, "mode": "handoff", "minutes": 10081}, "invalid_field", "minutes"),
        ({"phone": ANNA, "mode": "handoff", "minutes": "30"}, "invalid_field", "minutes"),
        ({"phone": "not a phone", "mode": "handoff"}, "invalid_field", "phone"),
    ],
)
async def test_a_mode_change_is_validated(
    web: WebHarness, body: dict[str, Any], code: str, field: str
) -> None:
    company = await register(web)
    error = await error_of(
        await web.client.post(mode_path(company.company_id), json=body, headers=web.admin),
        400,
        code,
    )
    assert field in error["message"]
    assert await web.storage.conversations.get(company.company_id, ANNA) is None


async def test_unknown_and_uninstalled_salons(web: WebHarness) -> None:
    await error_of(
        await web.client.get(list_path(987654), headers=web.admin), 404, "company_not_found"
    )
    await error_of(
        await web.client.post(
            mode_path(987654), json={"phone": ANNA, "mode": "handoff"}, headers=web.admin
        ),
        404,
        "company_not_found",
    )
    company = await register(web)
    await chat(web, company.company_id, ANNA)
    await uninstall(web, company.company_id)
    await error_of(
        await web.client.post(
            mode_path(company.company_id),
            json={"phone": ANNA, "mode": "handoff"},
            headers=web.admin,
        ),
        410,
        "uninstalled",
    )
    # what was said stays readable
    await ok(await web.client.get(list_path(company.company_id, phone=ANNA), headers=web.admin))


async def test_each_salon_sees_only_its_own_conversations(any_web: WebHarness) -> None:
    web = any_web
    a = await register(web)
    b = await register(web)
    await chat(web, a.company_id, ANNA, name="Анна")
    await chat(web, b.company_id, "79005550002", name="Борис")
    mine = await ok(await web.client.get(list_path(a.company_id), headers=a.key_headers))
    assert [c["phone"] for c in mine["conversations"]] == [ANNA]
    await error_of(
        await web.client.get(list_path(b.company_id, phone=ANNA), headers=web.admin),
        404,
        "conversation_not_found",
    )
    for path in (list_path(b.company_id), list_path(b.company_id, phone="79005550002")):
        await error_of(await web.client.get(path, headers=a.key_headers), 403, "forbidden")
        await error_of(await web.client.get(path), 401)
    await error_of(
        await web.client.post(
            mode_path(b.company_id),
            json={"phone": "79005550002", "mode": "handoff"},
            headers=a.key_headers,
        ),
        403,
        "forbidden",
    )
    stored = await web.storage.conversations.get(b.company_id, "79005550002")
    assert stored is not None and stored.mode is ConversationMode.ASSISTANT


@given(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=10))])),
    st.from_regex(r"[0-9]{5,15}", fullmatch=True),
)
def test_a_cursor_reads_back_as_the_place_it_was_written(at: datetime, phone: str) -> None:
    row = Conversation(1, phone, ConversationMode.ASSISTANT, {}, 1, updated_at=at)
    try:
        expected = at.astimezone(UTC)
    except OverflowError:
        return  # beyond datetime's range in UTC: no stored row can be there
    assert decode_cursor(encode_cursor(row)) == (expected, phone)


@given(st.text(max_size=300))
def test_any_other_cursor_is_a_400_never_a_crash(cursor: str) -> None:
    try:
        at, phone = decode_cursor(cursor)
    except BadRequest as error:
        refused: BadRequest | None = error
    else:
        refused = None
        assert at.tzinfo is UTC and phone.isdigit()
    if refused is not None:
        assert (refused.status, refused.code) == (400, "invalid_field")
