"""Child specifications and restart policy: plain values, no I/O (see ``_supervisor``).

:class:`RestartPolicy` has the same field names as ``config.SupervisorLimits`` so a caller maps
one to the other with ``RestartPolicy(**dataclasses.asdict(limits))``; the runtime imports
nothing of the project.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ._backoff import Backoff, Jitter

if TYPE_CHECKING:
    from ._actor import Actor

__all__ = ["ChildSpec", "OnExhausted", "Restart", "RestartPolicy", "Service", "Strategy"]


class Restart(enum.StrEnum):
    """When a child that ended is started again (OTP's restart types)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after a crash (an exception), not after a normal exit
    TEMPORARY = "temporary"  # never


class Strategy(enum.StrEnum):
    """What else a supervisor restarts when one child ends."""

    ONE_FOR_ONE = "one_for_one"  # only that child (tenants)
    REST_FOR_ONE = "rest_for_one"  # that child and every child started after it


class OnExhausted(enum.StrEnum):
    """What happens when a child exceeds its restart intensity."""

    ESCALATE = "escalate"  # the supervisor stops its children and fails to its parent
    QUARANTINE = "quarantine"  # the child is parked as ``failed`` and retried on a slow timer


class Service(Protocol):
    """A supervised child that is not an actor (a nested supervisor, a registry, a poller).

    ``run`` calls ``task_status.started()`` once it can serve and runs until cancelled; returning
    is a normal exit and raising is a crash.
    """

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart intensity and backoff, counted per child.

    - intensity: more than ``max_restarts`` restarts within ``period`` seconds gives up
      (see :class:`OnExhausted`);
    - backoff before restart *n* of a crash streak: 0 for the first, then
      ``backoff_initial * 2 ** (n - 2)`` capped at ``backoff_max``, scaled by a random factor in
      ``[1 - jitter, 1 + jitter]`` and capped again (so never above ``backoff_max``);
    - a child that ran ``stable_after`` seconds without crashing starts a new streak (backoff
      back to 0, quarantine probation over);
    - a quarantined child is retried every ``quarantine_retry`` seconds; if it crashes again
      before it is stable it goes straight back to quarantine.
    """

    max_restarts: int = 5
    period: float = 60.0
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    stable_after: float = 60.0
    quarantine_retry: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        for name in ("period", "backoff_initial", "backoff_max", "stable_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.quarantine_retry <= 0:
            raise ValueError("quarantine_retry must be > 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    @property
    def restart_backoff(self) -> Backoff:
        """The backoff of restarts after the first (``Jitter.SPREAD`` by ``jitter``)."""
        return Backoff(self.backoff_initial, self.backoff_max, self.jitter, Jitter.SPREAD)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before restart number ``attempt`` (0-based) of the current crash streak."""
        if attempt <= 0:
            return 0.0
        return self.restart_backoff.delay(attempt, rng)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How a supervisor starts and restarts one child.

    ``factory`` is called (synchronously) for every incarnation: it may build a fresh
    :class:`Actor` (the usual case; slow work goes in ``Actor.on_start``) or hand back a
    long-lived :class:`Service` (a nested supervisor, a registry, a node service) whose ``run``
    is then entered again; such a service keeps its state across restarts and must be able to
    run again after ``run`` returned or raised. ``shutdown`` is the graceful
    stop budget in seconds (use ``math.inf`` for a nested supervisor, as OTP does).
    ``on_exhausted`` ``None`` means "by placement": children listed when the supervisor is built
    (static, infrastructure) escalate, children added with ``start_child`` (dynamic, tenants)
    are quarantined. ``mailbox_capacity`` applies to actors only.
    """

    id: str
    factory: Callable[[], Actor | Service]
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    on_exhausted: OnExhausted | None = None
    mailbox_capacity: int = 64

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id:
            raise ValueError(f"child id must be non-empty and without '/': {self.id!r}")
        if self.shutdown < 0:
            raise ValueError("shutdown must be >= 0")
        if self.mailbox_capacity < 1:
            raise ValueError("mailbox_capacity must be >= 1")
