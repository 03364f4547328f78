"""``/openapi.json`` against the real app: every route of ``app.url_map`` is documented (with
its methods), nothing documented is missing from the app, and documented auth is enforced."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import WebHarness, register

PARAM = re.compile(r"<(?:[^:<>]+:)?[^<>]+>|\{[^{}]+\}")
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def shape(path: str) -> str:
    """A path with every parameter (``<int:x>`` or ``{x}``) replaced by ``{}``."""
    return PARAM.sub("{}", path)


def app_routes(web: WebHarness) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for rule in web.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        methods = {"GET"} if rule.websocket else set(rule.methods or ()) - IGNORED_METHODS
        for method in methods:
            routes.add((method, shape(rule.rule)))
    return routes


async def fetch_document(web: WebHarness) -> dict[str, Any]:
    response = await web.client.get("/openapi.json")
    assert response.status_code == 200
    document = await response.get_json()
    assert isinstance(document, dict)
    return document


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), shape(path)) for path, item in document["paths"].items() for method in item
    }


async def test_every_app_route_is_documented(web: WebHarness) -> None:
    document = await fetch_document(web)
    missing = app_routes(web) - documented_routes(document)
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"


async def test_every_documented_route_exists(web: WebHarness) -> None:
    document = await fetch_document(web)
    stale = documented_routes(document) - app_routes(web)
    assert not stale, f"documented but not served: {sorted(stale)}"


async def test_document_is_well_formed(web: WebHarness) -> None:
    document = await fetch_document(web)
    assert document["openapi"].startswith("3.1")
    assert "ErrorResponse" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        declared = set(re.findall(r"\{([^{}]+)\}", path))
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == declared, (method, path)
            assert operation.get("operationId"), (method, path)
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))


def secured(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Operations the document says need credentials (a non-empty ``security`` list)."""
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    )


async def test_documented_auth_is_enforced(web: WebHarness) -> None:
    """Every operation documented with credentials refuses an anonymous caller with 401."""
    document = await fetch_document(web)
    operations = secured(document)
    assert ("GET", "/health/tree") in operations
    company = await register(web)
    for method, path in operations:
        url = re.sub(r"\{[^{}]+\}", str(company.company_id), path)
        response = await web.client.open(url, method=method, json={})
        assert response.status_code == 401, (method, path, await response.get_json())


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_openapi_is_public_json(web: WebHarness, path: str) -> None:
    response = await web.client.get(path)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
