"""parse_when's surroundings: exports, purity, the salon's zone, and argument checks."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import actors.assistant
from actors.assistant import DayKind, TimeKind, When, parse_when

_ROOT = Path(__file__).resolve().parents[3]


def test_all_is_complete() -> None:
    public = {  # names loaded on first use included (dir() lists them)
        name
        for name in dir(actors.assistant)
        if not name.startswith("_")
        and not isinstance(getattr(actors.assistant, name), types.ModuleType)
    }
    assert set(actors.assistant.__all__) == public
    assert {"When", "DayKind", "TimeKind", "parse_when"} <= public


def test_the_assistant_package_imports_no_io_or_numeric_library() -> None:
    """In a fresh interpreter, importing the assistant and parsing a message that needs
    pymorphy3 (a typo check, a counted noun) loads no trio, database, Redis, HTTP or numpy."""
    script = """
import datetime, json, sys, zoneinfo
import actors.assistant as assistant
now = datetime.datetime(2026, 3, 11, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Moscow"))
when = assistant.parse_when("пятнца вечерм, на 2 услуги", now)
print(json.dumps({
    "loaded": sorted(m for m in ("trio", "asyncpg", "coredis", "numpy", "httpx", "storage")
                     if m in sys.modules),
    "morph": "pymorphy3" in sys.modules,
    "dates": [d.isoformat() for d in when.dates],
}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=_ROOT, check=True
    )
    found = json.loads(done.stdout)
    assert found["loaded"] == []
    assert found["morph"] is True  # the check really ran the typo path
    assert found["dates"] == ["2026-03-13"]


def test_today_is_the_salons_today() -> None:
    """The same instant is still Saturday in Moscow but already Sunday in Novosibirsk."""
    instant = dt.datetime(2026, 3, 14, 18, 30, tzinfo=dt.UTC)
    moscow = parse_when("сегодня", instant.astimezone(ZoneInfo("Europe/Moscow")))
    novosibirsk = parse_when("сегодня", instant.astimezone(ZoneInfo("Asia/Novosibirsk")))
    assert moscow.dates == (dt.date(2026, 3, 14),)
    assert novosibirsk.dates == (dt.date(2026, 3, 15),)
    weekend = parse_when("на выходных", instant.astimezone(ZoneInfo("Asia/Novosibirsk")))
    assert weekend.dates == (dt.date(2026, 3, 21), dt.date(2026, 3, 22))


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_when("завтра", dt.datetime(2026, 3, 11, 12))


def test_when_helpers() -> None:
    now = dt.datetime(2026, 3, 11, 12, tzinfo=ZoneInfo("Europe/Moscow"))
    text = "вариант 2, утро 10 завтра"
    when = parse_when(text, now)
    assert when.date == dt.date(2026, 3, 12) and when.has_day and when.has_time
    assert when.time == dt.time(10) and when.time_kind is TimeKind.EXACT
    assert when.rest(text).split() == ["вариант", "2,"]
    assert not when.covers(0, 9) and when.covers(11, 12)
    several = parse_when("в субботу или в воскресенье", now)
    assert several.date is None and len(several.dates) == 2
    same = parse_when("в тот же день", now)
    assert same.day_kind is DayKind.SAME_DAY and same.has_day and not same.dates
    assert not same.is_empty
    assert When().is_empty and When().date is None


def test_a_4000_character_message_is_read() -> None:
    """Speed is measured in bench/, never asserted here; this checks a long message is read."""
    now = dt.datetime(2026, 3, 11, 12, tzinfo=ZoneInfo("Europe/Moscow"))
    text = ("Здравствуйте, хотела бы записаться завтра в 15 или послезавтра вечером! " * 60)[:4000]
    when = parse_when(text, now)
    assert when.dates == (dt.date(2026, 3, 12), dt.date(2026, 3, 13))
    assert when.time == dt.time(15)
