"""A node sending reminders, in one trio run under the mock clock: the simulated WhatsApp, a
node with the assistant (no YClients: the assistant only judges chats and keeps prompts) and
the reminder scheduler, one salon in Asia/Yekaterinburg registered and linked.

Rows are planted as the planner would plant them (``plan_visit`` + ``Reminders.plan`` with
``visit_details``), independent of the planner. "Now" is Monday 2 March 2026, 10:00 local
(05:00 UTC), and moves with trio's clock (:func:`wall`). Every message the phone receives is
timed on trio's clock as it arrives (:attr:`ReminderStand.arrived`).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import trio

from actors import Node, open_node
from actors.assistant import AssistantOptions
from actors.reminders import (
    MessageKind,
    PlannedMessage,
    ReminderOptions,
    ReminderScheduler,
    ReminderSettings,
    VisitFacts,
    plan_visit,
    visit_details,
)
from actors.whatsapp import DeliveredMessage, SimulatedWorld, open_gateway
from config import SendPacing, Settings, settings_from_env
from storage import PlannedReminder, SalonRecord, Storage, open_storage

from ..company.test_company_actor import link

ZONE = ZoneInfo("Asia/Yekaterinburg")
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=ZONE)
SALON = 5151
TITLE = "Салон «Ромашка»"
ADDRESS = "Екатеринбург, ул. Ленина, 10"
#: The production pacing (``SendPacing()``'s defaults: 1 s + up to 2 s, 20 a minute).
PRODUCTION_PACING = SendPacing()


def wall() -> dt.datetime:
    """The stand's wall clock: NOW plus trio's (mock) clock, in UTC."""
    return NOW.astimezone(dt.UTC) + dt.timedelta(seconds=trio.current_time())


def at_trio(moment: dt.datetime) -> float:
    """The trio time at which the wall clock shows ``moment``."""
    return (moment - NOW).total_seconds()


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A wall time of the salon."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


#: The operators' key of the stand's settings (``/health/tree``).
ADMIN_KEY = "adm_reminder_stand_key_0123456789abcdef"


def stand_settings(pacing: SendPacing = PRODUCTION_PACING) -> Settings:
    return replace(
        settings_from_env({}, dotenv=None),
        pacing=pacing,
        admin_api_key=ADMIN_KEY,
        admin_api_key_generated=False,
    )


def visit(
    record_id: int,
    phone: str,
    starts: dt.datetime,
    *,
    booked: dt.datetime | None = None,
    length: dt.timedelta = dt.timedelta(hours=1),
    company_id: int = 1,
) -> VisitFacts:
    """A visit booked at ``booked`` (default: now), with a haircut by Анна."""
    return VisitFacts(
        company_id=company_id,
        record_id=record_id,
        visit_id=record_id + 900_000,
        client_phone=phone,
        client_name="Мария",
        service_titles=("Стрижка женская",),
        master_name="Анна",
        starts_at=starts.astimezone(dt.UTC),
        ends_at=(starts + length).astimezone(dt.UTC),
        booked_at=(booked or wall()).astimezone(dt.UTC),
    )


def planned_rows(
    facts: VisitFacts, settings: ReminderSettings | None = None
) -> list[PlannedReminder]:
    """The rows the planner writes for ``facts`` now (skipped kinds left out)."""
    plan = plan_visit(facts, settings or ReminderSettings(), ZONE, wall())
    details = visit_details(facts)
    return [
        PlannedReminder(
            record_id=facts.record_id,
            kind=p.kind.value,
            visit_time=p.visit_time,
            due_at=p.due_at,
            send_by=p.send_by,
            visit_id=facts.visit_id,
            phone=facts.client_phone,
            details=details,
        )
        for p in plan
        if isinstance(p, PlannedMessage)
    ]


def salon_record(facts: VisitFacts, **changes: Any) -> SalonRecord:
    """The record as YClients would have it (``salon_records``)."""
    record = SalonRecord(
        company_id=facts.company_id,
        record_id=facts.record_id,
        client_phone=facts.client_phone,
        client_name=facts.client_name,
        services=[{"title": t} for t in facts.service_titles],
        starts_at=facts.starts_at,
        seance_length=int((facts.ends_at - facts.starts_at).total_seconds()),
        attendance=0,
        changed_at=wall(),
        raw={"visit_id": facts.visit_id},
    )
    return replace(record, **changes)


@dataclass
class ReminderStand:
    """What a test drives and observes."""

    storage: Storage
    node: Node
    world: SimulatedWorld
    company_id: int
    #: message id → trio time it reached the phone.
    arrived: dict[str, float] = field(default_factory=dict)

    @property
    def scheduler(self) -> ReminderScheduler:
        assert self.node.reminders is not None
        return self.node.reminders

    def delivered(self, phone: str | None = None) -> list[DeliveredMessage]:
        """What the phones received from the salon, in order (``phone``: one phone's)."""
        return [
            d for d in self.world.delivered(self.company_id) if phone is None or d.to_phone == phone
        ]

    def arrived_at(self, message_id: str) -> dt.datetime:
        """The wall time (UTC) the message reached the phone."""
        return NOW.astimezone(dt.UTC) + dt.timedelta(seconds=self.arrived[message_id])

    def visit(self, record_id: int, phone: str, starts: dt.datetime, **kw: Any) -> VisitFacts:
        return visit(record_id, phone, starts, company_id=self.company_id, **kw)

    async def plant(
        self, facts: VisitFacts, settings: ReminderSettings | None = None, *, record: bool = True
    ) -> list[PlannedReminder]:
        """Plan the visit's rows as the planner would (and store its record), and announce."""
        if record:
            await self.storage.records.apply(salon_record(facts))
        rows = planned_rows(facts, settings)
        if await self.storage.reminders.plan(self.company_id, rows):
            await self.scheduler.announce()
        return rows

    async def plant_many(self, visits: Sequence[VisitFacts]) -> int:
        rows = [row for facts in visits for row in planned_rows(facts)]
        for start in range(0, len(rows), 500):
            await self.storage.reminders.plan(self.company_id, rows[start : start + 500])
        await self.scheduler.announce()
        return len(rows)

    async def wait_delivered(self, count: int, *, within: float) -> None:
        """Until the phones received ``count`` messages (fail after ``within`` s)."""
        with trio.fail_after(within):
            await self.world.wait_until(lambda: len(self.delivered()) >= count)


async def watch_arrivals(world: SimulatedWorld, company_id: int, arrived: dict[str, float]) -> None:
    """Note the trio time each new message reaches the phones (autojump: no time passes
    between the send and this task waking)."""
    while True:
        for message in world.delivered(company_id):
            arrived.setdefault(message.message_id, trio.current_time())
        await world.wait_until(functools.partial(_more_than, world, company_id, len(arrived)))


def _more_than(world: SimulatedWorld, company_id: int, count: int) -> bool:
    return len(world.delivered(company_id)) > count


@asynccontextmanager
async def running_node(
    settings: Settings,
    storage: Storage,
    world: SimulatedWorld,
    *,
    seed: int = 5,
    options: ReminderOptions | None = None,
    wall_clock: Callable[[], dt.datetime] = wall,
    **node_options: Any,
) -> AsyncIterator[Node]:
    """A node with the assistant and the reminder scheduler over ``storage`` and ``world``
    (``wall_clock``: the assistant's; the scheduler's is in ``options``)."""
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings,
            storage,
            gateway,
            rng=random.Random(seed),
            assistant=AssistantOptions(wall_clock=wall_clock),
            reminders=options or ReminderOptions(wall_clock=wall_clock),
            **node_options,
        ) as node,
    ):
        yield node


@asynccontextmanager
async def open_stand(
    *,
    pacing: SendPacing = PRODUCTION_PACING,
    options: ReminderOptions | None = None,
    settings_json: dict[str, Any] | None = None,
    storage_factory: Callable[[], Any] | None = None,
) -> AsyncIterator[ReminderStand]:
    """The stand on in-memory storage, the salon registered and linked."""
    settings = stand_settings(pacing)
    world = SimulatedWorld()
    opener = storage_factory or (
        lambda: open_storage(wall_clock=wall, monotonic_clock=trio.current_time)
    )
    async with (
        opener() as storage,
        running_node(settings, storage, world, options=options) as node,
        trio.open_nursery() as nursery,
    ):
        created = await storage.companies.create(
            SALON, title=TITLE, address=ADDRESS, timezone=ZONE.key
        )
        company_id = created.company.id
        if settings_json is not None:
            await storage.reminder_settings.put(company_id, settings_json)
        await link(node, world, company_id)
        stand = ReminderStand(storage, node, world, company_id)
        nursery.start_soon(watch_arrivals, world, company_id, stand.arrived)
        yield stand
        nursery.cancel_scope.cancel()


def kinds_of(rows: Sequence[PlannedReminder]) -> list[MessageKind]:
    return [MessageKind(r.kind) for r in rows]
