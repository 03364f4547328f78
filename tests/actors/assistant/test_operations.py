"""The assistant's YClients operations against the fake YClients serving the example catalog.

"Now" is fixed (Wednesday 11 March 2026, 09:00 in Moscow, the salon's zone), so the
catalog's relative days are known: Rustam's haircut with Igor is on day 3 (Saturday) at
17:00, Ekaterina does not work on day 2 (Friday), Oleg never on Sundays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
import trio

from actors.assistant._effects import (
    ActionFailed,
    Book,
    Booked,
    BookingPending,
    CancelVisit,
    ClientFound,
    FailureKind,
    FindSlots,
    FindVisits,
    LookupClient,
    MoveVisit,
    SettleBooking,
    SlotsFound,
    VisitCancelled,
    VisitMoved,
    VisitsFound,
)
from actors.assistant._operations import Party, YClientsOperations
from actors.assistant._slot_cache import SlotCache
from actors.yclients import RetryPolicy, YClientsClient
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients

from .example_catalog import EXAMPLE_CATALOG, ROMASHKA, assistant_catalog

MSK = ZoneInfo("Europe/Moscow")
NOW = dt.datetime(2026, 3, 11, 9, 0, tzinfo=MSK)
TODAY = NOW.date()
RUSTAM = "79171000001"
NEWCOMER = "79990001122"
HAIRCUT, WOMENS, NAILS_GEL = 6101, 6102, 6105
IGOR, KATYA, ALINA, OLEG = 6201, 6202, 6203, 6204


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def at(offset: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(day(offset), dt.time(hh, mm), tzinfo=MSK)


class NoSleep:
    async def __call__(self, seconds: float) -> None:
        await trio.lowlevel.checkpoint()


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    with trio.fail_after(10):
        async with running_fake_yclients(
            rate_limits=None, catalog=EXAMPLE_CATALOG, now=NOW
        ) as server:
            yield server


@pytest.fixture
async def ops(fake: FakeYClients) -> AsyncIterator[YClientsOperations]:
    async with YClientsClient(
        fake.base_url,
        PARTNER_TOKEN,
        timeout=1.0,
        retry=RetryPolicy(attempts=2, backoff_initial=0.01, backoff_max=0.02),
        sleep=NoSleep(),
    ) as client:
        yield YClientsOperations(client, SlotCache(ttl=60.0, clock=trio.current_time))


def party(phone: str = RUSTAM, client_id: int | None = None) -> Party:
    return Party(assistant_catalog(ROMASHKA), phone, client_id)


def times_requests(fake: FakeYClients) -> int:
    return len(fake.requests_to("/api/v1/book_times/*"))


async def test_a_known_client_is_found_by_phone_and_a_new_one_is_not(
    ops: YClientsOperations,
) -> None:
    assert await ops.carry_out(LookupClient(), party(), NOW) == ClientFound("Рустам", 6301)
    assert await ops.carry_out(LookupClient(), party(NEWCOMER), NOW) == ClientFound(None)
    assert ops.calls["lookup"] == 2


async def test_free_times_across_every_master_who_does_the_service(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    request = FindSlots((HAIRCUT,), (day(1),))
    found = await ops.carry_out(request, party(), NOW)
    assert isinstance(found, SlotsFound) and found.nearest == ()
    assert {s.staff_id for s in found.slots} == {IGOR, KATYA, OLEG}
    starts = [s.start for s in found.slots]
    assert starts == sorted(starts)
    assert all(s.start.tzinfo is not None and s.start.date() == day(1) for s in found.slots)
    assert min(starts).time() == dt.time(10) and max(starts).time() <= dt.time(20, 15)
    # the service's real duration was asked for, once per master
    asked = fake.requests_to("/api/v1/book_times/*")
    assert len(asked) == 3
    assert all(r.int_list("service_ids") == [HAIRCUT] for r in asked)
    # the same question within the cache's life costs nothing
    assert await ops.carry_out(request, party(), NOW) == found
    assert times_requests(fake) == 3


async def test_a_window_keeps_only_the_times_inside_it(ops: YClientsOperations) -> None:
    evening = FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,), window=(dt.time(18), dt.time(21)))
    found = await ops.carry_out(evening, party(), NOW)
    assert isinstance(found, SlotsFound) and found.slots
    assert all(dt.time(18) <= s.start.time() < dt.time(21) for s in found.slots)


async def test_a_taken_time_brings_the_nearest_free_days_in_the_same_answer(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """Rustam has Igor at 17:00 on day 3: asking for it gives that day's other times and the
    next days' times (one book_dates call, then the first free day's times)."""
    request = FindSlots((HAIRCUT,), (day(3),), staff_ids=(IGOR,), wanted=dt.time(17))
    found = await ops.carry_out(request, party(), NOW)
    assert isinstance(found, SlotsFound)
    assert found.slots and all(s.start != at(3, 17) for s in found.slots)
    assert found.nearest and all(s.start.date() > day(3) for s in found.nearest)
    assert len(fake.requests_to("/api/v1/book_dates/*")) == 1


async def test_a_master_off_that_day_brings_the_next_day_they_work(
    ops: YClientsOperations,
) -> None:
    request = FindSlots((WOMENS,), (day(2),), staff_ids=(KATYA,))
    found = await ops.carry_out(request, party(), NOW)
    assert isinstance(found, SlotsFound)
    assert found.slots == ()
    assert found.nearest and {s.start.date() for s in found.nearest} == {day(3)}
    assert {s.staff_id for s in found.nearest} == {KATYA}


async def test_days_in_the_past_are_not_asked(ops: YClientsOperations, fake: FakeYClients) -> None:
    found = await ops.carry_out(FindSlots((HAIRCUT,), (day(-1),), staff_ids=(IGOR,)), party(), NOW)
    assert isinstance(found, SlotsFound) and found.slots == ()
    assert all(r.path.rsplit("/", 1)[-1] != day(-1).isoformat() for r in fake.requests)


async def test_booking_creates_one_record_with_our_api_id(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    before = await ops.carry_out(FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,)), party(), NOW)
    assert isinstance(before, SlotsFound) and at(1, 15) in [s.start for s in before.slots]
    book = Book("ai-test-1", (HAIRCUT,), IGOR, at(1, 15), "Тимур")
    booked = await ops.carry_out(book, party(NEWCOMER), NOW)
    assert isinstance(booked, Booked)
    assert (booked.api_id, booked.staff_id, booked.start) == ("ai-test-1", IGOR, at(1, 15))
    [record] = [r for r in fake.live_records(ROMASHKA) if r["api_id"] == "ai-test-1"]
    assert record["id"] == booked.record_id and record["client"]["phone"] == NEWCOMER
    assert dt.datetime.fromisoformat(record["datetime"]) == at(1, 15)
    # our own booking dropped the cached times: 15:00 is not offered again
    after = await ops.carry_out(FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,)), party(), NOW)
    assert isinstance(after, SlotsFound) and at(1, 15) not in [s.start for s in after.slots]
    assert ops.calls["book"] == 2  # book_check, book_record


async def test_a_time_taken_meanwhile_is_refused_with_nearby_times(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    failed = await ops.carry_out(
        Book("ai-test-2", (HAIRCUT,), IGOR, at(3, 17), "Тимур"), party(NEWCOMER), NOW
    )
    assert isinstance(failed, ActionFailed)
    assert (failed.action, failed.kind) == ("book", FailureKind.TAKEN)
    assert failed.alternatives and len(failed.alternatives) <= 6
    assert all(s.start.date() == day(3) and s.start != at(3, 17) for s in failed.alternatives)
    assert fake.requests_to("/api/v1/book_record/*") == []


async def test_a_time_taken_when_any_master_will_do_brings_the_same_time_with_another_first(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """Rustam has Igor at 17:00 on day 3 (Saturday: Ekaterina and Oleg work too)."""
    failed = await ops.carry_out(
        Book("ai-any-1", (HAIRCUT,), IGOR, at(3, 17), "Тимур", any_master=True),
        party(NEWCOMER),
        NOW,
    )
    assert isinstance(failed, ActionFailed) and failed.kind is FailureKind.TAKEN
    same = [s for s in failed.alternatives if s.start == at(3, 17)]
    assert {s.staff_id for s in same} == {KATYA, OLEG}  # both free then: Igor is not
    assert failed.alternatives[: len(same)] == tuple(same)
    rest = failed.alternatives[len(same) :]
    assert rest and len(rest) <= 6
    assert all(s.start.date() == day(3) and s.start != at(3, 17) for s in rest)
    assert [s.start for s in rest] == sorted({s.start for s in rest})  # one per time, in order
    assert fake.requests_to("/api/v1/book_record/*") == []


async def test_a_time_taken_with_the_master_asked_for_brings_only_that_masters_times(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    failed = await ops.carry_out(
        Book("ai-named-1", (HAIRCUT,), IGOR, at(3, 17), "Тимур"), party(NEWCOMER), NOW
    )
    assert isinstance(failed, ActionFailed) and failed.alternatives
    assert {s.staff_id for s in failed.alternatives} == {IGOR}
    assert {r.path.split("/")[-2] for r in fake.requests_to("/api/v1/book_times/*")} == {str(IGOR)}


async def test_clients_asking_the_same_at_once_share_one_request_per_master(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    request = FindSlots((HAIRCUT,), (day(1),))
    found: list[object] = []

    async def ask() -> None:
        found.append(await ops.carry_out(request, party(), NOW))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    assert len(found) == 5 and all(f == found[0] for f in found)
    assert isinstance(found[0], SlotsFound) and found[0].slots
    assert times_requests(fake) == 3  # Igor, Ekaterina, Oleg: once each


async def test_a_failed_shared_request_fails_every_asker_once(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    fake.fail("/api/v1/book_times/*", 503, times=None)
    request = FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,))
    found: list[object] = []

    async def ask() -> None:
        found.append(await ops.carry_out(request, party(), NOW))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(ask)
    assert found == [ActionFailed("slots", FailureKind.UNAVAILABLE)] * 4
    assert times_requests(fake) == 2  # one request, retried once by the client: not four


async def test_a_change_while_a_request_is_on_its_way_is_not_cached(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """A record webhook arriving while book_times is being answered: that answer may predate
    the change, so the next question asks again."""
    request = FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,))
    fake.hang("/api/v1/book_times/*")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ops.carry_out, request, party(), NOW)
        with trio.fail_after(5):
            await fake.wait_until(lambda: bool(fake.requests_to("/api/v1/book_times/*")))
        ops.record_changed(ROMASHKA)
        fake.release_hung()
    await ops.carry_out(request, party(), NOW)
    assert times_requests(fake) == 2


async def test_a_masters_free_days_are_reused_and_a_booking_keeps_them(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """Ekaterina does not work on day 2: the nearest days come from her free days (one
    book_dates for the whole window); after a booking drops the cached times, a question
    about day 2 asks neither book_times for that day nor book_dates again."""
    request = FindSlots((WOMENS,), (day(2),), staff_ids=(KATYA,))
    first = await ops.carry_out(request, party(), NOW)
    assert isinstance(first, SlotsFound) and first.slots == () and first.nearest
    assert len(fake.requests_to("/api/v1/book_dates/*")) == 1
    day2 = f"/api/v1/book_times/*/{KATYA}/{day(2).isoformat()}"
    assert len(fake.requests_to(day2)) == 1
    booked = await ops.carry_out(
        Book("ai-days-1", (WOMENS,), KATYA, first.nearest[0].start, "Лилия"), party(NEWCOMER), NOW
    )
    assert isinstance(booked, Booked)
    again = await ops.carry_out(request, party(), NOW)
    assert isinstance(again, SlotsFound) and again.slots == () and again.nearest
    assert first.nearest[0] not in again.nearest  # the times were asked again
    assert len(fake.requests_to(day2)) == 1
    assert len(fake.requests_to("/api/v1/book_dates/*")) == 1


async def test_a_lost_booking_answer_is_settled_by_api_id(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """book_record hangs after creating the record: the client times out, looks our api_id
    up, and the outcome is Booked — never a second record."""
    fake.hang("/api/v1/book_record/*", method="POST", after_handler=True)
    booked = await ops.carry_out(
        Book("ai-lost-1", (HAIRCUT,), IGOR, at(1, 16), "Тимур"), party(NEWCOMER), NOW
    )
    fake.release_hung()
    assert isinstance(booked, Booked) and booked.start == at(1, 16)
    assert [r["id"] for r in fake.live_records(ROMASHKA) if r["api_id"] == "ai-lost-1"] == [
        booked.record_id
    ]


async def test_yclients_failing_mid_booking_leaves_it_pending_then_settled(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """5xx after the record was made, and the lookups fail too: pending (no claim); once
    YClients answers again, the settle finds the record by api_id."""
    fake.fail("/api/v1/book_record/*", 503, times=None, method="POST", after_handler=True)
    fake.fail("/api/v1/records/*", 503, times=None)
    book = Book("ai-pending-1", (HAIRCUT,), OLEG, at(1, 12), "Тимур")
    assert await ops.carry_out(book, party(NEWCOMER), NOW) == BookingPending("ai-pending-1")
    fake.clear_faults()
    settled = await ops.carry_out(SettleBooking("ai-pending-1", at(1, 12)), party(NEWCOMER), NOW)
    assert isinstance(settled, Booked) and settled.staff_id == OLEG and settled.start == at(1, 12)
    assert sum(r["api_id"] == "ai-pending-1" for r in fake.live_records(ROMASHKA)) >= 1


async def test_a_booking_that_never_reached_yclients_settles_as_not_found(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    fake.fail("/api/v1/book_record/*", 503, times=None, method="POST")
    book = Book("ai-never-1", (HAIRCUT,), OLEG, at(1, 13), "Тимур")
    assert await ops.carry_out(book, party(NEWCOMER), NOW) == ActionFailed(
        "settle", FailureKind.NOT_FOUND
    )
    assert not any(r["api_id"] == "ai-never-1" for r in fake.live_records(ROMASHKA))
    assert await ops.carry_out(SettleBooking("ai-never-1"), party(NEWCOMER), NOW) == (
        ActionFailed("settle", FailureKind.NOT_FOUND)
    )


async def test_queries_yclients_cannot_answer_fail_without_raising(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    fake.fail("/api/v1/book_times/*", 503, times=None)
    failed = await ops.carry_out(FindSlots((HAIRCUT,), (day(1),)), party(), NOW)
    assert failed == ActionFailed("slots", FailureKind.UNAVAILABLE)
    fake.fail("/api/v1/company/*/clients/search", 429, retry_after=1, times=None)
    assert await ops.carry_out(LookupClient(), party(), NOW) == ActionFailed(
        "lookup", FailureKind.UNAVAILABLE
    )


async def test_visits_are_the_clients_own_upcoming_ones(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    fake.leak_other_clients = True  # the list endpoint returns others' records too
    found = await ops.carry_out(FindVisits(), party(), NOW)
    assert isinstance(found, VisitsFound)
    [visit] = found.visits
    assert visit.record_id == fake.record_by_key(ROMASHKA, "rustam-haircut")["id"]
    assert (visit.start, visit.staff_id, visit.service_ids, visit.minutes) == (
        at(3, 17),
        IGOR,
        (HAIRCUT,),
        45,
    )
    assert visit.service_titles == ("Стрижка мужская",)
    assert await ops.carry_out(FindVisits(), party(NEWCOMER), NOW) == VisitsFound(())


async def test_cancel_deletes_the_record_once(ops: YClientsOperations, fake: FakeYClients) -> None:
    record_id = fake.record_by_key(ROMASHKA, "gulnara-nails")["id"]
    assert await ops.carry_out(CancelVisit(record_id), party(), NOW) == VisitCancelled(record_id)
    assert fake.record_by_key(ROMASHKA, "gulnara-nails")["deleted"]
    assert fake.requests_to("/api/v1/visits/*") == []  # never a no-show mark
    assert await ops.carry_out(CancelVisit(record_id), party(), NOW) == ActionFailed(
        "cancel", FailureKind.NOT_FOUND
    )


async def test_move_to_a_free_time(ops: YClientsOperations, fake: FakeYClients) -> None:
    record_id = fake.record_by_key(ROMASHKA, "rustam-haircut")["id"]
    moved = await ops.carry_out(MoveVisit(record_id, IGOR, at(4, 11), (HAIRCUT,)), party(), NOW)
    assert moved == VisitMoved(record_id, IGOR, at(4, 11))
    record = fake.record_by_key(ROMASHKA, "rustam-haircut")
    assert dt.datetime.fromisoformat(record["datetime"]) == at(4, 11)
    assert len(fake.requests_to("/api/v1/book_record/*", method="PUT")) == 1


async def test_move_within_its_own_time_is_left_to_yclients(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    """17:00 → 17:30 overlaps the visit itself, which hides 17:30 from book_times."""
    record_id = fake.record_by_key(ROMASHKA, "rustam-haircut")["id"]
    moved = await ops.carry_out(MoveVisit(record_id, IGOR, at(3, 17, 30), (HAIRCUT,)), party(), NOW)
    assert moved == VisitMoved(record_id, IGOR, at(3, 17, 30))


async def test_move_to_a_taken_time_moves_nothing(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    ours = await ops.carry_out(
        Book("ai-block-1", (HAIRCUT,), IGOR, at(4, 12), "Тимур"), party(NEWCOMER), NOW
    )
    assert isinstance(ours, Booked)
    record_id = fake.record_by_key(ROMASHKA, "rustam-haircut")["id"]
    failed = await ops.carry_out(MoveVisit(record_id, IGOR, at(4, 12), (HAIRCUT,)), party(), NOW)
    assert isinstance(failed, ActionFailed) and failed.kind is FailureKind.TAKEN
    assert failed.alternatives and at(4, 12) not in [s.start for s in failed.alternatives]
    assert fake.requests_to("/api/v1/book_record/*", method="PUT") == []
    record = fake.record_by_key(ROMASHKA, "rustam-haircut")
    assert dt.datetime.fromisoformat(record["datetime"]) == at(3, 17)


async def test_a_record_webhook_drops_the_salons_cached_times(
    ops: YClientsOperations, fake: FakeYClients
) -> None:
    request = FindSlots((HAIRCUT,), (day(1),), staff_ids=(IGOR,))
    await ops.carry_out(request, party(), NOW)
    await ops.carry_out(request, party(), NOW)
    assert times_requests(fake) == 1
    ops.record_changed(ROMASHKA)
    await ops.carry_out(request, party(), NOW)
    assert times_requests(fake) == 2
