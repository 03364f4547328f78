"""API errors and the one JSON shape every error answer has.

Every failure a client can see is ``{"success": false, "error": {"code": ..., "message": ...}}``
with the matching HTTP status. Handlers raise one of the classes below; the handlers that
:func:`register_error_handlers` installs turn them (and Quart's own HTTP errors, and any
unexpected exception) into that shape.

Hierarchy (shallow, named by what the client did wrong)::

    ApiError(status, code, message)       base; carries status, code, message, headers
    ├── BadRequest            400  invalid_field | missing_field | malformed_json | ...
    ├── Unauthorized          401  unauthorized
    ├── Forbidden             403  forbidden
    ├── NotFound              404  not_found
    ├── MethodNotAllowed      405  method_not_allowed (+ ``Allow``)
    ├── Conflict              409  conflict
    ├── Gone                  410  gone
    ├── PayloadTooLarge       413  payload_too_large
    ├── UnsupportedMediaType  415  unsupported_media_type
    ├── TooManyRequests       429  rate_limited (+ ``Retry-After``)
    └── ServiceUnavailable    503  service_unavailable (+ ``Retry-After``)

Messages are short English sentences safe to show to anyone: never a secret, a token, a stack
trace or an internal exception text. Unexpected exceptions become 500 ``internal_error`` with a
generic message; the traceback goes to the server log only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from ._security import redact_url

logger = logging.getLogger("web.errors")

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "body_response",
    "error_body",
    "error_response",
    "register_error_handlers",
]


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every error answer: ``{"success": false, "error": {code, message}}``."""
    return {"success": False, "error": {"code": code, "message": message}}


def _retry_after_value(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up, at least 1 (0 would invite a hot loop)."""
    if not math.isfinite(seconds):
        seconds = 60.0
    return str(max(1, math.ceil(seconds)))


class ApiError(Exception):
    """An error answer: HTTP ``status``, a stable machine ``code`` and a human ``message``.

    ``headers`` are added to the response (e.g. ``Retry-After``). Raise it (or a subclass)
    anywhere inside a request handler; the registered handler renders it.
    """

    status: int
    code: str
    message: str
    headers: dict[str, str]

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"an API error needs a 4xx or 5xx status, got {status}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """This error as the JSON body (see :func:`error_body`)."""
        return error_body(self.code, self.message)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status}, code={self.code!r}, message={self.message!r})"


class _FixedStatus(ApiError):
    """An :class:`ApiError` whose status is fixed by the class; code and message default."""

    STATUS = 500
    CODE = "error"
    MESSAGE = "Error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(self.STATUS, code or self.CODE, message or self.MESSAGE, headers=headers)


class BadRequest(_FixedStatus):
    """400: the request is malformed or a field is invalid; ``field`` names the culprit."""

    STATUS = 400
    CODE = "bad_request"
    MESSAGE = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.field = field
        super().__init__(message, code=code, headers=headers)


class Unauthorized(_FixedStatus):
    """401: no credentials, or credentials we do not accept."""

    STATUS = 401
    CODE = "unauthorized"
    MESSAGE = "Authentication is required."


class Forbidden(_FixedStatus):
    """403: valid credentials, but not for this resource (e.g. another company's data)."""

    STATUS = 403
    CODE = "forbidden"
    MESSAGE = "You do not have access to this resource."


class NotFound(_FixedStatus):
    """404: no such resource (or route)."""

    STATUS = 404
    CODE = "not_found"
    MESSAGE = "Not found."


class MethodNotAllowed(_FixedStatus):
    """405: the route exists but not for this method; ``allowed`` fills the ``Allow`` header."""

    STATUS = 405
    CODE = "method_not_allowed"
    MESSAGE = "This method is not allowed here."

    def __init__(
        self,
        allowed: Iterable[str] = (),
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        merged = dict(headers or {})
        methods = sorted({m.upper() for m in allowed})
        if methods:
            merged["Allow"] = ", ".join(methods)
        super().__init__(message, code=code, headers=merged)


class Conflict(_FixedStatus):
    """409: the resource already exists or is in a state that forbids the request."""

    STATUS = 409
    CODE = "conflict"
    MESSAGE = "The request conflicts with the current state."


class Gone(_FixedStatus):
    """410: the resource existed but is gone for good (e.g. an expired link)."""

    STATUS = 410
    CODE = "gone"
    MESSAGE = "This resource is no longer available."


class PayloadTooLarge(_FixedStatus):
    """413: the body is larger than we accept."""

    STATUS = 413
    CODE = "payload_too_large"
    MESSAGE = "The request body is too large."


class UnsupportedMediaType(_FixedStatus):
    """415: the body is not ``application/json``."""

    STATUS = 415
    CODE = "unsupported_media_type"
    MESSAGE = "The request body must be application/json."


class TooManyRequests(_FixedStatus):
    """429: a rate limit was hit; ``retry_after`` seconds go to the ``Retry-After`` header."""

    STATUS = 429
    CODE = "rate_limited"
    MESSAGE = "Too many requests, please wait and try again."

    def __init__(
        self,
        retry_after: float,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry_after = retry_after
        merged = dict(headers or {})
        merged["Retry-After"] = _retry_after_value(retry_after)
        super().__init__(message, code=code, headers=merged)


class ServiceUnavailable(_FixedStatus):
    """503: we are overloaded or a dependency is down; try again after ``retry_after`` s."""

    STATUS = 503
    CODE = "service_unavailable"
    MESSAGE = "The service is temporarily unavailable, please try again later."

    def __init__(
        self,
        retry_after: float,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry_after = retry_after
        merged = dict(headers or {})
        merged["Retry-After"] = _retry_after_value(retry_after)
        super().__init__(message, code=code, headers=merged)


# Quart/werkzeug HTTP errors by status: our code and a short message (their own descriptions
# are long, HTML-flavoured and sometimes echo request details).
_HTTP_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: (BadRequest.CODE, BadRequest.MESSAGE),
    401: (Unauthorized.CODE, Unauthorized.MESSAGE),
    403: (Forbidden.CODE, Forbidden.MESSAGE),
    404: (NotFound.CODE, NotFound.MESSAGE),
    405: (MethodNotAllowed.CODE, MethodNotAllowed.MESSAGE),
    408: ("request_timeout", "The request took too long to arrive."),
    409: (Conflict.CODE, Conflict.MESSAGE),
    410: (Gone.CODE, Gone.MESSAGE),
    411: ("length_required", "The request needs a Content-Length."),
    413: (PayloadTooLarge.CODE, PayloadTooLarge.MESSAGE),
    414: ("uri_too_long", "The request URL is too long."),
    415: (UnsupportedMediaType.CODE, UnsupportedMediaType.MESSAGE),
    429: (TooManyRequests.CODE, TooManyRequests.MESSAGE),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("internal_error", "Internal server error."),
    501: ("not_implemented", "Not implemented."),
    503: (ServiceUnavailable.CODE, ServiceUnavailable.MESSAGE),
}
# Headers of a werkzeug HTTPException worth keeping in our JSON answer.
_KEPT_HTTP_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

INTERNAL_ERROR_CODE = "internal_error"
INTERNAL_ERROR_MESSAGE = "Internal server error."


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON error :class:`quart.Response` in the shape of :func:`error_body`."""
    return body_response(status, error_body(code, message), headers=headers)


def body_response(
    status: int, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON :class:`quart.Response` of ``body`` (an error body, perhaps with fields an
    :class:`ApiError` subclass adds beside ``error``, such as an existing ``company_id``)."""
    response = Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_exception_response(error: HTTPException) -> Response:
    status = error.code or 500
    if status in _HTTP_STATUS_ERRORS:
        code, message = _HTTP_STATUS_ERRORS[status]
    elif status >= 500:
        code, message = INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE
    else:
        code, message = "http_error", "The request could not be handled."
    kept: dict[str, str] = {}
    for name, value in error.get_headers():
        if name.lower() in (h.lower() for h in _KEPT_HTTP_HEADERS):
            kept[name] = value
    return error_response(status, code, message, headers=kept)


def _request_label() -> str:
    """``METHOD /path?query`` of the current request with secrets redacted, for logs."""
    try:
        full = request.full_path if request.query_string else request.path
        return f"{request.method} {redact_url(full)}"
    except RuntimeError:  # no request context (e.g. websocket or background task)
        return "(no request)"


def register_error_handlers(app: Quart) -> None:
    """Render every error on ``app`` as JSON in the :func:`error_body` shape.

    * :class:`ApiError` → its status, code, message and headers.
    * Quart/werkzeug ``HTTPException`` (404 unknown route, 405 wrong method with ``Allow``,
      413 ``RequestEntityTooLarge`` from ``MAX_CONTENT_LENGTH`` ...) → the same shape with a
      short message of ours. Routing redirects (``RequestRedirect``) are left to Quart.
    * Anything else → 500 ``internal_error`` with a generic message; the exception and its
      traceback are logged (request path redacted), never sent to the client.
    """

    async def handle_api_error(error: ApiError) -> Response:
        if error.status >= 500:
            logger.warning("%s -> %d %s", _request_label(), error.status, error.code)
        return body_response(error.status, error.body(), headers=error.headers)

    async def handle_http_exception(error: HTTPException) -> Response:
        # A 500 arriving here (InternalServerError wrapping an error raised outside the view,
        # e.g. in an after_request hook) was already logged by Quart's handle_exception.
        return _http_exception_response(error)

    async def handle_unexpected(error: Exception) -> Response:
        logger.error(
            "unhandled error in %s",
            _request_label(),
            exc_info=(type(error), error, error.__traceback__),
        )
        return error_response(500, INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE)

    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
