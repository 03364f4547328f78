"""Properties of ``decide`` over random conversations (hypothesis): random client turns, and
random but well-formed outcomes for whatever it asks YClients.

For every sequence: it never raises; every state reached survives the JSON round trip; at
most one query per decision and only as the last effect; no reply is empty; an action
(``Book``, ``CancelVisit``, ``MoveVisit``) is only sent while handling a turn that said yes;
a claim ("записала", "отменила", "перенесла") only answers YClients' confirmation of it;
and no two ``Book``s of one conversation share an ``api_id`` unless the first one failed
before reaching YClients.
"""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, note, settings, target
from hypothesis import event as statistic
from hypothesis import strategies as st

from actors.assistant._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Confirm,
    Deny,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    OptOut,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    SmallTalk,
    SmallTalkKind,
    StartFlow,
    Topic,
    UnknownService,
)
from actors.assistant._decide import QUERY_EFFECTS, decide
from actors.assistant._effects import (
    ActionFailed,
    Book,
    Booked,
    BookingPending,
    CancelVisit,
    ClientFound,
    ClientTurn,
    Effect,
    Event,
    FailureKind,
    FindSlots,
    FindVisits,
    LookupClient,
    MoveVisit,
    NonTextTurn,
    Reply,
    SettleBooking,
    SettleDue,
    Slot,
    SlotsFound,
    Visit,
    VisitCancelled,
    VisitMoved,
    VisitsFound,
)
from actors.assistant._policy import Policy
from actors.assistant._state import ConversationState
from actors.assistant._when import When

from .decide_chat import CATALOG, NOW, ZONE, at, check_decision

SERVICE_IDS = [s.id for s in CATALOG.services]
STAFF_IDS = [m.id for m in CATALOG.masters]
CLAIMS = ("записала", "отменила", "перенесла")
POLICY = Policy(max_options=4, settle_delays=(1.0, 2.0), conversation_key="p")

days = st.integers(min_value=-1, max_value=20).map(lambda k: NOW.date() + dt.timedelta(days=k))
clock = st.builds(dt.time, st.integers(9, 21), st.sampled_from([0, 30]))
whens = st.one_of(
    st.builds(When, dates=st.lists(days, max_size=3).map(lambda d: tuple(sorted(set(d))))),
    st.builds(When, time=clock),
    st.builds(When, dates=st.lists(days, min_size=1, max_size=1).map(tuple), time=clock),
    st.builds(
        When,
        window=st.lists(st.integers(9, 21), min_size=2, max_size=2, unique=True).map(
            lambda hours: (dt.time(min(hours)), dt.time(max(hours)))
        ),
    ),
    st.just(When(rejected=((0, 2),))),
)
ids = st.lists(st.sampled_from([*SERVICE_IDS, 999]), min_size=1, max_size=2).map(tuple)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(StartFlow, st.sampled_from(list(Flow))),
    st.builds(SetServices, ids),
    st.builds(AmbiguousService, st.just("стрижка"), ids),
    st.builds(UnknownService, st.just("педикюр"), ids),
    st.builds(SetMaster, st.one_of(st.none(), st.sampled_from([*STAFF_IDS, 1]))),
    st.builds(SetWhen, whens),
    st.builds(ChooseOption, number=st.integers(-1, 8)),
    st.builds(ChooseOption, time=clock),
    st.builds(ChooseVisit, number=st.integers(0, 3)),
    st.builds(ChooseVisit, service_ids=ids),
    st.builds(SetName, st.sampled_from(["Тимур", " ", "Анна Мария", "x" * 200])),
    st.just(Confirm()),
    st.just(Confirm()),
    st.just(Deny()),
    st.builds(Ask, st.sampled_from(list(Topic)), st.just(()) | ids),
    st.builds(HandOver, st.sampled_from(list(HandOverReason))),
    st.just(OptOut()),
    st.builds(SmallTalk, st.sampled_from(list(SmallTalkKind))),
    st.just(NotUnderstood()),
)
random_turns = st.lists(commands, max_size=4).map(tuple)
# Whole requests as clients make them, so random conversations also reach the actions.
whole_requests = st.one_of(
    st.builds(
        lambda services, day, time, name: (
            StartFlow(Flow.BOOK),
            SetServices(services),
            SetWhen(When(dates=(day,), time=time)),
            SetName(name),
        ),
        st.sampled_from([(6101,), (6104,), (6105, 6106)]),
        days,
        clock,
        st.sampled_from(["Тимур", "Лилия"]),
    ),
    st.builds(lambda flow: (StartFlow(flow),), st.sampled_from([Flow.CANCEL, Flow.MOVE])),
    st.builds(
        lambda time: (StartFlow(Flow.MOVE), SetWhen(When(time=time))),
        clock,
    ),
    st.just((Confirm(),)),
    st.just((ChooseOption(number=1),)),
)
turns = st.one_of(random_turns, whole_requests)
VISITS = (
    Visit(7001, at(3, 17), 6201, (6101,), ("Стрижка мужская",)),
    Visit(7002, at(4, 13), 6203, (6105,), ()),
    Visit(7003, at(-1, 13), 6203, (6105,), ()),
)


def outcome(effect: Effect, data: st.DataObject) -> Event:
    """A random but well-formed answer to a query or an action."""
    match effect:
        case LookupClient():
            return ClientFound(data.draw(st.sampled_from([None, "Рустам", ""])))
        case FindSlots():
            start = st.builds(
                lambda d, t: dt.datetime.combine(d, t, ZONE),
                st.sampled_from(effect.dates),
                clock,
            )
            slot = st.builds(Slot, st.sampled_from(STAFF_IDS), start)
            later = st.builds(
                Slot,
                st.sampled_from(STAFF_IDS),
                st.builds(
                    lambda k, t: dt.datetime.combine(
                        effect.dates[-1] + dt.timedelta(days=k), t, ZONE
                    ),
                    st.integers(1, 5),
                    clock,
                ),
            )
            return SlotsFound(
                effect,
                tuple(data.draw(st.lists(slot, max_size=12))),
                tuple(data.draw(st.lists(later, max_size=6))),
            )
        case FindVisits():
            if data.draw(st.booleans()):
                return ActionFailed("visits", FailureKind.UNAVAILABLE)
            return VisitsFound(
                tuple(data.draw(st.lists(st.sampled_from(VISITS), max_size=3, unique=True)))
            )
        case Book() | SettleBooking():
            kind = data.draw(st.sampled_from(["booked", "pending", *FailureKind]))
            if kind == "booked":
                start = effect.start if isinstance(effect, Book) else at(2, 15)
                return Booked(effect.api_id, 901, 6201, start)
            if kind == "pending":
                return BookingPending(effect.api_id)
            action = "book" if isinstance(effect, Book) else "settle"
            alternatives = (Slot(6201, at(2, 16)),) if kind is FailureKind.TAKEN else ()
            return ActionFailed(action, FailureKind(kind), alternatives)
        case CancelVisit():
            if data.draw(st.booleans()):
                return VisitCancelled(effect.record_id)
            return ActionFailed("cancel", data.draw(st.sampled_from(list(FailureKind))))
        case MoveVisit():
            if data.draw(st.booleans()):
                return VisitMoved(effect.record_id, effect.staff_id, effect.start)
            return ActionFailed("move", data.draw(st.sampled_from(list(FailureKind))))
    raise AssertionError(effect)


CONFIRMS = {Book: (Booked,), CancelVisit: (VisitCancelled,), MoveVisit: (VisitMoved,)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_conversations_keep_every_promise(data: st.DataObject) -> None:
    state = ConversationState()
    said_yes = False
    failed_early: set[str] = set()
    api_ids: list[str] = []
    actions = 0
    for _ in range(data.draw(st.integers(1, 12))):
        kind = data.draw(st.sampled_from(["turn", "turn", "turn", "media", "settle"]))
        event: Event
        if kind == "turn":
            turn_commands = data.draw(turns)
            said_yes = any(isinstance(c, Confirm) for c in turn_commands)
            event = ClientTurn("…", turn_commands, NOW)
        elif kind == "media":
            said_yes = False
            event = NonTextTurn(NOW)
        else:
            said_yes = False
            event = SettleDue()
        steps = 0
        while True:
            steps += 1
            assert steps < 20, "decide keeps asking"
            state, effects = decide(state, event, CATALOG, POLICY, NOW)
            check_decision(effects)
            stored = json.loads(json.dumps(state.to_json()))
            assert ConversationState.from_json(stored) == state
            for effect in effects:
                if isinstance(effect, (Book, CancelVisit, MoveVisit)):
                    assert said_yes, (event, effect)
                if isinstance(effect, (Book, CancelVisit, MoveVisit)):
                    statistic(f"sent {type(effect).__name__}")
                    actions += 1
                if isinstance(effect, Book):
                    assert effect.api_id not in api_ids or effect.api_id in failed_early
                    api_ids.append(effect.api_id)
                if isinstance(effect, Reply):
                    for claim in CLAIMS:
                        if claim in effect.text:
                            assert isinstance(event, (Booked, VisitCancelled, VisitMoved)), (
                                event,
                                effect.text,
                            )
            last = effects[-1] if effects else None
            if not isinstance(last, QUERY_EFFECTS):
                break
            event = outcome(last, data)
            unavailable = isinstance(event, ActionFailed) and event.kind is FailureKind.UNAVAILABLE
            if unavailable and isinstance(last, Book):
                failed_early.add(last.api_id)
    note(f"actions sent: {actions}")
    target(float(actions), label="actions sent")


@settings(max_examples=200, deadline=None)
@given(turn_commands=turns)
def test_a_turn_is_always_answered_unless_opted_out(turn_commands: tuple[Command, ...]) -> None:
    state = ConversationState(looked_up=True, greeted=True)
    state, effects = decide(state, ClientTurn("…", turn_commands, NOW), CATALOG, POLICY, NOW)
    last = effects[-1] if effects else None
    assert any(isinstance(e, Reply) for e in effects) or isinstance(last, QUERY_EFFECTS)
