"""Input validation for request bodies, path parameters and fields.

Every function either returns a clean, normalised value or raises one of the API errors from
:mod:`web._errors` (never anything else, whatever the input):

* :class:`~web._errors.UnsupportedMediaType` (415) — the body is not ``application/json``;
* :class:`~web._errors.PayloadTooLarge` (413) — the body is larger than allowed;
* :class:`~web._errors.BadRequest` (400) — ``malformed_json``, ``invalid_body`` (JSON but not
  an object), ``missing_field`` or ``invalid_field``; ``field`` names the culprit and the
  message says what is expected (it never echoes the bad value back).

Rules (from the design): ids are positive 32-bit integers (:data:`storage.MAX_ID`); phones
follow the one phone rule (:func:`actors.normalise_phone`: digits with the country code first,
``79001234567``); emails are checked pragmatically; strings are at most 255 characters after
stripping and never contain NUL or other control characters.

Each body-field validator is also a :class:`FieldRule` (:data:`ID`, :data:`PHONE`,
:data:`EMAIL`, :data:`TEXT`, :data:`BOOLEAN`, and rules made by :func:`one_of` and
:func:`integer_in`) that carries the JSON schema of what it accepts: the OpenAPI
document takes its field schemas from these, so the document and the checks cannot disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import trio
from werkzeug.exceptions import RequestEntityTooLarge

from actors import MAX_PHONE_TEXT, PHONE_TEXT_PATTERN, InvalidPhone, normalise_phone
from storage import MAX_ID

from ._errors import ApiError, BadRequest, PayloadTooLarge, UnsupportedMediaType

#: Seconds a client has to deliver a request body once its headers arrived (408 after).
BODY_TIMEOUT = 10.0

__all__ = [
    "BOOLEAN",
    "EMAIL",
    "ID",
    "PHONE",
    "TEXT",
    "FieldRule",
    "JsonRequest",
    "bounded_text",
    "has_lone_surrogate",
    "integer_in",
    "object_schema",
    "one_of",
    "optional_field",
    "parse_bool",
    "parse_id",
    "parse_json_object",
    "parse_phone",
    "read_json_object",
    "require_field",
    "validate_email",
]

T = TypeVar("T")

MAX_TEXT = 255


def _invalid(field: str, expected: str) -> BadRequest:
    return BadRequest(f"{field} must be {expected}.", code="invalid_field", field=field)


# -------------------------------------------------------------------------------- bodies


class JsonRequest(Protocol):
    """What :func:`read_json_object` needs of a Quart request."""

    @property
    def mimetype(self) -> str: ...

    @property
    def content_length(self) -> int | None: ...

    @property
    def body(self) -> Any: ...


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers could disagree on which duplicate wins; refuse the ambiguity.
            raise ValueError("duplicate key")
        result[key] = value
    return result


# A ``\uD800``–``\uDFFF`` escape: the only way a surrogate gets into a body that decoded as
# strict UTF-8 (a pair becomes one code point in ``json.loads``; a lone one stays a surrogate).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: object) -> bool:
    """Whether any string (value or object key) inside the JSON ``value`` holds a surrogate.

    Such text cannot be encoded as UTF-8: Redis, PostgreSQL, hashing and templates all fail on
    it, so it must be refused where it enters. Iterative, so depth costs no recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse ``raw`` (UTF-8 JSON) into a dict; :class:`BadRequest` if it is not one.

    Strict: UTF-8 only, no ``NaN``/``Infinity``, no duplicate keys, bounded nesting, and no
    lone surrogate (``"\\ud800"``) in any string or key: 400 ``invalid_unicode``.
    """
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            text = text[1:]
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest("The request body is not valid JSON.", code="malformed_json") from exc
    if _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(value):
        raise BadRequest(
            "The request body holds text that is not valid Unicode (an unpaired surrogate); "
            "send well-formed UTF-8 text.",
            code="invalid_unicode",
        )
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_body")
    return value


async def read_json_object(request: JsonRequest, *, max_bytes: int) -> dict[str, Any]:
    """Read the request body as a JSON object of at most ``max_bytes`` bytes.

    Checks, in order: ``Content-Type`` is ``application/json`` (parameters such as
    ``charset=utf-8`` allowed) else 415; the declared ``Content-Length`` and then the bytes
    actually received are ≤ ``max_bytes`` else 413 (reading stops as soon as the limit is
    passed, so a huge body costs at most ``max_bytes``); valid JSON else 400 ``malformed_json``;
    an object else 400 ``invalid_body``. Quart's own ``MAX_CONTENT_LENGTH`` overflow is mapped
    to the same 413. Cancellation while waiting for the body propagates unchanged.
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge()
    received = bytearray()
    # A client that trickles its body must not hold a handler (and a connection) forever.
    with trio.move_on_after(BODY_TIMEOUT) as waited:
        try:
            async for chunk in request.body:
                received.extend(chunk)
                if len(received) > max_bytes:
                    raise PayloadTooLarge()
        except RequestEntityTooLarge as exc:
            raise PayloadTooLarge() from exc
    if waited.cancelled_caught:
        raise ApiError(408, "request_timeout", "The request body did not arrive in time.")
    # Reading in chunks consumed the body; put it back so that ``await request.get_data()``
    # still returns it (a request forwarded to its salon's owner process is sent whole).
    request.body.append(bytes(received))
    return parse_json_object(bytes(received))


# -------------------------------------------------------------------------------- fields


_ID_TEXT = re.compile(r"[1-9][0-9]{0,9}")


def parse_id(value: object, field: str) -> int:
    """A positive 32-bit id (1 … 2**31-1) from an ``int`` or a decimal string.

    Refuses bools, floats (even ``5.0``), negatives, zero, leading zeros, signs, spaces,
    non-ASCII digits and anything above ``2**31 - 1`` with :class:`BadRequest` naming ``field``.
    """
    if isinstance(value, bool):
        raise _invalid(field, "a positive integer id")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _ID_TEXT.fullmatch(value):
        number = int(value)
    else:
        raise _invalid(field, "a positive integer id")
    if not 1 <= number <= MAX_ID:
        raise _invalid(field, f"a positive integer id no larger than {MAX_ID}")
    return number


def parse_phone(value: object, field: str = "phone") -> str:
    """A phone number in the canonical form, digits with the country code first (``79001234567``).

    The rule is :func:`actors.normalise_phone` with the Russian region (``+7 (900) 123-45-67``,
    ``8 900 123 45 67``, ``9001234567``, ``+44 20 7946 0958``, ``0044 …``); a JSON string of at
    most :data:`~actors.MAX_PHONE_TEXT` characters or a positive integer (its decimal digits)
    is read. Anything else raises :class:`BadRequest` naming ``field``; :data:`PHONE` documents
    the same in the OpenAPI schema.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid(field, "a phone number")
    if isinstance(value, int):
        if value <= 0:
            raise _invalid(field, "a phone number")
        value = str(value)
    try:
        return normalise_phone(value)
    except InvalidPhone:
        raise _invalid(field, "a phone number such as +7 900 123-45-67") from None


_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


def validate_email(value: object, field: str = "email") -> str:
    """A pragmatic e-mail check: ``local@domain.tld``, at most 255 characters.

    The local part is ASCII (dot-atom, ≤ 64); the domain has at least two labels, may be
    internationalised (``салон.рф`` is checked in its IDNA form) and is returned lowercased;
    the local part keeps its case. Surrounding whitespace is stripped.
    """
    if not isinstance(value, str):
        raise _invalid(field, "an e-mail address")
    text = value.strip()
    if not text or len(text) > MAX_TEXT or text.count("@") != 1:
        raise _invalid(field, "an e-mail address")
    local, domain = text.split("@")
    domain = domain.lower()
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise _invalid(field, "an e-mail address")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        raise _invalid(field, "an e-mail address") from None
    labels = ascii_domain.split(".")
    if (
        len(ascii_domain) > 253
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TLD.fullmatch(labels[-1])
    ):
        raise _invalid(field, "an e-mail address")
    return f"{local}@{domain}"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def bounded_text(
    value: object, field: str, max_len: int = MAX_TEXT, *, allow_empty: bool = False
) -> str:
    """A string stripped of surrounding whitespace, at most ``max_len`` characters.

    Refuses non-strings, NUL and other control characters (tab, CR and LF are allowed), and
    the empty string unless ``allow_empty``.
    """
    if not isinstance(value, str):
        raise _invalid(field, "a string")
    text = value.strip()
    if _CONTROL.search(text):
        raise _invalid(field, "text without control characters")
    if len(text) > max_len:
        raise _invalid(field, f"at most {max_len} characters")
    if not text and not allow_empty:
        raise _invalid(field, "a non-empty string")
    return text


# -------------------------------------------------------------------------- body fields


def require_field(obj: Mapping[str, Any], field: str, check: Callable[[Any, str], T]) -> T:
    """``check(obj[field], field)``; a missing or ``null`` field is 400 ``missing_field``.

    ``check`` is one of the validators above (or a ``functools.partial`` of one), e.g.
    ``require_field(body, "salon_id", parse_id)``.
    """
    value = obj.get(field)
    if value is None:
        raise BadRequest(f"{field} is required.", code="missing_field", field=field)
    return check(value, field)


def optional_field(obj: Mapping[str, Any], field: str, check: Callable[[Any, str], T]) -> T | None:
    """Like :func:`require_field`, but a missing or ``null`` field gives ``None``."""
    value = obj.get(field)
    if value is None:
        return None
    return check(value, field)


# ------------------------------------------------------------------ field rules and schemas


@dataclass(frozen=True)
class FieldRule(Generic[T]):
    """A body field's validator together with the JSON schema of what it accepts.

    Calling the rule validates (``rule(value, field)``), so it can be handed to
    :func:`require_field` / :func:`optional_field`; the OpenAPI document takes ``schema`` from
    the same object. The schema describes the raw JSON value (before stripping); every value
    the validator accepts is valid under it (tested), while some it allows are still refused
    (an impossible phone, control characters, and floats like ``5.0``, which JSON Schema counts
    as integers).
    """

    check: Callable[[Any, str], T]
    schema: Mapping[str, Any]

    def __call__(self, value: Any, field: str) -> T:
        return self.check(value, field)


#: A company or salon id: an integer 1 … MAX_ID, or the same in decimal digits.
ID: FieldRule[int] = FieldRule(
    parse_id,
    {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            {"type": "string", "pattern": f"^{_ID_TEXT.pattern}$"},
        ],
        "description": f"A positive id no larger than {MAX_ID}.",
    },
)

#: A phone: text of digits and separators, or a positive integer (see :func:`parse_phone`).
PHONE: FieldRule[str] = FieldRule(
    parse_phone,
    {
        "anyOf": [
            {
                "type": "string",
                "maxLength": MAX_PHONE_TEXT,
                "pattern": rf"^\s*{PHONE_TEXT_PATTERN}\s*$",
            },
            {"type": "integer", "minimum": 1},
        ],
        "description": (
            "A phone number: +7 (900) 123-45-67, 8 900 123 45 67, 9001234567, +44 20 7946 0958 "
            "or 0044 …; stored as digits with the country code first (79001234567)."
        ),
        "examples": ["+7 900 123-45-67"],
    },
)

#: An e-mail address (see :func:`validate_email`).
EMAIL: FieldRule[str] = FieldRule(
    validate_email, {"type": "string", "format": "email", "maxLength": MAX_TEXT}
)

#: Text of at most MAX_TEXT characters, no control characters (see :func:`bounded_text`).
TEXT: FieldRule[str] = FieldRule(
    bounded_text, {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
)


def parse_bool(value: object, field: str) -> bool:
    """JSON ``true`` or ``false`` only (not ``1``, ``"true"`` or ``null``)."""
    if not isinstance(value, bool):
        raise _invalid(field, "true or false")
    return value


#: A JSON boolean (see :func:`parse_bool`).
BOOLEAN: FieldRule[bool] = FieldRule(parse_bool, {"type": "boolean"})


def one_of(*choices: str) -> FieldRule[str]:
    """A rule for a string that must be exactly one of ``choices`` (case-sensitive)."""
    allowed = frozenset(choices)
    expected = "one of " + ", ".join(choices)

    def check(value: object, field: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _invalid(field, expected)
        return value

    return FieldRule(check, {"type": "string", "enum": list(choices)})


def integer_in(low: int, high: int) -> FieldRule[int]:
    """A rule for a JSON integer ``low`` … ``high`` (bools and floats such as ``5.0`` refused)."""

    def check(value: object, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _invalid(field, f"an integer from {low} to {high}")
        return value

    return FieldRule(check, {"type": "integer", "minimum": low, "maximum": high})


def object_schema(
    required: Mapping[str, FieldRule[Any]],
    optional: Mapping[str, FieldRule[Any]] | None = None,
) -> dict[str, Any]:
    """The JSON schema of a request body read with these rules (``require_field`` for
    ``required``, ``optional_field`` for ``optional``; ``null`` counts as absent)."""
    properties: dict[str, Any] = {name: dict(rule.schema) for name, rule in required.items()}
    for name, rule in (optional or {}).items():
        properties[name] = {"anyOf": [dict(rule.schema), {"type": "null"}]}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema
