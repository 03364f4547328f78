"""A fake OpenAI-compatible chat API for tests: a real loopback HTTP server, scripted per test.

    async with running_fake_openai() as fake:
        fake.script(tool_call({"commands": [{"type": "confirm"}]}))
        fake.script(status(429))
        client = LlmClient(fake.base_url, "sk-test")
        ...
        assert fake.requests[0].body["temperature"] == 0

Each request takes the next scripted answer; with none left, ``fake.default`` answers (by
default: 500, so an unscripted call is loud).
"""

from ._app import Answer as Answer
from ._app import FakeOpenAI as FakeOpenAI
from ._app import SeenRequest as SeenRequest
from ._app import hang as hang
from ._app import raw as raw
from ._app import status as status
from ._app import text_answer as text_answer
from ._app import tool_call as tool_call
from ._echo import echo as echo
from ._echo import rules_echo as rules_echo
from ._server import running_fake_openai as running_fake_openai

__all__ = [
    "Answer",
    "FakeOpenAI",
    "SeenRequest",
    "echo",
    "hang",
    "raw",
    "rules_echo",
    "running_fake_openai",
    "status",
    "text_answer",
    "tool_call",
]
