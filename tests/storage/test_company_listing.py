"""``companies.list_by_status``, the page reader behind ``GET /marketplace/companies``.

The contract part runs on both backends: pages in id order, keyset by ``after_id``, all
companies or one status, stable while statuses change between pages. The in-memory twin
reads its id index (the company table refuses to be walked); PostgreSQL reads
``companies_pkey`` or ``idx_companies_integration_status`` even under a cached generic plan.
"""

from __future__ import annotations

from typing import Any

import pytest

from storage import Company, CompanyStatus, Storage, ValidationError
from tests.storage.test_indexed_lookups import NoScan, memory_only


async def pages(storage: Storage, status: str | None, size: int) -> list[list[int]]:
    """Every page of ``size`` ids, following ``after_id`` until an empty or short page."""
    found: list[list[int]] = []
    after = 0
    while True:
        page = await storage.companies.list_by_status(status, limit=size, after_id=after)
        if page:
            found.append([c.id for c in page])
            after = page[-1].id
        if len(page) < size:
            return found


async def test_pages_walk_every_company_once_in_id_order(storage: Storage) -> None:
    ids = [(await storage.companies.create(500 + n)).company.id for n in range(23)]
    for cid in ids[::3]:
        await storage.companies.transition(cid, ["pending"], "active")
    for cid in ids[1::5]:
        await storage.companies.transition(cid, ["pending", "active"], "frozen")

    walked = await pages(storage, None, 5)
    assert [len(p) for p in walked] == [5, 5, 5, 5, 3]
    assert [cid for page in walked for cid in page] == ids

    active = [cid for cid in ids[::3] if cid not in ids[1::5]]
    frozen = ids[1::5]
    pending = [cid for cid in ids if cid not in active and cid not in frozen]
    for status, expected in (("active", active), ("frozen", frozen), ("pending", pending)):
        got = [cid for page in await pages(storage, status, 2) for cid in page]
        assert got == expected, status
    assert await storage.companies.list_by_status("uninstalled") == []
    # Past the last id, or a limit of one: still in order, nothing made up.
    assert await storage.companies.list_by_status(after_id=ids[-1]) == []
    only = await storage.companies.list_by_status(CompanyStatus.FROZEN, limit=1)
    assert [c.id for c in only] == frozen[:1]


async def test_a_status_change_between_pages_never_repeats_a_company(storage: Storage) -> None:
    ids = [(await storage.companies.create(700 + n)).company.id for n in range(10)]
    first = await storage.companies.list_by_status("pending", limit=4)
    assert [c.id for c in first] == ids[:4]
    # A listed company and a not-yet-listed one leave "pending"; one listed comes back later.
    await storage.companies.transition(ids[1], ["pending"], "linking")
    await storage.companies.transition(ids[6], ["pending"], "linking")
    rest = await storage.companies.list_by_status("pending", limit=100, after_id=first[-1].id)
    assert [c.id for c in rest] == [ids[4], ids[5], *ids[7:]]
    await storage.companies.transition(ids[1], ["linking"], "pending")
    again = await storage.companies.list_by_status("pending", limit=3)
    assert [c.id for c in again] == ids[:3]
    linking = await storage.companies.list_by_status("linking")
    assert [c.id for c in linking] == [ids[6]]
    # Each row is the company as stored now.
    row = (await storage.companies.list_by_status("linking"))[0]
    assert isinstance(row, Company) and row.integration_status == "linking"
    assert row == await storage.companies.get(ids[6])


@pytest.mark.parametrize(("status", "limit"), [("sleeping", 10), (None, 0), (None, 10_001)])
async def test_bad_status_or_limit_is_refused(
    storage: Storage, status: str | None, limit: int
) -> None:
    await storage.companies.create(1)
    with pytest.raises(ValidationError):
        await storage.companies.list_by_status(status, limit=limit)


@memory_only
async def test_memory_twin_pages_through_its_index(storage: Storage) -> None:
    ids = [(await storage.companies.create(n)).company.id for n in range(1, 401)]
    for cid in ids[100:300]:
        await storage.companies.transition(cid, ["pending"], "active")
    assert storage.memory_db is not None
    db = storage.memory_db
    db.companies = NoScan(db.companies)
    page = await storage.companies.list_by_status(limit=3, after_id=ids[250])
    assert [c.id for c in page] == ids[251:254]
    page = await storage.companies.list_by_status("active", limit=2, after_id=ids[298])
    assert [c.id for c in page] == [ids[299]]
    page = await storage.companies.list_by_status("pending", limit=2, after_id=ids[99])
    assert [c.id for c in page] == ids[300:302]
    await storage.companies.transition(ids[300], ["pending"], "frozen")
    page = await storage.companies.list_by_status("pending", limit=2, after_id=ids[99])
    assert [c.id for c in page] == ids[301:303]
    assert [c.id for c in await storage.companies.list_by_status("frozen")] == [ids[300]]


# The statements PgCompanies.list_by_status sends, their arguments, and the index each reads.
PLANS = {
    "_PAGE_ALL": ((5_000, 50), "companies_pkey"),
    "_PAGE_OF_STATUS": (("frozen", 0, 50), "idx_companies_integration_status"),
}


async def test_postgres_pages_read_an_index_under_a_generic_plan(real_storage: Storage) -> None:
    """20,000 companies, ten of them frozen (the last ids): a page of the frozen ones reads
    those ten rows through the status index, not the 20,000 before them, even under the
    generic plan asyncpg's cached statement gets after five runs."""
    import storage._pg_db as pg_db

    assert real_storage.pg is not None

    async def plans(conn: Any) -> dict[str, str]:
        await conn.execute(
            """INSERT INTO companies (yclients_id, integration_status)
               SELECT g, CASE WHEN g > 19990 THEN 'frozen'
                              WHEN g % 2 = 0 THEN 'active' ELSE 'pending' END
               FROM generate_series(1, 20000) g"""
        )
        await conn.execute("ANALYZE companies")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            found = {}
            for name, (args, _) in PLANS.items():
                # EXPLAIN of a statement sent with parameters plans it for their values;
                # only a prepared statement's EXECUTE shows the generic plan.
                await conn.execute(f"PREPARE listing AS {getattr(pg_db, name)}")
                values = ", ".join(repr(a) for a in args)  # our own constants
                sql = f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE listing({values})"
                found[name] = "\n".join(r[0] for r in await conn.fetch(sql))
                await conn.execute("DEALLOCATE listing")
            return found
        finally:
            await conn.execute("RESET plan_cache_mode")

    found = await real_storage.pg.run(plans)  # type: ignore[arg-type]
    for name, (_, index) in PLANS.items():
        plan = found[name]
        assert f"Index Scan using {index}" in plan, plan
        assert "Sort" not in plan and "Rows Removed by Filter" not in plan, plan
    frozen = await real_storage.companies.list_by_status("frozen", limit=50)
    assert [c.yclients_id for c in frozen] == list(range(19991, 20001))
