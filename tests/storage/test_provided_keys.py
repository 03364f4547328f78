"""Contract: callers may provide the API key / webhook secret (and a version) instead of random
ones — in memory and on PostgreSQL alike. Only the hash is stored; the versions are kept."""

from __future__ import annotations

import pytest

from storage import NotFound, Storage, ValidationError

KEY_1 = "sk_" + "A" * 43
KEY_2 = "sk_" + "B" * 43
SECRET_1 = "whs_" + "C" * 43
SECRET_2 = "whs_" + "D" * 43


async def test_create_with_provided_secrets_and_version(storage: Storage) -> None:
    new = await storage.companies.create(501, api_key=KEY_1, webhook_secret=SECRET_1, key_version=1)
    company = new.company
    assert new.api_key == KEY_1 and new.webhook_secret == SECRET_1
    assert company.api_key_version == 1 and company.webhook_secret_version == 1
    assert company.api_key_prefix == KEY_1[:11]
    assert company.webhook_secret_prefix == SECRET_1[:12]
    assert await storage.companies.verify_api_key(company.id, KEY_1)
    assert await storage.companies.verify_webhook_secret(company.id, SECRET_1)
    assert not await storage.companies.verify_api_key(company.id, KEY_2)
    found = await storage.companies.find_by_api_key(KEY_1)
    assert found is not None and found.id == company.id
    again = await storage.companies.get(company.id)
    assert again is not None
    assert (again.api_key_version, again.webhook_secret_version) == (1, 1)
    assert KEY_1 not in repr(new) and SECRET_1 not in repr(again)


async def test_random_secrets_have_version_zero(storage: Storage) -> None:
    company = (await storage.companies.create(502)).company
    assert (company.api_key_version, company.webhook_secret_version) == (0, 0)


async def test_rotate_to_provided_key_sets_version_in_the_same_write(storage: Storage) -> None:
    company = (await storage.companies.create(503, api_key=KEY_1, key_version=1)).company
    assert await storage.companies.rotate_api_key(company.id, KEY_2, version=2) == KEY_2
    assert not await storage.companies.verify_api_key(company.id, KEY_1)
    assert await storage.companies.verify_api_key(company.id, KEY_2)
    assert await storage.companies.rotate_webhook_secret(company.id, SECRET_2, version=5) == (
        SECRET_2
    )
    assert await storage.companies.verify_webhook_secret(company.id, SECRET_2)
    after = await storage.companies.get(company.id)
    assert after is not None
    assert (after.api_key_version, after.webhook_secret_version) == (2, 5)
    assert after.api_key_prefix == KEY_2[:11]


async def test_rotate_without_version_keeps_it(storage: Storage) -> None:
    company = (await storage.companies.create(504, key_version=3)).company
    random_key = await storage.companies.rotate_api_key(company.id)
    assert random_key.startswith("sk_") and random_key not in (KEY_1, KEY_2)
    after = await storage.companies.get(company.id)
    assert after is not None and after.api_key_version == 3
    assert await storage.companies.verify_api_key(company.id, random_key)


async def test_revoked_credentials_keep_their_versions(storage: Storage) -> None:
    company = (await storage.companies.create(505, api_key=KEY_1, key_version=4)).company
    await storage.companies.revoke_credentials(company.id)
    after = await storage.companies.get(company.id)
    assert after is not None and after.api_key_version == 4 and after.api_key_prefix is None
    assert not await storage.companies.verify_api_key(company.id, KEY_1)


@pytest.mark.parametrize(
    "bad",
    [
        "whs_" + "x" * 40,
        "sk_short",
        "sk_" + "x" * 20 + " y",
        "sk_" + "x" * 300,
        "sk_" + "\x00" * 20,
    ],
)
async def test_malformed_provided_key_is_refused(storage: Storage, bad: str) -> None:
    with pytest.raises(ValidationError):
        await storage.companies.create(506, api_key=bad)
    assert await storage.companies.get_by_salon(506) is None
    company = (await storage.companies.create(507)).company
    with pytest.raises(ValidationError):
        await storage.companies.rotate_api_key(company.id, bad)


async def test_bad_version_and_unknown_company(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        await storage.companies.create(508, key_version=-1)
    company = (await storage.companies.create(509)).company
    with pytest.raises(ValidationError):
        await storage.companies.rotate_webhook_secret(company.id, SECRET_1, version=2**31)
    with pytest.raises(NotFound):
        await storage.companies.rotate_api_key(99999, KEY_1, version=1)


async def test_claim_due_by_kind(storage: Storage) -> None:
    """Each outbox worker claims only its own kind (used by the activation delivery)."""
    company = (await storage.companies.create(510)).company
    other = await storage.outbox.enqueue("other.kind", "k-other", company.id, {})
    mine = await storage.outbox.enqueue("yclients.activation", "k-mine", company.id, {})
    claimed = await storage.outbox.claim_due(10, kind="yclients.activation")
    assert [i.id for i in claimed] == [mine.id]
    rest = await storage.outbox.claim_due(10)
    assert [i.id for i in rest] == [other.id]
