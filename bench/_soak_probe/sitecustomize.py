"""The soak bench's memory probe, loaded only by ``bench/soak.py --probe`` (this folder first
on the served process's ``PYTHONPATH``). On SIGUSR1 the process writes its live object counts
by type and its largest containers to ``$SOAK_PROBE_DIR/counts-<n>.txt`` and, with
``SOAK_TRACEMALLOC=1`` (tracing from the first signal on), a tracemalloc snapshot beside them.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType

_DIR = os.environ.get("SOAK_PROBE_DIR")
_SEQUENCE = itertools.count()


def _owner(container: object) -> str:
    """A hint of who holds ``container``: the type of the object whose ``__dict__`` it is."""
    for referrer in gc.get_referrers(container):
        if isinstance(referrer, dict) and referrer is not container:
            for holder in gc.get_referrers(referrer):
                if getattr(holder, "__dict__", None) is referrer:
                    for name, value in referrer.items():
                        if value is container:
                            return f"{type(holder).__module__}.{type(holder).__qualname__}.{name}"
        elif hasattr(referrer, "__slots__"):
            return f"{type(referrer).__module__}.{type(referrer).__qualname__} (slots)"
    return "?"


def _dump(signum: int, frame: FrameType | None) -> None:
    assert _DIR is not None
    n = next(_SEQUENCE)
    gc.collect()
    objects = gc.get_objects()
    counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    sized = [o for o in objects if isinstance(o, dict | list | set)]
    sized.sort(key=len, reverse=True)
    lines = [f"objects {len(objects)}"]
    lines += [f"{count} {name}" for name, count in counts.most_common(80)]
    lines.append("# largest containers")
    for container in sized[:25]:
        lines.append(f"{len(container)} {type(container).__name__} {_owner(container)}")
    del objects, sized
    Path(_DIR, f"counts-{n:02d}.txt").write_text("\n".join(lines) + "\n")
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(Path(_DIR, f"snap-{n:02d}.pickle")))
    elif os.environ.get("SOAK_TRACEMALLOC"):
        tracemalloc.start(10)  # from the first point on: start-up stays fast


if _DIR:
    signal.signal(signal.SIGUSR1, _dump)
