"""The dialogue files and the runner's judgement, without a server: the corpus is big enough,
covers every bullet of the issue and is satisfiable on any weekday; files with mistakes are
refused; :func:`problems` passes what matches and names what does not."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ._corpus_plan import plan_problems
from ._dialogues import (
    CORPUS_CATALOG,
    CORPUS_DIALOGUES,
    SAMPLE_CATALOG,
    SAMPLE_DIALOGUES,
    Dialogue,
    DialogueError,
    DialogueSet,
    Turn,
    render,
)
from ._expectations import Exchange, Played, nearest_weekday_offset, normalise, problems

#: The issue's "What a client experiences", one topic per bullet (and per listed phrasing).
REQUIRED_TOPICS = frozenset(
    {
        "booking.one_message",
        "booking.step_by_step",
        "booking.any_order",
        "booking.several_messages",
        "booking.taken_nearest",
        "booking.full_day",
        "booking.master_not_working",
        "booking.any_master",
        "booking.offers",
        "options.number",
        "options.ordinal",
        "options.time",
        "names.known_client",
        "names.new_client",
        "names.master_declined",
        "names.short_form",
        "names.master_any_case",
        "cancel.confirmed",
        "cancel.needs_confirmation",
        "cancel.several",
        "cancel.by_service",
        "cancel.by_date",
        "cancel.choose_number",
        "move.choose",
        "move.free",
        "move.taken",
        "visits.list",
        "visits.none",
        "prices.one",
        "prices.range",
        "prices.category",
        "prices.list",
        "answers.description",
        "answers.address",
        "answers.hours",
        "answers.phone",
        "unknown_service",
        "dates.today",
        "dates.tomorrow",
        "dates.day_after_tomorrow",
        "dates.weekday",
        "dates.weekend",
        "dates.this_week",
        "dates.next_week",
        "dates.in_a_week",
        "dates.dd_mm",
        "dates.day_month",
        "time.hh_mm",
        "time.hour",
        "time.na_3",
        "time.by_3_pm",
        "time.window",
        "time.after",
        "time.half_past",
        "time.morning_10",
        "understanding.typos",
        "understanding.slang",
        "understanding.case_forms",
        "understanding.synonym",
        "understanding.combination",
        "yesno.negation",
        "yesno.yes_forms",
        "burst",
        "context.kept",
        "handoff.request",
        "handoff.complaint",
        "handoff.not_understood",
        "handoff.silent",
        "handoff.give_back",
        "staff.silence",
        "opt_out",
        "opt_out.silent",
        "opt_out.resume",
        "anything_else.gibberish",
        "anything_else.digits",
        "anything_else.emoji",
        "anything_else.english",
        "anything_else.long",
        "anything_else.media",
    }
)


@pytest.fixture(scope="module")
def corpus() -> DialogueSet:
    return DialogueSet.load("corpus", CORPUS_CATALOG, CORPUS_DIALOGUES)


def test_the_corpus_is_big_and_spread_over_salons_in_other_zones(corpus: DialogueSet) -> None:
    assert len(corpus.dialogues) >= 120
    zones = {str(s["timezone"]) for s in corpus.salons.values()}
    assert len(corpus.salons) >= 3 and len(zones) == len(corpus.salons)
    assert "Europe/Moscow" not in zones  # the sample's zone; the corpus is elsewhere
    for salon_id in corpus.salons:
        assert sum(d.salon_id == salon_id for d in corpus.dialogues) >= 20


def test_the_corpus_covers_every_bullet_of_the_issue(corpus: DialogueSet) -> None:
    covered = {t for d in corpus.dialogues for t in d.topics}
    assert REQUIRED_TOPICS - covered == set()
    assert covered - REQUIRED_TOPICS == set(), "a topic outside the list is a typo"


def test_the_corpus_is_satisfiable_whatever_the_weekday(corpus: DialogueSet) -> None:
    assert plan_problems(corpus) == []


def test_the_corpus_writes_as_clients_do(corpus: DialogueSet) -> None:
    texts = [t.text for d in corpus.dialogues for t in (*d.burst, *d.turns) if t.kind == "text"]
    lowercase = [t for t in texts if t == t.lower()]
    assert len(lowercase) > 0.8 * len(texts)
    assert any(len(t) == 4000 for t in texts)
    media = {t.media for d in corpus.dialogues for t in d.turns if t.kind == "media"}
    assert {"image", "audio"} <= media


def test_the_sample_loads_with_its_salon() -> None:
    sample = DialogueSet.load("sample", SAMPLE_CATALOG, SAMPLE_DIALOGUES)
    assert len(sample.dialogues) == 18
    assert {d.salon_id for d in sample.dialogues} == {555100}
    assert plan_problems(sample) == []


# -- the planner ------------------------------------------------------------------------------


def _salon(**changes: Any) -> dict[str, Any]:
    salon: dict[str, Any] = {
        "id": 1,
        "title": "t",
        "timezone": "Asia/Omsk",
        "open_hour": 10,
        "close_hour": 20,
        "services": [{"id": 11, "title": "Стрижка", "minutes": 60, "staff": [21, 22]}],
        "staff": [
            {"id": 21, "name": "Олег Ким", "days_off": ["mon"]},
            {"id": 22, "name": "Анна Ли", "off_days": [1]},
        ],
        "clients": [{"id": 31, "name": "Ия", "phone": "+7 913 000-00-01"}],
        "records": [
            {
                "key": "r",
                "client_id": 31,
                "staff_id": 21,
                "services": [11],
                "day": 1,
                "time": "12:00",
            }
        ],
    }
    salon.update(changes)
    return salon


def _set(tmp_path: Path, dialogues: list[dict[str, Any]], **salon: Any) -> DialogueSet:
    (tmp_path / "c.json").write_text(json.dumps({"salons": [_salon(**salon)]}), "utf-8")
    (tmp_path / "d.json").write_text(json.dumps({"dialogues": dialogues}), "utf-8")
    return DialogueSet.load("t", tmp_path / "c.json", tmp_path / "d.json")


def _booking(name: str, **booked: Any) -> dict[str, Any]:
    return {"name": name, "turns": ["x", "да"], "expect": {"booked": booked}}


def test_the_planner_finds_days_off_and_double_bookings(tmp_path: Path) -> None:
    dialogues = [
        _booking("master off on some weekday", services=[11], staff=21, day=2, time="10:00"),
        _booking("master off that day", services=[11], staff=22, day=1, time="10:00"),
        _booking("first", services=[11], staff=22, day=3, time="15:00"),
        _booking("same slot again", services=[11], staff=22, day=3, time="15:30"),
        _booking("over a record", services=[11], staff=21, weekday="sun", time="12:00"),
        _booking("fine", services=[11], staff_any=[21, 22], day=5, time="10:00"),
    ]
    found = plan_problems(_set(tmp_path, dialogues))
    named = {p.split(":")[0] for p in found}
    assert named == {
        "master off on some weekday",  # day 2 is a Monday when today is a Saturday
        "master off that day",
        "same slot again",
        "over a record",  # the next Sunday is day 1 when today is a Saturday
    }
    assert [p for p in found if p.startswith("master off on")] == [
        "master off on some weekday: no candidate master is free for the booking when today is sat"
    ]
    assert [p for p in found if p.startswith("over a record")] == [
        "over a record: no candidate master is free for the booking when today is sat"
    ]


def test_the_planner_frees_cancelled_and_moved_slots(tmp_path: Path) -> None:
    dialogues = [
        {"name": "cancel", "client": 31, "turns": ["x"], "expect": {"cancelled": ["r"]}},
        _booking("into the freed slot", services=[11], staff=21, day=1, time="12:00"),
    ]
    services = [{"id": 11, "title": "Стрижка", "minutes": 60, "staff": [21]}]
    staff = [{"id": 21, "name": "Олег"}]
    assert plan_problems(_set(tmp_path, dialogues, staff=staff, services=services)) == []
    dialogues.pop(0)
    found = plan_problems(_set(tmp_path, dialogues, staff=staff, services=services))
    assert len(found) == 7  # the record still holds the slot, whatever the weekday


# -- reading files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialogue", "message"),
    [
        ({"name": "a", "turns": ["x"], "expect": {"bookd": {}}}, "unknown expect keys"),
        ({"name": "a", "turns": [{"photo": 1}], "expect": {}}, "not a turn"),
        ({"name": "a", "turns": ["x"], "expect": {"booked": {"staff": 99}}}, "not a master"),
        ({"name": "a", "turns": ["x"], "expect": {"cancelled": ["nope"]}}, "records"),
        ({"name": "a", "turns": ["x"], "expect": {"booked": {"time": "9:00"}}}, "HH:MM"),
        ({"name": "a", "turns": ["x"], "expect": {}, "client": 5}, "no client"),
        ({"name": "a", "turns": [], "expect": {}}, "no turns"),
        ({"name": "a", "turns": ["x"], "expect": {}, "salon": 2}, "no salon"),
        ({"name": "a", "burst": [{"staff": "x"}], "expect": {}}, "client's messages"),
    ],
)
def test_mistakes_in_a_file_are_refused(
    tmp_path: Path, dialogue: dict[str, Any], message: str
) -> None:
    with pytest.raises(DialogueError, match=message):
        _set(tmp_path, [dialogue])


def test_names_must_differ(tmp_path: Path) -> None:
    same = {"name": "a", "turns": ["x"], "expect": {}}
    with pytest.raises(DialogueError, match="twice"):
        _set(tmp_path, [same, same])


def test_turn_forms(tmp_path: Path) -> None:
    turns = [
        {"repeat": "абв ", "length": 4000},
        {"media": "audio"},
        {"media": "image", "caption": "вот"},
        {"staff": "здравствуйте"},
        {"set_mode": "assistant"},
        {"text": "да"},
    ]
    loaded = _set(tmp_path, [{"name": "a", "turns": turns, "expect": {}}]).dialogues[0].turns
    assert len(loaded[0].text) == 4000 and loaded[0].text.startswith("абв абв")
    assert loaded[1] == Turn("media", "", media="audio")
    assert loaded[2] == Turn("media", "вот", media="image")
    assert [t.kind for t in loaded[3:]] == ["staff", "mode", "text"]
    assert [t.from_client for t in loaded] == [True, True, True, False, False, True]


@pytest.mark.parametrize(
    ("text", "yes"),
    [
        ("да", True),
        ("ДА!", True),
        ("ага, записывайте", True),
        ("конечно", True),
        ("нет не надо", False),
        ("да нет, не надо", False),
        ("да удобно, а во сколько?", False),
        ("давайте на 16:00", False),
    ],
)
def test_plain_yes(text: str, yes: bool) -> None:
    assert Turn("text", text).is_plain_yes is yes


def test_relative_dates_cross_months_and_years() -> None:
    today = date(2025, 12, 30)
    assert render("на {+3:dd.mm} в 15", today) == "на 02.01 в 15"
    assert render("{+0:d mmmm} или {+2:d mmmm}", today) == "30 декабря или 1 января"
    assert render("{+1:d mmmm}", date(2024, 2, 28)) == "29 февраля"
    assert render("цена {1500} {+x:dd.mm}", today) == "цена {1500} {+x:dd.mm}"


# -- judging a played dialogue ----------------------------------------------------------------

ZONE = ZoneInfo("Asia/Novosibirsk")
TODAY = date(2025, 3, 14)  # a Friday


def _record(rid: int, day: int, clock: str, **changes: Any) -> dict[str, Any]:
    hours, minutes = map(int, clock.split(":"))
    at = datetime(TODAY.year, TODAY.month, TODAY.day, hours, minutes, tzinfo=ZONE)
    record: dict[str, Any] = {
        "id": rid,
        "services": [{"id": 11}],
        "staff_id": 21,
        "client": {"name": "Дина"},
        "datetime": (at + timedelta(days=day)).isoformat(),
        "deleted": False,
        "api_id": f"ai-{rid}",
    }
    record.update(changes)
    return record


def _played(
    expect: Mapping[str, Any],
    *,
    replies: tuple[str, ...] = ("Готово",),
    before: list[dict[str, Any]] | None = None,
    after: list[dict[str, Any]] | None = None,
    mode: str | None = "assistant",
    burst: tuple[Turn, ...] = (),
) -> Played:
    dialogue = Dialogue("t", 0, "d", 1, (Turn("text", "x"),), burst, expect)
    old = before if before is not None else [_record(1, 2, "12:00")]
    new = after if after is not None else copy.deepcopy(old)
    return Played(
        dialogue,
        "79130000000",
        exchanges=[Exchange("x", replies)],
        before={r["id"]: r for r in old},
        after={r["id"]: r for r in new},
        record_keys={"r": 1},
        zone=ZONE,
        today=TODAY,
        mode=mode,
    )


BOOKED = {"services": [11], "staff": 21, "day": 1, "time": "15:00", "name": "дина"}


def test_a_matching_booking_passes() -> None:
    after = [_record(1, 2, "12:00"), _record(2, 1, "15:00")]
    assert problems(_played({"booked": BOOKED}, after=after, replies=("Записала!",))) == []


@pytest.mark.parametrize(
    ("record", "missing"),
    [
        (_record(2, 1, "16:00"), "time 16:00"),
        (_record(2, 2, "15:00"), "day +2"),
        (_record(2, 1, "15:00", staff_id=22), "staff 22"),
        (_record(2, 1, "15:00", client={"name": "Ия"}), "client name"),
        (_record(2, 1, "15:00", services=[{"id": 11}, {"id": 12}]), "services"),
        (_record(2, 1, "15:00", api_id=""), "api_id"),
    ],
)
def test_a_booking_that_differs_fails(record: dict[str, Any], missing: str) -> None:
    found = problems(_played({"booked": BOOKED}, after=[_record(1, 2, "12:00"), record]))
    assert any(missing in p for p in found), found


def test_a_run_across_the_salons_midnight_counts_days_from_either_date() -> None:
    """Said after midnight, "tomorrow" is the new date's tomorrow: a run that crossed the
    salon's midnight accepts offsets from the start's date or the end's, and no other."""
    after = [_record(1, 2, "12:00"), _record(2, 2, "15:00")]
    played = _played({"booked": BOOKED}, after=after)
    assert any("day +2" in p for p in problems(played))
    played.today_at_end = TODAY + timedelta(days=1)
    assert problems(played) == []
    assert "either date" in played.transcript()
    moved = _played(
        {"moved": {"record": "r", "day": 3, "time": "16:00"}}, after=[_record(1, 4, "16:00")]
    )
    moved.today_at_end = TODAY + timedelta(days=1)
    assert problems(moved) == []
    moved.today_at_end = TODAY + timedelta(days=2)
    assert any("expected day 3" in p for p in problems(moved))


def test_two_records_or_none_fail() -> None:
    twice = [_record(1, 2, "12:00"), _record(2, 1, "15:00"), _record(3, 1, "15:00")]
    assert "3 records created, expected 1" not in problems(_played({"booked": BOOKED}))
    assert any("2 records created" in p for p in problems(_played({"booked": BOOKED}, after=twice)))
    assert any("no record created" in p for p in problems(_played({"booked": BOOKED})))


def test_windows_weekdays_and_any_of() -> None:
    after = [_record(1, 2, "12:00"), _record(2, 7, "18:30", staff_id=22)]
    ok = {
        "services_any": [11, 12],
        "staff_any": [21, 22],
        "weekday": ["fri", "sat"],  # today is a Friday: the next one is a week away
        "time": {"from": "17:00", "to": "20:00"},
    }
    assert problems(_played({"booked": ok}, after=after)) == []
    late = {**ok, "time": {"from": "17:00", "to": "18:00"}}
    assert problems(_played({"booked": late}, after=after)) != []
    weekend = {"weekend": True}
    saturday, sunday, friday = (
        _record(2, 1, "10:00"),
        _record(2, 2, "10:00"),
        _record(2, 7, "10:00"),
    )
    for record, fits in ((saturday, True), (sunday, True), (friday, False)):
        found = problems(_played({"booked": weekend}, after=[_record(1, 2, "12:00"), record]))
        assert (found == []) is fits, found
    assert nearest_weekday_offset(TODAY, "fri") == 7
    assert nearest_weekday_offset(TODAY, "sat") == 1


def test_cancel_move_keep_and_nothing_changed() -> None:
    deleted = [_record(1, 2, "12:00", deleted=True)]
    assert problems(_played({"cancelled": ["r"]}, after=deleted, replies=("Отменила",))) == []
    assert problems(_played({"nothing_changed": True, "kept": ["r"]})) == []
    found = problems(_played({"nothing_changed": True}, after=deleted))
    assert any("did not ask for" in p for p in found) and any("nothing" in p for p in found)
    moved = [_record(1, 3, "16:00")]
    expect = {"moved": {"record": "r", "day": 3, "time": "16:00"}}
    assert problems(_played(expect, after=moved, replies=("Перенесла",))) == []
    assert any("not kept" in p for p in problems(_played({"kept": ["r"]}, after=moved)))
    wrong = {"moved": {"record": "r", "day": 3, "time": "15:00"}}
    assert any("expected day 3" in p for p in problems(_played(wrong, after=moved)))


def test_claims_need_what_yclients_shows() -> None:
    for claim in ("Записала вас на пятницу", "Отменил запись", "Перенёс на 16:00"):
        assert any("claims" in p for p in problems(_played({}, replies=(claim,)))), claim
    for fine in ("Записать?", "Хорошо, не отменила", "Перенести на 16:00?", "Вы записаны"):
        assert problems(_played({}, replies=(fine,))) == [], fine


def test_replies_are_compared_loosely_on_case_and_digit_spaces() -> None:
    replies = ("Стрижка — 1 500 ₽, от 3\u00a0500 до 6 000 ₽, в 15:00",)
    expect = {
        "reply_contains": ["стрижка", "1500", "3500", "6 000"],
        "reply_contains_any": ["нет такого", "6000"],
        "reply_not_contains": ["как вас зовут"],
        "has_time": True,
    }
    assert problems(_played(expect, replies=replies)) == []
    assert normalise("1 500 и 2") == "1500 и 2"
    found = problems(_played({"reply_contains": ["2500"], "has_time": True}, replies=("1 500",)))
    assert found == ["no reply contains '2500'", "no reply shows a time (HH:MM)"]


def test_modes_silence_and_bursts() -> None:
    assert problems(_played({"handoff": True}, mode="handoff")) == []
    assert problems(_played({"handoff": True}, mode="assistant")) != []
    assert problems(_played({"opted_out": False}, mode=None)) == []
    assert problems(_played({"silent": True})) != []
    assert problems(_played({"silent": True}, replies=())) == []
    burst = (Turn("text", "привет"), Turn("text", "на стрижку"))
    assert problems(_played({"burst_answered_once": True}, burst=burst)) == []
    two = ("Здравствуйте!", "На когда?")
    assert problems(_played({"burst_answered_once": True}, burst=burst, replies=two)) != []


def test_runner_errors_are_problems() -> None:
    played = _played({})
    played.errors.append("no reply to 'x' within 25 s; the dialogue stopped")
    assert problems(played) == played.errors
    assert "no reply" not in played.transcript() and "> x" in played.transcript()
