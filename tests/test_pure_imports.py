"""Pure modules stay pure at import time: loading the decisions or the models loads no backend.

Each case runs in a fresh interpreter (this one has everything loaded already) and lists which
of the heavy modules the import pulled in. Package ``__init__``s load their backend-bound
names on first use, so importing ``actors.company._transitions`` runs ``actors/__init__`` and
``storage/__init__`` without loading the node, the drivers or the QR renderer.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BACKENDS = ("asyncpg", "coredis", "trio_asyncio", "numpy", "qrcode")  # drivers, QR renderer
HTTP = ("httpx",)
EVENT_LOOP = ("trio",)

CASES = [
    # The decisions and the models load neither a backend nor the event loop.
    ("actors.company._transitions", BACKENDS + HTTP + EVENT_LOOP),
    ("actors.company._messages", BACKENDS + HTTP + EVENT_LOOP),
    ("actors.company", BACKENDS + HTTP + EVENT_LOOP),
    ("actors", BACKENDS + HTTP + EVENT_LOOP),
    ("storage._models", BACKENDS + HTTP + EVENT_LOOP),
    ("storage", BACKENDS + HTTP + EVENT_LOOP),
    # The WhatsApp and YClients packages run on trio (and YClients' client on httpx), but
    # their pure parts load no database, Redis or QR code at import.
    ("actors.whatsapp._events", BACKENDS + HTTP),
    ("actors.yclients._marketplace", BACKENDS),
    # The assistant's dialogue core (decide, its state and the reply templates) is pure.
    ("actors.assistant._decide", BACKENDS + HTTP + EVENT_LOOP),
    # Understanding a client's message (issue 10) is pure: pymorphy3 and rapidfuzz only.
    ("actors.assistant._understand", BACKENDS + HTTP + EVENT_LOOP),
    ("actors.assistant", BACKENDS + HTTP + EVENT_LOOP),
    # The in-memory storage (the embedded default) loads no PostgreSQL or Redis driver.
    ("storage._records", ("asyncpg", "coredis", "trio_asyncio")),
    ("storage._memory_db", ("asyncpg", "coredis", "trio_asyncio")),
    # The free-times cache the conversation actors share is plain Python.
    ("actors.assistant._slot_cache", BACKENDS + HTTP + EVENT_LOOP),
    # Reminders' clock, settings, plan and texts (issue 11) are plain Python.
    ("actors.reminders", BACKENDS + HTTP + EVENT_LOOP),
]


def loaded_after_import(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after ``import module``."""
    code = (
        f"import sys, {module}\n"
        f"print(','.join(name for name in {watched!r} if name in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in out.stdout.strip().split(",") if name]


@pytest.mark.parametrize(("module", "forbidden"), CASES, ids=[case[0] for case in CASES])
def test_pure_module_imports_no_backend(module: str, forbidden: tuple[str, ...]) -> None:
    assert loaded_after_import(module, forbidden) == []


def test_the_check_sees_a_backend_when_one_is_loaded() -> None:
    # The probe itself works: the actor module does load trio and the QR renderer's numpy.
    assert loaded_after_import("actors.company._actor", ("trio", "numpy")) == ["trio", "numpy"]


def test_lazy_names_resolve_to_their_modules() -> None:
    code = (
        "import sys, storage, actors, actors.company\n"
        "assert 'asyncpg' not in sys.modules\n"
        "from storage import PgPool\n"
        "from actors import Node\n"
        "from actors.company import CompanyActor\n"
        "print(PgPool.__module__, Node.__module__, CompanyActor.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["storage._pg_pool", "actors._node", "actors.company._actor"]
