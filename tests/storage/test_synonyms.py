"""Contract: the salon's own words for its services (``salon_synonyms``, issue 16) on both
backends — stored per service, replaced all or nothing, untouched by a catalog sync, merged
over the synced catalog."""

from __future__ import annotations

import pytest

from storage import (
    Catalog,
    NotFound,
    SalonService,
    Storage,
    ValidationError,
    merge_synonyms,
)

NAIL = 101
CUT = 102


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


async def test_words_are_absent_until_set_then_replaced_per_service(storage: Storage) -> None:
    cid = await _company(storage)
    assert await storage.synonyms.get(cid) == {}
    after = await storage.synonyms.replace(cid, {NAIL: ["шеллак", "гель лак"], CUT: ["стрижка"]})
    assert after == {NAIL: ("шеллак", "гель лак"), CUT: ("стрижка",)}
    assert await storage.synonyms.get(cid) == after
    # only the named service changes; an empty list removes its words
    after = await storage.synonyms.replace(cid, {NAIL: ["гель-лак", "шеллак"]})
    assert after == {NAIL: ("гель-лак", "шеллак"), CUT: ("стрижка",)}
    assert await storage.synonyms.replace(cid, {CUT: []}) == {NAIL: ("гель-лак", "шеллак")}
    assert await storage.synonyms.get(cid) == {NAIL: ("гель-лак", "шеллак")}


async def test_a_salon_never_sees_another_salons_words(storage: Storage) -> None:
    a, b = await _company(storage, 1), await _company(storage, 2)
    await storage.synonyms.replace(a, {NAIL: ["шеллак"]})
    await storage.synonyms.replace(b, {NAIL: ["френч"]})
    assert await storage.synonyms.get(a) == {NAIL: ("шеллак",)}
    assert await storage.synonyms.get(b) == {NAIL: ("френч",)}


async def test_unknown_company_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.synonyms.get(9999)
    with pytest.raises(NotFound):
        await storage.synonyms.replace(9999, {NAIL: ["шеллак"]})
    with pytest.raises(NotFound):
        await storage.synonyms.replace(9999, {NAIL: []})


@pytest.mark.parametrize(
    "words",
    [
        [f"слово{n}" for n in range(21)],  # more than 20
        ["x" * 61],  # too long
        [""],
        ["шеллак", "Шеллак"],  # a repeat, case ignored
        ["<script>"],
        ["гель_лак"],
        ["-"],
        "шеллак",  # a string, not a list of words
    ],
)
async def test_both_backends_refuse_the_same_words_and_change_nothing(
    storage: Storage, words: object
) -> None:
    cid = await _company(storage)
    await storage.synonyms.replace(cid, {CUT: ["стрижка"]})
    with pytest.raises(ValidationError):
        await storage.synonyms.replace(cid, {CUT: [], NAIL: words})  # type: ignore[dict-item]
    assert await storage.synonyms.get(cid) == {CUT: ("стрижка",)}


async def test_a_catalog_sync_keeps_the_salons_words(storage: Storage) -> None:
    cid = await _company(storage)
    services = [
        SalonService(NAIL, "Маникюр с покрытием гель-лак", synonyms=("маникюр",)),
        SalonService(CUT, "Стрижка женская"),
    ]
    await storage.catalog.replace_catalog(cid, None, services, [])
    await storage.synonyms.replace(cid, {NAIL: ["шеллак"]})
    # the next sync brings the services again, with YClients' own words changed
    again = [SalonService(NAIL, "Маникюр с покрытием гель-лак", synonyms=("гель",)), services[1]]
    await storage.catalog.replace_catalog(cid, None, again, [])
    assert await storage.synonyms.get(cid) == {NAIL: ("шеллак",)}
    merged = merge_synonyms(await storage.catalog.get_catalog(cid), await storage.synonyms.get(cid))
    by_id = {s.service_id: s for s in merged.services}
    assert by_id[NAIL].synonyms == ("шеллак", "гель")
    assert by_id[CUT].synonyms == ()


def test_merge_puts_the_salons_words_first_without_repeats() -> None:
    catalog = Catalog(
        services=[SalonService(NAIL, "Маникюр", synonyms=("Шеллак", "гель"))], staff=[]
    )
    merged = merge_synonyms(catalog, {NAIL: ("шеллак", "френч"), 999: ("лишнее",)})
    assert merged.services[0].synonyms == ("шеллак", "френч", "гель")
    assert merge_synonyms(catalog, {}) is catalog
