"""Which language model a salon's assistant may use right now, and its token spending.

The LLM understander asks :meth:`ModelPolicy.choice` before each model call (``None`` means
understand with the rules: the salon switched the model off, or today's tokens reached its
daily cap) and reports each call's usage with :meth:`ModelPolicy.record_usage`.

:class:`SalonModelPolicy` is the implementation: the node's settings make the capability
available (``AIADMIN_LLM_BASE_URL``, with ``AIADMIN_LLM_MODEL`` as the default model), each
salon opts in through the admin API (``assistant_model_settings``; never chose = rules), as
the model costs money per message and sends the salon's chat text to a third party. Tokens
add up per salon and *local* day (the salon's time zone, ``companies.timezone``), so the cap
resets at the salon's midnight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from metrics import Counter, MetricsRegistry
from storage import NotFound, SalonModelSettings, Storage, StorageError, TokenUsage

from ..reminders._planner import salon_zone

__all__ = [
    "DEFAULT_DAILY_TOKEN_CAP",
    "ModelPolicy",
    "SalonModelPolicy",
    "TokenMetrics",
    "effective_cap",
    "model_allowed",
    "model_choice",
    "salon_day",
]

log = logging.getLogger("aiadmin.assistant.model")

#: The cap a salon gets when it switches the model on without naming one: about 150–250
#: messages a day at ~1,000 tokens per call.
DEFAULT_DAILY_TOKEN_CAP = 200_000
#: How long a salon's time zone is kept before it is read again (it changes only on sync).
ZONE_TTL_SECONDS = 600.0


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


def effective_cap(settings: SalonModelSettings, max_daily_tokens: int | None) -> int:
    """The salon's cap held to the node's ``AIADMIN_LLM_MAX_DAILY_TOKENS`` (a cap stored
    before the node lowered its limit counts only up to it)."""
    if max_daily_tokens is None:
        return settings.daily_token_cap
    return min(settings.daily_token_cap, max_daily_tokens)


def model_allowed(name: str, node_model: str | None, models: tuple[str, ...]) -> bool:
    """Whether a salon may use ``name``: any when the node lists none
    (``AIADMIN_LLM_MODELS``), else a listed one or the node's own model."""
    return not models or name in models or name == node_model


def model_choice(
    settings: SalonModelSettings | None,
    used: TokenUsage,
    node_model: str | None,
    *,
    max_daily_tokens: int | None = None,
    models: tuple[str, ...] = (),
) -> str | None:
    """The model for a salon with ``settings`` that spent ``used`` today, on a node with a
    model API whose default model is ``node_model``: ``None`` when the salon never opted in
    or switched it off, the cap (held to the node's limit) is reached, neither the salon nor
    the node names one, or the salon's model is not among the node's allowed ``models``."""
    if settings is None or not settings.enabled:
        return None
    if used.total >= effective_cap(settings, max_daily_tokens):
        return None
    name = settings.model or node_model or None
    if name is None or not model_allowed(name, node_model, models):
        return None
    return name


def salon_day(zone: ZoneInfo, now: datetime) -> date:
    """The salon's local date at ``now`` (an aware moment)."""
    return now.astimezone(zone).date()


class TokenMetrics:
    """``aiadmin_llm_tokens_total{kind="prompt|completion"}``: tokens spent by every salon of
    the node. Not labelled by salon (no metric here is: thousands of salons would make
    thousands of series); per salon the spending is in the API."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.tokens = registry.counter(
            "aiadmin_llm_tokens_total", "Language-model tokens the assistant spent", ("kind",)
        )

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.tokens.labels("prompt").inc(prompt_tokens)
        self.tokens.labels("completion").inc(completion_tokens)


class SalonModelPolicy:
    """:class:`ModelPolicy` over storage: the salon's stored choice, today's usage and cap.

    Built only on a node with a model API (``AIADMIN_LLM_BASE_URL``); ``node_model`` is its
    default model (``None``: only salons that name a model use one); ``max_daily_tokens``
    and ``models`` are the node's limits on the salons' choices; ``fallbacks``
    (``aiadmin_llm_fallbacks_total``) counts the messages the rules read because the salon's
    cap was reached (``cap_reached``) or its settings could not be read (``policy_error``) —
    not those of a salon that switched the model off or never chose. ``now`` gives the aware
    current moment (tests fix it). A storage failure in :meth:`choice` means the rules for
    that message; in :meth:`record_usage` it is logged (the metric still counts the tokens).
    """

    def __init__(
        self,
        storage: Storage,
        node_model: str | None,
        *,
        metrics: TokenMetrics | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_daily_tokens: int | None = None,
        models: tuple[str, ...] = (),
        fallbacks: Counter | None = None,
    ) -> None:
        self._storage = storage
        self._fallbacks = fallbacks
        self._node_model = node_model
        self._max_daily_tokens = max_daily_tokens
        self._models = models
        self._metrics = metrics
        self._now = now
        self._zones: dict[int, tuple[ZoneInfo, datetime]] = {}

    async def _zone(self, company_id: int, now: datetime) -> ZoneInfo:
        cached = self._zones.get(company_id)
        if cached is not None and (now - cached[1]).total_seconds() < ZONE_TTL_SECONDS:
            return cached[0]
        company = await self._storage.companies.get(company_id)
        if company is None:
            raise NotFound(f"company {company_id}")
        zone = salon_zone(company.timezone)
        self._zones[company_id] = (zone, now)
        return zone

    async def choice(self, company_id: int) -> str | None:
        now = self._now()
        try:
            day = salon_day(await self._zone(company_id, now), now)
            settings, used = await self._storage.model_usage.current(company_id, day)
        except StorageError as exc:
            log.warning("company %s: model settings unreadable, rules: %s", company_id, exc)
            self._count("policy_error")
            return None
        model = model_choice(
            settings,
            used,
            self._node_model,
            max_daily_tokens=self._max_daily_tokens,
            models=self._models,
        )
        on = settings is not None and settings.enabled
        cap = effective_cap(settings, self._max_daily_tokens) if settings is not None else 0
        if model is None and on and used.total >= cap:
            self._count("cap_reached")
        return model

    def _count(self, reason: str) -> None:
        if self._fallbacks is not None:
            self._fallbacks.labels(reason).inc()

    async def record_usage(
        self, company_id: int, prompt_tokens: int, completion_tokens: int
    ) -> None:
        prompt, completion = max(prompt_tokens, 0), max(completion_tokens, 0)
        if self._metrics is not None:
            self._metrics.add(prompt, completion)
        now = self._now()
        try:
            day = salon_day(await self._zone(company_id, now), now)
            await self._storage.model_usage.add_usage(company_id, day, prompt, completion)
        except StorageError as exc:
            log.warning("company %s: token usage not stored: %s", company_id, exc)
