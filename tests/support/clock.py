"""A wall clock tests move by hand, for storage leases, retries and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeWallClock:
    """Callable returning an aware UTC ``datetime``; ``advance`` moves it forward.

    Pass it as ``open_storage(wall_clock=clock)``: both the in-memory and the PostgreSQL
    repositories then take "now" from it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
