"""How a node's reminders run: its wall clock, how long a claim holds, how much one pass
takes, and how far ahead the periodic sync reads visits. Passed to
:func:`actors.build_companies` as ``reminders=``; ``None`` there means the node plans and sends
no reminders (tests and tools that need only the company actors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


def utc_now() -> dt.datetime:
    """The real wall clock, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ReminderOptions:
    """The reminder scheduler's and planner's knobs (defaults suit production).

    - ``wall_clock``: "now" for planning and claiming (tests tie it to trio's mock clock);
    - ``claim_lease``: seconds a claimed row stays the claimer's; a crashed claimer's rows are
      claimed again after it, with the same message id;
    - ``batch``: rows claimed per pass;
    - ``max_sleep``: the longest the scheduler sleeps without looking at the schedule (rows
      planned by another process wake it through pub/sub; this bounds a lost wake-up);
    - ``visits_ahead_days``: how many days of upcoming visits the periodic sync reads.
    """

    wall_clock: Callable[[], dt.datetime] = field(default=utc_now)
    claim_lease: float = 120.0
    batch: int = 100
    max_sleep: float = 300.0
    visits_ahead_days: int = 8
