"""Errors of the WhatsApp session layer.

Every failure a caller can see is one of these; nothing from neonize (or from the pipes and
sockets underneath) escapes ``actors.whatsapp``::

    WhatsAppError
    ├── SessionNotConnected   the session is not connected (not started, linking, dropped)
    ├── SendFailed            WhatsApp refused the message (the outcome is known: not sent)
    ├── PairingUnavailable    a pairing code cannot be requested now (not linking, bad phone)
    ├── OutcomeUnknown        the command may or may not have happened; retry with the same id
    │   ├── HostCrashed       the session host died while the command was in flight
    │   └── CommandTimeout    no reply within the command timeout
    └── BackendUnavailable    the backend cannot serve at all (gateway closed, world gone)
        └── NeonizeMissing    neonize or its Go library is not installed correctly
"""

from __future__ import annotations


class WhatsAppError(Exception):
    """Base class of every error raised by the WhatsApp session layer."""


class SessionNotConnected(WhatsAppError):
    """The session has no live connection, so the command was not attempted."""

    def __init__(self, company_id: int, state: str) -> None:
        self.company_id = company_id
        self.state = state
        super().__init__(f"company {company_id}: WhatsApp session is not connected ({state})")


class SendFailed(WhatsAppError):
    """WhatsApp (or the simulated world) refused the message; it was not delivered."""

    def __init__(self, company_id: int, message_id: str, reason: str) -> None:
        self.company_id = company_id
        self.message_id = message_id
        self.reason = reason
        super().__init__(f"company {company_id}: message {message_id} not sent: {reason}")


class PairingUnavailable(WhatsAppError):
    """A pairing code cannot be issued now: the session is not in its linking phase."""

    def __init__(self, company_id: int, reason: str) -> None:
        self.company_id = company_id
        self.reason = reason
        super().__init__(f"company {company_id}: pairing code unavailable: {reason}")


class OutcomeUnknown(WhatsAppError):
    """The command may or may not have taken effect. A send may be retried with the same id."""


class HostCrashed(OutcomeUnknown):
    """The session host process died while this command was in flight."""

    def __init__(self, pid: int | None, detail: str) -> None:
        self.pid = pid
        self.detail = detail
        super().__init__(f"session host (pid {pid}) died during the command: {detail}")


class CommandTimeout(OutcomeUnknown):
    """No reply arrived from the session host within the command timeout."""

    def __init__(self, op: str, timeout: float) -> None:
        self.op = op
        self.timeout = timeout
        super().__init__(f"no reply to {op!r} within {timeout:g} s")


class BackendUnavailable(WhatsAppError):
    """The backend cannot serve: the gateway is closed, or the world/host cannot be reached."""


class NeonizeMissing(BackendUnavailable):
    """neonize 0.5.2 or its bundled Go library cannot be loaded; the message names the fix."""
