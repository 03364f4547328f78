"""``GET /dev/simulator/{id}/chat?phone=P``: what a client's phone shows of its chat with the
salon, in order — what it sent through the simulator, what the salon delivered to it."""

from __future__ import annotations

from datetime import datetime

from actors.company import messages as m
from tests.web.conftest import (
    WebHarness,
    make_production_settings,
    open_memory_storage,
    open_web,
    register,
)
from tests.web.test_routes import error_of, link

CLIENT = "79005550001"


def chat_path(company_id: int, phone: str = CLIENT) -> str:
    return f"/dev/simulator/{company_id}/chat?phone={phone}"


async def test_the_chat_shows_the_clients_messages_and_the_salons_in_order(
    web: WebHarness,
) -> None:
    company = await register(web)
    await link(web, company)
    cid = company.company_id
    sent = await web.client.post(
        f"/dev/simulator/{cid}/inbound",
        json={"phone": "+7 900 555-00-01", "text": "Хочу записаться"},
        headers=web.admin,
    )
    assert sent.status_code == 200
    await web.node.company(cid).ask(m.SendText(CLIENT, "Здравствуйте! На какую услугу?"))
    await web.node.company(cid).ask(m.SendText("79005550002", "Другому клиенту"))
    await web.world.wait_until(lambda: len(web.world.delivered(cid)) == 2)

    response = await web.client.get(chat_path(cid, "8 900 555-00-01"), headers=web.admin)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["phone"] == CLIENT
    messages = body["messages"]
    assert [(x["direction"], x["text"]) for x in messages] == [
        ("in", "Хочу записаться"),
        ("out", "Здравствуйте! На какую услугу?"),
    ]
    times = [datetime.fromisoformat(x["at"]) for x in messages]
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times)


async def test_a_phone_that_never_wrote_has_an_empty_chat(web: WebHarness) -> None:
    company = await register(web)
    response = await web.client.get(chat_path(company.company_id), headers=web.admin)
    assert response.status_code == 200
    assert (await response.get_json())["messages"] == []


async def test_the_chat_route_checks_its_caller_and_its_input(web: WebHarness) -> None:
    company = await register(web)
    cid = company.company_id
    await error_of(await web.client.get(chat_path(cid)), 401)
    await error_of(await web.client.get(chat_path(cid), headers=company.key_headers), 403)
    await error_of(
        await web.client.get(f"/dev/simulator/{cid}/chat", headers=web.admin), 400, "missing_field"
    )
    await error_of(
        await web.client.get(chat_path(cid, "12"), headers=web.admin), 400, "invalid_field"
    )
    await error_of(
        await web.client.get(chat_path(987654), headers=web.admin), 404, "company_not_found"
    )


async def test_the_chat_route_is_404_in_production() -> None:
    settings = make_production_settings()
    async with open_memory_storage() as storage, open_web(settings, storage) as web:
        company = await register(web)
        response = await web.client.get(chat_path(company.company_id), headers=web.admin)
        await error_of(response, 404, "not_found")


async def test_an_inbound_message_shows_even_before_the_session_takes_it(
    web: WebHarness,
) -> None:
    company = await register(web)
    await link(web, company)
    cid = company.company_id
    web.world.go_offline(cid)
    assert not web.world.is_connected(cid)
    sent = await web.client.post(
        f"/dev/simulator/{cid}/inbound",
        json={"phone": CLIENT, "text": "Вы тут?"},
        headers=web.admin,
    )
    assert sent.status_code == 200
    body = await (await web.client.get(chat_path(cid), headers=web.admin)).get_json()
    assert [x["text"] for x in body["messages"]] == ["Вы тут?"]


async def test_media_and_long_messages_and_the_staffs_own_messages_show_in_the_chat(
    web: WebHarness,
) -> None:
    company = await register(web)
    await link(web, company)
    cid = company.company_id
    long_text = "очень " * 680  # 4,080 characters: clients do write letters
    sends = [
        ("inbound", {"phone": CLIENT, "kind": "audio"}),
        ("inbound", {"phone": CLIENT, "kind": "image", "text": "вот такую стрижку"}),
        ("inbound", {"phone": CLIENT, "text": long_text}),
        ("staff-message", {"phone": CLIENT, "text": "Это Марина, администратор"}),
    ]
    for route, body in sends:
        response = await web.client.post(
            f"/dev/simulator/{cid}/{route}", json=body, headers=web.admin
        )
        assert response.status_code == 200, await response.get_json()
    body = await (await web.client.get(chat_path(cid), headers=web.admin)).get_json()
    assert [(x["direction"], x["kind"], x["text"]) for x in body["messages"]] == [
        ("in", "audio", ""),
        ("in", "image", "вот такую стрижку"),
        ("in", "text", long_text.strip()),
        ("out", "text", "Это Марина, администратор"),
    ]


async def test_the_simulated_messages_are_validated(web: WebHarness) -> None:
    company = await register(web)
    await link(web, company)
    cid = company.company_id
    refused = [
        ("inbound", {"phone": CLIENT}, "missing_field"),
        ("inbound", {"phone": CLIENT, "kind": "text"}, "missing_field"),
        ("inbound", {"phone": CLIENT, "kind": "hologram", "text": "x"}, "invalid_field"),
        ("inbound", {"phone": CLIENT, "text": "x" * 4097}, "invalid_field"),
        ("staff-message", {"phone": CLIENT}, "missing_field"),
        ("staff-message", {"phone": "12", "text": "x"}, "invalid_field"),
    ]
    for route, body, code in refused:
        response = await web.client.post(
            f"/dev/simulator/{cid}/{route}", json=body, headers=web.admin
        )
        await error_of(response, 400, code)
    assert web.world.chat(cid, CLIENT) == []


async def test_the_staff_message_route_needs_a_linked_whatsapp_and_the_admin_key(
    web: WebHarness,
) -> None:
    company = await register(web)
    path = f"/dev/simulator/{company.company_id}/staff-message"
    body = {"phone": CLIENT, "text": "Добрый день"}
    await error_of(await web.client.post(path, json=body, headers=company.key_headers), 403)
    await error_of(await web.client.post(path, json=body, headers=web.admin), 409, "not_connected")
