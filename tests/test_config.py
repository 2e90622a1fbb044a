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
    "SECRET_KEY": "s" * 64,
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


@pytest.mark.parametrize(("name", "value"), [
    ("SIMULATOR_FAILURE_RATE", "often"), ("SIMULATOR_SEED", "1.5"), ("INSTAGRAM_HASHTAGS_MAX", "many"),
])
def test_malformed_numbers_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_config(tmp_path, {name: value})
