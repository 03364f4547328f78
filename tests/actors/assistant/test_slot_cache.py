"""The free-times cache: entries live ``ttl`` seconds, the oldest go first when it is full,
a salon's entries (or one master's, or one day's) can be dropped at once — a booking keeps
the days lists — and an answer fetched across such a drop is not kept."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.assistant._slot_cache import DaysKey, SlotCache, SlotKey

DAY = dt.date(2026, 3, 14)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = SlotCache(ttl=60.0, clock=clock)
    key = SlotKey.of(1, 10, DAY, (7, 5, 7))
    assert key == SlotKey(1, 10, DAY, (5, 7))  # the same question, the same key
    assert cache.get(key) is None
    cache.put(key, ("15:00",))
    clock.now = 59.9
    assert cache.get(key) == ("15:00",)
    clock.now = 60.0
    assert cache.get(key) is None and len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 2)


def test_the_oldest_entries_go_when_full() -> None:
    cache = SlotCache(ttl=60.0, max_entries=2, clock=Clock())
    keys = [SlotKey.of(1, staff, DAY, (5,)) for staff in (10, 11, 12)]
    for key in keys:
        cache.put(key, ())
    assert cache.get(keys[0]) is None
    assert cache.get(keys[1]) == () and cache.get(keys[2]) == ()


def test_invalidation_by_salon_master_and_day() -> None:
    cache = SlotCache(ttl=60.0, clock=Clock())
    entries = [
        SlotKey.of(1, 10, DAY, (5,)),
        SlotKey.of(1, 10, DAY + dt.timedelta(days=1), (5,)),
        SlotKey.of(1, 11, DAY, (5,)),
        SlotKey.of(2, 10, DAY, (5,)),
    ]
    for key in entries:
        cache.put(key, ())
    assert cache.invalidate(1, staff_id=10, day=DAY) == 1
    assert cache.invalidate(1, staff_id=10) == 1
    assert cache.invalidate(1) == 1
    assert cache.invalidate(1) == 0
    assert cache.get(entries[3]) == ()  # another salon's entries stay


def test_a_zero_ttl_keeps_nothing_and_bad_limits_are_refused() -> None:
    cache = SlotCache(ttl=0.0, clock=Clock())
    cache.put(SlotKey.of(1, 10, DAY, (5,)), ())
    assert len(cache) == 0
    with pytest.raises(ValueError):
        SlotCache(ttl=-1.0)
    with pytest.raises(ValueError):
        SlotCache(max_entries=0)


def test_a_booking_drops_the_times_and_keeps_the_days_lists() -> None:
    cache = SlotCache(ttl=60.0, clock=Clock())
    times = SlotKey.of(1, 10, DAY, (5,))
    days = DaysKey.of(1, 10, (5,), DAY - dt.timedelta(days=2), DAY + dt.timedelta(days=12))
    elsewhere = DaysKey.of(1, 10, (5,), DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=9))
    for key in (times, days, elsewhere):
        cache.put(key, (DAY,))
    assert cache.invalidate(1, staff_id=10, day=DAY, times_only=True) == 1
    assert cache.get(times) is None and cache.get(days) == (DAY,)
    # time freed (a move, a cancel, a webhook): the lists covering that day go too
    assert cache.invalidate(1, staff_id=10, day=DAY) == 1
    assert cache.get(days) is None and cache.get(elsewhere) == (DAY,)


def test_an_answer_fetched_across_an_invalidation_is_not_kept() -> None:
    cache = SlotCache(ttl=60.0, clock=Clock())
    key, other = SlotKey.of(1, 10, DAY, (5,)), SlotKey.of(1, 11, DAY, (5,))
    stale, fresh = cache.begin(key), cache.begin(other)
    cache.invalidate(1, staff_id=10)
    assert stale.stale and not fresh.stale
    cache.put(key, ("15:00",), ticket=stale)
    cache.put(other, ("16:00",), ticket=fresh)
    assert cache.get(key) is None and cache.get(other) == ("16:00",)
    failed = cache.begin(key)
    cache.end(failed)  # a fetch that got no answer
    cache.invalidate(1)
    assert not failed.stale  # no longer in flight: nothing to mark
