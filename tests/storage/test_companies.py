"""Contract: companies, credentials, status transitions (memory and PostgreSQL)."""

from __future__ import annotations

import pytest
import trio

from storage import (
    CompanyStatus,
    Conflict,
    NotFound,
    Storage,
    ValidationError,
)
from tests.support.clock import FakeWallClock


async def test_create_returns_company_and_secrets_once(storage: Storage) -> None:
    new = await storage.companies.create(962302, phone="79001234567", email="s@example.com")
    company = new.company
    assert company.yclients_id == 962302
    assert company.phone == "79001234567"
    assert company.timezone == "Europe/Moscow"
    assert company.integration_status == "pending"
    assert company.status is CompanyStatus.PENDING
    assert company.whatsapp_connected is False
    assert company.ai_enabled is True and company.sync_enabled is True
    assert new.api_key.startswith("sk_") and len(new.api_key) > 40
    assert new.webhook_secret.startswith("whs_")
    assert company.api_key_prefix == new.api_key[:11]
    assert new.api_key not in repr(new) and new.webhook_secret not in repr(new)
    assert new.api_key not in repr(company)
    assert await storage.companies.get(company.id) == company
    assert await storage.companies.get_by_salon(962302) == company


async def test_second_company_for_salon_conflicts(storage: Storage) -> None:
    await storage.companies.create(1)
    with pytest.raises(Conflict):
        await storage.companies.create(1)
    assert await storage.companies.count() == 1


async def test_get_many_reads_companies_by_id(storage: Storage) -> None:
    one = (await storage.companies.create(101)).company
    two = (await storage.companies.create(102)).company
    got = await storage.companies.get_many([one.id, two.id, two.id + 100, one.id])
    assert got == {one.id: await storage.companies.get(one.id), two.id: two}
    assert await storage.companies.get_many([]) == {}


async def test_missing_company_is_none(storage: Storage) -> None:
    assert await storage.companies.get(999) is None
    assert await storage.companies.get_by_salon(999) is None
    with pytest.raises(NotFound):
        await storage.companies.update(999, title="x")


async def test_update_fields_and_raw_data(storage: Storage, wall: FakeWallClock) -> None:
    company = (await storage.companies.create(7)).company
    wall.advance(5)
    raw = {"title": "Салон «Ромашка»", "nested": {"list": [1, 2.5, None, True]}}
    updated = await storage.companies.update(
        company.id,
        title="Ромашка",
        address="Москва, ул. Ленина, 1",
        timezone="Asia/Yekaterinburg",
        whatsapp_phone="79990001122",
        whatsapp_jid="79990001122@s.whatsapp.net",
        whatsapp_connected=True,
        connected_at=wall(),
        last_error=None,
        raw_data=raw,
    )
    assert updated.title == "Ромашка"
    assert updated.raw_data == raw
    assert updated.whatsapp_connected is True
    assert updated.connected_at == wall()
    assert updated.updated_at == wall()
    assert await storage.companies.get(company.id) == updated


async def test_sql_injection_text_is_stored_literally(storage: Storage) -> None:
    evil = "'; DROP TABLE companies; --"
    company = (await storage.companies.create(8, title=evil)).company
    assert (await storage.companies.get(company.id)).title == evil  # type: ignore[union-attr]
    assert await storage.companies.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "bad\x00title"),
        ("title", "x" * 256),
        ("phone", "1" * 21),
        ("raw_data", {"a": "nul\x00inside"}),
        ("raw_data", ["not", "an", "object"]),
        ("whatsapp_connected", "yes"),
        ("integration_status", "active"),
        ("api_key_hash", "x"),
    ],
)
async def test_bad_values_are_validation_errors(
    storage: Storage, field: str, value: object
) -> None:
    company = (await storage.companies.create(9)).company
    with pytest.raises(ValidationError) as info:
        await storage.companies.update(company.id, **{field: value})
    assert info.value.field == field
    assert await storage.companies.get(company.id) == company


async def test_create_validates(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        await storage.companies.create(0)
    with pytest.raises(ValidationError):
        await storage.companies.create(5, email="a\x00b")
    assert await storage.companies.count() == 0


async def test_transition_from_expected_state(storage: Storage, wall: FakeWallClock) -> None:
    company = (await storage.companies.create(10)).company
    wall.advance(60)
    moved = await storage.companies.transition(
        company.id, [CompanyStatus.PENDING], CompanyStatus.LINKING, last_error=None
    )
    assert moved is not None
    assert moved.integration_status == "linking"
    assert moved.status_changed_at == wall()
    active = await storage.companies.transition(
        company.id, ["linking"], "active", whatsapp_connected=True, whatsapp_phone="79001112233"
    )
    assert (
        active is not None and active.whatsapp_connected and active.status is CompanyStatus.ACTIVE
    )


async def test_transition_from_wrong_state_is_refused(storage: Storage) -> None:
    company = (await storage.companies.create(11)).company
    refused = await storage.companies.transition(company.id, ["active"], "frozen", title="nope")
    assert refused is None
    assert await storage.companies.get(company.id) == company
    assert await storage.companies.transition(12345, ["pending"], "linking") is None
    with pytest.raises(ValidationError):
        await storage.companies.transition(company.id, ["pending"], "bogus")


async def test_racing_transitions_only_one_wins(storage: Storage) -> None:
    company = (await storage.companies.create(12)).company
    winners: list[str] = []

    async def attempt(target: str) -> None:
        result = await storage.companies.transition(company.id, ["pending"], target)
        if result is not None:
            winners.append(target)

    async with trio.open_nursery() as nursery:
        for target in ["linking", "frozen", "uninstalled", "activation_failed"] * 3:
            nursery.start_soon(attempt, target)
    assert len(winners) == 1
    stored = await storage.companies.get(company.id)
    assert stored is not None and stored.integration_status == winners[0]


async def test_listing_and_counting(storage: Storage) -> None:
    ids = [(await storage.companies.create(100 + i)).company.id for i in range(5)]
    jid = "79001234567@s.whatsapp.net"
    await storage.companies.transition(
        ids[1], ["pending"], "active", whatsapp_connected=True, whatsapp_jid=jid
    )
    await storage.companies.transition(
        ids[3], ["pending"], "reconnecting", whatsapp_connected=False, whatsapp_jid=jid
    )
    await storage.companies.transition(ids[4], ["pending"], "frozen", whatsapp_jid=jid)
    assert await storage.companies.count() == 5
    assert await storage.companies.count("active") == 1
    assert await storage.companies.count_by_status() == {
        "pending": 2,
        "active": 1,
        "reconnecting": 1,
        "frozen": 1,
    }
    # linked = holds credentials and should run (a reconnecting one too; a frozen one not)
    assert [c.id for c in await storage.companies.list_linked()] == [ids[1], ids[3]]
    # a page at a time (the node's restore reads them so), keyset by id
    assert [c.id for c in await storage.companies.list_linked(limit=1)] == [ids[1]]
    after = await storage.companies.list_linked(limit=1, after_id=ids[1])
    assert [c.id for c in after] == [ids[3]]
    assert await storage.companies.list_linked(limit=5, after_id=ids[3]) == []
    # connected = connected right now
    assert await storage.companies.count_linked() == 1
    page1 = await storage.companies.list_by_status(limit=2)
    page2 = await storage.companies.list_by_status(limit=2, after_id=page1[-1].id)
    assert [c.id for c in page1 + page2] == ids[:4]
    assert [c.id for c in await storage.companies.list_by_status("pending")] == [ids[0], ids[2]]


async def test_api_key_lookup_verify_rotate_revoke(storage: Storage) -> None:
    new = await storage.companies.create(20)
    other = await storage.companies.create(21)
    cid = new.company.id
    assert await storage.companies.find_by_api_key(new.api_key) == new.company
    assert await storage.companies.find_by_api_key(new.api_key + "x") is None
    assert await storage.companies.find_by_api_key("") is None
    assert await storage.companies.verify_api_key(cid, new.api_key)
    assert not await storage.companies.verify_api_key(cid, other.api_key)
    assert not await storage.companies.verify_api_key(other.company.id, new.api_key)
    assert await storage.companies.verify_webhook_secret(cid, new.webhook_secret)
    assert not await storage.companies.verify_webhook_secret(cid, new.api_key)

    rotated = await storage.companies.rotate_api_key(cid)
    assert rotated.startswith("sk_") and rotated != new.api_key
    assert not await storage.companies.verify_api_key(cid, new.api_key)
    assert await storage.companies.find_by_api_key(new.api_key) is None
    assert await storage.companies.verify_api_key(cid, rotated)
    found = await storage.companies.find_by_api_key(rotated)
    assert found is not None and found.api_key_prefix == rotated[:11]

    secret = await storage.companies.rotate_webhook_secret(cid)
    assert not await storage.companies.verify_webhook_secret(cid, new.webhook_secret)
    assert await storage.companies.verify_webhook_secret(cid, secret)

    await storage.companies.revoke_credentials(cid)
    assert not await storage.companies.verify_api_key(cid, rotated)
    assert not await storage.companies.verify_webhook_secret(cid, secret)
    assert await storage.companies.find_by_api_key(rotated) is None
    with pytest.raises(NotFound):
        await storage.companies.rotate_api_key(9999)


async def test_postgres_stores_only_hashes(real_storage: Storage) -> None:
    new = await real_storage.companies.create(30)
    assert real_storage.pg is not None

    async def dump(conn: object) -> list[str]:
        rows = await conn.fetch("SELECT * FROM companies")  # type: ignore[attr-defined]
        return [str(v) for r in rows for v in r.values()]

    values = await real_storage.pg.run(dump)  # type: ignore[arg-type]
    assert new.api_key not in values and new.webhook_secret not in values
    assert any(len(v) == 64 for v in values)
