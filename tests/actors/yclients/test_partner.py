"""Partner (marketplace) calls through the client against the fake."""

from __future__ import annotations

import pytest

from actors.yclients import YClientsAuthError, YClientsClient, YClientsRejected
from tests.fakes.yclients import ACCEPT, APPLICATION_ID, LOTOS_ID, PARTNER_TOKEN, FakeYClients


async def test_activation_callback_sends_the_documented_body_and_headers(
    client: YClientsClient, fake: FakeYClients
) -> None:
    await client.send_activation_callback(
        LOTOS_ID, APPLICATION_ID, "sk_live_abc", ["https://ai-admin.app/webhook/yclients/s3cr3t"]
    )
    request = fake.requests[-1]
    assert (request.method, request.path, request.status) == (
        "POST",
        "/marketplace/partner/callback",
        201,
    )
    assert request.json == {
        "salon_id": LOTOS_ID,
        "application_id": APPLICATION_ID,
        "api_key": "sk_live_abc",
        "webhook_urls": ["https://ai-admin.app/webhook/yclients/s3cr3t"],
        "channels": ["whatsapp"],
    }
    assert request.headers["authorization"] == f"Bearer {PARTNER_TOKEN}"
    assert request.headers["accept"] == ACCEPT
    installation = fake.installation(LOTOS_ID)
    assert installation["status"] == "active"
    assert installation["api_key"] == "sk_live_abc"
    assert installation["channels"] == ["whatsapp"]


async def test_activation_with_a_wrong_application_is_rejected_with_message(
    client: YClientsClient, fake: FakeYClients
) -> None:
    with pytest.raises(YClientsRejected) as info:
        await client.send_activation_callback(LOTOS_ID, 1, "sk", ["https://a.test/w"])
    assert info.value.status == 422
    assert info.value.message == "Приложение не найдено"
    assert fake.installation(LOTOS_ID)["status"] == "pending"


async def test_activation_with_a_wrong_partner_token_is_an_auth_error(
    fake: FakeYClients,
) -> None:
    async with YClientsClient(fake.base_url, "not-our-token") as client:
        with pytest.raises(YClientsAuthError):
            await client.send_activation_callback(
                LOTOS_ID, APPLICATION_ID, "sk", ["https://a.test/w"]
            )
    assert fake.installation(LOTOS_ID)["status"] == "pending"


async def test_installation_status_follows_activation_freeze_and_uninstall(
    client: YClientsClient, fake: FakeYClients
) -> None:
    status = await client.get_installation(LOTOS_ID, APPLICATION_ID)
    assert status["connection_status"]["status"] == "pending"
    await client.send_activation_callback(LOTOS_ID, APPLICATION_ID, "sk", ["https://a.test/w"])
    assert (await client.get_installation(LOTOS_ID, APPLICATION_ID))["connection_status"][
        "status"
    ] == "active"
    fake.set_installation_status(LOTOS_ID, "freezed")
    assert (await client.get_installation(LOTOS_ID, APPLICATION_ID))["connection_status"][
        "status"
    ] == "freezed"
    await client.uninstall(LOTOS_ID, APPLICATION_ID)
    assert fake.installation(LOTOS_ID)["status"] == "uninstalled"
    with pytest.raises(YClientsRejected) as info:
        await client.get_installation(LOTOS_ID, APPLICATION_ID)
    assert info.value.status == 404
