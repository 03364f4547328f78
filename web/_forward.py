"""Ask any process: an HTTP request for a salon whose actor runs in another process of the
cluster is proxied to that process (the salon's *owner*), and the owner's answer is returned
unchanged.

Where: a route gets the company's actor through :func:`company_ref`, which raises
:class:`actors.company.OwnedElsewhere` with the owner's node id at once when the placement
gives the salon to another live process (no actor is started here just to refuse: concurrent
requests would meet it stopping, ``ActorUnavailable``); the company actor itself answers the
same when ownership is being handed over. The app's handler for it calls
:meth:`Forwarder.forward` with the request still open. The whole request goes as is —
method, path (raw, as received), query, headers (minus hop-by-hop ones), body — so the owner
authenticates it again and runs the same route; nothing the entry process did is trusted.
Routes that ask a company actor do so before their own writes (the owner's replay finds what
an earlier step wrote, e.g. an install redirect naming several salons registered the first
one already). A body a route read with :func:`web._validation.read_json_object` stays
readable for the hop; any body is bounded by ``AIADMIN_MAX_BODY_BYTES`` (413 above it) and
by ``web._validation.BODY_TIMEOUT`` to arrive (408).

The hop is marked: ``X-AIAdmin-Hop: <entry node id>``. A process that receives a hopped
request and is still not the owner never forwards again: it answers 503 ``ownership_moving``
with ``Retry-After: 1`` (ownership is moving between processes, a retry lands on the new
owner). The same answer comes when the owner has no known address (it stopped heartbeating), a
malformed one (a corrupt member entry: ``bad_address``), cannot be reached, or drops the
connection.
An owner slower than ``AIADMIN_REQUEST_TIMEOUT`` (plus :data:`OWNER_ANSWER_MARGIN`, so the
owner's own 503 ``request_timeout`` gets back) answers 503 ``request_timeout``.

Client IP: the entry process signs the hop (``X-AIAdmin-Hop-Client`` carries the client IP it
determined, ``X-AIAdmin-Hop-Time`` the Unix time of sending, ``X-AIAdmin-Hop-Body-SHA256`` the
body's digest, ``X-AIAdmin-Hop-Signature`` an HMAC-SHA256 over all three plus node id,
method, path and raw query string, keyed from ``JWT_SECRET``, which every process of a
cluster must share: settings refuse cluster mode without it). The owner believes the stated
client IP only when the signature checks, the time is within :data:`HOP_MAX_SKEW` of its own
wall clock and the body it received has that digest; it then also skips the per-IP API rate
limit, which the entry process already counted in the limiter both share through Redis. An
unsigned, badly signed, stale or altered hop is an ordinary request from its peer (its IP
from ``AIADMIN_TRUSTED_PROXIES`` rules, counted again), so cluster peers need not be listed
as trusted proxies, a client cannot skip the rate limit by sending the header, and a captured
hop cannot be replayed later or with another query or body. ``X-Real-IP`` is overwritten
with the entry's client IP and the peer is appended to ``X-Forwarded-For``, as a proxy does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import httpx
import trio
from quart import Response, g, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from actors import Node
from actors.company import OwnedElsewhere
from metrics import MetricsRegistry
from runtime import ActorRef

from ._errors import error_response
from ._validation import BODY_TIMEOUT

log = logging.getLogger("aiadmin.forward")

HOP_HEADER = "X-AIAdmin-Hop"
HOP_CLIENT_HEADER = "X-AIAdmin-Hop-Client"
HOP_SIGNATURE_HEADER = "X-AIAdmin-Hop-Signature"
HOP_TIME_HEADER = "X-AIAdmin-Hop-Time"
HOP_BODY_HEADER = "X-AIAdmin-Hop-Body-SHA256"
_OURS = frozenset(
    h.lower()
    for h in (HOP_HEADER, HOP_CLIENT_HEADER, HOP_SIGNATURE_HEADER, HOP_TIME_HEADER, HOP_BODY_HEADER)
)
#: Seconds a signed hop stays believable either side of the receiver's wall clock (clocks of
#: a cluster's machines agree far better; a captured hop is worthless after this).
HOP_MAX_SKEW = 30.0
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

#: Hop-by-hop headers (RFC 9110 §7.6.1) and what the next hop computes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
#: Response headers the entry process's own server writes again.
_SERVER_WRITTEN = frozenset({"date", "server"})

#: Seconds beyond the request timeout a forward may take, so that an owner's own 503
#: ``request_timeout`` answer (sent at its request timeout) still gets back.
OWNER_ANSWER_MARGIN = 1.0
#: Seconds to open a connection to the owner (a dead process on a live host refuses at once).
CONNECT_TIMEOUT = 2.0
#: Retry-After of a 503 ``ownership_moving``.
MOVING_RETRY_AFTER = "1"
_SIGNING_LABEL = b"aiadmin/hop/v1"


class OwnerAddresses(Protocol):
    """Where a node of the cluster listens for its peers (``actors.Placement`` is one)."""

    def address_of(self, node_id: str) -> str | None:
        """The node's internal base URL (``http://host:port``), or ``None`` when unknown or
        not alive."""
        ...


@dataclass(frozen=True)
class Hop:
    """A hopped request as its receiver sees it: who sent it, and whether the signature
    checked (then ``client_ip`` is the client's, as the entry process determined it)."""

    from_node: str
    client_ip: str | None
    #: The body digest the signature covers (the receiver checks the body it got against it).
    body_sha256: str = ""


def hop_key(secret: str) -> bytes:
    """The hop-signing key, derived from the server secret (never the secret itself)."""
    return hmac.new(secret.encode("utf-8"), _SIGNING_LABEL, hashlib.sha256).digest()


def body_digest(body: bytes) -> str:
    """The SHA-256 of a hop's body, as its signature covers it (hex)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class SignedRequest:
    """What a hop's signature covers besides sender and client IP: the sending time, the
    request line (decoded path, raw query string) and the body's digest."""

    sent_at: str
    method: str
    path: str
    query: bytes
    body_sha256: str


def hop_signature(key: bytes, node_id: str, client_ip: str, signed: SignedRequest) -> str:
    """The HMAC binding a hop to its sender, the client IP it states, when it was sent, and
    the request itself (method, path, query, body digest)."""
    fields = [
        node_id,
        client_ip,
        signed.sent_at,
        signed.method.upper(),
        signed.path,
        signed.query.decode("latin-1"),
        signed.body_sha256,
    ]
    # JSON keeps the fields apart whatever they hold (a decoded path may contain a newline).
    message = json.dumps(fields).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def read_hop(
    headers: Headers, key: bytes, method: str, path: str, query: bytes, now: float
) -> Hop | None:
    """The hop a received request carries, or ``None`` when it was not forwarded.

    Its ``client_ip`` is set only when the signature covers this request line and was made
    within :data:`HOP_MAX_SKEW` of ``now`` (Unix seconds); the caller must still check the
    body against ``body_sha256`` (:func:`received_hop` does)."""
    from_node = headers.get(HOP_HEADER)
    if from_node is None:
        return None
    client = headers.get(HOP_CLIENT_HEADER) or ""
    signature = headers.get(HOP_SIGNATURE_HEADER) or ""
    sent_at = headers.get(HOP_TIME_HEADER) or ""
    digest = headers.get(HOP_BODY_HEADER) or ""
    untrusted = Hop(from_node, None)
    if not client or not _UNIX_SECONDS.fullmatch(sent_at) or not _SHA256_HEX.fullmatch(digest):
        return untrusted
    if abs(now - int(sent_at)) > HOP_MAX_SKEW:
        return untrusted
    signed = SignedRequest(sent_at, method, path, query, digest)
    expected = hop_signature(key, from_node, client, signed)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return untrusted
    return Hop(from_node, client, digest)


async def received_hop(key: bytes, now: float) -> Hop | Response | None:
    """The hop the current request carries (``None`` when it was not forwarded), believed
    only when :func:`read_hop` does and the body received has the signed digest.

    A believed hop's body is read here, before any route (bounded as for the hop itself:
    the 413/408 answer is returned when it is too large or too slow, which a real entry
    process never sends); it stays readable for the route."""
    hop = read_hop(request.headers, key, request.method, request.path, request.query_string, now)
    if hop is None or hop.client_ip is None:
        return hop
    body = await _whole_body()
    if isinstance(body, Response):
        return body
    if not hmac.compare_digest(body_digest(body), hop.body_sha256):
        return Hop(hop.from_node, None)
    return hop


def _connection_named(headers: Iterable[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(v.strip().lower() for v in value.split(",") if v.strip())
    return named


def outgoing_headers(
    incoming: Iterable[tuple[str, str]],
    *,
    node_id: str,
    client_ip: str,
    peer: str | None,
    request_id: str | None,
    signature: str,
    signed: SignedRequest,
) -> list[tuple[str, str]]:
    """The headers of the hop: the client's, minus hop-by-hop ones (and any it sent under
    our hop names), plus the hop's marks, the proxy headers and the request id."""
    items = list(incoming)
    drop = HOP_BY_HOP | _OURS | _connection_named(items) | {"x-real-ip"}
    if request_id:
        drop = drop | {"x-request-id"}
    out: list[tuple[str, str]] = []
    forwarded_for: list[str] = []
    for name, value in items:
        lower = name.lower()
        if lower == "x-forwarded-for":
            forwarded_for.append(value)
        elif lower not in drop:
            out.append((name, value))
    if peer:
        forwarded_for.append(peer)
    if forwarded_for:
        out.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    out.append(("X-Real-IP", client_ip))
    if request_id:
        out.append(("X-Request-Id", request_id))
    out.append((HOP_HEADER, node_id))
    out.append((HOP_CLIENT_HEADER, client_ip))
    out.append((HOP_TIME_HEADER, signed.sent_at))
    out.append((HOP_BODY_HEADER, signed.body_sha256))
    out.append((HOP_SIGNATURE_HEADER, signature))
    return out


def returned_headers(incoming: Iterable[tuple[str, str]]) -> Headers:
    """The owner's response headers minus hop-by-hop ones and those our server writes."""
    items = list(incoming)
    drop = HOP_BY_HOP | _SERVER_WRITTEN | _connection_named(items)
    return Headers([(n, v) for n, v in items if n.lower() not in drop])


async def company_ref(node: Node, company_id: int) -> ActorRef:
    """The ref of the company's actor in ``node``; in cluster mode raises
    :class:`OwnedElsewhere` first when the placement (computed locally, no Redis call) gives
    the company to another live process, and :class:`storage.StorageUnavailable` when this
    process lost its membership."""
    if node.placement is not None:
        owner = await node.placement.owner_of(company_id)
        if owner is not None:
            raise OwnedElsewhere(company_id, owner)
    return node.company(company_id)


async def _whole_body() -> bytes | Response:
    """The current request's body for the hop (cached, so a route may have read it), or the
    answer when it is over ``AIADMIN_MAX_BODY_BYTES`` (413) or slower than
    :data:`web._validation.BODY_TIMEOUT` to arrive (408), as when a route reads it."""
    slow = error_response(408, "request_timeout", "The request body did not arrive in time.")
    with trio.move_on_after(BODY_TIMEOUT):
        try:
            body = await request.get_data(cache=True)
        except RequestEntityTooLarge:
            return error_response(413, "payload_too_large", "The request body is too large.")
        except RequestTimeout:
            return slow
        assert isinstance(body, bytes)
        return body
    return slow


def ownership_moving(message: str) -> Response:
    """503 ``ownership_moving``: the salon is between owners; retry in a second."""
    return error_response(
        503, "ownership_moving", message, headers={"Retry-After": MOVING_RETRY_AFTER}
    )


class Forwarder:
    """Forwards the current request to its salon's owner over one shared connection pool.

    ``aclose()`` closes the pool (idempotent); the app calls it when it stops serving.
    Cancellation of the request cancels the hop; every failure is an answer (never raised).
    ``clock`` is the wall clock (Unix seconds) hops are stamped and checked with; tests tie
    it to trio's mock clock.
    """

    def __init__(
        self,
        node_id: str,
        addresses: OwnerAddresses | None,
        *,
        secret: str,
        timeout: float,
        metrics: MetricsRegistry,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.addresses = addresses
        self.key = hop_key(secret)
        self.timeout = timeout + OWNER_ANSWER_MARGIN
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self.forwarded = metrics.counter(
            "aiadmin_http_forwarded_total",
            "HTTP requests forwarded to the salon's owner process, by the owner's status class",
            ("status",),
        )
        self.failures = metrics.counter(
            "aiadmin_http_forward_failures_total",
            "Requests for a salon owned elsewhere that could not be forwarded, by reason",
            ("reason",),
        )

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout)),
                follow_redirects=False,
                trust_env=False,
                transport=self._transport,
            )
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool (safe to call more than once)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _failed(self, reason: str, owner: str, message: str) -> Response:
        self.failures.labels(reason).inc()
        log.warning("not forwarded to owner %s: %s", owner, reason)
        return ownership_moving(message)

    async def forward(self, owner: str, hop: Hop | None) -> Response:
        """The owner's answer to the current request, or a 503 saying why there is none."""
        if hop is not None:
            return self._failed(
                "hop_not_owner",
                owner,
                "This salon is moving between server processes; try again in a second.",
            )
        address = self.addresses.address_of(owner) if self.addresses is not None else None
        if address is None:
            return self._failed(
                "owner_unknown",
                owner,
                "This salon's server process is being replaced; try again in a second.",
            )
        raw_path = request.scope.get("raw_path") or quote(request.path).encode("ascii")
        try:
            target: httpx.URL | None = httpx.URL(address.rstrip("/")).copy_with(
                raw_path=raw_path + (b"?" + request.query_string if request.query_string else b"")
            )
        except httpx.InvalidURL:
            target = None
        if target is None or target.scheme not in ("http", "https") or not target.host:
            # A corrupt member entry in Redis (the settings refuse a bad advertised URL): the
            # owner cannot be reached until it heartbeats a good one or is replaced.
            return self._failed(
                "bad_address", owner, "This salon's server process cannot be reached right now."
            )
        body = await _whole_body()
        if isinstance(body, Response):
            return body
        client_ip = str(g.get("client_ip") or request.remote_addr or "unknown")
        signed = SignedRequest(
            str(int(self.clock())),
            request.method,
            request.path,
            request.query_string,
            body_digest(body),
        )
        signature = hop_signature(self.key, self.node_id, client_ip, signed)
        headers = outgoing_headers(
            request.headers.items(),
            node_id=self.node_id,
            client_ip=client_ip,
            peer=request.remote_addr,
            request_id=g.get("request_id"),
            signature=signature,
            signed=signed,
        )
        started = time.perf_counter()
        try:
            with trio.fail_after(self.timeout):
                answer = await self._exchange(request.method, target, headers, body)
        except (trio.TooSlowError, httpx.TimeoutException) as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                return self._failed(
                    "connect", owner, "This salon's server process cannot be reached right now."
                )
            self.failures.labels("timeout").inc()
            log.warning("owner %s did not answer within %gs", owner, self.timeout)
            return error_response(
                503,
                "request_timeout",
                "The service is answering too slowly right now; try again shortly.",
                headers={"Retry-After": "5"},
            )
        except httpx.ConnectError:
            return self._failed(
                "connect", owner, "This salon's server process cannot be reached right now."
            )
        except httpx.TransportError as exc:
            return self._failed(
                type(exc).__name__, owner, "This salon's server process stopped answering."
            )
        status, response_headers, content = answer
        self.forwarded.labels(f"{status // 100}xx").inc()
        log.debug(
            "forwarded %s to owner %s: %d in %.1fms",
            request.method,
            owner,
            status,
            (time.perf_counter() - started) * 1000,
        )
        return Response(content, status=status, headers=response_headers)

    async def _exchange(
        self, method: str, target: httpx.URL, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, Headers, bytes]:
        """One request to the owner: its status, returnable headers and raw (undecoded) body."""
        outgoing = self._client().build_request(method, target, headers=headers, content=body)
        response = await self._client().send(outgoing, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return response.status_code, returned_headers(response.headers.multi_items()), content
