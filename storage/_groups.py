"""Keep a nursery (ours or a library's) from wrapping the caller's own exception in a group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class BodyError:
    """Remembers the exception that left the ``with`` body, so it can be unwrapped later."""

    def __init__(self) -> None:
        self.error: BaseException | None = None


@asynccontextmanager
async def unwrap_single(tracker: BodyError) -> AsyncIterator[None]:
    """If the only error of an exception group is the body's own, raise it bare.

    Use: ``async with unwrap_single(t): async with lib_with_nursery(): try: yield except
    BaseException as e: t.error = e; raise``.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        inner = _only(group)
        if inner is not None and inner is tracker.error:
            raise inner from None
        raise


def _only(group: BaseExceptionGroup[Any]) -> BaseException | None:
    while len(group.exceptions) == 1:
        inner: BaseException = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None
