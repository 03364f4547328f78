"""``CompanyActor``: one salon, owning its WhatsApp session, QR timer, send queue and viewers.

The actor feeds every input (commands, session events, timer fires) through the pure
``decide`` function and carries out the effects it returns, in order. It is the only writer of
its company's status in this node, so the persisted status always follows the decisions.

Timers and the session's event pump live in the actor's nursery: a crash of any of them is a
crash of the actor, which the registry restarts (state reloaded from storage in ``on_start``;
a linked company gets its session back). The session is closed on every exit, crash included.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import trio

from config import Settings
from metrics import MetricsRegistry
from runtime import Actor, ActorUnavailable, Backoff
from storage import Company, Conflict, Storage, StorageError, SyncState

from .._business_log import BusinessEvent, FromRequest, log_event, serving_request
from .._phones import InvalidPhone, normalise_phone
from ..qr import qr_png_data_url
from ..whatsapp import (
    Connected,
    ConnectFailed,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    Linked,
    LoggedOut,
    PairingFailed,
    QrCode,
    SessionEvent,
    SessionLost,
    SessionNotConnected,
    SessionState,
    StaffMessage,
    StreamReplaced,
    TemporaryBan,
    WhatsAppError,
    WhatsAppGateway,
    WhatsAppSession,
    new_message_id,
)
from . import _messages as m
from . import _transitions as t
from ._errors import (
    CompanyError,
    CompanyNotFound,
    OutboundQueueFull,
    OwnedElsewhere,
    SendingUnavailable,
)
from ._flood import FloodLimit
from ._outbound import OutboundQueue, Outgoing, Pacer

log = logging.getLogger(__name__)

OUTBOUND_QUEUE_LIMIT = 500
# Reconnect attempt n waits 2**(n-1) s (1, 2, 4, ... capped at 60) ± 30 %: jitter from the first
# attempt, so thousands of sessions dropped by one outage do not all dial back at once.
RECONNECT_BACKOFF = Backoff(initial=1.0, maximum=60.0, jitter=0.3)
INBOUND_FLOOD_LIMIT = 20  # messages per client phone per minute handed to the handler
INBOUND_FLOOD_WINDOW = 60.0  # seconds (the table forgets a client's window once it ended)
#: Inbound messages waiting back to back in the session are recorded in one write of at most
#: this many (a backlog of 10,000 delivered at once is 50 writes, not 10,000; each write is
#: atomic and keeps the order, so a crash never leaves a gap or a reordering).
INBOUND_BATCH = 200
#: The persisted transitions (their audit names) operators follow as business events; each
#: is logged once, after it is stored (``actors._business_log``).
BUSINESS_EVENTS = {
    "linking_started": BusinessEvent.LINKING_STARTED,
    "linking_expired": BusinessEvent.QR_EXPIRED,
    "whatsapp_linked": BusinessEvent.LINKED,
    "whatsapp_logged_out": BusinessEvent.UNLINKED,
    "whatsapp_logged_out_by_salon": BusinessEvent.UNLINKED,
    "app_frozen": BusinessEvent.FROZEN,
    "app_uninstalled": BusinessEvent.UNINSTALLED,
}

#: Gets every message of a client's chat that the assistant must know of: what the client
#: wrote (text or media, already in the message log), and what the salon's staff wrote to the
#: client from the linked phone themselves.
InboundHandler = Callable[[int, InboundMessage | StaffMessage], Awaitable[None]]


async def record_only(company_id: int, message: InboundMessage | StaffMessage) -> None:
    """The inbound handler of a node without the assistant: the message is already logged."""


@dataclass
class CompanyMetrics:
    """Counters the company actors feed (registered once per node)."""

    registry: MetricsRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.qr_issued = r.counter("aiadmin_qr_codes_issued_total", "QR codes shown to viewers")
        self.messages = r.counter(
            "aiadmin_whatsapp_messages_total", "WhatsApp messages", ("direction",)
        )
        self.flood_dropped = r.counter(
            "aiadmin_inbound_flood_dropped_total", "Inbound messages over the per-client limit"
        )
        self.links = r.counter("aiadmin_whatsapp_links_total", "WhatsApp devices linked")


@dataclass
class CompanyDeps:
    """Everything a company actor needs from its node, shared by all of them."""

    storage: Storage
    gateway: WhatsAppGateway
    settings: Settings
    metrics: CompanyMetrics
    inbound_handler: InboundHandler = record_only
    rng: random.Random = field(default_factory=random.Random)
    #: Serialises QR image rendering across the node's actors (see ``_show_qr``).
    qr_lane: trio.Lock = field(default_factory=trio.Lock)
    #: Also hands every viewer frame to the node (cluster mode publishes it on
    #: ``company:{id}:events`` for viewers connected to other processes); ``None`` alone.
    publish: Callable[[int, dict[str, Any]], None] | None = None
    #: Cluster mode: takes the company's lease, returning ``None`` if the actor may run here,
    #: else the owning node's id (the actor then refuses every message and stops).
    place: Callable[[int], Awaitable[str | None]] | None = None
    #: Cluster mode: the storage an actor writes through once ``place`` let it run here, every
    #: write fenced by its lease's epoch (``Placement.storage_for``): after another node took
    #: the lease, the old actor's writes are refused (``StaleEpoch``) and it is stopped.
    fence: Callable[[int], Storage] | None = None


@dataclass(frozen=True)
class _SessionEvent:
    generation: int
    event: SessionEvent


@dataclass(frozen=True)
class _InboundBurst:
    generation: int
    messages: tuple[InboundMessage, ...]


@dataclass(frozen=True)
class _StartFailed:
    generation: int
    reason: str


@dataclass(frozen=True)
class _TimerFired:
    timer: t.Timer
    generation: int


@dataclass(frozen=True)
class _Extras:
    """The assistant switch and sync state as read after ``mark`` (``Storage.changes``)."""

    ai_enabled: bool
    sync: SyncState | None
    mark: int


def state_from_company(company: Company) -> t.CompanyState:
    """The decision state of a freshly loaded company (no session runs yet)."""
    status = t.Status(company.integration_status)
    jid = company.whatsapp_jid
    if status is t.Status.LINKING:
        # A linking round cannot survive a restart: the QR session is gone.
        status = t.Status.PENDING if jid is None else t.Status.LOGGED_OUT
    # A session opened elsewhere stays stopped across restarts (``request-qr`` takes it back).
    replaced = jid is not None and company.whatsapp_replaced
    return t.CompanyState(
        status=status,
        session=t.Session.STOPPED if replaced else t.Session.IDLE,
        jid=jid,
        phone=company.whatsapp_phone,
        last_error=company.last_error,
        replaced=replaced,
    )


def company_changes(effect: t.Persist, now: datetime) -> dict[str, object]:
    """The ``companies`` columns a :class:`Persist` writes beside the status (fields left at
    ``KEEP`` are not written); ``linked_now`` stamps both connection times with ``now``."""
    columns: dict[str, object] = {
        "whatsapp_connected": effect.connected,
        "whatsapp_jid": effect.jid,
        "whatsapp_phone": effect.phone,
        "whatsapp_replaced": effect.replaced,
        "last_error": effect.last_error,
    }
    changes = {name: value for name, value in columns.items() if value is not t.KEEP}
    if effect.linked_now:
        changes["whatsapp_connected_at"] = changes["connected_at"] = now
    return changes


class CompanyActor(Actor):
    """One salon's actor; see the module docstring and :mod:`._messages` for the protocol."""

    expected_errors = (CompanyError,)

    def __init__(self, company_id: int, deps: CompanyDeps) -> None:
        self.company_id = company_id
        self.deps = deps
        self.company: Company | None = None
        #: The node owning this company when it is not us (cluster mode), see ``on_start``.
        self.elsewhere: str | None = None
        self.state = t.CompanyState()
        self.viewers: set[m.Viewer] = set()
        #: What each viewer asked for (``Subscribe.events``; ``None``: the connect page's set).
        self._wants: dict[m.Viewer, frozenset[str] | None] = {}
        #: A decision told viewers a new ``status``: the ``view`` frame follows once it is done.
        self._view_due = False
        #: Who wrote each text queued in this incarnation (its WhatsApp id → ``by``), until
        #: its outcome's ``message`` frame went out.
        self._written_by: dict[str, str] = {}
        self.session: WhatsAppSession | None = None
        self._session_scope: trio.CancelScope | None = None
        self._start_scope: trio.CancelScope | None = None
        self._generation = 0
        self._rules = t.Rules(qr=deps.settings.qr, reconnect=RECONNECT_BACKOFF)
        self._timers: dict[t.Timer, tuple[int, trio.CancelScope]] = {}
        self._timer_generation = 0
        #: Tags the QR codes this incarnation caches (a new actor object per incarnation).
        self.incarnation = uuid.uuid4().hex
        self._qr_frame: dict[str, Any] | None = None
        self._qr_valid_until = 0.0  # trio time the shown code expires (for late viewers)
        self._pending_pairing: str | None = None
        self.flood = FloodLimit(INBOUND_FLOOD_LIMIT, INBOUND_FLOOD_WINDOW)
        #: What ``GetStatus(extras=True)`` read beyond the actor's state, while current.
        self._extras: _Extras | None = None
        pacer = Pacer(deps.settings.pacing, deps.rng)
        self.outbound = OutboundQueue(OUTBOUND_QUEUE_LIMIT, pacer)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.deps.place is not None:
            self.elsewhere = await self.deps.place(self.company_id)
            if self.elsewhere is not None:
                return  # another node runs this company: no session, no state, no writes
            if self.deps.fence is not None:
                self.deps = replace(self.deps, storage=self.deps.fence(self.company_id))
        self.company = await self.deps.storage.companies.get(self.company_id)
        if self.company is None:
            return
        loaded = self.company.integration_status
        self.state = state_from_company(self.company)
        if self.state.status.value != loaded:
            await self._persist(
                t.Persist("linking_interrupted", self.state.status), previous=loaded
            )
        # Messages queued before a restart or a crash are sent first, with their original ids
        # (a message that did reach WhatsApp before the crash is deduplicated by that id).
        for row in await self.deps.storage.messages.pending_outbound(
            self.company_id, OUTBOUND_QUEUE_LIMIT
        ):
            if row.wa_message_id is not None:
                self.outbound.push(Outgoing(row.id, row.wa_message_id, row.peer_phone, row.text))
        self.nursery.start_soon(self.outbound.run, self._send_one, self._send_done)
        if self.state.status in (t.Status.ACTIVE, t.Status.RECONNECTING) and self.state.jid:
            # A crash between storing "active" and queueing the callback must not lose the
            # activation: the item's key makes this a no-op when it exists (even delivered).
            await self._enqueue_activation(self.state.jid, linked_now=False)
        await self._apply(t.Restore())

    async def on_stop(self) -> None:
        for viewer in list(self.viewers):
            viewer.close()
        self.viewers.clear()
        self._wants.clear()
        await self._close_session()

    def keep_alive(self) -> bool:
        return self.state.must_stay or bool(self.viewers) or bool(self.outbound.items)

    # -- messages --------------------------------------------------------------------------

    async def receive(self, message: Any) -> Any:
        if self.elsewhere is not None:
            self.stop()
            raise OwnedElsewhere(self.company_id, self.elsewhere)
        if self.company is None:
            self.stop()
            raise CompanyNotFound(self.company_id)
        # Served under the request that sent it (the actor's task never has it on its own);
        # the actor's own inputs (timers, session events) under none.
        request_id = message.request_id if isinstance(message, FromRequest) else None
        with serving_request(request_id):
            result = await self._handle(message)
            if self.state.viewers != self._audience():
                # A slow or vanished viewer was dropped while frames went out.
                await self._apply(t.AudienceChanged(self._audience()))
        return result

    async def _handle(self, message: Any) -> Any:
        match message:
            case _SessionEvent(generation=gen, event=event):
                if gen == self._generation:
                    await self._on_session_event(event)
                return None
            case _InboundBurst(generation=gen, messages=messages):
                if gen == self._generation:
                    await self._on_inbound_burst(messages)
                return None
            case _StartFailed(generation=gen, reason=reason):
                if gen == self._generation:
                    await self._apply(self._dropped(reason))
                return None
            case _TimerFired(timer=timer, generation=gen):
                await self._on_timer(timer, gen)
                return None
            case m.GetStatus(extras=extras):
                return await self._status(extras)
            case m.GetQr():
                return await self._current_qr()
            case m.RequestQr():
                return await self._apply(t.RequestQr())
            case m.RequestPairingCode(phone=phone):
                return await self._apply(t.RequestPairingCode(phone))
            case m.Subscribe(viewer=viewer, events=events):
                self.viewers.add(viewer)
                self._wants[viewer] = events
                await self._apply(t.AudienceChanged(self._audience()))
                return self._first_frames(events)
            case m.Unsubscribe(viewer=viewer):
                self._forget(viewer)
                await self._apply(t.AudienceChanged(self._audience()))
                return None
            case m.SendText(to_phone=to, text=text, message_id=message_id, by=by):
                return await self._queue_text(to, text, message_id, by)
            case m.ConversationChanged(phone=phone):
                self._tell({"event": "conversation", "data": {"phone": phone}})
                return None
            case m.LogoutRequested():
                return await self._apply(t.LogoutRequested())
            case m.Freeze():
                return await self._apply(t.Freeze())
            case m.Uninstall():
                return await self._apply(t.Uninstall())
            case m.Reinstall():
                return await self._apply(t.Reinstall())
            case m.ActivationRejected(message=text):
                return await self._apply(t.ActivationRejected(text))
            case m.Restore():
                return await self._apply(t.Restore())
        raise TypeError(f"company actor got an unknown message: {type(message).__name__}")

    def view(self) -> m.CompanyView:
        company = self.company
        assert company is not None
        connected_at = company.whatsapp_connected_at or company.connected_at
        return m.CompanyView(
            company_id=company.id,
            salon_id=company.yclients_id,
            title=company.title,
            integration_status=self.state.status.value,
            session=self.state.session.value,
            whatsapp_connected=self.state.session is t.Session.CONNECTED,
            whatsapp_phone=self.state.phone,
            connected_at=connected_at.isoformat() if connected_at else None,
            banned=self.state.banned,
            last_error=self.state.last_error,
            outbound_queued=len(self.outbound),
            viewers=len(self.viewers),
        )

    async def _status(self, extras: bool) -> m.CompanyView:
        """The view, with the sync state and assistant switch when asked and vouched for:
        read once, kept while no write of them ran in this process since (``Storage.changes``).
        In cluster mode another process may write them, so the caller reads them itself; a
        storage error leaves them to the caller too (a read must never crash the actor)."""
        changes = self.deps.storage.changes
        if not extras or changes is None or self.deps.place is not None:
            return self.view()
        held = self._extras
        if held is None or not changes.unchanged_since(self.company_id, held.mark):
            mark = changes.mark()
            try:
                company = await self.deps.storage.companies.get(self.company_id)
                sync = await self.deps.storage.catalog.get_sync_state(self.company_id)
            except StorageError as exc:
                log.info("company %s: status extras not read: %s", self.company_id, exc)
                return self.view()
            if company is None:
                return self.view()
            held = _Extras(company.ai_enabled, sync, mark)
            # Kept only if no write ran meanwhile; this answer is as current as a read anyway.
            self._extras = held if changes.unchanged_since(self.company_id, mark) else None
        return replace(self.view(), held=True, ai_enabled=held.ai_enabled, sync=held.sync)

    # -- decisions and effects ---------------------------------------------------------------

    async def _apply(self, event: t.Event) -> m.CommandResult | None:
        decision = t.decide(self.state, event, self._rules)
        previous = self.state
        self.state = decision.state
        result: m.CommandResult | None = None
        for effect in decision.effects:
            if isinstance(effect, t.Reply):
                result = m.CommandResult(effect.ok, effect.message, effect.code)
            else:
                await self._run_effect(effect, previous)
        self.outbound.set_open(self.state.session is t.Session.CONNECTED and not self.state.banned)
        if self._view_due:  # after every effect: the view shows what they stored
            self._view_due = False
            self._tell(self._view_frame())
        return result

    async def _run_effect(self, effect: t.Effect, previous: t.CompanyState) -> None:
        match effect:
            case t.StartSession(fresh=fresh):
                await self._start_session(fresh=fresh)
            case t.StopSession():
                await self._close_session()
            case t.LogoutSession():
                await self._logout_session()
            case t.RequestPairing(phone=phone):
                await self._request_pairing(phone)
            case t.ArmTimer(timer=timer, delay=delay):
                self._arm(timer, delay)
            case t.CancelTimer(timer=timer):
                self._disarm(timer)
            case t.CacheQr(code=code, lifetime=lifetime):
                await self._show_qr(code, lifetime)
            case t.ClearQr():
                self._qr_frame = None
                await self.deps.storage.qr.clear(self.company_id)
            case t.Persist():
                await self._persist(effect, previous=previous.status.value)
            case t.EnqueueActivation(jid=jid):
                await self._enqueue_activation(jid)
            case t.RevokeCredentials():
                await self.deps.storage.companies.revoke_credentials(self.company_id)
                await self.deps.storage.tokens.revoke(self.company_id)
            case t.Notify(event=name, data=data):
                if name == "whatsapp-connected":
                    data = {**data, "companyId": self.company_id}
                self._broadcast({"event": name, "data": data})
            case t.PauseSending():
                pass  # the queue's open flag follows the state after every decision
            case _:
                raise TypeError(f"unhandled effect {effect!r}")

    async def _persist(self, effect: t.Persist, *, previous: str) -> None:
        status = effect.status.value
        fields = company_changes(effect, datetime.now(UTC))
        companies = self.deps.storage.companies
        if status != previous:
            updated = await companies.transition(self.company_id, [previous], status, **fields)
            if updated is None:
                # Someone else moved the status (an operator, another node): follow the store.
                log.warning(
                    "company %s: status moved under us; forcing %s", self.company_id, status
                )
                updated = await companies.update(
                    self.company_id, integration_status=status, **fields
                )
        elif fields:
            updated = await companies.update(self.company_id, **fields)
        else:
            updated = self.company
        self.company = updated
        await self.deps.storage.audit.append(
            self.company_id, effect.audit, {"from": previous, "to": status}
        )
        event = BUSINESS_EVENTS.get(effect.audit)
        if event is not None:
            salon_id = updated.yclients_id if updated is not None else None
            logged: dict[str, object] = {"salon_id": salon_id, "previous": previous}
            if event is BusinessEvent.LINKED:
                logged["phone"] = effect.phone if effect.phone is not t.KEEP else None
            elif event is BusinessEvent.UNLINKED:
                logged["reason"] = self.state.last_error
            log_event(event, self.company_id, **logged)

    async def _enqueue_activation(self, jid: str, *, linked_now: bool = True) -> None:
        company = self.company
        assert company is not None
        if linked_now:
            self.deps.metrics.links.inc()
        await self.deps.storage.outbox.enqueue(
            m.ACTIVATION_KIND,
            f"activation:{self.company_id}:{jid}",
            self.company_id,
            {"company_id": self.company_id, "salon_id": company.yclients_id, "jid": jid},
        )

    # -- the WhatsApp session ------------------------------------------------------------------

    async def _start_session(self, *, fresh: bool) -> None:
        if fresh and self.session is not None:
            await self._close_session()
        if self.session is None:
            jid = None if fresh else self.state.jid
            self.session = self.deps.gateway.open_session(self.company_id, jid=jid)
            self._generation += 1
            self._session_scope = trio.CancelScope()
            self.nursery.start_soon(self._pump, self.session, self._generation, self._session_scope)
        if self._start_scope is None:
            # ``start()`` may wait (a session host restarting, a slow connect): run it beside
            # the mailbox so the actor keeps answering. One start at a time per session: a
            # second call while one is in flight would open a second client for the company.
            self._start_scope = trio.CancelScope()
            self.nursery.start_soon(
                self._run_start, self.session, self._generation, self._start_scope
            )

    async def _run_start(
        self, session: WhatsAppSession, generation: int, scope: trio.CancelScope
    ) -> None:
        failure: str | None = None
        with scope:
            try:
                await session.start()
            except WhatsAppError as exc:
                failure = f"{type(exc).__name__}: {exc}"
        if generation == self._generation:
            self._start_scope = None
            if failure is not None:
                await self._post(_StartFailed(generation, failure))

    async def _pump(
        self, session: WhatsAppSession, generation: int, scope: trio.CancelScope
    ) -> None:
        """Hand the session's events to the mailbox, in order; close the session on any exit.

        Waits while the mailbox is full (the session then holds its events, and its backend
        waits in turn: nothing is dropped). Inbound messages already waiting back to back go
        as one :class:`_InboundBurst` of up to :data:`INBOUND_BATCH`, recorded in one write."""
        try:
            with scope:
                async for event in session.events:
                    if not isinstance(event, InboundMessage):
                        await self._post(_SessionEvent(generation, event))
                        continue
                    burst = [event]
                    follow: SessionEvent | None = None
                    while len(burst) < INBOUND_BATCH:
                        try:
                            more = session.events.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        if not isinstance(more, InboundMessage):
                            follow = more
                            break
                        burst.append(more)
                    await self._post(_InboundBurst(generation, tuple(burst)))
                    if follow is not None:
                        await self._post(_SessionEvent(generation, follow))
        finally:
            with trio.CancelScope(shield=True) as cleanup:
                cleanup.deadline = trio.current_time() + 5.0
                try:
                    await session.aclose()
                except WhatsAppError as exc:
                    log.warning("company %s: closing session: %s", self.company_id, exc)

    async def _close_session(self) -> None:
        session, scope, starting = self.session, self._session_scope, self._start_scope
        self.session, self._session_scope, self._start_scope = None, None, None
        self._generation += 1
        for running in (scope, starting):
            if running is not None:
                running.cancel()
        if session is not None:
            with trio.move_on_after(5.0):
                try:
                    await session.aclose()
                except WhatsAppError as exc:
                    log.warning("company %s: closing session: %s", self.company_id, exc)

    async def _logout_session(self) -> None:
        session = self.session
        temporary = session is None
        if session is None:
            jid = self.company.whatsapp_jid if self.company is not None else None
            session = self.deps.gateway.open_session(self.company_id, jid=jid)
        try:
            with trio.move_on_after(10.0):
                await session.logout()
        except WhatsAppError as exc:
            log.warning("company %s: logout: %s", self.company_id, exc)
        finally:
            if temporary:
                with trio.move_on_after(5.0):
                    await session.aclose()

    async def _request_pairing(self, phone: str) -> None:
        if self.session is None or self.state.qr_codes == 0:
            self._pending_pairing = phone  # neonize can pair only after the first QR
            return
        self._pending_pairing = None
        try:
            code = await self.session.pair_phone(phone)
        except WhatsAppError as exc:
            self._broadcast(
                {"event": "error", "data": {"message": str(exc), "code": "pairing_failed"}}
            )
            return
        self._broadcast({"event": "pairing-code", "data": {"code": code, "phone": phone}})

    async def _on_session_event(self, event: SessionEvent) -> None:
        match event:
            case QrCode(code=code, lifetime=lifetime):
                await self._apply(t.QrIssued(code, lifetime))
                if self.state.session is t.Session.LINKING and self._pending_pairing is not None:
                    await self._request_pairing(self._pending_pairing)
            case Linked(jid=jid, phone=phone):
                await self._apply(t.Linked(jid, phone))
            case Connected() | KeepAliveRestored():
                await self._apply(t.SessionConnected())
            case Disconnected(reason=reason):
                await self._apply(self._dropped(f"disconnected: {reason}"))
            case KeepAliveTimeout():
                await self._apply(self._dropped("keep-alive timeout"))
            case SessionLost(reason=reason):
                await self._apply(self._dropped(f"session lost: {reason}"))
            case ConnectFailed(error=error):
                await self._apply(self._dropped(f"connect failed: {error}"))
            case LoggedOut(reason=reason):
                await self._apply(t.LoggedOut(reason))
            case StreamReplaced():
                await self._apply(t.StreamReplaced())
            case TemporaryBan(expires_in=expires_in):
                await self._apply(t.Banned(expires_in))
            case PairingFailed(reason=reason):
                self._broadcast(
                    {"event": "error", "data": {"message": reason, "code": "pairing_failed"}}
                )
            case InboundMessage():
                await self._on_inbound(event)
            case StaffMessage():
                # Not logged: a row for it would look like an outbound message still to send.
                self.nursery.start_soon(self._handle_inbound, event)

    async def _current_qr(self) -> m.CurrentQr:
        """The cached code if this incarnation's round showed it (never another's: see
        :class:`~._messages.CurrentQr`); a read with no effect on the round."""
        linking = self.state.session is t.Session.LINKING
        reply = m.CurrentQr(status=self.state.status.value, linking=linking)
        if not linking:
            return reply
        cached = await self.deps.storage.qr.get(self.company_id)
        if cached is None or cached.incarnation != self.incarnation:
            return reply
        return replace(
            reply, qr=cached.qr, generated_at=cached.generated_at, lifetime=cached.lifetime
        )

    async def _show_qr(self, code: str, expires: float) -> None:
        # Stored first (GET /marketplace/qr never lags the frame), then rendered and shown with
        # no await in between, one company at a time through the node's QR lane: when many
        # companies rotate at once each one's viewers get the frame right after its own image
        # (not after every company's), and the event loop polls I/O between two images instead
        # of being held for all of them (~0.1 ms each, but a burst can be a hundred).
        await self.deps.storage.qr.put(
            self.company_id, code, ttl=expires, incarnation=self.incarnation
        )
        async with self.deps.qr_lane:
            image = qr_png_data_url(code)
            self.deps.metrics.qr_issued.inc()
            self._qr_frame = {
                "event": "qr-update",
                "data": {"qr": code, "qr_image": image, "expiresIn": int(expires)},
            }
            self._qr_valid_until = trio.current_time() + expires
            self._broadcast(self._qr_frame)

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, timer: t.Timer, delay: float) -> None:
        self._disarm(timer)
        self._timer_generation += 1
        generation = self._timer_generation
        scope = trio.CancelScope()
        self._timers[timer] = (generation, scope)
        self.nursery.start_soon(self._timer, timer, generation, delay, scope)

    def _disarm(self, timer: t.Timer) -> None:
        entry = self._timers.pop(timer, None)
        if entry is not None:
            entry[1].cancel()

    async def _timer(
        self, timer: t.Timer, generation: int, delay: float, scope: trio.CancelScope
    ) -> None:
        with scope:
            await trio.sleep(delay)
            await self._post(_TimerFired(timer, generation))

    async def _on_timer(self, timer: t.Timer, generation: int) -> None:
        entry = self._timers.get(timer)
        if entry is None or entry[0] != generation:
            return  # re-armed or cancelled since
        del self._timers[timer]
        await self._apply(t.TIMEOUTS[timer])

    def _dropped(self, reason: str) -> t.SessionDropped:
        """A session loss, with the random draw that spreads its reconnect delay."""
        return t.SessionDropped(reason, jitter_seed=self.deps.rng.getrandbits(64))

    async def _post(self, message: object) -> None:
        """Queue a message to ourselves from a child task, waiting for room in a full mailbox
        (dropped if the actor is stopping or restarting: the message dies with it)."""
        with contextlib.suppress(ActorUnavailable):
            await self.ref.send(message)

    # -- viewers ---------------------------------------------------------------------------

    def _first_frames(self, events: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """What a new viewer is shown at once: the status (and the view, if it wants it), and
        the current QR code if any (each only if it wants that event)."""
        frames: list[dict[str, Any]] = [self._status_frame()]
        if self._qr_frame is not None:  # a late viewer is told how long the code has left
            left = max(1, round(self._qr_valid_until - trio.current_time()))
            frames.append({**self._qr_frame, "data": {**self._qr_frame["data"], "expiresIn": left}})
        if events is not None:
            frames.insert(0, self._view_frame())
        return [frame for frame in frames if _wanted(events, frame["event"])]

    def _view_frame(self) -> dict[str, Any]:
        """The opt-in ``view`` frame: the :class:`CompanyView` as JSON."""
        return {"event": "view", "data": dataclasses.asdict(self.view())}

    def _audience(self) -> int:
        """Viewers that watch a linking round (want ``qr-update``): the salon page does not."""
        return sum(1 for events in self._wants.values() if _wanted(events, "qr-update"))

    def _forget(self, viewer: m.Viewer) -> None:
        self.viewers.discard(viewer)
        self._wants.pop(viewer, None)

    def _status_frame(self) -> dict[str, Any]:
        notice = t.status_notice(self.state)
        return {"event": notice.event, "data": {**notice.data, "companyId": self.company_id}}

    def _broadcast(self, frame: dict[str, Any]) -> None:
        if frame["event"] == "status":
            frame = {"event": "status", "data": {**frame["data"], "companyId": self.company_id}}
            self._view_due = True
        self._tell(frame)

    def _tell(self, frame: dict[str, Any]) -> None:
        """Push ``frame`` to every viewer that wants its event, and publish it (cluster mode;
        an opt-in frame only while some viewer wants it)."""
        event = frame["event"]
        wanted = False
        for viewer in list(self.viewers):
            if not _wanted(self._wants.get(viewer), event):
                continue
            wanted = True
            try:
                viewer.send_nowait(frame)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                # A slow or vanished viewer is dropped; it never slows the actor.
                self._forget(viewer)
                viewer.close()  # ``receive`` tells ``decide`` the audience changed
        if self.deps.publish is not None and (wanted or event not in m.OPT_IN_EVENTS):
            self.deps.publish(self.company_id, frame)

    def _message_frame(
        self, wa_id: str, phone: str, direction: str, text: str, at: datetime, by: str, status: str
    ) -> None:
        """Tell viewers wanting ``message`` frames of a message in or out (module docstring of
        :mod:`._messages`); the phone as conversations store it."""
        with contextlib.suppress(InvalidPhone):  # else shown as WhatsApp gave it
            phone = normalise_phone(phone, region=None)
        data = {
            "id": wa_id,
            "phone": phone,
            "direction": direction,
            "text": text,
            "at": at.isoformat(),
            "by": by,
            "status": status,
        }
        self._tell({"event": "message", "data": data})

    # -- messages out and in ---------------------------------------------------------------

    async def _queue_text(
        self, to_phone: str, text: str, message_id: str | None = None, by: str = "assistant"
    ) -> str:
        """Record the message (``queued``) and push it to the paced outbound queue; returns its
        WhatsApp id. A ``message_id`` the company already has is not queued again (a caller's
        retry after a crash or a lost reply: the first one is sent, or already was); the
        insert's conflict says so, and only a send refused now looks it up first."""
        messages = self.deps.storage.messages
        unavailable = (
            self.state.status in (t.Status.UNINSTALLED, t.Status.FROZEN) or self.state.jid is None
        )
        if unavailable or self.outbound.full:
            if message_id is not None and await messages.get_by_wa_id(self.company_id, message_id):
                return message_id
            if unavailable:
                raise SendingUnavailable(self.company_id, f"status is {self.state.status.value}")
            raise OutboundQueueFull(self.company_id, self.outbound.limit)
        wa_id = message_id or new_message_id()
        try:
            row = await messages.record_outbound(
                self.company_id, to_phone, text, wa_message_id=wa_id
            )
        except Conflict:
            if message_id is None:
                raise
            return message_id  # recorded by a racing send of the same id: that one goes out
        self.outbound.push(Outgoing(row.id, wa_id, to_phone, text))
        self._written_by[wa_id] = by
        self._message_frame(wa_id, to_phone, "out", text, row.created_at, by, row.status)
        return wa_id

    async def _send_one(self, item: Outgoing) -> None:
        session = self.session
        if session is None or session.state is not SessionState.CONNECTED:
            raise SessionNotConnected(
                self.company_id, "idle" if session is None else session.state.value
            )
        # Counted before the send: after a crash between the send and the status write the
        # message goes again with the same id, and the row shows it may have gone twice.
        attempts = await self.deps.storage.messages.count_attempt(item.log_id)
        if attempts > 1:
            log.info(
                "company %s: sending %s again (attempt %d)",
                self.company_id,
                item.wa_message_id,
                attempts,
            )
        await session.send_text(item.to_phone, item.text, item.wa_message_id)

    async def _send_done(self, item: Outgoing, status: str, error: str | None) -> None:
        if status == "sent":
            self.deps.metrics.messages.labels("out").inc()
        else:
            log.warning(
                "company %s: message %s %s: %s", self.company_id, item.wa_message_id, status, error
            )
        row = await self.deps.storage.messages.set_status(item.log_id, status)
        # Queued before a restart: its writer is not known here, the assistant's by default.
        by = self._written_by.pop(item.wa_message_id, "assistant")
        self._message_frame(
            item.wa_message_id, item.to_phone, "out", item.text, row.created_at, by, status
        )

    async def _on_inbound(self, message: InboundMessage) -> None:
        await self._on_inbound_burst((message,))

    async def _on_inbound_burst(self, messages: tuple[InboundMessage, ...]) -> None:
        """Record the messages in one write (in order, all or none), then hand each one that
        is new (not a redelivery) on, subject to the per-client flood limit."""
        # Media are logged by their caption, or by their kind when they have none.
        rows = [(m.message_id, m.sender_phone, m.text or f"[{m.kind}]") for m in messages]
        fresh = await self.deps.storage.messages.record_inbound_many(self.company_id, rows)
        at = datetime.now(UTC)
        for (wa_id, phone, text), new in zip(rows, fresh, strict=True):
            if new:
                self._message_frame(wa_id, phone, "in", text, at, "client", "received")
        for message, new in zip(messages, fresh, strict=True):
            if new:  # a redelivered one is already recorded and handled
                self._after_recorded(message)

    def _after_recorded(self, message: InboundMessage) -> None:
        self.deps.metrics.messages.labels("in").inc()
        if not self.flood.allow(message.sender_phone, trio.current_time()):
            self.deps.metrics.flood_dropped.inc()
            return
        self.nursery.start_soon(self._handle_inbound, message)

    async def _handle_inbound(self, message: InboundMessage | StaffMessage) -> None:
        try:
            await self.deps.inbound_handler(self.company_id, message)
        except Exception:
            log.exception("company %s: inbound handler failed", self.company_id)


def _wanted(events: frozenset[str] | None, event: str) -> bool:
    """Whether a viewer that asked for ``events`` (``Subscribe.events``) gets ``event``."""
    return event not in m.OPT_IN_EVENTS if events is None else event in events
