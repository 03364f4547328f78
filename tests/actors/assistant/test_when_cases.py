"""parse_when against the phrase table in when_cases.json (each case at a fixed local "now")."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from actors.assistant import DayKind, TimeKind, When, parse_when

_TABLE = json.loads((Path(__file__).parent / "when_cases.json").read_text(encoding="utf-8"))
_CHECKED = {
    "now",
    "text",
    "opening",
    "dates",
    "time",
    "window",
    "day_kind",
    "time_kind",
    "approximate",
    "bare_hour",
    "rejected",
    "covers",
    "left",
}


def _now(name: str) -> dt.datetime:
    clock = _TABLE["clocks"][name]
    return dt.datetime.fromisoformat(clock["now"]).replace(tzinfo=ZoneInfo(clock["zone"]))


def _hhmm(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def _read(case: dict[str, Any]) -> When:
    opening = tuple(map(_hhmm, case.get("opening", ["09:00", "21:00"])))
    return parse_when(case["text"], _now(case["now"]), opening=opening)  # type: ignore[arg-type]


def _covered(when: When, text: str, part: str) -> bool:
    start = text.index(part)
    return all(when.covers(k, k + 1) for k in range(start, start + len(part)) if text[k] != " ")


def test_the_table_is_big_enough_and_well_formed() -> None:
    cases = _TABLE["cases"]
    assert len(cases) >= 150
    assert len({(c["now"], c["text"], tuple(c.get("opening", ()))) for c in cases}) == len(cases)
    assert {c["now"] for c in cases} == set(_TABLE["clocks"])
    assert len({clock["zone"] for clock in _TABLE["clocks"].values()}) >= 2
    for case in cases:
        assert set(case) <= _CHECKED, case


@pytest.mark.parametrize(
    "case",
    _TABLE["cases"],
    ids=[f"{c['now']}:{c['text']}:{'-'.join(c.get('opening', ()))}" for c in _TABLE["cases"]],
)
def test_phrase(case: dict[str, Any]) -> None:
    when = _read(case)
    text = case["text"]
    assert [d.isoformat() for d in when.dates] == case.get("dates", [])
    assert when.time == (_hhmm(case["time"]) if "time" in case else None)
    expected_window = tuple(map(_hhmm, case["window"])) if "window" in case else None
    assert when.window == expected_window
    if "day_kind" in case:
        assert when.day_kind is DayKind(case["day_kind"])
    if "time_kind" in case:
        assert when.time_kind is TimeKind(case["time_kind"])
    if "approximate" in case:
        assert when.approximate is case["approximate"]
    if "bare_hour" in case:
        assert when.bare_hour is case["bare_hour"]
    if "rejected" in case:
        assert bool(when.rejected) is case["rejected"]
        assert when.is_empty
    else:
        assert not when.rejected
    for part in case.get("covers", []):
        assert _covered(when, text, part), part
    for part in case.get("left", []):
        assert part in when.rest(text), part
    nothing = not any(key in case for key in ("dates", "time", "window", "day_kind"))
    assert when.is_empty is nothing
