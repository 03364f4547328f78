"""pymorphy3 behind two questions the date and time rules ask, with the analyzer made once.

Creating ``pymorphy3.MorphAnalyzer`` costs about 70–100 ms and some 15 MB, so it is built
lazily on the first question and kept for the life of the process (``analyzer()``); messages
that need no dictionary look-up never load it. Both questions are pure and thread-safe.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["analyzer", "is_counted_by", "is_known_word"]


@functools.cache
def analyzer() -> Any:
    """The process's one Russian morphological analyzer (built on first use)."""
    import pymorphy3  # type: ignore[import-untyped]  # no type information shipped

    return pymorphy3.MorphAnalyzer(lang="ru")


def is_known_word(word: str) -> bool:
    """Whether ``word`` (lower case) is a dictionary form, so must not be "corrected" as a typo
    (e.g. "шерсти" is not a misspelt "шести", "завтрак" not a misspelt "завтра")."""
    return bool(analyzer().word_is_known(word))


@functools.lru_cache(maxsize=4096)
def is_counted_by(word: str, number: int) -> bool:
    """Whether ``word`` reads as a noun (or an adjective before one) counted by ``number``:
    "2 услуги", "3 человека", "5 стрижек", "1 зону" — so that number is a count, not an hour.

    Agreement follows the numeral: 1, 21, … take the nominative/accusative singular; 2–4, 22–24,
    … the genitive singular (or, for adjectives, the plural); others the genitive plural.
    "в 5 маникюр" is no count (5 would need "маникюров"), so 5 stays an hour there.
    """
    last, tens = number % 10, number % 100
    for parse in analyzer().parse(word):
        tag = parse.tag
        if tag.POS not in {"NOUN", "ADJF"}:
            continue
        case, grammatical_number = tag.case, tag.number
        if last == 1 and tens != 11:
            if grammatical_number == "sing" and case in {"nomn", "accs"}:
                return True
        elif 2 <= last <= 4 and not 12 <= tens <= 14:
            if tag.POS == "NOUN" and grammatical_number == "sing" and case == "gent":
                return True
            if tag.POS == "ADJF" and grammatical_number == "plur" and case in {"nomn", "gent"}:
                return True
        elif grammatical_number == "plur" and case == "gent":
            return True
    return False
