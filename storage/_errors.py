"""Storage errors, and the one place foreign exceptions are translated.

    StorageError                  base of everything raised by ``storage``
    ├── StorageUnavailable        the backend cannot be reached (refused, lost, pool closed)
    ├── StorageTimeout            the backend answered too slowly (statement / read timeout)
    ├── Conflict                  a unique rule was broken (e.g. a second company per salon)
    ├── NotFound                  the row the call is about does not exist
    ├── ValidationError           a value cannot be stored (NUL byte, too long, wrong type)
    └── StaleEpoch                a fenced write whose lease epoch is no longer the current one

Nothing from asyncpg or coredis leaves the package: adapters wrap every call in
:func:`map_exceptions` and raise ours ``from`` the original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager


class StorageError(Exception):
    """Base class: something went wrong storing or loading data."""


class StorageUnavailable(StorageError):
    """The backend is down or the connection was lost; retrying later may succeed."""

    def __init__(self, backend: str, detail: str = "") -> None:
        self.backend = backend
        super().__init__(f"{backend} is unavailable" + (f": {detail}" if detail else ""))


class StorageTimeout(StorageError):
    """The backend did not answer within its time budget."""

    def __init__(self, backend: str, detail: str = "") -> None:
        self.backend = backend
        super().__init__(f"{backend} timed out" + (f": {detail}" if detail else ""))


class Conflict(StorageError):
    """A uniqueness rule refused the write (``what`` names the rule)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"conflict: {what}")


class NotFound(StorageError):
    """The row addressed by the call does not exist."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"not found: {what}")


class ValidationError(StorageError):
    """A value was refused before reaching the backend; ``field`` names it (never the value)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class StaleEpoch(StorageError):
    """A write fenced by a company's lease epoch came after another node took the lease
    (the epoch moved on): it was refused and changed nothing."""

    def __init__(self, company_id: int, epoch: int, current: int) -> None:
        self.company_id = company_id
        self.epoch = epoch
        self.current = current
        super().__init__(
            f"company {company_id}: lease epoch {epoch} is stale (now {current}); "
            "another node owns it"
        )


ErrorFactory = Callable[[BaseException], StorageError]
"""Builds one of our errors from a foreign exception."""


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a foreign exception: its type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    # Connection errors may echo a DSN; never let a password through.
    if "://" in text or "password" in text.lower():
        text = ""
    return type(exc).__name__ + (f": {text[:200]}" if text else "")


@contextmanager
def map_exceptions(mapping: Mapping[type[BaseException], ErrorFactory]) -> Iterator[None]:
    """Translate foreign exceptions; the first matching key (in order) builds the new error.

    Our own :class:`StorageError` passes through untouched, and so does anything unmatched
    (cancellation included). The new error is raised ``from`` the foreign one.
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        for foreign, build in mapping.items():
            if isinstance(exc, foreign):
                raise build(exc) from exc
        raise


def unavailable(backend: str) -> ErrorFactory:
    """Mapping value: the backend is unavailable."""
    return lambda exc: StorageUnavailable(backend, describe(exc))


def timed_out(backend: str) -> ErrorFactory:
    """Mapping value: the backend timed out."""
    return lambda exc: StorageTimeout(backend, describe(exc))
