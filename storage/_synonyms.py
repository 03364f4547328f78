"""The salon's own words for its services (issue 16): the interface, its checks, and the merge
into a synced catalog.

A salon calls its services by names YClients does not know ("шеллак" for "Маникюр с
покрытием гель-лак"). Those words are ours, not YClients': they live in ``salon_synonyms``,
one row per ``(company, service)``, apart from ``salon_services``, so a catalog sync (which
replaces ``salon_services.synonyms`` with what YClients sends) never erases them.
:func:`merge_synonyms` lays them over a catalog read from storage, which is how the assistant
sees them (``actors.assistant.CatalogSource``).

Storage checks the shape only (at most :data:`MAX_WORDS` words per service, each 1 …
:data:`MAX_WORD` characters of letters, digits, spaces and hyphens, no repeats ignoring
case); the web layer says what is wrong in the salon's language before it gets here. Every
call raises :class:`NotFound` for an unknown company. The twins are
:mod:`storage._memory_synonyms` and :mod:`storage._pg_synonyms`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from . import _validate as v
from ._errors import ValidationError
from ._models import Catalog

__all__ = [
    "MAX_SERVICES_PER_CALL",
    "MAX_WORD",
    "MAX_WORDS",
    "SalonSynonyms",
    "check_changes",
    "check_company",
    "merge_synonyms",
    "word_key",
]

#: Most words a salon may give one service, and the longest word (characters).
MAX_WORDS = 20
MAX_WORD = 60
#: Most services one :meth:`SalonSynonyms.replace` may change.
MAX_SERVICES_PER_CALL = 1000

# Letters of any script, digits, spaces and hyphens; starts and ends with a letter or digit.
_WORD = re.compile(r"[^\W_](?:[\w \-]*[^\W_])?")


def word_key(word: str) -> str:
    """What two words must differ in to both be kept: case and ``ё`` ignored."""
    return word.casefold().replace("ё", "е")


def check_company(company_id: object) -> int:
    """A company id's shape (a positive 32-bit integer)."""
    return v.positive_int("company_id", company_id)


def check_words(service_id: int, words: object) -> tuple[str, ...]:
    """One service's words, in the order given; refuses what ``salon_synonyms`` must not hold."""
    field = f"synonyms[{service_id}]"
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise ValidationError(field, "must be a sequence of words")
    if len(words) > MAX_WORDS:
        raise ValidationError(field, f"must be at most {MAX_WORDS} words")
    seen: set[str] = set()
    kept: list[str] = []
    for word in words:
        text = v.text(field, word, MAX_WORD)
        if not _WORD.fullmatch(text) or "_" in text:
            raise ValidationError(field, "words must be letters, digits, spaces and hyphens")
        key = word_key(text)
        if key in seen:
            raise ValidationError(field, "must not repeat a word")
        seen.add(key)
        kept.append(str.__str__(text))
    return tuple(kept)


def check_changes(changes: object) -> dict[int, tuple[str, ...]]:
    """``{service_id: words}`` for :meth:`SalonSynonyms.replace`, checked."""
    if not isinstance(changes, Mapping):
        raise ValidationError("changes", "must map service ids to words")
    if len(changes) > MAX_SERVICES_PER_CALL:
        raise ValidationError("changes", f"must name at most {MAX_SERVICES_PER_CALL} services")
    checked: dict[int, tuple[str, ...]] = {}
    for service_id, words in changes.items():
        sid = v.positive_int("service_id", service_id)
        checked[sid] = check_words(sid, words)
    return checked


class SalonSynonyms(Protocol):
    """Each salon's own words for its services (``salon_synonyms``)."""

    async def get(self, company_id: int) -> dict[int, tuple[str, ...]]:
        """``{service_id: words}`` of every service the salon gave words to (words in the
        order given). Services with none are absent."""
        ...

    async def replace(
        self, company_id: int, changes: Mapping[int, Sequence[str]]
    ) -> dict[int, tuple[str, ...]]:
        """Set the words of each service in ``changes`` (an empty sequence removes them),
        all or nothing; other services keep theirs. Returns :meth:`get`'s answer after."""
        ...


def merge_synonyms(catalog: Catalog, words: Mapping[int, Sequence[str]]) -> Catalog:
    """``catalog`` with each service's synonyms being the salon's own words first, then the
    ones the sync brought that are not among them (case and ``ё`` ignored)."""
    if not words:
        return catalog
    services = []
    for service in catalog.services:
        own = tuple(words.get(service.service_id, ()))
        if not own:
            services.append(service)
            continue
        seen = {word_key(w) for w in own}
        synced = tuple(w for w in service.synonyms if word_key(w) not in seen)
        services.append(replace(service, synonyms=own + synced))
    return replace(catalog, services=services)
