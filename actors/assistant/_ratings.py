"""A 1–5 rating in a client's answer to a review request: ``read_rating(text)`` → ``(rating,
comment)`` or ``None``.

Read only while a review request waits for its answer (``TurnContext.prompt``). What counts:

- stars: "⭐⭐⭐⭐" is 4 (one to five of ⭐ ★ 🌟);
- a digit 1–5 standing alone ("5", "5/5", "4 из 5", "на 4", "5+", "оценка 3") — as the first
  or last word, next to a rating word ("ставлю 5", "5 баллов"), or in a short message; never
  part of a time or another number ("15:00", "10 из 10", "4,5");
- a number word ("пять", "пятёрка", "четыре") by the same rule;
- else a word saying how it was ("отлично" 5, "хорошо" 4, "нормально" 3, "плохо" 2, "ужасно"
  1) in a message of a few words, not negated ("не очень" is no rating).

The comment is the message itself when it says more than the rating ("3, мастер опоздал"):
the salon reads it as the client wrote it. Pure.
"""

from __future__ import annotations

import re

__all__ = ["COMMENT_LIMIT", "read_rating"]

#: Characters of a comment kept.
COMMENT_LIMIT = 1000
#: A message of at most this many words may be a bare digit or a word alone.
_SHORT = 4
#: A rating said as a word ("отлично") is read in a message of at most this many words.
_WORD_RATING_WORDS = 8


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STARS = re.compile("[\u2b50\u2605\U0001f31f]")
_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*\+?|[a-zа-яё]+", re.IGNORECASE)
_DIGIT = re.compile(r"^([1-5])(?:/5)?\+?$")

_NUMBER_WORDS = {
    **dict.fromkeys(("один", "одна", "единица", "единицу", "единичка", "кол"), 1),
    **dict.fromkeys(("два", "двойка", "двойку", "двоечка"), 2),
    **dict.fromkeys(("три", "тройка", "тройку", "троечка"), 3),
    **dict.fromkeys(("четыре", "четверка", "четверку", "четверочка"), 4),
    **dict.fromkeys(("пять", "пятерка", "пятерку", "пятерочка", "пятерочку"), 5),
}
_QUALITY = {
    **dict.fromkeys(
        (
            "отлично",
            "отличный",
            "отличная",
            "прекрасно",
            "замечательно",
            "великолепно",
            "превосходно",
            "шикарно",
            "идеально",
            "супер",
            "восхитительно",
            "потрясающе",
        ),
        5,
    ),
    **dict.fromkeys(("хорошо", "хороший", "хорошая", "неплохо"), 4),
    **dict.fromkeys(("нормально", "норм", "средне", "удовлетворительно"), 3),
    **dict.fromkeys(("плохо", "плохой", "плохая"), 2),
    **dict.fromkeys(("ужасно", "ужасный", "ужасная", "отвратительно", "кошмар", "ужас"), 1),
}
#: Words that make a nearby digit a rating.
_CUES = _set(
    "оценка оценку оцениваю оценю ставлю ставим поставлю балл балла баллов бал бала звезд "
    "звезды звезда звёзд звёзды из на"
)
#: Words that say nothing beyond the rating (a message of only these has no comment).
_FILLER = _CUES | _set(
    "все всё спасибо спасибочки большое благодарю пожалуйста моя мою это очень было вот ну "
    "да ок конечно твердая твёрдая уверенная за визит вам вас от меня и"
)


def _norm(word: str) -> str:
    return word.lower().replace("ё", "е")


def read_rating(text: str) -> tuple[int, str] | None:
    """``(rating, comment)`` said in ``text`` (rules: module docstring), or ``None``."""
    tokens = [m.group() for m in _TOKEN.finditer(text)]
    words = [_norm(t) for t in tokens]
    found = _from_digits(words) or _from_number_words(words)
    if found is None:
        stars = len(_STARS.findall(text))
        if 1 <= stars <= 5:
            found = (stars, -1)
    if found is None:
        found = _from_quality(words)
    if found is None:
        return None
    rating, at = found
    rest = [w for k, w in enumerate(words) if k != at and w not in _FILLER and not w.isdigit()]
    rest = [w for w in rest if not _DIGIT.match(w) and _QUALITY.get(w) != rating]
    comment = " ".join(text.split())[:COMMENT_LIMIT] if rest else ""
    return rating, comment


def _placed(words: list[str], k: int) -> bool:
    """A number at ``k`` is a rating: first or last word, next to a cue, or a short message."""
    if k in (0, len(words) - 1) or len(words) <= _SHORT:
        return True
    near = words[max(0, k - 1) : k] + words[k + 1 : k + 2]
    return any(w in _CUES for w in near)


def _from_digits(words: list[str]) -> tuple[int, int] | None:
    for k, w in enumerate(words):
        match = _DIGIT.match(w)
        if match is None:
            continue
        if k + 2 < len(words) and words[k + 1] == "из" and words[k + 2] != "5":
            continue  # "3 из 10": another scale
        if _placed(words, k):
            return int(match.group(1)), k
    return None


def _from_number_words(words: list[str]) -> tuple[int, int] | None:
    for k, w in enumerate(words):
        rating = _NUMBER_WORDS.get(w)
        if rating is not None and _placed(words, k):
            return rating, k
    return None


def _from_quality(words: list[str]) -> tuple[int, int] | None:
    if not words or len(words) > _WORD_RATING_WORDS:
        return None
    for k, w in enumerate(words):
        rating = _QUALITY.get(w)
        if rating is None:
            continue
        if k > 0 and words[k - 1] == "не":
            return None  # "не очень хорошо": not a number we could honestly store
        return rating, k
    return None
