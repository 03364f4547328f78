"""The conversation actor: one per (salon, client phone), a virtual actor in its own registry.

What a turn is. A client's messages are collected while they keep typing: the turn starts
once ``AIADMIN_ASSISTANT_WAIT`` seconds pass with no new message (at most four waits after
the first), so a burst of short messages is answered once, joined. Turns run one at a time
(the actor handles one message at a time), and each one:

1. reads the company row (the assistant may have been switched off: ``ai_enabled``) and the
   stored conversation (state, mode, version: the salon may have taken the chat over through
   the API since the last turn) — the actor itself keeps nothing between turns but the burst;
2. stays silent when a person answers (``handoff`` until ``mode_until``; a handoff past its
   time gives the chat back) or the client opted out (unless the new message asks to book);
3. understands the text (``Understander``, the rules by default), or notes a media message;
4. runs ``decide`` and its effects in order: a query or an action goes to YClients
   (``YClientsOperations``) and its outcome back into ``decide`` at once; replies go through
   the company actor's outbound queue (pacing, our message ids, exactly once); ``SetMode`` is
   stored, audited and counted; ``ArmSettle`` arms a timer in this actor;
5. stores the new state with the version it read (``Conversations.save``).
6. with a reminder planner (the node sends reminders), plans the reminders of the visits
   YClients booked, moved or cancelled for it this turn (``_own_visits``; never failing the
   turn).

Reminders and review requests are sent by the reminder scheduler, which then tells the
conversation (``Assistant.note_sent_prompt``): the prompt is kept in the state, so the client's
next replies are read in its light (``_prompts``, ``_decide``). A chat the client opted out of
or a person has taken over gets none (``may_prompt``). A rating is stored through
``storage.reviews``; a low one (1–3) is audited and counted
(``aiadmin_assistant_low_ratings_total``) and shows in the conversations API.

A booking survives a crash: the state holding the booking and its ``api_id`` is stored
*before* ``Book`` is sent, and an actor that starts with such a state settles it by
``api_id`` first (``ConversationState.settle_due_on_start``), so a second record is never
made and "записал" is said only after YClients returned the record.

A crash affects only this conversation (the registry restarts it, then quarantines it, as
for companies); an idle conversation is passivated, holding nothing but its key.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import trio

from config import Settings
from metrics import MetricsRegistry
from runtime import Actor, ActorUnavailable, Registry, Restart, RestartPolicy
from storage import Company, Conflict, Conversation, ConversationMode, Storage, StorageError

from .._phones import InvalidPhone, normalise_phone
from ..reminders._settings import InvalidReminderSettings, ReminderSettings
from ..whatsapp import InboundMessage, StaffMessage
from ._catalog import AssistantCatalog
from ._catalog_source import CatalogSource
from ._commands import Flow, StartFlow, TurnContext, Understander
from ._effects import (
    ArmSettle,
    Audit,
    Book,
    ClientTurn,
    Effect,
    Event,
    NonTextTurn,
    Reply,
    SaveRating,
    SetMode,
    SettleDue,
)
from ._llm_prompt import HISTORY_MESSAGES
from ._operations import Party, QueryEffect, YClientsOperations, unanswered
from ._own_visits import VISIT_CHANGES, plan_own_changes
from ._policy import Policy
from ._prompts import Prompt, PromptKind, may_prompt
from ._state import ConversationState
from ._sweep import ConversationSweep

if TYPE_CHECKING:
    from ..reminders import ReminderPlanner
    from ._llm_understander import ModelUnderstanders
    from ._model_policy import ModelPolicy

__all__ = [
    "Assistant",
    "AssistantOptions",
    "ClientWrote",
    "ConversationActor",
    "ConversationDeps",
    "ConversationMetrics",
    "DecideFn",
    "PromptSent",
    "SendReply",
    "StaffWrote",
]

log = logging.getLogger(__name__)

#: ``decide(state, event, catalog, policy, now) → (state, effects)`` (``_decide.decide``).
DecideFn = Callable[
    [ConversationState, Event, AssistantCatalog, Policy, dt.datetime],
    tuple[ConversationState, Sequence[Effect]],
]
#: Queue a reply in the company's outbound queue: ``send(company_id, phone, text)``.
SendReply = Callable[[int, str, str], Awaitable[None]]

CONVERSATION_MAILBOX = 64
#: A burst is answered at the latest this many waits after its first message.
MAX_BURST_WAITS = 4
#: Messages joined into one turn, at most (the rest start the next turn).
MAX_BURST_MESSAGES = 20
#: Decisions in one turn, at most: more means ``decide`` loops, a bug (the actor crashes).
MAX_STEPS = 64
#: An idle conversation actor is passivated after this long (it holds nothing but its key).
IDLE_SECONDS = 120.0
REPLY_TIMEOUT = 10.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ClientWrote:
    """A message from the client (text, or media with its caption), as the company actor got
    it; ``received`` is the trio time it reached us (for the reply latency)."""

    message_id: str
    text: str
    kind: str
    received: float


@dataclass(frozen=True)
class StaffWrote:
    """The salon's staff wrote to this client from the linked phone."""


@dataclass(frozen=True)
class PromptSent:
    """The salon sent this client a reminder or a review request (``Assistant.note_sent_prompt``);
    the actor answers whether it was noted."""

    prompt: Prompt
    #: The company row as the sender read it a moment ago (``None``: the actor reads it).
    company: Company | None = None


@dataclass(frozen=True)
class _TurnDue:
    generation: int


@dataclass(frozen=True)
class _SettleDue:
    generation: int


@dataclass
class ConversationMetrics:
    """What the conversation actors count (registered once per node)."""

    registry: MetricsRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.turns = r.counter(
            "aiadmin_assistant_turns_total", "Client turns the assistant handled", ("outcome",)
        )
        self.replies = r.counter("aiadmin_assistant_replies_total", "Replies the assistant queued")
        self.reply_seconds = r.histogram(
            "aiadmin_assistant_reply_seconds",
            "From a client's last message of a turn to the reply being queued",
        )
        self.handoffs = r.counter(
            "aiadmin_assistant_handoffs_total", "Chats handed to a person", ("reason",)
        )
        self.send_failures = r.counter(
            "aiadmin_assistant_send_failures_total", "Replies the outbound queue refused"
        )
        self.low_ratings = r.counter(
            "aiadmin_assistant_low_ratings_total",
            "Visits clients rated 1-3 after a review request (the salon is told)",
        )


@dataclass
class ConversationDeps:
    """What every conversation actor of a node shares."""

    settings: Settings
    storage: Storage
    catalogs: CatalogSource
    operations: YClientsOperations | None
    understander: Understander
    decide: DecideFn
    send: SendReply
    metrics: ConversationMetrics
    wall_clock: Callable[[], dt.datetime] = utc_now
    #: Plans the reminders of visits the assistant booked, moved or cancelled, or ``None``.
    planner: ReminderPlanner | None = None
    #: The model understanding (``_llm_understander``) when the node has one, else ``None``.
    models: ModelUnderstanders | None = None
    #: Told ``(company_id, phone)`` after this actor stored a new mode for the chat (the node
    #: tells the company actor, whose salon-page viewers show it); never blocks.
    changed: Callable[[int, str], None] | None = None


@dataclass
class _Turn:
    """What one turn works with (read at its start)."""

    catalog: AssistantCatalog
    state: ConversationState
    version: int
    now: dt.datetime  # aware, the salon's zone
    received: float | None = None  # trio time of the turn's last message
    #: Bookings, moves and cancels YClients confirmed this turn (their reminders are planned
    #: after the turn).
    changes: list[Event] = field(default_factory=list)


class ConversationActor(Actor):
    """One client's conversation with one salon (see the module docstring)."""

    def __init__(self, key: tuple[int, str], deps: ConversationDeps) -> None:
        self.company_id, self.phone = key
        self.deps = deps
        self._burst: list[ClientWrote] = []
        self._burst_started = 0.0
        self._turn_generation = 0
        self._turn_timer: trio.CancelScope | None = None
        self._settle_generation = 0
        self._settle_timer: trio.CancelScope | None = None
        #: The row ``on_start`` read, for the first message only (wrapped: it may be None).
        self._started_row: tuple[Conversation | None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_start(self) -> None:
        row = await self.deps.storage.conversations.get(self.company_id, self.phone)
        self._started_row = (row,)
        if row is not None and ConversationState.from_json(row.state).settle_due_on_start:
            # A booking was sent and its outcome never came back (a crash, a restart): settle
            # it by api_id before anything else is said.
            self._arm_settle(0.0)

    def keep_alive(self) -> bool:
        return bool(self._burst) or self._settle_timer is not None

    async def receive(self, message: Any) -> Any:
        # the row read at activation is as fresh as a read now only for the first message
        started, self._started_row = self._started_row, None
        match message:
            case ClientWrote():
                self._collect(message)
            case _TurnDue(generation=generation):
                if generation == self._turn_generation and self._burst:
                    await self._client_turn()
            case _SettleDue(generation=generation):
                if generation == self._settle_generation:
                    self._settle_timer = None
                    await self._settle()
            case StaffWrote():
                await self._staff_wrote()
            case PromptSent(prompt=prompt, company=company):
                return await self._note_prompt(prompt, company, started)
            case _:
                raise TypeError(f"conversation actor got {type(message).__name__}")
        return None

    # -- the burst ---------------------------------------------------------------------------

    def _collect(self, message: ClientWrote) -> None:
        wait = self.deps.settings.assistant.wait
        now = trio.current_time()
        if not self._burst:
            self._burst_started = now
        self._burst.append(message)
        if len(self._burst) >= MAX_BURST_MESSAGES:
            self._arm_turn(0.0)
            return
        latest = self._burst_started + MAX_BURST_WAITS * wait
        self._arm_turn(max(0.0, min(wait, latest - now)))

    def _arm_turn(self, delay: float) -> None:
        if self._turn_timer is not None:
            self._turn_timer.cancel()
        self._turn_generation += 1
        scope = self._turn_timer = trio.CancelScope()
        self.nursery.start_soon(self._fire, scope, delay, _TurnDue(self._turn_generation))

    def _arm_settle(self, delay: float) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
        self._settle_generation += 1
        scope = self._settle_timer = trio.CancelScope()
        self.nursery.start_soon(self._fire, scope, delay, _SettleDue(self._settle_generation))

    async def _fire(self, scope: trio.CancelScope, delay: float, message: object) -> None:
        with scope:
            await trio.sleep(delay)
            with contextlib.suppress(ActorUnavailable):  # stopping: it dies with the actor
                await self.ref.send(message)

    # -- turns -------------------------------------------------------------------------------

    async def _begin(
        self,
        company: Company | None = None,
        stored: tuple[Conversation | None] | None = None,
    ) -> tuple[_Turn, Conversation | None] | None:
        """The turn's company, catalog and stored conversation; ``None`` when the assistant
        does not run for this company. ``company`` and ``stored`` (the conversation row)
        when read a moment ago; else they are read here."""
        storage = self.deps.storage
        if company is None:
            company = await storage.companies.get(self.company_id)
        if company is None or not company.ai_enabled or company.integration_status == "uninstalled":
            return None
        catalog = await self.deps.catalogs.get(company)
        now = self.deps.wall_clock().astimezone(catalog.salon.zone)
        if stored is not None:
            (row,) = stored
        else:
            row = await storage.conversations.get(self.company_id, self.phone)
        state, version = ConversationState(), 0
        if row is not None:
            version = row.version
            idle = dt.timedelta(days=self.deps.settings.assistant.idle_days)
            touched = row.updated_at or row.last_message_at
            if touched is None or now - touched < idle:
                state = ConversationState.from_json(row.state)
        return _Turn(catalog, state, version, now), row

    async def _client_turn(self) -> None:
        burst, self._burst = self._burst, []
        self._turn_timer = None
        begun = await self._begin()
        if begun is None:
            self.deps.metrics.turns.labels("assistant_off").inc()
            return
        turn, row = begun
        turn.received = burst[-1].received
        texts = [m.text.strip() for m in burst if m.text.strip()]
        text = "\n".join(texts)
        event: Event
        if texts:
            quiet = row is not None and _silent(row, turn.now)
            understander, context = await self._understander(
                burst, turn.state.context(), rules_only=quiet
            )
            commands = await understander.understand(text, context, turn.catalog, turn.now)
            event = ClientTurn(text, commands, turn.now)
        else:
            event = NonTextTurn(turn.now, burst[-1].kind)
        mode = row.mode if row is not None else ConversationMode.ASSISTANT
        if mode is ConversationMode.HANDOFF:
            until = row.mode_until if row is not None else None
            if until is None or until > turn.now:
                self.deps.metrics.turns.labels("handoff").inc()
                await self._touch(turn)
                return
            turn.version = await self._set_mode(turn, ConversationMode.ASSISTANT, None, "expired")
        elif mode is ConversationMode.OPTED_OUT:
            asks_to_book = isinstance(event, ClientTurn) and any(
                isinstance(c, StartFlow) and c.flow is Flow.BOOK for c in event.commands
            )
            if not asks_to_book:
                self.deps.metrics.turns.labels("opted_out").inc()
                await self._touch(turn)
                return
            turn.version = await self._set_mode(turn, ConversationMode.ASSISTANT, None, "rebook")
        self.deps.metrics.turns.labels("answered").inc()
        await self._run(turn, event)

    async def _understander(
        self, burst: Sequence[ClientWrote], context: TurnContext, *, rules_only: bool = False
    ) -> tuple[Understander, TurnContext]:
        """The turn's understanding: the salon's model when it has one now (told the
        conversation's last messages), else the rules alone (always for ``rules_only``: a
        chat a person answers or the client opted out of sends no text to a model)."""
        rules = self.deps.understander
        models = self.deps.models
        if models is None or rules_only:
            return rules, context
        model = await models.for_company(self.company_id, rules)
        if model is None:
            return rules, context
        history: tuple[tuple[str, str], ...] = ()
        current = {m.message_id for m in burst}
        try:
            recent = await self.deps.storage.messages.recent(
                self.company_id, HISTORY_MESSAGES + len(burst), peer_phone=self.phone
            )
        except StorageError as exc:  # the model reads the message without them
            log.warning("company %s: recent messages not read: %s", self.company_id, exc)
        else:
            history = tuple(
                ("client" if m.direction == "in" else "assistant", m.text)
                for m in reversed(recent)
                if m.wa_message_id not in current
            )[-HISTORY_MESSAGES:]
        return model, replace(context, history=history)

    async def _settle(self) -> None:
        begun = await self._begin()
        if begun is None:
            return
        turn, _ = begun
        if turn.state.booking is None:
            return  # settled meanwhile
        await self._run(turn, SettleDue())

    async def _staff_wrote(self) -> None:
        """A person from the salon is writing to this client: keep quiet for a while."""
        minutes = self.deps.settings.assistant.staff_silence_minutes
        if minutes <= 0:
            return
        storage = self.deps.storage
        row = await storage.conversations.get(self.company_id, self.phone)
        if row is not None and row.mode is ConversationMode.OPTED_OUT:
            return
        until = self.deps.wall_clock() + dt.timedelta(minutes=minutes)
        if (
            row is not None
            and row.mode is ConversationMode.HANDOFF
            and (row.mode_until is None or row.mode_until >= until)
        ):
            return  # already silent for at least that long
        await storage.conversations.set_mode(
            self.company_id, self.phone, ConversationMode.HANDOFF, until=until
        )
        await storage.audit.append(
            self.company_id,
            "assistant.staff_silence",
            {"phone": self.phone, "until": until.isoformat()},
        )
        self._mode_changed()

    async def _note_prompt(
        self,
        prompt: Prompt,
        company: Company | None = None,
        stored: tuple[Conversation | None] | None = None,
    ) -> bool:
        """Keep ``prompt`` in the stored state (see ``PromptSent``); ``False`` when the chat
        takes none (opted out, handed to a person, the assistant is off)."""
        begun = await self._begin(company, stored)
        if begun is None:
            return False
        turn, row = begun
        if not may_prompt(row, turn.now):
            return False
        turn.state = turn.state.noted(prompt)
        await self._save(turn)
        return True

    # -- decide and its effects --------------------------------------------------------------

    async def _policy(self, state: ConversationState) -> Policy:
        """The knobs of this turn; the salon's reminder settings when a rating may come."""
        policy = Policy(
            handoff_for=dt.timedelta(minutes=self.deps.settings.assistant.handoff_minutes),
            conversation_key=f"{self.company_id}:{self.phone}",
        )
        if state.prompt is not None and state.prompt.kind is PromptKind.REVIEW:
            stored = await self.deps.storage.reminder_settings.get(self.company_id)
            if stored is not None:
                try:
                    policy = replace(policy, reminders=ReminderSettings.from_json(stored))
                except InvalidReminderSettings as exc:  # written by an older version: defaults
                    log.warning(
                        "company %s: reminder settings unreadable: %s", self.company_id, exc
                    )
        return policy

    async def _run(self, turn: _Turn, event: Event) -> None:
        """Feed ``event`` to ``decide`` and carry out the effects, outcomes fed back at once;
        then store the state."""
        policy = await self._policy(turn.state)
        decide = self.deps.decide
        state, effects = decide(turn.state, event, turn.catalog, policy, turn.now)
        turn.state = state
        pending = collections.deque(effects)
        steps = 0
        while pending:
            effect = pending.popleft()
            if isinstance(effect, QueryEffect):
                steps += 1
                if steps > MAX_STEPS:
                    raise RuntimeError(f"decide asked for more than {MAX_STEPS} queries in a turn")
                if isinstance(effect, Book):
                    await self._save(turn)  # the booking and its api_id first: see the docstring
                outcome = await self._carry_out(effect, turn)
                turn.state, more = decide(turn.state, outcome, turn.catalog, policy, turn.now)
                pending.extendleft(reversed(more))
            else:
                await self._apply(effect, turn)
        await self._save(turn)
        planner = self.deps.planner
        if turn.changes and planner is not None:
            await plan_own_changes(
                self.deps.storage, self.deps.operations, planner, self.company_id, turn.changes
            )

    async def _carry_out(self, effect: QueryEffect, turn: _Turn) -> Event:
        operations = self.deps.operations
        if operations is None:
            return unanswered(effect)
        party = Party(turn.catalog, self.phone, turn.state.client_id)
        outcome = await operations.carry_out(effect, party, turn.now)
        if isinstance(outcome, VISIT_CHANGES):
            turn.changes.append(outcome)
        return outcome

    async def _apply(self, effect: Effect, turn: _Turn) -> None:
        match effect:
            case Reply(text=text):
                await self._reply(text, turn)
            case SetMode(mode=mode, until=until, reason=reason):
                turn.version = await self._set_mode(turn, mode, until, reason)
            case Audit(kind=kind, data=data):
                await self.deps.storage.audit.append(
                    self.company_id, kind, {**data, "phone": self.phone}
                )
            case ArmSettle(delay=delay):
                self._arm_settle(delay)
            case SaveRating():
                await self.deps.storage.reviews.save_rating(
                    self.company_id,
                    effect.record_id,
                    effect.visit_id,
                    self.phone,
                    effect.rating,
                    effect.comment or None,
                )
                if effect.notify:
                    self.deps.metrics.low_ratings.inc()
            case _:
                raise TypeError(f"unhandled assistant effect {effect!r}")

    async def _reply(self, text: str, turn: _Turn) -> None:
        try:
            await self.deps.send(self.company_id, self.phone, text)
        except Exception as exc:  # the company cannot send now (not linked, queue full ...)
            self.deps.metrics.send_failures.inc()
            log.warning(
                "company %s: reply to a client not queued: %s", self.company_id, type(exc).__name__
            )
            return
        self.deps.metrics.replies.inc()
        if turn.received is not None:
            self.deps.metrics.reply_seconds.observe(trio.current_time() - turn.received)
            turn.received = None  # the latency is to the turn's first reply

    async def _set_mode(
        self, turn: _Turn, mode: ConversationMode, until: dt.datetime | None, reason: str
    ) -> int:
        """Store who answers now (the salon is told through the audit log, the metric and the
        conversations API); returns the row's new version."""
        row = await self.deps.storage.conversations.set_mode(
            self.company_id,
            self.phone,
            mode,
            until=until,
            needs_person=mode is ConversationMode.HANDOFF,
        )
        data: dict[str, Any] = {"phone": self.phone, "mode": mode.value, "reason": reason}
        if until is not None:
            data["until"] = until.isoformat()
        await self.deps.storage.audit.append(self.company_id, f"assistant.{mode.value}", data)
        if mode is ConversationMode.HANDOFF:
            self.deps.metrics.handoffs.labels(reason or "unknown").inc()
        self._mode_changed()
        return row.version

    def _mode_changed(self) -> None:
        """Tell the node the chat's mode changed (``ConversationDeps.changed``)."""
        if self.deps.changed is not None:
            self.deps.changed(self.company_id, self.phone)

    async def _save(self, turn: _Turn) -> None:
        """Store the state with the version read; someone else's write in between (the salon
        switching the mode) only bumps the version, so the state is written on top of it."""
        conversations = self.deps.storage.conversations
        for _ in range(3):
            try:
                row = await conversations.save(
                    self.company_id,
                    self.phone,
                    state=turn.state.to_json(),
                    expected_version=turn.version,
                    client_name=turn.state.client_name,
                    last_message_at=turn.now,
                )
            except Conflict:
                current = await conversations.get(self.company_id, self.phone)
                turn.version = current.version if current is not None else 0
                continue
            turn.version = row.version
            return
        raise StorageError(f"conversation {self.company_id}/{self.phone}: save kept conflicting")

    async def _touch(self, turn: _Turn) -> None:
        """Note the client's message on a conversation the assistant stays silent in."""
        await self._save(turn)


def _silent(row: Conversation, now: dt.datetime) -> bool:
    """Whether the assistant stays silent in this chat now (a person answers, or the client
    opted out): its messages are then read by the rules only."""
    if row.mode is ConversationMode.OPTED_OUT:
        return True
    return row.mode is ConversationMode.HANDOFF and (row.mode_until is None or row.mode_until > now)


@dataclass(frozen=True)
class AssistantOptions:
    """How a node's assistant is made: the YClients client it books through (``None``:
    answers from the catalog only), and, for tests, the understanding, the decisions and
    the wall clock."""

    yclients: Any = None  # a BookingApi (actors.yclients.YClientsClient in production)
    understander: Understander | None = None
    #: Which salons understand with a language model, and their token spending: used when
    #: the node has a model API (``settings.llm``); ``None``: ``SalonModelPolicy`` (each
    #: salon's stored choice and daily cap, through the admin API).
    model_policy: ModelPolicy | None = None
    llm_transport: Any = None  # tests: an httpx transport for the model API
    decide: DecideFn | None = None
    wall_clock: Callable[[], dt.datetime] = utc_now
    catalog_ttl: float = 120.0
    slots_ttl: float = 60.0


@dataclass
class Assistant:
    """The node's assistant: the registry of conversation actors and its housekeeping (node
    children), and the inbound handler that routes each client's messages to their
    conversation."""

    registry: Registry[tuple[int, str]]
    deps: ConversationDeps
    #: Idle state cleared on a schedule (a node child), unsettled bookings woken at start.
    sweep: ConversationSweep
    _dropped: int = field(default=0)

    @classmethod
    def build(
        cls,
        settings: Settings,
        storage: Storage,
        send: SendReply,
        options: AssistantOptions,
        *,
        metrics: MetricsRegistry,
        policy: RestartPolicy,
        rng: random.Random,
        planner: ReminderPlanner | None = None,
    ) -> Assistant:
        """An assistant whose replies go out through ``send``; with ``planner`` the visits it
        books, moves or cancels have their reminders planned (or dropped) at once."""
        from ._slot_cache import SlotCache

        understander = options.understander
        if understander is None:
            from ._understand import RuleUnderstander

            understander = RuleUnderstander()
        decide = options.decide
        if decide is None:
            from ._decide import decide as rules_decide

            decide = rules_decide
        models = None
        if settings.llm.base_url is not None:
            from ._llm_client import LlmClient
            from ._llm_understander import LlmMetrics, ModelUnderstanders
            from ._model_policy import SalonModelPolicy, TokenMetrics

            llm_metrics = LlmMetrics(metrics)
            model_policy = options.model_policy or SalonModelPolicy(
                storage,
                settings.llm.model or None,
                metrics=TokenMetrics(metrics),
                now=options.wall_clock,
                max_daily_tokens=settings.llm.max_daily_tokens,
                models=settings.llm.models,
                fallbacks=llm_metrics.fallbacks,
            )

            client = LlmClient(
                settings.llm.base_url,
                settings.llm.api_key,
                timeout=settings.llm.timeout,
                transport=options.llm_transport,
            )
            models = ModelUnderstanders(client, model_policy, llm_metrics)
        operations = None
        if options.yclients is not None:
            cache = SlotCache(ttl=options.slots_ttl, clock=trio.current_time)
            operations = YClientsOperations(options.yclients, cache, metrics=metrics)
        deps = ConversationDeps(
            settings=settings,
            storage=storage,
            catalogs=CatalogSource(storage, ttl=options.catalog_ttl, clock=trio.current_time),
            operations=operations,
            understander=understander,
            decide=decide,
            send=send,
            metrics=ConversationMetrics(metrics),
            wall_clock=options.wall_clock,
            planner=planner,
            models=models,
        )
        registry: Registry[tuple[int, str]] = Registry(
            "conversations",
            lambda key: ConversationActor(key, deps),
            idle_timeout=IDLE_SECONDS,
            policy=policy,
            restart=Restart.TRANSIENT,
            mailbox_capacity=CONVERSATION_MAILBOX,
            rng=rng,
        )
        sweep = ConversationSweep(
            storage,
            registry,
            idle=dt.timedelta(days=settings.assistant.idle_days),
            wall_clock=options.wall_clock,
        )
        return cls(registry, deps, sweep)

    async def aclose(self) -> None:
        """Release what the assistant holds beyond its actors: the model client's connection
        pool (called by the node once its tree has stopped)."""
        if self.deps.models is not None:
            await self.deps.models.client.aclose()

    async def handle_inbound(self, company_id: int, message: InboundMessage | StaffMessage) -> None:
        """The company actors' inbound handler: the message to its conversation's actor."""
        phone_text = (
            message.sender_phone if isinstance(message, InboundMessage) else message.to_phone
        )
        try:
            phone = normalise_phone(phone_text, region=None)
        except InvalidPhone:
            log.info("company %s: a message from a number we cannot read, ignored", company_id)
            return
        note: ClientWrote | StaffWrote
        if isinstance(message, InboundMessage):
            note = ClientWrote(message.message_id, message.text, message.kind, trio.current_time())
        else:
            note = StaffWrote()
        try:
            await self.registry.ref((company_id, phone)).send(note)
        except ActorUnavailable as exc:  # quarantined or stopping: this chat only
            self._dropped += 1
            log.warning("company %s: conversation unavailable: %s", company_id, exc)

    async def note_sent_prompt(
        self, company_id: int, phone: str, prompt: Prompt, *, company: Company | None = None
    ) -> bool:
        """The reminder scheduler handed ``prompt`` (a reminder or a review request) to the
        company's outbound queue: the client's conversation keeps it, so their next reply is
        read in its light. ``False`` when not noted (the chat is opted out or handed over, the
        assistant is off for the company, or the conversation is unavailable). ``company``:
        the company row if the caller has just read it (spares the conversation a read)."""
        try:
            key = (company_id, normalise_phone(phone, region=None))
        except InvalidPhone:
            log.info("company %s: a prompt to a number we cannot read, not noted", company_id)
            return False
        try:
            if company is not None and company.id != company_id:
                company = None  # another company's row: never used for this one
            noted = await self.registry.ref(key).ask(PromptSent(prompt, company))
        except ActorUnavailable as exc:
            log.warning("company %s: prompt not noted: %s", company_id, exc)
            return False
        return bool(noted)

    async def may_prompt(self, company_id: int, phone: str, now: dt.datetime | None = None) -> bool:
        """Whether a reminder or review request may go to this client now (``may_prompt``);
        never to a number we cannot read."""
        try:
            number = normalise_phone(phone, region=None)
        except InvalidPhone:
            return False
        row = await self.deps.storage.conversations.get(company_id, number)
        return may_prompt(row, now if now is not None else self.deps.wall_clock())

    def record_changed(self, salon_id: int) -> None:
        """A record of the salon changed in YClients (webhook): drop its cached free times."""
        if self.deps.operations is not None:
            self.deps.operations.record_changed(salon_id)

    def catalog_synced(self, company_id: int) -> None:
        """The company's catalog was synced: the next turn reads the new one."""
        self.deps.catalogs.invalidate(company_id)
