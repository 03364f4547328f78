"""One call to an OpenAI-compatible chat API: ``POST {base}/chat/completions``.

The request asks for one function call (``tools`` + ``tool_choice``) whose parameters are the
command schema, at temperature 0. The answer's JSON is read from the tool call's arguments,
else from the message text (some servers ignore ``tools`` and answer with plain text JSON,
possibly in a fenced code block).

Servers that refuse a forced function call are met once per model: a 400 that names
``tools`` / ``tool_choice`` (or any 400 before the model has answered once) is retried at once
with ``response_format: {"type": "json_schema", ...}`` and, when that is refused too, with
the schema as plain JSON instructions in the prompt; the mode that works is remembered for
that model (the client has one base URL), so later calls go straight to it.

Every failure is an :class:`LlmError` with a short ``reason`` (a metric label); the API key
is sent only in the ``Authorization`` header and appears in no error, log line or ``repr``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import trio

__all__ = ["CHARS_PER_TOKEN", "MAX_RESPONSE_BYTES", "LlmClient", "LlmError", "LlmReply", "Mode"]

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)

#: How a model is asked for its JSON: a forced function call, a JSON-schema response format,
#: or the schema as instructions in the prompt (read from the message text).
Mode = Literal["tools", "json_schema", "json_text"]
#: The mode tried next when a server refuses one with a 400.
_DOWNGRADE: dict[Mode, Mode] = {"tools": "json_schema", "json_schema": "json_text"}
#: Words of a 400's body that say the refused part is this mode's.
_REFUSAL_WORDS: dict[Mode, tuple[str, ...]] = {
    "tools": ("tool", "function"),
    "json_schema": ("response_format", "json_schema", "response format"),
    "json_text": (),
}
#: Characters per token when a server reports no usage: about 4 for English, fewer for
#: Russian, so an estimate may count low; it is there so that such a server is capped at all.
CHARS_PER_TOKEN = 4
#: The most bytes of an answer read: a function call's JSON is a few hundred bytes, and a
#: server (or anything in its place) streaming megabytes would hold the node's memory and time;
#: past it the call fails with ``too_large`` and the rest is not read.
MAX_RESPONSE_BYTES = 256 * 1024
_JSON_INSTRUCTION = (
    'Ответь только JSON-объектом — аргументами функции "{name}", без текста вокруг. '
    "JSON-схема ответа: {schema}"
)


class LlmError(Exception):
    """A model call that gave no usable JSON; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class LlmReply:
    """The JSON value the model returned, and the tokens the call cost (``estimated``: the
    server reported no usable ``usage``, so they are counted from characters)."""

    value: Any
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


class LlmClient:
    """An OpenAI-compatible chat client (one ``httpx.AsyncClient``, closed by ``aclose``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._modes: dict[str, Mode] = {}  # by model: how it is asked, once a server refused
        self._answered: set[str] = set()  # models that gave a 2xx answer in their mode
        # identity: a compressed answer could expand past MAX_RESPONSE_BYTES in one chunk
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        # scheme and host only: a path may hold a tenant or a token some providers put there
        shown = urlsplit(self._base_url)
        origin = f"{shown.scheme}://{shown.netloc.rpartition('@')[2]}"
        return f"<LlmClient base_url={origin!r} api_key=*** timeout={self._timeout}>"

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` ran (the connection pool is released)."""
        return self._http.is_closed

    def mode(self, model: str) -> Mode:
        """How ``model`` is asked now: ``tools`` until a server refused it."""
        return self._modes.get(model, "tools")

    async def call(
        self,
        model: str,
        messages: list[dict[str, str]],
        function_name: str,
        parameters: dict[str, Any],
    ) -> LlmReply:
        """The JSON the model gave for one function call; :class:`LlmError` on any failure
        (the whole call, connecting and a downgrade's retries included, is bounded by the
        timeout)."""
        url = f"{self._base_url}/chat/completions"
        try:
            with trio.fail_after(self._timeout):
                while True:
                    mode = self.mode(model)
                    body = _body(mode, model, messages, function_name, parameters)
                    status, content = await self._post(url, body)
                    lower = _DOWNGRADE.get(mode)
                    if status != 400 or lower is None:
                        break
                    text = content.decode("utf-8", "replace")
                    if model in self._answered and not _refuses(mode, text):
                        break
                    log.info("model %s refused %s (400): asking with %s", model, mode, lower)
                    if self.mode(model) == mode:  # a concurrent call may have gone lower already
                        self._modes[model] = lower
        except (trio.TooSlowError, httpx.TimeoutException):
            raise LlmError("timeout") from None
        except httpx.HTTPError as exc:
            raise LlmError("connect", type(exc).__name__) from None
        if status == 429:
            raise LlmError("http_429")
        if status >= 500:
            raise LlmError("http_5xx", str(status))
        if status >= 300:
            raise LlmError("http_4xx", str(status))
        self._answered.add(model)
        try:
            payload = json.loads(content)
        except ValueError:
            raise LlmError("malformed", "response is not JSON") from None
        return _reply(payload, len(json.dumps(body, ensure_ascii=False)))

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """The status and body of one request, reading at most :data:`MAX_RESPONSE_BYTES`
        (``too_large`` past it: the connection is closed with the rest unread)."""
        async with self._http.stream("POST", url, json=body) as response:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > MAX_RESPONSE_BYTES:
                    raise LlmError("too_large", f"over {MAX_RESPONSE_BYTES} bytes")
            return response.status_code, bytes(content)


def _body(
    mode: Mode,
    model: str,
    messages: list[dict[str, str]],
    function_name: str,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """The request body of one call in ``mode``."""
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": 0}
    if mode == "tools":
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": function_name,
                    "description": "The commands in the client's last message.",
                    "parameters": parameters,
                },
            }
        ]
        body["tool_choice"] = {"type": "function", "function": {"name": function_name}}
    elif mode == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": function_name, "schema": parameters},
        }
    else:
        schema = json.dumps(parameters, ensure_ascii=False)
        instruction = _JSON_INSTRUCTION.format(name=function_name, schema=schema)
        body["messages"] = _with_instruction(messages, instruction)
    return body


def _with_instruction(messages: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    """``messages`` with ``instruction`` at the end of the leading system message (some chat
    templates refuse a system message anywhere but first)."""
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _refuses(mode: Mode, text: str) -> bool:
    """Whether a 400's body names what ``mode`` sends (then that mode is what was refused)."""
    lowered = text.lower()
    return any(word in lowered for word in _REFUSAL_WORDS[mode])


def _reply(payload: Any, prompt_chars: int) -> LlmReply:
    """The JSON value and usage of a chat completion; :class:`LlmError` when there is none.
    Without a usable ``usage`` (both counts non-negative integers) the tokens are estimated:
    the request body's characters (``prompt_chars``) and the answer's text, each divided by
    :data:`CHARS_PER_TOKEN` and rounded up."""
    try:
        message = payload["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise LlmError("malformed", "no choices[0].message") from None
    if not isinstance(message, dict):
        raise LlmError("malformed", "message is not an object")
    text: Any = None
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        first = calls[0]
        function = first.get("function") if isinstance(first, dict) else None
        text = function.get("arguments") if isinstance(function, dict) else None
    if text is None:
        text = message.get("content")
    if isinstance(text, dict):  # a few servers send the arguments already parsed
        value: Any = text
    elif isinstance(text, str) and text.strip():
        value = _json_of(text)
    else:
        raise LlmError("malformed", "neither a tool call nor text")
    usage = payload.get("usage") if isinstance(payload, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if prompt is not None and completion is not None:
        return LlmReply(value, prompt, completion)
    answer = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    return LlmReply(value, _estimate(prompt_chars), _estimate(len(answer)), estimated=True)


def _json_of(text: str) -> Any:
    """The JSON in ``text``: all of it, or the first fenced block."""
    candidates = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced is not None:
        candidates.insert(0, fenced.group(1).strip())
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise LlmError("malformed", "text is not JSON")


def _count(value: Any) -> int | None:
    """A reported token count, or ``None`` when it is not a non-negative integer."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _estimate(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)
