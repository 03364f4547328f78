"""The per-client flood limit on a salon's inbound messages, with a table that forgets.

At most ``limit`` messages of one client phone per window of ``window`` seconds (from that
client's first message in it) are handed on to the assistant; the rest are only recorded.

The table holds one entry per client whose window is still open, ordered by window start
(a new window goes to the end; a message inside a window does not move it). Each count first
drops the windows that have ended, oldest first, so the table never holds more than the
clients heard from within the last window before the latest message, and each entry is
dropped once: amortised O(1) work per message.
"""

from __future__ import annotations

from collections import OrderedDict


class FloodLimit:
    """Counts messages per key in fixed windows; see the module docstring.

    ``now`` is a monotonic time in seconds (the actor passes ``trio.current_time()``), never
    decreasing between calls.
    """

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a flood limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def __repr__(self) -> str:
        return f"<FloodLimit {self.limit}/{self.window:g}s clients={len(self._windows)}>"

    def allow(self, key: str, now: float) -> bool:
        """Count one message of ``key`` at ``now``; ``False`` once its window is over limit."""
        self.prune(now)
        entry = self._windows.get(key)
        if entry is None:
            self._windows[key] = (now, 1)  # a new window: the newest start, at the end
            return True
        start, count = entry
        self._windows[key] = (start, count + 1)  # keeps its place
        return count + 1 <= self.limit

    def prune(self, now: float) -> None:
        """Drop the windows that have ended by ``now`` (they are the oldest, at the front)."""
        windows = self._windows
        while windows:
            start, _ = next(iter(windows.values()))
            if now - start < self.window:
                return
            windows.popitem(last=False)
