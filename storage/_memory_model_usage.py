"""The in-memory twin of :class:`~storage._model_usage.ModelUsageStore` (issue 15)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import trio

from ._model_usage import (
    SalonModelSettings,
    TokenUsage,
    check_company,
    check_fields,
    check_settings,
    check_span,
    check_usage,
)

if TYPE_CHECKING:
    from ._memory_db import MemoryDatabase

__all__ = ["MemoryModelUsage"]

_company = check_company


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

    async def update_settings(
        self, company_id: int, settings: SalonModelSettings, fields: frozenset[str]
    ) -> tuple[SalonModelSettings, bool]:
        await trio.lowlevel.checkpoint()
        check_settings(settings)
        check_fields(fields)
        self._db.require_company(_company(company_id))
        before = self._db.model_settings.get(company_id)
        if before is None:
            after = settings
        else:
            after = replace(before, **{name: getattr(settings, name) for name in fields})
        if after == before:
            return after, False
        self._db.model_settings[company_id] = after
        return after, True

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
