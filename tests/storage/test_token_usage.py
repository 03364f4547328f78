"""Contract: each salon's language-model settings and its token counts per local day, on both
backends (issue 15)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
import trio

from storage import NotFound, SalonModelSettings, Storage, TokenUsage, ValidationError

DAY = date(2026, 12, 3)


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


async def test_settings_are_absent_until_put_and_then_replaced(storage: Storage) -> None:
    cid = await _company(storage)
    assert await storage.model_usage.get_settings(cid) is None
    first = SalonModelSettings(True, "gpt-4o-mini", 200_000)
    await storage.model_usage.put_settings(cid, first)
    assert await storage.model_usage.get_settings(cid) == first
    second = SalonModelSettings(False, None, 5_000)
    await storage.model_usage.put_settings(cid, second)
    assert await storage.model_usage.get_settings(cid) == second


async def test_usage_adds_up_per_salon_and_day(storage: Storage) -> None:
    a, b = await _company(storage, 1), await _company(storage, 2)
    assert await storage.model_usage.usage(a, DAY) == TokenUsage(DAY)
    assert await storage.model_usage.add_usage(a, DAY, 100, 20) == TokenUsage(DAY, 100, 20, 1)
    assert await storage.model_usage.add_usage(a, DAY, 50, 5) == TokenUsage(DAY, 150, 25, 2)
    await storage.model_usage.add_usage(b, DAY, 7, 1)
    await storage.model_usage.add_usage(a, date(2026, 12, 4), 1, 1)
    assert await storage.model_usage.usage(a, DAY) == TokenUsage(DAY, 150, 25, 2)
    assert await storage.model_usage.usage(b, DAY) == TokenUsage(DAY, 7, 1, 1)
    settings, used = await storage.model_usage.current(a, DAY)
    assert (settings, used.total) == (None, 175)


async def test_concurrent_additions_are_not_lost(storage: Storage) -> None:
    cid = await _company(storage)
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(storage.model_usage.add_usage, cid, DAY, 10, 1)
    assert await storage.model_usage.usage(cid, DAY) == TokenUsage(DAY, 200, 20, 20)


async def test_current_reads_settings_and_the_days_usage_together(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.model_usage.put_settings(cid, SalonModelSettings(True, None, 1_000))
    await storage.model_usage.add_usage(cid, DAY, 600, 400)
    assert await storage.model_usage.current(cid, DAY) == (
        SalonModelSettings(True, None, 1_000),
        TokenUsage(DAY, 600, 400, 1),
    )
    assert (await storage.model_usage.current(cid, date(2026, 12, 4)))[1] == TokenUsage(
        date(2026, 12, 4)
    )


async def test_unknown_company_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.model_usage.add_usage(999, DAY, 1, 1)
    with pytest.raises(NotFound):
        await storage.model_usage.put_settings(999, SalonModelSettings(True, None, 10))
    with pytest.raises(NotFound):
        await storage.model_usage.current(999, DAY)
    with pytest.raises(NotFound):
        await storage.model_usage.get_settings(999)


@pytest.mark.parametrize(
    "settings",
    [
        SalonModelSettings(True, "", 10),
        SalonModelSettings(True, "x" * 101, 10),
        SalonModelSettings(True, "a\ud800", 10),
        SalonModelSettings(True, None, 0),
        SalonModelSettings(True, None, 1_000_000_001),
        SalonModelSettings("yes", None, 10),  # type: ignore[arg-type]
    ],
)
async def test_bad_settings_are_refused(storage: Storage, settings: SalonModelSettings) -> None:
    cid = await _company(storage)
    with pytest.raises(ValidationError):
        await storage.model_usage.put_settings(cid, settings)
    assert await storage.model_usage.get_settings(cid) is None


@pytest.mark.parametrize(
    ("day", "prompt", "completion"),
    [
        (datetime(2026, 12, 3, 10), 1, 1),
        ("2026-12-03", 1, 1),
        (DAY, -1, 0),
        (DAY, 0, 2**31),
        (DAY, 1.5, 0),
        (DAY, True, 0),
    ],
)
async def test_bad_usage_is_refused(
    storage: Storage, day: object, prompt: object, completion: object
) -> None:
    cid = await _company(storage)
    with pytest.raises(ValidationError):
        await storage.model_usage.add_usage(cid, day, prompt, completion)  # type: ignore[arg-type]
    assert await storage.model_usage.usage(cid, DAY) == TokenUsage(DAY)


async def test_history_lists_the_days_that_spent_newest_first(storage: Storage) -> None:
    a, b = await _company(storage, 1), await _company(storage, 2)
    for offset, tokens in ((0, 10), (2, 20), (6, 30), (7, 40)):
        await storage.model_usage.add_usage(a, DAY - timedelta(days=offset), tokens, 1)
    await storage.model_usage.add_usage(b, DAY, 99, 9)
    week = await storage.model_usage.history(a, DAY - timedelta(days=6), DAY)
    assert [(u.day, u.prompt_tokens) for u in week] == [
        (DAY, 10),
        (DAY - timedelta(days=2), 20),
        (DAY - timedelta(days=6), 30),
    ]
    assert (
        await storage.model_usage.history(b, DAY - timedelta(days=1), DAY - timedelta(days=1)) == []
    )
    assert await storage.model_usage.history(a, DAY, DAY) == [TokenUsage(DAY, 10, 1, 1)]
    with pytest.raises(NotFound):
        await storage.model_usage.history(999, DAY, DAY)


@pytest.mark.parametrize(
    ("first", "last"),
    [(DAY, DAY - timedelta(days=1)), (DAY - timedelta(days=366), DAY), ("2026-12-01", DAY)],
)
async def test_history_refuses_a_bad_span(storage: Storage, first: object, last: object) -> None:
    cid = await _company(storage)
    with pytest.raises(ValidationError):
        await storage.model_usage.history(cid, first, last)  # type: ignore[arg-type]


async def test_a_partial_update_sets_only_its_fields_atomically(storage: Storage) -> None:
    cid = await _company(storage)
    defaults = SalonModelSettings(False, None, 200_000)
    store = storage.model_usage
    first = replace(defaults, enabled=True)  # never chose: the defaults with the change
    assert await store.update_settings(cid, first, frozenset({"enabled"})) == (first, True)
    assert await store.update_settings(cid, first, frozenset({"enabled"})) == (first, False)
    async with trio.open_nursery() as nursery:  # different fields at once: none is lost
        for n in range(10):
            fields = frozenset({"model"}) if n % 2 else frozenset({"daily_token_cap"})
            change = replace(defaults, model="m-1", daily_token_cap=5_000)
            nursery.start_soon(store.update_settings, cid, change, fields)
    assert await store.get_settings(cid) == SalonModelSettings(True, "m-1", 5_000)
    assert await store.update_settings(cid, defaults, frozenset({"model"})) == (
        SalonModelSettings(True, None, 5_000),
        True,
    )


async def test_a_partial_update_refuses_bad_fields_and_unknown_salons(storage: Storage) -> None:
    cid = await _company(storage)
    settings = SalonModelSettings(True, None, 1_000)
    for fields in (frozenset(), frozenset({"name"}), {"enabled"}):
        with pytest.raises(ValidationError):
            await storage.model_usage.update_settings(cid, settings, fields)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await storage.model_usage.update_settings(cid + 999, settings, frozenset({"enabled"}))
    assert await storage.model_usage.get_settings(cid) is None
