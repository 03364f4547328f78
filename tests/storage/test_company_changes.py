"""``CompanyChanges``: a copy read after a mark is current until a tracked write of that
company runs or begins; ``open_storage`` tracks every ``record_sync`` made through it."""

from __future__ import annotations

import pytest
import trio

from storage import open_storage
from storage._company_changes import CompanyChanges, TrackedCatalog


class Boom(Exception):
    pass


def test_a_copy_stays_current_until_a_write_of_its_company_begins() -> None:
    changes = CompanyChanges()
    mark = changes.mark()
    assert changes.unchanged_since(1, mark)
    with changes.changing(2):  # another company's write
        assert changes.unchanged_since(1, mark)
        assert not changes.unchanged_since(2, mark)
    assert changes.unchanged_since(1, mark)
    with changes.changing(1):
        assert not changes.unchanged_since(1, mark)
    assert not changes.unchanged_since(1, mark)  # for good: the write may have changed it
    assert changes.unchanged_since(1, changes.mark())  # a copy read after it is current


def test_a_copy_read_while_a_write_runs_is_never_current() -> None:
    """A mark taken during a write is already past the write's start, so only the write in
    flight tells that the copy may predate its commit."""
    changes = CompanyChanges()
    with changes.changing(1):
        during = changes.mark()
        assert not changes.unchanged_since(1, during)
        with changes.changing(1):  # two writes of one company at once
            pass
        assert not changes.unchanged_since(1, during)  # the first still runs
    assert not changes.unchanged_since(1, during)
    assert changes.unchanged_since(1, changes.mark())


def test_a_failed_write_ends_too_and_drops_copies() -> None:
    changes = CompanyChanges()
    mark = changes.mark()
    with pytest.raises(Boom), changes.changing(1):
        raise Boom
    assert not changes.unchanged_since(1, mark)
    after = changes.mark()
    assert changes.unchanged_since(1, after)  # nothing left in flight


async def test_open_storage_marks_every_record_sync() -> None:
    async with open_storage(monotonic_clock=trio.current_time) as storage:
        changes = storage.changes
        assert changes is not None
        assert isinstance(storage.catalog, TrackedCatalog)
        created = await storage.companies.create(962_302, title="Лотос")
        cid = created.company.id
        mark = changes.mark()
        assert await storage.catalog.get_sync_state(cid) is None  # reads are not marked
        assert changes.unchanged_since(cid, mark)
        state = await storage.catalog.record_sync(cid, ok=False, error="YClientsUnavailable")
        assert not changes.unchanged_since(cid, mark)
        assert await storage.catalog.get_sync_state(cid) == state
        # The rest of the catalog is the wrapped one's.
        assert (await storage.catalog.get_catalog(cid)).services == []
