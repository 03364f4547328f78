"""Reminders before visits and review requests after them, in the salon's time zone.

Pure parts (standard library only; no trio, storage backend or HTTP, safe from any thread):

- ``_timing``: the salon's clock — local wall time ⇄ UTC (DST gaps and repeats resolved
  deterministically), "the day before at HH:MM", quiet hours;
- ``_settings``: :class:`ReminderSettings`, one salon's switches, times, review link and
  texts, validated, with its JSON form (:class:`InvalidReminderSettings` names the field);
- ``_plan``: :func:`plan_visit`, which messages a visit gets and when (or why not);
- ``_details``: the visit as a row's ``details`` JSON and back (what the sender words);
- ``_texts``: the messages' words from the salon's templates («завтра, 4 декабря, в 15:00»).

Running parts (the scheduler in the node's supervision tree and the durable schedule it
claims from) load on first use through ``_RUNNING_NAMES``, so importing the pure parts above
loads none of them.
"""

import importlib
import typing

from ._details import DetailsUnreadable as DetailsUnreadable
from ._details import visit_details as visit_details
from ._details import visit_from_details as visit_from_details
from ._options import ReminderOptions as ReminderOptions
from ._plan import MessageKind as MessageKind
from ._plan import PlannedMessage as PlannedMessage
from ._plan import SkippedMessage as SkippedMessage
from ._plan import SkipReason as SkipReason
from ._plan import VisitFacts as VisitFacts
from ._plan import VisitStatus as VisitStatus
from ._plan import plan_visit as plan_visit
from ._settings import InvalidReminderSettings as InvalidReminderSettings
from ._settings import ReminderSettings as ReminderSettings
from ._settings import ReminderTexts as ReminderTexts
from ._texts import RatingReply as RatingReply
from ._texts import render_message as render_message
from ._texts import render_rating_reply as render_rating_reply
from ._timing import QuietHours as QuietHours

# Running parts (trio, storage) by name → module, imported on first use.
_RUNNING_NAMES: dict[str, str] = {
    "ReminderPlanner": "._planner",
    "ReminderReplanner": "._replan",
    "affects_planning": "._replan",
    "ReminderScheduler": "._scheduler",
    "SchedulerStatus": "._scheduler",
}

if typing.TYPE_CHECKING:
    from ._planner import ReminderPlanner as ReminderPlanner
    from ._replan import ReminderReplanner as ReminderReplanner
    from ._replan import affects_planning as affects_planning
    from ._scheduler import ReminderScheduler as ReminderScheduler
    from ._scheduler import SchedulerStatus as SchedulerStatus

if not typing.TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a running part on first use (PEP 562) and keep it."""
        if name not in _RUNNING_NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_RUNNING_NAMES[name], __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_RUNNING_NAMES})


__all__ = [
    "DetailsUnreadable",
    "InvalidReminderSettings",
    "MessageKind",
    "PlannedMessage",
    "QuietHours",
    "RatingReply",
    "ReminderOptions",
    "ReminderPlanner",
    "ReminderReplanner",
    "ReminderScheduler",
    "ReminderSettings",
    "ReminderTexts",
    "SchedulerStatus",
    "SkipReason",
    "SkippedMessage",
    "VisitFacts",
    "VisitStatus",
    "affects_planning",
    "plan_visit",
    "render_message",
    "render_rating_reply",
    "visit_details",
    "visit_from_details",
]
