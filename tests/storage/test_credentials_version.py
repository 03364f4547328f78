"""``credentials_version``: the version a company JWT carries, bumped by re-issuing the connect
URL and by uninstall (revoking credentials) — the same on PostgreSQL and in memory."""

from __future__ import annotations

import pytest

from storage import NotFound, Storage


async def test_a_new_company_starts_at_version_zero(storage: Storage) -> None:
    company = (await storage.companies.create(101)).company
    assert company.credentials_version == 0
    fetched = await storage.companies.get(company.id)
    assert fetched is not None and fetched.credentials_version == 0


async def test_bump_and_revoke_move_the_version_on(storage: Storage) -> None:
    created = await storage.companies.create(102)
    cid = created.company.id
    assert await storage.companies.bump_credentials_version(cid) == 1
    assert await storage.companies.bump_credentials_version(cid) == 2
    await storage.companies.revoke_credentials(cid)
    company = await storage.companies.get(cid)
    assert company is not None and company.credentials_version == 3
    by_salon = await storage.companies.get_by_salon(102)
    assert by_salon is not None and by_salon.credentials_version == 3
    # other columns untouched by a bump
    assert company.api_key_version == created.company.api_key_version


async def test_bump_of_a_missing_company_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.companies.bump_credentials_version(999_999)
