"""Booking through the client against the fake: at most once per api_id, whatever is lost."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import trio

from actors.yclients import (
    Appointment,
    Attendance,
    BookedRecord,
    RetryPolicy,
    YClientsAuthError,
    YClientsClient,
    YClientsRejected,
    YClientsUnavailable,
)
from tests.fakes.yclients import LOTOS_ID, PARTNER_TOKEN, FakeYClients

from .conftest import SleepRecorder

MSK = ZoneInfo("Europe/Moscow")
DAY = date(2030, 6, 4)  # a Tuesday
BOOK = f"/api/v1/book_record/{LOTOS_ID}"
RECORDS = f"/api/v1/records/{LOTOS_ID}"


@pytest.fixture
def fake(fake: FakeYClients) -> FakeYClients:
    """The shared fake, with "today" fixed so that the booked days are in the future."""
    fake.state.today = date(2030, 6, 3)
    return fake


def haircut(hour: int = 12, staff_id: int = 2001) -> Appointment:
    return Appointment(
        services=(1001,), staff_id=staff_id, datetime=datetime(2030, 6, 4, hour, tzinfo=MSK)
    )


async def book(client: YClientsClient, api_id: str, hour: int = 12) -> list[BookedRecord]:
    return await client.book_record(
        LOTOS_ID,
        phone="+7 (916) 555-44-33",
        fullname="Ксения Белова",
        appointments=[haircut(hour)],
        api_id=api_id,
        comment="Записано через WhatsApp",
    )


def records_with(fake: FakeYClients, api_id: str) -> list[dict[str, object]]:
    return [r for r in fake.all_records(LOTOS_ID) if r["api_id"] == api_id]


async def test_booking_happy_path(client: YClientsClient, fake: FakeYClients) -> None:
    times = await client.get_book_times(LOTOS_ID, 2001, DAY, service_ids=[1001])
    slot = Appointment(services=(1001,), staff_id=2001, datetime=times[4]["datetime"])
    await client.book_check(LOTOS_ID, [slot])
    booked = await client.book_record(
        LOTOS_ID, phone="79165554433", fullname="Ксения Белова", appointments=[slot], api_id="b-1"
    )
    assert len(booked) == 1
    assert booked[0].appointment_id == 1 and not booked[0].recovered
    assert booked[0].record_hash
    record = await client.get_record(LOTOS_ID, booked[0].record_id)
    assert record["api_id"] == "b-1"
    assert record["datetime"] == "2030-06-04T12:00:00+03:00"
    assert record["client"]["name"] == "Ксения Белова"
    body = fake.requests_to(BOOK)[0].json
    assert body["api_id"] == "b-1"
    assert body["appointments"] == [
        {"id": 1, "services": [1001], "staff_id": 2001, "datetime": "2030-06-04T12:00:00+03:00"}
    ]
    times_after = await client.get_book_times(LOTOS_ID, 2001, DAY, service_ids=[1001])
    assert "12:00" not in {t["time"] for t in times_after}


@pytest.mark.parametrize("fault", ["5xx", "close"])
async def test_lost_answer_is_recovered_by_api_id_without_double_booking(
    client: YClientsClient, fake: FakeYClients, fault: str
) -> None:
    if fault == "5xx":
        fake.fail(BOOK, 502, after_handler=True)
    else:
        fake.close_connection(BOOK, after_handler=True)
    booked = await book(client, "b-lost")
    assert len(booked) == 1
    assert booked[0].recovered and booked[0].appointment_id == 1
    assert len(records_with(fake, "b-lost")) == 1
    assert [r.path for r in fake.requests] == [BOOK, RECORDS]  # one POST, then the lookup
    assert booked[0].record_id == records_with(fake, "b-lost")[0]["id"]


async def test_timeout_after_booking_is_recovered(fake: FakeYClients) -> None:
    fake.hang(BOOK, after_handler=True)
    async with YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=0.3) as client:
        with trio.fail_after(5):
            booked = await book(client, "b-timeout")
    assert booked[0].recovered
    assert len(records_with(fake, "b-timeout")) == 1
    assert len(fake.requests_to(BOOK)) == 1
    fake.release_hung()


async def test_failure_before_booking_is_looked_up_then_retried_once(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.fail(BOOK, 503)  # not processed; the client cannot know that
    booked = await book(client, "b-retry")
    assert not booked[0].recovered
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("POST", BOOK, 503),
        ("GET", RECORDS, 200),
        ("POST", BOOK, 201),
    ]
    lookup = fake.requests[1].query
    assert lookup["start_date"] == ["2030-06-04"] and lookup["end_date"] == ["2030-06-04"]
    assert len(records_with(fake, "b-retry")) == 1
    assert len(sleeps.calls) == 1


async def test_lookup_ignores_other_bookings(client: YClientsClient, fake: FakeYClients) -> None:
    await book(client, "someone-else", hour=15)
    fake.fail(BOOK, 500, after_handler=True)
    booked = await book(client, "mine", hour=12)
    assert [b.record_id for b in booked] == [records_with(fake, "mine")[0]["id"]]


async def test_persistent_failure_gives_up_with_unknown_outcome(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.fail(BOOK, 500, times=None)
    with pytest.raises(YClientsUnavailable) as info:
        await book(client, "b-down")
    assert info.value.outcome_unknown
    assert len(fake.requests_to(BOOK)) == 3  # each after a lookup that found nothing
    assert len(fake.requests_to(RECORDS)) == 3
    assert records_with(fake, "b-down") == []


async def test_lookup_failure_stops_without_a_second_post(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.fail(BOOK, 504, after_handler=True)
    fake.fail(RECORDS, 500, times=None)
    with pytest.raises(YClientsUnavailable, match="lookup by api_id failed") as info:
        await book(client, "b-blind")
    assert info.value.outcome_unknown
    assert len(fake.requests_to(BOOK)) == 1
    assert len(records_with(fake, "b-blind")) == 1  # booked, but the client could not tell
    fake.clear_faults()
    found = await client.find_records_by_api_id(LOTOS_ID, "b-blind", start_date=DAY, end_date=DAY)
    assert [r["api_id"] for r in found] == ["b-blind"]


async def test_connect_failure_retries_without_lookup(sleeps: SleepRecorder) -> None:
    """A refused connection proves nothing was sent: retry at once, no lookup by api_id."""
    async with YClientsClient(
        "http://127.0.0.1:9", PARTNER_TOKEN, retry=RetryPolicy(attempts=2), sleep=sleeps
    ) as client:
        with pytest.raises(YClientsUnavailable, match="not confirmed after 2") as info:
            await book(client, "b-refused")
    assert not info.value.outcome_unknown  # a lookup would have failed with "lookup ... failed"
    assert len(sleeps.calls) == 1


async def test_slot_taken_is_rejected_with_code_433(
    client: YClientsClient, fake: FakeYClients
) -> None:
    await book(client, "first")
    with pytest.raises(YClientsRejected) as info:
        await book(client, "second")
    assert info.value.status == 422 and info.value.codes == (433,)
    assert "Анна Смирнова" in info.value.message
    with pytest.raises(YClientsRejected) as check:
        await client.book_check(LOTOS_ID, [haircut(12)])
    assert check.value.codes == (433,)
    assert len(fake.requests_to(BOOK)) == 2


@pytest.mark.parametrize(
    ("phone", "fullname", "status", "code"),
    [
        ("12345", "Ксения", 422, 431),
        ("+79165554433", "  ", 422, 435),
        ("+79000000000", "Нарушитель", 403, 434),
    ],
)
async def test_booking_refusals_keep_status_and_code(
    client: YClientsClient,
    fake: FakeYClients,
    phone: str,
    fullname: str,
    status: int,
    code: int,
) -> None:
    fake.blacklist("+7 900 000-00-00")
    with pytest.raises(YClientsRejected) as info:
        await client.book_record(
            LOTOS_ID, phone=phone, fullname=fullname, appointments=[haircut()], api_id="x"
        )
    assert (info.value.status, info.value.codes) == (status, (code,))
    assert len(fake.requests) == 1  # a refusal is not retried, and 403+434 is not an auth error


async def test_book_check_reports_overlap_and_gone_service(client: YClientsClient) -> None:
    with pytest.raises(YClientsRejected) as overlap:
        await client.book_check(
            LOTOS_ID, [haircut(12), Appointment((1004,), 2001, haircut(12).datetime, id=2)]
        )
    assert overlap.value.codes == (437,)
    with pytest.raises(YClientsRejected) as gone:
        await client.book_check(LOTOS_ID, [Appointment((1007,), 2001, haircut().datetime)])
    assert gone.value.codes == (438,)


async def test_list_records_filters_other_clients_on_our_side(
    client: YClientsClient, fake: FakeYClients
) -> None:
    mine = await book(client, "mine", hour=11)
    await client.book_record(
        LOTOS_ID,
        phone="+79031112233",
        fullname="Ирина Соколова",
        appointments=[haircut(14)],
        api_id="hers",
    )
    my_client_id = (await client.get_record(LOTOS_ID, mine[0].record_id))["client"]["id"]
    fake.leak_other_clients = True  # the list endpoint ignores client_id, as seen in the wild
    listed = await client.list_records(LOTOS_ID, client_id=my_client_id)
    assert [r["api_id"] for r in listed] == ["mine"]
    assert fake.requests[-1].query["client_id"] == [str(my_client_id)]
    assert len(await client.list_records(LOTOS_ID)) == 2


async def test_delete_record(client: YClientsClient, fake: FakeYClients) -> None:
    booked = await book(client, "to-cancel")
    await client.delete_record(LOTOS_ID, booked[0].record_id)
    assert (await client.get_record(LOTOS_ID, booked[0].record_id))["deleted"] is True
    assert await client.list_records(LOTOS_ID) == []
    with pytest.raises(YClientsRejected) as info:
        await client.delete_record(LOTOS_ID, booked[0].record_id)
    assert info.value.status == 404


async def test_search_and_create_clients(client: YClientsClient, fake: FakeYClients) -> None:
    found = await client.search_clients(LOTOS_ID, "Петрова")
    assert [c["name"] for c in found] == ["Мария Петрова"]
    assert fake.requests[-1].json == {
        "filters": [{"type": "quick_search", "state": {"value": "Петрова"}}],
        "page": 1,
        "page_size": 50,
    }
    created = await client.create_client(LOTOS_ID, name="Вера Зайцева", phone="+7 999 000-11-22")
    assert created["phone"] == "79990001122"
    assert [c["id"] for c in await client.search_clients(LOTOS_ID, "0001122")] == [created["id"]]
    with pytest.raises(YClientsRejected, match="уже существует"):
        await client.create_client(LOTOS_ID, name="Вера", phone="89990001122")


async def test_search_is_a_read_and_is_retried(client: YClientsClient, fake: FakeYClients) -> None:
    fake.fail(f"/api/v1/company/{LOTOS_ID}/clients/search", 503)
    assert len(await client.search_clients(LOTOS_ID, "Ирина")) == 1
    assert [r.status for r in fake.requests] == [503, 200]


async def test_uninstalled_salon_refuses_the_booking_api(
    client: YClientsClient, fake: FakeYClients
) -> None:
    await client.uninstall(LOTOS_ID, 9001)
    with pytest.raises(YClientsAuthError) as info:
        await client.get_company(LOTOS_ID)
    assert info.value.status == 403


def test_appointment_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Appointment((1001,), 2001, datetime(2030, 6, 4, 12))


async def test_book_record_validates_its_arguments(client: YClientsClient) -> None:
    with pytest.raises(ValueError, match="api_id"):
        await client.book_record(
            LOTOS_ID, phone="7", fullname="x", appointments=[haircut()], api_id=""
        )
    with pytest.raises(ValueError, match="appointment"):
        await client.book_record(LOTOS_ID, phone="7", fullname="x", appointments=[], api_id="a")


# -- moving a visit and marking attendance ---------------------------------------------------


async def test_move_record_keeps_the_id_and_frees_the_old_time(
    client: YClientsClient, fake: FakeYClients
) -> None:
    booked = await book(client, "m-1", hour=12)
    record_id = booked[0].record_id
    moved = await client.move_record(
        LOTOS_ID, record_id, datetime(2030, 6, 4, 15, tzinfo=MSK), comment="перенос из WhatsApp"
    )
    assert moved["id"] == record_id
    assert moved["datetime"] == "2030-06-04T15:00:00+03:00"
    put = fake.requests_to(f"/api/v1/book_record/{LOTOS_ID}/{record_id}", method="PUT")
    assert [r.json for r in put] == [
        {"datetime": "2030-06-04T15:00:00+03:00", "comment": "перенос из WhatsApp"}
    ]
    assert [r["id"] for r in fake.live_records(LOTOS_ID)] == [record_id]
    times = {
        t["time"] for t in await client.get_book_times(LOTOS_ID, 2001, DAY, service_ids=[1001])
    }
    assert "12:00" in times and "15:00" not in times


async def test_move_onto_a_taken_time_is_433_and_nothing_moves(
    client: YClientsClient, fake: FakeYClients
) -> None:
    first = (await book(client, "m-2", hour=12))[0].record_id
    await book(client, "m-3", hour=15)
    with pytest.raises(YClientsRejected) as info:
        await client.move_record(LOTOS_ID, first, datetime(2030, 6, 4, 15, 30, tzinfo=MSK))
    assert info.value.codes == (433,)
    assert (await client.get_record(LOTOS_ID, first))["datetime"] == "2030-06-04T12:00:00+03:00"


async def test_move_with_a_lost_answer_is_not_repeated(
    client: YClientsClient, fake: FakeYClients
) -> None:
    record_id = (await book(client, "m-4", hour=12))[0].record_id
    path = f"/api/v1/book_record/{LOTOS_ID}/{record_id}"
    fake.fail(path, 502, method="PUT", after_handler=True)
    with pytest.raises(YClientsUnavailable) as info:
        await client.move_record(LOTOS_ID, record_id, datetime(2030, 6, 4, 16, tzinfo=MSK))
    assert info.value.outcome_unknown
    assert len(fake.requests_to(path, method="PUT")) == 1
    # Reading the record tells where it is.
    assert (await client.get_record(LOTOS_ID, record_id))["datetime"].endswith("T16:00:00+03:00")


async def test_move_after_429_is_sent_again(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    record_id = (await book(client, "m-5", hour=12))[0].record_id
    path = f"/api/v1/book_record/{LOTOS_ID}/{record_id}"
    fake.fail(path, 429, retry_after=2, method="PUT")
    moved = await client.move_record(LOTOS_ID, record_id, datetime(2030, 6, 4, 17, tzinfo=MSK))
    assert moved["datetime"] == "2030-06-04T17:00:00+03:00"
    assert [r.status for r in fake.requests_to(path, method="PUT")] == [429, 200]
    assert 2 <= sleeps.calls[-1] <= 2.2


async def test_move_needs_an_aware_time(client: YClientsClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.move_record(LOTOS_ID, 1, datetime(2030, 6, 4, 17))


async def test_visit_attendance_is_set_and_never_cancels(
    client: YClientsClient, fake: FakeYClients
) -> None:
    record_id = (await book(client, "v-1", hour=12))[0].record_id
    record = await client.get_record(LOTOS_ID, record_id)
    answer = await client.set_visit_attendance(
        record["visit_id"], record_id, Attendance.CONFIRMED, comment="подтвердила в WhatsApp"
    )
    assert answer["attendance"] == 2
    sent = fake.requests_to(f"/api/v1/visits/{record['visit_id']}/{record_id}", method="PUT")
    assert [r.json for r in sent] == [{"attendance": 2, "comment": "подтвердила в WhatsApp"}]
    stored = await client.get_record(LOTOS_ID, record_id)
    assert stored["attendance"] == 2 and not stored["deleted"]
    with pytest.raises(YClientsRejected) as info:
        await client.set_visit_attendance(record["visit_id"] + 1, record_id, Attendance.ARRIVED)
    assert info.value.status == 404
    with pytest.raises(ValueError):
        await client.set_visit_attendance(record["visit_id"], record_id, 7)  # type: ignore[arg-type]
