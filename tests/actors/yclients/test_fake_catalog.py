"""The fake YClients serving a catalog (``--catalog FILE``): salons, free times, moves, visits.

"Now" is fixed (``now=``) so every day and time below is exact: 2030-06-05 is a Wednesday.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio

from tests.fakes.yclients import (
    ACCEPT,
    PARTNER_TOKEN,
    CatalogError,
    FakeYClients,
    load_catalog,
    running_fake_yclients,
)

EXAMPLE = Path(__file__).parents[2] / "fakes" / "yclients" / "catalog.example.json"
SALON = 555100
MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2030, 6, 5, 14, 10, tzinfo=MSK)  # a Wednesday, 14:10 in Kazan (Moscow time)
TODAY = NOW.date()
HEADERS = {"Authorization": f"Bearer {PARTNER_TOKEN}", "Accept": ACCEPT}
API = "/api/v1"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeYClients]:
    with trio.fail_after(10):
        async with running_fake_yclients(catalog=EXAMPLE, now=NOW, rate_limits=None) as server:
            yield server


@pytest.fixture
async def http(fake: FakeYClients) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS) as client:
        yield client


async def data(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await http.get(f"{API}/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def times(
    http: httpx.AsyncClient, staff_id: int, day: date, services: list[int]
) -> list[str]:
    found = await data(
        http, f"book_times/{SALON}/{staff_id}/{day.isoformat()}", **{"service_ids[]": services}
    )
    return [t["time"] for t in found]


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


# -- the salon as the catalog gives it ---------------------------------------------------------


async def test_serves_exactly_the_catalog_salons(
    fake: FakeYClients, http: httpx.AsyncClient
) -> None:
    assert list(fake.salons) == [SALON]
    company = await data(http, f"company/{SALON}")
    assert company["address"] == "г. Казань, ул. Баумана, д. 21"
    assert company["phone"] == "+7 843 200-10-10"
    assert company["timezone"] == "Europe/Moscow"
    assert company["schedule"] == "Ежедневно 10:00–21:00"
    gone = await http.get(f"{API}/company/101001")  # a built-in salon is not served
    assert gone.status_code == 404


async def test_records_resolve_in_the_salon_zone(fake: FakeYClients) -> None:
    haircut = fake.record_by_key(SALON, "rustam-haircut")
    nails = fake.record_by_key(SALON, "gulnara-nails")
    assert haircut["datetime"] == f"{day(3).isoformat()}T17:00:00+03:00"
    assert haircut["client"] == {"id": 6301, "name": "Рустам", "phone": "79171000001", "email": ""}
    assert haircut["staff_id"] == 6201 and haircut["seance_length"] == 45 * 60
    assert nails["datetime"] == f"{day(4).isoformat()}T13:00:00+03:00"
    assert nails["seance_length"] == 90 * 60 and nails["api_id"] == ""
    assert [r["id"] for r in fake.live_records(SALON)] == [haircut["id"], nails["id"]]


def test_relative_days_count_from_the_salon_local_date_just_after_midnight() -> None:
    catalog = example()
    salon = catalog["salons"][0]
    salon["timezone"] = "Asia/Yekaterinburg"  # UTC+5
    moment = datetime(2030, 6, 30, 19, 30, tzinfo=UTC)  # 00:30 on 1 July in Yekaterinburg
    loaded = load_catalog(catalog, now=moment)[SALON]
    haircut = loaded.records[loaded.record_keys["rustam-haircut"]]
    assert haircut["datetime"] == "2030-07-04T17:00:00+05:00"
    assert loaded.company()["timezone"] == "Asia/Yekaterinburg"


async def test_services_carry_description_synonyms_and_masters(http: httpx.AsyncClient) -> None:
    services = {s["id"]: s for s in await data(http, f"company/{SALON}/services")}
    roots = services[6103]
    assert roots["comment"].startswith("Окрашивание отросших корней")
    assert [m["id"] for m in roots["staff"]] == [6202]
    assert roots["duration"] == 90 * 60 and roots["staff"][0]["seance_length"] == 90 * 60
    assert (roots["price_min"], roots["price_max"]) == (2500, 3500)
    assert services[6105]["synonyms"] == ["шеллак", "гелевое покрытие"]
    assert [m["id"] for m in services[6101]["staff"]] == [6201, 6202, 6204]
    nails = await data(http, f"company/{SALON}/services", category_id=62)
    assert [s["id"] for s in nails] == [6104, 6105]
    booking = await data(http, f"book_services/{SALON}")
    assert {c["id"] for c in booking["categories"]} == {61, 62, 63}
    assert next(s for s in booking["services"] if s["id"] == 6105)["synonyms"] == [
        "шеллак",
        "гелевое покрытие",
    ]


async def test_categories_are_served_with_their_masters(http: httpx.AsyncClient) -> None:
    categories = await data(http, f"company/{SALON}/service_categories")
    assert [(c["id"], c["title"], c["staff"]) for c in categories] == [
        (61, "Парикмахерский зал", [6201, 6202, 6204]),
        (62, "Ногтевой сервис", [6203]),
        (63, "Брови", [6203]),
    ]


async def test_masters_are_those_who_do_the_service(http: httpx.AsyncClient) -> None:
    everyone = await data(http, f"book_staff/{SALON}")
    assert [(m["name"], m["specialization"]) for m in everyone][:2] == [
        ("Игорь Смирнов", "Барбер"),
        ("Екатерина Волкова", "Парикмахер-стилист"),
    ]
    assert not {"services", "days_off", "off_dates", "work_minutes"} & set(everyone[0])
    women = await data(http, f"book_staff/{SALON}", **{"service_ids[]": [6102]})
    assert [m["id"] for m in women] == [6202]
    assert await times(http, 6201, day(1), [6102]) == []  # Igor does not cut women's hair


async def test_clients_are_found_by_phone_however_written(http: httpx.AsyncClient) -> None:
    for query in ("+7 917 100-00-01", "89171000001", "79171000001"):
        response = await http.post(
            f"{API}/company/{SALON}/clients/search",
            json={"filters": [{"type": "quick_search", "state": {"value": query}}]},
        )
        assert [c["name"] for c in response.json()["data"]] == ["Рустам"], query


async def test_records_are_filtered_by_client(fake: FakeYClients, http: httpx.AsyncClient) -> None:
    mine = await data(http, f"records/{SALON}", client_id=6302)
    assert [r["id"] for r in mine] == [fake.record_by_key(SALON, "gulnara-nails")["id"]]


# -- free times --------------------------------------------------------------------------------


async def test_master_hours_and_the_service_length_bound_the_grid(http: httpx.AsyncClient) -> None:
    gel = await times(http, 6203, day(1), [6105])  # Alina works 12-20; 90 minutes
    assert gel[0] == "12:00" and gel[-1] == "18:30"
    assert gel == [f"{h}:{m}" for h in range(12, 19) for m in ("00", "30")]
    both = await data(  # two services: their lengths add up (45 + 30)
        http, f"book_times/{SALON}/6203/{day(1).isoformat()}", **{"service_ids[]": [6104, 6106]}
    )
    assert both[-1]["time"] == "18:30" and both[0]["seance_length"] == 75 * 60


async def test_no_time_in_the_past_of_the_salon_day(http: httpx.AsyncClient) -> None:
    today = await times(http, 6201, TODAY, [6101])
    assert today[0] == "14:30"  # now is 14:10
    assert today[-1] == "20:00"  # 45 minutes before closing at 21:00
    assert await times(http, 6201, day(-1), [6101]) == []


async def test_weekday_off_and_day_off(http: httpx.AsyncClient) -> None:
    sunday = day(4)  # 2030-06-09
    assert sunday.weekday() == 6
    assert await times(http, 6204, sunday, [6101]) == []  # Oleg never works on Sundays
    assert await times(http, 6204, day(5), [6101]) != []
    assert await times(http, 6202, day(2), [6102]) == []  # Ekaterina is off in two days
    assert await times(http, 6202, day(3), [6102]) != []
    dates = await data(
        http,
        f"book_dates/{SALON}",
        staff_id=6204,
        date_from=day(1).isoformat(),
        date_to=day(7).isoformat(),
        **{"service_ids[]": [6101]},
    )
    assert sunday.isoformat() not in dates["booking_dates"]
    assert sunday.isoformat() not in dates["working_dates"]
    assert len(dates["booking_dates"]) == 6
    kate = await data(http, f"book_dates/{SALON}", staff_id=6202, **{"service_ids[]": [6102]})
    assert day(2).isoformat() not in kate["booking_dates"]


async def test_an_existing_record_takes_its_span(http: httpx.AsyncClient) -> None:
    igor = await times(http, 6201, day(3), [6101])  # Rustam at 17:00 for 45 minutes
    assert "16:00" in igor and "18:00" in igor
    assert not {"16:30", "17:00", "17:30"} & set(igor)


async def test_the_catalog_step_sets_the_grid() -> None:
    catalog = example()
    catalog["salons"][0]["step"] = 15
    catalog["salons"][0]["open_hour"] = "09:30"
    async with running_fake_yclients(catalog=catalog, now=NOW, rate_limits=None) as fake:
        async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS) as http:
            found = await times(http, 6201, day(1), [6101])
            company = await data(http, f"company/{SALON}")
    assert found[:3] == ["09:30", "09:45", "10:00"]
    assert company["schedule"] == "Ежедневно 9:30–21:00"


# -- moving and attendance ---------------------------------------------------------------------


async def test_move_keeps_the_record_and_frees_the_old_time(
    fake: FakeYClients, http: httpx.AsyncClient
) -> None:
    record = fake.record_by_key(SALON, "gulnara-nails")
    record["last_change_date"] = "2000-01-01T00:00:00+03:00"
    new_time = f"{day(4).isoformat()}T16:00:00+03:00"
    response = await http.put(
        f"{API}/book_record/{SALON}/{record['id']}", json={"datetime": new_time, "comment": "WA"}
    )
    assert response.status_code == 200
    moved = response.json()["data"]
    assert moved["id"] == record["id"] and moved["datetime"] == new_time
    assert fake.record_by_key(SALON, "gulnara-nails")["datetime"] == new_time
    assert moved["last_change_date"] > "2000-01-01T00:00:00+03:00"
    assert moved["comment"] == "WA" and len(fake.live_records(SALON)) == 2
    free = await times(http, 6203, day(4), [6105])
    assert "13:00" in free and "16:00" not in free


async def test_move_onto_its_own_span_is_allowed(
    fake: FakeYClients, http: httpx.AsyncClient
) -> None:
    record = fake.record_by_key(SALON, "gulnara-nails")  # 13:00-14:30
    response = await http.put(
        f"{API}/book_record/{SALON}/{record['id']}",
        json={"datetime": f"{day(4).isoformat()} 13:30:00"},
    )
    assert response.status_code == 200
    assert fake.record_by_key(SALON, "gulnara-nails")["datetime"].endswith("T13:30:00+03:00")


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ("T16:30:00+03:00", "overlaps a visit"),
        ("T19:00:00+03:00", "ends after the master's hours"),
        ("T10:00:00+03:00", "before the master starts"),
    ],
)
async def test_move_onto_a_taken_time_is_433_and_changes_nothing(
    fake: FakeYClients, http: httpx.AsyncClient, when: str, why: str
) -> None:
    nails = fake.record_by_key(SALON, "gulnara-nails")
    # A second visit with Alina on the same day, 16:00-17:30, for the overlap case.
    blocker = copy.deepcopy(nails)
    blocker.update(id=59_000_000, datetime=f"{day(4).isoformat()}T16:00:00+03:00")
    fake.salons[SALON].records[blocker["id"]] = blocker
    response = await http.put(
        f"{API}/book_record/{SALON}/{nails['id']}",
        json={"datetime": f"{day(4).isoformat()}{when}"},
    )
    assert response.status_code == 422, why
    assert [e["code"] for e in response.json()["meta"]["errors"]] == [433]
    assert fake.record_by_key(SALON, "gulnara-nails")["datetime"].endswith("T13:00:00+03:00")


async def test_move_into_the_past_or_of_a_deleted_record_fails(
    fake: FakeYClients, http: httpx.AsyncClient
) -> None:
    record = fake.record_by_key(SALON, "rustam-haircut")
    past = await http.put(
        f"{API}/book_record/{SALON}/{record['id']}",
        json={"datetime": f"{TODAY.isoformat()}T12:00:00+03:00"},
    )
    assert past.status_code == 422 and past.json()["meta"]["errors"][0]["code"] == 433
    assert (await http.delete(f"{API}/record/{SALON}/{record['id']}")).status_code == 204
    gone = await http.put(
        f"{API}/book_record/{SALON}/{record['id']}",
        json={"datetime": f"{day(5).isoformat()}T12:00:00+03:00"},
    )
    assert gone.status_code == 404
    assert fake.record_by_key(SALON, "rustam-haircut")["deleted"]
    assert len(fake.live_records(SALON)) == 1


async def test_visit_attendance_is_set(fake: FakeYClients, http: httpx.AsyncClient) -> None:
    record = fake.record_by_key(SALON, "gulnara-nails")
    path = f"{API}/visits/{record['visit_id']}/{record['id']}"
    response = await http.put(path, json={"attendance": 2, "comment": "подтвердила"})
    assert response.status_code == 200 and response.json()["data"]["attendance"] == 2
    assert fake.record_by_key(SALON, "gulnara-nails")["attendance"] == 2
    assert (await http.put(path, json={"attendance": 5})).status_code == 422
    assert (await http.put(path, json={"attendance": True})).status_code == 422
    wrong = f"{API}/visits/{record['visit_id'] + 1}/{record['id']}"
    assert (await http.put(wrong, json={"attendance": 1})).status_code == 404
    assert fake.record_by_key(SALON, "gulnara-nails")["attendance"] == 2


async def test_a_booking_in_a_catalog_salon_counts_against_free_times(
    fake: FakeYClients, http: httpx.AsyncClient
) -> None:
    slot = f"{day(1).isoformat()}T15:00:00+03:00"
    response = await http.post(
        f"{API}/book_record/{SALON}",
        json={
            "phone": "+79990001122",
            "fullname": "Тимур",
            "api_id": "t-1",
            "appointments": [{"id": 1, "services": [6101], "staff_id": 6201, "datetime": slot}],
        },
    )
    assert response.status_code == 201
    record_id = response.json()["data"][0]["record_id"]
    assert record_id not in {r["id"] for r in fake.all_records(SALON)[:2]}
    assert "15:00" not in await times(http, 6201, day(1), [6101])
    assert fake.live_records(SALON)[0]["api_id"] == "t-1"


# -- bad catalogs and the command line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["services"][0].update(staff=[9999]), "no master [9999]"),
        (lambda s: s["staff"][3].update(days_off=["воскр"]), "not a weekday"),
        (lambda s: s.update(timezone="Mars/Olympus"), "unknown zone"),
        (lambda s: s["records"][0].update(client_id=1), "no client 1"),
        (lambda s: s["clients"][0].update(phone="нет"), "not a phone"),
        (lambda s: s["staff"][2].update(hours=[20, 12]), "ends before it starts"),
        (lambda s: s["records"][1].update(key="rustam-haircut"), "the key appears twice"),
    ],
)
def test_a_bad_catalog_says_where(change: Any, message: str) -> None:
    catalog = example()
    change(catalog["salons"][0])
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(catalog, now=NOW)


def test_a_missing_catalog_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(CatalogError, match="not JSON"):
        load_catalog(tmp_path / "bad.json")


async def test_command_line_serves_the_catalog() -> None:
    command = [sys.executable, "-m", "tests.fakes.yclients", "--catalog", str(EXAMPLE)]
    command += ["--port", "0", "--no-rate-limit"]
    with trio.fail_after(30):
        process = await trio.lowlevel.open_process(
            command, stdout=-1, stderr=-3, cwd=str(Path(__file__).parents[3])
        )
        try:
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "the fake ended before printing its address"
                line += chunk
            match = re.fullmatch(r"fake YClients on (http://127\.0\.0\.1:\d+)\n", line.decode())
            assert match is not None, line
            async with httpx.AsyncClient(base_url=match[1], headers=HEADERS) as http:
                company = await data(http, f"company/{SALON}")
            assert company["title"] == "Салон красоты «Ромашка»"
        finally:
            process.terminate()
            await process.wait()
