"""The company actor's pure decisions, without trio or storage."""

from __future__ import annotations

from dataclasses import replace

from actors.company._transitions import (
    ActivationRejected,
    BanLifted,
    Banned,
    CacheQr,
    CompanyState,
    EnqueueActivation,
    Freeze,
    LinkDeadlinePassed,
    Linked,
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
    ScheduleReconnect,
    Session,
    SessionConnected,
    SessionDropped,
    StartLinkDeadline,
    StartSession,
    Status,
    StopSession,
    StreamReplaced,
    Uninstall,
    decide,
)

ACTIVE = CompanyState(
    status=Status.ACTIVE,
    session=Session.CONNECTED,
    jid="79001234567@s.whatsapp.net",
    phone="79001234567",
)


def kinds(effects: tuple[object, ...]) -> list[type]:
    return [type(e) for e in effects]


def persisted_status(effects: tuple[object, ...]) -> str | None:
    for e in effects:
        if isinstance(e, Persist):
            return str(e.fields.get("integration_status"))
    return None


def test_request_qr_from_pending_starts_one_linking_round() -> None:
    d = decide(CompanyState(), RequestQr())
    assert d.state.status is Status.LINKING and d.state.session is Session.LINKING
    assert StartSession(fresh=True) in d.effects
    assert StartLinkDeadline() in d.effects
    assert persisted_status(d.effects) == "linking"
    # a second viewer asking does not start a second session
    again = decide(d.state, RequestQr())
    assert not any(isinstance(e, StartSession) for e in again.effects)
    assert again.effects == (Reply(True, "linking in progress"),)


def test_request_qr_never_tears_down_a_linked_session() -> None:
    d = decide(ACTIVE, RequestQr())
    assert d.state == ACTIVE
    assert d.effects == (Reply(False, "WhatsApp is already connected", "already_linked"),)


def test_qr_codes_are_cached_only_while_linking() -> None:
    linking = decide(CompanyState(), RequestQr()).state
    d = decide(linking, QrIssued("2@abc", 60.0))
    assert d.state.qr_codes == 1
    assert d.effects == (CacheQr("2@abc", 60.0),)
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
    assert persist.fields["whatsapp_connected"] is True
    assert persist.fields["whatsapp_phone"] == "79001234567"
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
    assert ScheduleReconnect(1) in d1.effects
    assert persisted_status(d1.effects) == "reconnecting"
    d2 = decide(d1.state, ReconnectDue())
    assert d2.effects == (StartSession(fresh=False),)
    d3 = decide(d2.state, SessionDropped("network"))
    assert ScheduleReconnect(2) in d3.effects
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
    assert stored.fields["whatsapp_replaced"] is True
    # another error on top (YClients refusing the activation) does not lose the mark
    assert decide(d.state, ActivationRejected("422")).state.replaced
    # frozen and unfrozen in YClients: the session runs here again, so the mark goes
    frozen = decide(d.state, Freeze()).state
    resumed = decide(frozen, Reinstall())
    assert StartSession(fresh=False) in resumed.effects
    connected = decide(resumed.state, SessionConnected())
    assert not connected.state.replaced
    assert any(
        isinstance(e, Persist) and e.fields.get("whatsapp_replaced") is False
        for e in connected.effects
    )


def test_request_qr_takes_a_replaced_session_back_and_only_that() -> None:
    replaced = decide(ACTIVE, StreamReplaced()).state
    d = decide(replaced, RequestQr())
    assert d.state.session is Session.CONNECTING and d.state.last_error is None
    assert StartSession(fresh=False) in d.effects
    assert Reply(True, "resuming the session here") in d.effects
    assert Persist("whatsapp_resumed_here", {"whatsapp_replaced": False, "last_error": None}) in (
        d.effects
    )
    # a linked session stopped for another reason, or running, is never touched by request-qr
    other = replace(replaced, replaced=False)
    assert decide(other, RequestQr()).effects == (
        Reply(False, "WhatsApp is already connected", "already_linked"),
    )
    assert decide(d.state, RequestQr()).effects == (
        Reply(False, "WhatsApp is already connected", "already_linked"),
    )


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
