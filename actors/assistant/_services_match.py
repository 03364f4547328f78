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
from ._lexicon import FAMILIES, FEATURES, IGNORED, QUALIFIER_NEGATION, SERVICE_TERMS, WEAK
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

    def closest(self, feature: str, text: str, context: Iterable[str] = ()) -> tuple[int, ...]:
        """The salon's services nearest to one it does not offer: same family first
        ("педикюр" → manicures; else the family of a word said with it: "нарастить
        ресницы" → brows), else by title similarity (at most three)."""
        family = FAMILIES.get(feature) or next(
            (FAMILIES[k] for k in context if k in FAMILIES), None
        )
        if family is not None:
            same = [sid for sid, fams in self._families.items() if family in fams]
            if same:
                return self.sort(same)[:6]
        titles = {s.id: s.title.lower() for s in self.catalog.services}
        near = process.extract(text.lower(), titles, scorer=fuzz.partial_ratio, limit=3)
        return self.sort(int(key) for _, score, key in near if score >= 60)

    def match(self, ws: Sequence[Word], *, qualifiers_alone: bool = False) -> ServiceMatch:
        """What ``ws`` names (rules: module docstring). ``qualifiers_alone`` lets a bare
        qualifier ("женскую", "без покрытия") pick among services (after "Какой именно?")."""
        found = self._governed(features(ws, self.vocabulary))
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
        for matched, ids in groups.items():
            mine = [f for f in found if f.key in matched]
            start, end = min(f.start for f in mine), max(f.end for f in mine)
            spans.extend((f.start, f.end) for f in mine)
            mentions.append(Mention(self.sort(ids), _text_of(ws, mine), start, end))
        mentions.sort(key=lambda m: m.start)
        unknown: list[tuple[str, tuple[int, ...]]] = []
        offered = frozenset(k for alt in self._alts for k in alt.positive)
        for f in found:
            if f.key in SERVICE_TERMS and f.key not in used and f.head and f.key not in offered:
                said_with = [g.key for g in found if g is not f]
                unknown.append((_text_of(ws, [f]), self.closest(f.key, f.key, said_with)))
                spans.append((f.start, f.end))
        categories = self._named_categories(found, used)
        for f in found:
            if f.key not in used and any(
                f.key in own or f"family:{FAMILIES.get(f.key)}" in own
                for own in (self._category_families[c] for c in categories)
            ):
                spans.append((f.start, f.end))
        return ServiceMatch(tuple(mentions), tuple(unknown), categories, tuple(spans))

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


def _text_of(ws: Sequence[Word], found: Sequence[Feature]) -> str:
    spans = {(f.start, f.end) for f in found}
    return " ".join(w.raw for w in ws if any(s < w.end and w.start < e for s, e in spans))
