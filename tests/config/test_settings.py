"""Settings: defaults, validation one line per problem, production refusals, no secrets in repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import config
from config import (
    ConfigError,
    Environment,
    RateLimit,
    WhatsAppProvider,
    WhatsAppStore,
    settings_from_env,
)

STRONG = "x" * 40
PRODUCTION_OK = {
    "AIADMIN_ENV": "production",
    "JWT_SECRET": STRONG,
    "ADMIN_API_KEY": "admin-key-0123456789",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1/aiadmin",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WHATSAPP_PROVIDER": "neonize",
    "YCLIENTS_API_KEY": "partner-token",
    "YCLIENTS_APPLICATION_ID": "123",
    "PUBLIC_BASE_URL": "https://ai-admin.app",
}


def load(env: dict[str, str]) -> config.Settings:
    return settings_from_env(env, dotenv=None)


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env)
    return info.value.problems


def test_exports_are_complete() -> None:
    public = {n for n in dir(config) if not n.startswith("_")}
    assert public - {"annotations"} <= set(config.__all__) | {"annotations"}
    for name in config.__all__:
        assert hasattr(config, name)


def test_development_defaults_need_nothing() -> None:
    s = load({})
    assert s.env is Environment.DEVELOPMENT
    assert s.port == 3000
    assert s.database_url is None and s.redis_url is None
    assert s.whatsapp_provider is WhatsAppProvider.SIMULATED
    assert s.jwt_secret_generated and len(s.jwt_secret.encode()) >= 32
    assert s.admin_api_key_generated
    assert s.public_base_url == "http://127.0.0.1:3000"
    assert s.api_rate_limit == RateLimit(30, 60.0)
    assert s.ws_rate_limit == RateLimit(5, 60.0)
    assert s.redirect_rate_limit == RateLimit(10, 60.0)


def test_redirect_rate_limit_is_read() -> None:
    """The install redirect's own budget (salons looked up per IP per window)."""
    assert load({"AIADMIN_REDIRECT_RATE_LIMIT": "3/30"}).redirect_rate_limit == RateLimit(3, 30.0)


def test_seed_names_are_read() -> None:
    s = load(
        {
            "PORT": "8080",
            "LOG_LEVEL": "DEBUG",
            "REDIS_URL": "redis://127.0.0.1:6379/2",
            "WHATSAPP_SESSIONS_PATH": "/tmp/wa",
            "ALLOWED_ORIGINS": "https://example.org, http://localhost:5173",
        }
    )
    assert s.port == 8080
    assert s.log_level == "debug"
    assert s.redis_url == "redis://127.0.0.1:6379/2"
    assert s.whatsapp_sessions_path == Path("/tmp/wa")
    assert "https://example.org" in s.allowed_origins
    assert "https://ai-admin.app" in s.allowed_origins


def test_each_invalid_value_is_one_clear_line() -> None:
    lines = problems(
        {
            "PORT": "eighty",
            "LOG_LEVEL": "loud",
            "WHATSAPP_PROVIDER": "baileys",
            "DATABASE_URL": "mysql://x",
            "AIADMIN_API_RATE_LIMIT": "lots",
        }
    )
    assert len(lines) == 5
    assert any(line.startswith("PORT must be an integer") for line in lines)
    assert any(line.startswith("LOG_LEVEL must be one of") for line in lines)
    assert any("WHATSAPP_PROVIDER must be one of neonize, simulated" in line for line in lines)
    assert any(line.startswith("DATABASE_URL must be a URL") for line in lines)
    assert any(line.startswith("AIADMIN_API_RATE_LIMIT must look like") for line in lines)


def test_unknown_aiadmin_keys_are_rejected() -> None:
    lines = problems({"AIADMIN_SESION_HOSTS": "2"})
    assert lines == ["AIADMIN_SESION_HOSTS is not a setting AI Admin knows (check the spelling)"]


def test_short_jwt_secret_is_refused_everywhere() -> None:
    assert problems({"JWT_SECRET": "short"}) == ["JWT_SECRET must be at least 32 bytes, got 5"]


def test_production_with_everything_starts() -> None:
    s = load(PRODUCTION_OK)
    assert s.production
    assert s.whatsapp_provider is WhatsAppProvider.NEONIZE
    assert s.yclients_application_id == 123


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("JWT_SECRET", "JWT_SECRET is required in production"),
        ("DATABASE_URL", "DATABASE_URL is required in production"),
        ("REDIS_URL", "REDIS_URL is required in production"),
        ("YCLIENTS_API_KEY", "YCLIENTS_API_KEY (the partner token) is required in production"),
        ("YCLIENTS_APPLICATION_ID", "YCLIENTS_APPLICATION_ID is required in production"),
        ("ADMIN_API_KEY", "ADMIN_API_KEY is required in production"),
    ],
)
def test_production_refuses_each_missing_requirement(missing: str, expected: str) -> None:
    env = {k: v for k, v in PRODUCTION_OK.items() if k != missing}
    lines = problems(env)
    assert len(lines) == 1
    assert lines[0].startswith(expected)


def test_production_refuses_simulated_whatsapp() -> None:
    lines = problems({**PRODUCTION_OK, "WHATSAPP_PROVIDER": "simulated"})
    assert lines == ["WHATSAPP_PROVIDER=simulated is not allowed in production; use neonize"]


def test_production_refuses_short_secret() -> None:
    assert problems({**PRODUCTION_OK, "JWT_SECRET": "s" * 31}) == [
        "JWT_SECRET must be at least 32 bytes, got 31"
    ]


def test_settings_are_frozen_and_repr_hides_secrets() -> None:
    s = load({"JWT_SECRET": STRONG, "ADMIN_API_KEY": "admin-key-0123456789"})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
    assert STRONG not in repr(s)
    assert "admin-key" not in repr(s)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=4000\nLOG_LEVEL=warning\n")
    s = settings_from_env({"PORT": "5000"}, dotenv=dotenv)
    assert s.port == 5000
    assert s.log_level == "warning"


def test_origin_allow_list() -> None:
    """The settings give the list; ``web._security.origin_allowed`` (the one check the
    WebSocket and CORS use) adds the ``https://n<digits>.yclients.com`` pattern."""
    from web._security import origin_allowed

    s = load({"ALLOWED_ORIGINS": "https://partner.example"})

    def allowed(origin: str) -> bool:
        return origin_allowed(origin, s.allowed_origins)

    assert allowed("https://ai-admin.app")
    assert allowed("https://n123.yclients.com")
    assert allowed("https://partner.example")
    assert not allowed("https://evil.example")
    assert not allowed("https://n12x.yclients.com")
    assert not allowed("https://n1.yclients.com.evil.example")


def test_whatsapp_store_is_files_unless_postgres_with_a_database() -> None:
    assert load({}).whatsapp_store is WhatsAppStore.FILES
    assert problems({"AIADMIN_WHATSAPP_STORE": "postgres"}) == [
        "AIADMIN_WHATSAPP_STORE=postgres needs DATABASE_URL (PostgreSQL)"
    ]
    env = {"AIADMIN_WHATSAPP_STORE": "postgres", "DATABASE_URL": "postgresql://u:pw@db:5432/ai"}
    assert load(env).whatsapp_store is WhatsAppStore.POSTGRES
    [problem] = problems({"AIADMIN_WHATSAPP_STORE": "sqlite"})
    assert "AIADMIN_WHATSAPP_STORE" in problem and "postgres" in problem


def test_cluster_mode_needs_redis() -> None:
    assert problems({"AIADMIN_CLUSTER": "true", "JWT_SECRET": STRONG}) == [
        "AIADMIN_CLUSTER=true needs REDIS_URL (leases and pub/sub are shared)"
    ]
    s = load(
        {"AIADMIN_CLUSTER": "true", "REDIS_URL": "redis://127.0.0.1:6379/0", "JWT_SECRET": STRONG}
    )
    assert s.cluster
    assert not load({}).cluster


def test_cluster_mode_needs_a_jwt_secret_every_process_shares() -> None:
    """A generated JWT_SECRET differs per process: JWTs and signed forwarded requests would
    not verify across them. The refusal says why and what to set, never a secret."""
    redis = {"AIADMIN_CLUSTER": "true", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    [problem] = problems(redis)
    assert problem.startswith("AIADMIN_CLUSTER=true needs JWT_SECRET set")
    assert "the same in every process" in problem and "forwarded" in problem
    assert load({**redis, "JWT_SECRET": STRONG}).cluster
    # A short one is refused for its length, as in one process (the value is not echoed).
    [short] = problems({**redis, "JWT_SECRET": "sekrit-value"})
    assert short.startswith("JWT_SECRET must be at least 32 bytes") and "sekrit" not in short
    # One process may generate its own.
    assert load({"REDIS_URL": "redis://127.0.0.1:6379/0"}).jwt_secret_generated
    # Production requires JWT_SECRET anyway: said once.
    production = {**PRODUCTION_OK, "AIADMIN_CLUSTER": "true", "AIADMIN_WHATSAPP_STORE": "postgres"}
    del production["JWT_SECRET"]
    assert problems(production) == ["JWT_SECRET is required in production (at least 32 bytes)"]


def test_the_advertised_url_is_a_base_url_the_peers_can_forward_to() -> None:
    """Peers forward a salon's requests to ``AIADMIN_ADVERTISE_URL`` with the request's own
    path and query: one that is not scheme://host[:port] (a bad port, a path or query that
    would be dropped, credentials that would replace the client's Authorization) is refused at
    start, without echoing it, instead of failing every forwarded request."""
    redis = {
        "AIADMIN_CLUSTER": "true",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "JWT_SECRET": STRONG,
    }
    for good in ("http://10.0.0.5:3001", "https://node-1.internal/", "http://[::1]:3001"):
        assert load({**redis, "AIADMIN_ADVERTISE_URL": good}).advertise_url == good.rstrip("/")
    for bad in (
        "http://10.0.0.5:port",
        "http://10.0.0.5:99999",
        "http://10.0.0.5:3001/api",
        "http://10.0.0.5:3001?x=1",
        "http://10.0.0.5:3001#top",
        "http://user:s3cret@10.0.0.5:3001",
        "http://",
        "http://bad host:3001",
    ):
        [problem] = problems({**redis, "AIADMIN_ADVERTISE_URL": bad})
        assert problem.startswith("AIADMIN_ADVERTISE_URL must be scheme://host[:port]"), bad
        assert "s3cret" not in problem


def test_cluster_mode_refuses_a_whatsapp_store_that_cannot_move() -> None:
    """neonize in cluster mode needs its credentials and sent-message ledger in PostgreSQL: the
    default ``files`` store stays on one machine, so the refusal says why and what to set."""
    cluster = {
        "AIADMIN_CLUSTER": "true",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "JWT_SECRET": STRONG,
        "WHATSAPP_PROVIDER": "neonize",
        "DATABASE_URL": "postgresql://u:pw@db:5432/ai",
    }
    [problem] = problems(cluster)
    assert "AIADMIN_WHATSAPP_STORE=postgres" in problem
    assert "cannot move between machines" in problem
    assert problems({**cluster, "AIADMIN_WHATSAPP_STORE": "files"}) == [problem]
    assert load({**cluster, "AIADMIN_WHATSAPP_STORE": "postgres"}).whatsapp_store is (
        WhatsAppStore.POSTGRES
    )
    production = {**PRODUCTION_OK, "AIADMIN_CLUSTER": "true"}
    assert problems(production) == [problem]  # production's default provider is neonize
    assert load({**production, "AIADMIN_WHATSAPP_STORE": "postgres"}).cluster
    # One process keeps the files default; the simulated provider stores nothing in files.
    assert load({k: v for k, v in cluster.items() if k != "AIADMIN_CLUSTER"}).whatsapp_store is (
        WhatsAppStore.FILES
    )
    assert load({**cluster, "WHATSAPP_PROVIDER": "simulated"}).cluster


def test_assistant_settings_default_and_read() -> None:
    s = load({})
    assert s.assistant == config.AssistantPolicy(
        wait=2.0, handoff_minutes=120.0, staff_silence_minutes=60.0, idle_days=14.0
    )
    s = load(
        {
            "AIADMIN_ASSISTANT_WAIT": "0.4",
            "AIADMIN_HANDOFF_MINUTES": "30",
            "AIADMIN_STAFF_SILENCE_MINUTES": "0",
            "AIADMIN_CONVERSATION_IDLE_DAYS": "7",
        }
    )
    assert s.assistant == config.AssistantPolicy(
        wait=0.4, handoff_minutes=30.0, staff_silence_minutes=0.0, idle_days=7.0
    )


def test_assistant_settings_are_validated_one_line_each() -> None:
    lines = problems(
        {
            "AIADMIN_ASSISTANT_WAIT": "soon",
            "AIADMIN_HANDOFF_MINUTES": "0",
            "AIADMIN_STAFF_SILENCE_MINUTES": "-5",
            "AIADMIN_CONVERSATION_IDLE_DAYS": "nan",
        }
    )
    assert sorted(lines) == [
        "AIADMIN_ASSISTANT_WAIT must be a number of seconds, got 'soon'",
        "AIADMIN_CONVERSATION_IDLE_DAYS must be between 1 and 3650 days, got nan",
        "AIADMIN_HANDOFF_MINUTES must be between 1 and 43200 minutes, got 0",
        "AIADMIN_STAFF_SILENCE_MINUTES must be between 0 and 43200 minutes, got -5",
    ]
    assert problems({"AIADMIN_ASSISTANT_WAIT": "61"}) == [
        "AIADMIN_ASSISTANT_WAIT must be between 0 and 60 seconds, got 61"
    ]


def test_send_min_gap_zero_turns_pacing_gaps_off() -> None:
    s = load({"AIADMIN_SEND_MIN_GAP": "0"})
    assert s.pacing.min_gap == 0.0 and s.pacing.jitter == 0.0
    default = load({}).pacing
    assert (default.min_gap, default.jitter, default.per_minute) == (1.0, 2.0, 20)
    assert problems({"AIADMIN_SEND_MIN_GAP": "-1"}) == [
        "AIADMIN_SEND_MIN_GAP must be between 0 and 3600 seconds, got -1"
    ]


def test_a_shared_simulated_world_is_for_the_simulated_whatsapp_only() -> None:
    assert load({}).simulated_world is None
    assert load({"AIADMIN_SIMULATED_WORLD": "/tmp/w.sock"}).simulated_world == "/tmp/w.sock"
    assert problems({"AIADMIN_SIMULATED_WORLD": "/tmp/w.sock", "WHATSAPP_PROVIDER": "neonize"}) == [
        "AIADMIN_SIMULATED_WORLD is for WHATSAPP_PROVIDER=simulated only"
    ]


def test_every_setting_read_from_the_environment_is_a_known_key() -> None:
    """A documented ``AIADMIN_*`` setting that is read but missing from ``AIADMIN_KEYS`` would
    stop the server at start as "not a setting AI Admin knows"."""
    source = (Path(config.__file__).parent / "_settings.py").read_text()
    read = set(re.findall(r'r\.\w+\(\s*"(AIADMIN_[A-Z_]+)"', source))
    assert read and read <= config._settings.AIADMIN_KEYS, read - config._settings.AIADMIN_KEYS
    assert load({"AIADMIN_RESTORE_CONCURRENCY": "32"}).restore_concurrency == 32


def test_the_rebalance_concurrency_is_a_setting() -> None:
    assert load({}).rebalance_concurrency == 32
    assert load({"AIADMIN_REBALANCE_CONCURRENCY": "64"}).rebalance_concurrency == 64
    assert problems({"AIADMIN_REBALANCE_CONCURRENCY": "0"})
