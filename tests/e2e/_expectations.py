"""What a played dialogue left behind, and whether it is what the dialogue's ``expect`` says.

:class:`Played` is plain data (the chat, the salon's records before and after, the
conversation's mode), so :func:`problems` is a pure function, tested on made-up outcomes
without a server. Besides the ``expect`` keys, every dialogue must: get a reply to each client
turn (unless ``reply_optional``), change nothing in YClients it did not ask for, carry our
``api_id`` on every record it created, and never claim a booking, cancellation or move that
YClients does not show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ._dialogues import WEEKDAYS, Dialogue, weekdays

_DIGIT_GAP = re.compile(r"(?<=\d)[\s\u00a0\u2009\u202f]+(?=\d)")
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-3]):[0-5]\d(?!\d)")
#: Claims a reply may make only when YClients shows it; a "не" right before is no claim.
CLAIMS = {
    "booked": re.compile(r"(?<!не )\bзаписал(?:а|и)?\b"),
    "cancelled": re.compile(r"(?<!не )\bотменил(?:а|и)?\b"),
    "moved": re.compile(r"(?<!не )\bперен[её]с(?:ла|ли)?\b"),
}


@dataclass(frozen=True)
class Exchange:
    """One turn and what the assistant sent after it (before the next turn)."""

    said: str
    replies: tuple[str, ...]
    skipped: bool = False
    client_turn: bool = True


@dataclass
class Played:
    """A dialogue as it went: the exchanges, the salon's records (by id) before and after,
    the record keys of the catalog, the salon's zone and "today" there, the mode at the end
    (``None``: no conversation stored), and what went wrong while playing."""

    dialogue: Dialogue
    phone: str
    exchanges: list[Exchange] = field(default_factory=list)
    before: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    after: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    record_keys: Mapping[str, int] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    today: date = field(default_factory=date.today)
    today_at_end: date | None = None
    mode: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def todays(self) -> list[date]:
        """The salon's dates "today" may have meant: the start's, and the end's too when the
        run crossed the salon's midnight (a client's "через неделю" said after midnight counts
        from the new date, one said before from the old)."""
        if self.today_at_end is None or self.today_at_end == self.today:
            return [self.today]
        return [self.today, self.today_at_end]

    @property
    def replies(self) -> list[str]:
        return [r for e in self.exchanges for r in e.replies]

    @property
    def created(self) -> list[Mapping[str, Any]]:
        return [r for rid, r in self.after.items() if rid not in self.before]

    @property
    def deleted(self) -> list[int]:
        return [
            rid
            for rid, r in self.after.items()
            if r["deleted"] and rid in self.before and not self.before[rid]["deleted"]
        ]

    @property
    def moved(self) -> list[int]:
        return [
            rid
            for rid, r in self.after.items()
            if rid in self.before
            and not r["deleted"]
            and (r["datetime"], r["staff_id"])
            != (self.before[rid]["datetime"], self.before[rid]["staff_id"])
        ]

    def transcript(self) -> str:
        lines = [
            f"dialogue {self.dialogue.name!r} (salon {self.dialogue.salon_id}, phone "
            f"{self.phone}, the salon's today {self.today:%a %Y-%m-%d} in {self.zone.key})"
        ]
        for e in self.exchanges:
            mark = "  (skipped: the booking already exists)" if e.skipped else ""
            lines.append(f"  > {e.said}{mark}" if e.client_turn else f"  * {e.said}")
            lines.extend("  < " + r.replace("\n", "\n    ") for r in e.replies)
        for r in self.created:
            lines.append(f"  + created {describe_record(r, self.zone)}")
        for rid in self.deleted:
            lines.append(f"  - deleted {describe_record(self.before[rid], self.zone)}")
        for rid in self.moved:
            was, now = (
                describe_record(self.before[rid], self.zone),
                describe_record(self.after[rid], self.zone),
            )
            lines.append(f"  ~ moved {was} -> {now}")
        lines.append(f"  mode at the end: {self.mode}")
        if self.today_at_end is not None and self.today_at_end != self.today:
            lines.append(
                f"  NOTE: the salon's date changed during the run ({self.today} -> "
                f"{self.today_at_end}); day offsets from either date were accepted"
            )
        return "\n".join(lines)


def _place(record: Mapping[str, Any]) -> tuple[Any, Any]:
    return record["datetime"], record["staff_id"]


def local_time(record: Mapping[str, Any], zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(str(record["datetime"])).astimezone(zone)


def describe_record(record: Mapping[str, Any], zone: ZoneInfo) -> str:
    services = ",".join(str(s["id"]) for s in record["services"])
    client = record.get("client") or {}
    at = local_time(record, zone).strftime("%a %Y-%m-%d %H:%M")
    api_id = record.get("api_id") or "-"
    return (
        f"#{record['id']} [{services}] staff {record['staff_id']} at {at} "
        f"for {client.get('name')!r} api_id={api_id}"
    )


def normalise(text: str) -> str:
    """Case-folded, with the spaces inside numbers dropped ("1 500 ₽" reads "1500 ₽")."""
    return _DIGIT_GAP.sub("", text.casefold())


def nearest_weekday_offset(today: date, weekday: str) -> int:
    """Days from ``today`` to the nearest ``weekday`` after it (1 … 7)."""
    target = WEEKDAYS.index(weekday)
    return (target - today.weekday() - 1) % 7 + 1


# -- the checks -------------------------------------------------------------------------------


def problems(played: Played) -> list[str]:
    """Every way the played dialogue misses its expectations (empty: it passed)."""
    expect = played.dialogue.expect
    found = list(played.errors)
    found += _changes(played, expect)
    found += _replies(played, expect)
    found += _modes(played, expect)
    found += _claims(played)
    return found


def _changes(played: Played, expect: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    created, deleted, moved = played.created, played.deleted, played.moved
    for record in created:
        if not record.get("api_id"):
            found.append(f"record #{record['id']} was created without our api_id")
    wanted = expect.get("created", 1 if "booked" in expect else 0)
    if len(created) != wanted:
        found.append(f"{len(created)} records created, expected {wanted}")
    booked = expect.get("booked")
    if booked is not None and not any(_matches(r, booked, played) == [] for r in created):
        if not created:
            found.append(f"no record created; expected {booked}")
        for record in created:
            misses = "; ".join(_matches(record, booked, played))
            found.append(f"record #{record['id']} is not the booking expected: {misses}")
    keys = played.record_keys
    cancelled = {keys[k] for k in expect.get("cancelled", [])}
    for key in expect.get("cancelled", []):
        if keys[key] not in deleted:
            found.append(f"record {key!r} was not cancelled")
    for rid in deleted:
        if rid not in cancelled:
            found.append(f"record #{rid} was deleted, which the dialogue did not ask for")
    for key in expect.get("kept", []):
        before, after = played.before[keys[key]], played.after[keys[key]]
        if after["deleted"] or after["datetime"] != before["datetime"]:
            found.append(f"record {key!r} was not kept as it was")
    move = expect.get("moved")
    target = keys[move["record"]] if move else None
    if move is not None:
        record = played.after[keys[move["record"]]]
        at = local_time(record, played.zone)
        if record["deleted"]:
            found.append(f"record {move['record']!r} was deleted instead of moved")
        elif not _time_ok(at, move["time"]) or all(
            (at.date() - today).days != move["day"] for today in played.todays
        ):
            found.append(
                f"record {move['record']!r} is at {at:%Y-%m-%d %H:%M}, expected day "
                f"{move['day']} at {move['time']}"
            )
    for rid in moved:
        if rid != target:
            found.append(f"record #{rid} was moved, which the dialogue did not ask for")
    if expect.get("nothing_changed") and (created or deleted or moved):
        found.append("YClients changed although nothing should have")
    return found


def _matches(record: Mapping[str, Any], booked: Mapping[str, Any], played: Played) -> list[str]:
    """What of ``booked`` the record misses (empty: it is the booking), its relative days
    counted from any date the salon's "today" was during the run."""
    tries = [_matches_from(record, booked, played, today) for today in played.todays]
    return next((misses for misses in tries if not misses), tries[0])


def _matches_from(
    record: Mapping[str, Any], booked: Mapping[str, Any], played: Played, today: date
) -> list[str]:
    """What of ``booked`` the record misses with relative days counted from ``today``."""
    misses: list[str] = []
    services = sorted(int(s["id"]) for s in record["services"])
    if "services" in booked and services != sorted(booked["services"]):
        misses.append(f"services {services} != {sorted(booked['services'])}")
    if "services_any" in booked and not (services and set(services) <= set(booked["services_any"])):
        misses.append(f"services {services} not among {booked['services_any']}")
    staff = int(record["staff_id"])
    if "staff" in booked and staff != booked["staff"]:
        misses.append(f"staff {staff} != {booked['staff']}")
    if "staff_any" in booked and staff not in booked["staff_any"]:
        misses.append(f"staff {staff} not among {booked['staff_any']}")
    at = local_time(record, played.zone)
    offset = (at.date() - today).days
    if "day" in booked and offset != booked["day"]:
        misses.append(f"day +{offset} != +{booked['day']}")
    if "day_any" in booked and offset not in booked["day_any"]:
        misses.append(f"day +{offset} not among {booked['day_any']}")
    if "weekday" in booked:
        wanted = [nearest_weekday_offset(today, w) for w in weekdays(booked["weekday"])]
        if offset not in wanted:
            misses.append(f"day +{offset} is not the next {booked['weekday']} (+{wanted})")
    if booked.get("weekend") and not (offset <= 7 and at.weekday() >= 5):
        misses.append(f"day +{offset} ({at:%a}) is not in the coming weekend")
    if "time" in booked and not _time_ok(at, booked["time"]):
        misses.append(f"time {at:%H:%M} is not {booked['time']}")
    if "name" in booked:
        name = str((record.get("client") or {}).get("name", ""))
        if name.strip().casefold() != booked["name"].casefold():
            misses.append(f"client name {name!r} != {booked['name']!r}")
    return misses


def _time_ok(at: datetime, wanted: str | Mapping[str, str]) -> bool:
    clock = at.strftime("%H:%M")
    if isinstance(wanted, str):
        return clock == wanted
    return wanted["from"] <= clock <= wanted["to"]


def _replies(played: Played, expect: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    text = normalise("\n".join(played.replies))
    for needle in expect.get("reply_contains", []):
        if normalise(needle) not in text:
            found.append(f"no reply contains {needle!r}")
    any_of = expect.get("reply_contains_any", [])
    if any_of and not any(normalise(n) in text for n in any_of):
        found.append(f"no reply contains any of {any_of}")
    for needle in expect.get("reply_not_contains", []):
        if normalise(needle) in text:
            found.append(f"a reply contains {needle!r}")
    if expect.get("has_time") and not _TIME.search(text):
        found.append("no reply shows a time (HH:MM)")
    client_turns = [e for e in played.exchanges if e.client_turn and not e.skipped]
    if expect.get("silent") and client_turns and client_turns[-1].replies:
        found.append(f"the last turn should get no reply, got {list(client_turns[-1].replies)}")
    if expect.get("burst_answered_once") and played.dialogue.burst:
        first = played.exchanges[0].replies if played.exchanges else ()
        if len(first) != 1:
            found.append(f"the burst got {len(first)} replies, expected exactly one")
    return found


def _modes(played: Played, expect: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key, mode in (("handoff", "handoff"), ("opted_out", "opted_out")):
        if key in expect and (played.mode == mode) != bool(expect[key]):
            want = "" if expect[key] else "not "
            found.append(f"the conversation's mode is {played.mode!r}, expected {want}{mode!r}")
    return found


def _claims(played: Played) -> list[str]:
    happened = {
        "booked": bool(played.created),
        "cancelled": bool(played.deleted),
        "moved": bool(played.moved),
    }
    found: list[str] = []
    for reply in played.replies:
        for what, claim in CLAIMS.items():
            if not happened[what] and claim.search(reply.casefold()):
                found.append(f"a reply claims {what} but YClients shows none: {reply!r}")
    return found
