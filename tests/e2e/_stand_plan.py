"""Which stand plays which salons: the dialogue sets' salons spread over a few stands.

A stand (``_stand.py``) is a world of its own: its fake YClients, its partner limit (our client's
shared limiter under its own Redis prefix, the fake's 5/s and 200/min), its server, database
and chats, as separate deployments from separate addresses would be. One stand's salons share
its limit, as a partner's salons do. One salon's dialogues stay together on one stand, played
in file order (each dialogue's changes in YClients are its own, and a later dialogue may rely on
an earlier one's). A run is as long as its longest stand, so the salons are dealt out longest
first, each to the stand with the fewest client turns so far (a salon's YClients requests grow
with its turns, and each turn waits for its reply).

Pure: planned and tested without a server.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._dialogues import Dialogue, DialogueSet, merged_catalog

#: Stands played at once unless told otherwise: about a third of the module's former single
#: stand's time on this corpus, and a few salons still sharing each stand's limit.
DEFAULT_STANDS = 3
#: A stand's bound (:attr:`StandPlan.bound`): setting it up, then this much per client turn of
#: its dialogues (a stand plays about one a second on a quiet machine, its salons at once).
SETUP_BOUND = 180.0
TURN_BOUND = 4.0


@dataclass(frozen=True)
class StandPlan:
    """One stand: its number, the salons it serves (catalog entries) and, per salon, the
    dialogues to play there in file order, with the salon's number among every stand's
    salons (it makes the phones of new clients differ across the run)."""

    number: int
    salons: Mapping[int, Mapping[str, Any]]
    chains: Mapping[int, tuple[Dialogue, ...]]
    salon_numbers: Mapping[int, int]

    @property
    def dialogues(self) -> tuple[Dialogue, ...]:
        return tuple(d for chain in self.chains.values() for d in chain)

    @property
    def turns(self) -> int:
        return sum(turns_of(d) for d in self.dialogues)

    @property
    def catalog(self) -> dict[str, Any]:
        """The fake YClients' catalog for this stand: its salons only."""
        return {"salons": [self.salons[sid] for sid in self.chains]}

    @property
    def bound(self) -> float:
        """Seconds the whole stand may take (set up, play, stop) before it is cut short."""
        return SETUP_BOUND + TURN_BOUND * self.turns

    def describe(self) -> str:
        salons = ", ".join(str(sid) for sid in self.chains)
        return f"stand {self.number} (salons {salons})"


def turns_of(dialogue: Dialogue) -> int:
    """A dialogue's client turns as played: a burst is one, then each turn."""
    return (1 if dialogue.burst else 0) + len(dialogue.turns)


def plan_stands(
    sets: Sequence[DialogueSet],
    selected: Collection[tuple[str, str]] | None = None,
    stands: int = DEFAULT_STANDS,
) -> list[StandPlan]:
    """The sets' dialogues (only ``selected`` keys when given) dealt out over at most
    ``stands`` stands, whole salons each; stands left without a salon are not planned."""
    if stands < 1:
        raise ValueError(f"at least one stand is needed, not {stands}")
    salons = {int(s["id"]): s for s in merged_catalog(sets)["salons"]}  # ids differ across sets
    chains: dict[int, list[Dialogue]] = {}
    for s in sets:
        for d in s.dialogues:
            if selected is None or d.key in selected:
                chains.setdefault(d.salon_id, []).append(d)
    numbers = {sid: n for n, sid in enumerate(sorted(chains))}
    loads = [0] * stands
    dealt: list[list[int]] = [[] for _ in range(stands)]
    for sid in sorted(chains, key=lambda s: (-sum(map(turns_of, chains[s])), s)):
        lightest = loads.index(min(loads))
        dealt[lightest].append(sid)
        loads[lightest] += sum(map(turns_of, chains[sid]))
    plans = [ids for ids in dealt if ids]
    return [
        StandPlan(
            number=n,
            salons={sid: salons[sid] for sid in sorted(ids)},
            chains={sid: tuple(chains[sid]) for sid in sorted(ids)},
            salon_numbers={sid: numbers[sid] for sid in sorted(ids)},
        )
        for n, ids in enumerate(plans, start=1)
    ]
