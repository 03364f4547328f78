"""Record webhooks and lifecycle webhooks never meet (issue 12, security 3 and 6).

- A body posted to a company's record-webhook URL (whose secret anyone holding the URL knows)
  can neither be a ``freeze`` / ``uninstall`` nor take the dedupe key of the genuine one from
  YClients: keys are namespaced by the route, and the record route takes record events only.
- The record-webhook route answers a company id that does not exist exactly as it answers an
  existing company with a wrong secret, so company ids cannot be enumerated.

On both storage backends (the inbox's unique dedupe key is PostgreSQL's on the real one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.fakes.yclients import APPLICATION_ID, LOTOS_ID
from tests.web.yclients_stack import WAIT, Stack, open_stack


@pytest.fixture(params=["memory", "real"])
async def stack(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Stack]:
    async with open_stack(str(request.param), database_url, redis_prefix) as opened:
        yield opened


def lifecycle_body(event: str) -> dict[str, object]:
    """A lifecycle event as an attacker would post it (no partner token needed there)."""
    return {"salon_id": LOTOS_ID, "application_id": APPLICATION_ID, "event": event}


async def test_a_record_webhook_cannot_suppress_a_real_freeze(stack: Stack) -> None:
    company_id, _ = await stack.install(LOTOS_ID)
    secret = await stack.webhook_secret(company_id)
    for event in ("freeze", "uninstall"):
        by_path = await stack.client.post(
            f"/marketplace/webhook/{company_id}/{secret}", json=lifecycle_body(event)
        )
        by_header = await stack.client.post(
            f"/marketplace/webhook/{company_id}",
            json=lifecycle_body(event),
            headers={"X-Webhook-Secret": secret},
        )
        for response in (by_path, by_header):
            assert response.status_code == 400
            assert (await response.get_json())["error"]["code"] == "invalid_webhook"
    assert await stack.storage.inbox.pending_count() == 0
    assert await stack.status(company_id) == "pending"

    # The genuine freeze from YClients is new, stored and applied.
    genuine = await stack.lifecycle_event(LOTOS_ID, "freeze")
    assert genuine.status_code == 200
    assert (await genuine.get_json())["duplicate"] is False
    with trio.fail_after(WAIT):
        await stack.lifecycle.wait_handled(1)
    assert await stack.status(company_id) == "frozen"
    # Its own redelivery is still recognised.
    again = await stack.lifecycle_event(LOTOS_ID, "freeze")
    assert (await again.get_json())["duplicate"] is True


async def test_a_record_event_never_shares_a_key_with_a_lifecycle_event(stack: Stack) -> None:
    """A record body that also carries lifecycle fields is a record event, stored as one, and
    the lifecycle event with the same fields is still new."""
    company_id, _ = await stack.install(LOTOS_ID)
    secret = await stack.webhook_secret(company_id)
    both = {
        "company_id": LOTOS_ID,
        "resource": "Record",
        "resource_id": 5,
        "status": "update",
        "data": {"id": 5, "last_change_date": "2030-06-04T12:00:00+03:00"},
        **lifecycle_body("uninstall"),
    }
    stored = await stack.client.post(f"/marketplace/webhook/{company_id}/{secret}", json=both)
    assert stored.status_code == 200, await stored.get_json()
    assert (await stored.get_json())["duplicate"] is False
    disguised = {**both, "resource": "Lifecycle"}
    refused = await stack.client.post(f"/marketplace/webhook/{company_id}/{secret}", json=disguised)
    assert refused.status_code == 400
    genuine = await stack.lifecycle_event(LOTOS_ID, "uninstall")
    assert (await genuine.get_json())["duplicate"] is False
    with trio.fail_after(WAIT):
        await stack.lifecycle.wait_handled(1)
    assert await stack.status(company_id) == "uninstalled"


async def test_a_missing_company_answers_like_a_wrong_secret(stack: Stack) -> None:
    company_id, _ = await stack.install(LOTOS_ID)
    secret = await stack.webhook_secret(company_id)
    record = {
        "company_id": LOTOS_ID,
        "resource": "record",
        "resource_id": 5,
        "status": "create",
        "data": {"id": 5},
    }
    missing = company_id + 1000
    answers = []
    for cid, given in ((company_id, "whs_wrong_secret_0123456789"), (missing, secret)):
        by_path = await stack.client.post(f"/marketplace/webhook/{cid}/{given}", json=record)
        by_header = await stack.client.post(
            f"/marketplace/webhook/{cid}", json=record, headers={"X-Webhook-Secret": given}
        )
        no_secret = await stack.client.post(f"/marketplace/webhook/{cid}", json=record)
        for response in (by_path, by_header, no_secret):
            answers.append((response.status_code, await response.get_data(as_text=True)))
    assert {status for status, _ in answers} == {401}
    assert len({body for _, body in answers}) == 1
    assert "invalid_webhook_secret" in answers[0][1]
    assert await stack.storage.inbox.pending_count() == 0
