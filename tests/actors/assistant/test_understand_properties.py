"""Properties of understand_rules that hold for any text and context (hypothesis): it never
fails, never names what the salon does not have, never picks a time it did not offer."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.assistant._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Expecting,
    Flow,
    SetMaster,
    SetServices,
    SetWhen,
    TurnContext,
    UnknownService,
)
from actors.assistant._understand import read_message

from .understand_support import CATALOGS, NOWS

# Pieces clients write, so the deep rules are reached far more often than by random letters.
_PIECES = [
    "запишите",
    "хочу",
    "на",
    "к",
    "у",
    "в",
    "не",
    "да",
    "нет",
    "надо",
    "отмените",
    "перенести",
    "мои записи",
    "сколько стоит",
    "прайс",
    "где",
    "до скольки",
    "администратор",
    "стоп",
    "привет",
    "спасибо",
    "маникюр",
    "без покрытия",
    "с покрытием",
    "шеллак",
    "стрижка",
    "мужская",
    "женскую",
    "постричься",
    "бороду",
    "налысо",
    "педикюр",
    "брови",
    "ногти",
    "Игорю",
    "Маше",
    "Екатерине",
    "Сергей",
    "Наташе",
    "меня зовут",
    "я",
    "это",
    "Тимур",
    "завтра",
    "послезавтра",
    "в пятницу",
    "утро",
    "10",
    "в 15",
    "на 3",
    "17:00",
    "14.03",
    "первый",
    "второй",
    "последний",
    "вариант",
    "2",
    "1",
    "7",
    "-й",
    "давайте",
    "👍",
    "🙂",
    "?",
    ",",
    ".",
    "\n",
    "ывапр",
    "hello",
    "с",
    "со",
    "любому",
    "мастеру",
    "тот же день",
]
_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(_PIECES), max_size=12).map(" ".join),
)
_TIMES = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    max_size=6,
)


@st.composite
def _contexts(draw: st.DrawFn, salon: str) -> TurnContext:
    now = NOWS[salon]
    times = tuple(
        dt.datetime.combine(now.date() + dt.timedelta(days=d), dt.time(h, m), tzinfo=now.tzinfo)
        for d, h, m in draw(_TIMES)
    )
    return TurnContext(
        expecting=draw(st.sampled_from(list(Expecting))),
        offered_count=draw(st.integers(0, 8)) if not times else len(times),
        offered_times=times,
        flow=draw(st.one_of(st.none(), st.sampled_from(list(Flow)))),
    )


def _check(commands: tuple[Command, ...], salon: str, context: TurnContext) -> None:
    catalog = CATALOGS[salon]
    services = {s.id for s in catalog.services}
    masters = {m.id for m in catalog.masters}
    categories = {c.id for c in catalog.categories}
    offered = {(t.hour, t.minute) for t in context.offered_times}
    assert commands, "always at least one command"
    for command in commands:
        match command:
            case SetServices(ids=ids) | ChooseVisit(service_ids=ids) | UnknownService(closest=ids):
                assert set(ids) <= services
            case AmbiguousService(candidates=ids):
                assert len(ids) >= 2 and set(ids) <= services
            case Ask(service_ids=ids, category_id=category):
                assert set(ids) <= services
                assert category is None or category in categories
            case SetMaster(staff_id=staff):
                assert staff is None or staff in masters
            case ChooseOption(number=number, time=time):
                assert (number is None) != (time is None)
                if time is not None:
                    assert (time.hour, time.minute) in offered
                else:
                    assert number is not None and 1 <= number <= context.offered_count
            case SetWhen(when=when):
                assert not when.is_empty
                if when.window is not None:
                    assert dt.time(0) <= when.window[0] < when.window[1] <= dt.time(23, 59)
                if when.time is not None:
                    assert dt.time(0) <= when.time <= dt.time(23, 59)
        if isinstance(command, ChooseVisit) and command.number is not None:
            assert 1 <= command.number <= context.offered_count


@settings(max_examples=400, deadline=None)
@given(st.data(), _TEXT, st.sampled_from(sorted(CATALOGS)))
def test_any_text_in_any_context(data: st.DataObject, text: str, salon: str) -> None:
    context = data.draw(_contexts(salon))
    commands = read_message(text, context, CATALOGS[salon], NOWS[salon])
    _check(commands, salon, context)
