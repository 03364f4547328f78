"""Each salon's language-model settings and its token spending per local day (issue 15):
the interface, its values and checks, and the in-memory twin.

``assistant_model_settings`` holds the salon's choice (on or off, the model, the daily token
cap); ``assistant_token_usage`` adds up each model call's tokens per (salon, day), where the
day is the salon's own local date (the caller decides it; storage keeps dates as given).
Unknown companies raise :class:`NotFound` on every call. The in-memory twin is
:mod:`storage._memory_model_usage`; PostgreSQL's is :mod:`storage._pg_model_usage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from . import _validate as v
from ._errors import ValidationError

__all__ = [
    "MAX_CALL_TOKENS",
    "MAX_DAILY_TOKEN_CAP",
    "MAX_HISTORY_DAYS",
    "MAX_MODEL_NAME",
    "SETTINGS_FIELDS",
    "ModelUsageStore",
    "SalonModelSettings",
    "TokenUsage",
    "check_company",
    "check_fields",
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
#: The fields of :class:`SalonModelSettings` that :meth:`ModelUsageStore.update_settings` sets.
SETTINGS_FIELDS = frozenset({"enabled", "model", "daily_token_cap"})


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

    async def update_settings(
        self, company_id: int, settings: SalonModelSettings, fields: frozenset[str]
    ) -> tuple[SalonModelSettings, bool]:
        """Set only ``fields`` (of :data:`SETTINGS_FIELDS`) of the salon's choice to
        ``settings``' values, in one atomic step, so concurrent changes of other fields are
        kept; a salon that never chose gets ``settings`` whole (the defaults with the change
        applied). Returns the choice after it and whether anything changed."""
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


def check_fields(fields: object) -> frozenset[str]:
    """``fields`` as a non-empty set of :data:`SETTINGS_FIELDS`, or :class:`ValidationError`."""
    if not isinstance(fields, frozenset) or not fields or not fields <= SETTINGS_FIELDS:
        raise ValidationError("fields", f"must be a non-empty set of {sorted(SETTINGS_FIELDS)}")
    return fields


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


def check_company(company_id: object) -> int:
    return v.positive_int("company_id", company_id)
