"""Ask any process: a request landing on a process that does not own the salon is served by
the owner, over a real HTTP hop between two Hypercorn servers on loopback (each with its own
node and storage connections over one PostgreSQL database and one Redis prefix).

The nodes' internal addresses come from a directory filled once both listen (the seam
:class:`web._forward.OwnerAddresses`; in a running cluster the placement answers it).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypercorn.trio import serve as hypercorn_serve
from quart import Response, g, jsonify, request
from quart.typing import TestClientProtocol as QuartTestClient
from quart_trio import QuartTrio
from werkzeug.datastructures import Headers

from actors import Node, open_node
from actors.company import messages as m
from actors.whatsapp import SimulatedWorld, open_gateway
from config import RateLimit, Settings
from metrics import MetricsRegistry
from tests.support.databases import open_real_storage
from web._app import create_app
from web._connection_guard import ConnectionGuard
from web._context import state
from web._forward import (
    HOP_BODY_HEADER,
    HOP_CLIENT_HEADER,
    HOP_HEADER,
    HOP_SIGNATURE_HEADER,
    HOP_TIME_HEADER,
    OWNER_ANSWER_MARGIN,
    Forwarder,
    OwnerAddresses,
    SignedRequest,
    body_digest,
    hop_key,
    hop_signature,
    outgoing_headers,
    read_hop,
    returned_headers,
)
from web._validation import BODY_TIMEOUT, read_json_object
from web.server import hypercorn_config

from .conftest import JWT_SECRET, eventually, open_memory_storage, open_web
from .test_server import free_port

ECHO_PATH = "/test/echo/<company_id>"


class Directory:
    """A node's view of its peers' addresses: the placement's (the membership's advertised
    URLs), unless a test overrides one (a stale address, a dead port, none at all)."""

    def __init__(self) -> None:
        self.placement: OwnerAddresses | None = None
        self.overrides: dict[str, str | None] = {}

    def address_of(self, node_id: str) -> str | None:
        if node_id in self.overrides:
            return self.overrides[node_id]
        return None if self.placement is None else self.placement.address_of(node_id)


@dataclass
class Served:
    """One node of the pair: its node, app, world, base URL and address directory."""

    name: str
    node: Node
    app: QuartTrio
    world: SimulatedWorld
    url: str
    directory: Directory

    def forwarded(self, status: str) -> float:
        return sample(self.node.metrics, "aiadmin_http_forwarded_total", status=status)

    def failures(self, reason: str) -> float:
        return sample(self.node.metrics, "aiadmin_http_forward_failures_total", reason=reason)


def sample(registry: MetricsRegistry, name: str, **labels: str) -> float:
    value = registry.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def echo(company_id: str) -> Any:
    """A test route shaped like the API's: read the JSON body, ask the salon's actor, answer
    with what arrived (served by whichever node owns the salon)."""
    body = await read_json_object(request, max_bytes=state().settings.max_body_bytes)
    await state().node.company(int(company_id)).ask(m.GetStatus())
    response = jsonify(
        {
            "served_by": state().node.node_id,
            "body": body,
            "query": request.args.to_dict(flat=False),
            "method": request.method,
            "path": request.path,
            "x_custom": request.headers.getlist("X-Custom"),
            "authorization": request.headers.get("Authorization"),
            "x_forwarded_for": request.headers.get("X-Forwarded-For"),
            "x_request_id": request.headers.get("X-Request-Id"),
        }
    )
    response.status_code = 202
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    response.headers["X-Owner"] = state().node.node_id
    return response


@asynccontextmanager
async def two_served_nodes(
    settings: Settings, database_url: str, redis_prefix: str
) -> AsyncIterator[tuple[Served, Served]]:
    """``node-a`` and ``node-b`` (cluster mode), each served by Hypercorn on a loopback port
    it advertises, once each sees the other as a member."""
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        served = []
        for index, name in enumerate(("node-a", "node-b")):
            port = free_port()
            own = replace(settings, port=port, advertise_url=f"http://127.0.0.1:{port}")
            storage = await stack.enter_async_context(
                open_real_storage(database_url, redis_prefix=redis_prefix, truncate=index == 0)
            )
            world = SimulatedWorld()
            gateway = await stack.enter_async_context(open_gateway(own, world=world))
            node = await stack.enter_async_context(
                open_node(own, storage, gateway, rng=random.Random(7), cluster=True, node_id=name)
            )
            directory = Directory()
            directory.placement = node.placement
            app = create_app(node, owner_addresses=directory)
            app.add_url_rule(ECHO_PATH, view_func=echo, methods=["POST"])
            config = hypercorn_config(own)
            config.graceful_timeout = 0.1
            urls = await nursery.start(partial(hypercorn_serve, ConnectionGuard(app), config))
            assert own.advertise_url in urls
            served.append(Served(name, node, app, world, own.advertise_url, directory))

        async def members_known() -> bool:
            return all(
                s.node.placement is not None
                and set(s.node.placement.membership.members) == {"node-a", "node-b"}
                for s in served
            )

        await eventually(members_known)
        yield served[0], served[1]


async def register(client: httpx.AsyncClient, url: str, salon_id: int) -> dict[str, Any]:
    response = await client.post(
        f"{url}/marketplace/register",
        json={"salon_id": salon_id},
        headers={"X-API-Key": "adm_test_admin_key_0123456789abcdef"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def roles(pair: tuple[Served, Served], company_id: int) -> tuple[Served, Served]:
    """(owner, other): the node the placement gives the salon to (both agree), the other."""
    a, b = pair
    assert a.node.placement is not None and b.node.placement is not None
    seen_by_a = await a.node.placement.owner_of(company_id) or a.name
    seen_by_b = await b.node.placement.owner_of(company_id) or b.name
    assert seen_by_a == seen_by_b
    return (a, b) if seen_by_a == a.name else (b, a)


# ------------------------------------------------------------------------ the pure parts


def test_outgoing_headers_drop_hop_by_hop_and_mark_the_hop() -> None:
    incoming = [
        ("Host", "api.example"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("X-Secret-Hop", "per-connection"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "12"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Authorization", "Bearer t0k"),
        ("X-Custom", "one"),
        ("X-Custom", "two"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Real-IP", "6.6.6.6"),  # whatever the client claims is replaced
        ("X-Request-Id", "client-id"),
        (HOP_HEADER, "forged"),
        (HOP_CLIENT_HEADER, "6.6.6.6"),
        (HOP_SIGNATURE_HEADER, "00"),
        (HOP_TIME_HEADER, "1"),
        (HOP_BODY_HEADER, "0" * 64),
    ]
    signed = SignedRequest("1800000000", "GET", "/x", b"", body_digest(b""))
    out = outgoing_headers(
        incoming,
        node_id="node-b",
        client_ip="203.0.113.9",
        peer="10.0.0.2",
        request_id="req-1",
        signature="sig",
        signed=signed,
    )
    assert out == [
        ("Host", "api.example"),
        ("Authorization", "Bearer t0k"),
        ("X-Custom", "one"),
        ("X-Custom", "two"),
        ("X-Forwarded-For", "198.51.100.1, 10.0.0.2"),
        ("X-Real-IP", "203.0.113.9"),
        ("X-Request-Id", "req-1"),
        (HOP_HEADER, "node-b"),
        (HOP_CLIENT_HEADER, "203.0.113.9"),
        (HOP_TIME_HEADER, "1800000000"),
        (HOP_BODY_HEADER, body_digest(b"")),
        (HOP_SIGNATURE_HEADER, "sig"),
    ]


def test_returned_headers_keep_repeats_and_drop_what_our_server_writes() -> None:
    headers = returned_headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", "2"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Date", "Thu, 03 Dec 2026 10:00:00 GMT"),
            ("Server", "hypercorn"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Retry-After", "7"),
        ]
    )
    assert list(headers.items()) == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Retry-After", "7"),
    ]


def signed_headers(key: bytes, node: str, client_ip: str, signed: SignedRequest) -> dict[str, str]:
    """The hop headers an entry process sends for ``signed``."""
    return {
        HOP_HEADER: node,
        HOP_CLIENT_HEADER: client_ip,
        HOP_TIME_HEADER: signed.sent_at,
        HOP_BODY_HEADER: signed.body_sha256,
        HOP_SIGNATURE_HEADER: hop_signature(key, node, client_ip, signed),
    }


def test_a_hop_is_believed_only_with_its_signature_fresh_and_for_this_request() -> None:
    key = hop_key(JWT_SECRET)
    now = 1_800_000_000.0
    path = "/marketplace/status/7"
    signed = SignedRequest("1800000000", "GET", path, b"a=1", body_digest(b""))

    def hop(**changes: str) -> Headers:
        values = {**signed_headers(key, "node-b", "203.0.113.9", signed), **changes}
        return Headers(list(values.items()))

    believed = read_hop(hop(), key, "GET", path, b"a=1", now)
    assert believed is not None and believed.client_ip == "203.0.113.9"
    assert believed.from_node == "node-b" and believed.body_sha256 == body_digest(b"")
    # Clocks may differ by up to 30 s either way.
    for skewed in (now - 30, now + 30):
        late = read_hop(hop(), key, "GET", path, b"a=1", skewed)
        assert late is not None and late.client_ip == "203.0.113.9"
    for forged in (
        read_hop(hop(**{HOP_CLIENT_HEADER: "6.6.6.6"}), key, "GET", path, b"a=1", now),
        read_hop(hop(), key, "GET", "/marketplace/status/8", b"a=1", now),
        read_hop(hop(), key, "POST", path, b"a=1", now),
        read_hop(hop(), key, "GET", path, b"a=2", now),  # another query
        read_hop(hop(), key, "GET", path, b"", now),
        read_hop(hop(**{HOP_BODY_HEADER: body_digest(b"x")}), key, "GET", path, b"a=1", now),
        read_hop(hop(**{HOP_TIME_HEADER: "1800000001"}), key, "GET", path, b"a=1", now),
        read_hop(hop(**{HOP_TIME_HEADER: ""}), key, "GET", path, b"a=1", now),
        read_hop(hop(**{HOP_TIME_HEADER: "1.8e9"}), key, "GET", path, b"a=1", now),
        read_hop(hop(), key, "GET", path, b"a=1", now + 31),  # a replay, 31 s later
        read_hop(hop(), key, "GET", path, b"a=1", now - 31),
        read_hop(hop(), hop_key("another-secret-0123456789abcdef-0123"), "GET", path, b"a=1", now),
        read_hop(hop(**{HOP_SIGNATURE_HEADER: ""}), key, "GET", path, b"a=1", now),
    ):
        assert forged is not None and forged.client_ip is None  # a hop, not believed
    assert read_hop(Headers(), key, "GET", "/", b"", now) is None


# --------------------------------------------------------------- two real servers, one hop


async def test_status_on_the_non_owner_is_the_owners_answer(
    settings: Settings, database_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = int(time.time())
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_101)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        key = {"X-API-Key": company["api_key"], "X-Request-Id": "trace-me-1"}
        direct = await client.get(f"{owner.url}/marketplace/status/{cid}", headers=key)
        assert direct.status_code == 200, direct.text
        hopped = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
        assert hopped.status_code == 200, hopped.text
        assert hopped.json() == direct.json()
        assert hopped.json()["company_id"] == cid
        assert hopped.headers["X-Request-Id"] == "trace-me-1"
        assert hopped.headers["Content-Type"] == "application/json"
        # One actor, in the owner; the other forwarded and holds none.
        assert other.node.registry.lookup(cid) is None
        assert owner.node.registry.lookup(cid) is not None
        assert other.forwarded("2xx") == 1
        assert owner.forwarded("2xx") == 0
        # The owner authenticates again: a wrong key forwarded gets the owner's 401.
        wrong = await client.get(
            f"{other.url}/marketplace/status/{cid}", headers={"X-API-Key": "sk_wrong"}
        )
        assert wrong.status_code == 401, wrong.text
    # Both processes logged the hop (the owner under the entry's request id), no secret.
    assert "trace-me-1" in caplog.text
    signatures = [
        hop_signature(
            hop_key(JWT_SECRET),
            other.name,
            "127.0.0.1",
            SignedRequest(str(sent), "GET", f"/marketplace/status/{cid}", b"", body_digest(b"")),
        )
        for sent in range(started, int(time.time()) + 1)
    ]
    for secret in (company["api_key"], "sk_wrong", JWT_SECRET, *signatures):
        assert secret not in caplog.text


async def test_a_burst_on_the_non_owner_is_all_served_and_starts_no_actor_there(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """The non-owner asks the placement before touching its registry: no actor is started
    there just to refuse (concurrent requests would meet it stopping and get a 503)."""
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_106)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        key = {"X-API-Key": company["api_key"]}
        statuses: list[int] = []
        activated_here = 0
        burst_over = trio.Event()

        async def one() -> None:
            response = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
            statuses.append(response.status_code)

        async def watch() -> None:
            nonlocal activated_here
            while not burst_over.is_set():
                activated_here = max(activated_here, len(other.node.registry))
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as watching:
            watching.start_soon(watch)
            async with trio.open_nursery() as burst:
                for _ in range(20):
                    burst.start_soon(one)
            burst_over.set()
        assert statuses == [200] * 20
        assert activated_here == 0
        assert other.forwarded("2xx") == 20
        assert owner.node.registry.lookup(cid) is not None


async def test_method_path_query_headers_and_body_reach_the_owner_and_back(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_102)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        payload = {"note": "Салон «Ирис»", "n": [1, 2, 3]}
        response = await client.post(
            f"{other.url}/test/echo/{cid}?x=1&x=2&q=%D1%8F%20b",
            json=payload,
            headers=[
                ("Authorization", "Bearer abc"),
                ("X-Custom", "one"),
                ("X-Custom", "two"),
                ("X-Forwarded-For", "198.51.100.7"),
            ],
        )
        assert response.status_code == 202, response.text
        echoed = response.json()
        assert echoed["served_by"] == owner.name
        assert echoed["body"] == payload
        assert echoed["query"] == {"x": ["1", "2"], "q": ["я b"]}
        assert echoed["method"] == "POST"
        assert echoed["path"] == f"/test/echo/{cid}"
        assert echoed["x_custom"] == ["one", "two"]
        assert echoed["authorization"] == "Bearer abc"
        assert echoed["x_forwarded_for"] == "198.51.100.7, 127.0.0.1"
        assert echoed["x_request_id"] == response.headers["X-Request-Id"]
        assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
        assert response.headers["X-Owner"] == owner.name
        assert other.forwarded("2xx") == 1
        # A body over AIADMIN_MAX_BODY_BYTES is refused, not carried to the owner (here on a
        # route that never reads it: the hop would).
        oversized = await client.request(
            "GET",
            f"{other.url}/marketplace/status/{cid}",
            headers={"X-API-Key": company["api_key"]},
            content=b"x" * (settings.max_body_bytes + 1),
        )
        assert oversized.status_code == 413, oversized.text
        assert oversized.json()["error"]["code"] == "payload_too_large"
        assert other.forwarded("2xx") == 1
        at_owner = await client.request(
            "GET",
            f"{owner.url}/marketplace/status/{cid}",
            headers={"X-API-Key": company["api_key"]},
            content=b"x" * (settings.max_body_bytes + 1),
        )
        assert at_owner.status_code == 200  # the route itself ignores a body


async def test_a_hop_to_a_process_that_is_not_the_owner_is_not_forwarded_again(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """The other node believes the owner's address is its own (stale): it forwards once,
    receives its own hop, is still not the owner and answers 503 ownership_moving; no loop."""
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_103)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        other.directory.overrides[owner.name] = other.url
        key = {"X-API-Key": company["api_key"]}
        response = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "ownership_moving"
        assert response.headers["Retry-After"] == "1"
        assert other.failures("hop_not_owner") == 1
        assert other.forwarded("5xx") == 1  # the one hop, whose answer was the refusal
        # A client sending the hop header itself is never forwarded either.
        del other.directory.overrides[owner.name]
        forged = await client.get(
            f"{other.url}/marketplace/status/{cid}", headers={**key, HOP_HEADER: "node-x"}
        )
        assert forged.status_code == 503
        assert forged.json()["error"]["code"] == "ownership_moving"
        assert other.failures("hop_not_owner") == 2
        served = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
        assert served.status_code == 200, served.text


async def test_owner_down_or_unknown_is_a_short_503_with_retry_after(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    async with (
        two_served_nodes(settings, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_104)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        key = {"X-API-Key": company["api_key"]}
        # The owner's advertised port with nothing listening (a process just killed).
        other.directory.overrides[owner.name] = f"http://127.0.0.1:{free_port()}"
        down = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "ownership_moving"
        assert down.headers["Retry-After"] == "1"
        assert other.failures("connect") == 1
        other.directory.overrides[owner.name] = None  # no longer a member: no address
        gone = await client.get(f"{other.url}/marketplace/status/{cid}", headers=key)
        assert gone.status_code == 503
        assert gone.json()["error"]["code"] == "ownership_moving"
        assert gone.headers["Retry-After"] == "1"
        assert other.failures("owner_unknown") == 1
        assert other.node.registry.lookup(cid) is None


async def test_the_api_limit_counts_a_forwarded_request_once_for_the_real_client(
    settings: Settings, database_url: str, redis_prefix: str
) -> None:
    """Limit 2 per route and IP, shared through Redis: two requests through the other node
    are both served (counted there only); the third is refused there. A forged hop sent
    straight to the owner is counted under its peer's IP like any request."""
    limited = replace(settings, api_rate_limit=RateLimit(2, 60))
    async with (
        two_served_nodes(limited, database_url, redis_prefix) as pair,
        httpx.AsyncClient(timeout=10) as client,
    ):
        company = await register(client, pair[0].url, 900_105)
        cid = company["company_id"]
        owner, other = await roles(pair, cid)
        key = {"X-API-Key": company["api_key"]}
        url = f"{other.url}/marketplace/status/{cid}"
        statuses = [(await client.get(url, headers=key)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert other.forwarded("2xx") == 2
        qr = f"{owner.url}/marketplace/qr/not-a-token"
        refused = []
        for n in range(3):
            forged = {
                HOP_HEADER: other.name,
                HOP_CLIENT_HEADER: f"203.0.113.{n}",
                HOP_SIGNATURE_HEADER: "0" * 64,
            }
            refused.append((await client.get(qr, headers=forged)).status_code)
        assert refused == [401, 401, 429]


async def test_the_forwarder_closes_its_pool_and_answers_unknown_without_placement(
    settings: Settings,
) -> None:
    """Outside cluster mode there is no directory: an OwnedElsewhere (which cannot happen
    there) would still be a 503, never a hang or a 500; closing twice is fine."""
    forwarder = Forwarder(
        "solo", None, secret=JWT_SECRET, timeout=settings.request_timeout, metrics=MetricsRegistry()
    )
    app = QuartTrio(__name__)

    @app.get("/x")
    async def x() -> Any:
        return await forwarder.forward("node-a", None)

    response = await app.test_client().get("/x")
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "ownership_moving"
    assert response.headers["Retry-After"] == "1"
    await forwarder.aclose()
    await forwarder.aclose()


def forwarding_app(forwarder: Forwarder) -> QuartTrio:
    """A bare app whose one route forwards to ``node-a``."""
    app = QuartTrio(__name__)

    @app.get("/x")
    async def x() -> Any:
        return await forwarder.forward("node-a", None)

    return app


def owner_behind(transport: httpx.AsyncBaseTransport, metrics: MetricsRegistry) -> Forwarder:
    directory = Directory()
    directory.overrides["node-a"] = "http://owner.internal:3000"
    return Forwarder(
        "node-b", directory, secret=JWT_SECRET, timeout=5.0, metrics=metrics, transport=transport
    )


async def test_an_owner_slower_than_the_request_timeout_is_a_503_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The hop waits the request timeout plus a second (so the owner's own 503 could get
    back), then answers 503 ``request_timeout``."""

    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    metrics = MetricsRegistry()
    forwarder = owner_behind(httpx.MockTransport(silent), metrics)
    started = trio.current_time()
    response = await forwarding_app(forwarder).test_client().get("/x")
    assert trio.current_time() - started == pytest.approx(5.0 + OWNER_ANSWER_MARGIN)
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "request_timeout"
    assert response.headers["Retry-After"] == "5"
    assert sample(metrics, "aiadmin_http_forward_failures_total", reason="timeout") == 1
    await forwarder.aclose()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectTimeout("slow connect"), "connect"),
        (httpx.ConnectError("refused"), "connect"),
        (httpx.RemoteProtocolError("peer closed connection"), "RemoteProtocolError"),
        (httpx.ReadError("reset"), "ReadError"),
    ],
)
async def test_an_owner_that_fails_mid_hop_is_ownership_moving(
    error: httpx.TransportError, reason: str
) -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        raise error

    metrics = MetricsRegistry()
    forwarder = owner_behind(httpx.MockTransport(failing), metrics)
    response = await forwarding_app(forwarder).test_client().get("/x")
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "ownership_moving"
    assert response.headers["Retry-After"] == "1"
    assert sample(metrics, "aiadmin_http_forward_failures_total", reason=reason) == 1
    assert sample(metrics, "aiadmin_http_forwarded_total", status="2xx") == 0
    await forwarder.aclose()


@pytest.mark.parametrize(
    "address",
    ["http://127.0.0.1:port", "http://[::1", "http://owner\x00.internal", "127.0.0.1:3000"],
    ids=["bad-port", "bad-host", "control-char", "no-scheme"],
)
async def test_a_malformed_owner_address_is_ownership_moving_not_a_500(address: str) -> None:
    """A corrupt member entry in Redis (another version, a hand edit) gives the owner an
    address no request can go to: a short 503 while it is replaced, counted as bad_address."""

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing is sent to a malformed address")

    metrics = MetricsRegistry()
    forwarder = owner_behind(httpx.MockTransport(never), metrics)
    assert isinstance(forwarder.addresses, Directory)
    forwarder.addresses.overrides["node-a"] = address
    response = await forwarding_app(forwarder).test_client().get("/x")
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "ownership_moving"
    assert response.headers["Retry-After"] == "1"
    assert sample(metrics, "aiadmin_http_forward_failures_total", reason="bad_address") == 1
    await forwarder.aclose()


async def test_a_signed_hop_of_an_install_redirect_is_not_counted_again(
    settings: Settings,
) -> None:
    """The install redirect's own per-IP limit (salons looked up) was counted by the process
    that forwarded it; a signed hop is not counted again, an unsigned one is."""
    limited = replace(settings, redirect_rate_limit=RateLimit(1, 60))
    path = "/marketplace/yclients/redirect"

    def signed(client_ip: str) -> dict[str, str]:
        request = SignedRequest(
            str(int(time.time())), "GET", path, b"salon_id=4242", body_digest(b"")
        )
        return signed_headers(hop_key(JWT_SECRET), "node-a", client_ip, request)

    async with open_memory_storage() as storage, open_web(limited, storage) as web:
        hopped = [
            (await web.client.get(f"{path}?salon_id=4242", headers=signed("203.0.113.5")))
            for _ in range(3)
        ]
        assert [r.status_code for r in hopped].count(429) == 0
        plain = [(await web.client.get(f"{path}?salon_id=4242")).status_code for _ in range(2)]
        assert plain[1] == 429
        assert plain[0] != 429


@dataclass
class Captured:
    """A hop as it left the entry process (what someone on the network between could keep)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def replay(
        self, client: QuartTestClient, *, target: str | None = None, body: bytes | None = None
    ) -> Awaitable[Response]:
        """Send the captured hop again (optionally to another query, with another body)."""
        send = client.post if self.method == "POST" else client.get
        return send(
            target or self.target, headers=self.headers, data=self.body if body is None else body
        )


async def capture_hop(wall: Callable[[], float], method: str, target: str, body: bytes) -> Captured:
    """Let an entry process (client IP 203.0.113.7) forward ``method target`` with ``body``
    to ``node-a``, and keep the hop it sent."""
    captured: list[Captured] = []

    def keep(outgoing: httpx.Request) -> httpx.Response:
        headers = {
            name: value
            for name, value in outgoing.headers.items()
            if name.lower().startswith("x-aiadmin-") or name.lower() == "content-type"
        }
        captured.append(
            Captured(outgoing.method, outgoing.url.raw_path.decode(), headers, outgoing.content)
        )
        return httpx.Response(200, stream=httpx.ByteStream(b""))

    directory = Directory()
    directory.overrides["node-a"] = "http://owner.internal:3000"
    forwarder = Forwarder(
        "node-b",
        directory,
        secret=JWT_SECRET,
        timeout=5.0,
        metrics=MetricsRegistry(),
        transport=httpx.MockTransport(keep),
        clock=wall,
    )
    entry = QuartTrio(__name__)

    @entry.route("/<path:anything>", methods=["GET", "POST"])
    async def forward(anything: str) -> Any:
        g.client_ip = "203.0.113.7"  # as the entry's before_request determined it
        return await forwarder.forward("node-a", None)

    client = entry.test_client()
    send = client.post if method == "POST" else client.get
    sent = await send(target, data=body, headers={"Content-Type": "application/json"})
    assert sent.status_code == 200
    await forwarder.aclose()
    (hop,) = captured
    assert hop.headers[HOP_CLIENT_HEADER.lower()] == "203.0.113.7"
    return hop


async def test_a_captured_hop_is_believed_only_for_30_s_and_only_as_sent(
    settings: Settings, autojump_clock: trio.testing.MockClock
) -> None:
    """A signed hop skips the owner's API limit (counted at the entry) and states the
    client's IP; the same hop replayed 31 s later, or with another query or body, is an
    ordinary request from its peer: counted, and refused once the peer's budget is spent."""
    limited = replace(settings, api_rate_limit=RateLimit(1, 3600))

    def wall() -> float:
        return 1_800_000_000.0 + trio.current_time()

    status = await capture_hop(wall, "GET", "/marketplace/qr/not-a-token?lang=ru", b"")
    register = await capture_hop(wall, "POST", "/marketplace/register", b'{"salon_id": 1}')
    async with (
        open_memory_storage() as storage,
        open_gateway(limited, world=SimulatedWorld()) as gateway,
        open_node(limited, storage, gateway, rng=random.Random(7)) as node,
    ):
        owner = create_app(node, hop_clock=wall).test_client()
        # As sent: believed every time, never counted (the entry counted it).
        for _ in range(3):
            assert (await status.replay(owner)).status_code == 401
            assert (await register.replay(owner)).status_code == 401
        # Another query: the peer's own request, counted; the second is over its budget.
        other_query = "/marketplace/qr/not-a-token?lang=en"
        assert (await status.replay(owner, target=other_query)).status_code == 401
        assert (await status.replay(owner, target=other_query)).status_code == 429
        # Another body: the same.
        other_body = b'{"salon_id": 2}'
        assert (await register.replay(owner, body=other_body)).status_code == 401
        assert (await register.replay(owner, body=other_body)).status_code == 429
        # The hops as sent are still believed (their budget is the entry's) ...
        assert (await status.replay(owner)).status_code == 401
        assert (await register.replay(owner)).status_code == 401
        # ... until they are 31 s old: then they are the peer's requests too.
        await trio.sleep(31)
        assert (await status.replay(owner)).status_code == 429
        assert (await register.replay(owner)).status_code == 429


async def test_a_body_that_never_arrives_is_a_408_not_a_hop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing is forwarded before the body arrived")

    metrics = MetricsRegistry()
    forwarder = owner_behind(httpx.MockTransport(never), metrics)
    started = trio.current_time()
    async with forwarding_app(forwarder).test_client().request("/x", method="GET") as connection:
        await connection.send(b'{"half": ')  # and nothing more
    response = await connection.as_response()
    assert trio.current_time() - started == pytest.approx(BODY_TIMEOUT)
    assert response.status_code == 408
    assert (await response.get_json())["error"]["code"] == "request_timeout"
    await forwarder.aclose()
