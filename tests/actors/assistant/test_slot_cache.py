"""The free-times cache: entries live ``ttl`` seconds, the oldest go first when it is full,
and a salon's entries (or one master's, or one day's) can be dropped at once."""

from __future__ import annotations

import datetime as dt

import pytest

from actors.assistant._slot_cache import SlotCache, SlotKey

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
