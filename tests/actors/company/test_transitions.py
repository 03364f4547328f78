"""The company actor's pure decisions, without trio or storage."""

from __future__ import annotations

import random
from dataclasses import replace

from actors.company._transitions import (
    KEEP,
    LINK_GRACE,
    MIN_BAN_WAIT,
    TIMEOUTS,
    UNWATCHED_LINKING,
    ActivationRejected,
    ArmTimer,
    AudienceChanged,
    BanLifted,
    Banned,
    CacheQr,
    CancelTimer,
    CompanyState,
    Decision,
    EnqueueActivation,
    Event,
    Freeze,
    LinkDeadlinePassed,
    Linked,
    LinkingUnwatched,
    LoggedOut,
    LogoutSession,
    Notify,
    Persist,
    QrIssued,
    ReconnectDue,
    Reinstall,
    Reply,
    RequestPairing,
    RequestPairingCode,
    RequestQr,
    Restore,
    RevokeCredentials,
    Rules,
    Session,
    SessionConnected,
    SessionDropped,
    StartSession,
    Status,
    StopSession,
    StreamReplaced,
    Timer,
    Uninstall,
)
from actors.company._transitions import decide as decide_with
from config import QrPolicy
from runtime import Backoff

RULES = Rules(qr=QrPolicy(max_codes=6, first_code_lifetime=60.0), reconnect=Backoff(1.0, 60.0, 0.3))

ACTIVE = CompanyState(
    status=Status.ACTIVE,
    session=Session.CONNECTED,
    jid="79001234567@s.whatsapp.net",
    phone="79001234567",
)


def decide(state: CompanyState, event: Event) -> Decision:
    return decide_with(state, event, RULES)


def reconnect_delay(decision: Decision) -> float | None:
    """The delay of the reconnect timer ``decision`` arms, if it arms one."""
    for e in decision.effects:
        if isinstance(e, ArmTimer) and e.timer is Timer.RECONNECT:
            return e.delay
    return None


def kinds(effects: tuple[object, ...]) -> list[type]:
    return [type(e) for e in effects]


def persisted_status(effects: tuple[object, ...]) -> str | None:
    for e in effects:
        if isinstance(e, Persist):
            return e.status.value
    return None


def test_request_qr_from_pending_starts_one_linking_round() -> None:
    d = decide(CompanyState(), RequestQr())
    assert d.state.status is Status.LINKING and d.state.session is Session.LINKING
    assert StartSession(fresh=True) in d.effects
    assert ArmTimer(Timer.LINK, 60.0) in d.effects  # the first code's lifetime
    assert persisted_status(d.effects) == "linking"
    # a second viewer asking does not start a second session
    again = decide(d.state, RequestQr())
    assert not any(isinstance(e, StartSession) for e in again.effects)
    assert again.effects == (
        Reply(True, "linking in progress"),
        ArmTimer(Timer.UNWATCHED, UNWATCHED_LINKING),
    )


def test_request_qr_never_tears_down_a_linked_session() -> None:
    d = decide(ACTIVE, RequestQr())
    assert d.state == ACTIVE
    assert d.effects == (
        Reply(False, "WhatsApp is already connected", "already_linked"),
        CancelTimer(Timer.UNWATCHED),
    )


def test_qr_codes_are_cached_only_while_linking() -> None:
    linking = decide(CompanyState(), RequestQr()).state
    d = decide(linking, QrIssued("2@abc", 60.0))
    assert d.state.qr_codes == 1
    # the round ends unless the next code comes within this one's lifetime
    assert d.effects == (CacheQr("2@abc", 60.0), ArmTimer(Timer.LINK, 60.0 + LINK_GRACE))
    assert decide(ACTIVE, QrIssued("2@late")).effects == ()


def test_link_deadline_ends_linking_with_qr_expired() -> None:
    linking = decide(CompanyState(), RequestQr()).state
    d = decide(linking, LinkDeadlinePassed())
    assert d.state.status is Status.PENDING and d.state.session is Session.IDLE
    assert StopSession() in d.effects
    assert any(isinstance(e, Notify) and e.event == "qr-expired" for e in d.effects)
    assert persisted_status(d.effects) == "pending"
    # a late deadline after linking succeeded changes nothing
    assert decide(ACTIVE, LinkDeadlinePassed()).effects == ()


def test_linked_activates_and_enqueues_exactly_one_callback() -> None:
    linking = decide(CompanyState(), RequestQr()).state
    d = decide(linking, Linked("79001234567@s.whatsapp.net", "79001234567"))
    assert d.state.status is Status.ACTIVE and d.state.session is Session.CONNECTED
    assert EnqueueActivation("79001234567@s.whatsapp.net") in d.effects
    persist = next(e for e in d.effects if isinstance(e, Persist))
    assert persist.status is Status.ACTIVE and persist.connected is True and persist.linked_now
    assert (persist.jid, persist.phone) == ("79001234567@s.whatsapp.net", "79001234567")
    assert persist.replaced is False and persist.last_error is None  # old marks cleared
    connected = next(
        e for e in d.effects if isinstance(e, Notify) and e.event == "whatsapp-connected"
    )
    assert connected.data["phone"] == "79001234567"
    repeat = decide(d.state, Linked("79001234567@s.whatsapp.net", "79001234567"))
    assert not any(isinstance(e, EnqueueActivation | Persist) for e in repeat.effects)


def test_pairing_code_starts_linking_and_requests_a_code() -> None:
    d = decide(CompanyState(), RequestPairingCode("79001234567"))
    assert d.state.session is Session.LINKING
    assert StartSession(fresh=True) in d.effects
    assert RequestPairing("79001234567") in d.effects
    assert decide(ACTIVE, RequestPairingCode("7900")).effects[0] == Reply(
        False, "WhatsApp is already connected", "already_linked"
    )


def test_drops_back_off_with_growing_attempts_and_recover() -> None:
    d1 = decide(ACTIVE, SessionDropped("network"))
    assert d1.state.status is Status.RECONNECTING and d1.state.session is Session.WAITING
    assert reconnect_delay(d1) is not None
    assert persisted_status(d1.effects) == "reconnecting"
    d2 = decide(d1.state, ReconnectDue())
    assert d2.effects == (StartSession(fresh=False),)
    d3 = decide(d2.state, SessionDropped("network"))
    assert d3.state.reconnect_attempt == 2 and reconnect_delay(d3) is not None
    assert persisted_status(d3.effects) is None  # already reconnecting: nothing new to persist
    d4 = decide(decide(d3.state, ReconnectDue()).state, SessionConnected())
    assert d4.state.status is Status.ACTIVE and d4.state.reconnect_attempt == 0
    assert persisted_status(d4.effects) == "active"


def test_logged_out_drops_credentials_and_waits_for_a_scan() -> None:
    d = decide(ACTIVE, LoggedOut("device_removed"))
    assert d.state.status is Status.LOGGED_OUT and d.state.jid is None
    assert LogoutSession() in d.effects
    again = decide(d.state, RequestQr())
    assert again.state.status is Status.LINKING


def test_stream_replaced_stops_and_is_not_restarted_by_drops() -> None:
    d = decide(ACTIVE, StreamReplaced())
    assert d.state.session is Session.STOPPED
    assert StopSession() in d.effects
    assert "stream_replaced" in (d.state.last_error or "")
    assert decide(d.state, SessionDropped("x")).effects == ()
    assert decide(d.state, Restore()).effects == ()  # a node start does not take it back


def test_the_replaced_mark_is_stored_and_cleared_only_by_a_session_running_here() -> None:
    d = decide(ACTIVE, StreamReplaced())
    assert d.state.replaced
    stored = next(e for e in d.effects if isinstance(e, Persist))
    assert stored.replaced is True and stored.connected is False
    # another error on top (YClients refusing the activation) does not lose the mark
    assert decide(d.state, ActivationRejected("422")).state.replaced
    # frozen and unfrozen in YClients: the session runs here again, so the mark goes
    frozen = decide(d.state, Freeze()).state
    resumed = decide(frozen, Reinstall())
    assert StartSession(fresh=False) in resumed.effects
    connected = decide(resumed.state, SessionConnected())
    assert not connected.state.replaced
    assert any(isinstance(e, Persist) and e.replaced is False for e in connected.effects)


def test_the_status_frame_tells_the_page_a_session_was_replaced() -> None:
    """The connect page says "opened elsewhere" (with a button to take it back), not
    "reconnecting", for a session stopped here because it was opened elsewhere."""
    d = decide(ACTIVE, StreamReplaced())
    status = next(e for e in d.effects if isinstance(e, Notify) and e.event == "status")
    assert status.data["replaced"] is True and status.data["whatsapp_connected"] is False
    back = decide(d.state, RequestQr())
    status = next(e for e in back.effects if isinstance(e, Notify) and e.event == "status")
    assert "replaced" not in status.data


def test_request_qr_takes_a_replaced_session_back_and_only_that() -> None:
    replaced = decide(ACTIVE, StreamReplaced()).state
    d = decide(replaced, RequestQr())
    assert d.state.session is Session.CONNECTING and d.state.last_error is None
    assert StartSession(fresh=False) in d.effects
    assert Reply(True, "resuming the session here") in d.effects
    assert (
        Persist("whatsapp_resumed_here", Status.ACTIVE, replaced=False, last_error=None)
        in d.effects
    )
    # a linked session stopped for another reason, or running, is never touched by request-qr
    other = replace(replaced, replaced=False)
    refused = (
        Reply(False, "WhatsApp is already connected", "already_linked"),
        CancelTimer(Timer.UNWATCHED),
    )
    assert decide(other, RequestQr()).effects == refused
    assert decide(d.state, RequestQr()).effects == refused


def test_ban_pauses_sending_and_shows_on_status() -> None:
    d = decide(ACTIVE, Banned(3600))
    assert d.state.banned
    status = next(e for e in d.effects if isinstance(e, Notify) and e.event == "status")
    assert status.data["banned"] is True


def test_freeze_keeps_credentials_and_reinstall_resumes_without_scan() -> None:
    frozen = decide(ACTIVE, Freeze())
    assert frozen.state.status is Status.FROZEN and frozen.state.jid == ACTIVE.jid
    assert StopSession() in frozen.effects and LogoutSession() not in frozen.effects
    back = decide(frozen.state, Reinstall())
    assert back.state.status is Status.ACTIVE
    assert StartSession(fresh=False) in back.effects
    assert decide(frozen.state, RequestQr()).effects[0].code == "frozen"  # type: ignore[union-attr]


def test_uninstall_logs_out_and_revokes() -> None:
    d = decide(ACTIVE, Uninstall())
    assert d.state.status is Status.UNINSTALLED and d.state.jid is None
    assert LogoutSession() in d.effects and RevokeCredentials() in d.effects
    assert decide(d.state, Reinstall()).state.status is Status.PENDING


def test_activation_rejected_is_visible() -> None:
    d = decide(ACTIVE, ActivationRejected("salon not found"))
    assert d.state.status is Status.ACTIVATION_FAILED
    assert d.state.last_error == "salon not found"
    assert persisted_status(d.effects) == "activation_failed"


def test_restore_resumes_only_linked_idle_companies() -> None:
    idle_active = replace(ACTIVE, session=Session.IDLE)
    assert decide(idle_active, Restore()).effects == (StartSession(fresh=False),)
    assert decide(CompanyState(), Restore()).effects == ()
    assert kinds(decide(ACTIVE, Restore()).effects) == []


def test_ban_lift_resumes_the_session() -> None:
    banned = decide(ACTIVE, Banned(60)).state
    assert banned.session is Session.WAITING
    assert banned.must_stay
    lifted = decide(banned, BanLifted())
    assert not lifted.state.banned
    assert StartSession(fresh=False) in lifted.effects


# ---- decisions that used to live in the actor ----------------------------------------------


def test_the_round_ends_with_qr_expired_after_max_codes() -> None:
    state = decide(CompanyState(), RequestQr()).state
    for n in range(RULES.qr.max_codes):
        state = decide(state, QrIssued(f"2@code{n}", 20.0)).state
    assert state.qr_codes == RULES.qr.max_codes and state.session is Session.LINKING
    # whatsmeow would hand out one more: the actor ends the round instead of showing it
    d = decide(state, QrIssued("2@one-too-many", 20.0))
    assert d.state.status is Status.PENDING and d.state.session is Session.IDLE
    assert not any(isinstance(e, CacheQr) for e in d.effects)
    assert StopSession() in d.effects
    assert any(isinstance(e, Notify) and e.event == "qr-expired" for e in d.effects)
    assert persisted_status(d.effects) == "pending"


def test_the_limit_follows_the_rules() -> None:
    rules = replace(RULES, qr=QrPolicy(max_codes=1))
    state = decide_with(CompanyState(), RequestQr(), rules).state
    state = decide_with(state, QrIssued("2@first"), rules).state
    assert decide_with(state, QrIssued("2@second"), rules).state.session is Session.IDLE
    assert decide(state, QrIssued("2@second")).state.qr_codes == 2  # six allowed by RULES


def test_a_round_nobody_watches_is_ended_and_a_viewer_keeps_it() -> None:
    linking = decide(CompanyState(), RequestQr()).state  # asked over HTTP: nobody watches
    assert linking.viewers == 0
    watched = decide(linking, AudienceChanged(1))
    assert watched.effects == (CancelTimer(Timer.UNWATCHED),)
    assert decide(watched.state, LinkingUnwatched()).effects == ()  # a late fire: still watched
    left = decide(watched.state, AudienceChanged(0))
    assert left.effects == (ArmTimer(Timer.UNWATCHED, UNWATCHED_LINKING),)
    ended = decide(left.state, LinkingUnwatched())
    assert ended.state.session is Session.IDLE and StopSession() in ended.effects
    assert any(isinstance(e, Notify) and e.event == "qr-expired" for e in ended.effects)


def test_viewers_outside_a_linking_round_arm_nothing() -> None:
    assert decide(ACTIVE, AudienceChanged(0)).effects == (CancelTimer(Timer.UNWATCHED),)
    assert decide(ACTIVE, LinkingUnwatched()).effects == ()
    # a new request-qr with a viewer watching does not arm the timer either
    watched = replace(CompanyState(), viewers=1)
    assert CancelTimer(Timer.UNWATCHED) in decide(watched, RequestQr()).effects


def test_the_reconnect_delay_is_the_backoff_spread_by_the_drawn_seed() -> None:
    dropped = decide(ACTIVE, SessionDropped("network", jitter_seed=42))
    expected = RULES.reconnect.delay(1, random.Random(42))
    assert reconnect_delay(dropped) == expected
    # pure: the same inputs give the same decision; another draw gives another delay
    assert decide(ACTIVE, SessionDropped("network", jitter_seed=42)) == dropped
    delays = {reconnect_delay(decide(ACTIVE, SessionDropped("x", seed))) for seed in range(20)}
    assert len(delays) > 10
    assert all(d is not None and 0.7 <= d <= 1.3 for d in delays)  # 1 s ± 30 %


def test_reconnect_delays_double_per_attempt_up_to_the_cap() -> None:
    state = ACTIVE
    seen = []
    for _ in range(9):
        decision = decide(state, SessionDropped("network", jitter_seed=7))
        seen.append(reconnect_delay(decision))
        state = decide(decision.state, ReconnectDue()).state
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for attempt, (delay, base) in enumerate(zip(seen, nominal, strict=True), start=1):
        assert delay == RULES.reconnect.delay(attempt, random.Random(7))
        assert delay is not None and base * 0.7 <= delay <= min(60.0, base * 1.3)


def test_a_ban_arms_its_own_timer_for_its_length() -> None:
    assert ArmTimer(Timer.BAN, 3600) in decide(ACTIVE, Banned(3600)).effects
    assert ArmTimer(Timer.BAN, MIN_BAN_WAIT) in decide(ACTIVE, Banned(0)).effects


def test_every_timer_feeds_back_its_event() -> None:
    assert set(TIMEOUTS) == set(Timer)
    assert TIMEOUTS[Timer.LINK] == LinkDeadlinePassed()
    assert TIMEOUTS[Timer.RECONNECT] == ReconnectDue()
    assert TIMEOUTS[Timer.BAN] == BanLifted()
    assert TIMEOUTS[Timer.UNWATCHED] == LinkingUnwatched()


def test_persist_names_only_what_changes() -> None:
    banned = decide(ACTIVE, Banned(60))
    stored = next(e for e in banned.effects if isinstance(e, Persist))
    assert stored.status is Status.ACTIVE and stored.last_error == "temporary_ban: 60 s"
    assert stored.connected is KEEP and stored.jid is KEEP and stored.phone is KEEP
    assert not stored.linked_now
    logged_out = next(e for e in decide(ACTIVE, LoggedOut("x")).effects if isinstance(e, Persist))
    assert logged_out.jid is None and logged_out.phone is KEEP  # the jid goes, the phone stays
