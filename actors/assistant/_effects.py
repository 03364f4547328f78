"""The assistant's effects (what ``decide`` asks the conversation actor to do) and the events
the actor feeds back (a client's turn, and each effect's outcome).

``decide(state, event) → (state, effects)`` is pure. The actor runs the effects in order:
queries to YClients (``LookupClient``, ``FindSlots``, ``FindVisits``) and actions (``Book``,
``SettleBooking``, ``CancelVisit``, ``MoveVisit``, ``ConfirmVisit``) each answer with exactly one
outcome event, which goes back into ``decide`` before the next effect; ``Reply``, ``SetMode``,
``Audit``, ``ArmSettle`` and ``SaveRating`` are carried out with no answer. A turn ends when no
query or action is left.

Times are aware datetimes in the salon's zone (``Slot.start``); ids are YClients' ids.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from storage import ConversationMode

from ._commands import Command

__all__ = [
    "ActionFailed",
    "ArmSettle",
    "Audit",
    "Book",
    "BookOutcome",
    "Booked",
    "BookingPending",
    "CancelVisit",
    "ClientFound",
    "ClientTurn",
    "ConfirmVisit",
    "Effect",
    "Event",
    "FailureKind",
    "FindSlots",
    "FindVisits",
    "LookupClient",
    "MoveVisit",
    "NonTextTurn",
    "Reply",
    "SaveRating",
    "SetMode",
    "SettleBooking",
    "SettleDue",
    "Slot",
    "SlotsFound",
    "Visit",
    "VisitCancelled",
    "VisitConfirmed",
    "VisitMoved",
    "VisitsFound",
]


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Slot:
    """A free start time with a master, exactly as YClients gave it (never made up)."""

    staff_id: int
    start: dt.datetime  # aware, salon zone


@dataclass(frozen=True)
class Visit:
    """One of the client's upcoming visits (a YClients record)."""

    record_id: int
    start: dt.datetime  # aware, salon zone
    staff_id: int | None
    service_ids: tuple[int, ...]
    service_titles: tuple[str, ...] = ()
    minutes: int | None = None


class FailureKind(enum.StrEnum):
    """Why an action did not happen (for the reply and the audit)."""

    TAKEN = "taken"  # the time is no longer free (YClients 433 / check failed)
    REFUSED = "refused"  # YClients refused for another reason (4xx)
    UNAVAILABLE = "unavailable"  # YClients did not answer or failed (5xx, 429, timeout)
    NOT_FOUND = "not_found"  # the record is gone


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class LookupClient:
    """Find the client in YClients by their phone (answer: :class:`ClientFound`)."""


@dataclass(frozen=True)
class FindSlots:
    """Free start times for ``service_ids`` (their real total duration) on ``dates``, with
    ``staff_ids`` (empty: every master who does the services), inside ``window`` (local
    ``(from, to)`` start times; ``None``: all day). ``wanted`` is the exact time asked, if any.

    The answer (:class:`SlotsFound`) also carries, when nothing fits on ``dates`` (or the
    wanted time is taken), the nearest free times on the following days (up to
    ``search_days`` ahead), so one reply can offer them.
    """

    service_ids: tuple[int, ...]
    dates: tuple[dt.date, ...]
    staff_ids: tuple[int, ...] = ()
    window: tuple[dt.time, dt.time] | None = None
    wanted: dt.time | None = None
    search_days: int = 14


@dataclass(frozen=True)
class FindVisits:
    """The client's upcoming visits, by their phone (answer: :class:`VisitsFound`)."""


@dataclass(frozen=True)
class Book:
    """Create the record: ``book_check`` then ``book_record`` carrying ``api_id`` (ours,
    decided before the call so a retry or a restart can look it up). Answer: :class:`Booked`,
    :class:`BookingPending` (outcome unknown, settle later) or :class:`ActionFailed`.

    ``any_master``: the client named no master, so when the time is taken the alternatives
    come from every master who does the services (the same time with another master first),
    not only from ``staff_id``."""

    api_id: str
    service_ids: tuple[int, ...]
    staff_id: int
    start: dt.datetime
    client_name: str
    any_master: bool = False


@dataclass(frozen=True)
class SettleBooking:
    """Look a booking up by ``api_id`` after an unknown outcome (answer: :class:`Booked`,
    :class:`ActionFailed` with ``NOT_FOUND`` when it was not made, or
    :class:`BookingPending` again when YClients still does not answer)."""

    api_id: str
    #: When the booking was for (aware, salon zone): the lookup searches that day's records
    #: only (``None``: the next 60 days, page by page — slower and more calls).
    start: dt.datetime | None = None


@dataclass(frozen=True)
class CancelVisit:
    """``DELETE record`` (never a no-show mark). Answer: :class:`VisitCancelled` or
    :class:`ActionFailed`."""

    record_id: int


@dataclass(frozen=True)
class MoveVisit:
    """Check the new time is free, then ``PUT book_record``. Answer: :class:`VisitMoved` or
    :class:`ActionFailed` (``TAKEN``: nothing moved)."""

    record_id: int
    staff_id: int
    start: dt.datetime
    service_ids: tuple[int, ...]


@dataclass(frozen=True)
class ConfirmVisit:
    """The client confirmed a reminded visit: ``PUT visits/{visit_id}/{record_id}`` with
    attendance 2 (never a cancel). Answer: :class:`VisitConfirmed` or :class:`ActionFailed`
    (action ``"confirm"``)."""

    record_id: int
    visit_id: int


@dataclass(frozen=True)
class SaveRating:
    """Store the client's rating (and comment) of a visit as its review, replacing an earlier
    one of the same visit; ``notify``: a new low rating (1–3), counted for the salon."""

    record_id: int
    visit_id: int | None
    rating: int
    comment: str = ""
    notify: bool = False


@dataclass(frozen=True)
class Reply:
    """Send ``text`` to the client through the company's outbound queue."""

    text: str


@dataclass(frozen=True)
class SetMode:
    """Switch who answers this client (``handoff`` also notifies the salon: audit, metric)."""

    mode: ConversationMode
    until: dt.datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Audit:
    """An audit-log entry for the salon (``assistant.booked``, ``assistant.cancelled`` ...)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmSettle:
    """Feed :class:`SettleDue` back after ``delay`` seconds (to settle a pending booking)."""

    delay: float


Effect = (
    LookupClient
    | FindSlots
    | FindVisits
    | Book
    | SettleBooking
    | CancelVisit
    | MoveVisit
    | ConfirmVisit
    | Reply
    | SetMode
    | Audit
    | ArmSettle
    | SaveRating
)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ClientTurn:
    """The client's message(s) of one turn (a burst joined), understood."""

    text: str
    commands: tuple[Command, ...]
    at: dt.datetime  # aware, salon zone


@dataclass(frozen=True)
class NonTextTurn:
    """An image, voice note or other non-text message."""

    at: dt.datetime
    kind: str = "media"


@dataclass(frozen=True)
class ClientFound:
    """``name`` as YClients has it, or ``None`` for a new client."""

    name: str | None
    client_id: int | None = None


@dataclass(frozen=True)
class SlotsFound:
    """Free times on the asked days (``slots``, in time order) and, when those are empty or
    the wanted time is taken, the nearest free times after them (``nearest``)."""

    request: FindSlots
    slots: tuple[Slot, ...]
    nearest: tuple[Slot, ...] = ()


@dataclass(frozen=True)
class VisitsFound:
    visits: tuple[Visit, ...]


@dataclass(frozen=True)
class Booked:
    """YClients returned the record."""

    api_id: str
    record_id: int
    staff_id: int
    start: dt.datetime


@dataclass(frozen=True)
class BookingPending:
    """The outcome is unknown (YClients did not answer); settle by ``api_id`` later."""

    api_id: str


@dataclass(frozen=True)
class VisitCancelled:
    record_id: int


@dataclass(frozen=True)
class VisitConfirmed:
    """YClients marked the visit confirmed (attendance 2)."""

    record_id: int


@dataclass(frozen=True)
class VisitMoved:
    record_id: int
    staff_id: int
    start: dt.datetime


@dataclass(frozen=True)
class ActionFailed:
    """An action (``Book``, ``SettleBooking``, ``CancelVisit``, ``MoveVisit``) did not
    happen; ``alternatives`` are free times near the one asked when the kind is ``TAKEN``
    (for a ``Book`` with ``any_master``, the same time with another master comes first).

    A query that YClients did not answer (``LookupClient``, ``FindSlots``, ``FindVisits``)
    also answers with this event, kind ``UNAVAILABLE``, action ``"lookup"``, ``"slots"`` or
    ``"visits"``: nothing is known, so nothing may be claimed or offered.
    """

    action: str  # "book" | "settle" | "cancel" | "move" | "confirm" | "lookup" | "slots" | "visits"
    kind: FailureKind
    alternatives: tuple[Slot, ...] = ()


@dataclass(frozen=True)
class SettleDue:
    """The timer armed by :class:`ArmSettle` fired."""


BookOutcome = Booked | BookingPending | ActionFailed

Event = (
    ClientTurn
    | NonTextTurn
    | ClientFound
    | SlotsFound
    | VisitsFound
    | Booked
    | BookingPending
    | VisitCancelled
    | VisitMoved
    | VisitConfirmed
    | ActionFailed
    | SettleDue
)
