"""YClientsClient against the fake over real loopback HTTP: headers, unwrapping, errors, retries."""

from __future__ import annotations

import logging
import random
import socket
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.yclients import (
    RetryPolicy,
    SalonDetails,
    SalonService,
    SalonStaff,
    ServiceCategory,
    YClientsAuthError,
    YClientsClient,
    YClientsRateLimited,
    YClientsRejected,
    YClientsUnavailable,
)
from tests.fakes.yclients import (
    ACCEPT,
    LOTOS_ID,
    PARTNER_TOKEN,
    USER_TOKEN,
    FakeYClients,
    running_fake_yclients,
)

from .conftest import SleepRecorder

COMPANY = f"/api/v1/company/{LOTOS_ID}"


# -- headers and unwrapping ------------------------------------------------------------------


async def test_partner_auth_headers(client: YClientsClient, fake: FakeYClients) -> None:
    await client.get_company(LOTOS_ID)
    headers = fake.requests[-1].headers
    assert headers["authorization"] == f"Bearer {PARTNER_TOKEN}"
    assert headers["accept"] == ACCEPT
    assert headers["content-type"] == "application/json"


async def test_partner_and_user_auth_headers() -> None:
    async with (
        running_fake_yclients(rate_limits=None, user_token=USER_TOKEN) as fake,
        YClientsClient(fake.base_url, PARTNER_TOKEN, USER_TOKEN) as client,
    ):
        assert await client.list_records(LOTOS_ID) == []
        assert fake.requests[-1].headers["authorization"] == (
            f"Bearer {PARTNER_TOKEN}, User {USER_TOKEN}"
        )
        async with YClientsClient(fake.base_url, PARTNER_TOKEN) as partner_only:
            with pytest.raises(YClientsAuthError) as info:
                await partner_only.list_records(LOTOS_ID)
        assert info.value.status == 401


async def test_company_is_unwrapped_into_salon_details(client: YClientsClient) -> None:
    salon = await client.get_company(LOTOS_ID)
    assert salon == SalonDetails(
        id=LOTOS_ID,
        title="Салон красоты «Лотос»",
        address="г. Москва, ул. Тверская, д. 12, стр. 1",
        phone="+7 495 123-45-67",
        timezone="Europe/Moscow",
        city="Москва",
        schedule="Ежедневно 10:00–21:00",
    )


async def test_services_and_staff_are_typed(client: YClientsClient) -> None:
    services = await client.get_services(LOTOS_ID)
    haircut = next(s for s in services if s.title == "Стрижка женская")
    assert haircut == SalonService(
        id=1001,
        title="Стрижка женская",
        category_id=10,
        price_min=Decimal("1500"),
        price_max=Decimal("2500"),
        duration_seconds=3600,
        active=True,
    )
    assert "Ламинирование ресниц" not in {s.title for s in services}  # inactive
    manicure_only = await client.get_services(LOTOS_ID, staff_id=2002)
    assert {s.id for s in manicure_only} == {1005, 1006}

    staff = await client.get_staff(LOTOS_ID, service_ids=[1001])
    assert SalonStaff(2001, "Анна Смирнова", "Парикмахер-стилист", True, 4.9) in staff
    assert {s.id for s in staff} == {2001, 2003}


async def test_book_dates_and_times_are_unwrapped(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.state.today = date(2030, 6, 3)  # a Monday: Anna's day off
    days = await client.get_book_dates(
        LOTOS_ID, service_ids=[1001], staff_id=2001, date_to=date(2030, 6, 9)
    )
    assert days == [date(2030, 6, d) for d in range(4, 10)]
    request = fake.requests[-1]
    assert request.query["service_ids[]"] == ["1001"]
    assert request.query["staff_id"] == ["2001"]
    times = await client.get_book_times(LOTOS_ID, 2001, date(2030, 6, 4), service_ids=[1001])
    assert times[0] == {
        "time": "10:00",
        "seance_length": 3600,
        "datetime": "2030-06-04T10:00:00+03:00",
    }
    assert times[-1]["time"] == "20:00"


# -- error mapping ---------------------------------------------------------------------------


async def test_422_carries_yclients_message(client: YClientsClient, fake: FakeYClients) -> None:
    fake.fail(COMPANY, 422, message="Филиал временно недоступен для записи")
    with pytest.raises(YClientsRejected) as info:
        await client.get_company(LOTOS_ID)
    assert info.value.status == 422
    assert info.value.message == "Филиал временно недоступен для записи"
    assert len(fake.requests) == 1  # a 4xx is never retried


async def test_401_is_an_auth_error(fake: FakeYClients) -> None:
    async with YClientsClient(fake.base_url, "wrong-token") as client:
        with pytest.raises(YClientsAuthError) as info:
            await client.get_company(LOTOS_ID)
    assert info.value.status == 401
    assert "токен" in info.value.message
    assert len(fake.requests) == 1


async def test_403_without_code_is_auth_but_with_code_is_rejected(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.fail(COMPANY, 403, message="Нет доступа")
    with pytest.raises(YClientsAuthError):
        await client.get_company(LOTOS_ID)
    fake.fail(COMPANY, 403, message="Клиент в чёрном списке", codes=(434,))
    with pytest.raises(YClientsRejected) as info:
        await client.get_company(LOTOS_ID)
    assert info.value.codes == (434,)


async def test_404_is_rejected(client: YClientsClient) -> None:
    with pytest.raises(YClientsRejected) as info:
        await client.get_company(999999)
    assert info.value.status == 404


async def test_get_retries_5xx_then_succeeds(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.fail(COMPANY, 503, times=2)
    salon = await client.get_company(LOTOS_ID)
    assert salon.id == LOTOS_ID
    assert [r.status for r in fake.requests] == [503, 503, 200]
    assert len(sleeps.calls) == 2
    assert 0.1 <= sleeps.calls[0] <= 0.2  # backoff 0.2 s with jitter in [d/2, d]
    assert 0.2 <= sleeps.calls[1] <= 0.4


async def test_get_gives_up_after_the_attempts(client: YClientsClient, fake: FakeYClients) -> None:
    fake.fail(COMPANY, 500, times=None)
    with pytest.raises(YClientsUnavailable) as info:
        await client.get_company(LOTOS_ID)
    assert not info.value.outcome_unknown  # a read changes nothing
    assert len(fake.requests) == 3


async def test_429_waits_retry_after_then_succeeds(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.fail(COMPANY, 429, retry_after=2)
    assert (await client.get_company(LOTOS_ID)).id == LOTOS_ID
    assert len(sleeps.calls) == 1
    assert 2.0 <= sleeps.calls[0] <= 2.2


async def test_persistent_429_raises_rate_limited(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.fail(COMPANY, 429, retry_after=3, times=None)
    with pytest.raises(YClientsRateLimited) as info:
        await client.get_company(LOTOS_ID)
    assert info.value.retry_after == 3.0
    assert len(fake.requests) == 3


async def test_long_retry_after_is_not_waited(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.fail(COMPANY, 429, retry_after=120)
    with pytest.raises(YClientsRateLimited) as info:
        await client.get_company(LOTOS_ID)
    assert info.value.retry_after == 120.0
    assert sleeps.calls == []
    assert len(fake.requests) == 1


async def test_429_on_a_write_is_retried_because_nothing_happened(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.fail("/marketplace/partner/callback", 429, retry_after=1)
    await client.send_activation_callback(LOTOS_ID, 9001, "sk_test", ["https://a.test/wh"])
    assert [r.status for r in fake.requests] == [429, 201]
    assert fake.installation(LOTOS_ID)["status"] == "active"


async def test_hang_times_out_as_unavailable(fake: FakeYClients) -> None:
    fake.hang(COMPANY, times=None)
    async with YClientsClient(
        fake.base_url, PARTNER_TOKEN, timeout=0.3, retry=RetryPolicy(attempts=1)
    ) as client:
        with trio.fail_after(5):
            with pytest.raises(YClientsUnavailable, match="timed out") as info:
                await client.get_company(LOTOS_ID)
    assert not info.value.outcome_unknown
    fake.release_hung()


async def test_post_that_hangs_has_an_unknown_outcome_and_is_not_retried(
    fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.hang("/api/v1/clients/*", times=None, after_handler=True)
    async with YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=0.3, sleep=sleeps) as client:
        with trio.fail_after(5):
            with pytest.raises(YClientsUnavailable) as info:
                await client.create_client(LOTOS_ID, name="Вера Зайцева", phone="+79990001122")
    assert info.value.outcome_unknown
    assert len(fake.requests_to("/api/v1/clients/*")) == 1
    assert sleeps.calls == []


async def test_connection_closed_on_get_is_retried(
    client: YClientsClient, fake: FakeYClients
) -> None:
    fake.close_connection(COMPANY)
    assert (await client.get_company(LOTOS_ID)).id == LOTOS_ID
    assert [r.outcome for r in fake.requests] == ["closed", "answered"]


async def test_post_is_never_retried_blindly(
    client: YClientsClient, fake: FakeYClients, sleeps: SleepRecorder
) -> None:
    fake.fail("/marketplace/partner/callback", 503, times=None)
    with pytest.raises(YClientsUnavailable) as info:
        await client.send_activation_callback(LOTOS_ID, 9001, "sk_x", ["https://a.test/wh"])
    assert info.value.outcome_unknown
    fake.clear_faults()
    fake.close_connection("/api/v1/clients/*", after_handler=True)
    with pytest.raises(YClientsUnavailable) as closed:
        await client.create_client(LOTOS_ID, name="Вера Зайцева", phone="+79990001122")
    assert closed.value.outcome_unknown
    assert [r.method for r in fake.requests] == ["POST", "POST"]
    assert sleeps.calls == []


async def test_connection_refused_is_unavailable_with_known_outcome() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with YClientsClient(
        f"http://127.0.0.1:{port}", PARTNER_TOKEN, retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(YClientsUnavailable, match="cannot connect") as info:
            await client.create_client(LOTOS_ID, name="Вера", phone="+79990001122")
    assert not info.value.outcome_unknown
    assert info.value.__cause__ is not None  # the httpx error is only the cause


# -- lifecycle and secrecy -------------------------------------------------------------------


async def test_repr_and_logs_hide_tokens(
    fake: FakeYClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with YClientsClient(fake.base_url, PARTNER_TOKEN, USER_TOKEN) as client:
        text = repr(client)
        assert PARTNER_TOKEN not in text and USER_TOKEN not in text
        assert "partner_token=***" in text
        await client.send_activation_callback(
            LOTOS_ID, 9001, "sk_secret_api_key", ["https://a.test/wh/secret-path"]
        )
        fake.fail(COMPANY, 500)
        await client.get_company(LOTOS_ID)
    logged = caplog.text
    assert "POST /marketplace/partner/callback -> 201" in logged
    assert f"GET {COMPANY} -> 500" in logged
    for secret in (PARTNER_TOKEN, USER_TOKEN, "sk_secret_api_key", "secret-path"):
        assert secret not in logged


async def test_aclose_is_idempotent_and_final(fake: FakeYClients) -> None:
    client = YClientsClient(fake.base_url, PARTNER_TOKEN)
    await client.aclose()
    await client.aclose()
    assert "state=closed" in repr(client)
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_company(LOTOS_ID)
    assert fake.requests == []


def test_partner_token_is_required() -> None:
    with pytest.raises(ValueError, match="partner token"):
        YClientsClient("http://x.test", "")


def test_retry_policy_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff_initial=0.5, backoff_max=4.0)
    rng = random.Random(5)
    for retry in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (retry - 1))
        assert ceiling / 2 <= policy.backoff(retry, rng) <= ceiling
        # The numbers of the formula this replaced, draw for draw: d/2 + uniform(0, d/2).
        seed = retry * 31
        old = ceiling / 2 + random.Random(seed).uniform(0, ceiling / 2)
        assert policy.backoff(retry, random.Random(seed)) == pytest.approx(old)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


async def test_date_helpers_pass_iso_dates(client: YClientsClient, fake: FakeYClients) -> None:
    fake.state.today = date(2030, 6, 3)
    await client.list_records(
        LOTOS_ID, start_date=date(2030, 6, 3), end_date=date(2030, 6, 3) + timedelta(days=1)
    )
    assert fake.requests[-1].query["start_date"] == ["2030-06-03"]
    assert fake.requests[-1].query["end_date"] == ["2030-06-04"]


async def test_retry_waits_are_drawn_from_the_injected_generator() -> None:
    """Two clients with the same seed wait the same schedule; the global ``random`` is unused."""
    schedules: list[list[float]] = []
    for _ in range(2):
        sleeps = SleepRecorder()
        async with YClientsClient(
            "http://127.0.0.1:9",
            PARTNER_TOKEN,
            retry=RetryPolicy(attempts=4, backoff_initial=0.5, backoff_max=4.0),
            sleep=sleeps,
            rng=random.Random(11),
        ) as client:
            random.seed(len(schedules))  # a different global state each round changes nothing
            with pytest.raises(YClientsUnavailable):
                await client.get_company(LOTOS_ID)
        schedules.append(sleeps.calls)
    assert len(schedules[0]) == 3 and schedules[0] == schedules[1]
    replica = random.Random(11)
    policy = RetryPolicy(attempts=4, backoff_initial=0.5, backoff_max=4.0)
    assert schedules[0] == [policy.backoff(n, replica) for n in (1, 2, 3)]


# -- the salon's catalog (company services and categories) -----------------------------------


async def test_company_services_carry_masters_and_inactive_ones(
    client: YClientsClient, fake: FakeYClients
) -> None:
    services = {s.id: s for s in await client.get_company_services(LOTOS_ID)}
    assert services[1001] == SalonService(
        id=1001,
        title="Стрижка женская",
        category_id=10,
        price_min=Decimal("1500"),
        price_max=Decimal("2500"),
        duration_seconds=3600,
        active=True,
        comment="",
        staff_ids=(2001, 2003),
    )
    assert not services[1007].active  # listed, unlike in book_services
    nails = await client.get_company_services(LOTOS_ID, category_id=11)
    assert [s.id for s in nails] == [1005, 1006]
    assert fake.requests[-1].query["category_id"] == ["11"]


async def test_service_categories_are_typed(client: YClientsClient) -> None:
    categories = await client.get_service_categories(LOTOS_ID)
    assert [(c.id, c.title, c.staff_ids) for c in categories] == [
        (10, "Парикмахерские услуги", (2001, 2003)),
        (11, "Ногтевой сервис", (2002,)),
        (12, "Брови и ресницы", ()),
    ]
    assert all(isinstance(c, ServiceCategory) and c.weight is not None for c in categories)


async def test_catalog_description_and_synonyms_reach_the_service() -> None:
    example = Path(__file__).parents[2] / "fakes" / "yclients" / "catalog.example.json"
    async with (
        running_fake_yclients(catalog=example, rate_limits=None) as fake,
        YClientsClient(fake.base_url, PARTNER_TOKEN) as client,
    ):
        services = {s.id: s for s in await client.get_company_services(555100)}
    assert services[6103].comment.startswith("Окрашивание отросших корней")
    assert services[6103].duration_seconds == 90 * 60
    assert services[6105].synonyms == ("шеллак", "гелевое покрытие")
    assert services[6101].staff_ids == (6201, 6202, 6204)


def test_service_parsing_is_lenient() -> None:
    service = SalonService.from_api(
        {
            "id": "7",
            "title": "Стрижка",
            "staff": [5, {"id": "6", "seance_length": 2700}, {"name": "без id"}, 5],
            "synonyms": ["  стрижечка ", 3, ""],
            "comment": None,
        }
    )
    assert service.staff_ids == (5, 6)
    assert service.duration_seconds == 2700  # the masters' length when the service has none
    assert service.synonyms == ("стрижечка",)
    assert service.comment == ""
    assert SalonService.from_api({"id": 8, "duration": 1800}).duration_seconds == 1800
    assert ServiceCategory.from_api({"id": 3, "title": "Брови"}) == ServiceCategory(3, "Брови")
