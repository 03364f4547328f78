"""Messages the salon sent first — a reminder before a visit, a review request after it — as the
conversation remembers them, so the client's reply is read in their light.

The reminder scheduler hands the message to the company's outbound queue, then tells the
assistant (``Assistant.note_sent_prompt``): the conversation's state keeps the :class:`Prompt`
(stored with the state, so it survives a restart). While a reminder's visit is still ahead, a
plain yes ("да", "буду", "👍") confirms THAT visit (``PUT visits`` with attendance 2), "не
смогу" / "отмените" cancels it and "перенесите на …" moves it (each with the usual
confirmation); for a few days after a review request, a 1–5 rating is stored as the visit's
review. Anything else is an ordinary message.

``may_prompt`` is the rule the scheduler applies before sending: never to a client who opted
out, nor into a chat a person has taken over. Pure (no trio, no storage backend).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # understanding imports this module and must load no storage package
    from storage import Conversation

__all__ = [
    "REVIEW_WINDOW",
    "Prompt",
    "PromptKind",
    "Rating",
    "may_prompt",
    "rating_json",
]

#: How long after a review request a bare rating ("5") is read as the visit's rating.
REVIEW_WINDOW = dt.timedelta(days=3)
#: ``storage.ConversationMode``'s values (a StrEnum), compared without importing storage.
_OPTED_OUT, _HANDOFF = "opted_out", "handoff"
#: Ratings up to this one notify the salon (audit, metric, the conversations API).
LOW_RATING_MAX = 3


class PromptKind(enum.StrEnum):
    """What the salon asked; ``review_comment`` is a review request already rated, whose next
    message (if it is no request) is the rating's comment."""

    DAY_BEFORE = "day_before"
    TWO_HOURS = "two_hours"
    REVIEW = "review"
    REVIEW_COMMENT = "review_comment"

    @property
    def is_reminder(self) -> bool:
        return self in (PromptKind.DAY_BEFORE, PromptKind.TWO_HOURS)


@dataclass(frozen=True)
class Prompt:
    """A reminder or review request sent to the client: which visit (YClients' record and visit
    ids; ``visit_id`` ``None`` when unknown), when it starts (aware), when we sent it, and what
    the texts may say of it (services, master)."""

    kind: PromptKind
    record_id: int
    visit_id: int | None
    start: dt.datetime
    sent_at: dt.datetime
    service_titles: tuple[str, ...] = ()
    master_name: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.sent_at.tzinfo is None:
            raise ValueError("a prompt's start and sent_at must be timezone-aware")

    def active(self, now: dt.datetime) -> bool:
        """Whether a reply at ``now`` still answers it: a reminder until its visit starts, a
        review request for :data:`REVIEW_WINDOW` after it was sent."""
        if self.kind.is_reminder:
            return now < self.start
        return now < self.sent_at + REVIEW_WINDOW


@dataclass(frozen=True)
class Rating:
    """The client's last rating of a visit, as the salon sees it in the conversations API."""

    record_id: int
    rating: int
    comment: str
    at: dt.datetime

    @property
    def low(self) -> bool:
        return self.rating <= LOW_RATING_MAX


def may_prompt(row: Conversation | None, now: dt.datetime) -> bool:
    """Whether a reminder or review request may go to this client: not when they opted out,
    nor while a person answers them (a handoff with no end, or one not yet over)."""
    if row is None:
        return True
    if row.mode == _OPTED_OUT:
        return False
    if row.mode == _HANDOFF:
        return row.mode_until is not None and row.mode_until <= now
    state = row.state if isinstance(row.state, dict) else {}
    return state.get("opted_out") is not True


def rating_json(state: object) -> dict[str, object] | None:
    """The last rating kept in a stored conversation state (``ConversationState.to_json``), as
    the conversations API shows it: ``{record_id, rating, comment, low, at}``; ``None`` when
    there is none or the state is not one we wrote."""
    if not isinstance(state, dict):
        return None
    raw = state.get("rating")
    if not isinstance(raw, dict):
        return None
    rating = raw.get("rating")
    record_id = raw.get("record_id")
    if isinstance(rating, bool) or not isinstance(rating, int) or not isinstance(record_id, int):
        return None
    comment = raw.get("comment")
    at = raw.get("at")
    return {
        "record_id": record_id,
        "rating": rating,
        "comment": comment if isinstance(comment, str) and comment else None,
        "low": rating <= LOW_RATING_MAX,
        "at": at if isinstance(at, str) else None,
    }
