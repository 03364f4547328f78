"""Errors raised by the actor runtime.

Hierarchy (shallow, named by the state the caller met)::

    ActorError                      base class; ``path`` names the actor or supervisor
    ├── ActorCrashed                the actor died while (or before) handling the message;
    │                               ``__cause__`` is the exception that killed it
    ├── ActorUnavailable            the actor is restarting, quarantined, stopping or stopped,
    │                               or its supervisor/registry is not running
    ├── AskTimeout                  no reply within the ``ask`` timeout
    ├── MailboxFull                 ``tell``/``ask`` found the bounded mailbox full (backpressure:
    │                               the web layer answers 503 with ``Retry-After``)
    └── RestartIntensityExceeded    a supervisor gave up on an infrastructure child and fails
                                    to its parent (OTP's ``reached_max_restart_intensity``)

Messages are built in ``__init__`` from the fields, so every instance reads the same way in logs.
They carry type names and exception messages only, never message payloads.
"""

from __future__ import annotations

__all__ = [
    "ActorCrashed",
    "ActorError",
    "ActorUnavailable",
    "AskTimeout",
    "MailboxFull",
    "RestartIntensityExceeded",
]

_MAX_REASON = 200


def unwrap(exc: BaseException) -> BaseException:
    """The single exception inside (nested) one-member exception groups, e.g. a nursery's."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, truncated (used in errors, logs and snapshots)."""
    text = str(exc)
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ActorError(Exception):
    """Base class of every runtime error; ``path`` is ``supervisor/child`` of the target."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class ActorCrashed(ActorError):
    """The actor crashed; the message's ask (if any) will never be answered.

    ``cause`` (also ``__cause__``) is the exception that crashed the actor.
    """

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(path, f"actor {path} crashed: {describe(cause)}")
        self.cause = cause
        self.__cause__ = cause


class ActorUnavailable(ActorError):
    """The actor cannot take messages now; ``state`` says why (``restarting``, ``failed``...)."""

    def __init__(self, path: str, state: str, reason: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(path, f"actor {path} is unavailable: {state}{detail}")
        self.state = state
        self.reason = reason


class AskTimeout(ActorError):
    """No reply within ``timeout`` seconds. The message may still be handled later."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(path, f"no reply from actor {path} within {timeout:g} s")
        self.timeout = timeout


class MailboxFull(ActorError):
    """The mailbox holds ``capacity`` messages already; retry later."""

    def __init__(self, path: str, capacity: int) -> None:
        super().__init__(path, f"mailbox of actor {path} is full ({capacity} messages)")
        self.capacity = capacity


class RestartIntensityExceeded(ActorError):
    """More than ``max_restarts`` restarts of one child within ``period`` seconds."""

    def __init__(self, path: str, max_restarts: int, period: float, cause: BaseException) -> None:
        super().__init__(
            path,
            f"child {path} exceeded {max_restarts} restarts in {period:g} s; "
            f"last error: {describe(cause)}",
        )
        self.max_restarts = max_restarts
        self.period = period
        self.cause = cause
        self.__cause__ = cause
