"""Benchmarks of the assistant (issue 10), each figure beside a baseline measured in the same run.

    .venv/bin/python bench/assistant.py [--quick] [--only reply,understand,calls,memory,llm]

Prints one line per figure: ``name: value unit (...)``. Production's backend: PostgreSQL and
Redis on loopback (a throwaway database and key prefix, dropped at the end), the fake YClients
(``tests/fakes/yclients``) on a loopback socket serving the example catalog and, when present,
the corpus catalog (``tests/assistant_corpus/catalog.json``), the simulated WhatsApp in process.
The node is built as ``web/server.py`` builds it (``build_companies(assistant=...)``) without
its background services, so every YClients request counted is the assistant's.

* ``assistant_reply_p99_ms``: 200 client phones (spread over the salons) write at the same
  instant, one message each: a booking request ("Хочу записаться завтра в 15:00: <service>",
  a client lookup and free times from YClients), a price question or an address question
  (answered from the synced catalog). From ``send_inbound`` on the simulated WhatsApp to the
  company actor's outbound queue accepting the reply (the assistant's ``send`` returning). The
  wait for more messages (``AIADMIN_ASSISTANT_WAIT``) is part of it and printed. The partner
  rate limit is lifted (no limiter in the client, none in the fake): with it, the figure would
  be the limiter's queue, so the run prints the requests the turns made and how long the
  production limit would need for them alone. Baseline, same run, same messages: the bare
  inbound path, a node without the assistant, to the message being recorded and handed to the
  inbound handler. Rounds alternate bare/assistant, fresh phones every round.
* ``understand_us``: CPU per message of ``understand_rules`` alone (``time.process_time_ns``),
  over every client text of the sample and corpus dialogues with their salon's catalog, a fixed
  "now" (10:00 local on a Wednesday) and no context, warm (one pass first); ``parse_when`` on
  the same texts beside it.
* ``yclients_calls_per_booking``: the dialogues whose ``expect`` has ``booked`` played one after
  another through the simulated WhatsApp, the assistant and the fake (the acceptance runner's
  data reader, ``tests/e2e/_dialogues.py``); the fake's request log counted per dialogue. The
  average is over dialogues that made a record carrying our ``api_id``; the calls are listed by
  endpoint. Target <= 6.
* ``memory_per_conversation_bytes``: 10,000 conversation actors alive after one turn each
  (booking requests and price questions), in a fresh interpreter per measure: RSS delta (what
  the issue's audit asks for) and, in another fresh run under tracemalloc, the Python heap
  delta, against the same node with 0 conversations (warmed up first: one conversation per
  salon and kind, then stopped). The simulated WhatsApp keeps no transcripts here and the fake
  YClients' request log is emptied before measuring: both stand in for the outside world.
* ``llm_overhead_ms`` (issue 15): our own time per message around a model call — the salon's
  model choice (``SalonModelPolicy``: its settings and today's tokens, one PostgreSQL read),
  the prompt, the HTTP call, reading and checking the answer, resolving its names, adding the
  tokens (one PostgreSQL upsert) — with the fake OpenAI-compatible server
  (``tests/fakes/openai``) in a child process on loopback answering at once with a fixed
  booking (start, service, master, day and time). Wall time per message (the loopback round
  trip and the fake's own handling included) and CPU of this process per message (ours
  alone), against the rules path (``RuleUnderstander``) on the same messages in the same run.
  Storage: PostgreSQL (+ Redis opened, unused on this path), as production runs.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import gc
import json
import logging
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import trio
import trio_asyncio

# ``python bench/assistant.py`` puts ``bench/`` (resolved) first on sys.path, where
# ``bench/http.py`` would shadow the standard library's ``http`` (httpx imports it): the
# repository root instead.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import actors.assistant._conversation as conversation_module
from actors import Companies, Node, build_companies, normalise_phone
from actors.assistant import AssistantOptions, parse_when, understand_rules
from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import TurnContext
from actors.whatsapp import InboundMessage, SimulatedGateway, SimulatedWorld, StaffMessage
from actors.whatsapp._world import ChatLog
from actors.yclients import RetryPolicy, YClientsClient, sync_company
from actors.yclients._ratelimit import YCLIENTS_WINDOWS
from config import AssistantPolicy, SendPacing, Settings, settings_from_env
from storage import ConversationMode, Storage, open_storage
from tests.actors.assistant.example_catalog import ROMASHKA, assistant_catalog
from tests.e2e._dialogues import (
    CORPUS_CATALOG,
    CORPUS_DIALOGUES,
    SAMPLE_CATALOG,
    SAMPLE_DIALOGUES,
    Dialogue,
    DialogueSet,
    Turn,
    merged_catalog,
    render,
)
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database

THIS = Path(__file__).resolve()
ROOT = THIS.parent.parent
WAIT = 0.05  # AIADMIN_ASSISTANT_WAIT for the reply and memory figures
REPLY_TIMEOUT = 30.0  # a client's turn must be answered within this (the dialogues)
QUIET = 0.4  # a reply is complete once the chat has been quiet this long
SILENCE = 1.5  # how long to watch for a reply that may not come
ROUND_TIMEOUT = 180.0
SETUP_TIMEOUT = 120.0
PHONE_BASE = 79_980_000_000


def base_settings(database_url: str | None, redis_prefix: str, wait: float) -> Settings:
    """Settings of a node on PostgreSQL + Redis (in-memory storage without ``database_url``),
    pacing off, the assistant waiting ``wait``."""
    env: dict[str, str] = {}
    if database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "AIADMIN_REDIS_PREFIX": redis_prefix,
        }
    settings = settings_from_env(env, dotenv=None)
    return replace(
        settings,
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=10**6),
        assistant=AssistantPolicy(wait=wait),
    )


def dialogue_sets() -> list[DialogueSet]:
    """The shared sample (the repository's copy) and this repository's corpus."""
    return [
        DialogueSet.load("sample", SAMPLE_CATALOG, SAMPLE_DIALOGUES),
        DialogueSet.load("corpus", CORPUS_CATALOG, CORPUS_DIALOGUES),
    ]


def p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# -- the stand: PostgreSQL + Redis, the fake YClients, the simulated WhatsApp ------------------


class QuietWorld(SimulatedWorld):
    """The simulated WhatsApp keeping no transcripts (delivered messages, chat lines): it
    stands for WhatsApp's servers and the clients' phones, whose memory is not ours."""

    def _company(self, company_id: int) -> Any:
        company = super()._company(company_id)
        if not isinstance(company.chats, _NoChat):
            company.chats = _NoChat()
        return company

    def _send(self, conn: Any, to_phone: str, text: str, message_id: str) -> str:
        sent = super()._send(conn, to_phone, text, message_id)
        company = self._company(conn.company_id)
        company.delivered.clear()
        company.delivered_ids.clear()
        return sent


class _NoChat(ChatLog):
    def add(self, phone: str, direction: str, text: str, kind: str = "text") -> None:
        pass


@dataclass(frozen=True)
class Salon:
    salon_id: int
    company_id: int
    zone: ZoneInfo
    services: tuple[str, ...]  # service titles, for the messages
    raw: Mapping[str, Any]


@dataclass
class FakeProcess:
    """The fake YClients in a child process (``python -m tests.fakes.yclients --catalog``),
    so its work does not share this process's CPU and memory; its access log (a line per
    request) is a file."""

    base_url: str
    log: Path

    def request_count(self) -> int:
        """Requests answered so far (the access log's request lines)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return sum(1 for line in text.splitlines() if _ACCESS_LINE.search(line))


_ACCESS_LINE = re.compile(r'"(GET|POST|PUT|DELETE|PATCH) /')


@asynccontextmanager
async def fake_process(catalog: Mapping[str, Any], folder: Path) -> AsyncIterator[FakeProcess]:
    """Serve ``catalog`` from a child process on a free loopback port."""
    catalog_file = folder / "catalog.json"
    catalog_file.write_text(json.dumps(catalog, ensure_ascii=False), encoding="utf-8")
    log = folder / "fake.log"
    command = [sys.executable, "-m", "tests.fakes.yclients", "--catalog", str(catalog_file)]
    command += ["--port", "0", "--no-rate-limit"]
    with log.open("wb") as out:
        process = await trio.lowlevel.open_process(
            command, stdout=out, stderr=subprocess.DEVNULL, cwd=str(ROOT)
        )
    try:
        with trio.fail_after(SETUP_TIMEOUT):
            while not (first := log.read_text(encoding="utf-8").partition("\n")[0].strip()):
                if process.returncode is not None:
                    raise RuntimeError(f"the fake YClients exited with {process.returncode}")
                await trio.sleep(0.05)
        yield FakeProcess(first.rsplit(" ", 1)[-1], log)
    finally:
        process.terminate()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await process.wait()


@dataclass
class Stand:
    settings: Settings
    storage: Storage
    client: YClientsClient
    world: SimulatedWorld
    salons: list[Salon]
    now: dt.datetime
    fake: FakeYClients | None  # in process (its request log is read), else ...
    process: FakeProcess | None  # ... in a child process

    def request_count(self) -> int:
        if self.fake is not None:
            return len(self.fake.requests)
        assert self.process is not None
        return self.process.request_count()


@asynccontextmanager
async def open_stand(
    catalog: Mapping[str, Any],
    *,
    wait: float,
    world: SimulatedWorld | None = None,
    in_process: bool = False,
    in_memory: bool = False,
) -> AsyncIterator[Stand]:
    """A throwaway database and Redis prefix (or in-memory storage when ``in_memory``), the
    fake YClients on ``catalog`` (in this process when ``in_process``, else in a child
    process), every salon registered, synced from the fake and linked to the simulated
    WhatsApp."""
    prefix = new_redis_prefix("bench-assistant")
    now = dt.datetime.now(dt.UTC)
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(trio_asyncio.open_loop())
            database_url = None if in_memory else await stack.enter_async_context(temp_database())
            fake: FakeYClients | None = None
            process: FakeProcess | None = None
            if in_process:
                fake = await stack.enter_async_context(
                    running_fake_yclients(rate_limits=None, catalog=catalog, now=now)
                )
                base_url = fake.base_url
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                process = await stack.enter_async_context(fake_process(catalog, folder))
                base_url = process.base_url
            settings = base_settings(database_url, prefix, wait)
            storage = await stack.enter_async_context(open_storage(settings))
            client = await stack.enter_async_context(
                YClientsClient(
                    base_url,
                    PARTNER_TOKEN,
                    timeout=10.0,
                    retry=RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1),
                )
            )
            world = world or SimulatedWorld()
            with trio.fail_after(SETUP_TIMEOUT):
                salons = [
                    await _register(storage, client, world, raw, n)
                    for n, raw in enumerate(catalog["salons"])
                ]
            yield Stand(settings, storage, client, world, salons, now, fake, process)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await delete_redis_prefix(prefix)


async def _register(
    storage: Storage,
    client: YClientsClient,
    world: SimulatedWorld,
    raw: Mapping[str, Any],
    n: int,
) -> Salon:
    sid = int(raw["id"])
    company = (await storage.companies.create(sid, title=str(raw["title"]))).company
    result = await sync_company(storage, client, company)
    if not result.ok:
        raise RuntimeError(f"salon {sid} not synced: {result.error}")
    conn = world.attach(company.id, lambda event: None)
    conn.show_qr("2@bench")
    phone = f"7900555{n:04d}"
    jid = world.scan(company.id, phone=phone)
    conn.detach()
    await storage.companies.transition(
        company.id,
        ["pending"],
        "active",
        whatsapp_jid=jid,
        whatsapp_phone=phone,
        whatsapp_connected=True,
    )
    titles = tuple(str(s["title"]) for s in raw["services"])
    return Salon(sid, company.id, ZoneInfo(str(raw.get("timezone", "Europe/Moscow"))), titles, raw)


@dataclass
class Stamps:
    """When each phone's message was handed to the inbound handler (bare node) or its first
    reply was queued (assistant)."""

    at: dict[str, float] = field(default_factory=dict)
    replies: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    def stamp(self, phone: str) -> None:
        self.at.setdefault(phone, trio.current_time())
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.at) < count:
            await self.changed.wait()


@asynccontextmanager
async def running_node(stand: Stand, *, assistant: bool) -> AsyncIterator[tuple[Node, Stamps]]:
    """A node over the stand (restoring the linked salons), with the assistant or without it
    (then a stamping inbound handler stands for the bare inbound path)."""
    stamps = Stamps()

    async def handled(company_id: int, message: InboundMessage | StaffMessage) -> None:
        if isinstance(message, InboundMessage):
            stamps.stamp(message.sender_phone)

    options = AssistantOptions(yclients=stand.client) if assistant else None
    async with trio.open_nursery() as nursery:
        gateway = SimulatedGateway(nursery, world=stand.world, qr=stand.settings.qr)
        companies: Companies = build_companies(
            stand.settings,
            stand.storage,
            gateway,
            inbound_handler=handled,
            rng=random.Random(7),
            assistant=options,
        )
        if companies.assistant is not None:
            deps = companies.assistant.deps
            send = deps.send

            async def queued(company_id: int, phone: str, text: str) -> None:
                await send(company_id, phone, text)  # returns once the outbound queue took it
                stamps.replies += 1
                stamps.stamp(phone)

            deps.send = queued
        async with companies.open_node() as node:
            ids = [s.company_id for s in stand.salons]
            with trio.fail_after(SETUP_TIMEOUT):
                await stand.world.wait_until(lambda: all(stand.world.is_connected(c) for c in ids))
            yield node, stamps
            await gateway.aclose()
        nursery.cancel_scope.cancel()


class Phones:
    """Fresh client phones no catalog client has."""

    def __init__(self) -> None:
        self._next = PHONE_BASE

    def take(self) -> str:
        self._next += 1
        return str(self._next)


# -- assistant_reply_p99_ms ----------------------------------------------------------------------

KINDS = ("book", "price", "book", "address")


def first_message(salon: Salon, kind: str, i: int) -> str:
    """A client's first message of ``kind`` to ``salon`` (its own services, in rotation)."""
    title = salon.services[i % len(salon.services)]
    if kind == "book":
        return f"Здравствуйте! Хочу записаться завтра в 15:00: {title.lower()}"
    if kind == "price":
        return f"Сколько стоит {title.lower()}?"
    return "Подскажите, пожалуйста, адрес салона"


@dataclass
class Round:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    requests: int = 0
    replies: int = 0


async def reply_round(stand: Stand, phones: Phones, count: int, *, assistant: bool) -> Round:
    """``count`` phones write at once; latency per kind to the reply queued (assistant) or to
    the message handled (bare)."""
    out = Round()
    async with running_node(stand, assistant=assistant) as (_, stamps):
        plan: list[tuple[str, str, int, str]] = []
        for i in range(count):
            salon = stand.salons[i % len(stand.salons)]
            kind = KINDS[(i // len(stand.salons)) % len(KINDS)]
            plan.append((phones.take(), kind, salon.company_id, first_message(salon, kind, i)))
        before = stand.request_count()
        sent: dict[str, float] = {}
        for phone, _, cid, text in plan:
            sent[phone] = trio.current_time()
            stand.world.send_inbound(cid, phone, text)
        with trio.fail_after(ROUND_TIMEOUT):
            await stamps.wait_for(count)
        for phone, kind, _, _ in plan:
            out.latencies[kind].append(stamps.at[phone] - sent[phone])
        await trio.sleep(0.5)  # let the last YClients calls of a turn land before counting
        out.requests = stand.request_count() - before
        out.replies = stamps.replies
    return out


async def reply_rounds(
    conversations: int, rounds: int, *, in_memory: bool
) -> tuple[list[Round], list[Round], int]:
    """(bare rounds, assistant rounds, salons) on one stand, rounds alternating."""
    async with open_stand(merged_catalog(dialogue_sets()), wait=WAIT, in_memory=in_memory) as stand:
        phones = Phones()
        bare: list[Round] = []
        ours: list[Round] = []
        await reply_round(stand, phones, 20, assistant=True)  # warm: imports, caches, pools
        for _ in range(rounds):
            bare.append(await reply_round(stand, phones, conversations, assistant=False))
            ours.append(await reply_round(stand, phones, conversations, assistant=True))
        return bare, ours, len(stand.salons)


def _pooled(rounds: Sequence[Round], kind: str | None = None) -> list[float]:
    return [
        x for r in rounds for k, values in r.latencies.items() if kind in (None, k) for x in values
    ]


def reply_latency(conversations: int, rounds: int) -> None:
    bare, ours, salons = trio.run(partial(reply_rounds, conversations, rounds, in_memory=False))
    mem_bare, mem_ours, _ = trio.run(partial(reply_rounds, conversations, rounds, in_memory=True))
    ours_all, bare_all = _pooled(ours), _pooled(bare)
    requests = sum(r.requests for r in ours) / rounds
    limit_s = _limited_seconds(int(requests))
    print(
        f"assistant_reply_p99_ms: {p99(ours_all) * 1000:,.1f} ms "
        f"(PostgreSQL + Redis; {conversations} conversations at once over {salons} salons, "
        f"{rounds} round(s), {len(ours_all):,} replies; AIADMIN_ASSISTANT_WAIT={WAIT:g} s "
        f"included; median {ms(statistics.median(ours_all))}; p99 by first message: "
        + "; ".join(f"{k} {ms(p99(_pooled(ours, k)))}" for k in ("book", "price", "address"))
        + f"; bare inbound path (no assistant: to the message recorded and handled) p99 "
        f"{ms(p99(bare_all))}, median {ms(statistics.median(bare_all))}; ratio "
        f"{p99(ours_all) / p99(bare_all):.1f}; in-memory storage, same run: p99 "
        f"{ms(p99(_pooled(mem_ours)))} against bare {ms(p99(_pooled(mem_bare)))}; "
        f"{requests:,.0f} YClients requests per round, partner limit lifted: at production's "
        f"limit they alone need >= {limit_s:,.0f} s)"
    )


def _limited_seconds(requests: int) -> float:
    """The least time production's partner limit (``YCLIENTS_WINDOWS``) lets ``requests``
    through in, starting from an empty window."""
    worst = 0.0
    for window in YCLIENTS_WINDOWS:
        full_windows = max(0, math.ceil(requests / window.limit) - 1)
        worst = max(worst, full_windows * window.window)
    return worst


# -- understand_us -----------------------------------------------------------------------------


def _client_texts(dialogue: Dialogue, today: dt.date) -> Iterable[str]:
    for turn in (*dialogue.burst, *dialogue.turns):
        if turn.from_client and turn.text.strip():
            yield render(turn.text, today)


def understand_cpu(passes: int) -> None:
    sets = dialogue_sets()
    catalogs: dict[int, AssistantCatalog] = {}
    cases: list[tuple[str, AssistantCatalog, dt.datetime]] = []
    for s in sets:
        path = SAMPLE_CATALOG if s.name == "sample" else CORPUS_CATALOG
        for d in s.dialogues:
            if d.salon_id not in catalogs:
                catalogs[d.salon_id] = assistant_catalog(d.salon_id, path=path)
            catalog = catalogs[d.salon_id]
            now = dt.datetime(2026, 3, 11, 10, 0, tzinfo=catalog.salon.zone)  # a Wednesday
            cases.extend((text, catalog, now) for text in _client_texts(d, now.date()))
    context = TurnContext()

    def understand(case: tuple[str, AssistantCatalog, dt.datetime]) -> object:
        text, catalog, now = case
        return understand_rules(text, context, catalog, now)

    def when(case: tuple[str, AssistantCatalog, dt.datetime]) -> object:
        text, catalog, now = case
        opening = catalog.salon.opening
        return parse_when(text, now, opening=opening) if opening else parse_when(text, now)

    cold = _cpu_per_call(understand, cases, passes=1)  # the first pass fills the word caches
    ours = _cpu_per_call(understand, cases, passes=passes)
    dates = _cpu_per_call(when, cases, passes=passes)
    print(
        f"understand_us: {statistics.mean(ours):,.0f} us CPU per message "
        f"(understand_rules alone, warm; {len(cases):,} client texts of {len(sets)} dialogue "
        f"set(s), {len(catalogs)} salons, x{passes}; median {statistics.median(ours):,.0f} us, "
        f"p99 {p99(ours):,.0f} us, max {max(ours):,.0f} us; first pass, word caches cold, "
        f"mean {statistics.mean(cold):,.0f} us; parse_when alone on the same texts "
        f"{statistics.mean(dates):,.0f} us mean, p99 {p99(dates):,.0f} us)"
    )


def _cpu_per_call(fn: Callable[[Any], object], cases: Sequence[Any], *, passes: int) -> list[float]:
    """CPU microseconds of each call, over ``passes`` passes of ``cases``."""
    spent: list[float] = []
    clock = time.process_time_ns
    for _ in range(passes):
        for case in cases:
            start = clock()
            fn(case)
            spent.append((clock() - start) / 1000)
    return spent


# -- yclients_calls_per_booking ----------------------------------------------------------------

_NUMBER = re.compile(r"/\d+")
_DATE = re.compile(r"/\d{4}-\d{2}-\d{2}")


def endpoint(method: str, path: str) -> str:
    """A request's endpoint with its ids and dates left out: ``GET /api/v1/book_times/*/*/*``."""
    return f"{method} {_NUMBER.sub('/*', _DATE.sub('/*', path))}"


@dataclass
class DialogueCalls:
    name: str
    booked: bool
    calls: collections.Counter[str]
    errors: list[str]


class DialogueDriver:
    """Plays one dialogue in process: the client's phone on the simulated world, waiting for
    each reply (bounded) before the next turn, as the acceptance runner does over HTTP."""

    def __init__(self, stand: Stand, salon: Salon, dialogue: Dialogue, phone: str) -> None:
        self.stand = stand
        self.salon = salon
        self.dialogue = dialogue
        self.phone = phone
        today = dt.datetime.now(salon.zone).date()
        self.burst = [replace(t, text=render(t.text, today)) for t in dialogue.burst]
        self.turns = [replace(t, text=render(t.text, today)) for t in dialogue.turns]
        self.seen = len(stand.world.chat(salon.company_id, phone))
        self.errors: list[str] = []

    def _ours(self) -> set[int]:
        fake = self.stand.fake
        assert fake is not None, "the dialogues need the fake in process"
        return {int(r["id"]) for r in fake.live_records(self.salon.salon_id) if r.get("api_id")}

    async def run(self) -> bool:
        """Play it; whether a record carrying our api_id appeared."""
        before = self._ours()
        optional = bool(self.dialogue.expect.get("reply_optional"))
        if self.burst:
            for turn in self.burst:
                self._send(turn)
            await self._replies(optional)
        for n, turn in enumerate(self.turns, start=1):
            if turn.is_plain_yes and self._ours() - before:
                continue  # the booking exists: the runner skips a second "да" too
            if turn.kind == "mode":
                await self.stand.storage.conversations.set_mode(
                    self.salon.company_id, self.phone, ConversationMode(turn.mode)
                )
                continue
            self._send(turn)
            last = n == len(self.turns)
            silent = (
                turn.kind == "staff" or optional or (last and self.dialogue.expect.get("silent"))
            )
            if not await self._replies(bool(silent)) and not silent:
                self.errors.append(f"no reply to {turn.describe()!r}")
                break
        return bool(self._ours() - before)

    def _send(self, turn: Turn) -> None:
        world, cid = self.stand.world, self.salon.company_id
        if turn.kind == "staff":
            world.staff_send(cid, self.phone, turn.text)
            self.seen += 1  # the staff's line is not a reply
        elif turn.kind == "media":
            world.send_inbound(cid, self.phone, turn.text, kind=turn.media)
        else:
            world.send_inbound(cid, self.phone, turn.text)

    async def _replies(self, may_be_silent: bool) -> int:
        """How many assistant messages came: wait for the first (bounded), then for quiet."""
        world, cid = self.stand.world, self.salon.company_id

        def outs() -> int:
            lines = world.chat(cid, self.phone)[self.seen :]
            return sum(1 for line in lines if line.direction == "out")

        with trio.move_on_after(SILENCE if may_be_silent else REPLY_TIMEOUT):
            await world.wait_until(lambda: outs() > 0)
        if outs():
            count, quiet_since = outs(), trio.current_time()
            while trio.current_time() - quiet_since < QUIET:
                await trio.sleep(0.05)
                if outs() != count:
                    count, quiet_since = outs(), trio.current_time()
        found = outs()
        self.seen = len(world.chat(cid, self.phone))
        return found


async def calls_per_booking(limit: int | None) -> None:
    sets = dialogue_sets()
    bookings = [d for s in sets for d in s.dialogues if "booked" in d.expect]
    if limit is not None:
        bookings = bookings[:limit]
    results: list[DialogueCalls] = []
    async with open_stand(merged_catalog(sets), wait=0.4, in_process=True) as stand:
        fake = stand.fake
        assert fake is not None
        salons = {s.salon_id: s for s in stand.salons}
        phones = Phones()
        async with running_node(stand, assistant=True):
            for d in bookings:
                salon = salons[d.salon_id]
                phone = phones.take()
                if d.client_id is not None:
                    raw = next(c for c in salon.raw["clients"] if c["id"] == d.client_id)
                    phone = normalise_phone(str(raw["phone"]))
                before = len(fake.requests)
                driver = DialogueDriver(stand, salon, d, phone)
                booked = await driver.run()
                await trio.sleep(0.3)  # a settle or a last call still on its way
                calls = collections.Counter(
                    endpoint(r.method, r.path) for r in fake.requests[before:]
                )
                results.append(DialogueCalls(d.name, booked, calls, driver.errors))
    done = [r for r in results if r.booked]
    total = collections.Counter[str]()
    for r in done:
        total.update(r.calls)
    per = [sum(r.calls.values()) for r in done]
    average = statistics.mean(per) if per else float("nan")
    dominant = (
        ", ".join(f"{e} {n / len(done):.2f}" for e, n in total.most_common()) if done else "-"
    )
    missed = [r.name for r in results if not r.booked]
    print(
        f"yclients_calls_per_booking: {average:.2f} requests "
        f"(PostgreSQL + Redis; {len(done)} of {len(results)} booking dialogues made a record "
        f"with our api_id; per dialogue min {min(per, default=0)}, median "
        f"{statistics.median(per) if per else 0:g}, max {max(per, default=0)}; per booking by "
        f"endpoint: {dominant}; target <= 6)"
    )
    over = [r for r in done if sum(r.calls.values()) > 6]
    for r in over:
        listed = ", ".join(f"{e} x{n}" for e, n in r.calls.most_common())
        print(f"  over 6: {r.name!r}: {sum(r.calls.values())} ({listed})")
    if missed:
        print(f"  no record made (not counted): {missed}")
    for r in results:
        for error in r.errors:
            print(f"  {r.name!r}: {error}")


# -- memory_per_conversation_bytes -------------------------------------------------------------


def rss_bytes() -> int:
    """The process's resident set size now (``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


async def memory_child(measure: str, conversations: int) -> dict[str, Any]:
    """In a fresh interpreter: the bytes per live conversation (``rss`` or ``heap``)."""
    sets = dialogue_sets()
    # All of them must stay alive until measured: the run under tracemalloc takes longer than
    # the idle time after which a conversation actor is passivated.
    conversation_module.IDLE_SECONDS = 3600.0
    async with (
        open_stand(merged_catalog(sets), wait=WAIT, world=QuietWorld()) as stand,
        running_node(stand, assistant=True) as (node, stamps),
    ):
        assert node.assistant is not None
        registry = node.assistant.registry
        phones = Phones()
        # Warm up: every salon answers every kind once (imports, dictionaries, caches, pools),
        # then those conversations stop, so the node holds 0 of them.
        warm = [
            (phones.take(), salon, kind)
            for salon in stand.salons
            for kind in ("book", "price", "address")
        ]
        await _turns(stand, stamps, [(p, s, first_message(s, k, 0)) for p, s, k in warm])
        for key in list(registry.active_keys()):
            await registry.stop(key)
        plan = []  # made before the baseline: the bench's own list is not counted
        for i in range(conversations):
            salon = stand.salons[i % len(stand.salons)]
            kind = ("book", "price")[(i // len(stand.salons)) % 2]
            plan.append((phones.take(), salon, first_message(salon, kind, i)))
        stamps.at = {}
        gc.collect()
        if measure == "heap":
            tracemalloc.start()
        base_rss, base_heap = rss_bytes(), _heap()
        base_snapshot = tracemalloc.take_snapshot() if measure == "heap" else None
        for start in range(0, conversations, 200):
            await _turns(stand, stamps, plan[start : start + 200])
            stamps.at = {}  # the bench's stamps are not the node's memory
        live = len(registry)
        gc.collect()
        rss, heap = rss_bytes() - base_rss, _heap() - base_heap
        top: dict[str, float] = {}
        if base_snapshot is not None:
            grown = tracemalloc.take_snapshot().compare_to(base_snapshot, "filename")
            for stat in grown[:6]:
                where = stat.traceback[0].filename.replace(str(ROOT) + "/", "")
                top[where.replace(sys.prefix, "<venv>")] = stat.size_diff / conversations
            tracemalloc.stop()
        return {"live": live, "rss": rss / conversations, "heap": heap / conversations, "top": top}


def _heap() -> int:
    return tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0


async def _turns(stand: Stand, stamps: Stamps, plan: Sequence[tuple[str, Salon, str]]) -> None:
    """Each phone writes once; returns once every one's reply was queued (and a moment for
    the company actors to hand the last ones to WhatsApp)."""
    for phone, salon, text in plan:
        stand.world.send_inbound(salon.company_id, phone, text)
    with trio.fail_after(ROUND_TIMEOUT):
        while not all(phone in stamps.at for phone, _, _ in plan):
            await stamps.changed.wait()
    await trio.sleep(0.2)


def memory(conversations: int) -> None:
    figures = {m: _run_child(m, conversations) for m in ("rss", "heap")}
    rss, heap = figures["rss"], figures["heap"]
    print(
        f"memory_per_conversation_bytes: {rss['rss']:,.0f} bytes RSS "
        f"(PostgreSQL + Redis; {conversations:,} live conversation actors after one turn each "
        f"({rss['live']:,.0f} alive at the end), against the same node with 0, fresh "
        f"interpreter; Python heap (tracemalloc, another fresh run, {heap['live']:,.0f} alive) "
        f"{heap['heap']:,.0f} bytes per conversation)"
    )
    grown = ", ".join(f"{where} {size:,.0f}" for where, size in heap["top"].items())
    print(f"  heap per conversation by allocating file: {grown}")


def _run_child(measure: str, conversations: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        measure,
        "--conversations",
        str(conversations),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child ({measure}) failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- llm_overhead_ms ---------------------------------------------------------------------------

LLM_MODEL = "bench-model"
#: What the fake model answers to every message: a whole booking, in the schema's words.
LLM_ANSWER = {
    "commands": [
        {"type": "start_flow", "flow": "book"},
        {"type": "set_services", "names": ["мужская стрижка"]},
        {"type": "set_master", "name": "Игорь"},
        {"type": "set_when", "text": "послезавтра в 15:00"},
    ]
}
LLM_TEXTS = (
    "Здравствуйте, хочу постричься к Игорю послезавтра часа в три",
    "ну это самое, как в тот раз, только покороче",
    "Мужская стрижка к Игорю послезавтра в 15:00",
    "а можно на послезавтра после обеда, стрижку",
    "Добрый день! Запишите меня, пожалуйста, на стрижку",
)


async def fake_openai_child() -> None:
    """The child: the fake model on a free loopback port, answering ``LLM_ANSWER`` at once;
    prints its base URL, then serves until killed."""
    from tests.fakes.openai import running_fake_openai, tool_call

    answer = tool_call(LLM_ANSWER)
    async with running_fake_openai() as fake:
        fake.default = lambda request: answer
        print(fake.base_url, flush=True)
        await trio.sleep_forever()


@asynccontextmanager
async def fake_openai_process() -> AsyncIterator[str]:
    """The fake model in a child process (its CPU is not ours); yields its base URL."""
    command = [sys.executable, str(THIS), "--fake-openai-child"]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(ROOT)
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(SETUP_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1024)
                if not chunk:
                    raise RuntimeError("the fake model exited before serving")
                line += chunk
        yield line.decode().strip()
    finally:
        process.terminate()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await process.wait()


Spent = tuple[float, float]  # wall and CPU seconds of one message


async def llm_overhead(messages: int) -> None:
    from actors.assistant._llm_client import LlmClient
    from actors.assistant._llm_understander import LlmMetrics, ModelUnderstanders
    from actors.assistant._model_policy import SalonModelPolicy, TokenMetrics
    from actors.assistant._understand import RuleUnderstander
    from metrics import MetricsRegistry
    from storage import SalonModelSettings

    catalog = assistant_catalog()
    prefix = new_redis_prefix("bench-llm")
    try:
        async with (
            trio_asyncio.open_loop(),
            temp_database() as database_url,
            fake_openai_process() as base_url,
        ):
            settings = base_settings(database_url, prefix, WAIT)
            async with open_storage(settings) as storage:
                company = (await storage.companies.create(ROMASHKA)).company
                cap = 10**9
                await storage.model_usage.put_settings(
                    company.id, SalonModelSettings(True, None, cap)
                )
                registry = MetricsRegistry()
                policy = SalonModelPolicy(storage, LLM_MODEL, metrics=TokenMetrics(registry))
                client = LlmClient(base_url, "sk-bench", timeout=8.0)
                models = ModelUnderstanders(client, policy, LlmMetrics(registry))
                rules = RuleUnderstander()
                context = TurnContext()
                now = dt.datetime.now(catalog.salon.zone)

                async def model_turn(text: str) -> object:
                    understander = await models.for_company(company.id, rules)
                    assert understander is not None
                    return await understander.understand(text, context, catalog, now)

                async def rules_turn(text: str) -> object:
                    return await rules.understand(text, context, catalog, now)

                async def accounting(text: str) -> None:
                    await policy.choice(company.id)
                    await policy.record_usage(company.id, 1, 1)

                async def timed(turn: Callable[[str], Any], count: int) -> list[Spent]:
                    spent: list[Spent] = []
                    for i in range(count):
                        text = LLM_TEXTS[i % len(LLM_TEXTS)]
                        wall, cpu = time.perf_counter(), time.process_time()
                        await turn(text)
                        spent.append((time.perf_counter() - wall, time.process_time() - cpu))
                    return spent

                try:
                    await timed(model_turn, 50)  # warm: connections, caches
                    await timed(rules_turn, 50)
                    model: list[Spent] = []
                    plain: list[Spent] = []
                    books: list[Spent] = []
                    for _ in range(5):  # alternate, so both see the same machine
                        model += await timed(model_turn, messages // 5)
                        plain += await timed(rules_turn, messages // 5)
                        books += await timed(accounting, messages // 5)
                finally:
                    await client.aclose()
                fallbacks = sum(
                    registry.value("aiadmin_llm_fallbacks_total", {"reason": r}) or 0
                    for r in (
                        "timeout",
                        "connect",
                        "http_4xx",
                        "http_5xx",
                        "malformed",
                        "invalid",
                        "unresolvable",
                        "policy",
                        "error",
                        "http_429",
                    )
                )
                calls = registry.value("aiadmin_llm_calls_total") or 0
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await delete_redis_prefix(prefix)
    m_wall, m_cpu = [w for w, _ in model], [c for _, c in model]
    r_wall, r_cpu = [w for w, _ in plain], [c for _, c in plain]
    a_wall, a_cpu = [w for w, _ in books], [c for _, c in books]
    print(
        f"llm_overhead_ms: {statistics.median(m_wall) * 1000:,.2f} ms per message, median wall "
        f"(PostgreSQL + Redis storage; {len(model):,} messages, fake OpenAI-compatible server in "
        f"a child process on loopback answering at once; p99 {ms(p99(m_wall))}; CPU of our "
        f"process {statistics.mean(m_cpu) * 1000:,.2f} ms mean per message; "
        f"{calls - 50:,.0f} usable answers after 50 warm-up ones, {fallbacks:,.0f} fallbacks; "
        f"of it the salon's accounting alone, the choice read and the tokens' upsert: median "
        f"{statistics.median(a_wall) * 1000:,.2f} ms wall, "
        f"{statistics.mean(a_cpu) * 1000:,.2f} ms CPU) against the rules path on "
        f"the same messages, same run: median wall {statistics.median(r_wall) * 1000:,.3f} ms, "
        f"p99 {ms(p99(r_wall))}, CPU {statistics.mean(r_cpu) * 1000:,.3f} ms mean; ratio "
        f"{statistics.median(m_wall) / statistics.median(r_wall):,.0f}x wall, "
        f"{statistics.mean(m_cpu) / statistics.mean(r_cpu):,.0f}x CPU"
    )


# -- main --------------------------------------------------------------------------------------

FIGURES = ("reply", "understand", "calls", "memory", "llm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts; about a minute")
    parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    parser.add_argument("--memory-child", choices=("rss", "heap"), help=argparse.SUPPRESS)
    parser.add_argument("--conversations", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--fake-openai-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.fake_openai_child:
        trio.run(fake_openai_child)
        return
    if args.memory_child:
        result = trio.run(memory_child, args.memory_child, args.conversations)
        print(json.dumps(result))
        return
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; choose from {FIGURES}")
    if "reply" in only:
        reply_latency(200, 1 if args.quick else 3)
    if "understand" in only:
        understand_cpu(passes=1 if args.quick else 5)
    if "calls" in only:
        trio.run(calls_per_booking, 6 if args.quick else None)
    if "memory" in only:
        memory(1_000 if args.quick else 10_000)
    if "llm" in only:
        trio.run(llm_overhead, 500 if args.quick else 2_000)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
