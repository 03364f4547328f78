"""The knobs ``decide`` applies, as one small frozen value (built by the conversation actor).

Pure: no settings object is read here; the actor builds a :class:`Policy` from ``config`` and,
per conversation, sets ``conversation_key`` so the ``api_id`` of each booking is unique to the
client and stable across a replay of the same turn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..reminders._settings import ReminderSettings

__all__ = ["Policy"]

_DEFAULT_REMINDERS = ReminderSettings()


@dataclass(frozen=True)
class Policy:
    """What ``decide`` may do and when.

    - ``max_options``: free times offered at once (numbered);
    - ``max_days``: candidate days searched at once ("на следующей неделе" gives seven);
    - ``search_days``: how far past the asked days the nearest free times are looked for;
    - ``handoff_for``: how long a person answers before the assistant speaks again;
    - ``not_understood_limit``: consecutive messages not understood before handing over;
    - ``settle_delays``: seconds before each look-up of a booking whose outcome is unknown;
      when they are used up the booking is handed to a person (never claimed);
    - ``conversation_key``: mixed into each booking's ``api_id`` (e.g. "company:phone");
    - ``reminders``: the salon's reminder and review settings (the answer to a rating: its
      texts, the review link and who gets it).
    """

    max_options: int = 6
    max_days: int = 7
    search_days: int = 14
    handoff_for: dt.timedelta = dt.timedelta(hours=12)
    not_understood_limit: int = 2
    settle_delays: tuple[float, ...] = (20.0, 60.0, 180.0, 600.0)
    conversation_key: str = ""
    reminders: ReminderSettings = _DEFAULT_REMINDERS
