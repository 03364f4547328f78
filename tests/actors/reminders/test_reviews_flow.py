"""Review requests end to end (issue 11), in one trio run under the mock clock: a node running
the assistant with reminders on and the record-webhook worker as a service of its tree, the
simulated WhatsApp, in-memory storage and the fake YClients in process (httpx's ASGI
transport). A visit arrives as YClients' record webhook stored in the inbox; the worker stores
the record and the planner plans it; the scheduler sends the request; the client's reply goes
through the real understanding and decisions.

- an attended visit (``attendance: 1``) gets exactly one request at its end — the webhook
  delivered twice, changed again, and the time-based moment passing change nothing; the
  rating is stored, the review link follows the salon's choice, a comment is stored with it;
- without the attendance webhook the request goes ``review_after`` (2 h, or the salon's
  value) after the visit's end; an evening visit's waits for the end of the quiet hours;
- a deleted (cancelled) visit and a no-show get none; nor does a salon with reviews off;
- a low rating tells the salon: the audit log, ``aiadmin_assistant_low_ratings_total`` and
  ``last_rating`` in the conversations API.

The Lotos salon is in Asia/Yekaterinburg (UTC+5); "now" is Monday 2 March 2026, 10:00 there.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors import Node, build_companies
from actors.assistant import AssistantOptions
from actors.reminders import ReminderOptions, ReminderSettings
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import InboxPolicy, RetryPolicy, SyncPolicy, YClientsClient, sync_company
from actors.yclients._services import data_services
from config import AssistantPolicy, SendPacing, Settings, settings_from_env
from metrics import MetricsRegistry
from storage import ReminderStatus, Storage, open_storage
from tests.fakes.yclients import LOTOS_ID, PARTNER_TOKEN, FakeYClients, seed_salons
from tests.fakes.yclients._booking import make_record
from web._conversations import conversation_json

from ..company.test_company_actor import link
from .scheduler_stand import watch_arrivals

ZONE = ZoneInfo("Asia/Yekaterinburg")
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZONE)
#: Мария Петрова, a client of the Lotos salon in the fake.
PHONE = "79161234567"
LINK = "https://maps.example/lotos/reviews"
#: Words only the review request says (the default text: «Оцените, пожалуйста, визит от 1 до 5»).
ASKS_RATING = "от 1 до 5"


def wall() -> dt.datetime:
    """The stand's wall clock: NOW plus trio's (mock) clock, in UTC."""
    return NOW.astimezone(dt.UTC) + dt.timedelta(seconds=trio.current_time())


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A wall time of the salon (March 2026), in UTC."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=ZONE).astimezone(dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """YClients' change time text, on the salon's clock."""
    return moment.astimezone(ZONE).isoformat()


def stand_settings() -> Settings:
    return replace(
        settings_from_env({}, dotenv=None),
        pacing=SendPacing(min_gap=0.0, jitter=0.0, per_minute=1000),
        assistant=AssistantPolicy(wait=0.4),
    )


@dataclass
class ReviewStand:
    """What a test drives and observes."""

    fake: FakeYClients
    storage: Storage
    node: Node
    world: SimulatedWorld
    metrics: MetricsRegistry
    company_id: int
    #: message id → trio time it reached the phone.
    arrived: dict[str, float] = field(default_factory=dict)

    def visit(self, start: dt.datetime, *, phone: str = PHONE) -> dict[str, Any]:
        """A record booked in the fake now: a haircut (60 min) with Анна at ``start``, for
        Мария (``phone``: another client of the salon)."""
        salon = self.fake.salons[LOTOS_ID]
        client = salon.clients[3001]
        if phone != PHONE:
            client = {**client, "id": int(phone[-6:]), "name": "Клиентка", "phone": phone}
            salon.clients[client["id"]] = client
        record = make_record(
            self.fake.state,
            salon,
            master=salon.staff[0],
            service_ids=[1001],
            client=client,
            when=start.astimezone(ZONE),
            length=3600,
        )
        record["create_date"] = record["last_change_date"] = stamp(wall())
        return record

    def change(self, record: dict[str, Any], **fields: Any) -> None:
        """Change the fake's record as the salon would, now."""
        record.update(fields)
        record["last_change_date"] = stamp(wall())

    async def webhook(self, record: dict[str, Any], status: str = "update") -> None:
        """YClients' record webhook as the web route stores it (deduplicated by its key), the
        worker poked; returns once the worker handled it (stored, planned)."""
        payload = {
            "company_id": LOTOS_ID,
            "resource": "record",
            "resource_id": record["id"],
            "status": status,
            "data": copy.deepcopy(record),
        }
        key = f"{record['id']}:{status}:{record['last_change_date']}"
        await self.storage.inbox.put(self.company_id, key, f"record:{status}", payload)
        inbox = self.node.services.record_inbox
        assert inbox is not None
        inbox.poke()
        with trio.fail_after(60):
            while True:
                if not await self.storage.inbox.pending_count():
                    return
                await trio.sleep(0.05)

    def said(self, phone: str = PHONE) -> list[str]:
        """What the client's phone received from the salon, in order."""
        return [d.text for d in self.world.delivered(self.company_id) if d.to_phone == phone]

    def requests(self, phone: str = PHONE) -> list[tuple[str, dt.datetime]]:
        """The review requests the phone received: ``(message id, wall time it arrived)``."""
        return [
            (d.message_id, self.arrived_at(d.message_id))
            for d in self.world.delivered(self.company_id)
            if d.to_phone == phone and ASKS_RATING in d.text
        ]

    def arrived_at(self, message_id: str) -> dt.datetime:
        return NOW.astimezone(dt.UTC) + dt.timedelta(seconds=self.arrived[message_id])

    async def until(self, moment: dt.datetime) -> None:
        """Let the (virtual) time run until the wall clock shows ``moment``."""
        await trio.sleep_until((moment - NOW).total_seconds())

    async def say(self, text: str, phone: str = PHONE) -> str:
        """Send ``text`` as the client; the one reply it gets."""
        before = len(self.said(phone))
        self.world.send_inbound(self.company_id, phone, text)
        with trio.fail_after(600):
            await self.world.wait_until(lambda: len(self.said(phone)) > before)
        return self.said(phone)[before]

    async def review_rows(self, record_id: int) -> list[Any]:
        rows = await self.storage.reminders.for_visit(self.company_id, record_id)
        return [r for r in rows if r.kind == "review"]

    def metric(self, series: str) -> float:
        """A series' value on ``/metrics`` (0 when it has none yet)."""
        found = re.search(rf"^{re.escape(series)} (\S+)$", self.metrics.render(), re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def low_ratings(self) -> float:
        return self.metric("aiadmin_assistant_low_ratings_total")

    def requests_sent(self) -> float:
        """Review requests the scheduler queued (``aiadmin_reminders_sent_total``)."""
        return self.metric('aiadmin_reminders_sent_total{kind="review"}')


@asynccontextmanager
async def open_stand(settings: ReminderSettings | None = None) -> AsyncIterator[ReviewStand]:
    """The stand with Lotos registered (in Asia/Yekaterinburg), synced, linked, and its
    reminder settings stored (``None``: the defaults)."""
    salons = seed_salons()
    salons[LOTOS_ID].timezone = ZONE.key
    fake = FakeYClients(rate_limits=None, salons=salons, now=NOW)
    world = SimulatedWorld()
    metrics = MetricsRegistry()
    config = stand_settings()
    async with (
        open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage,
        YClientsClient(
            "http://yclients.test",
            PARTNER_TOKEN,
            transport=httpx.ASGITransport(app=fake),
            timeout=5.0,
            retry=RetryPolicy(attempts=1),
        ) as client,
        open_gateway(config, world=world) as gateway,
    ):
        companies = build_companies(
            config,
            storage,
            gateway,
            metrics=metrics,
            rng=random.Random(11),
            assistant=AssistantOptions(yclients=client, wall_clock=wall),
            reminders=ReminderOptions(wall_clock=wall),
        )
        # Webhooks are poked; the sync runs only when asked (the visits come from webhooks).
        services = data_services(
            companies,
            client,
            inbox_policy=InboxPolicy(poll_interval=3600.0),
            sync_policy=SyncPolicy(interval=30 * 86400.0, poll_interval=3600.0),
        )
        async with companies.open_node(services) as node, trio.open_nursery() as nursery:
            company = (await storage.companies.create(LOTOS_ID, timezone=ZONE.key)).company
            synced = await sync_company(storage, client, company)
            assert synced.ok, synced.error
            if settings is not None:
                await storage.reminder_settings.put(company.id, settings.to_json())
            await link(node, world, company.id)
            stand = ReviewStand(fake, storage, node, world, metrics, company.id)
            nursery.start_soon(watch_arrivals, world, company.id, stand.arrived)
            yield stand
            nursery.cancel_scope.cancel()


# -- an attended visit -----------------------------------------------------------------------


async def test_an_attended_visit_gets_one_request_and_its_rating_brings_the_link(
    autojump_clock: MockClock,
) -> None:
    async with open_stand(ReminderSettings(review_link=LINK, review_link_to="all")) as stand:
        visit = stand.visit(local(2, 12, 30))  # booked at 10:00: too close for any reminder
        await stand.webhook(visit, "create")
        [row] = await stand.review_rows(visit["id"])
        assert row.due_at == local(2, 15, 30)  # 2 h after the end, as long as nobody says more
        await stand.until(local(2, 13, 25))
        stand.change(visit, attendance=1)
        await stand.webhook(visit)
        await stand.webhook(visit)  # YClients delivers the same webhook again
        await stand.until(local(2, 13, 35))
        [(message_id, at)] = stand.requests()
        assert local(2, 13, 30) <= at < local(2, 13, 31)  # at the visit's end, in daytime
        [row] = await stand.review_rows(visit["id"])
        assert (row.status, row.message_id) == (ReminderStatus.SENT, message_id)
        # the salon touches the attended record again; the time-based moment passes
        await stand.until(local(2, 14, 0))
        stand.change(visit, comment="постоянная клиентка")
        await stand.webhook(visit)
        await stand.until(local(2, 16, 0))
        assert [m for m, _ in stand.requests()] == [message_id]
        assert stand.said() == [stand.said()[0]]  # nothing else went to the client
        assert stand.requests_sent() == 1  # and the scheduler handed it over once
        [row] = await stand.review_rows(visit["id"])
        assert (row.status, row.message_id) == (ReminderStatus.SENT, message_id)

        thanks = await stand.say("5")
        assert LINK in thanks, thanks
        review = await stand.storage.reviews.get(stand.company_id, visit["id"])
        assert review is not None
        assert (review.rating, review.comment, review.phone) == (5, None, PHONE)
        assert review.visit_id == visit["visit_id"]
        comment = "Анна очень аккуратно подстригла, спасибо"
        await stand.say(comment)
        review = await stand.storage.reviews.get(stand.company_id, visit["id"])
        assert review is not None and (review.rating, review.comment) == (5, comment)
        assert stand.low_ratings() == 0
        conversation = await stand.storage.conversations.get(stand.company_id, PHONE)
        assert conversation is not None
        assert conversation_json(conversation)["last_rating"]["low"] is False
        assert [m for m, _ in stand.requests()] == [message_id]


#: Other ways to say 5 (``actors.assistant._ratings``), each from its own client.
FIVES = {
    "79160000001": "5!",
    "79160000002": "пять",
    "79160000003": "⭐⭐⭐⭐⭐",
    "79160000004": "на 5",
}


async def test_a_five_said_otherwise_is_stored_and_brings_the_link(
    autojump_clock: MockClock,
) -> None:
    async with open_stand(ReminderSettings(review_link=LINK, review_link_to="high")) as stand:
        visits = {phone: stand.visit(local(2, 12, 30), phone=phone) for phone in FIVES}
        for visit in visits.values():
            await stand.webhook(visit, "create")
        await stand.until(local(2, 13, 25))
        for visit in visits.values():
            stand.change(visit, attendance=1)
            await stand.webhook(visit)
        await stand.until(local(2, 13, 35))
        for phone, reply in FIVES.items():
            assert len(stand.requests(phone)) == 1
            thanks = await stand.say(reply, phone)
            assert LINK in thanks, (reply, thanks)
            review = await stand.storage.reviews.get(stand.company_id, visits[phone]["id"])
            assert review is not None and (review.rating, review.phone) == (5, phone), reply


@pytest.mark.parametrize(
    ("link_to", "high", "rating", "link_sent"),
    [
        ("high", 4, 5, True),
        ("high", 4, 4, True),
        ("high", 4, 3, False),
        ("high", 5, 4, False),
        ("all", 4, 2, True),
    ],
    ids=["high-5", "high-4", "high-3", "high5-4", "all-2"],
)
async def test_the_link_follows_the_salons_choice(
    autojump_clock: MockClock, link_to: str, high: int, rating: int, link_sent: bool
) -> None:
    settings = ReminderSettings(review_link=LINK, review_link_to=link_to, high_rating=high)  # type: ignore[arg-type]
    async with open_stand(settings) as stand:
        visit = stand.visit(local(2, 12, 30))
        await stand.webhook(visit, "create")
        await stand.until(local(2, 13, 35))
        stand.change(visit, attendance=1)
        await stand.webhook(visit)
        await stand.until(local(2, 13, 40))
        assert len(stand.requests()) == 1
        thanks = await stand.say(str(rating))
        assert (LINK in thanks) is link_sent, thanks
        review = await stand.storage.reviews.get(stand.company_id, visit["id"])
        assert review is not None and review.rating == rating


# -- the time-based request --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "due"),
    [
        (None, local(2, 15, 30)),
        (ReminderSettings(review_after=dt.timedelta(minutes=30)), local(2, 14, 0)),
    ],
    ids=["default-2h", "salon-30min"],
)
async def test_without_the_attendance_webhook_the_request_goes_review_after_the_end(
    autojump_clock: MockClock, settings: ReminderSettings | None, due: dt.datetime
) -> None:
    async with open_stand(settings) as stand:
        visit = stand.visit(local(2, 12, 30))
        await stand.webhook(visit, "create")
        await stand.until(due - dt.timedelta(minutes=1))
        assert stand.requests() == []
        await stand.until(due + dt.timedelta(hours=2))
        [(_, at)] = stand.requests()
        assert due <= at < due + dt.timedelta(minutes=1)
        assert len(stand.said()) == 1


async def test_an_evening_visits_request_waits_for_the_morning(autojump_clock: MockClock) -> None:
    async with open_stand() as stand:
        visit = stand.visit(local(2, 19, 0))  # ends 20:00; 2 h later is 22:00, in quiet hours
        await stand.webhook(visit, "create")
        [row] = await stand.review_rows(visit["id"])
        assert row.due_at == local(3, 9, 0)
        await stand.until(local(3, 8, 59))
        assert stand.requests() == []  # the reminder 2 h before went; no request at night
        await stand.until(local(3, 12, 0))
        [(_, at)] = stand.requests()
        assert local(3, 9, 0) <= at < local(3, 9, 1)


# -- no request --------------------------------------------------------------------------------


async def test_a_deleted_visit_and_a_no_show_get_no_request(autojump_clock: MockClock) -> None:
    async with open_stand() as stand:
        cancelled = stand.visit(local(2, 12, 30))
        no_show = stand.visit(local(2, 12, 45))  # both booked too close for reminders
        await stand.webhook(cancelled, "create")
        await stand.webhook(no_show, "create")
        await stand.until(local(2, 11, 0))
        stand.change(cancelled, deleted=True)
        await stand.webhook(cancelled, "delete")
        await stand.until(local(2, 14, 30))
        stand.change(no_show, attendance=-1)
        await stand.webhook(no_show)
        await stand.until(local(2, 18, 0))  # well past both visits' moments (15:30, 15:45)
        assert stand.said() == []
        assert {(r.status, r.reason) for r in await stand.review_rows(cancelled["id"])} == {
            (ReminderStatus.DROPPED, "deleted")
        }
        assert {(r.status, r.reason) for r in await stand.review_rows(no_show["id"])} == {
            (ReminderStatus.SKIPPED, "no_show")
        }


async def test_a_salon_with_reviews_off_asks_nobody(autojump_clock: MockClock) -> None:
    async with open_stand(ReminderSettings(reviews_enabled=False)) as stand:
        attended = stand.visit(local(2, 12, 30))
        plain = stand.visit(local(2, 12, 45))
        await stand.webhook(attended, "create")
        await stand.webhook(plain, "create")
        await stand.until(local(2, 13, 25))
        stand.change(attended, attendance=1)
        await stand.webhook(attended)
        await stand.until(local(2, 18, 0))  # past both moments (13:30 attended, 15:45)
        assert stand.said() == []


# -- a low rating --------------------------------------------------------------------------------


async def test_a_low_rating_tells_the_salon(autojump_clock: MockClock) -> None:
    async with open_stand(ReminderSettings(review_link=LINK, review_link_to="high")) as stand:
        visit = stand.visit(local(2, 12, 30))
        await stand.webhook(visit, "create")
        await stand.until(local(2, 13, 25))
        stand.change(visit, attendance=1)
        await stand.webhook(visit)
        await stand.until(local(2, 13, 40))
        assert len(stand.requests()) == 1
        assert stand.low_ratings() == 0

        sorry = await stand.say("2")
        assert LINK not in sorry and "жаль" in sorry, sorry
        review = await stand.storage.reviews.get(stand.company_id, visit["id"])
        assert review is not None and (review.rating, review.comment) == (2, None)
        events = [
            e
            for e in await stand.storage.audit.recent(stand.company_id)
            if e.event_type == "assistant.low_rating"
        ]
        assert len(events) == 1
        assert events[0].data["rating"] == 2 and events[0].data["phone"] == PHONE
        assert events[0].data["record_id"] == visit["id"]
        assert stand.low_ratings() == 1
        conversation = await stand.storage.conversations.get(stand.company_id, PHONE)
        assert conversation is not None
        shown = conversation_json(conversation)["last_rating"]
        assert shown is not None
        assert (shown["record_id"], shown["rating"], shown["low"]) == (visit["id"], 2, True)
