"""The per-salon model policy (issue 15): which model a salon's assistant may use now, the
salon's opt-in, and its daily token cap, which resets at the salon's own midnight — under a
fixed, hand-moved clock, on both storage backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
import trio

from actors.assistant._model_policy import (
    DEFAULT_DAILY_TOKEN_CAP,
    ZONE_TTL_SECONDS,
    SalonModelPolicy,
    TokenMetrics,
    model_choice,
)
from metrics import MetricsRegistry
from storage import SalonModelSettings, Storage, StorageError, TokenUsage, open_storage
from tests.support.clock import FakeWallClock
from tests.support.databases import open_real_storage

NODE_MODEL = "gpt-4o-mini"
# 23:30 in Yekaterinburg (UTC+5) on 3 December; 21:30 in Moscow.
LATE = datetime(2026, 12, 3, 18, 30, tzinfo=UTC)


@pytest.fixture(params=["memory", "real"])
async def storage(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Storage]:
    if request.param == "memory":
        async with open_storage(monotonic_clock=trio.current_time) as st:
            yield st
    else:
        async with open_real_storage(database_url, redis_prefix=redis_prefix) as st:
            yield st


async def _salon(storage: Storage, salon: int, zone: str = "Asia/Yekaterinburg") -> int:
    return (await storage.companies.create(salon, timezone=zone)).company.id


def test_choice_rules() -> None:
    day = date(2026, 12, 3)
    on = SalonModelSettings(True, None, 1_000)
    assert model_choice(None, TokenUsage(day), NODE_MODEL) is None  # never opted in
    assert model_choice(on, TokenUsage(day), None) is None  # nobody names a model
    assert model_choice(SalonModelSettings(False, "x", 1_000), TokenUsage(day), NODE_MODEL) is None
    assert model_choice(on, TokenUsage(day, 600, 399), NODE_MODEL) == NODE_MODEL
    assert model_choice(on, TokenUsage(day, 600, 400), NODE_MODEL) is None  # cap reached
    own = SalonModelSettings(True, "deepseek-chat", 1_000)
    assert model_choice(own, TokenUsage(day), NODE_MODEL) == "deepseek-chat"
    assert DEFAULT_DAILY_TOKEN_CAP > 0


async def test_a_salon_that_never_chose_uses_the_rules(storage: Storage) -> None:
    cid = await _salon(storage, 1)
    policy = SalonModelPolicy(storage, NODE_MODEL, now=lambda: LATE)
    assert await policy.choice(cid) is None
    await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 1_000))
    assert await policy.choice(cid) == NODE_MODEL
    await storage.model_usage.put_settings(cid, SalonModelSettings(False, None, 1_000))
    assert await policy.choice(cid) is None


async def test_without_a_node_default_only_salons_naming_a_model_use_one(
    storage: Storage,
) -> None:
    named, unnamed = await _salon(storage, 1), await _salon(storage, 2)
    await storage.model_usage.put_settings(named, SalonModelSettings(True, "gpt-4o", 1_000))
    await storage.model_usage.put_settings(unnamed, SalonModelSettings(True, None, 1_000))
    no_default = SalonModelPolicy(storage, None, now=lambda: LATE)
    assert await no_default.choice(named) == "gpt-4o"
    assert await no_default.choice(unnamed) is None
    with_default = SalonModelPolicy(storage, NODE_MODEL, now=lambda: LATE)
    assert await with_default.choice(named) == "gpt-4o"
    assert await with_default.choice(unnamed) == NODE_MODEL


async def test_unknown_salon_uses_the_rules(storage: Storage) -> None:
    assert await SalonModelPolicy(storage, NODE_MODEL, now=lambda: LATE).choice(999) is None


async def test_cap_holds_until_the_salons_midnight_not_utcs(storage: Storage) -> None:
    clock = FakeWallClock(LATE)
    registry = MetricsRegistry()
    policy = SalonModelPolicy(storage, NODE_MODEL, metrics=TokenMetrics(registry), now=clock)
    east = await _salon(storage, 1, "Asia/Yekaterinburg")
    moscow = await _salon(storage, 2, "Europe/Moscow")
    for cid in (east, moscow):
        await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 1_000))

    await policy.record_usage(east, 700, 250)
    assert await policy.choice(east) == NODE_MODEL  # 950 < 1,000
    await policy.record_usage(east, 40, 10)
    assert await policy.choice(east) is None  # 1,000: capped, rules
    assert await policy.choice(moscow) == NODE_MODEL  # another salon's count is its own
    assert await storage.model_usage.usage(east, date(2026, 12, 3)) == TokenUsage(
        date(2026, 12, 3), 740, 260, 2
    )

    clock.now = datetime(2026, 12, 3, 18, 59, 59, tzinfo=UTC)  # 23:59:59 in Yekaterinburg
    assert await policy.choice(east) is None
    clock.now += timedelta(seconds=1)  # 00:00 on 4 December there; 22:00 in Moscow
    assert await policy.choice(east) == NODE_MODEL

    await policy.record_usage(moscow, 1_000, 0)
    assert await policy.choice(moscow) is None
    clock.now = datetime(2026, 12, 3, 20, 59, tzinfo=UTC)  # 23:59 in Moscow
    assert await policy.choice(moscow) is None
    clock.now = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)  # Moscow's midnight
    assert await policy.choice(moscow) == NODE_MODEL

    await policy.record_usage(east, 5, 3)  # counted on the salon's new day
    assert await storage.model_usage.usage(east, date(2026, 12, 4)) == TokenUsage(
        date(2026, 12, 4), 5, 3, 1
    )
    lines = registry.render().splitlines()
    assert 'aiadmin_llm_tokens_total{kind="prompt"} 1745.0' in lines
    assert 'aiadmin_llm_tokens_total{kind="completion"} 263.0' in lines
    assert not any("company" in line for line in lines if "aiadmin_llm_tokens" in line)


async def test_a_raised_cap_lets_the_salon_use_the_model_again_today(storage: Storage) -> None:
    cid = await _salon(storage, 1)
    policy = SalonModelPolicy(storage, NODE_MODEL, now=lambda: LATE)
    await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 100))
    await policy.record_usage(cid, 90, 20)
    assert await policy.choice(cid) is None
    await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 1_000))
    assert await policy.choice(cid) == NODE_MODEL


async def test_usage_of_an_unknown_salon_is_logged_not_raised(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    registry = MetricsRegistry()
    policy = SalonModelPolicy(storage, NODE_MODEL, metrics=TokenMetrics(registry), now=lambda: LATE)
    await policy.record_usage(999, 10, 2)
    assert "token usage not stored" in caplog.text
    assert 'aiadmin_llm_tokens_total{kind="prompt"} 10.0' in registry.render().splitlines()


async def test_a_changed_time_zone_is_followed_within_the_cache_time(storage: Storage) -> None:
    clock = FakeWallClock(datetime(2026, 12, 3, 19, 30, tzinfo=UTC))  # 00:30 on the 4th there
    cid = await _salon(storage, 1, "Asia/Yekaterinburg")
    policy = SalonModelPolicy(storage, NODE_MODEL, now=clock)
    await policy.record_usage(cid, 1, 1)
    assert (await storage.model_usage.usage(cid, date(2026, 12, 4))).calls == 1
    await storage.companies.update(cid, timezone="Europe/Moscow")  # 22:30 on the 3rd
    clock.advance(ZONE_TTL_SECONDS)
    await policy.record_usage(cid, 1, 1)
    assert (await storage.model_usage.usage(cid, date(2026, 12, 3))).calls == 1


async def test_a_reached_cap_and_an_unreadable_policy_are_counted_as_fallbacks(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.assistant._llm_understander import LlmMetrics

    registry = MetricsRegistry()
    llm = LlmMetrics(registry)
    policy = SalonModelPolicy(storage, NODE_MODEL, now=lambda: LATE, fallbacks=llm.fallbacks)
    capped, off = await _salon(storage, 1), await _salon(storage, 2)
    await storage.model_usage.put_settings(capped, SalonModelSettings(True, None, 100))
    await storage.model_usage.put_settings(off, SalonModelSettings(False, None, 100))
    await policy.record_usage(capped, 80, 20)

    assert await policy.choice(capped) is None
    assert await policy.choice(off) is None  # the salon's own choice: not a fallback
    assert registry.value("aiadmin_llm_fallbacks_total", {"reason": "cap_reached"}) == 1

    async def unreadable(*_: object) -> object:
        raise StorageError("connection lost")

    monkeypatch.setattr(storage.model_usage, "current", unreadable)
    assert await policy.choice(capped) is None
    assert registry.value("aiadmin_llm_fallbacks_total", {"reason": "policy_error"}) == 1
