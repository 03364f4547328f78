"""``Backoff``: exponential backoff with jitter, one value object for every retry loop.

Attempt *n* (1-based) has the nominal delay ``d = min(maximum, initial * 2 ** (n - 1))``; the
jitter mode then spreads it so that many clients failing together do not retry together:

- :attr:`Jitter.SPREAD` — ``d`` scaled by a random factor in ``[1 - jitter, 1 + jitter]`` and
  capped at ``maximum`` again ("d ± 30 %" is ``jitter=0.3``);
- :attr:`Jitter.BELOW` — a random value in ``[d * (1 - jitter), d]``, never above the nominal
  delay ("equal jitter", ``[d/2, d]``, is ``jitter=0.5``).

The random generator is always passed in (never the global ``random``), so a seeded
``random.Random`` makes a whole retry schedule reproducible in tests. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Backoff", "Jitter"]

# 2.0 ** 1024 overflows a float; beyond this exponent every delay is ``maximum`` anyway.
_MAX_EXPONENT = 1023


class Jitter(enum.StrEnum):
    """How :class:`Backoff` spreads the nominal delay ``d`` of an attempt."""

    SPREAD = "spread"  # d × [1 - jitter, 1 + jitter], capped at maximum
    BELOW = "below"  # [d × (1 - jitter), d]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of an exponential backoff: ``initial`` doubling per attempt up to ``maximum``,
    spread by ``jitter`` (a fraction in ``[0, 1]``) the way ``mode`` says (see the module)."""

    initial: float
    maximum: float
    jitter: float = 0.0
    mode: Jitter = Jitter.SPREAD

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("initial and maximum must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    def nominal(self, attempt: int) -> float:
        """The delay of ``attempt`` (1-based; below 1 counts as 1) before jitter."""
        exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
        return min(self.maximum, self.initial * 2.0**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The jittered wait before ``attempt`` (1-based; below 1 counts as 1); draws one value
        from ``rng``, also when ``jitter`` is 0, so schedules stay aligned across settings."""
        base = self.nominal(attempt)
        draw = rng.random()
        if self.mode is Jitter.BELOW:
            return base * (1.0 - self.jitter) + base * self.jitter * draw
        factor = 1.0 + self.jitter * (2.0 * draw - 1.0)
        return max(0.0, min(self.maximum, base * factor))
