"""Settings hold URLs with passwords (DATABASE_URL, REDIS_URL): text that may echo one is
passed through :func:`without_passwords` before it is logged, stored or shown."""

from __future__ import annotations

import re

# scheme://user:password@host → scheme://user:***@host (the user name stays: it helps debug)
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^/@\s:]*:)[^@\s/]+@")


def without_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)
