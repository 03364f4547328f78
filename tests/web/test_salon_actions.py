"""What the salon does from its page (issue 16), through the app with the page's cookie: take
a chat over, write to the client through the salon's own WhatsApp queue (it arrives on the
simulated phone; the assistant stays silent), give it back; log WhatsApp out and get a fresh
connect link, the cookie surviving both; and the refusals (opted out, no such chat, not
linked, CSRF, another salon)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors.company import messages as m
from config import Settings
from storage import ConversationMode
from tests.web.conftest import WebHarness, issue_jwt, register, token_of
from tests.web.test_assistant_handoff import CLIENT, assistant_web, said, say
from tests.web.test_forwarding import register as cluster_register
from tests.web.test_forwarding import roles, two_served_nodes
from tests.web.test_routes import link
from web._salon_session import COOKIE_NAME, CSRF_HEADER, csrf_token, encode_session, new_session

API = "/marketplace/salon/api"


def salon(web: WebHarness, company_id: int, *, csrf: bool = True) -> dict[str, str]:
    """The headers the salon page sends: its session cookie and (for changes) the CSRF token."""
    session = new_session(company_id)
    secret = web.settings.jwt_secret
    headers = {"Cookie": f"{COOKIE_NAME}={encode_session(session, secret)}"}
    if csrf:
        headers[CSRF_HEADER] = csrf_token(session.session_id, secret)
    return headers


async def post(
    web: WebHarness, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, Any]]:
    if body is None:
        response = await web.client.post(API + path, headers=headers)
    else:
        response = await web.client.post(API + path, json=body, headers=headers)
    answer = await response.get_json()
    return response.status_code, answer


async def audit(web: WebHarness, company_id: int, event: str) -> list[dict[str, Any]]:
    return [e.data for e in await web.storage.audit.recent(company_id) if e.event_type == event]


async def test_the_salon_takes_a_chat_over_writes_to_the_client_and_gives_it_back(
    autojump_clock: MockClock,
) -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        assert await say(web, cid, "Где вы находитесь?")  # the assistant answers
        headers = salon(web, cid)
        chat = f"/{cid}/conversations/{CLIENT}"

        status, body = await post(web, chat + "/takeover", headers, {"minutes": 30})
        assert status == 200, body
        assert (body["conversation"]["mode"], body["conversation"]["phone"]) == (
            "handoff",
            CLIENT,
        )
        assert body["conversation"]["mode_until"] is not None
        # the assistant is silent while a person answers
        count = len(said(web, cid))
        web.world.send_inbound(cid, CLIENT, "алло, есть кто?")
        await trio.sleep(60)
        assert len(said(web, cid)) == count

        # the salon writes: it goes out through the salon's WhatsApp to the client's phone
        text = "Здравствуйте! Это администратор <b>Анна</b>, чем помочь?"
        status, body = await post(web, chat + "/messages", headers, {"text": text})
        assert status == 202, body
        message = body["message"]
        assert (message["status"], message["text"]) == ("queued", text)
        with trio.fail_after(120):
            await web.world.wait_until(lambda: text in said(web, cid))
        (delivered,) = [d for d in web.world.delivered(cid) if d.text == text]
        assert delivered.message_id == message["id"]
        assert web.world.chat(cid, CLIENT)[-1].text == text
        assert await audit(web, cid, "salon.message_sent") == [
            {"phone": CLIENT, "message_id": message["id"]}
        ]
        taken = await audit(web, cid, "conversation_mode_set")
        assert taken[0]["mode"] == "handoff"
        assert taken[0]["by"] == "salon_cookie"

        # given back: the assistant answers again
        status, body = await post(web, chat + "/giveback", headers)
        assert status == 200, body
        assert (body["conversation"]["mode"], body["conversation"]["mode_until"]) == (
            "assistant",
            None,
        )
        assert await say(web, cid, "Где вы находитесь?")
        assert (await audit(web, cid, "conversation_mode_set"))[0]["mode"] == "assistant"


async def test_writing_to_a_chat_the_assistant_answers_silences_it(
    autojump_clock: MockClock,
) -> None:
    async with assistant_web() as web:
        company = await register(web)
        cid = company.company_id
        await link(web, company)
        assert await say(web, cid, "Где вы находитесь?")
        status, body = await post(
            web,
            f"/{cid}/conversations/{CLIENT}/messages",
            salon(web, cid),
            {"text": "Мы переехали, пишу адрес"},
        )
        assert status == 202, body
        conversation = await web.storage.conversations.get(cid, CLIENT)
        assert conversation is not None
        assert (conversation.mode, conversation.needs_person) == (ConversationMode.HANDOFF, False)
        with trio.fail_after(120):
            await web.world.wait_until(lambda: "Мы переехали, пишу адрес" in said(web, cid))
        count = len(said(web, cid))
        web.world.send_inbound(cid, CLIENT, "Спасибо, а где это?")
        await trio.sleep(60)
        assert len(said(web, cid)) == count  # a person is talking: the assistant keeps out
        (taken,) = await audit(web, cid, "conversation_mode_set")
        assert (taken["mode"], taken["by"]) == ("handoff", "salon_cookie")


async def test_no_message_goes_to_a_client_who_opted_out_or_never_wrote(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    await web.storage.conversations.set_mode(cid, CLIENT, ConversationMode.OPTED_OUT)
    headers = salon(web, cid)
    for action, body in (("messages", {"text": "Скидка 50%!"}), ("takeover", None)):
        status, answer = await post(web, f"/{cid}/conversations/{CLIENT}/{action}", headers, body)
        assert (status, answer["error"]["code"]) == (409, "opted_out"), answer
    status, answer = await post(web, f"/{cid}/conversations/{CLIENT}/giveback", headers)
    assert (status, answer["error"]["code"]) == (409, "opted_out")
    status, answer = await post(
        web, f"/{cid}/conversations/79990001122/messages", headers, {"text": "Привет"}
    )
    assert (status, answer["error"]["code"]) == (404, "conversation_not_found")
    assert await web.storage.messages.pending_outbound(cid) == []
    assert web.world.delivered(cid) == []


async def test_a_salon_whose_whatsapp_is_not_linked_is_told_and_nothing_is_queued(
    web: WebHarness,
) -> None:
    company = await register(web)
    cid = company.company_id
    await web.storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
    status, answer = await post(
        web, f"/{cid}/conversations/{CLIENT}/messages", salon(web, cid), {"text": "Привет"}
    )
    assert (status, answer["error"]["code"]) == (409, "whatsapp_not_connected"), answer
    assert "WhatsApp" in answer["error"]["message"]
    assert await web.storage.messages.pending_outbound(cid) == []
    conversation = await web.storage.conversations.get(cid, CLIENT)
    assert conversation is not None
    assert conversation.mode is ConversationMode.ASSISTANT  # refused before anything changed


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "я" * 4097}, {"text": 5}, {"text": None}],
    ids=["missing", "empty", "blank", "too-long", "number", "null"],
)
async def test_a_message_needs_a_text_of_1_to_4096_characters(
    web: WebHarness, body: dict[str, Any]
) -> None:
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    await web.storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
    status, answer = await post(
        web, f"/{cid}/conversations/{CLIENT}/messages", salon(web, cid), body
    )
    assert status == 400, answer
    assert await web.storage.messages.pending_outbound(cid) == []


async def test_logout_unlinks_whatsapp_and_relink_gives_a_fresh_connect_link(
    web: WebHarness,
) -> None:
    company = await register(web)
    cid = company.company_id
    await link(web, company)
    headers = salon(web, cid)
    jwt = await issue_jwt(web, company)

    status, body = await post(web, f"/{cid}/whatsapp/logout", headers)
    assert status == 200, body
    assert body["whatsapp"] == {
        "status": "disconnected",
        "connected": False,
        "phone": None,
        "last_error": None,
        "connected_at": body["whatsapp"]["connected_at"],
    }
    assert web.world.linked_jid(cid) is None
    stored = await web.storage.companies.get(cid)
    assert stored is not None
    assert (stored.integration_status, stored.whatsapp_jid) == ("logged_out", None)
    assert await audit(web, cid, "whatsapp_logout_requested") == [{"by": "salon_cookie"}]
    status, body = await post(web, f"/{cid}/whatsapp/logout", headers)
    assert (status, body["error"]["code"]) == (409, "whatsapp_not_connected")

    status, body = await post(web, f"/{cid}/whatsapp/relink", headers)
    assert status == 200, body
    url = body["connect_url"]
    assert url.startswith("/marketplace/connect?")
    fresh = token_of(url)
    assert fresh != company.token
    assert (await web.client.get(url)).status_code == 200
    assert (await web.client.get(company.connect_url)).status_code == 410  # the old link
    # the page's cookie and the company's JWT stay valid
    settings = await web.client.get(f"{API}/{cid}/settings", headers=headers)
    assert settings.status_code == 200
    bearer = {"Authorization": f"Bearer {jwt}"}
    assert (await web.client.get(f"{API}/{cid}/settings", headers=bearer)).status_code == 200

    # the connect page links a phone again
    assert (await web.node.company(cid).ask(m.RequestQr())).ok
    with trio.fail_after(10):
        await web.world.wait_until(lambda: web.world.live_qr(cid) is not None)
    web.world.scan(cid, phone="79005554433")
    with trio.fail_after(10):
        await web.world.wait_until(lambda: web.world.is_connected(cid))


async def test_every_action_checks_csrf_and_the_salon(web: WebHarness) -> None:
    a = await register(web)
    b = await register(web)
    await web.storage.conversations.set_mode(a.company_id, CLIENT, ConversationMode.ASSISTANT)
    paths = [
        (f"/{a.company_id}/conversations/{CLIENT}/takeover", None),
        (f"/{a.company_id}/conversations/{CLIENT}/giveback", None),
        (f"/{a.company_id}/conversations/{CLIENT}/messages", {"text": "Привет"}),
        (f"/{a.company_id}/whatsapp/logout", None),
        (f"/{a.company_id}/whatsapp/relink", None),
    ]
    for path, body in paths:
        status, answer = await post(web, path, salon(web, a.company_id, csrf=False), body)
        assert (status, answer["error"]["code"]) == (403, "csrf_failed"), path
        status, answer = await post(web, path, salon(web, b.company_id), body)
        assert status == 403, path
        status, answer = await post(web, path, b.key_headers, body)
        assert status == 403, path
        status, answer = await post(web, path, {}, body)
        assert status == 401, path
    conversation = await web.storage.conversations.get(a.company_id, CLIENT)
    assert conversation is not None
    assert conversation.mode is ConversationMode.ASSISTANT
    assert await web.storage.tokens.current(a.company_id) == a.token


async def test_the_company_key_may_act_too_and_is_named_in_the_audit(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await web.storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
    status, body = await post(
        web, f"/{cid}/conversations/{CLIENT}/takeover", company.key_headers, {}
    )
    assert status == 200, body
    (taken,) = await audit(web, cid, "conversation_mode_set")
    assert taken["by"] == "company_key"


async def test_the_body_of_a_takeover_is_optional_but_must_be_json(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await web.storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
    path = f"{API}/{cid}/conversations/{CLIENT}/takeover"
    headers = salon(web, cid)
    empty = await web.client.post(
        path, data=b"", headers=headers | {"Content-Type": "application/json"}
    )
    assert empty.status_code == 200, await empty.get_json()
    text = await web.client.post(
        path, data=b"minutes=5", headers=headers | {"Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    status, answer = await post(
        web, f"/{cid}/conversations/{CLIENT}/takeover", headers, {"minutes": 0}
    )
    assert (status, answer["error"]["code"]) == (400, "invalid_field")


async def test_in_a_cluster_the_owner_process_sends_the_salons_message_and_logs_it_out(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """Asked on the process that does not run the salon's actor, the page's writes are served
    by the owner (forwarded whole, the cookie checked there again): the message goes out
    through the owner's WhatsApp session, the log-out unlinks it there."""
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await cluster_register(client, pair[0].url, 900_161)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        ref = owner.node.company(cid)
        assert (await ref.ask(m.RequestQr())).ok
        with trio.fail_after(10):
            await owner.world.wait_until(lambda: owner.world.live_qr(cid) is not None)
        owner.world.scan(cid, phone="79001234567")
        with trio.fail_after(10):
            await owner.world.wait_until(lambda: owner.world.is_connected(cid))
        await other.node.storage.conversations.set_mode(cid, CLIENT, ConversationMode.ASSISTANT)
        session = new_session(cid)
        headers = {
            "Cookie": f"{COOKIE_NAME}={encode_session(session, settings.jwt_secret)}",
            CSRF_HEADER: csrf_token(session.session_id, settings.jwt_secret),
        }
        base = f"{other.url}{API}/{cid}"
        sent = await client.post(
            f"{base}/conversations/{CLIENT}/messages", json={"text": "Ждём вас!"}, headers=headers
        )
        assert sent.status_code == 202, sent.text
        with trio.fail_after(30):
            await owner.world.wait_until(
                lambda: [d.text for d in owner.world.delivered(cid)] == ["Ждём вас!"]
            )
        assert other.node.registry.lookup(cid) is None  # no actor (no session) on the other
        assert other.forwarded("2xx") == 1
        out = await client.post(f"{base}/whatsapp/logout", json={}, headers=headers)
        assert out.status_code == 200, out.text
        assert out.json()["whatsapp"]["connected"] is False
        assert owner.world.linked_jid(cid) is None
        assert other.forwarded("2xx") == 2
