"""The OpenAPI 3.1 builder over a route table like the lead's."""

from __future__ import annotations

import json

import pytest

from web._openapi import RouteDoc, build_openapi, openapi_path

REGISTER_SCHEMA = {
    "type": "object",
    "required": ["salon_id"],
    "properties": {"salon_id": {"type": "integer"}, "phone": {"type": "string"}},
}
STATUS_SCHEMA = {"type": "object", "properties": {"integration_status": {"type": "string"}}}

ROUTES = [
    RouteDoc("/marketplace/test", "GET", "Readiness of the marketplace endpoints"),
    RouteDoc(
        "/marketplace/register",
        "POST",
        "Register a salon",
        auth="admin",
        request_schema=REGISTER_SCHEMA,
        responses={201: "Registered", 409: "Already registered"},
        tags=("marketplace",),
    ),
    RouteDoc(
        "/marketplace/status/<int:companyId>",
        "GET",
        "Connection status",
        auth="company",
        response_schema=STATUS_SCHEMA,
        responses={200: "Status", 404: "No such company"},
    ),
    RouteDoc("/marketplace/qr/{token}", "GET", "Current QR code", auth="token"),
    RouteDoc(
        "/marketplace/connect",
        "GET",
        "Connect page",
        query={"token": {"type": "string"}, "company": {"type": "integer"}},
        content_type="text/html",
        responses={200: {"description": "HTML", "content": {"text/html": {}}}},
    ),
]


def test_document_shape() -> None:
    doc = build_openapi(ROUTES, servers=["https://ai-admin.app"])
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "AI Admin API", "version": "0.1.0"}
    assert doc["servers"] == [{"url": "https://ai-admin.app"}]
    assert set(doc["paths"]) == {
        "/marketplace/test",
        "/marketplace/register",
        "/marketplace/status/{companyId}",
        "/marketplace/qr/{token}",
        "/marketplace/connect",
    }
    json.dumps(doc)  # JSON-ready


def test_path_templating_and_parameters() -> None:
    doc = build_openapi(ROUTES)
    operation = doc["paths"]["/marketplace/status/{companyId}"]["get"]
    assert operation["parameters"] == [
        {
            "name": "companyId",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        }
    ]
    qr = doc["paths"]["/marketplace/qr/{token}"]["get"]
    assert qr["parameters"][0]["name"] == "token"
    assert qr["parameters"][0]["schema"] == {"type": "string"}


def test_security_and_error_responses() -> None:
    doc = build_openapi(ROUTES)
    register = doc["paths"]["/marketplace/register"]["post"]
    assert register["security"] == [{"AdminKey": []}]
    assert register["requestBody"]["content"]["application/json"]["schema"] == REGISTER_SCHEMA
    assert set(register["responses"]) == {"201", "400", "401", "409", "413", "415"}
    assert register["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert register["tags"] == ["marketplace"]
    status = doc["paths"]["/marketplace/status/{companyId}"]["get"]
    assert status["security"] == [{"CompanyKey": []}, {"CompanyToken": []}]
    assert {"401", "403", "404"} <= set(status["responses"])
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == STATUS_SCHEMA
    public = doc["paths"]["/marketplace/test"]["get"]
    assert public["security"] == []
    assert set(public["responses"]) == {"200"}
    assert set(doc["components"]["securitySchemes"]) == {
        "AdminKey",
        "CompanyKey",
        "CompanyToken",
        "SalonSession",
    }
    assert doc["components"]["schemas"]["ErrorResponse"]["properties"]["success"] == {
        "const": False
    }


def test_query_parameters_and_custom_response() -> None:
    connect = build_openapi(ROUTES)["paths"]["/marketplace/connect"]["get"]
    assert [p["name"] for p in connect["parameters"]] == ["token", "company"]
    assert all(p["in"] == "query" for p in connect["parameters"])
    assert connect["responses"]["200"] == {"description": "HTML", "content": {"text/html": {}}}


def test_operation_ids_are_unique() -> None:
    doc = build_openapi(ROUTES)
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "routes",
    [
        [RouteDoc("/x", "FETCH", "bad method")],
        [RouteDoc("/x", "GET", "bad auth", auth="jwt")],
        [RouteDoc("/x", "GET", "one"), RouteDoc("/x", "get", "two")],
        [RouteDoc("/x/<int:a", "GET", "broken template")],
    ],
)
def test_table_mistakes_are_errors(routes: list[RouteDoc]) -> None:
    with pytest.raises(ValueError):
        build_openapi(routes)


def test_openapi_path_converters() -> None:
    assert openapi_path("/a/<b>/<path:c>")[0] == "/a/{b}/{c}"
    assert openapi_path("/a/<float:x>")[1][0]["schema"] == {"type": "number"}
