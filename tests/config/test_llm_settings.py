"""The node's language-model settings: a base URL that carries no credentials or query, a
client ``repr`` that shows only scheme and host (issue 15)."""

from __future__ import annotations

import pytest
import trio

from actors.assistant._llm_client import LlmClient
from config import ConfigError, settings_from_env

SECRET = "s3cr3t-token-9f1"


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SECRET}@api.example.com/v1",
        f"https://{SECRET}@api.example.com/v1",
        f"https://api.example.com/v1?key={SECRET}",
        f"https://api.example.com/v1#{SECRET}",
        f"ftp://api.example.com/{SECRET}",
        f"https:///{SECRET}",
    ],
)
def test_a_base_url_with_credentials_query_or_fragment_is_refused_unechoed(url: str) -> None:
    with pytest.raises(ConfigError) as bad:
        settings_from_env({"AIADMIN_LLM_BASE_URL": url}, dotenv=None)
    assert "AIADMIN_LLM_BASE_URL" in str(bad.value)
    assert SECRET not in str(bad.value)


@pytest.mark.parametrize(
    "url",
    ["https://api.openai.com/v1", "http://127.0.0.1:11434/v1/", "http://llm.internal:8000"],
)
def test_a_plain_base_url_is_taken(url: str) -> None:
    assert settings_from_env({"AIADMIN_LLM_BASE_URL": url}, dotenv=None).llm.base_url == url


async def test_the_client_repr_shows_scheme_and_host_only() -> None:
    client = LlmClient(f"https://llm.example.com:8443/tenant/{SECRET}/v1", "sk-key")
    try:
        shown = repr(client)
        assert "https://llm.example.com:8443" in shown
        assert SECRET not in shown and "tenant" not in shown and "sk-key" not in shown
    finally:
        await client.aclose()
    await trio.lowlevel.checkpoint()
