"""Which of a salon's services a message names: titles and the salon's synonyms, read the way
clients write (case forms, verbs, slang, typos), compared as canonical features.

Both sides are read into features the same way (``features``): each word's lemma, mapped by
``_lexicon.FEATURES`` ("постричься" → стрижка, "шеллак" → покрытие гель лак); a word the
dictionary does not know and that is one or two letters off a known feature is read as it
(rapidfuzz ``ratio`` ≥ ``FUZZY_CUTOFF``, measured on the tests: "маникур", "окрашевание",
"педекюр", "корекция" match; "стрелка", "браво" do not); ``без X`` makes ``-X``.

A service is a candidate when its title or a synonym shares a *head* feature with the
message (a noun that is neither a qualifier like "мужская" nor a weak word like "волосы";
qualifiers alone count when the assistant asked which service) and contradicts none of it
("маникюр с покрытием" rules out "Маникюр без покрытия"). Of the candidates, one whose
matched features are a strict subset of another's drops out ("мужская стрижка": the women's
cut matched only "стрижка"); those left with the same matched features are one mention with
several readings, an ambiguity ("стрижка" → мужская | женская); different feature sets are
different mentions ("стрижка и борода").

``ServiceIndex.of(catalog)`` builds the index once per catalog (equal catalogs share one;
it is kept while the catalog lives). Nothing here returns an id that is not in the catalog.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from ._catalog import AssistantCatalog, Service
from ._lexicon import (
    FAMILIES,
    FEATURES,
    IGNORED,
    PART_FAMILIES,
    PLAIN_ADJECTIVES,
    QUALIFIER_NEGATION,
    SERVICE_TERMS,
    WEAK,
)
from ._words import Word, analyse, words

__all__ = [
    "FUZZY_CUTOFF",
    "Feature",
    "Mention",
    "ServiceIndex",
    "ServiceMatch",
    "features",
]

FUZZY_CUTOFF = 82.0
_QUALIFIER_POS = frozenset({"ADJF", "ADJS", "PRTF", "PRTS"})
# A title's noun made from a verb ("снятие", "осветление", "чистка"): a verb of the same stem
# in a message names it ("снять", "осветлить", "чистить").
_VERBAL_NOUN_ENDINGS = ("ние", "тие", "ка", "ция")
_VOWELS = frozenset("аеиоуыэюя")
_VERB_POS = frozenset({"INFN", "VERB"})
_COMBO = re.compile(r"\+|\s и\s|,")


@dataclass(frozen=True, slots=True)
class Feature:
    """One canonical feature read from a word; ``key`` is ``-x`` for "без x"."""

    key: str
    head: bool  # a noun or verb that can name a service on its own
    start: int
    end: int
    verb: bool = False  # said as a verb ("подстричь"), which may govern the next feature


def _word_features(word: Word, vocabulary: frozenset[str]) -> tuple[tuple[str, ...], bool]:
    """(features, is a head) of one word; unknown words may be typos of ``vocabulary``."""
    info = word.info
    for lemma in (info.lemma, *sorted(info.lemmas)):
        if lemma in FEATURES:
            found = FEATURES[lemma]
            head = info.pos not in _QUALIFIER_POS or found[0] in SERVICE_TERMS
            return found, head and found[0] not in WEAK
    lemma = info.lemma
    if lemma in vocabulary:
        return (lemma,), info.pos not in _QUALIFIER_POS and lemma not in WEAK
    if not info.known and len(word.low) >= 5 and word.cyrillic:
        near = process.extractOne(
            word.low, vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
        )
        if near is None and lemma != word.low:
            near = process.extractOne(
                lemma, vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
            )
        if near is not None:
            key = str(near[0])
            mapped = FEATURES.get(key, (key,))
            qualifier = key.endswith(("ой", "ий", "ый"))
            return mapped, not qualifier and mapped[0] not in WEAK
    return (lemma,), info.pos not in _QUALIFIER_POS and lemma not in WEAK


def features(ws: Sequence[Word], vocabulary: frozenset[str] = frozenset()) -> list[Feature]:
    """Canonical features of ``ws`` in order (joiners dropped, ``без x`` → ``-x``)."""
    out: list[Feature] = []
    negate = False
    for word in ws:
        parts = [word] if "-" not in word.low else _parts(word)
        for part in parts:
            if part.low in QUALIFIER_NEGATION:
                negate = True
                continue
            plain = part.low in IGNORED or part.low.isdigit() or not part.cyrillic
            if plain and part.low not in FEATURES:
                continue
            found, head = _word_features(part, vocabulary)
            verb = part.info.pos in _VERB_POS
            for key in found:
                if key in IGNORED:
                    continue
                key = f"-{key}" if negate else key
                out.append(Feature(key, head, part.start, part.end, verb))
            negate = False
    return out


def _parts(word: Word) -> list[Word]:
    parts: list[Word] = []
    at = word.start
    for piece in word.low.split("-"):
        parts.append(Word(piece, piece, at, at + len(piece), analyse(piece)))
        at += len(piece) + 1
    return parts


@dataclass(frozen=True, slots=True)
class _Alt:
    """One way the catalog names a service: its title or one of its synonyms."""

    service_id: int
    positive: frozenset[str]
    negative: frozenset[str]
    heads: frozenset[str]
    combo: bool  # "Стрижка + борода": two services in one, named only by nouns


@dataclass(frozen=True, slots=True)
class Mention:
    """Services one part of the message names: one id, or several equal readings."""

    ids: tuple[int, ...]
    text: str  # the client's words for it
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    """What a message says about services."""

    mentions: tuple[Mention, ...] = ()
    unknown: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (words, closest ids)
    categories: tuple[int, ...] = ()  # categories named by a family word ("ногти")
    spans: tuple[tuple[int, int], ...] = ()  # text consumed by services and categories

    @property
    def ids(self) -> tuple[int, ...]:
        """Every id of every mention, in catalog order without repeats."""
        seen: dict[int, None] = {}
        for mention in self.mentions:
            for service_id in mention.ids:
                seen.setdefault(service_id, None)
        return tuple(seen)


_INDEXES: weakref.WeakKeyDictionary[AssistantCatalog, ServiceIndex] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class ServiceIndex:
    """A salon's services as features, for ``match`` (build with ``ServiceIndex.of``)."""

    def __init__(self, catalog: AssistantCatalog) -> None:
        self.catalog = catalog
        self._order = {s.id: k for k, s in enumerate(catalog.services)}
        self.vocabulary = frozenset(FEATURES) | frozenset(
            key for fs in FEATURES.values() for key in fs
        )
        alts: list[_Alt] = []
        for service in catalog.services:
            for k, name in enumerate((service.title, *service.synonyms)):
                alt = self._alt(service, name, synonym=k > 0)
                if alt is not None:
                    alts.append(alt)
        self.vocabulary |= frozenset(k for a in alts for k in a.positive | a.negative)
        self._alts = tuple(alts)
        self._title_words = frozenset(k for a in alts for k in a.positive | a.negative)
        self._verbal_nouns = frozenset(
            k for a in alts for k in a.heads if k.endswith(_VERBAL_NOUN_ENDINGS) and len(k) > 4
        )
        self._families = self._service_families()
        self._category_families = self._categories()

    @classmethod
    def of(cls, catalog: AssistantCatalog) -> ServiceIndex:
        """The index of ``catalog``, built on first use and kept while the catalog lives."""
        with _LOCK:
            index = _INDEXES.get(catalog)
            if index is None:
                index = cls(catalog)
                _INDEXES[catalog] = index
            return index

    def _alt(self, service: Service, name: str, *, synonym: bool) -> _Alt | None:
        """One name of a service as features; every word of a salon's own synonym names
        the service ("налысо"), while a title's qualifiers ("мужская") do not alone."""
        found = features(words(name), frozenset(FEATURES))
        if not found:
            return None
        positive = frozenset(f.key for f in found if not f.key.startswith("-"))
        negative = frozenset(f.key[1:] for f in found if f.key.startswith("-"))
        heads = frozenset(
            f.key for f in found if (f.head or synonym) and f.key in positive and f.key not in WEAK
        )
        return _Alt(service.id, positive, negative, heads, bool(_COMBO.search(name)))

    def _service_families(self) -> dict[int, frozenset[str]]:
        out: dict[int, set[str]] = {}
        for alt in self._alts:
            fams = {FAMILIES[k] for k in alt.positive | alt.negative if k in FAMILIES}
            out.setdefault(alt.service_id, set()).update(fams)
        return {k: frozenset(v) for k, v in out.items()}

    def _categories(self) -> dict[int, frozenset[str]]:
        """Each category's own title features and the families of its services."""
        out: dict[int, frozenset[str]] = {}
        for category in self.catalog.categories:
            own = {f.key for f in features(words(category.title), self.vocabulary)}
            fams = {FAMILIES[k] for k in own if k in FAMILIES}
            for service in self.catalog.in_category(category.id):
                fams |= self._families.get(service.id, frozenset())
            out[category.id] = frozenset(own | {f"family:{f}" for f in fams})
        return out

    def sort(self, ids: Iterable[int]) -> tuple[int, ...]:
        """``ids`` (known ones only) in catalog order, without repeats."""
        return tuple(sorted({i for i in ids if i in self._order}, key=self._order.__getitem__))

    def closest(
        self,
        feature: str,
        text: str,
        context: Iterable[str] = (),
        *,
        near: Iterable[str] = (),
    ) -> tuple[int, ...]:
        """The salon's services nearest to one it does not offer: of the area of the words
        said with it in its own phrase (``near``: "тонировка бороды" → the beard's), else of
        its own family ("педикюр" → manicures), else, for a word of no known family, of a
        word said elsewhere in the message ("нарастить ресницы" → brows), else by title
        similarity (at most three)."""
        said, close = list(context), list(near)
        own = FAMILIES.get(feature)
        families = [*(FAMILIES.get(k) or PART_FAMILIES.get(k) for k in close), own]
        if own is None:
            families += [*(FAMILIES.get(k) for k in said), *(PART_FAMILIES.get(k) for k in said)]
        offered = {fam for fams in self._families.values() for fam in fams}
        family = next((f for f in families if f is not None and f in offered), None)
        if family is not None:
            same = [sid for sid, fams in self._families.items() if family in fams]
            if same:
                return self.sort(same)[:6]
        titles = {s.id: s.title.lower() for s in self.catalog.services}
        similar = process.extract(text.lower(), titles, scorer=fuzz.partial_ratio, limit=3)
        return self.sort(int(key) for _, score, key in similar if score >= 60)

    def match(self, ws: Sequence[Word], *, qualifiers_alone: bool = False) -> ServiceMatch:
        """What ``ws`` names (rules: module docstring). ``qualifiers_alone`` lets a bare
        qualifier ("женскую", "без покрытия") pick among services (after "Какой именно?")."""
        found = self._governed(self._derived(features(ws, self.vocabulary)))
        if not found:
            return ServiceMatch()
        positive = {f.key for f in found if not f.key.startswith("-")}
        nouns = {f.key for f in found if not f.key.startswith("-") and not f.verb}
        negative = {f.key[1:] for f in found if f.key.startswith("-")}
        best: dict[int, frozenset[str]] = {}
        for alt in self._alts:
            if alt.negative & positive or alt.positive & negative:
                continue
            said = nouns if alt.combo else positive
            matched = (alt.positive & said) | {f"-{k}" for k in alt.negative & negative}
            if not matched:
                continue
            if not (alt.heads & positive) and not qualifiers_alone:
                continue
            if len(matched) > len(best.get(alt.service_id, ())):
                best[alt.service_id] = frozenset(matched)
        # Conflicting services are out even when another of their names matched.
        for alt in self._alts:
            conflict = bool(alt.negative & positive or alt.positive & negative)
            matched_here = alt.service_id in best and bool(alt.positive & best[alt.service_id])
            if conflict and (matched_here or (alt.service_id in best and not alt.positive)):
                del best[alt.service_id]
        kept = {sid: m for sid, m in best.items() if not any(m < other for other in best.values())}
        groups: dict[frozenset[str], list[int]] = {}
        for sid, matched in kept.items():
            groups.setdefault(matched, []).append(sid)
        used = set().union(*kept.values()) if kept else set()
        mentions = []
        spans: list[tuple[int, int]] = []
        unknown: list[tuple[str, tuple[int, ...]]] = []
        for matched, ids in groups.items():
            mine = [f for f in found if f.key in matched]
            start, end = min(f.start for f in mine), max(f.end for f in mine)
            spans.extend((f.start, f.end) for f in mine)
            kind = self._unknown_kind(ws, mine)
            if kind is not None:  # "тайский массаж": no massage of the salon is Thai
                words_said = sorted([*mine, kind], key=lambda f: f.start)
                unknown.append((_text_of(ws, words_said), self.sort(ids)[:6]))
                spans.append((kind.start, kind.end))
                continue
            mentions.append(Mention(self.sort(ids), _text_of(ws, mine), start, end))
        mentions.sort(key=lambda m: m.start)
        offered = frozenset(k for alt in self._alts for k in alt.positive)
        for f in found:
            if f.key in SERVICE_TERMS and f.key not in used and f.head and f.key not in offered:
                start, end = _phrase(ws, f)
                inside = [g for g in found if g is not f and start <= g.start < end]
                # "тонировку бороды": the beard's services are the closest, not a mention
                absorbed = [m for m in mentions if start <= m.start and m.end <= end]
                mentions = [m for m in mentions if m not in absorbed]
                said_with = [g.key for g in found if g is not f]
                near = self.closest(f.key, f.key, said_with, near=[g.key for g in inside])
                closest = self.sort([i for m in absorbed for i in m.ids] + list(near))[:6]
                unknown.append((_text_between(ws, start, end), closest))
                spans.append((start, end))
        categories = self._named_categories(found, used)
        for f in found:
            if f.key not in used and any(
                f.key in own or f"family:{FAMILIES.get(f.key)}" in own
                for own in (self._category_families[c] for c in categories)
            ):
                spans.append((f.start, f.end))
        return ServiceMatch(tuple(mentions), tuple(unknown), categories, tuple(spans))

    def _derived(self, found: list[Feature]) -> list[Feature]:
        """A verb no title names, read as the title noun made from it ("снять" → снятие,
        "осветлить" → осветление, "почистить" → чистка) when the catalog has exactly one."""
        out: list[Feature] = []
        for f in found:
            if f.verb and f.key not in self._title_words:
                nouns = {n for n in self._verbal_nouns if _made_from(n, f.key)}
                if len(nouns) == 1:
                    f = Feature(nouns.pop(), True, f.start, f.end, verb=True)
            out.append(f)
        return out

    def _unknown_kind(self, ws: Sequence[Word], mine: Sequence[Feature]) -> Feature | None:
        """An adjective said right by a service's noun that no service of the salon has and
        that names a kind ("тайский" массаж, "японский" маникюр), or None."""
        heads = [f for f in mine if f.head and not f.verb]
        if not heads:
            return None
        at = {w.start: k for k, w in enumerate(ws)}
        for head in heads:
            k = at.get(head.start)
            if k is None:
                continue
            for j in (k - 1, k + 1):
                if not 0 <= j < len(ws):
                    continue
                word = ws[j]
                info = word.info
                plain = info.grammemes & {"Apro", "Anum", "Supr"} or "-" in word.low
                if info.pos != "ADJF" or plain or not word.cyrillic:
                    continue
                lemma = info.lemma
                known = lemma in self._title_words or lemma in FEATURES
                if known or lemma in PLAIN_ADJECTIVES or any(f.start == word.start for f in mine):
                    continue
                return Feature(lemma, False, word.start, word.end)
        return None

    def _governed(self, found: list[Feature]) -> list[Feature]:
        """Drop a verb's feature when it only acts on the next one: "подстричь бороду" is
        the beard, unless the salon has a service named by both ("Стрижка бороды")."""
        out: list[Feature] = []
        for k, f in enumerate(found):
            nxt = found[k + 1] if k + 1 < len(found) else None
            if f.verb and nxt is not None and not nxt.verb and nxt.head and nxt.start > f.end:
                both = any(
                    not a.combo and f.key in a.positive and nxt.key in a.positive
                    for a in self._alts
                )
                if not both and any(nxt.key in a.positive for a in self._alts):
                    continue
            out.append(f)
        return out

    def _named_categories(self, found: list[Feature], used: set[str]) -> tuple[int, ...]:
        """Categories a word names that picked no service: its title word ("брови") or a
        family word ("ногти" → the nail category)."""
        out: list[int] = []
        for f in found:
            if f.key in used or f.key.startswith("-"):
                continue
            family = FAMILIES.get(f.key)
            by_family = family is not None and f.key not in SERVICE_TERMS
            for cid, own in self._category_families.items():
                named = (f.key in own and f.head) or (by_family and f"family:{family}" in own)
                if named and cid not in out:
                    out.append(cid)
        return tuple(out)


def _made_from(noun: str, verb: str) -> bool:
    """Whether ``noun`` is the action noun of ``verb`` by its stem: снять → снятие, удалить →
    удаление, осветлить → осветление, чистить → чистка (a stem of three letters or more)."""
    stem = verb.removesuffix("ся").removesuffix("сь")
    for ending in ("ть", "ти", "чь"):
        if stem.endswith(ending):
            stem = stem[: -len(ending)]
            break
    else:
        return False
    if len(stem) >= 3 and noun.startswith(stem) and len(noun) > len(stem) + 1:
        return True
    short = stem[:-1] if stem[-1:] in _VOWELS else ""
    return len(short) >= 4 and noun.startswith(short) and len(noun) > len(short) + 1


def _phrase(ws: Sequence[Word], f: Feature) -> tuple[int, int]:
    """The span of the phrase around a service word: an adjective before it, and what
    follows it naming what it is for ("для рук") or of ("бороды")."""
    at = next((k for k, w in enumerate(ws) if w.start <= f.start < w.end), None)
    if at is None:
        return f.start, f.end
    first = last = at
    if at > 0 and ws[at - 1].info.pos == "ADJF" and not ws[at - 1].info.grammemes & {"Apro"}:
        first = at - 1
    nxt = ws[at + 1] if at + 1 < len(ws) else None
    if nxt is not None and nxt.low == "для" and at + 2 < len(ws) and ws[at + 2].cyrillic:
        last = at + 2
    elif nxt is not None and nxt.info.pos == "NOUN" and "gent" in nxt.info.cases:
        last = at + 1
    return ws[first].start, ws[last].end


def _text_between(ws: Sequence[Word], start: int, end: int) -> str:
    return " ".join(w.raw for w in ws if start <= w.start and w.end <= end)


def _text_of(ws: Sequence[Word], found: Sequence[Feature]) -> str:
    spans = {(f.start, f.end) for f in found}
    return " ".join(w.raw for w in ws if any(s < w.end and w.start < e for s, e in spans))
