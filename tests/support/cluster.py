"""Helpers for cluster tests: node ids that win a given salon by rendezvous hashing, and a
view of :class:`storage.Leases` that counts its calls and can be cut off (a partition) or
killed (a process that died: nothing it says reaches Redis again)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from actors._placement import rendezvous
from storage import Leases, StorageUnavailable


def winning_name(company_id: int, base: str, others: Iterable[str]) -> str:
    """A node id ``{base}-{k}`` that wins ``company_id`` against ``others`` (the first such
    ``k``): tests name their nodes so that a given one owns a given salon."""
    rest = list(others)
    for k in range(10_000):
        name = f"{base}-{k}"
        if rendezvous(company_id, [name, *rest]) == name:
            return name
    raise AssertionError(f"no {base}-k wins {company_id} against {rest}")


class WatchedLeases:
    """:class:`storage.Leases` as one node sees them: every call counted by name; while
    ``cut`` every call fails as an unreachable Redis does."""

    def __init__(self, inner: Leases) -> None:
        self.inner = inner
        self.cut = False
        self.calls: Counter[str] = Counter()

    def _call(self, name: str) -> None:
        if self.cut:
            raise StorageUnavailable("redis", "partitioned (test)")
        self.calls[name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    async def heartbeat(
        self, node: str, address: str, ttl: float, *, renew: bool = False, draining: bool = False
    ) -> dict[str, str]:
        self._call("heartbeat")
        return await self.inner.heartbeat(node, address, ttl, renew=renew, draining=draining)

    async def members(self) -> dict[str, str]:
        self._call("members")
        return await self.inner.members()

    async def leave(self, node: str) -> bool:
        self._call("leave")
        return await self.inner.leave(node)

    async def claim(self, company_id: int, node: str) -> str | None:
        self._call("claim")
        return await self.inner.claim(company_id, node)

    async def claim_many(self, company_ids: Sequence[int], node: str) -> dict[int, str] | None:
        self._call("claim_many")
        return await self.inner.claim_many(company_ids, node)

    async def release(self, company_id: int, node: str) -> bool:
        self._call("release")
        return await self.inner.release(company_id, node)

    async def release_all(self, company_ids: Sequence[int], node: str) -> int:
        self._call("release_all")
        return await self.inner.release_all(company_ids, node)

    async def holder(self, company_id: int) -> str | None:
        self._call("holder")
        return await self.inner.holder(company_id)
