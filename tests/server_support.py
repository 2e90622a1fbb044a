"""The subprocesses of a test: the environment each is given (`process_env`: the test's
database, queue and keys), and gunicorn (the real web server, with gunicorn.conf.py) on it, with
the means to SIGKILL one of its workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

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
    """`gunicorn -c gunicorn.conf.py wsgi:app` in its own session, with `env` (see process_env):
    up, answering /healthz, once made; stopped with SIGTERM by stop() or at the end of a `with`."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1, threads: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(env, GUNICORN_BIND=f"127.0.0.1:{self.port}", GUNICORN_WORKERS=str(workers),
                     GUNICORN_THREADS=str(threads)))
        try:
            self.wait_until_up()
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> GunicornProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_until_up(self, timeout: float = 60) -> None:
        """Wait until a worker answers /healthz (after start-up, or after a worker was killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.output()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout:g} s:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def kill_worker(self) -> int:
        """SIGKILL the (only) web worker, as the OOM killer would; gunicorn starts another."""
        [pid] = self.worker_pids()
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        """SIGTERM, and SIGKILL for the whole session if it is not gone within 40 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, body bytes) of one request on a new connection."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Connection": "close", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
