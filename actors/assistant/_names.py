"""People in a message: the salon's masters ("к Игорю", "у Маши", "Екатерине") and the
client's own name ("меня зовут Тимур", "я Лилия", or a lone word after "Как вас зовут?").

Masters are matched on their first name (and surname, when capitalised): any case form
through pymorphy3's first-name lemmas, short and pet forms through ``_lexicon.DIMINUTIVES``
("Маша" → Мария), typos through rapidfuzz (``ratio`` ≥ ``MASTER_CUTOFF`` on words the
dictionary does not know as anything else). A name that is also an ordinary word ("Вера",
"Роза", "Ким") counts only when capitalised or after к / у / мастер. Two masters with the
same first name need the surname; otherwise neither is picked.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from ._catalog import AssistantCatalog
from ._lexicon import DIMINUTIVES
from ._morph import analyzer
from ._words import Word, analyse

__all__ = ["MASTER_CUTOFF", "MasterHit", "MasterIndex", "read_client_name"]

MASTER_CUTOFF = 85.0
_BEFORE_MASTER = frozenset({"к", "ко", "у", "мастер", "мастеру", "мастера", "мастером", "с"})


@dataclass(frozen=True, slots=True)
class MasterHit:
    """A master named at ``[start, end)``."""

    staff_id: int
    start: int
    end: int


def _lemma_of_name(word: str) -> str:
    info = analyse(word.lower().replace("ё", "е"))
    return min(info.first_names) if len(info.first_names) == 1 else word.lower().replace("ё", "е")


_INDEXES: weakref.WeakKeyDictionary[AssistantCatalog, MasterIndex] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class MasterIndex:
    """A salon's masters by first-name lemma and surname lemma."""

    def __init__(self, catalog: AssistantCatalog) -> None:
        self.first: dict[str, set[int]] = {}
        self.surname: dict[str, set[int]] = {}
        for master in catalog.masters:
            parts = master.name.split()
            if not parts:
                continue
            self.first.setdefault(_lemma_of_name(parts[0]), set()).add(master.id)
            for extra in parts[1:]:
                low = extra.lower().replace("ё", "е")
                keys = analyse(low).surnames | {low}
                for key in keys:
                    self.surname.setdefault(key, set()).add(master.id)
        self._fuzzy = tuple(self.first)

    @classmethod
    def of(cls, catalog: AssistantCatalog) -> MasterIndex:
        """The index of ``catalog``, built once and kept while the catalog lives."""
        with _LOCK:
            index = _INDEXES.get(catalog)
            if index is None:
                index = cls(catalog)
                _INDEXES[catalog] = index
            return index

    def _first_ids(self, word: Word, cued: bool) -> set[int]:
        info = word.info
        ordinary = not info.name_first and info.known
        if ordinary and not (word.capitalised or cued):
            return set()
        found: set[int] = set()
        for key in info.first_names | {word.low}:
            found |= self.first.get(key, set())
            for full in DIMINUTIVES.get(key, ()):
                found |= self.first.get(full, set())
        if found or not self._fuzzy or len(word.low) < 4 or not word.cyrillic:
            return found
        if info.known and not info.first_names:
            return found
        lemma = min(info.first_names) if info.first_names else word.low
        near = process.extractOne(lemma, self._fuzzy, scorer=fuzz.ratio, score_cutoff=MASTER_CUTOFF)
        if near is None:
            near = process.extractOne(
                word.low, self._fuzzy, scorer=fuzz.ratio, score_cutoff=MASTER_CUTOFF
            )
        return set(self.first[str(near[0])]) if near is not None else set()

    def _surname_ids(self, word: Word, cued: bool) -> set[int]:
        if not (word.capitalised or cued) or not word.cyrillic:
            return set()
        found: set[int] = set()
        for key in word.info.surnames | {word.low}:
            found |= self.surname.get(key, set())
        return found

    def find(self, ws: Sequence[Word], skip: frozenset[int] = frozenset()) -> list[MasterHit]:
        """Masters named in ``ws`` (words at indexes in ``skip`` are not read), in order; a
        first name shared by several masters counts only with a surname next to it."""
        hits: list[MasterHit] = []
        k = 0
        while k < len(ws):
            if k in skip:
                k += 1
                continue
            word = ws[k]
            cued = k > 0 and ws[k - 1].low in _BEFORE_MASTER
            ids = self._first_ids(word, cued)
            end = word.end
            if ids and k + 1 < len(ws) and k + 1 not in skip:
                more = self._surname_ids(ws[k + 1], True) & ids
                if more:
                    ids, end = more, ws[k + 1].end
                    k += 1
            elif not ids:
                ids = self._surname_ids(word, cued)
            if len(ids) == 1:
                hits.append(MasterHit(next(iter(ids)), word.start, end))
            k += 1
        return hits


_NAME_CUES = (("меня", "зовут"), ("мое", "имя"), ("моё", "имя"), ("зовут",), ("имя",))
_SELF_CUES = frozenset({"я", "это"})


def _title(raw: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in raw.split("-"))


@functools.lru_cache(maxsize=4096)
def _nominative_name(low: str) -> bool:
    """Whether ``low`` is a first name as itself, in the nominative ("анна", not "анне")."""
    return any(
        "Name" in p.tag
        and p.tag.case == "nomn"
        and p.tag.number != "plur"
        and "Fixd" not in p.tag
        and p.normal_form.replace("ё", "е") == low
        for p in analyzer().parse(low)
    )


def _signed(ws: Sequence[Word], k: int, not_a_name: frozenset[int]) -> bool:
    """A first name in the nominative standing on its own at ``k``, as a client signs a
    message: not a master cue before it ("к", "у", "мастер"), not part of anything else."""
    word = ws[k]
    if k in not_a_name or not word.cyrillic or not _nominative_name(word.low):
        return False
    return not (k > 0 and ws[k - 1].low in _BEFORE_MASTER)


def _comma_between(text: str, left: Word, right: Word) -> bool:
    return any(ch in ",.!;—–" for ch in text[left.end : right.start])


def read_client_name(
    ws: Sequence[Word],
    *,
    asked: bool,
    not_a_name: frozenset[int],
    text: str = "",
    signed: bool = False,
) -> tuple[str, int, int] | None:
    """The client's own name and its span: after "меня зовут" / "моё имя" / "зовут" / "меня",
    or after "я" / "это" when the word is a first name; when a name was ``asked`` for, also
    the message's first word if it is a first name or the message is one or two plain words.
    With ``signed`` (the message asks for something and no master is being asked for), a
    nominative first name that opens the message before a comma ("Анна, запишите …") or
    closes it ("… в 15:00, Анна") is the client's too (``text`` shows the commas).
    Words at indexes in ``not_a_name`` (a service, a master, a day, yes/no) never are."""
    n = len(ws)
    for k in range(n - 1):  # "меня Анна" (no "зовут")
        nxt = ws[k + 1]
        if ws[k].low == "меня" and _signed(ws, k + 1, not_a_name) and nxt.info.name_first:
            return _with_surname(ws, k + 1, not_a_name)
    if signed and n >= 3:
        last = n - 1
        surname = n >= 4 and bool(ws[last].info.surnames) and ws[last].capitalised
        if surname and _signed(ws, last - 1, not_a_name) and ws[last - 1].capitalised:
            last -= 1  # "…, Анна Петрова"
        if _signed(ws, last, not_a_name) and (
            _comma_between(text, ws[last - 1], ws[last]) or ws[last].capitalised
        ):
            return _with_surname(ws, last, not_a_name)
        if _signed(ws, 0, not_a_name) and _comma_between(text, ws[0], ws[1]):
            return _with_surname(ws, 0, not_a_name)
    for k in range(n - 2):  # "меня Оксана зовут"
        cued = ws[k].low == "меня" and ws[k + 2].low == "зовут" and k + 1 not in not_a_name
        if cued and ws[k + 1].cyrillic and not ws[k + 1].low.isdigit():
            return _with_surname(ws, k + 1, not_a_name)
    for k in range(n):
        for cue in _NAME_CUES:
            end = k + len(cue)
            said = end < n and tuple(w.low for w in ws[k:end]) == cue
            if said and end not in not_a_name and ws[end].cyrillic and not ws[end].low.isdigit():
                return _with_surname(ws, end, not_a_name)
        if ws[k].low in _SELF_CUES and k + 1 < n and (k == 0 or ws[k - 1].low not in {"не"}):
            nxt = ws[k + 1]
            if k + 1 not in not_a_name and nxt.info.first_names and nxt.info.name_first:
                return _with_surname(ws, k + 1, not_a_name)
            if k + 1 not in not_a_name and nxt.info.first_names and nxt.capitalised:
                return _with_surname(ws, k + 1, not_a_name)
    if not asked or not ws:
        return None
    first = ws[0]
    if 0 in not_a_name or not first.cyrillic or len(first.low) < 2:
        return None
    plain = [w for w in ws if w.cyrillic]
    if first.info.first_names and (first.info.name_first or first.capitalised):
        return _with_surname(ws, 0, not_a_name)
    short = len(plain) == len(ws) <= 2 and not (set(range(len(ws))) & not_a_name)
    if short and (first.info.pos in {"NOUN", ""} or not first.info.known):
        return _with_surname(ws, 0, not_a_name)
    return None


def _with_surname(ws: Sequence[Word], k: int, not_a_name: frozenset[int]) -> tuple[str, int, int]:
    word = ws[k]
    if k + 1 < len(ws) and k + 1 not in not_a_name:
        nxt = ws[k + 1]
        if nxt.info.surnames and nxt.capitalised and nxt.start - word.end <= 2:
            return f"{_title(word.raw)} {_title(nxt.raw)}", word.start, nxt.end
    return _title(word.raw), word.start, word.end
