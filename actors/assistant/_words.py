"""Words of a client's message with their lemmas, for the readers of services, masters,
names and intents (``_understand``); dates and times are ``_when``'s, on its own tokens.

``words(text)`` cuts the text into words that keep their span of the ORIGINAL text (so a
reader can skip what ``parse_when`` consumed) and looks each up in pymorphy3 once per
process (``analyse`` is cached): the first parse's lemma, every parse's lemma, whether a
parse is a first name, a surname, whether the dictionary knows the word at all. Lower case,
``ё`` → ``е``; a hyphenated word ("гель-лак") is one word whose parts are also read.
Pure and thread-safe; never raises.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ._morph import analyzer

__all__ = ["Analysis", "Word", "analyse", "words"]

# Letters (Cyrillic or Latin) with inner hyphens, numbers, or one of the emoji we read.
_WORD = re.compile(r"[а-яёa-z]+(?:-[а-яёa-z]+)*|\d+|[👍👌✅]|\+", re.IGNORECASE)
_MAX_WORDS = 2000  # a 4,000-character message has about 600; more is not a message to read


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the dictionary says of one lower-case word."""

    lemma: str  # the most likely parse's normal form (ё → е)
    lemmas: frozenset[str]  # every parse's normal form, the word itself included
    pos: str  # the most likely parse's part of speech ("" when none)
    first_names: frozenset[str]  # normal forms of parses tagged as a first name
    surnames: frozenset[str]  # normal forms of parses tagged as a surname
    known: bool  # a dictionary word (not guessed by the predictor)
    name_first: bool  # the most likely parse is a first name
    grammemes: frozenset[str] = frozenset()  # the most likely parse's tags ("Apro", "gent" …)
    cases: frozenset[str] = frozenset()  # every case a parse with this lemma's POS allows


@dataclass(frozen=True, slots=True)
class Word:
    """One word of the message: as written, lower-cased, where, and its analysis."""

    raw: str
    low: str
    start: int
    end: int
    info: Analysis

    @property
    def lemma(self) -> str:
        return self.info.lemma

    @property
    def capitalised(self) -> bool:
        return self.raw[:1].isupper()

    @property
    def cyrillic(self) -> bool:
        return "а" <= self.low[:1] <= "я"


def _plain(word: str) -> str:
    return word.replace("ё", "е")


@functools.lru_cache(maxsize=16384)
def analyse(low: str) -> Analysis:
    """The dictionary's view of one lower-case word (cached per process)."""
    if not low or not ("а" <= low[0] <= "я" or low[0] == "ё"):
        return Analysis(low, frozenset({low}), "", frozenset(), frozenset(), False, False)
    morph = analyzer()
    parses = morph.parse(low)
    lemmas = {low}
    first: set[str] = set()
    surnames: set[str] = set()
    for parse in parses:
        normal = _plain(parse.normal_form)
        lemmas.add(normal)
        if "Name" in parse.tag:
            first.add(normal)
        if "Surn" in parse.tag:
            surnames.add(normal)
    top = parses[0] if parses else None
    lemma = _plain(top.normal_form) if top is not None else low
    pos = str(top.tag.POS or "") if top is not None else ""
    cases = frozenset(str(p.tag.case) for p in parses if p.tag.case and str(p.tag.POS or "") == pos)
    return Analysis(
        lemma=lemma,
        lemmas=frozenset(lemmas),
        pos=pos,
        first_names=frozenset(first),
        surnames=frozenset(surnames),
        known=bool(morph.word_is_known(low)),
        name_first=top is not None and "Name" in top.tag,
        grammemes=frozenset(str(g) for g in top.tag.grammemes) if top is not None else frozenset(),
        cases=cases,
    )


def words(text: str) -> list[Word]:
    """The words of ``text`` in order (at most ``_MAX_WORDS``), each analysed."""
    out: list[Word] = []
    for m in _WORD.finditer(text):
        raw = m.group()
        low = _plain(raw.lower())
        out.append(Word(raw, low, m.start(), m.end(), analyse(low)))
        if len(out) >= _MAX_WORDS:
            break
    return out
