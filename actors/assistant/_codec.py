"""Plain-JSON encoding of the assistant's frozen values, driven by their type hints.

The conversation state is stored as JSON after every turn (``ConversationState.to_json``), and
with it values from ``_commands`` and ``_effects`` (offered slots, a deferred turn's commands).
One rule for all of them, read from each dataclass's annotations, so a field added to a value
is stored without a second hand-written copy of its shape:

- ``int``, ``str``, ``bool``, ``float``, ``None`` as themselves; ``Decimal`` as a string;
- ``date`` / ``time`` / ``datetime`` as ISO strings (datetimes keep their UTC offset);
- enums by value; tuples as lists (``tuple[X, ...]`` and fixed ``tuple[X, Y]``);
- a dataclass as an object of its fields; where a field may hold one of several dataclasses
  (a union, e.g. ``Command``), the object carries its class name under ``"t"``.

``decode`` checks every value against the annotation and raises :class:`CodecError` on
anything else (a stored state from another version, a hand-edited row), never ``KeyError`` or
``TypeError``: the caller turns that into a fresh state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["CodecError", "decode", "encode"]

_TAG = "t"


class CodecError(ValueError):
    """A stored value does not have the shape its type says."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def encode(value: Any) -> Any:
    """``value`` (a dataclass, or anything a dataclass field may hold) as plain JSON types."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [encode(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {_TAG: type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode(getattr(value, f.name))
        return out
    raise CodecError(f"cannot encode {type(value).__name__}")


def decode(tp: Any, data: Any) -> Any:
    """``data`` (from :func:`encode`) read back as type ``tp``; :class:`CodecError` if it does
    not fit."""
    try:
        return _decode(tp, data)
    except CodecError:
        raise
    except (
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
        InvalidOperation,
        OverflowError,
    ) as exc:
        raise CodecError(f"cannot decode {tp!r}: {exc}") from exc


def _decode(tp: Any, data: Any) -> Any:
    if tp is Any:
        return data
    if tp is type(None) or tp is None:
        if data is not None:
            raise CodecError("expected null")
        return None
    union = _union_args(tp)
    if union is not None:
        return _decode_union(union, data)
    origin = typing.get_origin(tp)
    if origin is tuple:
        return _decode_tuple(typing.get_args(tp), data)
    if origin is dict:
        if not isinstance(data, dict):
            raise CodecError("expected an object")
        key_t, value_t = typing.get_args(tp)
        return {_decode(key_t, k): _decode(value_t, v) for k, v in data.items()}
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise CodecError(f"unexpected {data!r}")
        return data
    if isinstance(tp, type):
        return _decode_type(tp, data)
    raise CodecError(f"unsupported type {tp!r}")


def _decode_union(members: tuple[Any, ...], data: Any) -> Any:
    if data is None:
        if type(None) in members:
            return None
        raise CodecError("unexpected null")
    if isinstance(data, dict) and _TAG in data:
        for member in members:
            if isinstance(member, type) and member.__name__ == data[_TAG]:
                return _decode_type(member, data)
        raise CodecError(f"unexpected kind {data[_TAG]!r}")
    last: Exception | None = None
    for member in members:
        if member is type(None):
            continue
        try:
            return _decode(member, data)
        except (CodecError, TypeError, ValueError) as exc:
            last = exc
    raise CodecError(f"no member of the union fits: {last}")


def _decode_tuple(args: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise CodecError("expected a list")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], item) for item in data)
    if len(args) != len(data):
        raise CodecError("wrong tuple length")
    return tuple(_decode(t, item) for t, item in zip(args, data, strict=True))


def _decode_type(tp: type, data: Any) -> Any:
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise CodecError(f"expected an object for {tp.__name__}")
        if data.get(_TAG, tp.__name__) != tp.__name__:
            raise CodecError(f"expected {tp.__name__}, got {data.get(_TAG)!r}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CodecError(f"{tp.__name__}.{f.name} missing")
        return tp(**kwargs)
    if issubclass(tp, enum.Enum):
        return tp(data)
    if tp is bool:
        if not isinstance(data, bool):
            raise CodecError("expected a boolean")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise CodecError("expected an integer")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise CodecError("expected a number")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise CodecError("expected a string")
        return data
    if tp is Decimal:
        if not isinstance(data, str):
            raise CodecError("expected a decimal string")
        return Decimal(data)
    if not isinstance(data, str):
        raise CodecError(f"expected an ISO string for {tp.__name__}")
    if tp is dt.datetime:
        moment = dt.datetime.fromisoformat(data)
        if moment.tzinfo is None:
            raise CodecError("a datetime without its offset")
        return moment
    if tp is dt.date:
        return dt.date.fromisoformat(data)
    if tp is dt.time:
        return dt.time.fromisoformat(data)
    raise CodecError(f"unsupported type {tp.__name__}")
