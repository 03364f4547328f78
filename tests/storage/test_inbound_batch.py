"""Recording a burst of inbound messages in one step, the same on both backends."""

from __future__ import annotations

import pytest

from storage import Storage, ValidationError

PHONE = "79005550001"


async def history(storage: Storage, company_id: int) -> list[tuple[str | None, str]]:
    rows = await storage.messages.recent(company_id, limit=100)
    return [(r.wa_message_id, r.text) for r in reversed(rows)]


async def test_a_burst_is_recorded_in_order_once_per_whatsapp_id(storage: Storage) -> None:
    cid = (await storage.companies.create(401)).company.id
    assert await storage.messages.record_inbound(cid, "W1", PHONE, "раз")
    burst = [
        ("W1", PHONE, "раз"),  # already recorded
        ("W2", PHONE, "два"),
        ("W3", "79005550002", "три"),
        ("W2", PHONE, "два"),  # repeated inside the burst
        ("W4", PHONE, "четыре"),
    ]
    assert await storage.messages.record_inbound_many(cid, burst) == [
        False,
        True,
        True,
        False,
        True,
    ]
    assert await history(storage, cid) == [
        ("W1", "раз"),
        ("W2", "два"),
        ("W3", "три"),
        ("W4", "четыре"),
    ]
    assert await storage.messages.record_inbound_many(cid, []) == []
    rows = await storage.messages.recent(cid, peer_phone="79005550002")
    assert [(r.direction, r.status, r.wa_message_id) for r in rows] == [("in", "received", "W3")]


async def test_a_burst_with_one_bad_message_stores_none(storage: Storage) -> None:
    cid = (await storage.companies.create(402)).company.id
    burst = [("W1", PHONE, "раз"), ("W2", "7" * 40, "номер длиннее 32 знаков")]
    with pytest.raises(ValidationError):
        await storage.messages.record_inbound_many(cid, burst)
    assert await history(storage, cid) == []
