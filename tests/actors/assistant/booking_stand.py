"""A whole assistant in one trio run, for fault and load tests: the simulated WhatsApp, a node
running the assistant with the real understanding and decisions, in-memory storage, and the
fake YClients serving the example catalog — reached in process through httpx's ASGI transport,
so every timeout, ``Retry-After``, rate-limit pace and settle delay runs on trio's mock clock
(no socket: the autojump cannot fire a timeout while a reply is on its way).

"Now" is fixed at Wednesday 11 March 2026, 09:00 in Moscow (the salon's zone) for the fake,
the assistant and storage alike, and moves with trio's clock.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import trio

from actors import Node, open_node
from actors.assistant import AssistantOptions
from actors.assistant._conversation import DecideFn
from actors.reminders import ReminderOptions
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import RetryPolicy, YClientsClient, YClientsRateLimiter, sync_company
from config import AssistantPolicy, LlmSettings, SendPacing, Settings, settings_from_env
from storage import Storage, open_storage
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients

from ..company.test_company_actor import link
from .example_catalog import EXAMPLE_CATALOG, ROMASHKA

MSK = ZoneInfo("Europe/Moscow")
NOW = dt.datetime(2026, 3, 11, 9, 0, tzinfo=MSK)
#: The day after tomorrow ("послезавтра"): Friday 13 March, Igor and Oleg cut hair, Ekaterina
#: is off.
FRIDAY = dt.date(2026, 3, 13)
HAIRCUT = 6101
IGOR, OLEG = 6201, 6204
#: A reply saying a booking exists (only ever after YClients returned it).
CLAIM = "записала"
#: Per-attempt timeout of the stand's YClients client (virtual seconds).
YCLIENTS_TIMEOUT = 5.0
#: How long (virtual seconds) a test waits for a reply before it fails.
REPLY_WAIT = 600.0


def wall() -> dt.datetime:
    """The stand's wall clock: NOW plus trio's (mock) clock."""
    return NOW.astimezone(dt.UTC) + dt.timedelta(seconds=trio.current_time())


def stand_settings() -> Settings:
    base = settings_from_env({}, dotenv=None)
    return replace(
        base,
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
        assistant=AssistantPolicy(wait=0.4),
    )


@dataclass
class Stand:
    """What a test drives and observes."""

    fake: FakeYClients
    storage: Storage
    node: Node
    world: SimulatedWorld
    client: YClientsClient
    company_id: int

    def send(self, phone: str, text: str) -> None:
        self.world.send_inbound(self.company_id, phone, text)

    def said(self, phone: str) -> list[str]:
        """What the salon delivered to this phone, in order."""
        return [d.text for d in self.world.delivered(self.company_id) if d.to_phone == phone]

    async def replies(self, phone: str, count: int) -> list[str]:
        """The phone's first ``count`` replies, once they are there (bounded wait)."""
        with trio.fail_after(REPLY_WAIT):
            await self.world.wait_until(lambda: len(self.said(phone)) >= count)
        return self.said(phone)

    async def say(self, phone: str, text: str) -> str:
        """Send ``text`` and return the one reply it gets."""
        before = len(self.said(phone))
        self.send(phone, text)
        return (await self.replies(phone, before + 1))[before]

    async def quiet(self, seconds: float = 30.0) -> None:
        """Let ``seconds`` of (virtual) time pass, so a reply that should not come would."""
        await trio.sleep(seconds)

    def records(self) -> list[dict[str, Any]]:
        """The salon's live records our assistant made (they carry an api_id)."""
        return [r for r in self.fake.live_records(ROMASHKA) if r["api_id"]]

    def book_posts(self) -> int:
        return len(self.fake.requests_to("/api/v1/book_record/*", method="POST"))


async def to_summary(stand: Stand, phone: str, text: str, name: str = "Тимур") -> str:
    """Send the request; answer the name question if it comes; return the summary
    ("… Записать?")."""
    reply = await stand.say(phone, text)
    if "зовут" in reply:
        reply = await stand.say(phone, name)
    return reply


@asynccontextmanager
async def open_stand(
    *,
    rate_limits: Any = None,
    shared_limit: bool = False,
    decide: DecideFn | None = None,
    retry: RetryPolicy | None = None,
    wall_clock: Callable[[], dt.datetime] = wall,
    reminders: ReminderOptions | None = None,
    llm: LlmSettings | None = None,
    model_policy: Any = None,
    llm_transport: Any = None,
) -> AsyncIterator[Stand]:
    """The stand with the example salon registered, synced and linked (``reminders``: the
    node also plans and sends reminders).

    ``rate_limits`` are the fake's (``None``: none); ``shared_limit`` puts our YClients
    client behind the production rate limiter (5/s, 200/min, on the storage's counter).
    ``llm``, ``model_policy``, ``llm_transport``: the salon understands with a (fake) model."""
    settings = stand_settings()
    if llm is not None:
        settings = replace(settings, llm=llm)
    fake = FakeYClients(rate_limits=rate_limits, catalog=EXAMPLE_CATALOG, now=NOW)
    world = SimulatedWorld()
    async with open_storage(wall_clock=wall_clock, monotonic_clock=trio.current_time) as storage:
        limiter = YClientsRateLimiter(storage.rate_limiter) if shared_limit else None
        async with (
            YClientsClient(
                "http://yclients.test",
                PARTNER_TOKEN,
                transport=httpx.ASGITransport(app=fake),
                rate_limiter=limiter,
                timeout=YCLIENTS_TIMEOUT,
                retry=retry
                or RetryPolicy(attempts=2, backoff_initial=0.5, backoff_max=1.0, max_retry_after=5),
                rng=random.Random(2),
            ) as client,
            open_gateway(settings, world=world) as gateway,
            open_node(
                settings,
                storage,
                gateway,
                rng=random.Random(4),
                assistant=AssistantOptions(
                    yclients=client,
                    decide=decide,
                    wall_clock=wall_clock,
                    model_policy=model_policy,
                    llm_transport=llm_transport,
                ),
                reminders=reminders,
            ) as node,
        ):
            company = (await storage.companies.create(ROMASHKA, title="Ромашка")).company
            synced = await sync_company(storage, client, company)
            assert synced.ok, synced.error
            await link(node, world, company.id)
            yield Stand(fake, storage, node, world, client, company.id)
