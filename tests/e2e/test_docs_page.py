"""``/docs`` in headless Chromium against the real server (Hypercorn on a loopback port): the
page reads ``/openapi.json`` and lists every operation with its parameters and schemas, loads
nothing from another origin, breaks no CSP rule, and shows text from the document as text —
markup in it is never run or rendered."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from playwright.sync_api import Page, Request, Route

from ._browser import open_mobile_page, require_chromium, screenshot
from .conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENARIO_TIMEOUT = 90.0
XSS = '<img src="/static/logo.svg" onerror="window.__xss = 1" onload="window.__xss = 1">'


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def in_browser_thread(scenario: Any) -> None:
    require_chromium()
    with trio.fail_after(SCENARIO_TIMEOUT):
        await trio.to_thread.run_sync(scenario, abandon_on_cancel=True)


def open_docs(page: Page, url: str, requested: list[str]) -> None:
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(url, wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    script_src = csp.split("script-src")[1].split(";")[0]
    assert "'self'" in script_src and "unsafe" not in script_src and "http" not in script_src
    page.wait_for_selector("body[data-loaded='true']")


async def test_docs_list_every_operation_from_our_own_origin(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        document = (await client.get(server.url("/openapi.json"))).json()
    expected = sorted(
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    )
    assert len(expected) >= 30

    def scenario() -> None:
        requested: list[str] = []
        with open_mobile_page() as (page, log):
            open_docs(page, server.url("/docs"), requested)
            listed = page.eval_on_selector_all(
                "#docs-index-list li a",
                "links => links.map(a => a.textContent.replace(/^(\\w+)/, '$1 '))",
            )
            assert sorted(listed) == expected
            cards = page.locator("#docs-operations .operation")
            assert cards.count() == len(expected)
            assert page.inner_text("#docs-status") == f"{len(expected)} operations"
            # One operation in full: auth, typed path id, query parameters, schemas.
            card = page.locator("#op-getMarketplaceCompaniesBySalonSalonId")
            text = card.inner_text()
            assert "One company by YClients salon id" in text
            assert "partner/admin key (X-API-Key)" in text
            row = card.locator("tr.parameter").first
            assert row.locator(".parameter-name").inner_text() == "salonId"
            assert row.locator(".parameter-type").inner_text() == "integer, 1…2147483647"
            listing = page.locator("#op-getMarketplaceCompanies")
            names = listing.locator(".parameter-name").all_inner_texts()
            assert names == ["limit", "cursor", "status", "salon_id"]
            schema = json.loads(listing.locator("pre.schema").first.inner_text())
            assert "next_cursor" in schema["properties"]
            assert "ErrorResponse" in page.inner_text("#docs-schemas")
            # The filter narrows the list and the index together.
            page.fill("#docs-filter", "by-salon")
            page.wait_for_function(
                "() => document.querySelectorAll('#docs-operations .operation:not([hidden])')"
                ".length === 1"
            )
            visible = page.locator("#docs-index-list li:not([hidden])")
            assert visible.count() == 1
            # Readable on a phone: nothing is wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
                page.evaluate("document.documentElement.scrollWidth")
            )
            screenshot(page, "docs")
            assert log.problems(page) == [], log.console
        assert any(url.endswith("/static/docs.js") for url in requested)
        assert any(url.endswith("/openapi.json") for url in requested)
        foreign = [url for url in requested if origin(url) != server.base_url]
        assert foreign == [], foreign

    await in_browser_thread(scenario)


async def test_text_from_the_document_is_shown_never_run(server: RunningServer) -> None:
    """A document whose words hold markup (as a proxy or a bad edit could serve): the page
    shows the characters; no element is made of them and no handler runs."""
    hostile = {
        "openapi": "3.1.0",
        "info": {"title": XSS, "version": "1", "description": XSS},
        "paths": {
            "/x/{thingId}": {
                "get": {
                    "operationId": 'x"><img src=x onerror=alert(1)>',
                    "summary": XSS,
                    "description": "<b>bold</b>",
                    "security": [{XSS: []}],
                    "parameters": [
                        {
                            "name": XSS,
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "enum": [XSS]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": XSS,
                            "content": {"application/json": {"schema": {"title": XSS}}},
                        }
                    },
                }
            }
        },
        "components": {"schemas": {XSS: {"description": XSS}}},
    }

    def serve_hostile(route: Route, request: Request) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(hostile))

    def scenario() -> None:
        requested: list[str] = []
        with open_mobile_page() as (page, log):
            page.route("**/openapi.json", serve_hostile)
            open_docs(page, server.url("/docs"), requested)
            assert page.locator("img").count() == 0
            assert page.locator("b").count() == 0
            assert page.evaluate("window.__xss") is None
            assert page.inner_text("#docs-title") == XSS
            text = page.inner_text("#docs-operations")
            assert XSS in text and "<b>bold</b>" in text
            assert page.inner_text("#docs-status") == "1 operations"
            assert log.problems(page) == [], log.console
        assert [url for url in requested if origin(url) != server.base_url] == []

    await in_browser_thread(scenario)
