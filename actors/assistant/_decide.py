"""The assistant's decisions as a pure function:
``decide(state, event, catalog, policy, now) -> (state, effects)``.

No I/O and no clock here: the conversation actor feeds events in (a client's turn, each
effect's outcome, a timer) and carries the effects out (``_effects`` describes the protocol).
Same state, event and ``now`` give the same decision, so every behaviour below is tested by
scripting conversations through this function.

**One query in flight, one reply per turn.** ``decide`` returns at most one query or action
(``LookupClient``, ``FindSlots``, ``FindVisits``, ``Book``, ``SettleBooking``,
``CancelVisit``, ``MoveVisit``), always as the LAST effect; its outcome comes back as the next
event. Reply parts gathered while a query is in flight wait in ``state.draft`` and go out as
one ``Reply`` when the turn ends (a burst of messages is answered once).

**A turn** (``ClientTurn``, already understood):

1. The first turn of a conversation is held (``state.deferred``) while the client is looked
   up by phone (``LookupClient``), so the first reply greets a known client by name and a
   known client is never asked for it.
2. Opted out: silence, unless the client asks to book again. ``OptOut``: one confirmation and
   ``SetMode(OPTED_OUT)``. ``HandOver``, or ``policy.not_understood_limit`` messages in a row
   not understood: a polite reply, ``SetMode(HANDOFF, until=now + policy.handoff_for)`` and an
   ``Audit`` entry.
3. Details (flow, services, master, day, time, an option or a visit picked, the name) are
   applied; what was already known stays (a new day keeps the service, master and time).
   Questions (``Ask``) are answered from the catalog (not with the whole price list when a
   service the salon lacks was just answered with its closest ones); outside a flow, the one
   service a question was about is kept for a booking that follows. If the details changed,
   a pending confirmation is dropped (a "да" in the same message was about the old
   proposal) and the flow advances; otherwise ``Confirm`` / ``Deny`` act on the pending
   confirmation.

**Booking** asks only for what is missing, one question at a time: service, day, then free
times (``FindSlots``; at most ``policy.max_options`` offered, numbered, exactly as YClients
gave them, never a time already gone by; when the asked time is taken or the day is full the
nearest free times are offered in the same reply; an option picked after its time passed is
said to have passed and the times are looked up again), then the name; then one summary
ending "Записать …?". Only ``Confirm`` of that summary sends ``Book``, with an ``api_id``
decided when the summary was made (stable if the "да" is replayed after a restart).
"записала" is said only on ``Booked``;
``BookingPending`` says it is being checked and arms ``SettleBooking``; a second "да" never
books again. A time taken meanwhile (``ActionFailed(TAKEN)``) offers the alternatives in the
same reply; when the client named no master and another master is free at that very time,
that is proposed instead (same time with another master beats another time).

**After a reminder** (``state.prompt``, noted by ``Assistant.note_sent_prompt``; nothing else
under way and the visit still ahead): a plain yes ("да", "буду", "👍", "да, спасибо") sends
``ConfirmVisit`` (attendance 2) and says "Ждём вас!"; a no, "не смогу" or "отмените" starts the
cancel flow and "перенесите на …" the move flow, both for the reminded visit, each with its
usual confirmation; "да, но хочу перенести" and a question are no yes. **After a review
request**: a rating (``Rate``) is stored (``SaveRating``) and answered from the salon's texts,
with its review link when the salon sends it after that rating; 1–3 also tells the salon
(``Audit`` ``assistant.low_rating``, counted). Words sent after the rating are its comment.
Anything else is an ordinary message.

**Cancelling and moving** find the client's visits (``FindVisits``), ask which one when there
are several (numbered, or matched by service or day), and act only after ``Confirm``; a move
first finds the new time free (``FindSlots`` with the visit's services and master) and nothing
moves when it is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from storage import ConversationMode

from ..reminders._plan import VisitFacts
from ..reminders._texts import render_rating_reply
from . import _templates as t
from ._answers import answer
from ._catalog import AssistantCatalog
from ._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Comment,
    Confirm,
    Deny,
    Expecting,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    OptOut,
    Rate,
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
from ._effects import (
    ActionFailed,
    ArmSettle,
    Audit,
    Book,
    Booked,
    BookingPending,
    CancelVisit,
    ClientFound,
    ClientTurn,
    ConfirmVisit,
    Effect,
    Event,
    FailureKind,
    FindSlots,
    FindVisits,
    LookupClient,
    MoveVisit,
    NonTextTurn,
    Reply,
    SaveRating,
    SetMode,
    SettleBooking,
    SettleDue,
    Slot,
    SlotsFound,
    Visit,
    VisitCancelled,
    VisitConfirmed,
    VisitMoved,
    VisitsFound,
)
from ._policy import Policy
from ._prompts import Prompt, PromptKind, Rating
from ._state import Awaiting, Booking, ConfirmKind, ConversationState, Pending, VisitHint, Wish
from ._when import When

__all__ = ["QUERY_EFFECTS", "Decision", "decide"]

Decision = tuple[ConversationState, tuple[Effect, ...]]

# Effects answered by exactly one outcome event (at most one per decision, always last).
QUERY_EFFECTS: tuple[type, ...] = (
    LookupClient,
    FindSlots,
    FindVisits,
    Book,
    SettleBooking,
    CancelVisit,
    MoveVisit,
    ConfirmVisit,
)

NAME_LIMIT = 60  # characters of a client's name kept


@dataclass(frozen=True)
class _Ctx:
    catalog: AssistantCatalog
    policy: Policy
    now: dt.datetime

    @property
    def zone(self) -> dt.tzinfo:
        return self.catalog.salon.zone

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone)


_Step = tuple[ConversationState, list[Effect]]


def decide(
    state: ConversationState,
    event: Event,
    catalog: AssistantCatalog,
    policy: Policy,
    now: dt.datetime,
) -> Decision:
    """The next state and the effects for ``event`` (see the module docstring).

    ``now`` is an aware datetime (the salon's zone or any other); it dates the turn, decides
    what "today" is in the salon and seeds a new booking's ``api_id``. Never raises for an
    event that does not fit the state (a late or duplicate outcome): it is ignored.
    """
    cx = _Ctx(catalog, policy, now)
    handler = _HANDLERS[type(event)]
    state, effects = handler(state, event, cx)
    return _finish(state, effects)


def _finish(s: ConversationState, effects: list[Effect]) -> Decision:
    """Send the turn's reply unless a query is still in flight (then it waits in the draft)."""
    if effects and isinstance(effects[-1], QUERY_EFFECTS):
        return s, tuple(effects)
    if s.draft:
        effects = [Reply("\n".join(s.draft)), *effects]
        s = replace(s, draft=())
    return s, tuple(effects)


# --------------------------------------------------------------------------- small helpers


def _say(s: ConversationState, *parts: str) -> ConversationState:
    return replace(s, draft=s.draft + tuple(p for p in parts if p))


def _ask(s: ConversationState, question: str, expecting: Expecting) -> ConversationState:
    return replace(_say(s, question), expecting=expecting, question=question)


def _end_flow(s: ConversationState) -> ConversationState:
    """Forget the flow's details (the client's name and past bookings stay)."""
    return replace(
        s,
        flow=None,
        wish=Wish(),
        chosen=None,
        offered=(),
        searched=None,
        visits=None,
        listed_visits=(),
        chosen_visit=None,
        hint=None,
        pending=None,
        expecting=Expecting.NOTHING,
        question="",
    )


def _master_name(cx: _Ctx, staff_id: int | None) -> str | None:
    master = cx.catalog.master(staff_id) if staff_id is not None else None
    return t.display_name(master, cx.catalog.masters) if master is not None else None


def _visit_data(
    cx: _Ctx, service_ids: Sequence[int], staff_id: int | None, titles: Sequence[str] = ()
) -> dict[str, Any]:
    """What an audit entry about a visit says of it in words, for the salon's page (issue 16):
    the services' titles and the master's name as the client was told them."""
    named = list(titles) or [x.title for i in service_ids if (x := cx.catalog.service(i))]
    return {
        "service_ids": list(service_ids),
        "services": named,
        "master": _master_name(cx, staff_id),
    }


def _api_id(s: ConversationState, cx: _Ctx, slot: Slot, name: str) -> str:
    """Our id for a new booking, decided when the summary is proposed: from the conversation
    (``policy.conversation_key``), the turn's time, a counter and what is booked, so the same
    decision always makes the same id and two bookings never share one."""
    seed = "|".join(
        (
            cx.policy.conversation_key,
            str(cx.catalog.salon.company_id),
            cx.now.isoformat(),
            str(s.seq),
            str(slot.staff_id),
            slot.start.isoformat(),
            ",".join(map(str, s.wish.service_ids)),
            name,
        )
    )
    return "aia-" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def _hand_over(
    s: ConversationState, cx: _Ctx, effects: list[Effect], reason: str, text: str
) -> _Step:
    """A person answers from now on: say so, switch the mode for a while, tell the salon."""
    s = _say(s, text)
    s = replace(_end_flow(s), not_understood=0)
    until = cx.now + cx.policy.handoff_for
    return s, [
        *effects,
        SetMode(ConversationMode.HANDOFF, until=until, reason=reason),
        Audit("assistant.handoff", {"reason": reason}),
    ]


# --------------------------------------------------------------------------- client turns


def _on_turn(s: ConversationState, ev: ClientTurn, cx: _Ctx) -> _Step:
    s = replace(s, awaiting=Awaiting.NOTHING, draft=(), deferred=None)
    if not s.looked_up and not s.opted_out:
        return replace(s, deferred=ev, awaiting=Awaiting.CLIENT), [LookupClient()]
    return _handle_turn(s, ev, cx)


def _on_non_text(s: ConversationState, ev: NonTextTurn, cx: _Ctx) -> _Step:
    if s.opted_out:
        return s, []
    return _say(replace(s, awaiting=Awaiting.NOTHING, draft=()), t.non_text()), []


def _on_client_found(s: ConversationState, ev: ClientFound, cx: _Ctx) -> _Step:
    if s.awaiting is not Awaiting.CLIENT:
        return s, []
    name = (ev.name or "").strip()[:NAME_LIMIT]
    s = replace(s, looked_up=True, awaiting=Awaiting.NOTHING, client_id=ev.client_id)
    if name:
        s = replace(s, client_name=name, name_from_crm=True)
    if s.deferred is not None:
        turn = s.deferred
        return _handle_turn(replace(s, deferred=None), turn, cx)
    return _advance(s, cx, [])


def _wants_booking(commands: tuple[Command, ...]) -> bool:
    return any(isinstance(c, StartFlow) and c.flow is Flow.BOOK for c in commands)


def _handle_turn(s: ConversationState, turn: ClientTurn, cx: _Ctx) -> _Step:
    commands = turn.commands
    effects: list[Effect] = []
    if s.opted_out:
        if not _wants_booking(commands):
            return s, []  # opted out: nothing more is sent unless they ask to book
        s = replace(s, opted_out=False)
        effects.append(SetMode(ConversationMode.ASSISTANT, reason="client asked to book"))
    if any(isinstance(c, OptOut) for c in commands):
        s = replace(_say(_end_flow(s), t.opted_out()), opted_out=True, not_understood=0)
        return s, [
            *effects,
            SetMode(ConversationMode.OPTED_OUT, reason="client asked"),
            Audit("assistant.opted_out", {}),
        ]
    handover = next((c for c in commands if isinstance(c, HandOver)), None)
    if handover is not None:
        complaint = handover.reason is HandOverReason.COMPLAINT
        return _hand_over(s, cx, effects, handover.reason.value, t.handoff(complaint))
    s, commands, step = _answer_prompt(s, commands, cx, effects)
    if step is not None:
        return step
    meaningful = [c for c in commands if not isinstance(c, NotUnderstood)]
    if not meaningful:
        return _not_understood(s, cx, effects)
    if not cx.catalog.services and any(map(_needs_catalog, meaningful)):
        # Never synced (or YClients gave nothing): we cannot say what the salon offers or
        # costs, and must not claim it lacks something; a person answers instead.
        return _hand_over(s, cx, effects, "no_catalog", t.catalog_unavailable())
    s = replace(s, not_understood=0)
    greeted_now = not s.greeted
    if greeted_now:
        s = _say(replace(s, greeted=True), t.greeting(s.client_name))
    return _apply_turn(s, meaningful, cx, effects, greeted_now=greeted_now)


# --------------------------------------------------------------------------- reminders, reviews


def _prompt(s: ConversationState, cx: _Ctx, *kinds: PromptKind) -> Prompt | None:
    """The salon's last prompt when it is one of ``kinds`` and still answered (see
    ``Prompt.active``)."""
    p = s.prompt
    if p is None or p.kind not in kinds or not p.active(cx.now):
        return None
    return p


def _reminder(s: ConversationState, cx: _Ctx) -> Prompt | None:
    return _prompt(s, cx, PromptKind.DAY_BEFORE, PromptKind.TWO_HOURS)


def _answer_prompt(
    s: ConversationState, commands: tuple[Command, ...], cx: _Ctx, effects: list[Effect]
) -> tuple[ConversationState, tuple[Command, ...], _Step | None]:
    """A reply to the salon's reminder or review request, when it is one: ``(state, commands,
    step)`` with the step taken, or with the commands to handle as an ordinary message."""
    if s.prompt is not None and not s.prompt.active(cx.now):
        s = replace(s, prompt=None)  # its visit began, or the review request is old
    rate = next((c for c in commands if isinstance(c, Rate)), None)
    comment = next((c for c in commands if isinstance(c, Comment)), None)
    if rate is not None and _prompt(s, cx, PromptKind.REVIEW) is not None:
        return s, commands, _rated(s, rate, cx, effects)
    if comment is not None and _prompt(s, cx, PromptKind.REVIEW_COMMENT) is not None:
        return s, commands, _commented(s, comment, cx, effects)
    commands = tuple(c for c in commands if not isinstance(c, (Rate, Comment)))
    if _reminder(s, cx) is None or s.flow is not None or s.pending is not None:
        return s, commands, None
    said = {type(c) for c in commands} - {SmallTalk, NotUnderstood}
    if said == {Confirm}:
        return s, commands, _confirm_attendance(s, cx, effects)
    if said == {Deny}:  # "нет" to "всё в силе?": the visit will not happen
        return s, (StartFlow(Flow.CANCEL),), None
    return s, commands, None


def _confirm_attendance(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    p = s.prompt
    assert p is not None
    s = replace(s, greeted=True, not_understood=0)
    if p.visit_id is None:  # YClients' visit id unknown: the salon is told, nothing is marked
        data = {"record_id": p.record_id, "marked": False, "start": p.start.isoformat()}
        audit = Audit("assistant.visit_confirmed", data)
        return _say(replace(s, prompt=None), t.see_you()), [*effects, audit]
    confirm = ConfirmVisit(p.record_id, p.visit_id)
    return replace(s, awaiting=Awaiting.CONFIRM_VISIT), [*effects, confirm]


def _on_visit_confirmed(s: ConversationState, ev: VisitConfirmed, cx: _Ctx) -> _Step:
    p = s.prompt
    if s.awaiting is not Awaiting.CONFIRM_VISIT or p is None or p.record_id != ev.record_id:
        return s, []
    s = replace(s, awaiting=Awaiting.NOTHING, prompt=None)
    data = {"record_id": ev.record_id, "marked": True, "start": p.start.isoformat()}
    audit = Audit("assistant.visit_confirmed", data)
    return _say(s, t.see_you()), [audit]


def _confirm_failed(s: ConversationState, ev: ActionFailed) -> _Step:
    p = s.prompt
    s = replace(s, awaiting=Awaiting.NOTHING, prompt=None)
    if ev.kind is FailureKind.NOT_FOUND:
        return _say(s, t.visit_gone()), []
    # The client will come; YClients did not take the mark: the salon sees it in the log.
    record_id = p.record_id if p is not None else 0
    audit = Audit("assistant.visit_not_marked", {"record_id": record_id, "kind": ev.kind.value})
    return _say(s, t.see_you()), [audit]


def _rated(s: ConversationState, rate: Rate, cx: _Ctx, effects: list[Effect]) -> _Step:
    """A rating after a review request: stored, answered from the salon's texts (with its
    review link when the salon sends it after this rating), a low one told to the salon."""
    p = s.prompt
    assert p is not None
    zone = cx.zone if isinstance(cx.zone, ZoneInfo) else ZoneInfo("UTC")
    start = p.start.astimezone(dt.UTC)
    facts = VisitFacts(
        company_id=cx.catalog.salon.company_id,
        record_id=p.record_id,
        visit_id=p.visit_id,
        client_phone="",
        client_name=s.client_name or "",
        service_titles=p.service_titles,
        master_name=p.master_name,
        starts_at=start,
        ends_at=start,
        booked_at=start,
    )
    salon = cx.catalog.salon
    reply = render_rating_reply(
        rate.rating,
        facts,
        cx.policy.reminders,
        zone,
        now=cx.now,
        salon=salon.title,
        address=salon.address,
    )
    rating = Rating(p.record_id, rate.rating, rate.comment, cx.now)
    # Without a comment, the next message may be one (unless it asks for something).
    after = None if rate.comment else replace(p, kind=PromptKind.REVIEW_COMMENT)
    s = replace(s, prompt=after, rating=rating, greeted=True, not_understood=0)
    out: list[Effect] = [
        *effects,
        SaveRating(p.record_id, p.visit_id, rate.rating, rate.comment, notify=rating.low),
        # every rating, for the salon's page (the low ones are also told below)
        Audit("assistant.rated", {"record_id": p.record_id, "rating": rate.rating}),
    ]
    if rating.low:
        data = {
            "record_id": p.record_id,
            "visit_id": p.visit_id,
            "rating": rate.rating,
            "comment": rate.comment,
        }
        out.append(Audit("assistant.low_rating", data))
    return _say(s, reply.text), out


def _commented(s: ConversationState, comment: Comment, cx: _Ctx, effects: list[Effect]) -> _Step:
    """Words after a rating: the rating's comment (stored with it)."""
    p, rating = s.prompt, s.rating
    assert p is not None
    s = replace(s, prompt=None, not_understood=0)
    if rating is None or rating.record_id != p.record_id:
        return _say(s, t.review_comment_thanks()), effects
    rating = replace(rating, comment=comment.text)
    s = replace(s, rating=rating)
    out: list[Effect] = [
        *effects,
        SaveRating(p.record_id, p.visit_id, rating.rating, comment.text, notify=False),
    ]
    if rating.low:
        data = {"record_id": p.record_id, "rating": rating.rating, "comment": comment.text}
        out.append(Audit("assistant.low_rating_comment", data))
    return _say(s, t.review_comment_thanks()), out


#: Questions answered from the salon card alone (no services needed).
_CARD_TOPICS = frozenset({Topic.ADDRESS, Topic.HOURS, Topic.PHONE, Topic.CAPABILITIES})


def _needs_catalog(command: Command) -> bool:
    """Whether answering ``command`` needs the salon's services (a booking, a price, ...)."""
    match command:
        case StartFlow(flow=flow):
            return flow is Flow.BOOK
        case SetServices() | UnknownService() | AmbiguousService():
            return True
        case Ask(topic=topic):
            return topic not in _CARD_TOPICS
    return False


def _not_understood(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    count = s.not_understood + 1
    if count >= cx.policy.not_understood_limit:
        return _hand_over(s, cx, effects, "not_understood", t.handoff(False))
    s = replace(s, not_understood=count)
    if not s.greeted:
        s = _say(replace(s, greeted=True), t.greeting(s.client_name))
    return _say(s, t.not_understood(s.question or None)), effects


def _rank(command: Command) -> int:
    """Flows first, so details said before "запишите" land in the flow."""
    return 0 if isinstance(command, StartFlow) else 1


def _apply_turn(
    s: ConversationState,
    commands: Sequence[Command],
    cx: _Ctx,
    effects: list[Effect],
    *,
    greeted_now: bool,
) -> _Step:
    commands = sorted(commands, key=_rank)
    changed = False  # the flow or its details changed: advance
    wish_said = False  # services, a master or a time said (starts a booking)
    answered = False  # something was said in reply already
    confirm = deny = False
    asks: list[Ask] = []
    named_closest = False  # a service not offered was answered with the closest ones
    for command in commands:
        match command:
            case StartFlow(flow=flow):
                s, did = _start_flow(s, flow)
                changed |= did
            case SetServices(ids=ids):
                s, did = _set_services(s, ids, cx)
                changed |= did
                wish_said |= did
            case AmbiguousService(candidates=candidates):
                s, did = _ambiguous(s, candidates, cx)
                changed |= did
                wish_said |= did
            case UnknownService(text=text, closest=closest):
                services = [x for i in closest if (x := cx.catalog.service(i)) is not None]
                s = _say(s, t.unknown_service(text, services))
                answered = True
                named_closest |= bool(services)
            case SetMaster(staff_id=staff_id):
                s, did = _set_master(s, staff_id, cx)
                changed |= did
                wish_said |= did
            case SetWhen(when=when):
                s, did = _set_when(s, when, cx)
                changed |= did
                wish_said |= did
                answered |= not did and bool(when.rejected)
            case ChooseOption():
                s, did, said = _choose_option(s, command, cx)
                changed |= did
                answered |= said
            case ChooseVisit():
                s, did, said = _choose_visit(s, command)
                changed |= did
                answered |= said
            case SetName(name=name):
                s, did = _set_name(s, name)
                changed |= did and s.flow is not None
            case Confirm():
                confirm = True
            case Deny():
                deny = True
            case Ask():
                asks.append(command)
            case SmallTalk(kind=kind):
                s, said = _small_talk(s, kind, greeted_now=greeted_now)
                answered |= said
    for ask in asks:
        if named_closest and _whole_list(ask):
            continue  # "делаете тайский массаж?": the closest ones answer it, not every price
        s = _say(s, answer(ask, cx.catalog))
        answered = True
    s = _remember_asked(s, asks)
    if asks and s.service_choices and not s.wish.service_ids:
        # "сколько стоит стрижка?" with two haircuts: the prices of both answer it
        choices = [x for i in s.service_choices if (x := cx.catalog.service(i)) is not None]
        if not any(a.service_ids for a in asks):
            s = _say(s, t.prices(choices))
        s = replace(s, service_choices=())
    if s.flow is None and wish_said and not asks:
        s, changed = replace(s, flow=Flow.BOOK), True
    if changed and s.flow is not None:
        return _advance(replace(s, pending=None), cx, effects)
    if confirm:
        return _confirm(s, cx, effects)
    if deny:
        return _deny(s, cx, effects)
    if answered:
        return s, effects
    if s.flow is not None:
        return _advance(s, cx, effects)
    return _say(s, t.how_can_i_help()), effects


def _whole_list(ask: Ask) -> bool:
    """A question answered with the whole price list (no service or category named)."""
    unnamed = not ask.service_ids and ask.category_id is None
    return unnamed and ask.topic in (Topic.PRICE, Topic.SERVICES)


def _remember_asked(s: ConversationState, asks: Sequence[Ask]) -> ConversationState:
    """Outside a flow, the one service a question was about is kept as the wish, so "давайте
    завтра в 16" after "сколько стоит бритьё?" books that service."""
    asked = {i for a in asks for i in a.service_ids}
    if s.flow is not None or len(asked) != 1:
        return s
    return replace(s, wish=replace(s.wish, service_ids=tuple(asked)))


def _small_talk(
    s: ConversationState, kind: SmallTalkKind, *, greeted_now: bool
) -> tuple[ConversationState, bool]:
    if kind is SmallTalkKind.GREETING:
        if not greeted_now:
            s = _say(s, t.greeting(s.client_name))
        return s, False  # a greeting alone still needs "how can I help"
    if kind is SmallTalkKind.THANKS:
        return _say(s, t.thanks()), True
    return _say(s, t.goodbye()), True


def _start_flow(s: ConversationState, flow: Flow) -> tuple[ConversationState, bool]:
    if s.flow is flow:
        return s, False
    fresh = replace(
        s,
        flow=flow,
        pending=None,
        chosen=None,
        offered=(),
        searched=None,
        visits=None,
        listed_visits=(),
        chosen_visit=None,
        hint=None,
        expecting=Expecting.NOTHING,
    )
    if s.flow is not None:  # another flow's details are not this one's
        fresh = replace(fresh, wish=Wish())
    return fresh, True


def _cleared(s: ConversationState, wish: Wish) -> ConversationState:
    """The wish changed: the offered times and the choice no longer apply."""
    return replace(s, wish=wish, chosen=None, offered=(), searched=None)


def _set_services(
    s: ConversationState, ids: tuple[int, ...], cx: _Ctx
) -> tuple[ConversationState, bool]:
    known = tuple(dict.fromkeys(i for i in ids if cx.catalog.service(i) is not None))
    if not known:
        return s, False
    if s.flow in (Flow.CANCEL, Flow.MOVE) and s.chosen_visit is None:
        hint = s.hint or VisitHint()
        new_hint = replace(hint, service_ids=known)
        return replace(s, hint=new_hint), new_hint != s.hint
    if s.flow in (Flow.CANCEL, Flow.MOVE, Flow.VISITS):
        return s, False
    if known == s.wish.service_ids:
        return s, False
    s = replace(s, service_choices=())
    return _cleared(s, replace(s.wish, service_ids=known)), True


def _ambiguous(
    s: ConversationState, candidates: tuple[int, ...], cx: _Ctx
) -> tuple[ConversationState, bool]:
    known = tuple(dict.fromkeys(i for i in candidates if cx.catalog.service(i) is not None))
    if len(known) < 2:
        return _set_services(s, known, cx) if known else (s, False)
    if s.flow in (Flow.CANCEL, Flow.MOVE):
        return _set_services(s, known, cx)  # any of them identifies the visit
    if s.flow is Flow.VISITS:
        return s, False
    return _cleared(replace(s, service_choices=known), replace(s.wish, service_ids=())), True


def _set_master(
    s: ConversationState, staff_id: int | None, cx: _Ctx
) -> tuple[ConversationState, bool]:
    if staff_id is not None and cx.catalog.master(staff_id) is None:
        return s, False
    if s.flow in (Flow.CANCEL, Flow.VISITS) or s.wish.master_id == staff_id:
        return s, False
    return _cleared(s, replace(s.wish, master_id=staff_id)), True


def _set_when(s: ConversationState, when: When, cx: _Ctx) -> tuple[ConversationState, bool]:
    if when.is_empty:
        if when.rejected:
            s = _say(s, t.bad_date())
        return s, False
    wish = s.wish
    if when.has_day:
        if when.dates:
            dates = tuple(d for d in when.dates if d >= cx.today)[: cx.policy.max_days]
            if dates:
                wish = replace(wish, dates=dates, same_day=False)
            else:
                s = _say(s, t.day_passed())
                wish = replace(wish, dates=(), same_day=False)
        else:  # "в тот же день"
            wish = replace(wish, dates=(), same_day=True)
    if when.time is not None:
        wish = replace(wish, time=when.time, window=None)
    elif when.window is not None:
        wish = replace(wish, time=None, window=when.window)
    if s.flow is Flow.CANCEL:
        if when.date is None:
            return s, False
        hint = replace(s.hint or VisitHint(), day=when.date)
        return replace(s, hint=hint), hint != s.hint
    if s.flow is Flow.VISITS or wish == s.wish:
        return s, False
    return _cleared(s, wish), True


def _choose_option(
    s: ConversationState, c: ChooseOption, cx: _Ctx
) -> tuple[ConversationState, bool, bool]:
    """(state, changed, said)."""
    if c.number is not None and s.expecting is Expecting.SERVICE and s.service_choices:
        if not 1 <= c.number <= len(s.service_choices):
            return _say(s, t.no_such_option(len(s.service_choices))), False, True
        s, changed = _set_services(s, (s.service_choices[c.number - 1],), cx)
        return s, changed, False
    if c.number is not None and (
        s.expecting is Expecting.VISIT or (bool(s.listed_visits) and s.chosen_visit is None)
    ):
        return _choose_visit(s, ChooseVisit(number=c.number))
    if not s.offered:
        if c.time is not None and s.flow in (Flow.BOOK, Flow.MOVE):
            return _cleared(s, replace(s.wish, time=c.time, window=None)), True, False
        return s, False, False
    if c.number is not None:
        if not 1 <= c.number <= len(s.offered):
            return _say(s, t.no_such_option(len(s.offered))), False, True
        slot = s.offered[c.number - 1]
    else:
        matches = [o for o in s.offered if cx.local(o.start).time() == c.time]
        if not matches:  # a time not offered: look for it on the same days
            return _cleared(s, replace(s.wish, time=c.time, window=None)), True, False
        slot = matches[0]
    if slot.start <= cx.now:  # offered a while ago: look again from now
        s = _say(s, t.slot_passed())
        return replace(s, chosen=None, offered=(), searched=None), True, True
    if s.chosen == slot:
        return s, False, False
    return replace(s, chosen=slot), True, False


def _choose_visit(s: ConversationState, c: ChooseVisit) -> tuple[ConversationState, bool, bool]:
    if c.number is not None:
        if not s.listed_visits or not 1 <= c.number <= len(s.listed_visits):
            if not s.listed_visits:
                return s, False, False
            return _say(s, t.no_such_option(len(s.listed_visits))), False, True
        visit = s.listed_visits[c.number - 1]
        if s.chosen_visit == visit:
            return s, False, False
        return replace(s, chosen_visit=visit, chosen=None, offered=(), searched=None), True, False
    hint = VisitHint(
        service_ids=c.service_ids or (s.hint.service_ids if s.hint else ()),
        day=c.day or (s.hint.day if s.hint else None),
    )
    if hint == s.hint:
        return s, False, False
    return replace(s, hint=hint, chosen_visit=None), True, False


def _set_name(s: ConversationState, name: str) -> tuple[ConversationState, bool]:
    name = " ".join(name.split())[:NAME_LIMIT]
    if not name or s.name_from_crm or name == s.client_name:
        return s, False
    return replace(s, client_name=name), True


# --------------------------------------------------------------------------- yes and no


def _confirm(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    pending = s.pending
    if pending is None:
        if s.booking is not None:
            return _say(s, t.booking_in_progress()), effects
        if s.expecting is Expecting.OPTION and len(s.offered) == 1:
            return _advance(replace(s, chosen=s.offered[0]), cx, effects)
        if s.flow is not None:
            return _advance(s, cx, effects)
        if s.last_booked is not None:
            b = s.last_booked
            return _say(s, t.already_booked(cx.catalog, b.service_ids, b.slot, cx.today)), effects
        return _say(s, t.how_can_i_help()), effects
    s = replace(s, pending=None, expecting=Expecting.NOTHING, question="")
    if pending.kind is ConfirmKind.BOOK and pending.slot is not None:
        slot = pending.slot
        if slot.start <= cx.now:
            s = _say(s, t.slot_passed())
            return _advance(replace(s, chosen=None, offered=(), searched=None), cx, effects)
        booking = Booking(pending.api_id, slot, pending.service_ids, pending.client_name)
        book = Book(
            api_id=pending.api_id,
            service_ids=pending.service_ids,
            staff_id=slot.staff_id,
            start=slot.start,
            client_name=pending.client_name,
            any_master=s.wish.master_id is None,
        )
        return replace(s, booking=booking, awaiting=Awaiting.BOOK), [*effects, book]
    if pending.kind is ConfirmKind.CANCEL and pending.visit is not None:
        s = replace(s, awaiting=Awaiting.CANCEL, chosen_visit=pending.visit)
        return s, [*effects, CancelVisit(pending.visit.record_id)]
    if pending.kind is ConfirmKind.MOVE and pending.visit is not None and pending.slot is not None:
        visit, slot = pending.visit, pending.slot
        s = replace(s, awaiting=Awaiting.MOVE, chosen_visit=visit, chosen=slot)
        move = MoveVisit(visit.record_id, slot.staff_id, slot.start, visit.service_ids)
        return s, [*effects, move]
    return _advance(s, cx, effects)


def _deny(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    kind = s.pending.kind if s.pending is not None else None
    if kind is ConfirmKind.CANCEL or (kind is None and s.flow is Flow.CANCEL):
        return _say(_end_flow(s), t.cancel_kept()), effects
    if kind is ConfirmKind.MOVE or (kind is None and s.flow is Flow.MOVE):
        return _say(_end_flow(s), t.move_kept()), effects
    if kind is ConfirmKind.BOOK or s.flow is Flow.BOOK:
        wish = replace(s.wish, time=None, window=None)
        s = replace(_cleared(s, wish), pending=None, expecting=Expecting.NOTHING, question="")
        return _say(s, t.deny_booking()), effects
    return _say(replace(s, expecting=Expecting.NOTHING, question=""), t.ok()), effects


# --------------------------------------------------------------------------- advancing a flow


def _advance(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    """Take the flow's next step: ask for what is missing, query YClients, or propose."""
    s = replace(s, expecting=Expecting.NOTHING, question="")
    match s.flow:
        case Flow.BOOK:
            return _advance_book(s, cx, effects)
        case Flow.CANCEL | Flow.MOVE | Flow.VISITS:
            return _advance_visits(s, cx, effects)
        case _:
            return _say(s, t.how_can_i_help()), effects


def _staff_for(cx: _Ctx, service_ids: tuple[int, ...], master_id: int | None) -> tuple[int, ...]:
    if master_id is not None:
        return (master_id,)
    services = [cx.catalog.service(i) for i in service_ids]
    if not any(x is not None and x.staff_ids for x in services):
        return ()  # the catalog does not say: every master who does them (the actor asks)
    return tuple(m.id for m in cx.catalog.masters_for(service_ids))


def _search(s: ConversationState, cx: _Ctx, effects: list[Effect], request: FindSlots) -> _Step:
    ahead = tuple(o for o in s.offered if o.start > cx.now)  # never re-offer a time gone by
    if s.searched == request and ahead:
        return _offer(s, cx, ahead), effects
    return replace(s, awaiting=Awaiting.SLOTS, searched=request), [*effects, request]


def _advance_book(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    if s.booking is not None:
        return _say(s, t.booking_in_progress()), effects
    wish = s.wish
    if not wish.service_ids:
        choices = [x for i in s.service_choices if (x := cx.catalog.service(i)) is not None]
        if choices:
            return _ask(s, t.which_service(choices), Expecting.SERVICE), effects
        master = _master_name(cx, wish.master_id)
        theirs = [x for x in cx.catalog.services if wish.master_id in x.staff_ids]
        if master and 0 < len(theirs) <= cx.policy.max_options:  # "к Олегу": what he does
            s = replace(s, service_choices=tuple(x.id for x in theirs))
            return _ask(s, t.which_service_of(master, theirs), Expecting.SERVICE), effects
        return _ask(s, t.ask_service(master), Expecting.SERVICE), effects
    if wish.master_id is not None:
        able = cx.catalog.masters_for(wish.service_ids)
        if all(m.id != wish.master_id for m in able):
            name = _master_name(cx, wish.master_id) or ""
            s = _say(s, t.master_does_not_do(name, cx.catalog, wish.service_ids, able))
            s = _cleared(s, replace(wish, master_id=None))
            wish = s.wish
    if s.chosen is not None:
        return _book_ready(s, cx, effects)
    if not wish.dates:
        return _ask(s, t.ask_day(wish.time), Expecting.DAY), effects
    request = FindSlots(
        service_ids=wish.service_ids,
        dates=wish.dates,
        staff_ids=_staff_for(cx, wish.service_ids, wish.master_id),
        window=wish.window,
        wanted=wish.time,
        search_days=cx.policy.search_days,
    )
    return _search(s, cx, effects, request)


def _book_ready(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    """A time is picked: ask the name if unknown, else propose the booking."""
    slot, name = s.chosen, s.client_name
    assert slot is not None
    if name is None:
        if not s.looked_up:
            return replace(s, awaiting=Awaiting.CLIENT), [*effects, LookupClient()]
        return _ask(s, t.ask_name(cx.local(slot.start), cx.today), Expecting.NAME), effects
    pending = Pending(
        ConfirmKind.BOOK,
        slot=slot,
        service_ids=s.wish.service_ids,
        client_name=name,
        api_id=_api_id(s, cx, slot, name),
    )
    s = replace(s, pending=pending, seq=s.seq + 1)
    summary = t.booking_summary(cx.catalog, s.wish.service_ids, slot, name, cx.today)
    return _ask(s, summary, Expecting.CONFIRM), effects


def _offer(s: ConversationState, cx: _Ctx, slots: tuple[Slot, ...]) -> ConversationState:
    with_masters = s.wish.master_id is None and len({o.staff_id for o in slots}) > 1
    text = t.offered_times(cx.catalog, slots, cx.today, with_masters=with_masters)
    return _ask(replace(s, offered=slots), text, Expecting.OPTION)


def _distinct(slots: list[Slot], prefer: tuple[int, ...]) -> list[Slot]:
    """One slot per start time (the preferred master's when several are free), in time order."""
    best: dict[dt.datetime, Slot] = {}
    for slot in slots:
        kept = best.get(slot.start)
        if kept is None or (slot.staff_id in prefer and kept.staff_id not in prefer):
            best[slot.start] = slot
    return sorted(best.values(), key=lambda o: o.start)


def _spread(slots: list[Slot], count: int) -> tuple[Slot, ...]:
    """At most ``count`` slots spread evenly over the list (first and last kept)."""
    if len(slots) <= count:
        return tuple(slots)
    if count == 1:
        return (slots[0],)
    step = (len(slots) - 1) / (count - 1)
    return tuple(slots[round(i * step)] for i in range(count))


def _on_slots(s: ConversationState, ev: SlotsFound, cx: _Ctx) -> _Step:
    if s.awaiting is not Awaiting.SLOTS or ev.request != s.searched:
        return s, []
    s = replace(s, awaiting=Awaiting.NOTHING)
    request = ev.request
    prefer = tuple(
        x
        for x in (
            s.wish.master_id,
            s.chosen_visit.staff_id if s.chosen_visit is not None else None,
        )
        if x is not None
    )
    limit = max(1, cx.policy.max_options)
    slots = _distinct(
        [o for o in ev.slots if cx.local(o.start).date() in request.dates and o.start > cx.now],
        prefer,
    )
    master = _master_name(cx, request.staff_ids[0]) if len(request.staff_ids) == 1 else None
    if request.wanted is not None:
        exact = [o for o in slots if cx.local(o.start).time() == request.wanted]
        if exact:
            return _advance(replace(s, chosen=exact[0]), cx, [])
        day = request.dates[0]
        wanted = dt.datetime.combine(day, request.wanted, tzinfo=cx.zone)
        s = _say(s, t.time_taken(wanted, master, cx.today))
        near = sorted(
            (o for o in slots if cx.local(o.start).date() == day),
            key=lambda o: abs((cx.local(o.start) - wanted).total_seconds()),
        )[:limit]
        if not near:
            near = sorted(
                (o for o in slots if cx.local(o.start).date() != day),
                key=lambda o: o.start,
            )[:limit]
        offer = tuple(sorted(near, key=lambda o: o.start))
    else:
        window = request.window
        if window is not None:
            slots = [o for o in slots if window[0] <= cx.local(o.start).time() <= window[1]]
        offer = _spread(slots, limit)
        if not offer:
            s = _say(s, t.no_free_time(request.dates, master, cx.today, window=window))
    if not offer:
        offer = tuple(_distinct([o for o in ev.nearest if o.start > cx.now], prefer)[:limit])
    if offer:
        return _offer(s, cx, offer), []
    s = _say(s, t.nothing_soon(request.search_days))
    return replace(s, expecting=Expecting.DAY), []


# --------------------------------------------------------------------------- visits


def _matching(visits: tuple[Visit, ...], hint: VisitHint | None, cx: _Ctx) -> list[Visit]:
    if hint is None:
        return list(visits)
    out = list(visits)
    if hint.service_ids:
        out = [v for v in out if set(v.service_ids) & set(hint.service_ids)]
    if hint.day is not None:
        out = [v for v in out if cx.local(v.start).date() == hint.day]
    return out


def _advance_visits(s: ConversationState, cx: _Ctx, effects: list[Effect]) -> _Step:
    if s.visits is None:
        return replace(s, awaiting=Awaiting.VISITS), [*effects, FindVisits()]
    visits = s.visits
    if s.flow is Flow.VISITS or not visits:
        text = t.visits_list(cx.catalog, visits, cx.today) if visits else t.no_visits()
        return _say(_end_flow(s), text), effects
    visit = s.chosen_visit
    if visit is None:
        candidates = _matching(visits, s.hint, cx)
        if not candidates:
            candidates = list(visits)
        if s.flow is Flow.MOVE and len(candidates) > 1 and s.wish.dates:
            on_days = [v for v in candidates if cx.local(v.start).date() in s.wish.dates]
            if len(on_days) == 1 and len(s.wish.dates) > 1:
                candidates = on_days
        reminded = _reminder(s, cx)
        if reminded is not None and s.hint is None:  # a reply to a reminder: that visit
            candidates = [v for v in candidates if v.record_id == reminded.record_id] or candidates
        if len(candidates) == 1:
            visit = candidates[0]
            s = replace(s, chosen_visit=visit)
        else:
            s = replace(s, listed_visits=tuple(candidates))
            text = t.which_visit(cx.catalog, candidates, cx.today, move=s.flow is Flow.MOVE)
            return _ask(s, text, Expecting.VISIT), effects
    if s.flow is Flow.CANCEL:
        s = replace(s, pending=Pending(ConfirmKind.CANCEL, visit=visit))
        return _ask(s, t.confirm_cancel(cx.catalog, visit, cx.today), Expecting.CONFIRM), effects
    return _advance_move(s, cx, effects, visit)


def _advance_move(s: ConversationState, cx: _Ctx, effects: list[Effect], visit: Visit) -> _Step:
    wish = s.wish
    visit_day = cx.local(visit.start).date()
    dates = tuple(d for d in wish.dates if d != visit_day) or wish.dates
    if not dates and (wish.same_day or wish.time is not None or wish.window is not None):
        dates = (visit_day,)
    if not dates:
        return _ask(s, t.ask_move_when(cx.catalog, visit, cx.today), Expecting.DAY), effects
    if s.chosen is not None:
        pending = Pending(ConfirmKind.MOVE, slot=s.chosen, visit=visit)
        text = t.confirm_move(cx.catalog, visit, s.chosen, cx.today)
        return _ask(replace(s, pending=pending), text, Expecting.CONFIRM), effects
    staff = wish.master_id if wish.master_id is not None else visit.staff_id
    request = FindSlots(
        service_ids=visit.service_ids,
        dates=dates,
        staff_ids=_staff_for(cx, visit.service_ids, staff),
        window=wish.window,
        wanted=wish.time,
        search_days=cx.policy.search_days,
    )
    return _search(s, cx, effects, request)


def _on_visits(s: ConversationState, ev: VisitsFound, cx: _Ctx) -> _Step:
    if s.awaiting is not Awaiting.VISITS:
        return s, []
    upcoming = tuple(sorted((v for v in ev.visits if v.start > cx.now), key=lambda v: v.start))
    return _advance(replace(s, visits=upcoming, awaiting=Awaiting.NOTHING), cx, [])


# --------------------------------------------------------------------------- action outcomes


def _on_booked(s: ConversationState, ev: Booked, cx: _Ctx) -> _Step:
    booking = s.booking
    if booking is None or ev.api_id != booking.api_id:
        return s, []
    slot = Slot(ev.staff_id, ev.start)
    done = replace(booking, record_id=ev.record_id, slot=slot)
    s = _say(s, t.booked(cx.catalog, booking.service_ids, slot, cx.today))
    s = replace(_end_flow(s), booking=None, last_booked=done, awaiting=Awaiting.NOTHING)
    audit = Audit(
        "assistant.booked",
        {
            "api_id": booking.api_id,
            "record_id": ev.record_id,
            "staff_id": ev.staff_id,
            "start": ev.start.isoformat(),
            **_visit_data(cx, booking.service_ids, ev.staff_id),
        },
    )
    return s, [audit]


def _on_pending(s: ConversationState, ev: BookingPending, cx: _Ctx) -> _Step:
    booking = s.booking
    if booking is None or ev.api_id != booking.api_id:
        return s, []
    return _still_unknown(s, booking, cx)


def _still_unknown(s: ConversationState, booking: Booking, cx: _Ctx) -> _Step:
    s = replace(s, awaiting=Awaiting.NOTHING)
    attempts = booking.settle_attempts
    if attempts >= len(cx.policy.settle_delays):
        audit = Audit("assistant.booking_unconfirmed", {"api_id": booking.api_id})
        s = replace(s, booking=None)
        return _hand_over(s, cx, [audit], "booking_unconfirmed", t.booking_not_confirmed())
    effects: list[Effect] = []
    if attempts == 0:
        s = _say(s, t.booking_pending())
        effects.append(Audit("assistant.booking_pending", {"api_id": booking.api_id}))
    s = replace(s, booking=replace(booking, settle_attempts=attempts + 1))
    return s, [*effects, ArmSettle(cx.policy.settle_delays[attempts])]


def _on_settle_due(s: ConversationState, ev: SettleDue, cx: _Ctx) -> _Step:
    waiting_other = s.awaiting not in (Awaiting.NOTHING, Awaiting.BOOK, Awaiting.SETTLE)
    if s.booking is None or waiting_other:
        return s, []
    settle = SettleBooking(s.booking.api_id, start=s.booking.slot.start)
    return replace(s, awaiting=Awaiting.SETTLE), [settle]


def _on_failed(s: ConversationState, ev: ActionFailed, cx: _Ctx) -> _Step:
    if ev.action == "lookup" and s.awaiting is Awaiting.CLIENT:
        return _on_client_found(s, ClientFound(None), cx)  # unknown: asked for a name if needed
    if ev.action == "slots" and s.awaiting is Awaiting.SLOTS:
        s = replace(s, awaiting=Awaiting.NOTHING, searched=None, offered=(), chosen=None)
        return _say(s, t.slots_unavailable()), []
    if ev.action == "visits" and s.awaiting is Awaiting.VISITS:
        s = replace(s, awaiting=Awaiting.NOTHING, visits=None)
        return _say(s, t.visits_unavailable()), []
    if ev.action in ("book", "settle"):
        return _booking_failed(s, ev, cx)
    if ev.action == "cancel" and s.awaiting is Awaiting.CANCEL:
        text = t.visit_gone() if ev.kind is FailureKind.NOT_FOUND else t.cancel_failed()
        return _say(replace(_end_flow(s), awaiting=Awaiting.NOTHING), text), []
    if ev.action == "confirm" and s.awaiting is Awaiting.CONFIRM_VISIT:
        return _confirm_failed(s, ev)
    if ev.action == "move" and s.awaiting is Awaiting.MOVE:
        s = replace(s, awaiting=Awaiting.NOTHING)
        if ev.kind is FailureKind.TAKEN:
            s = _say(replace(s, chosen=None, offered=(), searched=None), t.move_taken())
            offer = _distinct(list(ev.alternatives), ())[: cx.policy.max_options]
            if offer:
                return _offer(s, cx, tuple(offer)), []
            return _advance(s, cx, [])
        text = t.visit_gone() if ev.kind is FailureKind.NOT_FOUND else t.move_failed()
        return _say(_end_flow(s), text), []
    return s, []


def _booking_failed(s: ConversationState, ev: ActionFailed, cx: _Ctx) -> _Step:
    booking = s.booking
    if booking is None or s.awaiting not in (Awaiting.BOOK, Awaiting.SETTLE):
        return s, []
    if ev.action == "settle" and ev.kind is not FailureKind.NOT_FOUND:
        return _still_unknown(s, booking, cx)  # YClients still does not say: ask again later
    s = replace(s, booking=None, awaiting=Awaiting.NOTHING)
    if ev.kind is FailureKind.UNAVAILABLE:  # nothing was created: the same "да" may retry
        pending = Pending(
            ConfirmKind.BOOK,
            slot=booking.slot,
            service_ids=booking.service_ids,
            client_name=booking.client_name,
            api_id=booking.api_id,
        )
        s = replace(s, pending=pending, chosen=booking.slot)
        return _ask(s, t.booking_unavailable(), Expecting.CONFIRM), []
    if ev.kind is FailureKind.REFUSED:
        return _hand_over(s, cx, [], "booking_refused", t.booking_refused())
    audit = Audit("assistant.booking_failed", {"api_id": booking.api_id, "kind": ev.kind.value})
    s = replace(s, chosen=None, offered=(), searched=None)
    if s.flow is None:  # restored from an old state: offer again from what was booked
        s = replace(
            s,
            flow=Flow.BOOK,
            wish=Wish(
                service_ids=booking.service_ids,
                dates=(cx.local(booking.slot.start).date(),),
            ),
        )
    if ev.kind is FailureKind.TAKEN:
        taken = booking.slot
        same = [
            a for a in ev.alternatives if a.start == taken.start and a.staff_id != taken.staff_id
        ]
        if same and s.wish.master_id is None:
            # any master will do: the same time with another master beats another time
            master = _master_name(cx, taken.staff_id)
            s = _say(s, t.time_taken(cx.local(taken.start), master, cx.today))
            return _book_ready(replace(s, chosen=same[0]), cx, [audit])
        s = _say(s, t.time_just_taken())
        offer = _distinct([a for a in ev.alternatives if a.start != taken.start], ())
        offer = offer[: cx.policy.max_options]
        if offer:
            return _offer(s, cx, tuple(offer)), [audit]
    else:
        s = _say(s, t.booking_not_made())
    s, effects = _advance(s, cx, [audit])
    return s, effects


def _on_cancelled(s: ConversationState, ev: VisitCancelled, cx: _Ctx) -> _Step:
    visit = s.chosen_visit
    if s.awaiting is not Awaiting.CANCEL or visit is None or visit.record_id != ev.record_id:
        return s, []
    s = _say(s, t.cancelled(cx.catalog, visit, cx.today))
    s = replace(_end_flow(s), awaiting=Awaiting.NOTHING)
    if s.prompt is not None and s.prompt.record_id == ev.record_id:
        s = replace(s, prompt=None)
    data = {
        "record_id": ev.record_id,
        "start": visit.start.isoformat(),
        **_visit_data(cx, visit.service_ids, visit.staff_id, visit.service_titles),
    }
    return s, [Audit("assistant.cancelled", data)]


def _on_moved(s: ConversationState, ev: VisitMoved, cx: _Ctx) -> _Step:
    visit = s.chosen_visit
    if s.awaiting is not Awaiting.MOVE or visit is None or visit.record_id != ev.record_id:
        return s, []
    slot = Slot(ev.staff_id, ev.start)
    s = _say(s, t.moved(cx.catalog, visit, slot, cx.today))
    s = replace(_end_flow(s), awaiting=Awaiting.NOTHING)
    if s.prompt is not None and s.prompt.record_id == ev.record_id:
        s = replace(s, prompt=None)
    audit = Audit(
        "assistant.moved",
        {
            "record_id": ev.record_id,
            "staff_id": ev.staff_id,
            "start": ev.start.isoformat(),
            "from": visit.start.isoformat(),
            **_visit_data(cx, visit.service_ids, ev.staff_id, visit.service_titles),
        },
    )
    return s, [audit]


_HANDLERS: dict[type, Callable[[ConversationState, Any, _Ctx], _Step]] = {
    ClientTurn: _on_turn,
    NonTextTurn: _on_non_text,
    ClientFound: _on_client_found,
    SlotsFound: _on_slots,
    VisitsFound: _on_visits,
    Booked: _on_booked,
    BookingPending: _on_pending,
    SettleDue: _on_settle_due,
    ActionFailed: _on_failed,
    VisitCancelled: _on_cancelled,
    VisitMoved: _on_moved,
    VisitConfirmed: _on_visit_confirmed,
}
