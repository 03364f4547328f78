"""Fixtures every test folder may use: one throwaway PostgreSQL database and one Redis key
prefix per test session (removed at the end), and a fresh sub-prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
