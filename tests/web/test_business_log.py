"""The operators' log (issue 13): one INFO line per business event, with the company id and the
request id (``-`` when no request caused it), and never a secret or a whole phone number.

Driven the way it happens: YClients registers the salon (the API or the install redirect), the
admin's connect page asks for a QR code over its WebSocket, the salon's phone (the simulated
world) scans and later unlinks, the activation worker calls the fake YClients over loopback
HTTP, and YClients' lifecycle webhooks freeze and uninstall the salon through the durable inbox.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import trio

from actors import EVENTS_LOGGER, BusinessEvent, log_event, serving_request
from config import QrPolicy
from tests.fakes.yclients import APPLICATION_ID, LOTOS_ID, ORCHID_ID, PARTNER_TOKEN
from tests.web.conftest import WS_PATH, auth_frame, frame, frame_named
from tests.web.yclients_stack import ADMIN, SECRET, WAIT, Stack, open_stack, stack_settings
from web._logging import JsonFormatter, RedactingFilter

CALLBACK = "/marketplace/partner/callback"
PHONE = "79001234567"  # the simulated phone that scans
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse(line: str) -> dict[str, str]:
    """One event line's ``key=value`` pairs (JSON-quoted values unquoted)."""
    return {
        key: json.loads(value) if value.startswith('"') else value
        for key, value in _PAIR.findall(line)
    }


class EventLog:
    """The business-event lines written so far, parsed."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def every_line(self) -> str:
        """Every record of every logger so far, with its traceback if any."""
        return "\n".join(r.getMessage() + (r.exc_text or "") for r in self._caplog.records)

    def records(self) -> list[logging.LogRecord]:
        return [r for r in self._caplog.records if r.name == EVENTS_LOGGER]

    def events(self, company_id: int) -> list[dict[str, str]]:
        lines = [parse(r.getMessage()) for r in self.records()]
        return [line for line in lines if line["company_id"] == str(company_id)]

    def names(self, company_id: int) -> list[str]:
        return [line["event"] for line in self.events(company_id)]

    def one(self, company_id: int, event: str) -> dict[str, str]:
        found = [line for line in self.events(company_id) if line["event"] == event]
        assert len(found) == 1, (event, self.names(company_id))
        return found[0]

    async def wait_for(self, company_id: int, event: str) -> dict[str, str]:
        with trio.fail_after(WAIT):
            while event not in self.names(company_id):  # noqa: ASYNC110 -- logs have no event
                await trio.sleep(0.005)
        return self.one(company_id, event)


@pytest.fixture
def event_log(caplog: pytest.LogCaptureFixture) -> EventLog:
    caplog.set_level(logging.DEBUG)  # every line of every logger, for the secrets scan
    return EventLog(caplog)


@pytest.fixture(params=["memory", "real"])
async def stack(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Stack]:
    async with open_stack(str(request.param), database_url, redis_prefix) as opened:
        yield opened


async def lifecycle(stack: Stack, salon_id: int, event: str, request_id: str) -> None:
    """YClients' lifecycle webhook, with its request id; waits until the worker handled it."""
    handled = stack.lifecycle.statistics().handled
    body = {
        "salon_id": salon_id,
        "application_id": APPLICATION_ID,
        "event": event,
        "partner_token": PARTNER_TOKEN,
    }
    response = await stack.client.post(
        "/marketplace/yclients/webhook", json=body, headers={"X-Request-Id": request_id}
    )
    assert response.status_code == 200
    with trio.fail_after(WAIT):
        await stack.lifecycle.wait_handled(handled + 1)


async def test_a_salon_from_register_to_uninstall_logs_each_event_once(
    stack: Stack, event_log: EventLog
) -> None:
    register = await stack.client.post(
        "/marketplace/register",
        json={"salon_id": LOTOS_ID, "phone": "+7 912 345 67 89"},
        headers={"X-API-Key": ADMIN, "X-Request-Id": "reg-1"},
    )
    assert register.status_code == 201
    body = await register.get_json()
    cid = body["company_id"]
    token = body["connect_url"].split("token=")[1].split("&")[0]
    registered = event_log.one(cid, "salon_registered")
    assert registered["request_id"] == "reg-1"
    assert registered["salon_id"] == str(LOTOS_ID) and registered["via"] == "api"

    world = stack.node.world
    assert world is not None
    shown: list[str] = []
    async with stack.client.websocket(WS_PATH, headers={"X-Request-Id": "ws-1"}) as ws:
        await ws.send(auth_frame(token))
        await frame_named(ws, "status")
        await ws.send(frame("request-qr"))
        shown.append((await frame_named(ws, "qr-update"))["data"]["qr"])
        # The id of the socket that asked crossed the actor's mailbox with the command.
        assert event_log.one(cid, "linking_started")["request_id"] == "ws-1"
        world.scan(cid)  # the salon's phone: no request
        connected = await frame_named(ws, "whatsapp-connected")
        assert connected["data"]["phone"] == PHONE
    linked = event_log.one(cid, "linked")
    assert linked["request_id"] == "-"
    assert linked["phone"] == "***" + PHONE[-4:]
    assert linked["previous"] == "linking"

    sent = await event_log.wait_for(cid, "activation_sent")
    assert sent["request_id"] == "-" and sent["salon_id"] == str(LOTOS_ID)
    assert stack.fake.installation(LOTOS_ID)["status"] == "active"

    world.unlink(cid)
    unlinked = await event_log.wait_for(cid, "unlinked")
    assert unlinked["request_id"] == "-"

    await lifecycle(stack, LOTOS_ID, "freeze", "hook-freeze-1")
    await lifecycle(stack, LOTOS_ID, "uninstall", "hook-uninstall-1")
    assert event_log.one(cid, "frozen")["request_id"] == "hook-freeze-1"
    assert event_log.one(cid, "uninstalled")["request_id"] == "hook-uninstall-1"

    assert event_log.names(cid) == [
        "salon_registered",
        "linking_started",
        "linked",
        "activation_sent",
        "unlinked",
        "frozen",
        "uninstalled",
    ]
    for record in event_log.records():
        assert record.levelno == logging.INFO
        assert record.getMessage().startswith("event=")

    # Nothing secret or personal in any line of any logger during the whole flow.
    secrets = {
        "company api key": body["api_key"],
        "connect token": token,
        "admin key": ADMIN,
        "jwt secret": SECRET,
        "partner token": PARTNER_TOKEN,
        "webhook secret": stack.fake.installation(LOTOS_ID)["webhook_urls"][0].rsplit("/", 1)[1],
        "salon phone": "79123456789",
        "client phone": PHONE,
        **{f"qr code {i}": code for i, code in enumerate(shown)},
    }
    text = event_log.every_line()
    for name, value in secrets.items():
        assert value not in text, f"the {name} reached a log line"


async def test_an_install_redirect_logs_the_salon_registered_under_its_request(
    stack: Stack, event_log: EventLog
) -> None:
    response = await stack.redirect(ORCHID_ID, signed=True)
    assert response.status_code == 302
    cid = int(response.headers["Location"].split("company=")[1].split("&")[0])
    registered = event_log.one(cid, "salon_registered")
    assert registered["via"] == "yclients_redirect" and registered["signed"] == "true"
    assert registered["request_id"] == response.headers["X-Request-Id"]
    # The same salon again registers nothing new, and logs nothing new.
    await stack.redirect(ORCHID_ID, signed=True)
    assert event_log.names(cid) == ["salon_registered"]


async def test_a_qr_round_that_runs_out_logs_qr_expired_with_no_request(
    database_url: str, redis_prefix: str, event_log: EventLog
) -> None:
    quick = QrPolicy(rotate_every=0.05, max_codes=2, first_code_lifetime=0.05)
    settings = replace(stack_settings(), qr=quick)
    async with open_stack("memory", database_url, redis_prefix, settings=settings) as stack:
        cid, token = await stack.install(LOTOS_ID)
        async with stack.client.websocket(WS_PATH, headers={"X-Request-Id": "ws-qr"}) as ws:
            await ws.send(auth_frame(token))
            await ws.send(frame("request-qr"))
            await frame_named(ws, "qr-expired")
            await ws.send(frame("request-qr"))  # a second round, asked again
            await frame_named(ws, "qr-update")
        # (The second round, unwatched now, may run out too: only the first four count.)
        events = event_log.events(cid)[:4]
        assert [e["event"] for e in events] == [
            "salon_registered",
            "linking_started",
            "qr_expired",
            "linking_started",
        ]
        assert [e["request_id"] for e in events[1:]] == ["ws-qr", "-", "ws-qr"]


async def test_a_refused_activation_logs_activation_failed_once(
    database_url: str, redis_prefix: str, event_log: EventLog
) -> None:
    async with open_stack("memory", database_url, redis_prefix) as stack:
        stack.fake.fail(CALLBACK, 422, message="Приложение не подключено", times=None)
        cid, token = await stack.install(LOTOS_ID)
        async with stack.client.websocket(WS_PATH) as ws:
            await ws.send(auth_frame(token))
            await ws.send(frame("request-qr"))
            await frame_named(ws, "qr-update")
            assert stack.node.world is not None
            stack.node.world.scan(cid)
            await frame_named(ws, "whatsapp-connected")
        failed = await event_log.wait_for(cid, "activation_failed")
        await stack.until(lambda: _status_is(stack, cid, "activation_failed"))
        assert failed["request_id"] == "-"
        assert "422" in failed["reason"] and "Приложение не подключено" in failed["reason"]
        assert "activation_sent" not in event_log.names(cid)


async def _status_is(stack: Stack, company_id: int, status: str) -> bool:
    return await stack.status(company_id) == status


def test_production_json_lines_carry_the_event_as_fields_and_stay_redacted() -> None:
    """In production (JSON lines) the event is also a structured ``event`` object beside the
    top-level ``request_id``; the redacting filter still runs on both."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    events = logging.getLogger(EVENTS_LOGGER)
    events.addHandler(handler)
    old_level = events.level
    events.setLevel(logging.INFO)
    try:
        with serving_request("req-42"):
            log_event(
                BusinessEvent.ACTIVATION_FAILED,
                7,
                salon_id=70,
                reason="401: bad key sk_abcdefghijklmnop",
                phone="79001234567",
            )
    finally:
        events.removeHandler(handler)
        events.setLevel(old_level)
    line = json.loads(stream.getvalue())
    assert line["level"] == "info" and line["logger"] == EVENTS_LOGGER
    assert line["request_id"] == "req-42"
    assert line["message"].startswith("event=activation_failed company_id=7 salon_id=70 ")
    assert line["message"].endswith(" request_id=req-42")
    assert line["event"] == {
        "name": "activation_failed",
        "company_id": 7,
        "salon_id": 70,
        "reason": "401: bad key sk[REDACTED]",
        "phone": "***4567",
    }
    assert "sk_abcdefghijklmnop" not in stream.getvalue()
    assert "79001234567" not in stream.getvalue()
