"""Secrets stay out of the logs however they are named: by value as well as by name.

An operator-chosen admin key (no ``adm_`` prefix), the JWT secret, the partner token, a live
connect token, a company key, a webhook secret and a JWT, each sent as ``admin_key=``,
``auth=``, ``authorization=``, ``webhook_secret=``, ``tkn=`` or under a name nobody lists:
a real ``aiadmin serve`` process is driven over HTTP and its whole log output (access log and
app log, as the operator sees it) is grepped for every one of them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import trio

from actors.yclients import FIRST_KEY_VERSION, derive_webhook_secret
from web._logging import REDACTED, redact, register_secrets

ROOT = Path(__file__).resolve().parents[2]

ADMIN_KEY = "Operator+Chosen/Key-7Hq2xLp9"  # no adm_ prefix; '+' and '/' get URL-encoded
JWT_SECRET = "jwt secret chosen by the operator, 40+ bytes long"
PARTNER_TOKEN = "partner-token-of-yclients-91x7"
SALON_ID = 777_001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forms(secret: str) -> set[str]:
    """The secret as it may appear in a log line: raw and URL-encoded."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}


def test_redact_by_value_and_by_shape() -> None:
    operator_key = "my operator key 12345"
    register_secrets(operator_key, None, "short")
    connect_token = "0kn0ccbMSRT1R4N75FhLy4rTpXlGtEKw2vi4q81lUgQ"
    lines = [
        f"GET /health/tree?admin_key={quote_plus(operator_key)} 200",
        f"GET /x?whatever={quote(operator_key, safe='')} 404",
        f"weird message mentioning {operator_key} in passing",
        f"GET /x?tkn={connect_token}&page=2 401",
        f"token in prose: {connect_token}.",
        "GET /x?authorization=Bearer%20abc.def.ghi 401",
        "Authorization: Bearer some-opaque-value",
        "headers {'X-API-Key': 'anything-at-all'}",
        "GET /x?webhook_secret=plain-looking-secret 401",
        "GET /x?auth=plain-looking-secret 401",
    ]
    for line in lines:
        out = redact(line)
        assert REDACTED in out, line
        for secret in (operator_key, connect_token, "abc.def.ghi", "some-opaque-value"):
            for form in forms(secret):
                assert form not in out, (line, out)
        assert "plain-looking-secret" not in out
        assert "anything-at-all" not in out
    # ordinary words survive: "short" was too short to register
    assert redact("a short line, 200 OK 1.2ms") == "a short line, 200 OK 1.2ms"


async def test_a_serving_process_logs_no_secret_under_any_name(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "LOG_LEVEL": "debug",
        "ADMIN_API_KEY": ADMIN_KEY,
        "JWT_SECRET": JWT_SECRET,
        "YCLIENTS_API_KEY": PARTNER_TOKEN,
        "YCLIENTS_APPLICATION_ID": "1",
        "YCLIENTS_BASE_URL": "http://127.0.0.1:9",  # nothing listens: no call leaves
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "web.cli", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,  # the start banner (print, not a log) goes to stdout
        stderr=subprocess.PIPE,
    )
    logged = bytearray()

    async def read_log() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            logged.extend(chunk)

    admin = {"X-API-Key": ADMIN_KEY}
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_log)
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                with trio.fail_after(30):
                    while True:
                        try:
                            await client.get("/health")
                            break
                        except httpx.TransportError:
                            await trio.sleep(0.1)
                with trio.fail_after(30):
                    registered = await client.post(
                        "/marketplace/register", json={"salon_id": SALON_ID}, headers=admin
                    )
                    assert registered.status_code == 201, registered.text
                    body = registered.json()
                    api_key = body["api_key"]
                    connect_token = parse_qs(urlsplit(body["connect_url"]).query)["token"][0]
                    issued = await client.post(
                        "/marketplace/token", json={"company_id": body["company_id"]}, headers=admin
                    )
                    jwt = issued.json()["token"]
                    webhook_secret = derive_webhook_secret(JWT_SECRET, SALON_ID, FIRST_KEY_VERSION)
                    secrets = {
                        "admin key": ADMIN_KEY,
                        "jwt secret": JWT_SECRET,
                        "partner token": PARTNER_TOKEN,
                        "connect token": connect_token,
                        "api key": api_key,
                        "jwt": jwt,
                        "webhook secret": webhook_secret,
                    }
                    names = ("admin_key", "auth", "authorization", "webhook_secret", "tkn", "zz")
                    for secret in secrets.values():
                        for name in names:
                            await client.get("/health/tree", params={name: secret})
                            await client.get("/marketplace/nothing", params={name: secret})
                        await client.get(
                            "/health/tree", params={"authorization": f"Bearer {secret}"}
                        )
                        await client.get(f"/marketplace/{quote(secret, safe='')}")
                    # the status of a company asked with each credential, right and wrong
                    await client.get(
                        f"/marketplace/status/{body['company_id']}?tkn={connect_token}"
                    )
            process.terminate()
            with trio.fail_after(15):
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    text = logged.decode(errors="replace")
    assert "/health/tree" in text  # the access log really was captured
    assert text.count(REDACTED) >= len(secrets) * 6
    for what, secret in secrets.items():
        for form in forms(secret):
            assert form not in text, f"the {what} reached the log: {_context(text, form)}"


def _context(text: str, needle: str) -> str:
    at = text.find(needle)
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    return re.sub(r"\s+", " ", text[line_start : line_end if line_end > 0 else None])
