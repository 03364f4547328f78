"""Acceptance dialogues as data: the files' format, read into typed values.

A dialogue set is a catalog file (the fake YClients' ``--catalog`` format, see
``tests/fakes/yclients/_catalog.py``) and a dialogues file (the shared sample's format, copied
in ``tests/assistant_corpus/sample/``; its ``about`` says what each key means).
Every key is checked when the file is read, so a typo in the data fails loudly instead of
leaving an expectation unchecked.

Beyond the sample's format (used by ``tests/assistant_corpus/dialogues.json``, described in its
``about``):

* a dialogue's ``salon`` (the catalog salon it writes to; else the file's ``salon``; else the
  catalog's only salon), ``topics`` (which of the issue's bullets it covers) and ``note``;
* turns that are not plain text: ``{"media": KIND, "caption"?: TEXT}`` (a photo, a voice note
  ...), ``{"repeat": TEXT, "length": N}`` (TEXT repeated to exactly N characters),
  ``{"staff": TEXT}`` (the salon's staff write to this client from the linked phone) and
  ``{"set_mode": MODE}`` (the salon sets the chat's mode through the conversations API);
* dates written relative to the run, since the run's date is arbitrary: ``{+N:dd.mm}`` in a
  turn becomes the date N days after the salon's today as ``14.03``, ``{+N:d mmmm}`` as
  ``14 марта`` (:func:`render`);
* ``booked.weekday`` may be a list (any of those weekdays, each the nearest after today), and
  ``booked.weekend: true`` means a Saturday or Sunday of the coming eight days, today included
  ("на выходных" said on a Saturday may mean today);
* expectations ``silent`` (no reply to the last turn) and ``burst_answered_once`` (the burst
  gets exactly one reply message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1]
#: The shared sample (salon 555100), read from the repository's copies: the dialogues in
#: ``tests/assistant_corpus/sample/``, the catalog the fake YClients' ``catalog.example.json``.
SAMPLE_CATALOG = _TESTS / "fakes" / "yclients" / "catalog.example.json"
SAMPLE_DIALOGUES = _TESTS / "assistant_corpus" / "sample" / "dialogues.sample.json"
#: This repository's corpus (other salons, other time zones).
CORPUS_CATALOG = _TESTS / "assistant_corpus" / "catalog.json"
CORPUS_DIALOGUES = _TESTS / "assistant_corpus" / "dialogues.json"

#: Keys of ``expect`` (the sample's, then this corpus's additions).
EXPECT_KEYS = frozenset(
    {
        "booked",
        "cancelled",
        "kept",
        "moved",
        "created",
        "nothing_changed",
        "reply_contains",
        "reply_contains_any",
        "reply_not_contains",
        "has_time",
        "handoff",
        "opted_out",
        "reply_optional",
        "silent",
        "burst_answered_once",
    }
)
BOOKED_KEYS = frozenset(
    {
        "services",
        "services_any",
        "staff",
        "staff_any",
        "day",
        "day_any",
        "weekday",
        "weekend",
        "time",
        "name",
    }
)
DIALOGUE_KEYS = frozenset({"name", "turns", "burst", "expect", "client", "salon", "topics", "note"})
MEDIA_KINDS = frozenset({"image", "audio", "video", "document", "sticker", "other"})
MODES = frozenset({"assistant", "handoff"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_RELATIVE_DATE = re.compile(r"\{\+(\d{1,3}):(dd\.mm|d mmmm)\}")
MONTHS_GENITIVE = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)

#: Words that make a short turn a plain "yes" (a yes-turn after the booking exists is skipped).
YES_WORDS = frozenset(
    {"да", "ага", "угу", "ок", "окей", "ok", "давайте", "конечно", "подтверждаю", "верно", "yes"}
)
_WORD = re.compile(r"[a-zа-яё]+")


def render(text: str, today: date) -> str:
    """``text`` with its relative dates (``{+3:dd.mm}``, ``{+3:d mmmm}``) counted from ``today``."""

    def date_text(match: re.Match[str]) -> str:
        day = today + timedelta(days=int(match.group(1)))
        if match.group(2) == "dd.mm":
            return f"{day.day:02d}.{day.month:02d}"
        return f"{day.day} {MONTHS_GENITIVE[day.month - 1]}"

    return _RELATIVE_DATE.sub(date_text, text)


class DialogueError(ValueError):
    """A dialogues or catalog file this runner cannot play; the message says where."""


@dataclass(frozen=True)
class Turn:
    """One thing that happens in the chat: the client writes (``text``), sends media
    (``media`` with ``text`` its caption), the staff write (``staff``), or the salon sets the
    chat's mode (``mode``)."""

    kind: str
    text: str = ""
    media: str = ""
    mode: str = ""

    @property
    def from_client(self) -> bool:
        return self.kind in ("text", "media")

    @property
    def is_plain_yes(self) -> bool:
        """A short "да" (no negation): skipped once the booking it would confirm exists."""
        if self.kind != "text" or any(c.isdigit() for c in self.text):
            return False
        words = _WORD.findall(self.text.lower())
        return 0 < len(words) <= 3 and words[0] in YES_WORDS and not {"не", "нет"} & set(words)

    def describe(self) -> str:
        if self.kind == "media":
            caption = f" «{self.text}»" if self.text else ""
            return f"[{self.media}]{caption}"
        if self.kind == "staff":
            return f"[staff] {self.text}"
        if self.kind == "mode":
            return f"[the salon sets mode {self.mode}]"
        if len(self.text) > 200:
            return f"{self.text[:80]}… ({len(self.text)} characters)"
        return self.text


@dataclass(frozen=True)
class Dialogue:
    """One acceptance dialogue of a set, in file order (``index``)."""

    set_name: str
    index: int
    name: str
    salon_id: int
    turns: tuple[Turn, ...]
    burst: tuple[Turn, ...]
    expect: Mapping[str, Any]
    client_id: int | None = None
    topics: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.set_name, self.name)


@dataclass(frozen=True)
class DialogueSet:
    """A catalog (parsed JSON) and the dialogues played against it."""

    name: str
    catalog: Mapping[str, Any]
    dialogues: tuple[Dialogue, ...]
    about: str = ""
    salons: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, catalog_path: Path, dialogues_path: Path) -> DialogueSet:
        catalog = _read_json(catalog_path)
        raw = _read_json(dialogues_path)
        salons_raw = catalog.get("salons")
        if not isinstance(salons_raw, list) or not salons_raw:
            raise DialogueError(f"{catalog_path}: no 'salons' list")
        salons = {int(s["id"]): s for s in salons_raw}
        default_salon = raw.get("salon")
        if default_salon is None and len(salons) == 1:
            default_salon = next(iter(salons))
        dialogues_raw = raw.get("dialogues")
        if not isinstance(dialogues_raw, list):
            raise DialogueError(f"{dialogues_path}: no 'dialogues' list")
        dialogues = tuple(
            _dialogue(name, i, d, salons, default_salon, f"{dialogues_path.name}[{i}]")
            for i, d in enumerate(dialogues_raw)
        )
        names = [d.name for d in dialogues]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DialogueError(f"{dialogues_path}: dialogue names appear twice: {twice}")
        return cls(name, catalog, dialogues, str(raw.get("about", "")), salons)


def merged_catalog(sets: Sequence[DialogueSet]) -> dict[str, Any]:
    """One catalog serving every set's salons (a salon id in two sets is an error)."""
    salons: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    for s in sets:
        for sid, salon in s.salons.items():
            if sid in seen:
                raise DialogueError(f"salon {sid} is in two dialogue sets' catalogs")
            seen.add(sid)
            salons.append(salon)
    return {"salons": salons}


# -- reading ----------------------------------------------------------------------------------


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DialogueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DialogueError(f"{path}: not a JSON object")
    return data


def _dialogue(
    set_name: str,
    index: int,
    raw: Any,
    salons: Mapping[int, Mapping[str, Any]],
    default_salon: Any,
    where: str,
) -> Dialogue:
    if not isinstance(raw, dict):
        raise DialogueError(f"{where}: expected an object")
    unknown = set(raw) - DIALOGUE_KEYS
    if unknown:
        raise DialogueError(f"{where}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DialogueError(f"{where}: needs a name")
    where = f"{where} {name!r}"
    salon_id = raw.get("salon", default_salon)
    if not isinstance(salon_id, int) or salon_id not in salons:
        raise DialogueError(f"{where}: no salon {salon_id!r} in the catalog")
    client = raw.get("client")
    if client is not None:
        clients = {c["id"] for c in salons[salon_id].get("clients", [])}
        if client not in clients:
            raise DialogueError(f"{where}: salon {salon_id} has no client {client!r}")
    turns = tuple(_turn(t, f"{where} turn {i}") for i, t in enumerate(raw.get("turns", [])))
    burst = tuple(_turn(t, f"{where} burst {i}") for i, t in enumerate(raw.get("burst", [])))
    if not turns and not burst:
        raise DialogueError(f"{where}: no turns")
    if any(not t.from_client for t in burst):
        raise DialogueError(f"{where}: a burst holds only the client's messages")
    expect = raw.get("expect")
    if not isinstance(expect, dict):
        raise DialogueError(f"{where}: needs 'expect'")
    _check_expect(expect, salons[salon_id], where)
    topics = raw.get("topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise DialogueError(f"{where}: topics must be strings")
    return Dialogue(set_name, index, name, salon_id, turns, burst, expect, client, tuple(topics))


def _turn(raw: Any, where: str) -> Turn:
    if isinstance(raw, str):
        return Turn("text", raw)
    if not isinstance(raw, dict):
        raise DialogueError(f"{where}: a turn is a string or an object")
    if set(raw) == {"text"} and isinstance(raw["text"], str):
        return Turn("text", raw["text"])
    if "repeat" in raw:
        text, length = raw.get("repeat"), raw.get("length")
        if not isinstance(text, str) or not text or not isinstance(length, int) or length < 1:
            raise DialogueError(f"{where}: repeat needs a text and a length")
        return Turn("text", (text * (length // len(text) + 1))[:length])
    if "media" in raw:
        kind, caption = raw["media"], raw.get("caption", "")
        if kind not in MEDIA_KINDS or not isinstance(caption, str):
            raise DialogueError(f"{where}: media is one of {sorted(MEDIA_KINDS)}")
        return Turn("media", caption, media=kind)
    if "staff" in raw and isinstance(raw["staff"], str) and raw["staff"]:
        return Turn("staff", raw["staff"])
    if "set_mode" in raw and raw["set_mode"] in MODES:
        return Turn("mode", mode=raw["set_mode"])
    raise DialogueError(f"{where}: not a turn: {raw!r}")


def _check_expect(expect: Mapping[str, Any], salon: Mapping[str, Any], where: str) -> None:
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise DialogueError(f"{where}: unknown expect keys {sorted(unknown)}")
    services = {s["id"] for s in salon.get("services", [])}
    staff = {m["id"] for m in salon.get("staff", [])}
    keys = {r.get("key") for r in salon.get("records", [])}
    booked = expect.get("booked")
    if booked is not None:
        if not isinstance(booked, dict) or set(booked) - BOOKED_KEYS:
            raise DialogueError(f"{where}: booked takes {sorted(BOOKED_KEYS)}")
        for key in ("services", "services_any"):
            if key in booked and not set(booked[key]) <= services:
                raise DialogueError(f"{where}: booked.{key} names services the salon lacks")
        if "staff" in booked and booked["staff"] not in staff:
            raise DialogueError(f"{where}: booked.staff is not a master of the salon")
        if "staff_any" in booked and not set(booked["staff_any"]) <= staff:
            raise DialogueError(f"{where}: booked.staff_any names masters the salon lacks")
        if "weekday" in booked and not set(weekdays(booked["weekday"])) <= set(WEEKDAYS):
            raise DialogueError(f"{where}: booked.weekday is one of {WEEKDAYS} or a list")
        if "time" in booked:
            _check_time(booked["time"], f"{where}: booked.time")
    for key in ("cancelled", "kept"):
        if not set(expect.get(key, [])) <= keys:
            raise DialogueError(f"{where}: {key} names records the catalog lacks")
    moved = expect.get("moved")
    if moved is not None:
        if moved.get("record") not in keys or not isinstance(moved.get("day"), int):
            raise DialogueError(f"{where}: moved needs a catalog record and a day")
        _check_time(moved.get("time"), f"{where}: moved.time")
    for key in ("reply_contains", "reply_contains_any", "reply_not_contains"):
        value = expect.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise DialogueError(f"{where}: {key} is a list of texts")


def weekdays(value: Any) -> list[str]:
    """``booked.weekday`` as a list (one weekday or several)."""
    return list(value) if isinstance(value, list) else [value]


def _check_time(value: Any, where: str) -> None:
    if isinstance(value, str) and _CLOCK.fullmatch(value):
        return
    if (
        isinstance(value, dict)
        and set(value) == {"from", "to"}
        and all(isinstance(v, str) and _CLOCK.fullmatch(v) for v in value.values())
        and value["from"] <= value["to"]
    ):
        return
    raise DialogueError(f"{where}: expected 'HH:MM' or {{from, to}}, got {value!r}")
