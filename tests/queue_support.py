"""Helpers for the queue tests: a real Huey consumer (in-process threads or a `flask worker`
subprocess), polling with a deadline, and reads that never keep a transaction open.

The test thread shares one SQLAlchemy session with the requests it makes through the test
client (they reuse the test's app context). On SQLite a transaction holds the write lock from its
first write to its end, and a read-only one keeps reading its old snapshot, so a transaction left
open by the test would stall the workers or show stale rows: every helper here ends its
transaction (`db.session.remove()`) before returning.

The fixtures built on these (`api`, `start_worker`, `worker`, `worker_process` and the
snapshot `make_clip`/`make_account`) live in tests/workers/conftest.py, beside the tests that use
them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC
from pathlib import Path

from sqlalchemy import select

from dashboard.extensions import db as _db
from dashboard.ledger import events_for
from dashboard.models import LedgerEvent, PublishLog
from dashboard.queue import make_huey, register_all_tasks

from server_support import ROOT, process_env

FLASK = Path(sys.executable).with_name("flask")
VIDEO_BYTES = 200 * 1024  # the live clip's video: four chunks of the counting client's 64 KiB


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.02, what: str | None = None):
    """Poll `predicate` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or predicate}; "
                                 f"last value: {value!r}")
        time.sleep(interval)


# Reads ----------------------------------------------------------------------------------------

def released(fn):
    """Run `fn()` and end the test thread's transaction, whatever happens."""
    try:
        return fn()
    finally:
        _db.session.remove()


def get_log(log_id) -> PublishLog:
    """A detached snapshot of one publish log (its columns loaded)."""
    return released(lambda: _db.session.get(PublishLog, uuid.UUID(str(log_id))))


def status_of(log_id) -> str:
    return get_log(log_id).status


def wait_for_status(log_id, *statuses: str, timeout: float = 15.0) -> PublishLog:
    """Wait until the log is in one of `statuses`; return its snapshot."""
    return wait_until(lambda: (row := get_log(log_id)) is not None and row.status in statuses and row,
                      timeout, what=f"log {log_id} to become {'/'.join(statuses)}")


def log_events(log_id) -> list[LedgerEvent]:
    """Every ledger event about one publish log, oldest first."""
    def read():
        row = _db.session.get(PublishLog, uuid.UUID(str(log_id)))
        return [e for e in events_for(_db.session, "clip", row.clip_id)
                if (e.event_metadata or {}).get("publish_log_id") == str(log_id)]
    return released(read)


def event_types(log_id) -> list[str]:
    return [e.event_type for e in log_events(log_id)]


def all_logs() -> list[PublishLog]:
    return released(lambda: list(_db.session.scalars(select(PublishLog))))


def count_logs() -> int:
    return len(all_logs())


def events_by_type(event_type: str) -> list[LedgerEvent]:
    return released(lambda: list(_db.session.scalars(
        select(LedgerEvent).where(LedgerEvent.event_type == event_type))))


def per_log_counts(event_type: str) -> Counter:
    """How many events of `event_type` each publish log has."""
    return Counter(e.event_metadata.get("publish_log_id") for e in events_by_type(event_type))


# The API, as a client that ends the test thread's transaction after each request -------------

class Api:
    def __init__(self, client, headers: dict[str, str]):
        self.client = client
        self.headers = headers

    def _call(self, method: str, url: str, headers=None, **kwargs):
        try:
            return getattr(self.client, method)(url, headers={**self.headers, **(headers or {})},
                                                **kwargs)
        finally:
            _db.session.remove()

    def get(self, url, **kwargs):
        return self._call("get", url, **kwargs)

    def post(self, url, **kwargs):
        return self._call("post", url, **kwargs)

    def put(self, url, **kwargs):
        return self._call("put", url, **kwargs)


# Workers --------------------------------------------------------------------------------------

class InProcessWorker:
    """A Huey consumer with thread workers inside the test process, on its own Huey instance
    (its own storage connection) built from the app's QUEUE_URL, running the app's tasks."""

    def __init__(self, app, threads: int):
        self.huey = make_huey(app.config["QUEUE_URL"])
        register_all_tasks(self.huey, app)
        self.consumer = self.huey.create_consumer(
            workers=threads, worker_type="thread", periodic=True, initial_delay=0.02,
            backoff=1.2, max_delay=0.2, scheduler_interval=1, check_worker_health=False,
        )
        self.running = False

    def start(self) -> InProcessWorker:
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        self.consumer.start()
        # The consumer's handlers only set a flag its run() loop reads; we don't run that loop.
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.consumer.stop(graceful=True)
            self.huey.storage.close()
            self.running = False


# Settings a `flask worker` subprocess needs to act like the test's app.
_FORWARDED = ("SIMULATOR_MIN_DELAY", "SIMULATOR_MAX_DELAY", "SIMULATOR_FAILURE_RATE",
              "PUBLISH_MAX_ATTEMPTS", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY",
              "SIMULATOR_FAILURE_KINDS", "PUBLISH_TIMEOUT_SECONDS", "REQUEUE_GRACE_SECONDS",
              "WORKER_SHUTDOWN_TIMEOUT")


class WorkerProcess:
    """`flask worker` in a subprocess, with the test app's database, queue and keys."""

    def __init__(self, app, database_url: str, threads: int = 4, log_path: Path | None = None,
                 **overrides):
        env = process_env(app, database_url, forward=_FORWARDED, **overrides)
        self.log_path = log_path
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(FLASK), "worker", "--threads", str(threads)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as `make run`'s trap, Docker and systemd send; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Huey's graceful shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


# Time and the queue's own state ---------------------------------------------------------------

def iso(moment) -> str:
    """ISO 8601 with a Z, as the API writes times."""

    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def queue_counts(app) -> tuple[int, int]:
    """(messages waiting to run, messages waiting for their time) in the app's queue storage."""
    huey = app.extensions["huey"]
    return huey.pending_count(), huey.scheduled_count()


def messages_for(app, log_id) -> int:
    """How many messages for one log the queue holds (waiting to run or for their time)."""
    huey = app.extensions["huey"]
    tasks = huey.pending() + huey.scheduled()
    return sum(1 for task in tasks if tuple(task.args) == (str(log_id),))


def fire_together(app, count: int, send):
    """Call `send(client)` from `count` threads released at the same instant, each with its own
    test client (and so its own app context and session, as concurrent requests have);
    the responses in the order the threads were started."""
    import threading

    barrier = threading.Barrier(count)
    responses: list = [None] * count
    errors: list = []

    def run(index: int):
        client = app.test_client()
        barrier.wait()
        try:
            responses[index] = send(client)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    _db.session.remove()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return responses


def status_counts() -> Counter:
    """How many publish logs are in each status (one query)."""
    from sqlalchemy import func

    return released(lambda: Counter(dict(_db.session.execute(
        select(PublishLog.status, func.count()).group_by(PublishLog.status)).all())))
