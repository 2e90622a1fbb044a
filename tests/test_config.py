"""Settings from the environment: embedded defaults, and a production config that refuses to start
without what it needs."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from dashboard import create_app
from dashboard.config import PRODUCTION_REQUIRED, ConfigError, load_config

KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "DASHBOARD_ENV": "production",
    "DATABASE_URL": "postgresql://dash:pw@db.internal:5432/dashboard",
    "SECRET_KEY": "4f1c9e0b7a2d8e6f3b5a9c1d0e7f2a4b6c8d0e1f3a5b7c9d",
    "CREDENTIALS_KEYS": KEY,
    "QUEUE_URL": "redis://queue.internal:6379/0",
}


@pytest.mark.parametrize("missing", [
    ("DATABASE_URL",), ("SECRET_KEY",), ("CREDENTIALS_KEYS",), ("QUEUE_URL",),
    ("DATABASE_URL", "CREDENTIALS_KEYS"), PRODUCTION_REQUIRED,
])
def test_production_names_every_missing_variable(tmp_path, missing):
    env = {name: value for name, value in PRODUCTION.items() if name not in missing}
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, env)
    message = str(refused.value)
    for name in PRODUCTION_REQUIRED:
        assert (name in message) == (name in missing), message
    assert not any(tmp_path.iterdir()), "a refused config must not generate instance secrets"


def test_production_treats_empty_values_as_missing(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(tmp_path, {**PRODUCTION, "SECRET_KEY": ""})


def test_create_app_refuses_a_production_environment_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ENV", "production")
    for name in PRODUCTION_REQUIRED:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert all(name in str(refused.value) for name in PRODUCTION_REQUIRED)


def test_production_config(tmp_path):
    config = load_config(tmp_path, {**PRODUCTION, "CREDENTIALS_KEYS": f"{KEY}, {Fernet.generate_key().decode()}"})
    assert config["DASHBOARD_ENV"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://dash:pw@db.internal:5432/dashboard"
    assert config["SECRET_KEY"] == PRODUCTION["SECRET_KEY"]
    assert len(config["CREDENTIALS_KEYS"]) == 2 and config["CREDENTIALS_KEYS"][0] == KEY
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["QUEUE_URL"] == PRODUCTION["QUEUE_URL"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("keys", ["not-a-fernet-key", f"{KEY},short", " , "])
def test_unusable_credentials_keys_are_refused_at_start(tmp_path, keys):
    with pytest.raises(ConfigError, match="CREDENTIALS_KEYS") as refused:
        load_config(tmp_path, {**PRODUCTION, "CREDENTIALS_KEYS": keys})
    assert KEY not in str(refused.value)


def test_development_needs_no_variable(tmp_path):
    config = load_config(tmp_path, {})

    assert config["DASHBOARD_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"
    assert config["SESSION_COOKIE_SECURE"] is False
    for name in ("secret_key", "credentials.key"):
        path = tmp_path / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(config["CREDENTIALS_KEYS"][0])  # a usable generated key
    again = load_config(tmp_path, {})
    assert (again["SECRET_KEY"], again["CREDENTIALS_KEYS"]) == (config["SECRET_KEY"], config["CREDENTIALS_KEYS"])


def test_simulator_and_platform_limits_are_settings(tmp_path):
    config = load_config(tmp_path, {
        "SIMULATOR_MIN_DELAY": "0", "SIMULATOR_MAX_DELAY": "0.5", "SIMULATOR_FAILURE_RATE": "1",
        "SIMULATOR_SEED": "7", "INSTAGRAM_CAPTION_MAX_CHARS": "2000", "TIKTOK_POSTS_PER_24H": "10",
    })
    assert (config["SIMULATOR_MIN_DELAY"], config["SIMULATOR_MAX_DELAY"]) == (0.0, 0.5)
    assert (config["SIMULATOR_FAILURE_RATE"], config["SIMULATOR_SEED"]) == (1.0, 7)
    assert config["PLATFORM_LIMITS"]["instagram"]["caption_max_chars"] == 2000
    assert config["PLATFORM_LIMITS"]["instagram"]["hashtags_max"] == 30
    assert config["PLATFORM_LIMITS"]["tiktok"]["posts_per_24h"] == 10
    assert config["PLATFORM_LIMITS"]["youtube"]["title_max_chars"] == 100


def test_defaults_follow_platforms_md(tmp_path):
    config = load_config(tmp_path, {})
    assert (config["SIMULATOR_MIN_DELAY"], config["SIMULATOR_MAX_DELAY"]) == (0.1, 0.3)
    assert config["SIMULATOR_FAILURE_RATE"] == 0.1
    limits = config["PLATFORM_LIMITS"]
    assert (limits["instagram"]["caption_max_chars"], limits["instagram"]["hashtags_max"]) == (2200, 30)
    assert limits["tiktok"]["caption_max_chars"] == 2200
    assert limits["youtube"]["description_max_bytes"] == 5000


def test_pooled_connections_are_checked_before_use_on_a_database_server_only(tmp_path):
    assert load_config(tmp_path, PRODUCTION)["DATABASE_PRE_PING"] is True
    assert load_config(tmp_path, {})["DATABASE_PRE_PING"] is False  # SQLite: no server to drop one
    assert load_config(tmp_path, {**PRODUCTION, "DATABASE_PRE_PING": "0"})["DATABASE_PRE_PING"] is False
    assert load_config(tmp_path, PRODUCTION)["DATABASE_PING_IDLE_SECONDS"] == 60.0


def test_a_database_servers_pool_keeps_thirty_connections_and_may_open_ten_more(tmp_path):
    from dashboard.extensions import db

    def pool_of(settings):
        app = create_app({"TESTING": True, **settings})
        with app.app_context():
            return db.engine.pool

    server = {"SQLALCHEMY_DATABASE_URI": "postgresql://dashboard@db.internal:5432/dashboard"}
    pool = pool_of(server)
    assert (pool.size(), pool._max_overflow) == (30, 10)  # SQLAlchemy's own are 5 and 10
    pool = pool_of({**server, "DATABASE_POOL_SIZE": 3, "DATABASE_MAX_OVERFLOW": 0})
    assert (pool.size(), pool._max_overflow) == (3, 0)
    # SQLite's connections are cheap and an in-memory database's pool takes no size: not applied.
    assert type(pool_of({"SQLALCHEMY_DATABASE_URI": "sqlite://"})).__name__ == "StaticPool"


@pytest.mark.parametrize(("name", "value"), [
    ("SIMULATOR_FAILURE_RATE", "often"), ("SIMULATOR_SEED", "1.5"), ("INSTAGRAM_HASHTAGS_MAX", "many"),
    ("SENTRY_TRACES_SAMPLE_RATE", "1.5"), ("SENTRY_TRACES_SAMPLE_RATE", "-0.1"),
])
def test_malformed_numbers_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(tmp_path, {name: value})


@pytest.mark.parametrize("secret", ["s" * 64, "short-but-random-9f2", "password" * 6])
def test_production_refuses_a_short_or_predictable_secret_key(tmp_path, secret):
    with pytest.raises(ConfigError, match="SECRET_KEY is too short or too predictable") as refused:
        load_config(tmp_path, {**PRODUCTION, "SECRET_KEY": secret})
    assert secret not in str(refused.value)


def test_an_unknown_dashboard_env_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="DASHBOARD_ENV must be one of development, production, got 'prod'"):
        load_config(tmp_path, {**PRODUCTION, "DASHBOARD_ENV": "prod"})


@pytest.mark.parametrize("name, value", [
    ("WORKER_THREADS", "0"), ("SIMULATOR_FAILURE_RATE", "10"), ("PUBLISH_TIMEOUT_SECONDS", "-1"),
    ("RETRY_BASE_DELAY", "nan"), ("LOGIN_THROTTLE_MAX_FAILURES", "0"), ("TRUSTED_PROXIES", "-1"),
    ("SESSION_IDLE_TIMEOUT_SECONDS", "1"), ("INSTAGRAM_CAPTION_MAX_CHARS", "-5"),
    ("PROVIDER_HTTP_TIMEOUT", "inf"), ("MEDIA_UPLOAD_CHUNK_BYTES", "0"), ("MEDIA_ORPHAN_GRACE_SECONDS", "60"),
    ("WORKER_SHUTDOWN_TIMEOUT", "-1"), ("IDEMPOTENCY_KEY_TTL_SECONDS", "0"),
    ("WEB_SWEEP_INTERVAL_SECONDS", "-5"), ("QUEUE_WATCH_INTERVAL_SECONDS", "-1"),
    ("DATABASE_PING_IDLE_SECONDS", "-1"), ("DATABASE_POOL_SIZE", "0"), ("DATABASE_MAX_OVERFLOW", "-1"),
])
def test_out_of_range_numbers_refuse_to_start_naming_the_setting(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(tmp_path, {**PRODUCTION, name: value})


def test_trusted_proxies_make_the_client_address_the_real_one(tmp_path, monkeypatch):
    from flask import request

    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DASHBOARD_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    seen = {}

    def build(proxies):
        monkeypatch.setenv("TRUSTED_PROXIES", proxies)
        app = create_app({"TESTING": True})
        app.add_url_rule("/whoami", "whoami", lambda: seen.setdefault(proxies, request.remote_addr) or "")
        return app

    for proxies in ("0", "1"):
        build(proxies).test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.7"},
                                         environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert seen == {"0": "10.0.0.2", "1": "203.0.113.7"}
