"""An ASGI wrapper that keeps Hypercorn's HTTP/1.1 connections honest after each response.

Two things go wrong between Quart-Trio and Hypercorn's trio worker without it:

* **The connection's bookkeeping is cancelled.** Hypercorn recycles a keep-alive connection
  (or closes it) inside the app's last ``send`` of a response, in the app's task. Quart-Trio
  cancels that task as soon as its message reader sees ``http.disconnect``, which Hypercorn
  posts during that very bookkeeping. So the close after a response whose body was not read
  (a 413 on the declared ``Content-Length``) never happens: the next request on that
  connection hangs. And after an ordinary response the idle (header) timer is never
  restarted: the connection may then dribble a header line every few seconds for as long as
  Hypercorn's 16 KiB header buffer lasts. The last send is therefore shielded, for at most
  :data:`FINAL_SEND_TIMEOUT` seconds.
* **An unread body.** A response that starts before the request body was received in full
  carries ``Connection: close``: the client knows not to send its next request on this
  connection, and Hypercorn closes it once the response is out instead of parsing the rest of
  the rejected body as the next request.

WebSocket and lifespan scopes pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveEvent, ASGISendEvent, Scope

__all__ = ["FINAL_SEND_TIMEOUT", "ConnectionGuard"]

#: Seconds the last send of a response (and Hypercorn's recycle or close behind it) may take
#: while shielded from the app's own cancellation.
FINAL_SEND_TIMEOUT = 5.0


def _declares_body(scope: Scope) -> bool:
    """Whether the request's head announces a body (a positive length, or chunked)."""
    headers = cast(Iterable[tuple[bytes, bytes]], scope.get("headers", ()))
    for name, value in headers:
        lowered = bytes(name).lower()
        if lowered == b"transfer-encoding":
            return True
        if lowered == b"content-length" and bytes(value).strip() not in (b"", b"0"):
            return True
    return False


class ConnectionGuard:
    """Wraps an ASGI app; see the module docstring for what it fixes and why."""

    def __init__(self, app: ASGIFramework) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_received = not _declares_body(scope)

        async def receive_tracked() -> ASGIReceiveEvent:
            nonlocal body_received
            message: ASGIReceiveEvent = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_received = True
            return message

        async def send_guarded(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and not body_received:
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if bytes(name).lower() != b"connection"
                ]
                headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.move_on_after(FINAL_SEND_TIMEOUT) as final:
                    final.shield = True
                    await send(message)
                return
            await send(message)

        await self.app(scope, receive_tracked, send_guarded)
