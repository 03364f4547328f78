"""``/openapi.json`` tells an integrator what comes back and what goes in: every 2xx answer of
every path has a schema, every id in a path is a typed integer, and real answers of the
partner's routes validate against the schemas the document gives for them."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from storage import MAX_ID
from tests.web.conftest import WebHarness, register
from tests.web.test_routes import link

#: Path parameters that are not ids: credentials carried in the path.
STRING_PARAMS = {"token", "secret", "phone"}  # phone: a client's number in the path (issue 16)
#: 2xx statuses that carry no body.
BODILESS = {"204"}


async def fetch_document(web: WebHarness) -> dict[str, Any]:
    response = await web.client.get("/openapi.json")
    assert response.status_code == 200
    document = await response.get_json()
    assert isinstance(document, dict)
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_every_success_answer_has_a_schema(web: WebHarness) -> None:
    document = await fetch_document(web)
    missing = []
    checked = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status in BODILESS:
                continue
            content = response.get("content") or {}
            schemas = [media.get("schema") for media in content.values()]
            if not schemas or not all(isinstance(s, dict) and s for s in schemas):
                missing.append(f"{method.upper()} {path} {status}")
            else:
                for schema in schemas:
                    jsonschema.Draft202012Validator.check_schema(schema)
            checked += 1
    assert not missing, f"2xx answers without a schema: {missing}"
    assert checked >= 30  # the whole API, not an empty document


async def test_every_path_id_is_a_typed_integer(web: WebHarness) -> None:
    document = await fetch_document(web)
    seen: set[str] = set()
    for method, path, operation in operations(document):
        declared = re.findall(r"\{([^{}]+)\}", path)
        params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
        assert set(params) == set(declared), (method, path)
        for name, param in params.items():
            seen.add(name)
            if name in STRING_PARAMS:
                assert param["schema"] == {"type": "string"}, (method, path, name)
                continue
            assert name.endswith("Id"), f"{path}: is {{{name}}} an id? name it so"
            assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}, (
                method,
                path,
                name,
            )
    assert {"companyId", "salonId", "token", "secret"} <= seen


def resolved(schema: Any, document: dict[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by what it names."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part]
            return resolved(target, document)
        return {key: resolved(value, document) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolved(item, document) for item in schema]
    return schema


def schema_of(document: dict[str, Any], method: str, path: str, status: int) -> Any:
    response = document["paths"][path][method]["responses"][str(status)]
    return resolved(response["content"]["application/json"]["schema"], document)


async def test_real_answers_fit_their_documented_schemas(web: WebHarness) -> None:
    document = await fetch_document(web)
    salon = await register(web, phone="79001112233", title="Салон")
    await link(web, salon)
    await register(web)

    async def check(method: str, path: str, url: str, status: int, **kwargs: Any) -> None:
        response = await web.client.open(url, method=method.upper(), **kwargs)
        body = await response.get_json()
        assert response.status_code == status, body
        jsonschema.validate(body, schema_of(document, method, path, status))

    admin = {"headers": web.admin}
    await check("get", "/marketplace/companies", "/marketplace/companies?limit=1", 200, **admin)
    await check("get", "/marketplace/companies", "/marketplace/companies?cursor=1", 200, **admin)
    by_salon = "/marketplace/companies/by-salon/{salonId}"
    await check("get", by_salon, f"/marketplace/companies/by-salon/{salon.salon_id}", 200, **admin)
    await check("get", by_salon, "/marketplace/companies/by-salon/5", 404, **admin)
    status = "/marketplace/status/{companyId}"
    await check("get", status, f"/marketplace/status/{salon.company_id}", 200, **admin)
    await check("get", status, f"/marketplace/status/{salon.salon_id}", 404, **admin)
    await check(
        "post", "/marketplace/token", "/marketplace/token", 200,
        json={"salon_id": salon.salon_id}, **admin,
    )  # fmt: skip
    await check(
        "post", "/marketplace/register", "/marketplace/register", 409,
        json={"salon_id": salon.salon_id}, **admin,
    )  # fmt: skip
    await check(
        "post", "/marketplace/connect-url", "/marketplace/connect-url", 200,
        json={"company_id": salon.company_id}, **admin,
    )  # fmt: skip
    await check("get", "/health/tree", "/health/tree", 200, **admin)
    await check("get", "/health/ready", "/health/ready", 200)
    # A schema that documents fields the answer lacks would let this pass: the schemas name
    # what they require.
    listed = schema_of(document, "get", "/marketplace/companies", 200)
    item = listed["properties"]["companies"]["items"]
    assert {"company_id", "salon_id", "integration_status", "phone", "created_at"} <= set(
        item["required"]
    )
    conflict = schema_of(document, "post", "/marketplace/register", 409)
    assert {"company_id", "salon_id"} <= set(conflict["allOf"][1]["properties"])
