"""The bound of a shutdown: ``AIADMIN_SHUTDOWN_GRACE`` seconds (``G``) from the trigger to the end.

How the grace is shared, counted from the moment the shutdown trigger fires:

* **HTTP**: Hypercorn stops accepting; open requests and WebSockets get :func:`http_grace`
  (``0.4 G``, at most 5 s), then they are cancelled.
* **The supervision tree** stops in reverse order and is done by ``0.8 G``
  (``Supervisor.stop_by``: every budget, ``math.inf`` ones and nested registries included,
  is cut to what is left; an actor whose ``on_stop`` still runs then is cancelled).
* **Everything else** (the WhatsApp gateway and its session hosts, the YClients client, the
  storage pools) is cancelled at ``0.9 G`` if it is still closing.
* **A process stopped by a signal** that is still alive at ``G`` (something ignored
  cancellation: a blocked thread, a shielded wait) logs which step it was in and exits at
  once with status :data:`EXIT_OVERRAN`. The watchdog is a daemon thread on the wall clock, so
  neither a stuck trio loop nor a non-daemon thread at interpreter exit can hold it up. It is
  armed only for signals (``serve`` without ``shutdown_trigger``): an embedding caller (tests)
  keeps its process.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

__all__ = ["EXIT_OVERRAN", "ShutdownBound", "http_grace"]

log = logging.getLogger("aiadmin.server")

HTTP_SHARE = 0.4
HTTP_MAX = 5.0
TREE_SHARE = 0.8
REST_SHARE = 0.9
#: The exit status of a signalled process whose shutdown overran its grace.
EXIT_OVERRAN = 1


def http_grace(grace: float) -> float:
    """Seconds Hypercorn gives open requests and WebSockets once the shutdown begins."""
    return min(HTTP_MAX, HTTP_SHARE * grace)


class _Tree(Protocol):
    def stop_by(self, deadline: float) -> None: ...


class ShutdownBound:
    """One shutdown's bound (see the module docstring): the cancel scope the whole server runs
    in (its deadline is set when the shutdown begins), the tree's stop deadline, the step the
    shutdown is in, and the watchdog of a signalled process."""

    def __init__(self, grace: float, *, hard_exit: bool) -> None:
        self.grace = grace
        self.hard_exit = hard_exit
        self.scope = trio.CancelScope()
        self.began: float | None = None
        self.step = "stopping HTTP (open requests and WebSockets)"
        self._tree: _Tree | None = None
        self._watchdog: threading.Timer | None = None

    def bound_tree(self, tree: _Tree) -> None:
        """The supervision tree whose stop must end by ``0.8 G`` once the shutdown begins."""
        self._tree = tree
        if self.began is not None:
            tree.stop_by(self.began + TREE_SHARE * self.grace)

    def enter(self, step: str) -> None:
        """Name the step the shutdown is in now (for the watchdog's last line)."""
        self.step = step

    def begin(self) -> None:
        """The shutdown begins now: set every deadline, arm the watchdog (idempotent)."""
        if self.began is not None:
            return
        self.began = now = trio.current_time()
        self.scope.deadline = now + REST_SHARE * self.grace
        if self._tree is not None:
            self._tree.stop_by(now + TREE_SHARE * self.grace)
        if self.hard_exit:
            self._watchdog = threading.Timer(self.grace, self._overran)
            self._watchdog.daemon = True
            self._watchdog.name = "aiadmin-shutdown-watchdog"
            self._watchdog.start()

    def trigger(self, wait: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """``wait`` (the shutdown trigger), beginning the shutdown when it returns."""

        async def triggered() -> None:
            await wait()
            self.begin()

        return triggered

    def _overran(self) -> None:
        """The watchdog: the grace is over and the process is still here."""
        try:
            log.critical(
                "shutdown did not finish within %g s (AIADMIN_SHUTDOWN_GRACE) while %s; "
                "exiting now",
                self.grace,
                self.step,
            )
            logging.shutdown()  # flushes every handler
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(EXIT_OVERRAN)
