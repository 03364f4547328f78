"""Why the server could not start, in one line: what failed, at which address, what to check.

``aiadmin serve`` used to end a failed start with an 80–116-line traceback (the port taken,
PostgreSQL unreachable), and a Redis that was down at start only showed as 503s later.
:func:`explain_startup_failure` turns the known causes into one line (never a password: the
addresses are printed without their user information); :func:`check_redis_at_start` is the
production check that Redis answers before anything else starts.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from config import Settings
from storage import StorageError, StorageTimeout, StorageUnavailable, open_storage

# How long the start-up Redis check waits for its PING.
REDIS_CHECK_TIMEOUT = 3.0


class StartupFailed(Exception):
    """The server cannot start; the message is the one line shown to the operator."""


def address_of(url: str) -> str:
    """``host:port/path`` of a database or Redis URL, without user or password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    path = parts.path if parts.path not in ("", "/") else ""
    return f"{host}:{port}{path}" if port else f"{host}{path}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the members of exception groups, and their causes, depth first."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)


def _reason(exc: StorageError) -> str:
    """A short reason for a failed connection, from the driver's errors behind ``exc`` (their
    types, never their text: it may quote a DSN)."""
    causes = list(_chain(exc))[1:]
    names = {type(cause).__name__ for cause in causes}
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return "the host name does not resolve"
    if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}:
        return "authentication failed (check the user and password)"
    if "InvalidCatalogNameError" in names:
        return "the database does not exist"
    if "AuthenticationError" in names:
        return "authentication failed (check REDIS_PASSWORD)"
    timed_out = isinstance(exc, StorageTimeout) or "no answer within" in str(exc)
    if timed_out or any(isinstance(cause, TimeoutError) for cause in causes):
        return "no answer in time"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return "unavailable"


def _storage_line(exc: StorageError, settings: Settings) -> str | None:
    backend = getattr(exc, "backend", "")
    if backend == "postgresql" and settings.database_url:
        return (
            f"cannot reach PostgreSQL at {address_of(settings.database_url)} (DATABASE_URL): "
            f"{_reason(exc)}; check that PostgreSQL runs there and accepts connections"
        )
    if backend == "redis" and settings.redis_url:
        return (
            f"cannot reach Redis at {address_of(settings.redis_url)} (REDIS_URL): "
            f"{_reason(exc)}; check that Redis runs there and accepts connections"
        )
    return None


def _listen_line(exc: OSError, settings: Settings) -> str | None:
    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the address is already in use; stop the other "
            "server on that port or choose another PORT"
        )
    if exc.errno == errno.EACCES:
        return (
            f"cannot listen on {where}: permission denied (ports below 1024 need privileges); "
            "choose another PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: AIADMIN_HOST is not an address of this machine"
    return None


def explain_startup_failure(exc: BaseException, settings: Settings) -> str | None:
    """The one line for a known start-up failure inside ``exc``, or ``None`` (unknown: the
    caller shows the traceback, which is then a bug worth reading)."""
    for found in _chain(exc):
        if isinstance(found, StartupFailed):
            return str(found)
        if isinstance(found, (StorageUnavailable, StorageTimeout)):
            line = _storage_line(found, settings)
            if line is not None:
                return line
        elif isinstance(found, OSError) and found.filename is None:  # a socket's, not a file's
            line = _listen_line(found, settings)
            if line is not None:
                return line
    return None


async def check_redis_at_start(settings: Settings) -> None:
    """Production refuses to start without a Redis that answers (in development a Redis down
    at start only makes the calls that need it answer 503 until it is back).

    Raises :class:`StartupFailed` with the one line to show.
    """
    if not (settings.production and settings.redis_url):
        return
    timeout = min(REDIS_CHECK_TIMEOUT, settings.storage_timeout)
    async with open_storage(
        redis_url=settings.redis_url,
        redis_password=settings.redis_password,
        redis_prefix=settings.redis_prefix,
        storage_timeout=timeout,
    ) as storage:
        assert storage.redis is not None
        try:
            await storage.redis.call(storage.redis.client.ping())
        except StorageError as exc:
            line = _storage_line(exc, settings)
            raise StartupFailed(line or f"Redis is unavailable: {exc}") from exc
