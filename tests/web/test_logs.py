"""Secrets stay out of the logs: after requests carrying a connect token (query and path), a
webhook secret (path and header), a company API key, the admin key and a JWT — including
requests that fail with 401, 404, 503 and 500 — no log line contains any of them.

Checked twice: the raw records as the app emits them (``caplog``, no filter: the access and
error logs must redact by themselves), and the lines the production handler writes (our
``RedactingFilter`` and formatters, as ``configure_logging`` installs them).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from storage import StorageUnavailable
from tests.web.conftest import WebHarness, issue_jwt, register
from web._logging import JsonFormatter, ReadableFormatter, RedactingFilter


@pytest.fixture
def production_log() -> Iterator[io.StringIO]:
    """Every record of every logger, through the filter and formatter production uses."""
    stream = io.StringIO()
    handlers = []
    for formatter in (ReadableFormatter(), JsonFormatter()):
        handler = logging.StreamHandler(stream)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield stream
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old_level)


async def test_no_secret_reaches_a_log_line(
    web: WebHarness,
    caplog: pytest.LogCaptureFixture,
    production_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    company = await register(web)
    other = await register(web)
    jwt = await issue_jwt(web, company)
    secret = await web.storage.companies.rotate_webhook_secret(company.company_id)
    cid = company.company_id
    secrets = {
        "connect token": company.token,
        "other token": other.token,
        "jwt": jwt,
        "api key": company.api_key,
        "admin key": web.settings.admin_api_key,
        "webhook secret": secret,
    }
    record = {"company_id": 1, "resource": "record", "resource_id": 1, "status": "create"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/marketplace/connect?token={company.token}&company={cid}&salon=1", {}),
        ("GET", f"/marketplace/connect?company={cid}&TOKEN={other.token}", {}),
        ("GET", f"/marketplace/connect?tok%65n={company.token}", {}),
        ("GET", f"/marketplace/qr/{company.token}", {}),
        ("GET", f"/marketplace/qr/{jwt}", {}),
        ("GET", f"/marketplace/qr/{other.token}x", {}),  # 401
        ("GET", f"/marketplace/status/{cid}?token={company.token}", {}),
        ("GET", f"/marketplace/status/{cid}?token={other.token}", {}),  # 403
        ("GET", f"/marketplace/status/{cid}?jwt={jwt}&api_key={company.api_key}", {}),
        ("GET", f"/marketplace/status/{cid}", {"headers": company.key_headers}),
        ("GET", f"/marketplace/status/{cid}", {"headers": {"Authorization": f"Bearer {jwt}"}}),
        ("GET", f"/marketplace/status/{cid}", {"headers": {"X-API-Key": company.api_key + "x"}}),
        ("POST", f"/marketplace/webhook/{cid}/{secret}", {"json": record}),
        ("POST", f"/marketplace/webhook/{cid}/{secret}x", {"json": record}),  # 401
        ("POST", f"/marketplace/webhook/{cid + 99}/{secret}", {"json": record}),  # 404
        (
            "POST",
            f"/marketplace/webhook/{cid}",
            {"json": record, "headers": {"X-Webhook-Secret": secret}},
        ),
        ("GET", f"/nope?secret={secret}", {}),  # 404
        ("GET", f"/marketplace/qr/{company.token}/more", {}),  # 404, the token still redacted
        ("GET", "/marketplace/companies", {"headers": web.admin}),
        ("GET", "/metrics", {"headers": web.admin}),
    ]
    for method, path, options in requests:
        response = await web.client.open(path, method=method, **options)
        assert response.status_code < 500, (path, response.status_code)

    # Failures that log at WARNING and ERROR, with secrets in the URL.
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("postgres", "connection refused")

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected failure while counting")

    monkeypatch.setattr(web.storage.companies, "get", down)
    monkeypatch.setattr(web.storage.companies, "count_by_status", boom)
    # A JWT is checked against the company row (its credentials version), which is down; the
    # status route itself reads nothing once the company's actor runs.
    unavailable = await web.client.get(f"/marketplace/status/{cid}?token={jwt}")
    assert unavailable.status_code == 503
    crashed = await web.client.get(
        f"/marketplace/companies?token={company.token}&key={secret}", headers=web.admin
    )
    assert crashed.status_code == 500

    raw_lines = [r.getMessage() for r in caplog.records] + [
        r.exc_text or "" for r in caplog.records
    ]
    written = production_log.getvalue()
    for name, value in secrets.items():
        for line in raw_lines:
            assert value not in line, f"the {name} is in a raw log record: {line!r}"
        assert value not in written, f"the {name} reached the log output"

    # The logs did record the requests (so the check above looked at something).
    access = [r.getMessage() for r in caplog.records if r.name == "aiadmin.access"]
    assert len(access) >= len(requests) + 2
    assert any("/marketplace/qr/[REDACTED]" in line for line in access)
    assert any(f"/marketplace/webhook/{cid}/[REDACTED]" in line for line in access)
    assert any("token=[REDACTED]" in line for line in access)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.exc_info for r in errors), "the 500 was logged with its traceback"
    assert "unexpected failure while counting" in written


async def test_production_log_lines_are_json_with_the_request_id(web: WebHarness) -> None:
    """In production every line is one JSON object carrying the request's id (the same id the
    response names in ``X-Request-Id``), so one request's lines can be found together."""
    import json

    from web._logging import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("info", json_lines=True, stream=stream)
    try:
        response = await web.client.get("/marketplace/test", headers={"X-Request-Id": "req-42"})
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert response.headers["X-Request-Id"] == "req-42"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "aiadmin.access"]
    assert access, stream.getvalue()
    assert access[-1]["request_id"] == "req-42"
    assert access[-1]["level"] == "info"
    assert "GET /marketplace/test 200" in access[-1]["message"]
