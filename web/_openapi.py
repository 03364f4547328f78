"""Build the OpenAPI 3.1 document from a table of :class:`RouteDoc` rows.

The route table lives next to the routes (the lead's module); this module only turns it into a
document. Paths may be written Quart-style (``/marketplace/status/<int:companyId>``) or
OpenAPI-style (``/marketplace/status/{companyId}``); both come out as OpenAPI templates with a
required path parameter: ``integer`` (1 … ``MAX_ID``) for ``int`` converters and for an
OpenAPI-style name ending in ``Id`` (``{companyId}``, ``{salonId}``: our ids are integers),
else ``string`` (``{token}``, ``{secret}``).

Authentication schemes (``RouteDoc.auth``)::

    "none"      public
    "admin"     the partner/admin key in ``X-API-Key``
    "company"   the company's own ``sk_…`` key in ``X-API-Key`` or its JWT as a Bearer token
    "token"     the company JWT carried in the path or query (connect links)
    "salon"     the salon page's session cookie (state changes also need ``X-CSRF-Token``),
                or any ``"company"`` credential, or the admin key
    "salon_cookie"  the salon page's session cookie only (the page itself, log-out)

Every operation also documents the error shape (``ErrorResponse``) for the statuses listed in
``responses`` and, for authenticated routes, 401 and 403. Unknown auth names or methods raise
``ValueError`` — a typo in the table should fail a test, not ship a wrong document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from storage import MAX_ID

__all__ = ["AUTH_SCHEMES", "RouteDoc", "build_openapi", "openapi_path"]

OPENAPI_VERSION = "3.1.0"
#: A path id: ours and YClients' are positive 32-bit integers.
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
AUTH_SCHEMES = ("none", "admin", "company", "token", "salon", "salon_cookie")

_QUART_PARAM = re.compile(
    r"<(?:(?P<conv>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)
_OPENAPI_PARAM = re.compile(r"\{(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid_field"]},
                "message": {"type": "string"},
            },
        },
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "AdminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The partner/admin key.",
    },
    "CompanyKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A company's own sk_… key; valid for that company only.",
    },
    "CompanyToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A company's JWT (HS256, 24 h); valid for that company only.",
    },
    "SalonSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "aiadmin_salon",
        "description": "The salon page's session cookie; valid for that salon only. "
        "POST, PUT, PATCH and DELETE with it also need the page's X-CSRF-Token header.",
    },
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "admin": [{"AdminKey": []}],
    "company": [{"CompanyKey": []}, {"CompanyToken": []}],
    "token": [],  # the JWT is a path/query parameter, documented as such
    "salon": [{"SalonSession": []}, {"AdminKey": []}, {"CompanyKey": []}, {"CompanyToken": []}],
    "salon_cookie": [{"SalonSession": []}],
}

DEFAULT_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Invalid request",
    401: "Missing or invalid credentials",
    403: "Credentials not valid for this resource",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type (JSON only)",
    429: "Rate limited (see Retry-After)",
    500: "Internal error",
    503: "Unavailable (see Retry-After)",
}


@dataclass(frozen=True)
class RouteDoc:
    """One operation: ``path`` + ``method`` with its summary, auth and schemas.

    ``responses`` maps a status to either a description or a full OpenAPI response object;
    2xx statuses without content get ``response_schema`` as their JSON content. ``tags`` and
    ``description`` are optional; ``query`` maps query parameter names to JSON schemas.
    """

    path: str
    method: str
    summary: str
    auth: str = "none"
    request_schema: Mapping[str, Any] | None = None
    response_schema: Mapping[str, Any] | None = None
    responses: Mapping[int, str | Mapping[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    content_type: str = "application/json"


def openapi_path(path: str) -> tuple[str, list[dict[str, Any]]]:
    """A Quart or OpenAPI path as an OpenAPI template plus its path parameter objects."""
    parameters: list[dict[str, Any]] = []
    seen: set[str] = set()

    def quart_param(match: re.Match[str]) -> str:
        name = match.group("name")
        conv = match.group("conv") or "string"
        schema: dict[str, Any] = (
            dict(ID_SCHEMA)
            if conv == "int"
            else {"type": "number"}
            if conv == "float"
            else {"type": "string"}
        )
        if name not in seen:
            seen.add(name)
            parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    templated = _QUART_PARAM.sub(quart_param, path)
    for match in _OPENAPI_PARAM.finditer(templated):
        name = match.group("name")
        if name not in seen:
            seen.add(name)
            schema = dict(ID_SCHEMA) if name.endswith("Id") else {"type": "string"}
            parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if "<" in templated or ">" in templated:
        raise ValueError(f"cannot template path {path!r}")
    return templated, parameters


def _operation_id(method: str, path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", path)
    return method + "".join(w[:1].upper() + w[1:] for w in words)


def _response_object(
    status: int, spec: str | Mapping[str, Any] | None, route: RouteDoc
) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        return dict(spec)
    description = spec or DEFAULT_DESCRIPTIONS.get(status, "Response")
    response: dict[str, Any] = {"description": description}
    if status >= 400:
        response["content"] = {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
        }
    elif 200 <= status < 300 and status != 204 and route.response_schema is not None:
        response["content"] = {route.content_type: {"schema": dict(route.response_schema)}}
    return response


def _operation(route: RouteDoc, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    if route.auth not in _SECURITY:
        raise ValueError(f"unknown auth {route.auth!r} for {route.method} {route.path}")
    method = route.method.lower()
    operation: dict[str, Any] = {
        "operationId": _operation_id(method, route.path),
        "summary": route.summary,
        "security": _SECURITY[route.auth],
    }
    if route.description:
        operation["description"] = route.description
    if route.tags:
        operation["tags"] = list(route.tags)
    parameters = list(path_params)
    for name, schema in route.query.items():
        parameters.append({"name": name, "in": "query", "required": False, "schema": dict(schema)})
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(route.request_schema)}},
        }
    statuses: dict[int, str | Mapping[str, Any] | None] = dict(route.responses)
    if not any(100 <= s < 400 for s in statuses):  # 101: a WebSocket answers nothing else
        statuses[200] = None
    if route.request_schema is not None:
        for status in (400, 413, 415):
            statuses.setdefault(status, None)
    if route.auth in ("admin", "company", "token", "salon", "salon_cookie"):
        statuses.setdefault(401, None)
    if route.auth in ("company", "salon"):
        statuses.setdefault(403, None)
    operation["responses"] = {
        str(status): _response_object(status, statuses[status], route)
        for status in sorted(statuses)
    }
    return operation


def build_openapi(
    routes: Iterable[RouteDoc],
    *,
    title: str = "AI Admin API",
    version: str = "0.1.0",
    description: str | None = None,
    servers: Iterable[str] = (),
) -> dict[str, Any]:
    """An OpenAPI 3.1 document (a JSON-ready dict) describing ``routes``.

    Raises ``ValueError`` on an unknown method or auth name, an untemplatable path, or the
    same method and path twice.
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method = route.method.lower()
        if method not in METHODS:
            raise ValueError(f"unknown method {route.method!r} for {route.path}")
        template, path_params = openapi_path(route.path)
        item = paths.setdefault(template, {})
        if method in item:
            raise ValueError(f"{route.method.upper()} {template} is documented twice")
        item[method] = _operation(route, path_params)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"ErrorResponse": ERROR_SCHEMA},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
    server_list = [{"url": url} for url in servers]
    if server_list:
        document["servers"] = server_list
    return document
