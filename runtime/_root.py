"""``run_root``: run the root of a supervision tree inside a nursery you do not own.

Quart-Trio runs background work in ``app.nursery``; an exception escaping into it kills the
app. ``run_root`` is the firewall: failures after the tree is up are logged and handed to
``on_failure``, never raised into the caller's nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ._errors import describe
from ._spec import Service

__all__ = ["run_root"]

log = logging.getLogger("runtime.root")


class _Forward:
    __slots__ = ("outer", "started_")

    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self.outer = outer
        self.started_ = False

    def started(self, value: object = None) -> None:
        self.started_ = True
        self.outer.started()


async def run_root(
    root: Service,
    *,
    on_failure: Callable[[BaseException], Any] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``root`` (usually a :class:`Supervisor`) and contain its failure.

    Use ``await nursery.start(run_root, root)``. A failure *before* ``root`` is ready is raised
    to that ``start`` call (a boot error must stop the boot). A failure after it — e.g.
    ``RestartIntensityExceeded`` from escalation — is logged at CRITICAL and passed to
    ``on_failure`` (say, to mark the node unhealthy or shut down), and ``run_root`` returns
    normally. Cancellation stops ``root`` as usual.
    """
    status = _Forward(task_status)
    try:
        await root.run(task_status=status)
    except Exception as exc:
        if not status.started_:
            raise
        log.critical("supervision tree failed: %s", describe(exc), exc_info=exc)
        if on_failure is not None:
            try:
                on_failure(exc)
            except Exception:
                log.exception("on_failure callback failed")
