"""Each salon's language-model settings and its token spending per local day (issue 15):
the interface, its values and checks, and the in-memory twin.

``assistant_model_settings`` holds the salon's choice (on or off, the model, the daily token
cap); ``assistant_token_usage`` adds up each model call's tokens per (salon, day), where the
day is the salon's own local date (the caller decides it; storage keeps dates as given).
Unknown companies raise :class:`NotFound` on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Protocol

import trio

from . import _validate as v
from ._errors import ValidationError

if TYPE_CHECKING:
    from ._memory_db import MemoryDatabase

__all__ = [
    "MAX_CALL_TOKENS",
    "MAX_DAILY_TOKEN_CAP",
    "MAX_HISTORY_DAYS",
    "MAX_MODEL_NAME",
    "MemoryModelUsage",
    "ModelUsageStore",
    "SalonModelSettings",
    "TokenUsage",
    "check_settings",
    "check_span",
    "check_usage",
]

#: The longest model name stored (``assistant_model_settings.model``).
MAX_MODEL_NAME = 100
#: The largest daily cap a salon may set (a billion tokens).
MAX_DAILY_TOKEN_CAP = 1_000_000_000
#: The longest span :meth:`ModelUsageStore.history` reads at once.
MAX_HISTORY_DAYS = 366
#: The most tokens of one kind one call may add (a sanity bound on a server's ``usage``).
MAX_CALL_TOKENS = v.MAX_INT32


@dataclass(frozen=True)
class SalonModelSettings:
    """A salon's choice: use the model or not, which one (``None``: the node's), and the most
    tokens (prompt + completion) its calls may spend in one of its local days."""

    enabled: bool
    model: str | None
    daily_token_cap: int


@dataclass(frozen=True)
class TokenUsage:
    """Tokens a salon's model calls spent on one local day."""

    day: date
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelUsageStore(Protocol):
    """Per-salon model settings and daily token counts."""

    async def get_settings(self, company_id: int) -> SalonModelSettings | None:
        """The salon's stored choice, or ``None`` (it never chose)."""
        ...

    async def put_settings(self, company_id: int, settings: SalonModelSettings) -> None:
        """Replace the salon's choice."""
        ...

    async def current(
        self, company_id: int, day: date
    ) -> tuple[SalonModelSettings | None, TokenUsage]:
        """The stored choice and ``day``'s usage, in one read (what each message asks)."""
        ...

    async def usage(self, company_id: int, day: date) -> TokenUsage:
        """``day``'s usage (zeros when nothing was spent)."""
        ...

    async def add_usage(
        self, company_id: int, day: date, prompt_tokens: int, completion_tokens: int
    ) -> TokenUsage:
        """Add one call's tokens to ``day`` (one upsert); the day's totals after it."""
        ...

    async def history(self, company_id: int, first: date, last: date) -> list[TokenUsage]:
        """The days from ``first`` to ``last`` (both included, at most
        :data:`MAX_HISTORY_DAYS`) that spent tokens, newest first."""
        ...


def check_settings(settings: SalonModelSettings) -> SalonModelSettings:
    """``settings`` as storable, or :class:`ValidationError`."""
    v.boolean("enabled", settings.enabled)
    if settings.model is not None:
        name = v.text("model", settings.model, MAX_MODEL_NAME)
        if not name.strip():
            raise ValidationError("model", "must not be blank")
    v.positive_int("daily_token_cap", settings.daily_token_cap, high=MAX_DAILY_TOKEN_CAP)
    return settings


def check_usage(day: object, prompt_tokens: object, completion_tokens: object) -> date:
    """The day (a ``date``, not a ``datetime``) and token counts (0 … ``MAX_CALL_TOKENS``)."""
    if not isinstance(day, date) or hasattr(day, "hour"):
        raise ValidationError("day", "must be a date")
    for field, value in (
        ("prompt_tokens", prompt_tokens),
        ("completion_tokens", completion_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
        if not 0 <= value <= MAX_CALL_TOKENS:
            raise ValidationError(field, f"must be between 0 and {MAX_CALL_TOKENS}")
    return day


def check_span(first: object, last: object) -> tuple[date, date]:
    """``first`` … ``last`` as dates in order, spanning at most :data:`MAX_HISTORY_DAYS`."""
    start, end = check_usage(first, 0, 0), check_usage(last, 0, 0)
    if not 0 <= (end - start).days < MAX_HISTORY_DAYS:
        raise ValidationError("last", f"must be from first to {MAX_HISTORY_DAYS - 1} days after")
    return start, end


def _company(company_id: object) -> int:
    return v.positive_int("company_id", company_id)


class MemoryModelUsage:
    """:class:`ModelUsageStore` in memory (dicts on the :class:`MemoryDatabase`)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def get_settings(self, company_id: int) -> SalonModelSettings | None:
        await trio.lowlevel.checkpoint()
        self._db.require_company(_company(company_id))
        return self._db.model_settings.get(company_id)

    async def put_settings(self, company_id: int, settings: SalonModelSettings) -> None:
        await trio.lowlevel.checkpoint()
        check_settings(settings)
        self._db.require_company(_company(company_id))
        self._db.model_settings[company_id] = settings

    async def current(
        self, company_id: int, day: date
    ) -> tuple[SalonModelSettings | None, TokenUsage]:
        await trio.lowlevel.checkpoint()
        check_usage(day, 0, 0)
        self._db.require_company(_company(company_id))
        used = self._db.token_usage.get((company_id, day), TokenUsage(day))
        return self._db.model_settings.get(company_id), used

    async def usage(self, company_id: int, day: date) -> TokenUsage:
        await trio.lowlevel.checkpoint()
        check_usage(day, 0, 0)
        self._db.require_company(_company(company_id))
        return self._db.token_usage.get((company_id, day), TokenUsage(day))

    async def add_usage(
        self, company_id: int, day: date, prompt_tokens: int, completion_tokens: int
    ) -> TokenUsage:
        await trio.lowlevel.checkpoint()
        check_usage(day, prompt_tokens, completion_tokens)
        self._db.require_company(_company(company_id))
        old = self._db.token_usage.get((company_id, day), TokenUsage(day))
        new = TokenUsage(
            day,
            old.prompt_tokens + prompt_tokens,
            old.completion_tokens + completion_tokens,
            old.calls + 1,
        )
        self._db.token_usage[(company_id, day)] = new
        return new

    async def history(self, company_id: int, first: date, last: date) -> list[TokenUsage]:
        await trio.lowlevel.checkpoint()
        start, end = check_span(first, last)
        self._db.require_company(_company(company_id))
        days = (end - timedelta(days=n) for n in range((end - start).days + 1))
        found = (self._db.token_usage.get((company_id, day)) for day in days)
        return [used for used in found if used is not None]
