"""The assistant that answers a salon's clients on WhatsApp (issue 10), built up in pure parts.

So far: reading WHEN a client wants a visit from Russian free text (``parse_when``), with the
date and time rules documented in ``_when``, ``_days`` and ``_clock``. Everything here is pure
(standard library and pymorphy3, no trio, no storage) and safe to call from any thread.
"""

from ._days import DayKind as DayKind
from ._understand import RuleUnderstander as RuleUnderstander
from ._understand import understand_rules as understand_rules
from ._when import TimeKind as TimeKind
from ._when import When as When
from ._when import parse_when as parse_when

__all__ = ["DayKind", "RuleUnderstander", "TimeKind", "When", "parse_when", "understand_rules"]
