"""Russian free text as clients type it, turned into canonical tokens that keep their spans.

``tokenise(text)`` lower-cases the text (ё → е, Latin look-alike letters inside Cyrillic words
→ Cyrillic), then cuts it into tokens, each remembering the span of the ORIGINAL text it came
from, so callers can tell which characters a rule consumed. A token's ``c`` is its canonical
form, the only thing the date and time rules look at:

- digits stay digits, separators included: ``15:00``, ``14.03``, ``14/03``, ``15-00``,
  ``14.03.2027``; letters glued to digits are split off (``в15ч`` → ``в`` ``15`` ``час``);
- digit ordinals: ``14-го``/``14го``/``14-ого`` → ``14-го``; ``14-е``/``14е``/``14-ое`` →
  ``14-е``; any other ending (``2-й``, ``3я``) → ``2-й`` (an option, never a date);
- phone numbers (10+ digits, or ``123-45-67``) and grouped thousands (``1 500``) → ``#``:
  nothing may read them as a date or a time; currency words and signs → ``руб``;
- ``.``, ``,``, ``!``, ``?``, ``;`` and line breaks → ``|`` (a boundary no rule reads across:
  in "вариант 2, утро 10" the 2 is not "2 утра"), except a dot ending a short vocabulary word
  (``след.``, ``ч.``); other punctuation is dropped;
- words → a canonical word from the vocabulary below (every case form, common typos and short
  forms: ``завтро`` → ``завтра``, ``пятницу`` → ``wd5``, ``марта`` → ``mon3``, ``вечером`` →
  ``вечер``, ``двух`` → ``2``, ``седьмого`` → ``g7``, ``пятнадцатое`` → ``e15``,
  ``полседьмого`` → ``пол`` ``g7``); a word glued from two vocabulary words is split
  (``сутра`` → ``с`` ``утро``, ``завтрав`` → ``завтра`` ``в``); a word one typo away (one
  letter missing, extra, wrong or two swapped) from exactly one vocabulary word of 5+ letters
  is read as that word; neither happens to a word pymorphy3 knows as a word of its own
  ("завтрак" is not "завтра к", "шерсти" not "шести");
- a spelt tens word followed by a spelt unit merges: ``двадцать пятого`` → ``g25``;
- every other word → ``_``.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from ._morph import is_known_word

__all__ = ["Token", "tokenise"]


class Token(NamedTuple):
    """One canonical token and the span ``[start, end)`` of the original text it stands for."""

    c: str
    start: int
    end: int
    raw: str
    spelt: bool = False  # a number written as a word ("два"), not as digits


def _forms(table: dict[str, str]) -> dict[str, str]:
    """Expand ``{canonical: "form form …"}`` into ``{form: canonical}``."""
    return {form: canonical for canonical, forms in table.items() for form in forms.split()}


_WORDS: dict[str, str] = _forms(
    {
        "сегодня": "сегодня сегодн седня сення сегодне сегодни сеня",
        "завтра": "завтра завтро завтр завтраа",
        "послезавтра": "послезавтра послезавтро послезавтр",
        "послепослезавтра": "послепослезавтра",
        "вчера": "вчера позавчера",
        "wd1": "понедельник понедельника понедельнику понедельником понедельнике понедельники "
        "понедельникам понедельниках пн пнд",
        "wd2": "вторник вторника вторнику вторником вторнике вторники вторникам вторниках вт",
        "wd3": "среда среду среды среде средой средам средах ср",
        "wd4": "четверг четверга четвергу четвергом четверге четверги четвергам четвергах чт",
        "wd5": "пятница пятницу пятницы пятнице пятницей пятницам пятницах пт",
        "wd6": "суббота субботу субботы субботе субботой субботам субботах сб",
        "wd7": "воскресенье воскресенья воскресенью воскресеньем воскресение воскресении "
        "воскресеньям воскресеньях вс вскр",
        "mon1": "января январь январе янв",
        "mon2": "февраля февраль феврале фев февр",
        "mon3": "марта март марте мар",
        "mon4": "апреля апрель апреле апр",
        "mon5": "мая май мае",
        "mon6": "июня июнь июне июн",
        "mon7": "июля июль июле июл",
        "mon8": "августа август августе авг",
        "mon9": "сентября сентябрь сентябре сен сент",
        "mon10": "октября октябрь октябре окт",
        "mon11": "ноября ноябрь ноябре ноя нояб",
        "mon12": "декабря декабрь декабре дек",
        "утро": "утро утром утра утречком утречка утречко поутру утренние утреннее",
        "днем": "днем дневное дневные",
        "вечер": "вечер вечером вечера вечерком вечерочком вечерку вечеру вечерок вечернее "
        "вечерние вечерочек",
        "ночь": "ночь ночью ночи ночам",
        "обед": "обед обеда обеду обедом обеде обеденное",
        "полдень": "полдень полудня полудню",
        "полночь": "полночь полуночи",
        "полчаса": "полчаса полчасика",
        "час": "час часа часов часам часу часик часика часиков ч",
        "мин": "минут минуты минута минуту минутки минуток мин",
        "пол": "пол половина половине половину половины",
        "четверть": "четверть четверти",
        "без": "без",
        "дня": "дня",
        "день": "день дни денек денька",
        "дней": "дней денечков",
        "неделя": "неделя неделю недели неделе неделей недель недельку неделька недельки",
        "месяц": "месяц месяца месяцев месяцок",
        "год": "год года году г гг",
        "число": "число числа числу числе чисел",
        "выходные": "выходные выходных выходным выходной выхи выхах уикенд уикэнд викенд",
        "будни": "будни будний будние будних будням буднях будень",
        "этот": "этот эту эта это этой этих эти этом этого",
        "тот": "тот ту той того",
        "же": "же",
        "след": "следующий следующая следующую следующей следующее следующие следующих "
        "следующем след",
        "ближ": "ближайший ближайшую ближайшая ближайшие ближайших ближайшей ближайшее",
        "конец": "конца конец концу конце",
        "в": "в во",
        "на": "на",
        "к": "к ко",
        "с": "с со",
        "до": "до",
        "от": "от",
        "после": "после",
        "позже": "позже позднее попозже",
        "раньше": "раньше ранее пораньше",
        "не": "не",
        "около": "около примерно приблизительно ориентировочно гдето",
        "где": "где",
        "то": "то",
        "районе": "районе",
        "между": "между",
        "через": "через",
        "или": "или либо",
        "и": "и",
        "пару": "пару пара пары парочку",
        "ближе": "ближе",
        "сейчас": "сейчас щас счас",
        "руб": "руб рубль рубля рублей р тыс тысяч тысячи тысяча евро доллар долларов",
        "1": "один одна одного одну одной одному",
        "2": "два две двух двум двумя",
        "3": "три трех трем тремя",
        "4": "четыре четырех четырем",
        "5": "пять пяти",
        "6": "шесть шести",
        "7": "семь семи",
        "8": "восемь восьми",
        "9": "девять девяти",
        "10": "десять десяти",
        "11": "одиннадцать одиннадцати",
        "12": "двенадцать двенадцати",
        "13": "тринадцать тринадцати",
        "14": "четырнадцать четырнадцати",
        "15": "пятнадцать пятнадцати",
        "16": "шестнадцать шестнадцати",
        "17": "семнадцать семнадцати",
        "18": "восемнадцать восемнадцати",
        "19": "девятнадцать девятнадцати",
        "20": "двадцать двадцати",
        "30": "тридцать тридцати",
        "40": "сорок сорока",
        "50": "пятьдесят пятидесяти",
    }
)

# Ordinal stems: "седьм" + "ого" = the 7th in the genitive ("полседьмого", "седьмого марта").
_ORDINAL_STEMS = {
    "перв": 1,
    "втор": 2,
    "трет": 3,
    "четверт": 4,
    "пят": 5,
    "шест": 6,
    "седьм": 7,
    "восьм": 8,
    "девят": 9,
    "десят": 10,
    "одиннадцат": 11,
    "двенадцат": 12,
    "тринадцат": 13,
    "четырнадцат": 14,
    "пятнадцат": 15,
    "шестнадцат": 16,
    "семнадцат": 17,
    "восемнадцат": 18,
    "девятнадцат": 19,
    "двадцат": 20,
    "тридцат": 30,
}
for _stem, _n in _ORDINAL_STEMS.items():
    _WORDS[_stem + ("ьего" if _stem == "трет" else "ого")] = f"g{_n}"
    _WORDS[_stem + ("ье" if _stem == "трет" else "ое")] = f"e{_n}"
_WORDS["третего"] = "g3"  # a common misspelling of "третьего"

_WORDS.update(
    {
        "назавтра": "на завтра",
        "наутро": "на утро",
        "сутра": "с утро",
        "вобед": "в обед",
        "вполдень": "в полдень",
        "пополудни": "после полдень",
    }
)

# Words that must not take part in glue splitting or typo matching: short forms that are
# also pieces of ordinary words ("ср" in "срок"), and one-letter prepositions on the right.
_SHORT_FORMS = {
    w for w in _WORDS if len(w) <= 3 and _WORDS[w] not in {"в", "на", "к", "с", "до", "от", "час"}
}
_SPLIT_LEFT = {w for w in _WORDS if w not in _SHORT_FORMS and (len(w) >= 2 or w in "вкс")}
_SPLIT_RIGHT = {w for w in _WORDS if w not in _SHORT_FORMS and (len(w) >= 3 or w in "вкс")}

_LOOKALIKE = str.maketrans("aeopcxykmtbh", "аеорсхукмтвн")
_TOKEN = re.compile(
    r"(?P<ord>\d{1,2})-?(?P<suffix>ого|го|ое|е|ый|ий|ой|й|ая|я)(?![а-яa-z])"
    r"|(?P<num>\d+(?:[:./\-]\d+)*)"
    r"|(?P<word>[а-яa-z]+)"
    r"|(?P<money>[₽$€%])"
    r"|(?P<stop>[.,!?;\n]+)"
)
_PHONE = re.compile(r"(?:\+\d|\b\d)[\d \t\-()]{8,}\d")
_LOCAL_PHONE = re.compile(r"\b\d{3}-\d{2}-\d{2}\b")
_THOUSANDS = re.compile(r"\b\d{1,3}(?:[ \u00a0\u202f]\d{3})+\b")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")


def _lower(text: str) -> str:
    lowered = text.lower().replace("ё", "е")
    if len(lowered) == len(text):
        return lowered
    # A few characters change length when lower-cased (e.g. "İ"): keep spans exact.
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text).replace("ё", "е")


def _masked(text: str) -> list[tuple[int, int]]:
    """Spans of phone numbers and grouped thousands, which no rule may read."""
    spans = [m.span() for m in _PHONE.finditer(text) if sum(map(str.isdigit, m.group())) >= 10]
    spans.extend(m.span() for m in _LOCAL_PHONE.finditer(text))
    spans.extend(m.span() for m in _THOUSANDS.finditer(text))
    return sorted(spans)


@functools.lru_cache(maxsize=8192)
def _canon_word(word: str) -> tuple[str, ...]:
    """The canonical word(s) for one lower-case word; ``("_",)`` when it means nothing here."""
    if _LATIN.search(word) and _CYRILLIC.search(word):
        word = word.translate(_LOOKALIKE)
    found = _WORDS.get(word)
    if found is not None:
        return tuple(found.split())
    if word.startswith("пол") and (rest := _WORDS.get(word[3:])) and rest.startswith("g"):
        return ("пол", rest)
    if len(word) >= 4:
        for cut in range(1, len(word)):
            left, right = word[:cut], word[cut:]
            if left in _SPLIT_LEFT and right in _SPLIT_RIGHT and not is_known_word(word):
                return (*_WORDS[left].split(), *_WORDS[right].split())
    if len(word) >= 5:
        typo = _near(word)
        if typo is not None and not is_known_word(word):
            return tuple(typo.split())
    return ("_",)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _typo_index() -> dict[str, set[str]]:
    """Every 5+-letter vocabulary word and each of its one-letter deletions → canonical words.

    Two words are one edit apart (missing, extra, wrong or swapped letter) exactly when one
    is the other, one is a deletion of the other, or they share a deletion.
    """
    index: dict[str, set[str]] = {}
    for form, canonical in _WORDS.items():
        if len(form) < 5 or " " in canonical:
            continue
        for key in {form} | _deletions(form):
            index.setdefault(key, set()).add(canonical)
    return index


_TYPOS = _typo_index()


def _near(word: str) -> str | None:
    """The one canonical word a single typo away from ``word``, if exactly one is."""
    found: set[str] = set()
    for key in {word} | _deletions(word):
        found |= _TYPOS.get(key, set())
        if len(found) > 1:
            return None
    return next(iter(found)) if found else None


def _ordinal(digits: str, suffix: str) -> str:
    if suffix in {"го", "ого"}:
        return f"{digits}-го"
    if suffix in {"е", "ое"}:
        return f"{digits}-е"
    return f"{digits}-й"


def tokenise(text: str) -> list[Token]:
    """Canonical tokens of ``text`` in order (see the module docstring); never raises."""
    low = _lower(text)
    masks = _masked(low)
    tokens: list[Token] = []
    mask_at = 0
    for m in _TOKEN.finditer(low):
        start, end = m.span()
        while mask_at < len(masks) and masks[mask_at][1] <= start:
            mask_at += 1
        if mask_at < len(masks) and masks[mask_at][0] < end:
            m_start, m_end = masks[mask_at]
            if not tokens or tokens[-1].c != "#" or tokens[-1].start != m_start:
                tokens.append(Token("#", m_start, m_end, text[m_start:m_end]))
            continue
        raw = text[start:end]
        kind = "ord" if m["ord"] is not None else m.lastgroup
        if kind == "ord":
            tokens.append(Token(_ordinal(m["ord"], m["suffix"]), start, end, raw))
        elif kind == "num":
            tokens.append(Token(m.group(), start, end, raw))
        elif kind == "word":
            for canonical in _canon_word(m.group()):
                tokens.append(Token(canonical, start, end, raw, spelt=canonical[:1].isdigit()))
        elif kind == "money":
            tokens.append(Token("руб", start, end, raw))
        elif tokens and tokens[-1].c != "|" and not _abbreviated(tokens[-1], raw):
            tokens.append(Token("|", start, end, raw))
    return _merge_spelt_numbers(tokens)


def _abbreviated(last: Token, stop: str) -> bool:
    """A single dot right after a short known word ends an abbreviation ("след.", "ч.",
    "руб."), not a sentence."""
    return stop == "." and last.c not in {"_", "#"} and last.raw.isalpha() and len(last.raw) <= 4


def _merge_spelt_numbers(tokens: list[Token]) -> list[Token]:
    """``двадцать пять`` → 25, ``двадцать пятого`` → g25, ``тридцать первое`` → e31."""
    merged: list[Token] = []
    for token in tokens:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.spelt
            and prev.c in {"20", "30", "40", "50"}
            and token.raw != prev.raw
        ):
            tens = int(prev.c)
            if token.spelt and token.c.isdigit() and 1 <= int(token.c) <= 9:
                merged[-1] = Token(str(tens + int(token.c)), prev.start, token.end, "", True)
                continue
            if token.c[:1] in {"g", "e"} and token.c[1:].isdigit() and int(token.c[1:]) <= 9:
                canonical = f"{token.c[0]}{tens + int(token.c[1:])}"
                merged[-1] = Token(canonical, prev.start, token.end, "", False)
                continue
        merged.append(token)
    return merged
