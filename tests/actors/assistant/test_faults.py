"""The assistant when YClients fails in the middle of a booking, and when the node stops
between the client's "да" and the reply.

The rule under test: "записала" is said only after YClients returned (or, after a lost
answer, listed) the record with our ``api_id``; an unknown outcome gets "I'll confirm
shortly" (``booking_pending``) and is settled by ``api_id`` later — confirmed when the record
exists, "it did not work" with free times offered when it does not. Exactly one record,
whatever fails.

Most tests run on ``booking_stand`` (the fake YClients in process, trio's mock clock: the
client's timeouts, ``Retry-After`` and the settle delays of 20 s, 60 s ... pass in virtual
time). The node restart runs on PostgreSQL with the fake on loopback and the real clock.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
import trio
from trio.testing import MockClock

from actors import open_node
from actors.assistant import AssistantOptions
from actors.assistant import _templates as t
from actors.assistant._state import ConversationState
from actors.whatsapp import SimulatedWorld, open_gateway
from actors.yclients import RetryPolicy, YClientsClient, sync_company
from tests.fakes.yclients import PARTNER_TOKEN, FakeYClients, running_fake_yclients
from tests.support.databases import open_real_storage

from ..company.test_company_actor import link
from .booking_stand import CLAIM, MSK, Stand, open_stand, stand_settings, to_summary
from .example_catalog import EXAMPLE_CATALOG, ROMASHKA

CLIENT = "79990001122"
ASK = "Мужская стрижка к Игорю послезавтра в 15:00"
BOOK_RECORD = "/api/v1/book_record/*"
BOOK_CHECK = "/api/v1/book_check/*"
RECORDS = "/api/v1/records/*"  # where a booking is looked up by api_id

#: A fault on a path: ``(fake, pattern, method, made)`` arms it; ``made`` says whether the
#: handler runs first (YClients made the record, then the answer was lost).
Arm = Callable[[FakeYClients, str, "str | None", bool], None]


def fail_5xx(fake: FakeYClients, pattern: str, method: str | None, made: bool) -> None:
    fake.fail(pattern, 503, times=None, method=method, after_handler=made)


def hang(fake: FakeYClients, pattern: str, method: str | None, made: bool) -> None:
    fake.hang(pattern, times=None, method=method, after_handler=made)


def rate_limited(fake: FakeYClients, pattern: str, method: str | None, made: bool) -> None:
    # Retry-After beyond the client's max_retry_after (5 s): raised at once, not waited for
    assert not made, "a 429 proves the request was not processed"
    fake.fail(pattern, 429, retry_after=60, times=None, method=method)


FAULTS: dict[str, Arm] = {"5xx": fail_5xx, "hang": hang, "429": rate_limited}


async def summary(stand: Stand) -> int:
    """The booking's summary reached; returns how many replies the client has."""
    text = await to_summary(stand, CLIENT, ASK)
    assert "15:00" in text and "Записать" in text, text
    assert stand.records() == []
    return len(stand.said(CLIENT))


def no_claim(texts: list[str]) -> None:
    assert not any(CLAIM in text for text in texts), texts


# -- book_record fails: the outcome is unknown ---------------------------------------------


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_a_record_made_while_yclients_fails_is_confirmed_once_it_answers(
    autojump_clock: MockClock, fault: str
) -> None:
    async with open_stand() as stand:
        count = await summary(stand)
        arm = FAULTS[fault]
        arm(stand.fake, BOOK_RECORD, "POST", True)  # the record is made, its answer lost
        arm(stand.fake, RECORDS, None, False)  # and the look-ups by api_id fail too
        pending = await stand.say(CLIENT, "да")
        assert t.booking_pending() in pending
        no_claim([pending])
        assert len(stand.records()) == 1  # YClients has it; we do not know yet
        await stand.quiet(10)
        assert len(stand.said(CLIENT)) == count + 1  # nothing more while YClients fails
        stand.fake.clear_faults()
        stand.fake.release_hung()
        confirmed = (await stand.replies(CLIENT, count + 2))[-1]
        assert CLAIM in confirmed and "15:00" in confirmed
        [record] = stand.records()
        assert record["staff_id"] == 6201
        assert dt.datetime.fromisoformat(record["datetime"]) == dt.datetime(
            2026, 3, 13, 15, 0, tzinfo=MSK
        )
        assert stand.book_posts() == 1  # settled by looking the api_id up, never re-booked
        # a second "да" makes no second record
        await stand.say(CLIENT, "да")
        await stand.quiet()
        assert len(stand.records()) == 1 and stand.book_posts() == 1
        audit = [e.event_type for e in await stand.storage.audit.recent(stand.company_id)]
        assert "assistant.booking_pending" in audit and "assistant.booked" in audit


@pytest.mark.parametrize("fault", ["5xx", "hang", "429"])
async def test_a_booking_yclients_never_made_is_told_and_new_times_offered(
    autojump_clock: MockClock, fault: str
) -> None:
    async with open_stand() as stand:
        count = await summary(stand)
        arm = FAULTS[fault]
        arm(stand.fake, BOOK_RECORD, "POST", False)  # the booking never reaches YClients
        arm(stand.fake, RECORDS, None, False)
        pending = await stand.say(CLIENT, "да")
        assert t.booking_pending() in pending
        stand.fake.clear_faults()
        stand.fake.release_hung()
        told = (await stand.replies(CLIENT, count + 2))[-1]
        assert t.booking_not_made() in told
        assert "15:00" in told  # the time is still free: offered again, nothing claimed
        no_claim(stand.said(CLIENT))
        assert stand.records() == []
        # the client takes the offer: booked once, and only now claimed
        if "Записать" not in told:
            reply = await stand.say(CLIENT, "15:00")
            assert "Записать" in reply, reply
        booked = await stand.say(CLIENT, "да")
        assert CLAIM in booked and "15:00" in booked
        assert len(stand.records()) == 1


async def test_a_lost_answer_is_looked_up_by_api_id_before_the_client_is_answered(
    autojump_clock: MockClock,
) -> None:
    """YClients made the record but its answer never came (past the client's timeout): the
    client looks our api_id up at once and the client hears "записала" in the same reply."""
    async with open_stand() as stand:
        await summary(stand)
        stand.fake.hang(BOOK_RECORD, method="POST", after_handler=True)
        started = trio.current_time()
        booked = await stand.say(CLIENT, "да")
        assert trio.current_time() - started >= 5.0  # the client's timeout passed first
        assert CLAIM in booked and t.booking_pending() not in booked
        assert len(stand.records()) == 1 and stand.book_posts() == 1
        lookups = stand.fake.requests_to(RECORDS)
        assert lookups and lookups[-1].time > stand.fake.requests_to(BOOK_RECORD)[0].time


async def test_a_passing_429_is_waited_out_and_books_once(autojump_clock: MockClock) -> None:
    async with open_stand() as stand:
        await summary(stand)
        stand.fake.fail(BOOK_RECORD, 429, retry_after=2, times=1, method="POST")
        booked = await stand.say(CLIENT, "да")
        assert CLAIM in booked
        assert len(stand.records()) == 1 and stand.book_posts() == 2  # the 429, then the one


# -- book_check fails: nothing can have been made ------------------------------------------


@pytest.mark.parametrize("fault", ["5xx", "hang", "429"])
async def test_a_failing_book_check_books_nothing_and_the_same_yes_retries(
    autojump_clock: MockClock, fault: str
) -> None:
    """``book_check`` creates nothing, so there is nothing to settle: the client is told at
    once that the visit is not booked yet and may say "да" again (with the same api_id)."""
    async with open_stand() as stand:
        await summary(stand)
        FAULTS[fault](stand.fake, BOOK_CHECK, "POST", False)
        told = await stand.say(CLIENT, "да")
        assert t.booking_unavailable() in told
        no_claim(stand.said(CLIENT))
        assert stand.book_posts() == 0 and stand.records() == []
        stand.fake.clear_faults()
        stand.fake.release_hung()
        booked = await stand.say(CLIENT, "да")
        assert CLAIM in booked and "15:00" in booked
        assert len(stand.records()) == 1 and stand.book_posts() == 1


async def test_a_passing_429_at_book_check_is_waited_out(autojump_clock: MockClock) -> None:
    async with open_stand() as stand:
        await summary(stand)
        stand.fake.fail(BOOK_CHECK, 429, retry_after=1, times=1, method="POST")
        booked = await stand.say(CLIENT, "да")
        assert CLAIM in booked
        assert len(stand.records()) == 1 and len(stand.fake.requests_to(BOOK_CHECK)) == 2


# -- the whole node stops between the "да" and the reply -----------------------------------


@pytest.mark.parametrize("made", [True, False], ids=["record-made", "record-not-made"])
async def test_a_node_restart_between_yes_and_reply_settles_the_booking_once(
    database_url: str, redis_prefix: str, made: bool
) -> None:
    """The node is stopped while ``book_record`` is in flight (YClients made the record, or
    not, and the answer never came). A new node on the same PostgreSQL wakes the conversation
    by itself, settles the booking by ``api_id`` and tells the client once: confirmed when
    the record exists, "did not work" with times otherwise. Never a second record."""
    settings = stand_settings()
    world = SimulatedWorld()
    today = dt.datetime.now(MSK).date()
    now = dt.datetime.combine(today, dt.time(9), tzinfo=MSK)
    retry = RetryPolicy(attempts=2, backoff_initial=0.05, backoff_max=0.1)
    async with running_fake_yclients(rate_limits=None, catalog=EXAMPLE_CATALOG, now=now) as fake:
        # -- the first node: the summary, the "да", and the node stops mid-booking --
        async with (
            open_real_storage(database_url, redis_prefix=redis_prefix) as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=30.0, retry=retry) as client,
        ):
            async with (
                open_gateway(settings, world=world) as gateway,
                open_node(
                    settings,
                    storage,
                    gateway,
                    rng=random.Random(1),
                    assistant=AssistantOptions(yclients=client),
                ) as node,
            ):
                company = (await storage.companies.create(ROMASHKA, title="Ромашка")).company
                cid = company.id
                assert (await sync_company(storage, client, company)).ok
                with trio.fail_after(20):
                    await link(node, world, cid)
                    stand = Stand(fake, storage, node, world, client, cid)
                    count = await summary(stand)
                    fake.hang(BOOK_RECORD, method="POST", after_handler=made, times=None)
                    world.send_inbound(cid, CLIENT, "да")
                    await fake.wait_until(lambda: stand.book_posts() == 1)
                    if made:
                        await fake.wait_until(lambda: len(stand.records()) == 1)
            # the node is gone; YClients' side of the lost call ends too
            fake.clear_faults()
            fake.release_hung()
        assert len(stand.said(CLIENT)) == count  # the node stopped before any reply
        assert len(stand.records()) == (1 if made else 0)

        # -- a new node on the same database --
        async with (
            open_real_storage(database_url, redis_prefix=redis_prefix, truncate=False) as storage,
            YClientsClient(fake.base_url, PARTNER_TOKEN, timeout=2.0, retry=retry) as client,
            open_gateway(settings, world=world) as gateway,
            open_node(
                settings,
                storage,
                gateway,
                rng=random.Random(2),
                assistant=AssistantOptions(yclients=client),
            ) as node,
        ):
            await node.restore_done()  # the company restored, then its conversations woken
            assert node.assistant is not None and node.assistant.sweep.woken == 1
            stand = replace(stand, storage=storage, node=node, client=client)
            with trio.fail_after(20):
                told = (await stand.replies(CLIENT, count + 1))[-1]
            if made:
                assert CLAIM in told and "15:00" in told
            else:
                assert t.booking_not_made() in told
                no_claim(stand.said(CLIENT))
            await trio.sleep(1.0)
            assert len(stand.said(CLIENT)) == count + 1  # told once
            assert len(stand.records()) == (1 if made else 0)
            assert stand.book_posts() == 1  # settled by api_id, never booked again
            row = await storage.conversations.get(cid, CLIENT)
            assert row is not None and ConversationState.from_json(row.state).booking is None
