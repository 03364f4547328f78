"""Production guards (issue 12, item 16): no public URL made up from the port, and neonize
sessions outside the server process unless an operator could not have meant it."""

from __future__ import annotations

import pytest

from config import ConfigError, Settings, WhatsAppProvider, settings_from_env
from tests.config.test_settings import PRODUCTION_OK


def load(env: dict[str, str]) -> Settings:
    return settings_from_env(env, dotenv=None)


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env)
    return info.value.problems


def without(key: str) -> dict[str, str]:
    return {k: v for k, v in PRODUCTION_OK.items() if k != key}


def test_production_requires_public_base_url() -> None:
    # Before: it defaulted to http://127.0.0.1:$PORT, which then went into the webhook URLs
    # sent to YClients.
    lines = problems(without("PUBLIC_BASE_URL"))
    assert len(lines) == 1
    assert lines[0].startswith("PUBLIC_BASE_URL is required in production")
    assert "webhook URLs" in lines[0]


def test_production_public_base_url_is_the_one_given() -> None:
    s = load({**PRODUCTION_OK, "PUBLIC_BASE_URL": "https://admin.example.ru/"})
    assert s.public_base_url == "https://admin.example.ru"


def test_development_still_defaults_public_base_url_to_the_port() -> None:
    assert load({"PORT": "3100"}).public_base_url == "http://127.0.0.1:3100"


def test_production_neonize_runs_sessions_in_a_host_process_by_default() -> None:
    s = load(PRODUCTION_OK)
    assert s.whatsapp_provider is WhatsAppProvider.NEONIZE
    assert s.session_hosts == 1  # before: 0, sessions inside the server process


def test_production_neonize_takes_more_hosts() -> None:
    assert load({**PRODUCTION_OK, "AIADMIN_SESSION_HOSTS": "3"}).session_hosts == 3


def test_production_neonize_refuses_sessions_in_the_server_process() -> None:
    lines = problems({**PRODUCTION_OK, "AIADMIN_SESSION_HOSTS": "0"})
    assert len(lines) == 1
    assert lines[0].startswith("AIADMIN_SESSION_HOSTS=0 would run WhatsApp (neonize) inside")


def test_development_keeps_sessions_in_process_by_default() -> None:
    assert load({}).session_hosts == 0
    assert load({"WHATSAPP_PROVIDER": "neonize"}).session_hosts == 0
