"""Value checks run before anything reaches a backend.

PostgreSQL refuses NUL characters in ``text`` and ``jsonb`` and our columns have lengths; a
bad value must become a :class:`ValidationError` (a 400 upstream), never a driver error.
Text that UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``, which ``json.loads``
produces from an escape) is refused here too, so the in-memory twins refuse exactly what
PostgreSQL and Redis would, and nothing stored can break a page or a hash later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._errors import ValidationError

MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 32
#: PostgreSQL ``integer``: the bound of our integer columns.
MAX_INT32 = 2**31 - 1
#: The largest company or salon id (``integer`` columns); the web and the actors check
#: request fields, tokens and webhooks against this one value.
MAX_ID = MAX_INT32
#: PostgreSQL ``bigint``: YClients' record, client and staff ids.
MAX_BIGINT = 2**63 - 1


_SURROGATE = re.compile("[\ud800-\udfff]")
UNENCODABLE = "must be valid Unicode text (no unpaired surrogates)"


def encodable(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (holds no lone surrogate)."""
    return _SURROGATE.search(value) is None


def text(field: str, value: object, max_len: int) -> str:
    """A ``str`` of at most ``max_len`` characters without NUL or lone surrogates."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    if _SURROGATE.search(value):
        raise ValidationError(field, UNENCODABLE)
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters, got {len(value)}")
    return value


def optional_text(field: str, value: object, max_len: int) -> str | None:
    return None if value is None else text(field, value, max_len)


def clipped(field: str, value: object, max_len: int) -> str | None:
    """Diagnostic text (``last_error``): NULs replaced and clipped instead of refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, got {type(value).__name__}")
    return _SURROGATE.sub("\ufffd", value.replace("\x00", "\ufffd"))[:max_len]


def positive_int(field: str, value: object, *, high: int = MAX_INT32) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if not 1 <= value <= high:
        raise ValidationError(field, f"must be between 1 and {high}")
    return value


def optional_int(field: str, value: object) -> int | None:
    return None if value is None else positive_int(field, value)


def optional_number(field: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(field, "must be a finite number")
    return float(value)


def boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be true or false, got {type(value).__name__}")
    return value


def timestamp(field: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    return value


def positive_seconds(field: str, value: object) -> float:
    number = optional_number(field, value)
    if number is None or number <= 0:
        raise ValidationError(field, "must be a positive number of seconds")
    return number


def _check_json(field: str, value: object, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(field, f"nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError(field, "must not contain NUL characters")
        if _SURROGATE.search(value):
            raise ValidationError(field, UNENCODABLE)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, "object keys must be text")
            _check_json(field, key, depth + 1)
            _check_json(field, item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(field, item, depth + 1)
    elif value is None or isinstance(value, bool | int):
        return
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(field, "must hold finite numbers only")
    else:
        raise ValidationError(field, f"cannot store {type(value).__name__} as JSON")


def json_object(field: str, value: object) -> dict[str, Any]:
    """A JSON object (dict) without NULs, bounded in depth and size; returned as a copy."""
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a JSON object, got {type(value).__name__}")
    _check_json(field, value, 0)
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded.encode()) > MAX_JSON_BYTES:
        raise ValidationError(field, f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    result: dict[str, Any] = json.loads(encoded)
    return result


def optional_json_object(field: str, value: object) -> dict[str, Any] | None:
    return None if value is None else json_object(field, value)


def json_value(field: str, value: object) -> Any:
    """Any JSON-able value (for pub/sub messages), checked like :func:`json_object`."""
    _check_json(field, value, 0)
    return value
