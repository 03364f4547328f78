"""Fixtures every test folder may use: one throwaway PostgreSQL database and one Redis key
prefix per test session (removed at the end), and a fresh sub-prefix per test; and the hook
that fails the run on a skip whose reason is not allowed (see ``ALLOWED_SKIP_REASONS``)."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator

import pytest

from tests.support.databases import pg_database, redis_prefix_session


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database of its own; tests empty its tables as they open it."""
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_session_prefix() -> Iterator[str]:
    with redis_prefix_session("test") as prefix:
        yield prefix


@pytest.fixture
def redis_prefix(redis_session_prefix: str) -> str:
    return f"{redis_session_prefix}{uuid.uuid4().hex[:8]}:"


# ---------------------------------------------------------------- no silent skips
# A skipped test is not a passing one: on a fresh machine `make test` installs what every test
# needs (scripts/ensure-system-deps.sh), so a skip means something is missing or wrong. A skip
# fails the run unless its reason is listed here as one that applies to the machine (none).

#: Skip reasons (the text given to ``pytest.skip`` / ``skipif``) allowed to stand.
ALLOWED_SKIP_REASONS: frozenset[str] = frozenset()


class SkipNotAllowed(Exception):
    """A test or module skipped for a reason not in :data:`ALLOWED_SKIP_REASONS`."""


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip report carries (pytest's ``Skipped: `` prefix removed)."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _refuse_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip whose reason is not allowed into a failure that names the reason."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if reason in ALLOWED_SKIP_REASONS:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{SkipNotAllowed.__name__}: skipped ({reason!r}), and a skipped test is not a passing "
        "one; install what it needs (`make test` does) or list the reason in "
        "ALLOWED_SKIP_REASONS (tests/conftest.py) if it applies to this machine"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _refuse_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _refuse_skip(report)
    return report
