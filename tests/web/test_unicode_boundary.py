"""Invalid Unicode stops at the JSON boundary: a lone surrogate (``"\\ud800"``) in any JSON body
is a 400 of our own wording, never a 500, never the driver's message or the input echoed back;
a WebSocket auth token holding one is refused cleanly, with no ERROR in the log.

A lone surrogate cannot arrive as UTF-8 (strict decoding refuses it); it arrives as a JSON
escape, which ``json.loads`` turns into a ``str`` nothing downstream can encode — the webhook
dedupe key, Redis, asyncpg and the connect page's template all failed on it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio

from tests.web.conftest import ALLOWED_ORIGIN, WebHarness, register

LONE = "\\ud800"  # as it travels: a JSON escape (the body's bytes are plain ASCII)
FORBIDDEN_IN_BODY = ("\ud800", "ud800", "DataError", "asyncpg", "Traceback", "$4")


def _json_with(body: str) -> bytes:
    return body.encode("ascii")


async def _post(
    web: WebHarness, path: str, raw: bytes, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, Any], str]:
    response = await web.client.post(
        path,
        data=raw,
        headers={"Content-Type": "application/json", **(headers or {})},
        **kw,
    )
    text = await response.get_data(as_text=True)
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    return response.status_code, body, text


def _assert_our_400(status: int, body: dict[str, Any], text: str) -> None:
    assert status == 400, text
    assert body["error"]["code"] == "invalid_unicode", body
    assert "Unicode" in body["error"]["message"]
    for fragment in FORBIDDEN_IN_BODY:
        assert fragment not in text, (fragment, text)


@pytest.mark.parametrize(
    "raw",
    [
        f'{{"salon_id": 4242, "title": "Salon {LONE}"}}',
        f'{{"salon_id": 4242, "title": "\\ud83d\\ude00{LONE}"}}',  # a pair, then a lone one
        '{"salon_id": 4242, "title": "\\udc00\\ud800"}',  # low before high: both lone
        f'{{"salon_id": 4242, "title": "ok", "{LONE}": 1}}',  # in a key
        f'{{"salon_id": 4242, "raw": [{{"deep": ["{LONE}"]}}]}}',  # nested
    ],
)
async def test_register_refuses_a_lone_surrogate_on_both_backends(
    any_web: WebHarness, raw: str
) -> None:
    status, body, text = await _post(
        any_web, "/marketplace/register", _json_with(raw), any_web.admin
    )
    _assert_our_400(status, body, text)
    assert await any_web.storage.companies.get_by_salon(4242) is None


async def test_a_surrogate_pair_is_ordinary_text(any_web: WebHarness) -> None:
    raw = _json_with('{"salon_id": 4343, "title": "Salon \\ud83d\\ude00"}')
    status, body, text = await _post(any_web, "/marketplace/register", raw, any_web.admin)
    assert status == 201, text
    company = await any_web.storage.companies.get(body["company_id"])
    assert company is not None and company.title == "Salon \U0001f600"


async def test_record_and_lifecycle_webhooks_refuse_a_lone_surrogate(any_web: WebHarness) -> None:
    company = await register(any_web)
    secret = await any_web.storage.companies.rotate_webhook_secret(company.company_id)
    record = (
        f'{{"company_id": {company.salon_id}, "resource": "record", "resource_id": 7, '
        f'"status": "create", "data": {{"comment": "{LONE}"}}}}'
    )
    for path, headers in (
        (f"/marketplace/webhook/{company.company_id}/{secret}", {}),
        (f"/marketplace/webhook/{company.company_id}", {"X-Webhook-Secret": secret}),
    ):
        status, body, text = await _post(any_web, path, _json_with(record), headers)
        _assert_our_400(status, body, text)
    lifecycle = (
        f'{{"salon_id": {company.salon_id}, "application_id": 1, "event": "freeze", '
        f'"partner_token": "x", "data": {{"note": "{LONE}"}}}}'
    )
    status, body, text = await _post(
        any_web, "/marketplace/yclients/webhook", _json_with(lifecycle)
    )
    _assert_our_400(status, body, text)
    assert await any_web.storage.inbox.pending_count() == 0


async def test_every_json_route_answers_a_lone_surrogate_with_our_400(web: WebHarness) -> None:
    """Every POST/PATCH route of the app: the admin key, a real company and its webhook secret
    get each request past authentication, so the body is what is judged."""
    company = await register(web)
    secret = await web.storage.companies.rotate_webhook_secret(company.company_id)
    raw = _json_with(
        f'{{"company_id": {company.company_id}, "salon_id": {company.salon_id}, '
        f'"title": "{LONE}", "phone": "{LONE}", "text": "{LONE}", "enabled": true}}'
    )
    refused: set[str] = set()
    for rule in web.app.url_map.iter_rules():
        methods = (rule.methods or set()) & {"POST", "PATCH", "PUT"}
        if not methods or rule.rule.startswith("/static"):
            continue
        path = (
            rule.rule.replace("<company_id>", str(company.company_id))
            .replace("<secret>", secret)
            .replace("<companyId>", str(company.company_id))
            .replace("<phone>", "79001234567")
        )
        assert "<" not in path, f"a path parameter this test does not fill: {rule.rule}"
        for method in sorted(methods):
            response = await web.client.open(  # type: ignore[call-arg]
                path,
                method=method,
                data=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Webhook-Secret": secret,
                    **web.admin,
                },
            )
            text = await response.get_data(as_text=True)
            # Routes that read no body (a simulated scan, a sync request) answer as usual.
            assert response.status_code != 500, (method, path, response.status_code, text)
            for fragment in FORBIDDEN_IN_BODY:
                assert fragment not in text, (method, path, fragment, text)
            if response.status_code == 400 and response.mimetype == "text/html":
                # A page's form post (the salon page's entries) answers our error page.
                assert text.startswith("<!doctype html>"), (method, path, text)
                refused.add(rule.rule)
            elif response.status_code == 400:
                assert json.loads(text)["error"]["code"] == "invalid_unicode", (method, path, text)
                refused.add(rule.rule)
    body_routes = {
        "/marketplace/register",
        "/marketplace/connect-url",
        "/marketplace/token",
        "/marketplace/callback",
        "/marketplace/webhook/<company_id>",
        "/marketplace/webhook/<company_id>/<secret>",
        "/marketplace/yclients/webhook",
        "/marketplace/conversations/<company_id>/mode",
        "/marketplace/company/<company_id>/assistant",
    }
    assert body_routes <= refused, body_routes - refused


async def test_storage_driver_message_is_never_echoed(any_web: WebHarness) -> None:
    """Even a value only the database refuses (here: past the boundary, straight to storage
    through the route's own checks) answers in our words — a text field's NUL never got there
    either; the twins refuse the same titles."""
    raw = _json_with('{"salon_id": 4545, "title": "bad \\u0000 title"}')
    status, _body, text = await _post(any_web, "/marketplace/register", raw, any_web.admin)
    assert status == 400, text
    for fragment in (*FORBIDDEN_IN_BODY, "\\u0000", "bad "):
        assert fragment not in text, (fragment, text)


async def test_a_driver_refusal_answers_in_our_words(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a value ever get past our checks and the database refuse it, the 400 names the
    field in our words: not the driver's message, not the value."""
    import asyncpg

    from storage import ValidationError

    driver_text = "invalid input for query argument $4: 'Salon \\ud800' (surrogates not allowed)"

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        try:
            raise asyncpg.DataError(driver_text)
        except asyncpg.DataError as exc:
            raise ValidationError("value", f"DataError: {driver_text}") from exc

    monkeypatch.setattr(web.storage.companies, "create", refuse)
    raw = _json_with('{"salon_id": 4646, "title": "Salon"}')
    status, body, text = await _post(web, "/marketplace/register", raw, web.admin)
    assert status == 400, text
    assert body["error"]["code"] == "invalid_field"
    for fragment in (*FORBIDDEN_IN_BODY, "Salon", "surrogates", "query argument"):
        assert fragment not in text, (fragment, text)


async def test_websocket_auth_token_with_a_lone_surrogate_is_refused_cleanly(
    any_web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    company = await register(any_web)
    tokens = [
        company.token[:-1] + "\ud800",  # a connect token's shape, one character lone
        "\ud800" * 20,
        "eyJhbGciOiJIUzI1NiJ9.eyJ\ud800.sig",  # a JWT's shape
    ]
    for token in tokens:
        frames = []
        with trio.fail_after(10):
            async with any_web.client.websocket(
                "/marketplace/ws", headers={"Origin": ALLOWED_ORIGIN}
            ) as ws:
                # The surrogate travels as a JSON escape, as a browser's JSON.stringify sends it.
                await ws.send(json.dumps({"event": "auth", "data": {"token": token}}))
                try:
                    while True:
                        frames.append(json.loads(await ws.receive()))
                except Exception as exc:  # the close
                    close = exc
        assert frames and frames[0]["event"] == "error", frames
        assert frames[0]["data"]["code"] == "invalid_token", frames
        assert close.args and close.args[0] == 4001, close
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)


async def test_websocket_command_frame_with_a_lone_surrogate_is_an_error_frame(
    web: WebHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    company = await register(web)
    with trio.fail_after(10):
        async with web.client.websocket("/marketplace/ws") as ws:
            await ws.send(json.dumps({"event": "auth", "data": {"token": company.token}}))
            first = json.loads(await ws.receive())
            assert first["event"] == "status"
            await ws.send(
                json.dumps({"event": "request-pairing-code", "data": {"phone": "\ud800"}})
            )
            while True:
                frame = json.loads(await ws.receive())
                if frame["event"] == "error":
                    break
    assert frame["data"]["code"] in ("bad_frame", "invalid_field"), frame
    assert "\ud800" not in json.dumps(frame, ensure_ascii=False)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
