"""The in-memory reminders' due index (``storage._due_index``): one live entry per row, stale
entries skipped and compacted, ``due`` visiting only what is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage._due_index import DueIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_moves_and_removals_leave_one_live_entry_per_row() -> None:
    index = DueIndex()
    index.set(1, at(10))
    index.set(2, at(5))
    index.set(1, at(1))  # moved earlier
    index.set(1, at(10))  # and back: the first entry for (10, 1) is live again
    index.set(3, at(3))
    index.set(3, None)  # sent: never due by itself
    assert len(index) == 2
    assert index.first() == at(5)
    assert sorted(index.due(at(10))) == [1, 2]  # row 1 once, though pushed twice at 10
    assert index.due(at(4)) == []
    index.set(2, None)
    assert index.first() == at(10)


def test_stale_entries_are_compacted() -> None:
    index = DueIndex()
    for step in range(1000):  # one row rescheduled over and over
        index.set(7, at(step))
    assert len(index) == 1
    assert len(index._heap) <= 2 * len(index) + 64 + 1
    assert index.first() == at(999) and index.due(at(999)) == [7]
