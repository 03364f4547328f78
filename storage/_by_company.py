"""A table keyed ``(company_id, key)`` that finds one company's rows without scanning others.

The in-memory twins of ``conversations``, ``salon_records`` and ``reviews`` are dicts keyed as
their PostgreSQL primary keys; PostgreSQL reads one company's rows through an index led by
``company_id``. :class:`ByCompany` is the same: a dict per company behind the flat mapping
interface the twins already use (``get``, ``[key] = row``, ``items()``), plus :meth:`of`. An
optional ``flag`` keeps the keys of rows it holds for (a partial index, e.g. "has state").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByCompany(MutableMapping[tuple[int, K], V]):
    """``(company_id, key) → row``, grouped by company (and by ``flag``, when given)."""

    def __init__(self, flag: Callable[[V], bool] | None = None) -> None:
        self._rows: dict[int, dict[K, V]] = {}
        self._count = 0
        self._flag = flag
        #: Keys of the rows ``flag`` holds for (empty without a ``flag``).
        self.flagged: dict[tuple[int, K], None] = {}

    def of(self, company_id: int) -> Iterator[V]:
        """One company's rows (in insertion order)."""
        return iter(list(self._rows.get(company_id, {}).values()))

    def __getitem__(self, key: tuple[int, K]) -> V:
        return self._rows[key[0]][key[1]]

    def __setitem__(self, key: tuple[int, K], value: V) -> None:
        rows = self._rows.setdefault(key[0], {})
        if key[1] not in rows:
            self._count += 1
        rows[key[1]] = value
        if self._flag is not None:
            if self._flag(value):
                self.flagged[key] = None
            else:
                self.flagged.pop(key, None)

    def __delitem__(self, key: tuple[int, K]) -> None:
        rows = self._rows[key[0]]
        del rows[key[1]]
        self._count -= 1
        self.flagged.pop(key, None)
        if not rows:
            del self._rows[key[0]]

    def __iter__(self) -> Iterator[tuple[int, K]]:
        for company_id, rows in list(self._rows.items()):
            for key in list(rows):
                yield company_id, key

    def __len__(self) -> int:
        return self._count
