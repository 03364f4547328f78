"""One client's conversation as ``decide`` sees it, and its JSON form for storage.

``ConversationState`` is frozen; ``decide`` returns a new one for every event. The conversation
actor stores ``to_json()`` after every turn (PostgreSQL, ``conversations.state``) and reads it
back with ``from_json`` — so a restart in the middle of a booking continues where it was: the
details known, the options offered exactly as YClients gave them, the pending confirmation
(what "да" will do) and a booking awaiting settlement all survive.

The JSON is plain types only, versioned by a ``"v"`` key. A row from another version, or one
that does not fit the shape, gives a fresh state (``from_json`` never raises): the client is
asked again rather than the actor crashing.

After loading, the actor asks ``settle_due_on_start``: a booking whose outcome was still
unknown when the process stopped must be settled (feed ``SettleDue``) before anything is said.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field, replace
from typing import Any

from ._codec import CodecError, decode, encode
from ._commands import Expecting, Flow, TurnContext
from ._effects import ClientTurn, FindSlots, Slot, Visit
from ._prompts import Prompt, Rating

__all__ = [
    "STATE_VERSION",
    "Awaiting",
    "Booking",
    "ConfirmKind",
    "ConversationState",
    "Pending",
    "VisitHint",
    "Wish",
]

STATE_VERSION = 1


class Awaiting(enum.StrEnum):
    """The query or action whose outcome ``decide`` waits for within the current turn."""

    NOTHING = "nothing"
    CLIENT = "client"  # LookupClient → ClientFound
    SLOTS = "slots"  # FindSlots → SlotsFound
    VISITS = "visits"  # FindVisits → VisitsFound
    BOOK = "book"  # Book → Booked | BookingPending | ActionFailed
    SETTLE = "settle"  # SettleBooking → Booked | BookingPending | ActionFailed
    CANCEL = "cancel"  # CancelVisit → VisitCancelled | ActionFailed
    MOVE = "move"  # MoveVisit → VisitMoved | ActionFailed
    CONFIRM_VISIT = "confirm_visit"  # ConfirmVisit → VisitConfirmed | ActionFailed


class ConfirmKind(enum.StrEnum):
    """What a "да" will do."""

    BOOK = "book"
    CANCEL = "cancel"
    MOVE = "move"


@dataclass(frozen=True)
class Wish:
    """What the client asked for so far: the services, master, days and time of a new visit
    (or of the new time of a visit being moved). ``master_id`` ``None`` is any master;
    ``same_day`` is "в тот же день" (the moved visit's day)."""

    service_ids: tuple[int, ...] = ()
    master_id: int | None = None
    dates: tuple[dt.date, ...] = ()
    time: dt.time | None = None
    window: tuple[dt.time, dt.time] | None = None
    same_day: bool = False


@dataclass(frozen=True)
class VisitHint:
    """Which of the client's visits they mean, by service or day ("отмените маникюр")."""

    service_ids: tuple[int, ...] = ()
    day: dt.date | None = None


@dataclass(frozen=True)
class Pending:
    """The confirmation asked for: exactly what "да" does.

    ``BOOK``: book ``slot`` for ``service_ids`` under ``client_name`` with ``api_id`` (decided
    now, so a replayed "да" books with the same id); ``CANCEL``: delete ``visit``; ``MOVE``:
    move ``visit`` to ``slot``.
    """

    kind: ConfirmKind
    slot: Slot | None = None
    service_ids: tuple[int, ...] = ()
    client_name: str = ""
    api_id: str = ""
    visit: Visit | None = None


@dataclass(frozen=True)
class Booking:
    """A booking sent to YClients (``record_id`` 0 until YClients returned the record)."""

    api_id: str
    slot: Slot
    service_ids: tuple[int, ...]
    client_name: str
    record_id: int = 0
    settle_attempts: int = 0


@dataclass(frozen=True)
class ConversationState:
    """Everything ``decide`` remembers about one client (see the module docstring).

    - ``flow`` / ``wish`` / ``chosen``: what the client wants and the offered time they picked;
    - ``client_name`` / ``name_from_crm`` / ``client_id`` / ``looked_up``: who they are (a CRM
      name is never replaced by what the client types);
    - ``service_choices``: the services offered when the one named fitted several;
    - ``offered`` / ``searched``: the numbered free times last offered, exactly as YClients
      gave them, and the search they answer;
    - ``visits`` (``None``: not looked up in this flow) / ``listed_visits`` / ``chosen_visit``
      / ``hint``: the client's upcoming visits, the numbered ones offered, the one meant;
    - ``expecting`` / ``question``: what the last reply asked for, and its words (asked again
      when a message is not understood);
    - ``pending``: the confirmation asked for; ``booking``: a booking sent and not yet settled;
      ``last_booked``: the last booking YClients returned (a second "да" never books again);
    - ``not_understood``: consecutive messages not understood; ``opted_out``: the client asked
      us to stop writing;
    - ``awaiting`` / ``draft`` / ``deferred``: within a turn, the outcome waited for, the reply
      parts not yet sent (one reply per turn), and the first turn held while the client is
      looked up; ``greeted``: the first reply greeted the client;
    - ``seq``: bookings prepared so far (part of each ``api_id``);
    - ``prompt``: the reminder or review request the salon sent last (``_prompts``), read
      into the client's next replies; ``rating``: the client's last rating of a visit.
    """

    flow: Flow | None = None
    wish: Wish = field(default_factory=Wish)
    chosen: Slot | None = None
    client_name: str | None = None
    name_from_crm: bool = False
    client_id: int | None = None
    looked_up: bool = False
    greeted: bool = False
    service_choices: tuple[int, ...] = ()
    offered: tuple[Slot, ...] = ()
    searched: FindSlots | None = None
    visits: tuple[Visit, ...] | None = None
    listed_visits: tuple[Visit, ...] = ()
    chosen_visit: Visit | None = None
    hint: VisitHint | None = None
    expecting: Expecting = Expecting.NOTHING
    question: str = ""
    pending: Pending | None = None
    booking: Booking | None = None
    last_booked: Booking | None = None
    not_understood: int = 0
    opted_out: bool = False
    awaiting: Awaiting = Awaiting.NOTHING
    draft: tuple[str, ...] = ()
    deferred: ClientTurn | None = None
    seq: int = 0
    prompt: Prompt | None = None
    rating: Rating | None = None

    def context(self) -> TurnContext:
        """What understanding is told about the last reply (what it asked, what it listed),
        and the salon's last reminder or review request when nothing else is under way."""
        quiet = self.flow is None and self.pending is None and self.booking is None
        if self.prompt is not None and quiet and self.expecting is Expecting.NOTHING:
            return TurnContext(prompt=self.prompt.kind)
        if self.expecting is Expecting.VISIT:
            return TurnContext(
                expecting=self.expecting, offered_count=len(self.listed_visits), flow=self.flow
            )
        offered = self.offered if self.expecting is Expecting.OPTION else ()
        return TurnContext(
            expecting=self.expecting,
            offered_count=len(offered),
            offered_times=tuple(slot.start for slot in offered),
            flow=self.flow,
        )

    def noted(self, prompt: Prompt) -> ConversationState:
        """This state after the salon sent ``prompt`` (a reminder or a review request): the
        client's next replies are read in its light, and the conversation is under way (the
        next reply greets no one)."""
        return replace(self, prompt=prompt, greeted=True)

    @property
    def settle_due_on_start(self) -> bool:
        """A booking was sent and its outcome is not known: settle it before anything else."""
        return self.booking is not None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, with the format version under ``"v"``."""
        data: dict[str, Any] = encode(self)
        data.pop("t", None)
        data["v"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, data: object) -> ConversationState:
        """The state stored by :meth:`to_json`; a fresh state when ``data`` is from another
        version or does not fit (never raises)."""
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            return cls()
        body = {k: v for k, v in data.items() if k != "v"}
        try:
            state = decode(cls, body)
        except (CodecError, RecursionError):
            return cls()
        assert isinstance(state, cls)
        return state
