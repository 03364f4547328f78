"""What the fake YClients records about each request, and how its answers are shaped."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    """One request as the fake saw it.

    ``time`` is ``trio.current_time()`` at arrival. ``status`` is the status answered (``None``
    if none was); ``outcome`` is ``pending``, ``answered``, ``hung`` (still waiting),
    ``closed`` (we dropped the connection) or ``disconnected`` (the client went away first).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    form: dict[str, list[str]]
    time: float
    client: str
    status: int | None = None
    outcome: str = "pending"

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def int_list(self, name: str) -> list[int]:
        """A ``name[]`` query list as ints (bad items dropped)."""
        out: list[int] = []
        for raw in self.query.get(f"{name}[]", []) + self.query.get(name, []):
            for part in raw.split(","):
                if part.strip().isdigit():
                    out.append(int(part))
        return out


@dataclass
class Fault:
    """An injected misbehaviour for requests whose path matches ``pattern`` (fnmatch).

    ``kind`` is ``status`` (answer ``status`` with ``message``/``codes``/``retry_after``),
    ``hang`` (answer nothing until ``release_hung()``; the request then proceeds) or ``close``
    (send the status line, then drop the connection). ``remaining`` is how many more requests
    it applies to (``None``: always). With ``after_handler`` the request is processed first
    (a booking is made) and only the answer is lost.
    """

    kind: str
    pattern: str
    method: str | None = None
    remaining: int | None = 1
    after_handler: bool = False
    status: int = 500
    message: str | None = None
    codes: tuple[int, ...] = ()
    retry_after: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class Reply:
    """An answer: JSON ``body`` (``None`` = empty), or ``raw`` bytes with their own type."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None


def ok(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> Reply:
    """YClients' success envelope."""
    return Reply(status, {"success": True, "data": data, "meta": meta if meta is not None else []})


def error(status: int, message: str, codes: tuple[int, ...] = ()) -> Reply:
    """YClients' error envelope: ``meta.message`` plus ``meta.errors[{code, message}]``."""
    meta: dict[str, Any] = {"message": message}
    if codes:
        meta["errors"] = [{"code": c, "message": message} for c in codes]
    return Reply(status, {"success": False, "data": None, "meta": meta})


def errors(status: int, items: list[tuple[int, str]]) -> Reply:
    """Several coded errors at once, the way ``book_check`` reports them."""
    return Reply(
        status,
        {
            "success": False,
            "data": None,
            "meta": {
                "message": "An error has occurred",
                "errors": [{"code": c, "message": m} for c, m in items],
            },
        },
    )
