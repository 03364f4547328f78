"""The fake's ASGI app: ``POST /v1/chat/completions`` answered from a per-test script."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import trio

__all__ = [
    "Answer",
    "FakeOpenAI",
    "SeenRequest",
    "hang",
    "raw",
    "status",
    "text_answer",
    "tool_call",
]

USAGE = {"prompt_tokens": 120, "completion_tokens": 17, "total_tokens": 137}


@dataclass(frozen=True)
class Answer:
    """One scripted answer: an HTTP status and body, or no answer at all (``hang``)."""

    status: int = 200
    body: bytes = b""
    hang: bool = False


@dataclass(frozen=True)
class SeenRequest:
    """A request the fake got: its path, headers (lower-case names) and JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


def _completion(message: dict[str, Any], usage: dict[str, int] | None) -> Answer:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE if usage is None else usage,
    }
    return Answer(200, json.dumps(payload, ensure_ascii=False).encode())


def tool_call(arguments: Any, *, usage: dict[str, int] | None = None) -> Answer:
    """A completion calling the function with ``arguments`` (a JSON value, or a string sent
    as is — malformed JSON included)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    call = {"id": "call_1", "type": "function", "function": {"name": "commands", "arguments": text}}
    return _completion({"role": "assistant", "content": None, "tool_calls": [call]}, usage)


def text_answer(content: str, *, usage: dict[str, int] | None = None) -> Answer:
    """A completion whose JSON is in the message text (as some servers answer)."""
    return _completion({"role": "assistant", "content": content}, usage)


def status(code: int, body: str = '{"error": {"message": "fake"}}') -> Answer:
    return Answer(code, body.encode())


def raw(body: bytes) -> Answer:
    return Answer(200, body)


def hang() -> Answer:
    """Never answer (the client's timeout must end the call)."""
    return Answer(hang=True)


class FakeOpenAI:
    """The fake's state: the script, the default answer and every request seen."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[SeenRequest] = []
        self._script: deque[Answer] = deque()
        self.default: Callable[[SeenRequest], Answer] = lambda _: status(500)

    def script(self, *answers: Answer) -> None:
        self._script.extend(answers)

    def _answer(self, request: SeenRequest) -> Answer:
        return self._script.popleft() if self._script else self.default(request)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            body = None
        seen = SeenRequest(scope["path"], headers, body)
        self.requests.append(seen)
        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            answer = status(404)
        else:
            answer = self._answer(seen)
        if answer.hang:
            await trio.sleep_forever()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
