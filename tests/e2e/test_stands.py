"""The acceptance runner's stands: how the salons are dealt out over them (pure), and that a
stand which cannot be set up, or overruns its bound, reports each of its dialogues instead of
hanging or failing the whole module."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from . import _stand_plan
from ._dialogues import (
    CORPUS_CATALOG,
    CORPUS_DIALOGUES,
    SAMPLE_CATALOG,
    SAMPLE_DIALOGUES,
    DialogueError,
    DialogueSet,
)
from ._expectations import Played, problems
from ._stand import play, play_stand
from ._stand_plan import StandPlan, plan_stands, turns_of


@pytest.fixture(scope="module")
def sets() -> list[DialogueSet]:
    return [
        DialogueSet.load("sample", SAMPLE_CATALOG, SAMPLE_DIALOGUES),
        DialogueSet.load("corpus", CORPUS_CATALOG, CORPUS_DIALOGUES),
    ]


def test_every_dialogue_is_on_one_stand_with_its_salon_in_file_order(
    sets: list[DialogueSet],
) -> None:
    plans = plan_stands(sets, stands=3)
    assert [p.number for p in plans] == [1, 2, 3]
    placed = [d.key for p in plans for d in p.dialogues]
    everything = [d.key for s in sets for d in s.dialogues]
    assert sorted(placed) == sorted(everything)
    for plan in plans:
        assert {s["id"] for s in plan.catalog["salons"]} == set(plan.chains)
        for sid, chain in plan.chains.items():
            file_order = [d for s in sets for d in s.dialogues if d.salon_id == sid]
            assert list(chain) == file_order
    salons = [sid for p in plans for sid in p.chains]
    assert len(salons) == len(set(salons)) == 6
    numbers = [n for p in plans for n in p.salon_numbers.values()]
    assert sorted(numbers) == list(range(6))  # new clients' phones differ across stands


def test_the_longest_salons_are_dealt_first_to_the_lightest_stand(
    sets: list[DialogueSet],
) -> None:
    plans = plan_stands(sets, stands=3)
    turns = [p.turns for p in plans]
    assert sum(turns) == sum(turns_of(d) for s in sets for d in s.dialogues)
    longest = max(
        {d.salon_id for s in sets for d in s.dialogues},
        key=lambda sid: sum(turns_of(d) for s in sets for d in s.dialogues if d.salon_id == sid),
    )
    assert longest in plans[0].chains
    # the greedy deal ends within one salon's turns of an even split
    biggest_salon = max(
        sum(turns_of(d) for d in chain) for p in plans for chain in p.chains.values()
    )
    assert max(turns) - min(turns) <= biggest_salon


def test_selection_fewer_salons_than_stands_and_one_stand(sets: list[DialogueSet]) -> None:
    one = sets[0].dialogues[3]
    plans = plan_stands(sets, {one.key}, stands=3)
    assert len(plans) == 1 and plans[0].dialogues == (one,)
    assert plans[0].bound == _stand_plan.SETUP_BOUND + _stand_plan.TURN_BOUND * turns_of(one)
    assert plans[0].describe() == f"stand 1 (salons {one.salon_id})"
    alone = plan_stands(sets, stands=1)
    assert len(alone) == 1 and len(alone[0].dialogues) == sum(len(s.dialogues) for s in sets)
    assert plan_stands(sets, set(), stands=2) == []
    with pytest.raises(ValueError, match="at least one stand"):
        plan_stands(sets, stands=0)


def test_a_salon_in_two_sets_is_refused(sets: list[DialogueSet]) -> None:
    with pytest.raises(DialogueError, match="in two dialogue sets"):
        plan_stands([sets[0], sets[0]])


# -- guards (a stand for real: PostgreSQL, Redis, the fake YClients) ----------------------------


def _tiny_set(tmp_path: Path, **salon: Any) -> DialogueSet:
    raw: dict[str, Any] = {
        "id": 1,
        "title": "t",
        "timezone": "Asia/Omsk",
        "open_hour": 10,
        "close_hour": 20,
        "services": [{"id": 11, "title": "Стрижка", "minutes": 60}],
        "staff": [{"id": 21, "name": "Олег Ким"}],
    }
    raw.update(salon)
    dialogues = [
        {"name": "first", "turns": ["привет"], "expect": {}},
        {"name": "second", "turns": ["сколько стоит стрижка"], "expect": {}},
    ]
    (tmp_path / "c.json").write_text(json.dumps({"salons": [raw]}), "utf-8")
    (tmp_path / "d.json").write_text(json.dumps({"dialogues": dialogues}), "utf-8")
    return DialogueSet.load("t", tmp_path / "c.json", tmp_path / "d.json")


def _only(results: dict[tuple[str, str], Played]) -> list[str]:
    assert set(results) == {("t", "first"), ("t", "second")}
    return [e for key in sorted(results) for e in problems(results[key])]


@pytest.mark.slow
async def test_a_stand_that_cannot_start_tells_each_dialogue(tmp_path: Path) -> None:
    broken = _tiny_set(tmp_path, timezone="Nowhere/Town")  # the fake refuses the catalog
    with trio.fail_after(60):
        results = await play([broken])
    errors = _only(results)
    assert len(errors) == 2
    assert all(e.startswith("stand 1 (salons 1) failed: ") for e in errors), errors
    headline = "stand 1 (salons 1) failed: CatalogError: salons[0].timezone: unknown zone"
    for error in errors:
        first, _, traceback = error.partition("\n")
        assert first.startswith(headline) and first.endswith("; this dialogue was not played")
        assert traceback.startswith("Traceback") and "CatalogError" in traceback


@pytest.mark.slow
async def test_a_stand_over_its_bound_is_cut_short_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stand_plan, "SETUP_BOUND", 0.5)
    monkeypatch.setattr(_stand_plan, "TURN_BOUND", 0.0)
    (plan,) = plan_stands([_tiny_set(tmp_path)])
    assert isinstance(plan, StandPlan) and plan.bound == 0.5
    results: dict[tuple[str, str], Played] = {}
    with trio.fail_after(60):
        await play_stand(plan, datetime.now(UTC), results)
    cut = "stand 1 (salons 1) did not finish within its bound of 0.5 s"
    assert _only(results) == [f"{cut}; this dialogue was not played"] * 2
