"""A salon's settings change through the API re-plans the visits it already has planned: the
day-before reminder moves from 18:00 to 19:00, one already sent stays sent, a kind switched off
is skipped, a change of texts only re-plans nothing; on a node that sends reminders, with its
re-planning child in the tree.

The salon is in Asia/Yekaterinburg (UTC+5); the wall clock stands at Monday 2 March 2026,
10:00 local (the scheduler finds nothing due), the visits are a week later.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from actors import open_node
from actors.reminders import ReminderOptions, ReminderReplanner
from actors.whatsapp import SimulatedWorld, open_gateway
from config import Settings
from storage import Company, Reminder, ReminderStatus, Storage, open_storage
from tests.actors.reminders.test_planner import NOW, ZONE, local, record
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage
from tests.web.conftest import WebHarness
from web._app import create_app


@asynccontextmanager
async def open_reminder_web(
    settings: Settings, storage: Storage, wall: FakeWallClock
) -> AsyncIterator[WebHarness]:
    """The app over a node that plans and sends reminders on ``wall``'s clock."""
    world = SimulatedWorld()
    async with (
        open_gateway(settings, world=world) as gateway,
        open_node(
            settings,
            storage,
            gateway,
            rng=random.Random(7),
            reminders=ReminderOptions(wall_clock=wall),
        ) as node,
    ):
        await node.restore_done()
        app = create_app(node)
        yield WebHarness(app, app.test_client(), node, settings, world)


@pytest.fixture
def wall() -> FakeWallClock:
    return FakeWallClock(NOW.astimezone(dt.UTC))


@pytest.fixture(params=["memory", "real"])
async def web(
    request: pytest.FixtureRequest,
    settings: Settings,
    wall: FakeWallClock,
    database_url: str,
    redis_prefix: str,
) -> AsyncIterator[WebHarness]:
    if request.param == "memory":
        async with (
            open_storage(wall_clock=wall, monotonic_clock=trio.current_time) as storage,
            open_reminder_web(settings, storage, wall) as harness,
        ):
            yield harness
        return
    async with (
        open_real_storage(database_url, redis_prefix=redis_prefix, wall_clock=wall) as storage,
        open_reminder_web(settings, storage, wall) as harness,
    ):
        yield harness


def replanner(web: WebHarness) -> ReminderReplanner:
    assert web.node.replanner is not None
    return web.node.replanner


async def visits(web: WebHarness, *starts: dt.datetime) -> Company:
    """A salon with one stored and planned visit per start (records 501, 502, ...)."""
    company = (await web.storage.companies.create(7070, timezone=ZONE.key)).company
    records = [
        record(start, record_id=501 + i, company_id=company.id) for i, start in enumerate(starts)
    ]
    for rec in records:
        assert await web.storage.records.apply(rec)
    await replanner(web).planner.plan_records(company, records)
    return company


async def change(web: WebHarness, company: Company, body: dict[str, Any]) -> bool:
    """PATCH the salon's settings (admin key); the answer's ``replanning``, once settled."""
    response = await web.client.patch(
        f"/marketplace/company/{company.id}/reminders", json=body, headers=web.admin
    )
    answer = await response.get_json()
    assert response.status_code == 200, answer
    await replanner(web).settled()
    replanning = answer["replanning"]
    assert isinstance(replanning, bool)
    return replanning


async def rows(web: WebHarness, company: Company, record_id: int = 501) -> dict[str, Reminder]:
    return {r.kind: r for r in await web.storage.reminders.for_visit(company.id, record_id)}


def local_due(row: Reminder) -> dt.datetime:
    assert row.due_at is not None
    return row.due_at.astimezone(ZONE)


async def test_a_new_day_before_hour_moves_the_visits_already_planned(web: WebHarness) -> None:
    company = await visits(web, local(9, 15), local(10, 12))
    assert local_due((await rows(web, company))["day_before"]) == dt.datetime(
        2026, 3, 8, 18, 0, tzinfo=ZONE
    )
    assert await change(web, company, {"day_before_at": "19:00"}) is True
    first, second = await rows(web, company), await rows(web, company, 502)
    assert first["day_before"].status is ReminderStatus.PLANNED
    assert local_due(first["day_before"]) == dt.datetime(2026, 3, 8, 19, 0, tzinfo=ZONE)
    assert local_due(second["day_before"]) == dt.datetime(2026, 3, 9, 19, 0, tzinfo=ZONE)
    assert first["two_hours"].due_at == local(9, 13)  # unchanged
    tree = (await (await web.client.get("/health/tree", headers=web.admin)).get_json())["tree"]
    assert "reminders.replan" in [child["id"] for child in tree["children"]]


async def test_a_sent_reminder_is_not_planned_again_and_a_kind_switched_off_is_skipped(
    web: WebHarness,
) -> None:
    company = await visits(web, local(9, 15))
    sent = (await rows(web, company))["day_before"]
    assert sent.due_at is not None
    claimed = await web.storage.reminders.claim_due(sent.due_at, "elsewhere", 60.0, limit=1)
    assert [r.id for r in claimed] == [sent.id]
    assert await web.storage.reminders.mark_sent(company.id, sent.id, "elsewhere")

    assert await change(web, company, {"day_before_at": "19:00"}) is True
    after = await rows(web, company)
    assert (after["day_before"].status, after["day_before"].due_at) == (
        ReminderStatus.SENT,
        sent.due_at,
    )
    assert len(await web.storage.reminders.for_visit(company.id, 501)) == 3

    assert await change(web, company, {"two_hours_enabled": False}) is True
    off = (await rows(web, company))["two_hours"]
    assert (off.status, off.reason) == (ReminderStatus.SKIPPED, "disabled")
    assert (await rows(web, company))["review"].status is ReminderStatus.PLANNED


async def test_a_change_of_texts_only_replans_nothing(web: WebHarness) -> None:
    company = await visits(web, local(9, 15))
    before = await rows(web, company)
    assert await change(web, company, {"texts": {"review": "Оцените визит от 1 до 5"}}) is False
    assert await change(web, company, {"texts": {"review": "Оцените визит от 1 до 5"}}) is False
    assert await rows(web, company) == before
