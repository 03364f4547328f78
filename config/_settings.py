"""The one frozen, typed settings object, built once from the environment (and ``.env``).

Names follow the seeds where they exist (``PORT``, ``JWT_SECRET``, ``REDIS_URL`` ...); new
knobs are ``AIADMIN_*``. Unknown ``AIADMIN_*`` keys and invalid values are rejected with one
line each; production mode refuses what would be unsafe to run with.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from ._errors import ConfigError

MIN_JWT_SECRET_BYTES = 32
DEFAULT_ORIGINS = ("https://ai-admin.app", "https://yclients.com")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class WhatsAppProvider(StrEnum):
    NEONIZE = "neonize"
    SIMULATED = "simulated"


class WhatsAppStore(StrEnum):
    """Where neonize keeps each company's WhatsApp credentials."""

    # one SQLite file per company under WHATSAPP_SESSIONS_PATH, and beside it the ledger of
    # sent message ids that makes resends safe: both stay on this machine (no cluster mode)
    FILES = "files"
    # whatsmeow's tables and the ledger (``whatsapp_sent``) in DATABASE_URL: they move with
    # the salon to whichever process runs its session
    POSTGRES = "postgres"


#: Why cluster mode refuses the ``files`` store, and what to set instead.
CLUSTER_NEEDS_SHARED_STORE = (
    "AIADMIN_CLUSTER=true with WHATSAPP_PROVIDER=neonize needs AIADMIN_WHATSAPP_STORE=postgres "
    "(and DATABASE_URL): the files store keeps each salon's WhatsApp credentials and its ledger "
    "of sent messages on one machine, and a file store cannot move between machines, so a "
    "salon whose session moves to another process would have to scan its QR code again and "
    "could send a message twice"
)
#: Why cluster mode refuses a generated JWT secret, and what to set instead.
CLUSTER_NEEDS_SHARED_JWT = (
    "AIADMIN_CLUSTER=true needs JWT_SECRET set (at least 32 bytes, the same in every process): "
    "without it each process generates its own, so a company JWT one process issued is "
    "refused by another, keys derived from it differ, and requests forwarded to a salon's "
    "owner process fail their signature check (the client's IP is lost, and the owner counts "
    "them all against the forwarding process's address in the rate limit)"
)


@dataclass(frozen=True)
class SupervisorLimits:
    """Restart intensity and backoff for supervised children (OTP's intensity/period)."""

    max_restarts: int = 5
    period: float = 60.0
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    stable_after: float = 60.0
    quarantine_retry: float = 300.0


@dataclass(frozen=True)
class QrPolicy:
    """QR rotation: a new code every ``rotate_every`` seconds, linking ends after ``max_codes``."""

    rotate_every: float = 20.0
    max_codes: int = 6
    first_code_lifetime: float = 60.0


@dataclass(frozen=True)
class RateLimit:
    """A fixed-window limit: ``limit`` hits per ``window`` seconds."""

    limit: int
    window: float


#: The admin key's default budget per route: a partner polling 1,000 salons a minute (and
#: the rest of its calls) stays well inside it.
ADMIN_RATE_LIMIT = RateLimit(6000, 60.0)
SALON_RATE_LIMIT = RateLimit(600, 60.0)


@dataclass(frozen=True)
class SendPacing:
    """Outbound WhatsApp pacing: a minimum gap plus jitter, and a per-minute cap."""

    min_gap: float = 1.0
    jitter: float = 2.0
    per_minute: int = 20


@dataclass(frozen=True)
class AssistantPolicy:
    """The assistant's timing: how long it waits for the rest of a burst before answering,
    how long a handoff or a staff member's own message silences it, when old state expires."""

    wait: float = 2.0  # seconds of quiet after a client's message before answering
    handoff_minutes: float = 120.0  # a handoff to a person silences the assistant this long
    staff_silence_minutes: float = 60.0  # after the salon's staff write to the client
    idle_days: float = 14.0  # a conversation untouched this long starts afresh


@dataclass(frozen=True, repr=False)
class LlmSettings:
    """An OpenAI-compatible chat API the assistant may understand messages with (off when
    ``base_url`` is ``None``); ``model`` is the node's default model name. The API key is
    never logged (no ``repr`` shows it)."""

    base_url: str | None = None
    model: str = ""
    api_key: str | None = None
    timeout: float = 8.0
    #: The most tokens a day any salon may set as its cap (the node's key pays for them).
    max_daily_tokens: int = 1_000_000
    #: The model names salons may choose (empty: any; the node's own model is always allowed).
    models: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.base_url is not None

    def __repr__(self) -> str:  # never print the key
        return f"LlmSettings(base_url={self.base_url!r}, model={self.model!r}, api_key=***)"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, validated; pass it explicitly, never read env later."""

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = 3000
    log_level: str = "info"
    jwt_secret: str = ""
    jwt_secret_generated: bool = False
    admin_api_key: str = ""
    admin_api_key_generated: bool = False
    database_url: str | None = None
    redis_url: str | None = None
    redis_password: str | None = None
    redis_prefix: str = "aiadmin:"
    yclients_api_key: str | None = None
    yclients_user_token: str | None = None
    yclients_application_id: int | None = None
    yclients_base_url: str = "https://api.yclients.com"
    whatsapp_provider: WhatsAppProvider = WhatsAppProvider.SIMULATED
    whatsapp_sessions_path: Path = Path("./sessions")
    whatsapp_store: WhatsAppStore = WhatsAppStore.FILES
    session_hosts: int = 0
    sessions_per_host: int = 50
    public_base_url: str = "http://127.0.0.1:3000"
    allowed_origins: tuple[str, ...] = DEFAULT_ORIGINS
    trusted_proxies: tuple[str, ...] = ()
    passivate_after: float = 600.0
    #: How many linked companies the node's start-up restore activates at once (it runs in
    #: the background; the port is open before it ends). Below the PostgreSQL pool's 10
    #: connections, so requests still find one free while it runs.
    restore_concurrency: int = 8
    #: Cluster mode: how many linked companies a rebalance (a member left, or handed salons
    #: over) activates at once. Higher than the start-up restore's: the salons of a killed
    #: process are down until then, which outweighs leaving pool connections free for requests.
    rebalance_concurrency: int = 32
    sync_interval: float = 3600.0
    #: Finished webhook-inbox and outbox rows and messages older than this many days are
    #: deleted (in batches, by the node's retention service).
    retention_days: float = 30.0
    #: Audit events (``marketplace_events``) older than this many days are deleted by the
    #: same service; at least 91: the salon page's results count them for up to 90 days.
    audit_retention_days: float = 180.0
    max_body_bytes: int = 64 * 1024
    #: The longest an HTTP request (hooks and handler) may take: then 503 with Retry-After.
    request_timeout: float = 5.0
    #: The longest one storage operation may take (a PostgreSQL unit, waiting for a pooled
    #: connection included, or a Redis command): then StorageTimeout / StorageUnavailable.
    storage_timeout: float = 4.0
    #: A connection must send a complete request head within this many seconds of opening or
    #: of its previous response (also the keep-alive idle limit); slow clients are dropped.
    header_timeout: float = 10.0
    #: SIGINT/SIGTERM: the whole shutdown (open requests, the supervision tree, storage) ends
    #: within this many seconds; a signalled process that is still not done then exits anyway.
    shutdown_grace: float = 10.0
    demo: bool = False
    cluster: bool = False
    #: Cluster mode: a process's membership time to live (``actors._membership``). It
    #: heartbeats every third of this; a process that could not for two thirds of it stops
    #: its salons' actors, and the others take its salons over once it expired.
    member_ttl: float = 6.0
    #: Cluster mode: the URL other processes reach this process's HTTP server at directly
    #: (published with its membership).
    advertise_url: str = "http://127.0.0.1:3000"
    #: Development and tests: the Unix socket of one simulated WhatsApp that every process of
    #: a local cluster shares (``scripts/cluster_world.py``), so a salon keeps its link when it
    #: moves; ``None``: each process simulates its own.
    simulated_world: str | None = None
    supervisor: SupervisorLimits = field(default_factory=SupervisorLimits)
    qr: QrPolicy = field(default_factory=QrPolicy)
    api_rate_limit: RateLimit = field(default_factory=lambda: RateLimit(30, 60.0))
    #: Requests per route with the partner/admin key, wherever they come from (instead of
    #: ``api_rate_limit`` per IP): the partner polls every salon's status.
    admin_rate_limit: RateLimit = field(default_factory=lambda: ADMIN_RATE_LIMIT)
    #: Requests per route per IP to the salon page's API from a browser holding its cookie
    #: (instead of ``api_rate_limit``): the page reloads a chat on every live frame.
    salon_rate_limit: RateLimit = field(default_factory=lambda: SALON_RATE_LIMIT)
    ws_rate_limit: RateLimit = field(default_factory=lambda: RateLimit(5, 60.0))
    #: Salons looked up through YClients' install redirect per IP per window (each salon id of a
    #: redirect counts once): every one costs calls to YClients under our shared partner limit.
    redirect_rate_limit: RateLimit = field(default_factory=lambda: RateLimit(10, 60.0))
    pacing: SendPacing = field(default_factory=SendPacing)
    assistant: AssistantPolicy = field(default_factory=AssistantPolicy)
    llm: LlmSettings = field(default_factory=LlmSettings)

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    def __repr__(self) -> str:  # never print secrets
        return (
            f"Settings(env={self.env.value}, port={self.port}, "
            f"database={'postgresql' if self.database_url else 'memory'}, "
            f"redis={'redis' if self.redis_url else 'memory'}, "
            f"whatsapp={self.whatsapp_provider.value})"
        )


# Every key we read. Seed names first, then ours; any other AIADMIN_* key is an error.
SEED_KEYS = frozenset(
    {
        "PORT",
        "LOG_LEVEL",
        "JWT_SECRET",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "YCLIENTS_API_KEY",
        "YCLIENTS_USER_TOKEN",
        "WHATSAPP_PROVIDER",
        "WHATSAPP_SESSIONS_PATH",
        "DATABASE_URL",
        "YCLIENTS_APPLICATION_ID",
        "YCLIENTS_BASE_URL",
        "ADMIN_API_KEY",
        "PUBLIC_BASE_URL",
        "ALLOWED_ORIGINS",
    }
)
AIADMIN_KEYS = frozenset(
    {
        "AIADMIN_ENV",
        "AIADMIN_HOST",
        "AIADMIN_REDIS_PREFIX",
        "AIADMIN_SESSION_HOSTS",
        "AIADMIN_SESSIONS_PER_HOST",
        "AIADMIN_TRUSTED_PROXIES",
        "AIADMIN_PASSIVATE_AFTER",
        "AIADMIN_RESTORE_CONCURRENCY",
        "AIADMIN_REBALANCE_CONCURRENCY",
        "AIADMIN_SYNC_INTERVAL",
        "AIADMIN_MAX_BODY_BYTES",
        "AIADMIN_REQUEST_TIMEOUT",
        "AIADMIN_STORAGE_TIMEOUT",
        "AIADMIN_HEADER_TIMEOUT",
        "AIADMIN_SHUTDOWN_GRACE",
        "AIADMIN_DEMO",
        "AIADMIN_CLUSTER",
        "AIADMIN_MEMBER_TTL",
        "AIADMIN_ADVERTISE_URL",
        "AIADMIN_SIMULATED_WORLD",
        "AIADMIN_WHATSAPP_STORE",
        "AIADMIN_API_RATE_LIMIT",
        "AIADMIN_ADMIN_RATE_LIMIT",
        "AIADMIN_SALON_RATE_LIMIT",
        "AIADMIN_WS_RATE_LIMIT",
        "AIADMIN_REDIRECT_RATE_LIMIT",
        "AIADMIN_SEND_MIN_GAP",
        "AIADMIN_SEND_PER_MINUTE",
        "AIADMIN_ASSISTANT_WAIT",
        "AIADMIN_HANDOFF_MINUTES",
        "AIADMIN_STAFF_SILENCE_MINUTES",
        "AIADMIN_CONVERSATION_IDLE_DAYS",
        "AIADMIN_RETENTION_DAYS",
        "AIADMIN_AUDIT_RETENTION_DAYS",
        "AIADMIN_LLM_BASE_URL",
        "AIADMIN_LLM_MODEL",
        "AIADMIN_LLM_API_KEY",
        "AIADMIN_LLM_TIMEOUT",
        "AIADMIN_LLM_MAX_DAILY_TOKENS",
        "AIADMIN_LLM_MODELS",
    }
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def admin_rate_default(api: RateLimit, floor: RateLimit = ADMIN_RATE_LIMIT) -> RateLimit:
    """``AIADMIN_ADMIN_RATE_LIMIT``'s default: :data:`ADMIN_RATE_LIMIT`, or the per-IP API
    limit when that allows more (the admin key never gets less than anyone); with ``floor``
    :data:`SALON_RATE_LIMIT`, the same rule for ``AIADMIN_SALON_RATE_LIMIT``."""
    if api.limit / api.window > floor.limit / floor.window:
        return api
    return floor


class _Reader:
    """Reads typed values from a mapping, collecting one problem line per bad value."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, key: str) -> str | None:
        value = self.env.get(key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{key} must be an integer, got {raw!r}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{key} must be between {low} and {high}, got {value}")
            return default
        return value

    def seconds(self, key: str, default: float) -> float:
        raw = self.text(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{key} must be a number of seconds, got {raw!r}")
            return default
        if value <= 0:
            self.problems.append(f"{key} must be positive, got {raw}")
            return default
        return value

    def bounded(self, key: str, default: float, *, low: float, high: float, unit: str) -> float:
        """A number of ``unit`` between ``low`` and ``high`` inclusive (zero allowed if ``low``
        is zero: ``AIADMIN_SEND_MIN_GAP=0`` turns the gap off)."""
        raw = self.text(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{key} must be a number of {unit}, got {raw!r}")
            return default
        if not low <= value <= high:  # also refuses nan
            self.problems.append(f"{key} must be between {low:g} and {high:g} {unit}, got {raw}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self.text(key)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{key} must be true or false, got {raw!r}")
        return default

    def choice(
        self, key: str, enum: type[Environment | WhatsAppProvider | WhatsAppStore], default: str
    ) -> str:
        raw = (self.text(key) or default).lower()
        allowed = [m.value for m in enum]
        if raw not in allowed:
            self.problems.append(f"{key} must be one of {', '.join(allowed)}, got {raw!r}")
            return default
        return raw

    def url(self, key: str, schemes: tuple[str, ...]) -> str | None:
        raw = self.text(key)
        if raw is None:
            return None
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
        if scheme not in schemes:
            self.problems.append(
                f"{key} must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
            return None
        return raw

    def origin(self, key: str) -> str | None:
        """An ``http(s)://host[:port]`` base URL (a trailing ``/`` allowed), else a problem that
        says what is wrong without echoing the value (it may hold credentials)."""
        raw = self.url(key, ("http", "https"))
        if raw is None:
            return None
        parts = urlsplit(raw)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not parts.hostname or not port_ok or any(c.isspace() for c in parts.netloc):
            why = "a host and a valid port"
        elif "@" in parts.netloc:
            why = "no user or password"
        elif parts.path not in ("", "/") or "?" in raw or "#" in raw:
            why = "no path, query or fragment"
        else:
            return raw
        self.problems.append(f"{key} must be scheme://host[:port] ({why})")
        return None

    def api_base(self, key: str) -> str | None:
        """An ``http(s)://host[:port][/path]`` API root, else a problem that says what is wrong
        without echoing the value: credentials belong in their own setting, never in a URL
        that a log line or a ``repr`` may show."""
        raw = self.url(key, ("http", "https"))
        if raw is None:
            return None
        parts = urlsplit(raw)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not parts.hostname or not port_ok or any(c.isspace() for c in raw):
            why = "a host and a valid port"
        elif "@" in parts.netloc:
            why = "no user or password"
        elif "?" in raw or "#" in raw:
            why = "no query or fragment"
        else:
            return raw
        self.problems.append(f"{key} must be scheme://host[:port][/path] ({why})")
        return None

    def rate(self, key: str, default: RateLimit) -> RateLimit:
        raw = self.text(key)
        if raw is None:
            return default
        match = re.fullmatch(r"(\d+)/(\d+(?:\.\d+)?)", raw)
        if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            self.problems.append(f"{key} must look like LIMIT/SECONDS, e.g. 30/60, got {raw!r}")
            return default
        return RateLimit(int(match.group(1)), float(match.group(2)))

    def csv(self, key: str) -> tuple[str, ...]:
        raw = self.text(key)
        if raw is None:
            return ()
        return tuple(part.strip() for part in raw.split(",") if part.strip())


def load_dotenv_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from an optional ``.env`` file (the real environment wins)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def settings_from_env(
    environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
) -> Settings:
    """Build and validate :class:`Settings`; raise :class:`ConfigError` listing every problem."""
    merged: dict[str, str] = {}
    if dotenv is not None:
        merged.update(load_dotenv_file(dotenv))
    merged.update(os.environ if environ is None else environ)
    r = _Reader(merged)

    for key in sorted(k for k in merged if k.startswith("AIADMIN_") and k not in AIADMIN_KEYS):
        r.problems.append(f"{key} is not a setting AI Admin knows (check the spelling)")

    env = Environment(r.choice("AIADMIN_ENV", Environment, "development"))
    production = env is Environment.PRODUCTION
    port = r.integer("PORT", 3000, low=1, high=65535)
    log_level = (r.text("LOG_LEVEL") or "info").lower()
    if log_level not in LOG_LEVELS:
        r.problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        log_level = "info"

    jwt_secret = r.text("JWT_SECRET")
    jwt_generated = False
    if jwt_secret is None:
        if production:
            r.problems.append("JWT_SECRET is required in production (at least 32 bytes)")
        jwt_secret, jwt_generated = secrets.token_urlsafe(48), True
    elif (size := len(jwt_secret.encode())) < MIN_JWT_SECRET_BYTES:
        r.problems.append(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes, got {size}")

    admin_key = r.text("ADMIN_API_KEY")
    admin_generated = False
    if admin_key is None:
        if production:
            r.problems.append("ADMIN_API_KEY is required in production")
        admin_key, admin_generated = "adm_" + secrets.token_urlsafe(32), True
    elif len(admin_key) < 16:
        r.problems.append("ADMIN_API_KEY must be at least 16 characters")

    database_url = r.url("DATABASE_URL", ("postgres", "postgresql"))
    redis_url = r.url("REDIS_URL", ("redis", "rediss", "unix"))
    provider_default = "neonize" if production else "simulated"
    provider = WhatsAppProvider(r.choice("WHATSAPP_PROVIDER", WhatsAppProvider, provider_default))
    yclients_key = r.text("YCLIENTS_API_KEY")
    app_id_raw = r.text("YCLIENTS_APPLICATION_ID")
    app_id: int | None = None
    if app_id_raw is not None:
        app_id = r.integer("YCLIENTS_APPLICATION_ID", 0, low=1, high=2**31 - 1) or None

    if production:
        if database_url is None and r.text("DATABASE_URL") is None:
            r.problems.append("DATABASE_URL is required in production (PostgreSQL)")
        if redis_url is None and r.text("REDIS_URL") is None:
            r.problems.append("REDIS_URL is required in production")
        if provider is WhatsAppProvider.SIMULATED:
            r.problems.append(
                "WHATSAPP_PROVIDER=simulated is not allowed in production; use neonize"
            )
        if yclients_key is None:
            r.problems.append("YCLIENTS_API_KEY (the partner token) is required in production")
        if app_id is None and app_id_raw is None:
            r.problems.append("YCLIENTS_APPLICATION_ID is required in production")
        if r.text("PUBLIC_BASE_URL") is None:
            r.problems.append(
                "PUBLIC_BASE_URL is required in production (the https:// address YClients and "
                "salon admins reach us at; it goes into connect links and webhook URLs)"
            )

    store = WhatsAppStore(r.choice("AIADMIN_WHATSAPP_STORE", WhatsAppStore, "files"))
    if store is WhatsAppStore.POSTGRES and database_url is None and r.text("DATABASE_URL") is None:
        r.problems.append("AIADMIN_WHATSAPP_STORE=postgres needs DATABASE_URL (PostgreSQL)")

    cluster = r.boolean("AIADMIN_CLUSTER", False)
    if cluster and redis_url is None and r.text("REDIS_URL") is None:
        r.problems.append("AIADMIN_CLUSTER=true needs REDIS_URL (leases and pub/sub are shared)")
    if cluster and jwt_generated and not production:  # production requires it already
        r.problems.append(CLUSTER_NEEDS_SHARED_JWT)
    if cluster and provider is WhatsAppProvider.NEONIZE and store is WhatsAppStore.FILES:
        r.problems.append(CLUSTER_NEEDS_SHARED_STORE)
    yclients_base = r.url("YCLIENTS_BASE_URL", ("http", "https")) or "https://api.yclients.com"
    public_base = r.url("PUBLIC_BASE_URL", ("http", "https")) or f"http://127.0.0.1:{port}"
    # Peers forward a salon's requests there with the request's own path, query and headers.
    advertise = r.origin("AIADMIN_ADVERTISE_URL") or f"http://127.0.0.1:{port}"
    simulated_world = r.text("AIADMIN_SIMULATED_WORLD")
    if simulated_world is not None and provider is not WhatsAppProvider.SIMULATED:
        r.problems.append("AIADMIN_SIMULATED_WORLD is for WHATSAPP_PROVIDER=simulated only")
    api_rate = r.rate("AIADMIN_API_RATE_LIMIT", RateLimit(30, 60.0))
    # Production neonize sessions run in session-host processes (a Go panic kills only its
    # host): one host by default, more are started as sessions fill them.
    hosted_default = 1 if production and provider is WhatsAppProvider.NEONIZE else 0
    session_hosts = r.integer("AIADMIN_SESSION_HOSTS", hosted_default, low=0, high=256)
    if hosted_default and session_hosts == 0:
        r.problems.append(
            "AIADMIN_SESSION_HOSTS=0 would run WhatsApp (neonize) inside the server process, "
            "where one Go panic stops the whole server; use 1 or more in production"
        )
    extra_origins = r.csv("ALLOWED_ORIGINS")
    for origin in extra_origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            r.problems.append(f"ALLOWED_ORIGINS entry {origin!r} must be scheme://host[:port]")
    prefix = r.text("AIADMIN_REDIS_PREFIX") or "aiadmin:"
    if not re.fullmatch(r"[A-Za-z0-9_:.\-]{1,64}", prefix):
        r.problems.append("AIADMIN_REDIS_PREFIX may hold only letters, digits and _ : . - (max 64)")

    min_gap = r.bounded("AIADMIN_SEND_MIN_GAP", 1.0, low=0.0, high=3600.0, unit="seconds")
    settings = Settings(
        env=env,
        host=r.text("AIADMIN_HOST") or "127.0.0.1",
        port=port,
        log_level=log_level,
        jwt_secret=jwt_secret,
        jwt_secret_generated=jwt_generated,
        admin_api_key=admin_key,
        admin_api_key_generated=admin_generated,
        database_url=database_url,
        redis_url=redis_url,
        redis_password=r.text("REDIS_PASSWORD"),
        redis_prefix=prefix,
        yclients_api_key=yclients_key,
        yclients_user_token=r.text("YCLIENTS_USER_TOKEN"),
        yclients_application_id=app_id,
        yclients_base_url=yclients_base.rstrip("/"),
        whatsapp_provider=provider,
        whatsapp_sessions_path=Path(r.text("WHATSAPP_SESSIONS_PATH") or "./sessions"),
        whatsapp_store=store,
        session_hosts=session_hosts,
        sessions_per_host=r.integer("AIADMIN_SESSIONS_PER_HOST", 50, low=1, high=10_000),
        public_base_url=public_base.rstrip("/"),
        allowed_origins=DEFAULT_ORIGINS + extra_origins,
        trusted_proxies=r.csv("AIADMIN_TRUSTED_PROXIES"),
        passivate_after=r.seconds("AIADMIN_PASSIVATE_AFTER", 600.0),
        restore_concurrency=r.integer("AIADMIN_RESTORE_CONCURRENCY", 8, low=1, high=1000),
        rebalance_concurrency=r.integer("AIADMIN_REBALANCE_CONCURRENCY", 32, low=1, high=1000),
        sync_interval=r.seconds("AIADMIN_SYNC_INTERVAL", 3600.0),
        retention_days=r.bounded("AIADMIN_RETENTION_DAYS", 30.0, low=1.0, high=3650.0, unit="days"),
        audit_retention_days=r.bounded(
            "AIADMIN_AUDIT_RETENTION_DAYS", 180.0, low=91.0, high=3650.0, unit="days"
        ),
        max_body_bytes=r.integer("AIADMIN_MAX_BODY_BYTES", 64 * 1024, low=1024, high=16 * 2**20),
        request_timeout=r.bounded(
            "AIADMIN_REQUEST_TIMEOUT", 5.0, low=0.1, high=300.0, unit="seconds"
        ),
        storage_timeout=r.bounded(
            "AIADMIN_STORAGE_TIMEOUT", 4.0, low=0.1, high=300.0, unit="seconds"
        ),
        header_timeout=r.bounded(
            "AIADMIN_HEADER_TIMEOUT", 10.0, low=0.1, high=600.0, unit="seconds"
        ),
        shutdown_grace=r.bounded(
            "AIADMIN_SHUTDOWN_GRACE", 10.0, low=0.5, high=600.0, unit="seconds"
        ),
        demo=r.boolean("AIADMIN_DEMO", False),
        cluster=cluster,
        member_ttl=r.bounded("AIADMIN_MEMBER_TTL", 6.0, low=1.0, high=3600.0, unit="seconds"),
        advertise_url=advertise.rstrip("/"),
        simulated_world=simulated_world,
        api_rate_limit=api_rate,
        admin_rate_limit=r.rate("AIADMIN_ADMIN_RATE_LIMIT", admin_rate_default(api_rate)),
        salon_rate_limit=r.rate(
            "AIADMIN_SALON_RATE_LIMIT", admin_rate_default(api_rate, SALON_RATE_LIMIT)
        ),
        ws_rate_limit=r.rate("AIADMIN_WS_RATE_LIMIT", RateLimit(5, 60.0)),
        redirect_rate_limit=r.rate("AIADMIN_REDIRECT_RATE_LIMIT", RateLimit(10, 60.0)),
        pacing=SendPacing(
            min_gap=min_gap,
            # The jitter scales with the gap (1 s gap: up to 2 s more), so a gap of 0 (tests,
            # demos) sends without pauses; only the per-minute cap remains.
            jitter=2.0 * min_gap,
            per_minute=r.integer("AIADMIN_SEND_PER_MINUTE", 20, low=1, high=10_000),
        ),
        assistant=AssistantPolicy(
            wait=r.bounded("AIADMIN_ASSISTANT_WAIT", 2.0, low=0.0, high=60.0, unit="seconds"),
            handoff_minutes=r.bounded(
                "AIADMIN_HANDOFF_MINUTES", 120.0, low=1.0, high=30 * 24 * 60.0, unit="minutes"
            ),
            staff_silence_minutes=r.bounded(
                "AIADMIN_STAFF_SILENCE_MINUTES", 60.0, low=0.0, high=30 * 24 * 60.0, unit="minutes"
            ),
            idle_days=r.bounded(
                "AIADMIN_CONVERSATION_IDLE_DAYS", 14.0, low=1.0, high=3650.0, unit="days"
            ),
        ),
        llm=LlmSettings(
            base_url=r.api_base("AIADMIN_LLM_BASE_URL"),
            model=r.text("AIADMIN_LLM_MODEL") or "",
            api_key=r.text("AIADMIN_LLM_API_KEY"),
            timeout=r.bounded("AIADMIN_LLM_TIMEOUT", 8.0, low=0.1, high=120.0, unit="seconds"),
            max_daily_tokens=r.integer(
                "AIADMIN_LLM_MAX_DAILY_TOKENS", 1_000_000, low=1, high=1_000_000_000
            ),
            models=r.csv("AIADMIN_LLM_MODELS"),
        ),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings
