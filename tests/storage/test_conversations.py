"""Contract: the assistant's conversations (optimistic saves, modes, the newest-first list,
expiry of idle state) on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from storage import (
    Conflict,
    Conversation,
    ConversationMode,
    NotFound,
    Storage,
    ValidationError,
)
from tests.support.clock import FakeWallClock

PHONE = "79161234567"
OTHER = "79267654321"


async def _company(storage: Storage, salon: int = 1) -> int:
    return (await storage.companies.create(salon)).company.id


async def test_first_save_creates_and_later_saves_bump_the_version(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    assert await storage.conversations.get(cid, PHONE) is None
    first = await storage.conversations.save(
        cid, PHONE, state={"flow": "booking", "services": [1]}, expected_version=0
    )
    assert first == Conversation(
        company_id=cid,
        phone=PHONE,
        mode=ConversationMode.ASSISTANT,
        state={"flow": "booking", "services": [1]},
        version=1,
        created_at=wall(),
        updated_at=wall(),
    )
    assert await storage.conversations.get(cid, PHONE) == first

    wall.advance(60)
    said = wall() - timedelta(seconds=5)
    second = await storage.conversations.save(
        cid,
        PHONE,
        state={"flow": "confirm"},
        expected_version=1,
        client_name="Мария",
        last_message_at=said,
    )
    assert (second.version, second.state, second.client_name) == (2, {"flow": "confirm"}, "Мария")
    assert (second.last_message_at, second.created_at, second.updated_at) == (
        said,
        first.created_at,
        wall(),
    )
    # None keeps the name and the last message time; the state is replaced, not merged.
    third = await storage.conversations.save(cid, PHONE, state={}, expected_version=2)
    assert (third.version, third.state, third.client_name, third.last_message_at) == (
        3,
        {},
        "Мария",
        said,
    )
    assert await storage.conversations.get(cid, PHONE) == third


async def test_get_many_reads_conversations_of_several_companies_by_key(
    storage: Storage,
) -> None:
    mine = await _company(storage, 1)
    theirs = await _company(storage, 2)
    saved = await storage.conversations.save(mine, PHONE, state={"a": 1}, expected_version=0)
    await storage.conversations.save(theirs, OTHER, state={"b": 2}, expected_version=0)
    handed = await storage.conversations.set_mode(theirs, OTHER, ConversationMode.HANDOFF)
    got = await storage.conversations.get_many(
        [(mine, PHONE), (mine, OTHER), (theirs, OTHER), (theirs, PHONE), (theirs + 100, PHONE)]
    )
    assert got == {(mine, PHONE): saved, (theirs, OTHER): handed}
    assert await storage.conversations.get_many([]) == {}
    with pytest.raises(ValidationError):
        await storage.conversations.get_many([(mine, "+7 916")])


async def test_a_stale_version_is_a_conflict_and_changes_nothing(storage: Storage) -> None:
    cid = await _company(storage)
    with pytest.raises(Conflict):
        await storage.conversations.save(cid, PHONE, state={"a": 1}, expected_version=1)
    assert await storage.conversations.get(cid, PHONE) is None
    await storage.conversations.save(cid, PHONE, state={"a": 1}, expected_version=0)
    with pytest.raises(Conflict):  # someone created it first
        await storage.conversations.save(cid, PHONE, state={"a": 2}, expected_version=0)
    await storage.conversations.save(cid, PHONE, state={"a": 3}, expected_version=1)
    with pytest.raises(Conflict):  # read version 1, but it is at 2 now
        await storage.conversations.save(
            cid, PHONE, state={"a": 4}, expected_version=1, client_name="X"
        )
    stored = await storage.conversations.get(cid, PHONE)
    assert stored is not None
    assert (stored.version, stored.state, stored.client_name) == (2, {"a": 3}, None)


async def test_of_two_racing_writers_exactly_one_wins(storage: Storage) -> None:
    cid = await _company(storage)
    await storage.conversations.save(cid, PHONE, state={"turn": 0}, expected_version=0)
    outcomes: dict[str, str] = {}

    async def write(name: str, expected: int) -> None:
        try:
            await storage.conversations.save(
                cid, PHONE, state={"by": name}, expected_version=expected
            )
            outcomes[name] = "won"
        except Conflict:
            outcomes[name] = "conflict"

    for created in (False, True):
        outcomes.clear()
        phone = OTHER if created else PHONE
        expected = 0 if created else 1
        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                if created:
                    nursery.start_soon(_create, storage, cid, phone, name, outcomes)
                else:
                    nursery.start_soon(write, name, expected)
        assert sorted(outcomes.values()) == ["conflict", "conflict", "won"], outcomes
        stored = await storage.conversations.get(cid, phone)
        winner = next(name for name, result in outcomes.items() if result == "won")
        assert stored is not None
        assert (stored.version, stored.state) == (expected + 1, {"by": winner})


async def _create(
    storage: Storage, cid: int, phone: str, name: str, outcomes: dict[str, str]
) -> None:
    try:
        await storage.conversations.save(cid, phone, state={"by": name}, expected_version=0)
        outcomes[name] = "won"
    except Conflict:
        outcomes[name] = "conflict"


async def test_set_mode_switches_who_answers_and_bumps_the_version(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    until = wall() + timedelta(hours=2)
    # The salon takes over a chat the assistant never saw: the row is made with no state.
    taken = await storage.conversations.set_mode(
        cid, PHONE, ConversationMode.HANDOFF, until=until, needs_person=True
    )
    assert (taken.mode, taken.state, taken.version) == (ConversationMode.HANDOFF, {}, 1)
    assert (taken.mode_until, taken.needs_person, taken.created_at) == (until, True, wall())

    # The assistant read version 1 before the salon gave the chat back: its save conflicts.
    wall.advance(30)
    back = await storage.conversations.set_mode(cid, PHONE, ConversationMode.ASSISTANT)
    assert (back.mode, back.mode_until, back.needs_person, back.version) == (
        ConversationMode.ASSISTANT,
        None,
        True,  # kept: needs_person=None leaves it
        2,
    )
    assert back.updated_at == wall()
    with pytest.raises(Conflict):
        await storage.conversations.save(cid, PHONE, state={"x": 1}, expected_version=1)

    # A save keeps the mode; set_mode keeps the state and the name.
    saved = await storage.conversations.save(
        cid, PHONE, state={"x": 1}, expected_version=2, client_name="Олег"
    )
    assert saved.mode is ConversationMode.ASSISTANT
    out = await storage.conversations.set_mode(
        cid, PHONE, ConversationMode.OPTED_OUT, needs_person=False
    )
    assert (out.mode, out.state, out.client_name, out.needs_person, out.version) == (
        ConversationMode.OPTED_OUT,
        {"x": 1},
        "Олег",
        False,
        4,
    )
    assert await storage.conversations.get(cid, PHONE) == out
    # The mode's value (a plain string) is accepted too.
    again = await storage.conversations.set_mode(cid, PHONE, "handoff")  # type: ignore[arg-type]
    assert again.mode is ConversationMode.HANDOFF


async def _fill(storage: Storage, wall: FakeWallClock, cid: int) -> list[Conversation]:
    """Seven conversations: the last message time orders them, or updated_at when there is
    none; two share a time (the phone breaks the tie)."""
    base = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    rows = [
        ("79000000001", base + timedelta(minutes=1), "Анна Петрова"),
        ("79000000002", base + timedelta(minutes=5), None),
        ("79000000003", base + timedelta(minutes=5), "Борис"),
        ("79000000004", base + timedelta(minutes=3), "анна"),
        ("74950000005", None, None),  # never wrote: ordered by updated_at (the wall clock)
        ("79000000006", base + timedelta(minutes=2), "ОЛЕГ"),
    ]
    made = []
    for phone, at, name in rows:
        made.append(
            await storage.conversations.save(
                cid,
                phone,
                state={"p": phone},
                expected_version=0,
                client_name=name,
                last_message_at=at,
            )
        )
    made.append(
        await storage.conversations.set_mode(
            cid, "79000000007", ConversationMode.HANDOFF, needs_person=True
        )
    )
    return made


async def test_list_is_newest_first_and_pages_by_cursor(
    storage: Storage, wall: FakeWallClock
) -> None:
    cid = await _company(storage)
    other = await _company(storage, 2)
    await storage.conversations.save(other, "79000000001", state={}, expected_version=0)
    wall.now = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # before every message
    await _fill(storage, wall, cid)
    expected = [
        "79000000003",  # 09:05, the higher phone first on a tie
        "79000000002",  # 09:05
        "79000000004",  # 09:03
        "79000000006",  # 09:02
        "79000000001",  # 09:01
        "79000000007",  # 08:00 updated_at, higher phone
        "74950000005",  # 08:00 updated_at
    ]
    everything = await storage.conversations.list(cid)
    assert [c.phone for c in everything] == expected
    assert all(c.company_id == cid for c in everything)

    for size in (1, 2, 3):
        seen: list[str] = []
        cursor: tuple[datetime, str] | None = None
        while True:
            page = await storage.conversations.list(cid, limit=size, before=cursor)
            if not page:
                break
            assert len(page) <= size
            seen.extend(c.phone for c in page)
            last = page[-1]
            stamp = last.last_message_at or last.updated_at
            assert stamp is not None
            cursor = (stamp, last.phone)
        assert seen == expected, size


async def test_list_filters_and_search(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    await _fill(storage, wall, cid)

    async def phones(**filters: object) -> list[str]:
        found = await storage.conversations.list(cid, **filters)  # type: ignore[arg-type]
        return sorted(c.phone for c in found)

    assert await phones(mode=ConversationMode.HANDOFF) == ["79000000007"]
    assert await phones(needs_person=True) == ["79000000007"]
    assert len(await phones(needs_person=False)) == 6
    assert len(await phones(mode=ConversationMode.ASSISTANT)) == 6
    assert await phones(mode=ConversationMode.OPTED_OUT) == []
    # Names: case-insensitive substrings, Cyrillic included.
    assert await phones(search="анна") == ["79000000001", "79000000004"]
    assert await phones(search="АННА П") == ["79000000001"]
    assert await phones(search="олег") == ["79000000006"]
    # Phones: digits, separators ignored.
    assert await phones(search="+7 495") == ["74950000005"]
    assert await phones(search="0000000") == [
        "79000000001",
        "79000000002",
        "79000000003",
        "79000000004",
        "79000000006",
        "79000000007",
    ]
    assert await phones(search="(900) 000-00-03") == ["79000000003"]
    # No wildcards: a percent sign or an underscore is itself.
    assert await phones(search="%") == []
    assert await phones(search="_") == []
    assert len(await phones(search="  ")) == 7  # an empty search is no filter
    assert await phones(search="анна", mode=ConversationMode.HANDOFF) == []


async def test_expire_idle_clears_old_state_only(storage: Storage, wall: FakeWallClock) -> None:
    cid = await _company(storage)
    await storage.conversations.save(
        cid, PHONE, state={"flow": "booking"}, expected_version=0, client_name="Мария"
    )
    await storage.conversations.set_mode(cid, "79000000009", ConversationMode.OPTED_OUT)
    wall.advance(3600)
    await storage.conversations.save(cid, OTHER, state={"flow": "prices"}, expected_version=0)
    wall.advance(60)

    cleared = await storage.conversations.expire_idle(wall() - timedelta(minutes=30))
    assert cleared == 1  # the opted-out row had no state to clear; OTHER is recent
    old = await storage.conversations.get(cid, PHONE)
    assert old is not None
    assert (old.state, old.version, old.client_name, old.mode) == (
        {},
        2,
        "Мария",
        ConversationMode.ASSISTANT,
    )
    recent = await storage.conversations.get(cid, OTHER)
    assert recent is not None and recent.state == {"flow": "prices"}
    assert await storage.conversations.expire_idle(wall() - timedelta(minutes=30)) == 0
    # An actor that read the state before it expired cannot write it back unnoticed.
    with pytest.raises(Conflict):
        await storage.conversations.save(cid, PHONE, state={"flow": "booking"}, expected_version=1)

    for n in range(5):
        await storage.conversations.save(cid, f"7900000010{n}", state={"n": n}, expected_version=0)
    wall.advance(3600)
    assert await storage.conversations.expire_idle(wall(), limit=3) == 3  # of six idle ones
    assert await storage.conversations.expire_idle(wall(), limit=10) == 3
    assert await storage.conversations.expire_idle(wall()) == 0


async def test_unknown_company_and_bad_values(storage: Storage) -> None:
    cid = await _company(storage)
    missing = cid + 100
    with pytest.raises(NotFound):
        await storage.conversations.get(missing, PHONE)
    for expected in (0, 1):
        with pytest.raises(NotFound):
            await storage.conversations.save(missing, PHONE, state={}, expected_version=expected)
    with pytest.raises(NotFound):
        await storage.conversations.set_mode(missing, PHONE, ConversationMode.HANDOFF)
    with pytest.raises(NotFound):
        await storage.conversations.list(missing)

    for phone in ("+79161234567", "7916", "7916123456789012", "8 916 123", "", "79a"):
        with pytest.raises(ValidationError):
            await storage.conversations.get(cid, phone)
        with pytest.raises(ValidationError):
            await storage.conversations.save(cid, phone, state={}, expected_version=0)
    with pytest.raises(ValidationError):
        await storage.conversations.save(cid, PHONE, state={"t": "a\x00"}, expected_version=0)
    with pytest.raises(ValidationError):
        await storage.conversations.save(cid, PHONE, state={}, expected_version=-1)
    with pytest.raises(ValidationError):
        await storage.conversations.save(
            cid, PHONE, state={}, expected_version=0, last_message_at=datetime(2026, 1, 1)
        )
    with pytest.raises(ValidationError):
        await storage.conversations.save(
            cid, PHONE, state={}, expected_version=0, client_name="x" * 256
        )
    with pytest.raises(ValidationError):
        await storage.conversations.set_mode(cid, PHONE, "asleep")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await storage.conversations.list(cid, before=(datetime(2026, 1, 1), PHONE))
    with pytest.raises(ValidationError):
        await storage.conversations.expire_idle(datetime(2026, 1, 1))
    assert await storage.conversations.get(cid, PHONE) is None
    assert await storage.conversations.list(cid) == []
