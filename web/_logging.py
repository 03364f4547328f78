"""Logging set-up: JSON lines with a request id in production, readable lines in development.

A redaction filter runs on every record, so a token, key or secret that slips into a message
or an argument never reaches the output. It redacts three ways:

* by value: the secrets this process knows (the admin key, whatever its shape, the JWT secret,
  the partner token — :func:`register_secrets`, called when the app is made), raw and
  URL-encoded, wherever they appear and under whatever name;
* by shape: company keys (``sk_``), webhook secrets (``whs_``), generated admin keys
  (``adm_``), JWTs (``eyJ….….…``) and connect tokens (43 URL-safe base64 characters);
* by name: ``token=``, ``admin_key=``, ``auth=``, ``authorization=``, ``webhook_secret=`` …
  and ``Authorization:`` / ``X-API-Key:`` header text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from urllib.parse import quote, quote_plus

from actors import request_id_var as request_id_var
from config import without_passwords

from ._security import SECRET_QUERY_PARAMS

# ``request_id_var`` (the request the running code serves) belongs to the business events'
# log (``actors._business_log``): company actors serve commands under their request's id too.

REDACTED = "[REDACTED]"

# Names that carry secrets in logged text beyond the access log's list (web._security): what
# an operator or a client may call them in a query string or a message.
EXTRA_SECRET_NAMES = frozenset(
    {
        "admin_key",
        "adminkey",
        "admin_api_key",
        "auth",
        "authorization",
        "bearer",
        "webhook_secret",
        "x-api-key",
        "x_api_key",
        "x-webhook-secret",
        "client_secret",
        "signature",
    }
)
_NAMES = sorted(map(re.escape, SECRET_QUERY_PARAMS | EXTRA_SECRET_NAMES), key=len, reverse=True)

# Things that look like our secrets: company keys, webhook secrets, admin keys, JWTs, connect
# tokens (``secrets.token_urlsafe(32)``: 43 characters), and named values that carry them.
_SECRET_PATTERNS = (
    re.compile(r"\b(sk|whs|adm)_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    # header text: "Authorization: Bearer x", "X-API-Key: x"
    re.compile(
        r"(?i)\b((?:authorization|proxy-authorization|x-api-key|x-webhook-secret)"
        r"[\"']?\s*:\s*[\"']?(?:bearer\s+|basic\s+)?)[^\s,;\"']+"
    ),
    re.compile(r"(?i)\b((?:" + "|".join(_NAMES) + r")=)[^&\s\"']+"),
    re.compile(r"(/marketplace/qr/)[^/?\s\"']+"),
    re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}(?![A-Za-z0-9_\-])"),
)

#: A value shorter than this is never registered: redacting it would blank ordinary words.
MIN_SECRET_CHARS = 8
_MAX_KNOWN = 512
_known_lock = threading.Lock()
_known: dict[str, None] = {}  # insertion-ordered set of every form of every known secret
_known_pattern: re.Pattern[str] | None = None


def register_secrets(*values: str | None) -> None:
    """Redact these exact values from every log line from now on, under any name or none.

    Each value is registered raw and URL-encoded (as it appears in a logged request line).
    ``None``, empty and short values (< :data:`MIN_SECRET_CHARS`) are ignored; the oldest
    forms are forgotten past a bound (a process registers a handful; tests register many).
    """
    global _known_pattern
    with _known_lock:
        for value in values:
            if not value or len(value) < MIN_SECRET_CHARS:
                continue
            for form in (value, quote(value, safe=""), quote(value), quote_plus(value)):
                _known.pop(form, None)
                _known[form] = None
        while len(_known) > _MAX_KNOWN:
            del _known[next(iter(_known))]
        forms = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(map(re.escape, forms))) if forms else None


def redact(text: str) -> str:
    """Replace anything secret-looking in ``text`` with ``[REDACTED]`` (URL passwords ``***``)."""
    known = _known_pattern
    if known is not None:
        text = known.sub(REDACTED, text)
    text = without_passwords(text)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
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
        event = getattr(record, "business_event", None)
        if isinstance(event, dict):  # actors.log_event's fields, typed (redacted like the rest)
            data["event"] = {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            data["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(data, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatException(self, ei: object) -> str:
        return redact(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


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
