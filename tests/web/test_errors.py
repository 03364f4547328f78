"""The JSON error shape, the ApiError classes and the handlers on a real Quart-Trio app."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from quart import Response, request
from quart_trio import QuartTrio

from web._errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    error_body,
    register_error_handlers,
)

SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoxfQ.c2lnbmF0dXJlc2lnbmF0dXJl"


def test_error_body_shape() -> None:
    assert error_body("invalid_field", "salon_id must be an id.") == {
        "success": False,
        "error": {"code": "invalid_field", "message": "salon_id must be an id."},
    }


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest(), 400, "bad_request"),
        (Unauthorized(), 401, "unauthorized"),
        (Forbidden(), 403, "forbidden"),
        (NotFound(), 404, "not_found"),
        (MethodNotAllowed(), 405, "method_not_allowed"),
        (Conflict(), 409, "conflict"),
        (Gone(), 410, "gone"),
        (PayloadTooLarge(), 413, "payload_too_large"),
        (UnsupportedMediaType(), 415, "unsupported_media_type"),
        (TooManyRequests(3), 429, "rate_limited"),
        (ServiceUnavailable(5), 503, "service_unavailable"),
    ],
)
def test_named_errors_have_status_and_default_code(error: ApiError, status: int, code: str) -> None:
    assert isinstance(error, ApiError)
    assert error.status == status
    assert error.code == code
    assert error.message.endswith(".")
    assert error.body() == error_body(code, error.message)


def test_bad_request_names_field_and_code() -> None:
    error = BadRequest(
        "salon_id must be a positive integer id.", code="invalid_field", field="salon_id"
    )
    assert (error.status, error.code, error.field) == (400, "invalid_field", "salon_id")
    assert "salon_id" in error.message
    assert "invalid_field" in repr(error)


def test_retry_after_is_whole_seconds_rounded_up_at_least_one() -> None:
    assert TooManyRequests(2.1).headers["Retry-After"] == "3"
    assert TooManyRequests(0).headers["Retry-After"] == "1"
    assert ServiceUnavailable(30).headers["Retry-After"] == "30"
    assert ServiceUnavailable(float("inf")).headers["Retry-After"] == "60"


def test_method_not_allowed_sets_allow() -> None:
    assert MethodNotAllowed(["post", "GET"]).headers == {"Allow": "GET, POST"}


def test_api_error_refuses_non_error_status() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        ApiError(200, "ok", "fine")


def make_app() -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024
    register_error_handlers(app)

    @app.get("/api-error")
    async def api_error() -> Response:
        raise TooManyRequests(12, "Slow down.")

    @app.get("/bad")
    async def bad() -> Response:
        raise BadRequest("phone must be a phone number.", code="invalid_field", field="phone")

    @app.get("/boom")
    async def boom() -> Response:
        raise RuntimeError(f"database password=hunter2 token {SECRET}")

    @app.get("/group")
    async def group() -> Response:
        # An ApiError raised inside a nursery arrives wrapped in a (strict) exception group.
        raise ExceptionGroup("nursery", [NotFound("No such company.")])

    @app.post("/upload")
    async def upload() -> Response:
        await request.get_data()
        return Response("ok")

    @app.get("/only-get")
    async def only_get() -> Response:
        return Response("ok")

    return app


async def body_of(response: Any) -> dict[str, Any]:
    data = json.loads(await response.get_data())
    assert isinstance(data, dict)
    return data


async def test_api_error_rendered_with_headers() -> None:
    client = make_app().test_client()
    response = await client.get("/api-error")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "12"
    assert response.mimetype == "application/json"
    assert await body_of(response) == error_body("rate_limited", "Slow down.")


async def test_bad_request_rendered() -> None:
    response = await make_app().test_client().get("/bad")
    assert response.status_code == 400
    assert await body_of(response) == error_body("invalid_field", "phone must be a phone number.")


async def test_unknown_route_is_json_404() -> None:
    response = await make_app().test_client().get("/nope")
    assert response.status_code == 404
    assert (await body_of(response))["error"]["code"] == "not_found"


async def test_wrong_method_is_json_405_with_allow() -> None:
    response = await make_app().test_client().post("/only-get")
    assert response.status_code == 405
    assert (await body_of(response))["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_quart_max_content_length_is_json_413() -> None:
    response = await make_app().test_client().post("/upload", data=b"x" * 2048)
    assert response.status_code == 413
    assert await body_of(response) == error_body("payload_too_large", PayloadTooLarge.MESSAGE)


async def test_unexpected_exception_is_generic_500_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="web.errors")
    response = await make_app().test_client().get("/boom?token=abc123")
    assert response.status_code == 500
    body = await body_of(response)
    assert body == error_body("internal_error", "Internal server error.")
    raw = json.dumps(body)
    assert "hunter2" not in raw
    assert "RuntimeError" not in raw
    records = [r for r in caplog.records if r.name == "web.errors"]
    assert len(records) == 1
    assert records[0].exc_info is not None  # traceback kept server-side
    assert "GET /boom?token=[REDACTED]" in records[0].getMessage()
    assert "abc123" not in records[0].getMessage()


async def test_api_error_inside_exception_group_is_rendered() -> None:
    response = await make_app().test_client().get("/group")
    assert response.status_code == 404
    assert await body_of(response) == error_body("not_found", "No such company.")
