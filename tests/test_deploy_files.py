"""compose.yaml, the Dockerfile and constraints.txt, checked without a Docker engine.

compose.yaml is parsed with PyYAML; each app service's command is run here as the container
would run it (migrate for real on a scratch database, gunicorn with --check-config, the worker's
commands with --help), so a renamed command or option fails this test, not a deploy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from server_support import ROOT, GunicornProcess, process_env

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP_SERVICES = ("migrate", "web", "worker")


# ${NAME:-default} and ${NAME:?message}, as compose interpolates them from .env.
_VARIABLE = re.compile(r"\$\{\w+(?::([-?])([^}]*))?\}")


def interpolated(value) -> str:
    """A compose value as an empty .env leaves it: a default when it has one, else "" (the
    required values are set by container_env)."""
    return _VARIABLE.sub(lambda m: m.group(2) if m.group(1) == "-" else "", str(value))


def container_env(tmp_path: Path, service: str) -> dict[str, str]:
    """The service's environment from compose.yaml, pointed at scratch SQLite files."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("QUEUE_", "DATABASE_", "PROMETHEUS_", "SIMULATOR_", "SENTRY_"))}
    env.update({key: interpolated(value)
                for key, value in COMPOSE["services"][service]["environment"].items()})
    env.update({
        "FLASK_APP": "wsgi",  # the image's ENV
        "DATABASE_URL": f"sqlite:///{tmp_path / 'compose.sqlite3'}",
        "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
        # Production refuses a short or predictable key.
        "SECRET_KEY": "9c1f4e7a2b8d0f3e6a5c7b9d1e2f4a6c8b0d3e5f7a9c1b2d",
        "CREDENTIALS_KEYS": os.environ["CREDENTIALS_KEYS"],
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        # The image has flask and gunicorn on PATH; here they are in .venv/bin.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_compose_has_the_production_layout():
    services = COMPOSE["services"]
    assert set(services) == {"migrate", "web", "worker", "db", "redis"}
    assert set(COMPOSE["volumes"]) == {"pgdata", "redisdata", "metrics"}
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["SKIP_MIGRATIONS"] == "1"
        assert "stop_grace_period" in services[name]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    # The worker has a check of its own; the web keeps the image's (/healthz).
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "flask", "queue", "check-worker"]
    assert "healthcheck" not in services["web"]
    # Debian-based images with a pinned release.
    for name in ("db", "redis"):
        assert re.search(r":\d+-(bookworm|trixie)$", services[name]["image"]), services[name]["image"]


def test_migrate_service_command_migrates_a_fresh_database(tmp_path):
    command = COMPOSE["services"]["migrate"]["command"]
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_old-1.db").write_bytes(b"stale")
    done = run(command, container_env(tmp_path, "migrate"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list((tmp_path / "metrics").glob("*.db"))  # last run's counters are gone
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{tmp_path / 'compose.sqlite3'}")
    assert "publish_logs" in inspect(engine).get_table_names()
    engine.dispose()


def test_web_and_worker_commands_load_the_app(tmp_path):
    web = COMPOSE["services"]["web"]["command"]
    done = run([*web, "--check-config"], container_env(tmp_path, "web"))
    assert done.returncode == 0, done.stdout + done.stderr
    worker = COMPOSE["services"]["worker"]["command"]
    for command in ([*worker, "--help"], [*COMPOSE["services"]["worker"]["healthcheck"]["test"][1:],
                                          "--help"]):
        done = run(command, container_env(tmp_path, "worker"))
        assert done.returncode == 0, done.stdout + done.stderr


def test_worker_healthcheck_fails_without_a_worker(tmp_path):
    check = COMPOSE["services"]["worker"]["healthcheck"]["test"][1:]
    env = container_env(tmp_path, "worker")
    assert run(["flask", "db", "upgrade"], env).returncode == 0
    done = run(check, env)
    assert done.returncode == 1 and "no worker on" in done.stderr


def test_dockerfile_pins_debian_installs_constraints_and_stops_gracefully():
    assert re.search(r"^FROM python:3\.11-slim-(bookworm|trixie)$", DOCKERFILE, re.M)
    assert re.search(r"^COPY requirements\.txt constraints\.txt", DOCKERFILE, re.M)
    assert "pip install -r requirements.txt -c constraints.txt" in DOCKERFILE
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, re.M)


def healthcheck_command() -> list[str]:
    match = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$", DOCKERFILE, re.M)
    assert match, "the Dockerfile has a HEALTHCHECK with an exec-form CMD"
    return json.loads(match.group(1))


def test_dockerfile_healthcheck_passes_against_the_web_and_fails_without_it(
        app, database_uri, tmp_path):
    command = healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1]
    command = [sys.executable, *command[1:]]
    env = process_env(app, database_uri)
    with GunicornProcess(env, tmp_path / "gunicorn.log", workers=1, threads=2) as server:
        check_env = dict(os.environ, GUNICORN_BIND=f"0.0.0.0:{server.port}")
        assert subprocess.run(command, env=check_env, timeout=30).returncode == 0
    assert subprocess.run(command, env=check_env, timeout=30,
                          capture_output=True).returncode != 0


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-dev.txt"])
def test_constraints_pin_every_direct_requirement(requirements):
    done = subprocess.run([sys.executable, "scripts/check_constraints.py", requirements], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
