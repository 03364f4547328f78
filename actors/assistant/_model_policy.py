"""Which language model a salon's assistant may use right now, and its token spending.

The LLM understander asks :meth:`ModelPolicy.choice` before each model call (``None`` means
understand with the rules: the salon switched the model off, or today's tokens reached its
daily cap) and reports each call's usage with :meth:`ModelPolicy.record_usage`.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ModelPolicy"]


class ModelPolicy(Protocol):
    """Per-salon model choice and token accounting, as the LLM understander sees it."""

    async def choice(self, company_id: int) -> str | None:
        """The model to use for this salon now, or ``None`` = rules only (switched off, or
        the salon's daily token cap reached)."""
        ...

    async def record_usage(
        self, company_id: int, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Add one model call's tokens to the salon's count for its local day."""
        ...
