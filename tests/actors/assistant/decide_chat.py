"""A scripted conversation through ``decide`` for the dialogue tests (no trio, no YClients).

``Chat`` plays the conversation actor: it feeds the client's turns (hand-built commands, so
these tests do not depend on understanding) and answers each query or action with the outcome
the test chose — by default a small salon grid of free times, the client's visits, and
bookings that succeed. Every decision is checked on the way: at most one query and only as
the last effect, replies never empty, the state's JSON round trip exact.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from actors.assistant._catalog import AssistantCatalog
from actors.assistant._commands import Command, SetWhen
from actors.assistant._decide import QUERY_EFFECTS, decide
from actors.assistant._effects import (
    Book,
    Booked,
    CancelVisit,
    ClientFound,
    ClientTurn,
    Effect,
    Event,
    FindSlots,
    FindVisits,
    LookupClient,
    MoveVisit,
    Reply,
    SettleBooking,
    Slot,
    SlotsFound,
    Visit,
    VisitCancelled,
    VisitMoved,
    VisitsFound,
)
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from actors.assistant._when import parse_when

from .example_catalog import assistant_catalog

ZONE = ZoneInfo("Europe/Moscow")
NOW = dt.datetime(2025, 3, 12, 10, 5, tzinfo=ZONE)  # a Wednesday morning
TODAY = NOW.date()
CATALOG = assistant_catalog()
IGOR, KATYA, ALINA, OLEG = 6201, 6202, 6203, 6204
MEN, WOMEN, ROOTS, MANICURE, GEL, BROWS = 6101, 6102, 6103, 6104, 6105, 6106


def at(days: int, hour: int, minute: int = 0) -> dt.datetime:
    """Local time ``days`` after today."""
    return dt.datetime.combine(TODAY + dt.timedelta(days=days), dt.time(hour, minute), ZONE)


def day(days: int) -> dt.date:
    return TODAY + dt.timedelta(days=days)


def when(text: str, now: dt.datetime = NOW) -> SetWhen:
    """What understanding makes of a date/time phrase (``parse_when`` is settled code)."""
    return SetWhen(parse_when(text, now, opening=CATALOG.salon.opening))


def check_roundtrip(state: ConversationState) -> None:
    stored = json.loads(json.dumps(state.to_json()))
    assert ConversationState.from_json(stored) == state


def check_decision(effects: tuple[Effect, ...]) -> None:
    queries = [i for i, e in enumerate(effects) if isinstance(e, QUERY_EFFECTS)]
    assert len(queries) <= 1, effects
    if queries:
        assert queries[0] == len(effects) - 1, effects
    for effect in effects:
        if isinstance(effect, Reply):
            assert effect.text.strip(), effects


@dataclass
class Salon:
    """The test's YClients: free times on a grid (every 30 minutes, 10:00–20:00) for the
    masters asked, minus ``busy``; the client's ``visits``; ``on_book`` decides a booking's
    outcome (default: made)."""

    busy: set[tuple[int, dt.datetime]] = field(default_factory=set)
    off: set[tuple[int, dt.date]] = field(default_factory=set)
    visits: list[Visit] = field(default_factory=list)
    crm_name: str | None = None
    on_book: Callable[[Book], Event] | None = None
    records: int = 0

    def free(self, staff_id: int, date: dt.date) -> list[Slot]:
        if (staff_id, date) in self.off:
            return []
        start = dt.datetime.combine(date, dt.time(10), ZONE)
        grid = [start + dt.timedelta(minutes=30 * i) for i in range(21)]
        return [Slot(staff_id, t) for t in grid if t > NOW and (staff_id, t) not in self.busy]

    def slots(self, request: FindSlots) -> SlotsFound:
        staff = request.staff_ids or tuple(m.id for m in CATALOG.masters_for(request.service_ids))
        found = [s for d in request.dates for m in staff for s in self.free(m, d)]
        if request.window is not None:
            lo, hi = request.window
            found = [s for s in found if lo <= s.start.time() <= hi]
        found.sort(key=lambda s: (s.start, s.staff_id))
        nearest: list[Slot] = []
        taken = request.wanted is not None and not any(
            s.start.time() == request.wanted for s in found
        )
        if not found or taken:
            for k in range(1, request.search_days + 1):
                later = request.dates[-1] + dt.timedelta(days=k)
                nearest = sorted(
                    (s for m in staff for s in self.free(m, later)), key=lambda s: s.start
                )
                if nearest:
                    break
        return SlotsFound(request, tuple(found), tuple(nearest[:6]))

    def answer(self, effect: Effect) -> Event:
        match effect:
            case LookupClient():
                return ClientFound(self.crm_name, 1 if self.crm_name else None)
            case FindSlots():
                return self.slots(effect)
            case FindVisits():
                return VisitsFound(tuple(self.visits))
            case Book():
                if self.on_book is not None:
                    return self.on_book(effect)
                self.records += 1
                return Booked(effect.api_id, 900 + self.records, effect.staff_id, effect.start)
            case SettleBooking():
                raise AssertionError("settling is scripted by the test")
            case CancelVisit():
                self.visits = [v for v in self.visits if v.record_id != effect.record_id]
                return VisitCancelled(effect.record_id)
            case MoveVisit():
                return VisitMoved(effect.record_id, effect.staff_id, effect.start)
        raise AssertionError(f"not a query: {effect!r}")


@dataclass
class Chat:
    """One client's conversation; ``effects`` and ``replies`` keep everything said and done."""

    salon: Salon = field(default_factory=Salon)
    policy: Policy = field(default_factory=lambda: Policy(conversation_key="555100:79170000000"))
    now: dt.datetime = NOW
    catalog: AssistantCatalog = CATALOG
    state: ConversationState = field(default_factory=ConversationState)
    effects: list[Effect] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    def say(self, *commands: Command, text: str = "…", auto: bool = True) -> str:
        """The client's turn; queries are answered by the salon until the turn ends (or, with
        ``auto=False``, the first query is left unanswered). Returns the turn's reply text."""
        return self.feed(ClientTurn(text, tuple(commands), self.now), auto=auto)

    def feed(self, event: Event, *, auto: bool = True) -> str:
        """One event into ``decide`` (and the outcomes of its queries, when ``auto``)."""
        said: list[str] = []
        next_event: Event | None = event
        while next_event is not None:
            self.state, effects = decide(
                self.state, next_event, self.catalog, self.policy, self.now
            )
            check_decision(effects)
            check_roundtrip(self.state)
            self.effects.extend(effects)
            said.extend(e.text for e in effects if isinstance(e, Reply))
            last = effects[-1] if effects else None
            next_event = None
            if auto and isinstance(last, QUERY_EFFECTS) and not isinstance(last, SettleBooking):
                next_event = self.salon.answer(last)
        self.replies.extend(said)
        return "\n".join(said)

    def of(self, kind: type) -> list[Effect]:
        return [e for e in self.effects if isinstance(e, kind)]

    @property
    def last_effect(self) -> Effect | None:
        return self.effects[-1] if self.effects else None


def all_text(replies: Iterable[str]) -> str:
    return "\n".join(replies)
