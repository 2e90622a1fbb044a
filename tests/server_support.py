"""gunicorn (the real web server, with gunicorn.conf.py) as a subprocess of a test, on the test's
database and queue, and the means to SIGKILL one of its workers; the environment every subprocess
of a test (gunicorn, `flask worker`) is given (`process_env`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The app's settings as environment variables: the test runner's own are never passed on.
_APP_SETTINGS = ("SIMULATOR_", "PUBLISH_", "RETRY_", "REQUEUE_", "QUEUE_", "WORKER_", "LOG_",
                 "METRICS_", "PROMETHEUS_", "GUNICORN_", "WEB_SWEEP_")


def process_env(app, database_url: str, forward: Iterable[str] = (), **extra) -> dict[str, str]:
    """The environment of a subprocess of a test (gunicorn, `flask worker`) that serves the test
    app's database, queue and keys, its simulated calls instant and successful; `forward` names
    settings copied from the test app as they are, `extra` sets more (both win over the rest)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_APP_SETTINGS)}
    env.update({
        "FLASK_APP": "wsgi",
        "DATABASE_URL": database_url,
        "QUEUE_URL": app.config["QUEUE_URL"],
        "CREDENTIALS_KEYS": ",".join(app.config["CREDENTIALS_KEYS"]),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SIMULATOR_MIN_DELAY": "0", "SIMULATOR_MAX_DELAY": "0", "SIMULATOR_FAILURE_RATE": "0",
        "PYTHONUNBUFFERED": "1",
    })
    for key in forward:
        value = app.config[key]
        env[key] = ",".join(value) if isinstance(value, list | tuple) else str(value)
    env.update({key: str(value) for key, value in extra.items()})
    return env


class GunicornProcess:
    """`gunicorn -c gunicorn.conf.py wsgi:app` with one worker, in its own session."""

    def __init__(self, app, database_url: str, log_path: Path, **settings):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = process_env(app, database_url, forward=("OUTCOME_JOURNAL_DIR",),
                          GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_WORKERS=1,
                          GUNICORN_THREADS=4, GUNICORN_ACCESSLOG="", **settings)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_until_up()

    def wait_until_up(self, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not come up:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def kill_worker(self) -> int:
        """SIGKILL the (only) web worker, as the OOM killer would; gunicorn starts another."""
        [pid] = self.worker_pids()
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
