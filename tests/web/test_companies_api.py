"""The partner's company API, on the memory backend and on PostgreSQL + Redis:

* ``GET /marketplace/companies`` pages every company in id order (limit, cursor, status and
  salon_id filters; stats on the first page), admin key only;
* ``GET /marketplace/companies/by-salon/{salonId}`` looks one up;
* a repeated registration is 409 with the existing ``company_id``;
* ``/marketplace/status/{id}`` given a salon id says so and names the company id — to the
  admin, and to a company for its own salon only;
* ``POST /marketplace/token`` takes ``salon_id`` as well as ``company_id``.

Every refusal is a 4xx JSON error with a reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from quart import typing as quart_typing

from config import Settings
from tests.web.conftest import Registered, WebHarness, issue_jwt, register
from tests.web.test_routes import link
from tests.web.test_server import running_server, server_settings

__all__ = ["server_settings"]  # the fixture: the server on memory, then on PostgreSQL + Redis

LISTED_FIELDS = {
    "company_id",
    "salon_id",
    "title",
    "integration_status",
    "phone",
    "whatsapp_connected",
    "whatsapp_phone",
    "created_at",
    "updated_at",
    "status_changed_at",
    "connected_at",
}


async def get_json(
    client: quart_typing.TestClientProtocol, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await client.get(path, headers=headers)
    assert response.mimetype == "application/json", path
    body = await response.get_json()
    assert isinstance(body, dict)
    return response.status_code, body


def refused(status: int, body: dict[str, Any], expected: int, code: str) -> str:
    """Assert an error answer; its message (a reason a person can act on) is returned."""
    assert status == expected, body
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and len(message) > 10
    return message


async def walk(web: WebHarness, query: str) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """Every page of ``/marketplace/companies?<query>``: the ids per page and the bodies."""
    pages: list[list[int]] = []
    bodies: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        path = f"/marketplace/companies?{query}" + (f"&cursor={cursor}" if cursor else "")
        status, body = await get_json(web.client, path, web.admin)
        assert status == 200, body
        bodies.append(body)
        pages.append([c["company_id"] for c in body["companies"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages, bodies
        assert len(pages) < 50, "the cursor never ended"


async def test_companies_are_listed_a_page_at_a_time(any_web: WebHarness) -> None:
    web = any_web
    salons = [await register(web, phone="+7 900 000-00-0" + str(n)) for n in range(7)]
    await link(web, salons[2])
    await web.storage.companies.transition(salons[5].company_id, ["pending"], "frozen")
    ids = [s.company_id for s in salons]

    pages, bodies = await walk(web, "limit=3")
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    first = bodies[0]
    assert first["stats"] == {
        "total": 7,
        "connected": 1,
        "by_status": {"pending": 5, "active": 1, "frozen": 1},
    }
    assert all("stats" not in body for body in bodies[1:])  # counted once, not per page
    listed = {c["company_id"]: c for body in bodies for c in body["companies"]}
    for salon in salons:
        item = listed[salon.company_id]
        assert set(item) == LISTED_FIELDS  # and never a key, secret or token
        assert item["salon_id"] == salon.salon_id
        datetime.fromisoformat(item["created_at"])
        datetime.fromisoformat(item["status_changed_at"])
    linked = listed[salons[2].company_id]
    assert linked["integration_status"] == "active" and linked["whatsapp_connected"] is True
    assert linked["whatsapp_phone"] == "79001234567"
    assert datetime.fromisoformat(linked["connected_at"]).tzinfo is not None
    assert listed[ids[0]]["phone"] == "79000000000"
    assert listed[ids[5]]["integration_status"] == "frozen"

    # The default page holds them all; status and salon_id filter.
    status, body = await get_json(web.client, "/marketplace/companies", web.admin)
    assert status == 200 and [c["company_id"] for c in body["companies"]] == ids
    assert body["next_cursor"] is None
    pending, _ = await walk(web, "status=pending&limit=2")
    assert pending == [[ids[0], ids[1]], [ids[3], ids[4]], [ids[6]]]
    frozen, _ = await walk(web, "status=frozen")
    assert frozen == [[ids[5]]]
    status, body = await get_json(
        web.client, f"/marketplace/companies?salon_id={salons[4].salon_id}", web.admin
    )
    assert status == 200 and [c["company_id"] for c in body["companies"]] == [ids[4]]
    status, body = await get_json(
        web.client, f"/marketplace/companies?salon_id={salons[4].salon_id}&status=active", web.admin
    )
    assert status == 200 and body["companies"] == [] and body["next_cursor"] is None


async def test_a_status_change_between_pages_repeats_nobody(any_web: WebHarness) -> None:
    web = any_web
    ids = [(await register(web)).company_id for _ in range(5)]
    status, body = await get_json(
        web.client, "/marketplace/companies?status=pending&limit=2", web.admin
    )
    assert [c["company_id"] for c in body["companies"]] == ids[:2]
    await web.storage.companies.transition(ids[0], ["pending"], "frozen")
    await web.storage.companies.transition(ids[3], ["pending"], "frozen")
    cursor = body["next_cursor"]
    status, body = await get_json(
        web.client, f"/marketplace/companies?status=pending&limit=2&cursor={cursor}", web.admin
    )
    assert status == 200
    assert [c["company_id"] for c in body["companies"]] == [ids[2], ids[4]]
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=0", "cursor"),
        ("cursor=99999999999", "cursor"),
        ("status=sleeping", "status"),
        ("status=", "status"),
        ("salon_id=-5", "salon_id"),
        ("salon_id=1.5", "salon_id"),
    ],
)
async def test_bad_list_queries_are_400_naming_the_field(
    web: WebHarness, query: str, field: str
) -> None:
    status, body = await get_json(web.client, f"/marketplace/companies?{query}", web.admin)
    message = refused(status, body, 400, "invalid_field")
    assert message.startswith(field), message


async def test_largest_page_is_500(web: WebHarness) -> None:
    status, body = await get_json(web.client, "/marketplace/companies?limit=500", web.admin)
    assert status == 200 and body["companies"] == [] and body["next_cursor"] is None


async def test_the_company_api_is_for_the_admin_key_only(web: WebHarness) -> None:
    salon = await register(web)
    jwt = await issue_jwt(web, salon)
    for path in ("/marketplace/companies", f"/marketplace/companies/by-salon/{salon.salon_id}"):
        refused(*await get_json(web.client, path), 401, "unauthorized")
        refused(*await get_json(web.client, path, salon.key_headers), 403, "forbidden")
        bearer = {"Authorization": f"Bearer {jwt}"}
        refused(*await get_json(web.client, path, bearer), 403, "forbidden")
        wrong = {"X-API-Key": "adm_not_the_key_0123456789abcdef"}
        refused(*await get_json(web.client, path, wrong), 401, "unauthorized")


async def test_a_company_is_looked_up_by_salon_id(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web, title="Салон «Ромашка»", email="salon@example.com")
    status, body = await get_json(
        web.client, f"/marketplace/companies/by-salon/{salon.salon_id}", web.admin
    )
    assert status == 200
    assert body["success"] is True
    assert set(body) == LISTED_FIELDS | {"success"}
    assert body["company_id"] == salon.company_id and body["salon_id"] == salon.salon_id
    assert body["title"] == "Салон «Ромашка»" and body["integration_status"] == "pending"

    status, body = await get_json(web.client, "/marketplace/companies/by-salon/77", web.admin)
    message = refused(status, body, 404, "company_not_found")
    assert "salon 77" in message
    for bad in ("0", "abc", "-3", "2147483648"):
        status, body = await get_json(
            web.client, f"/marketplace/companies/by-salon/{bad}", web.admin
        )
        assert refused(status, body, 400, "invalid_field").startswith("salonId")


async def test_a_repeated_registration_is_409_with_the_company_id(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web)
    response = await web.client.post(
        "/marketplace/register", json={"salon_id": salon.salon_id}, headers=web.admin
    )
    body = await response.get_json()
    message = refused(response.status_code, body, 409, "company_exists")
    assert body["company_id"] == salon.company_id
    assert body["salon_id"] == salon.salon_id
    assert str(salon.company_id) in message and "connect-url" in message
    assert "api_key" not in body and "connect_url" not in body  # the key was shown once
    assert await web.storage.companies.count() == 1


async def status_of(
    web: WebHarness, company_id: int, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    return await get_json(web.client, f"/marketplace/status/{company_id}", headers)


async def test_status_given_a_salon_id_names_the_company_id(any_web: WebHarness) -> None:
    web = any_web
    salon = await register(web)
    other = await register(web)
    assert salon.salon_id != salon.company_id

    # The admin: any salon id is answered with its company id.
    status, body = await status_of(web, salon.salon_id, web.admin)
    message = refused(status, body, 404, "company_not_found")
    assert f"{salon.salon_id} is a salon id" in message
    assert f"/marketplace/status/{salon.company_id}" in message
    assert f"/marketplace/companies/by-salon/{salon.salon_id}" in message
    assert (body["company_id"], body["salon_id"]) == (salon.company_id, salon.salon_id)
    # An id that is neither: the 404 says which id the path takes.
    status, body = await status_of(web, 123_456_789, web.admin)
    message = refused(status, body, 404, "company_not_found")
    assert "company_id" in message and "not the YClients salon id" in message
    assert "company_id" not in body

    # The company itself, with its own salon id: told its own company id.
    for headers in (salon.key_headers, {"Authorization": f"Bearer {await issue_jwt(web, salon)}"}):
        status, body = await status_of(web, salon.salon_id, headers)
        message = refused(status, body, 404, "company_not_found")
        assert f"{salon.salon_id} is your salon id" in message
        assert f"your company id is {salon.company_id}" in message
        assert "by-salon" not in message  # an admin-only route, not offered to a tenant
        assert body["company_id"] == salon.company_id
    # ... and with the token of its connect link.
    status, body = await get_json(
        web.client, f"/marketplace/status/{salon.salon_id}?token={salon.token}"
    )
    assert refused(status, body, 404, "company_not_found").startswith(str(salon.salon_id))

    # Another tenant's salon id tells a company nothing: the same 403 as any other id.
    status, body = await status_of(web, other.salon_id, salon.key_headers)
    message = refused(status, body, 403, "forbidden")
    assert str(other.company_id) not in message and "company_id" not in body
    status, body = await status_of(web, 123_456_789, salon.key_headers)
    assert refused(status, body, 403, "forbidden") == message
    # The right id still answers.
    status, body = await status_of(web, salon.company_id, salon.key_headers)
    assert status == 200 and body["salon_id"] == salon.salon_id


async def post_token(web: WebHarness, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await web.client.post("/marketplace/token", json=body, headers=web.admin)
    answer = await response.get_json()
    assert isinstance(answer, dict)
    return response.status_code, answer


async def test_token_takes_a_salon_id(any_web: WebHarness) -> None:
    web = any_web
    salon: Registered = await register(web)
    other = await register(web)
    status, body = await post_token(web, {"salon_id": salon.salon_id})
    assert status == 200, body
    assert body["company_id"] == salon.company_id and body["salon_id"] == salon.salon_id
    bearer = {"Authorization": f"Bearer {body['token']}"}
    status, seen = await status_of(web, salon.company_id, bearer)
    assert status == 200 and seen["company_id"] == salon.company_id
    assert (await status_of(web, other.company_id, bearer))[0] == 403
    # company_id as before, and both when they agree.
    both = {"company_id": salon.company_id, "salon_id": salon.salon_id}
    for given in ({"company_id": salon.company_id}, both):
        status, answer = await post_token(web, given)
        assert status == 200 and answer["company_id"] == salon.company_id, answer

    status, answer = await post_token(
        web, {"company_id": salon.company_id, "salon_id": other.salon_id}
    )
    assert refused(status, answer, 400, "invalid_field").startswith("company_id and salon_id")
    refused(*await post_token(web, {"salon_id": 31_337}), 404, "company_not_found")
    refused(*await post_token(web, {}), 400, "missing_field")
    status, answer = await post_token(web, {"salon_id": "twelve"})
    assert refused(status, answer, 400, "invalid_field").startswith("salon_id")


async def test_over_a_real_socket(server_settings: Settings) -> None:
    """The same API through Hypercorn (memory and PostgreSQL + Redis): a partner registers,
    retries, pages, looks up, mistakes a salon id for a company id; ``/docs`` and its files
    come with the page headers."""
    async with (
        running_server(server_settings) as server,
        httpx.AsyncClient(base_url=server.base, timeout=10.0) as http,
    ):
        ids = []
        for salon in (880001, 880002, 880003):
            answer = await http.post(
                "/marketplace/register", json={"salon_id": salon}, headers=server.admin
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["company_id"])
        again = await http.post(
            "/marketplace/register", json={"salon_id": 880002}, headers=server.admin
        )
        assert again.status_code == 409
        assert again.json()["company_id"] == ids[1]
        # The session's database may hold other tests' companies: walk every page.
        walked: list[int] = []
        query = "limit=2"
        while True:
            page = (await http.get(f"/marketplace/companies?{query}", headers=server.admin)).json()
            assert 1 <= len(page["companies"]) <= 2
            walked += [c["company_id"] for c in page["companies"]]
            if page["next_cursor"] is None:
                break
            query = f"limit=2&cursor={page['next_cursor']}"
        assert walked == sorted(set(walked)) and walked[-3:] == ids
        found = await http.get("/marketplace/companies/by-salon/880003", headers=server.admin)
        assert found.json()["company_id"] == ids[2]
        mistaken = await http.get("/marketplace/status/880003", headers=server.admin)
        assert mistaken.status_code == 404 and mistaken.json()["company_id"] == ids[2]

        page = await http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert '<script src="/static/docs.js"' in page.text
        script = await http.get("/static/docs.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert "innerHTML" not in script.text  # every text is set with textContent
        assert (await http.get("/static/docs.css")).status_code == 200
