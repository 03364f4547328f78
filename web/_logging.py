"""Logging set-up: JSON lines with a request id in production, readable lines in development.

A redaction filter runs on every record, so a token, key or secret that slips into a message
or an argument never reaches the output.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

from config import without_passwords

from ._security import SECRET_QUERY_PARAMS

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Things that look like our secrets: company keys, webhook secrets, admin keys, JWTs,
# and query parameters that carry them.
_SECRET_PATTERNS = (
    re.compile(r"\b(sk|whs|adm)_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    # the same parameter names the access log redacts (one list: web._security)
    re.compile(
        r"(?i)\b((?:"
        + "|".join(sorted(map(re.escape, SECRET_QUERY_PARAMS), key=len, reverse=True))
        + r")=)[^&\s\"']+"
    ),
    re.compile(r"(/marketplace/qr/)[^/?\s\"']+"),
)


def redact(text: str) -> str:
    """Replace anything secret-looking in ``text`` with ``[REDACTED]`` (URL passwords ``***``)."""
    text = without_passwords(text)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[REDACTED]", text)
        else:
            text = pattern.sub("[REDACTED]", text)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message once, redacted, so formatters never see the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not kill logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            data["request_id"] = request_id
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatException(self, ei: object) -> str:
        return redact(super().formatException(ei))  # type: ignore[arg-type]


def configure_logging(level: str, *, json_lines: bool, stream: object = None) -> None:
    """Install our handler on the root logger (replacing earlier ones)."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else ReadableFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("hypercorn.access", "httpx", "httpcore", "asyncio", "trio_asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
