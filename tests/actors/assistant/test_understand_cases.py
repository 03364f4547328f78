"""understand_rules against the phrase table in understand_cases.json, on two salons."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from actors.assistant._commands import Expecting, Flow, TurnContext
from actors.assistant._understand import read_message

from .understand_support import CATALOGS, NOWS, as_text

_TABLE: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "understand_cases.json").read_text(encoding="utf-8")
)["cases"]


def _offered(spec: str, now: dt.datetime) -> dt.datetime:
    """``"17:00"`` (today) or ``"1@17:00"`` (a day offset, then the local time)."""
    day, _, hhmm = spec.rpartition("@")
    date = now.date() + dt.timedelta(days=int(day or 0))
    return dt.datetime.combine(date, dt.time.fromisoformat(hhmm), tzinfo=now.tzinfo)


def _context(raw: dict[str, Any], now: dt.datetime) -> TurnContext:
    times = tuple(_offered(spec, now) for spec in raw.get("times", ()))
    return TurnContext(
        expecting=Expecting(raw.get("expecting", "nothing")),
        offered_count=raw.get("count", len(times)),
        offered_times=times,
        flow=Flow(raw["flow"]) if "flow" in raw else None,
    )


def test_the_table_is_big_and_covers_both_salons() -> None:
    assert len(_TABLE) >= 150
    assert {case.get("salon", "romashka") for case in _TABLE} == set(CATALOGS)
    keys = [(c.get("salon"), c["text"], json.dumps(c.get("ctx"), sort_keys=True)) for c in _TABLE]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    "case", _TABLE, ids=[f"{k}:{c['text'][:40]}" for k, c in enumerate(_TABLE)]
)
def test_phrase(case: dict[str, Any]) -> None:
    salon = case.get("salon", "romashka")
    now = NOWS[salon]
    commands = read_message(case["text"], _context(case.get("ctx", {}), now), CATALOGS[salon], now)
    got = sorted(as_text(c, now) for c in commands)
    expected = sorted(case["expect"])
    if case.get("partial"):
        assert set(expected) <= set(got), got
    else:
        assert got == expected
