"""Helpers shared by the benchmarks: databases and queues made for one run, the app as processes
(gunicorn, `flask worker`), reading the database back, timing, statistics, reports."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Database:
    """A database made for one benchmark run: `url` for the app, `backend` for the report."""

    backend: str  # "sqlite" | "postgresql"
    url: str


def backends(requested: str) -> list[str]:
    """SQLite always; PostgreSQL when DATABASE_URL names one (or when asked explicitly)."""
    if requested == "sqlite":
        return ["sqlite"]
    if requested == "postgresql":
        return ["postgresql"]
    found = ["sqlite"]
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        found.append("postgresql")
    return found


def _pg_server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    if not url.startswith(("postgres://", "postgresql")):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
    return url


def _pg_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql"  # the app maps it to psycopg 3 itself
    return urlunsplit((scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _pg_admin_connect(url: str):
    import psycopg

    return psycopg.connect(_pg_with_database(url, "postgres"), autocommit=True)


@contextlib.contextmanager
def fresh_database(backend: str, label: str):
    """Yield a new, empty database; remove it afterwards.

    SQLite: a file in a temporary folder. PostgreSQL: a new database on the server that
    DATABASE_URL names (its own database is left alone), dropped at the end.
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as folder:
            yield Database("sqlite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        return
    server = _pg_server_url()
    # BENCH_DB_PREFIX lets runs that share a server keep their databases apart (default bench).
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'bench')}_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _pg_admin_connect(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database("postgresql", _pg_with_database(server, name))
    finally:
        with _pg_admin_connect(server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port(low: int = 5400, high: int = 5499) -> int:
    """A loopback port in [low, high] that nothing listens on now."""
    for port in range(low, high + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {low}-{high}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class Timing:
    """Repeated timings of one operation, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(sorted(self.samples), 0.95)

    @property
    def best(self) -> float:
        return min(self.samples)


def time_it(fn, repeat: int, warmup: int = 2) -> Timing:
    """Call fn() `warmup` times untimed, then `repeat` times timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def machine_summary() -> str:
    import platform
    import sqlite3

    cores = os.cpu_count()
    return (f"{platform.python_implementation()} {platform.python_version()}, SQLite "
            f"{sqlite3.sqlite_version}, {cores} cores, {platform.machine()}")


def pg_server_version(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001  (a figure for the report only)
        return None


ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-password-not-secret"
LOG_PATTERNS = {
    "database is locked": re.compile(r"database is locked", re.I),
    "database unreachable (503)": re.compile(r"database unreachable", re.I),
    "database timed out (503)": re.compile(r"database timed out", re.I),
    "pool timeout": re.compile(r"QueuePool limit|TimeoutError", re.I),
    "traceback": re.compile(r"^Traceback", re.M),
    "worker timeout": re.compile(r"WORKER TIMEOUT", re.I),
}


# --- the app as processes: gunicorn and queue workers -------------------------------------------

def server_env(db: Database, extra: dict[str, str]) -> dict[str, str]:
    """The environment of every process of one run (CLI, gunicorn, workers): `extra` last.

    Pass QUEUE_URL in `extra` (a file in the run's temporary folder, or a fresh Redis
    database): the default, instance/queue.sqlite3, is the developer's own queue.
    """
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi",
        DASHBOARD_ENV="development",
        DATABASE_URL=db.url,
        SECRET_KEY="bench-secret-key",
        CREDENTIALS_KEYS=Fernet.generate_key().decode(),
        GUNICORN_ACCESSLOG="",  # the client counts every status; a log line per request is noise
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def flask_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=REPO_ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def scan_log(text: str) -> dict[str, int]:
    return {name: len(pattern.findall(text)) for name, pattern in LOG_PATTERNS.items()}


class Gunicorn:
    """gunicorn as a child process in its own session, stopped (and only it) at the end."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int | None, threads: int | None,
                 app: str = "wsgi:app"):
        self.app = app
        self.port = free_port()
        self.env = dict(env, GUNICORN_BIND=f"127.0.0.1:{self.port}")
        if workers:
            self.env["GUNICORN_WORKERS"] = str(workers)
        if threads:
            self.env["GUNICORN_THREADS"] = str(threads)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", self.app],
            cwd=REPO_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                status, _ = request(self.port, "GET", "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s:\n{self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
                self.process.wait(timeout=10)
        self._log.close()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers so far."""
        return process_tree_cpu(self.process.pid)

    def context_switches(self) -> int:
        """Context switches of every thread of the master and its workers so far."""
        return process_tree_context_switches(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and ")")."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def _tree_pids(root: int) -> list[int]:
    """`root` and its direct children (gunicorn's master and workers), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry))[1])
        except OSError:  # it exited meanwhile
            continue
        if int(entry) == root or parent == root:
            pids.append(int(entry))
    return pids


def process_tree_context_switches(root: int) -> int:
    """Voluntary and involuntary context switches of `root`'s threads and its direct children's,
    from /proc: each is a thread giving up the CPU (a lock, the GIL, I/O) or being preempted."""
    total = 0
    for pid in _tree_pids(root):
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/status") as handle:
                    total += sum(int(line.split()[1]) for line in handle
                                 if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
        except OSError:  # it exited meanwhile
            continue
    return total


def process_tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its direct children (gunicorn's master and workers), from /proc."""
    total = 0
    for pid in _tree_pids(root):
        try:
            fields = _stat_fields(pid)
        except OSError:  # it exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def request(port: int, method: str, path: str, body: dict | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {})
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class QueueWorker:
    """`flask worker --threads N` as a child process in its own session, with the same
    environment as the server (DATABASE_URL, QUEUE_URL); stopped (and only it) at the end:
    SIGINT first (Huey's graceful stop: running publishes finish), SIGKILL after a timeout."""

    def __init__(self, env: dict[str, str], log_path: Path, threads: int):
        self.env = dict(env)
        self.log_path = log_path
        self.threads = threads
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> QueueWorker:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "--threads", str(self.threads)],
            cwd=REPO_ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flask worker exited ({self.process.returncode}):\n{self.log_text()}")
            if "worker: " in self.log_text():  # printed after the start-up sweep, before consuming
                time.sleep(0.3)  # the consumer's threads start
                return self
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"flask worker did not start within 60 s:\n{self.log_text()}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
                self.process.wait(timeout=10)
        self._log.close()

    def cpu_seconds(self) -> float:
        return process_tree_cpu(self.process.pid)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def prepare_app(env: dict[str, str]) -> dict[str, str]:
    """Migrate the run's database and make an admin and an API token with the CLI, as an
    operator would; returns the Authorization header."""
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "users", "create", ADMIN_EMAIL, "--role", "admin", "--password-stdin",
              stdin=ADMIN_PASSWORD + "\n")
    token = flask_cli(env, "tokens", "create", ADMIN_EMAIL, "--name", "bench").strip().splitlines()[-1]
    return {"Authorization": f"Bearer {token}"}


def api(port: int, method: str, path: str, body: dict | None, auth: dict[str, str],
        expect: int) -> dict:
    """One JSON API call; a status other than `expect` stops the benchmark with the answer."""
    status, data = request(port, method, path, body, auth)
    if status != expect:
        raise RuntimeError(f"{method} {path} answered {status} (expected {expect}): {data[:500]!r}")
    return json.loads(data) if data else {}


def create_clips(port: int, auth: dict[str, str], count: int) -> list[str]:
    return [api(port, "POST", "/api/clips", {
        "title": f"Benchmark clip {n}", "description": "made by bench/",
        "media": f"https://cdn.example.com/bench/{n}.mp4", "duration_seconds": 30.0,
    }, auth, 201)["id"] for n in range(count)]


def simulator_delays() -> tuple[float, float]:
    """The simulator's latency range: the environment's, else the app's default 0.1-0.3 s."""
    low = float(os.environ.get("SIMULATOR_MIN_DELAY") or 0.1)
    high = float(os.environ.get("SIMULATOR_MAX_DELAY") or 0.3)
    return low, high


# --- queues made for one run --------------------------------------------------------------------

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"  # the tests use /15


def redis_reachable(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001  (unreachable, whatever the reason)
        return False


def queue_kinds(requested: str, redis_url: str) -> list[str]:
    """`auto`: the SQLite queue, plus Redis when it answers; or a comma-separated list of
    sqlite, redis, postgresql (postgresql: PostgresHuey in the run's PostgreSQL database)."""
    if requested == "auto":
        return ["sqlite"] + (["redis"] if redis_reachable(redis_url) else [])
    kinds = [k.strip() for k in requested.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "redis", "postgresql"}
    if unknown:
        raise SystemExit(f"unknown queue(s): {', '.join(sorted(unknown))}; choose sqlite, redis, postgresql")
    return kinds


@contextlib.contextmanager
def fresh_queue(kind: str, folder: Path, db: Database, redis_url: str = DEFAULT_REDIS_URL):
    """Yield the QUEUE_URL of an empty queue; empty it again afterwards.

    sqlite: a file in `folder`. redis: the database `redis_url` names, flushed before and after
    (refused when it holds keys that are not Huey's). postgresql: Huey's tables in the run's
    PostgreSQL database (dropped with it).
    """
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'queue.sqlite3'}"
        return
    if kind == "postgresql":
        if db.backend != "postgresql":
            raise SystemExit("the postgresql queue needs the PostgreSQL backend")
        yield db.url
        return
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    try:
        foreign = [k for k in client.scan_iter(count=1000) if not k.startswith(b"huey.")]
        if foreign:
            raise SystemExit(f"{redis_url} holds keys that are not a Huey queue's (e.g. {foreign[0]!r}); "
                             "name an empty Redis database with --redis-url")
        client.flushdb()
        yield redis_url
    finally:
        try:
            client.flushdb()
        finally:
            client.close()


def queue_backlog(queue_url: str) -> dict[str, int]:
    """Messages still in the queue's storage: waiting to run, and scheduled for later."""
    from dashboard.queue import make_huey  # imports no app, no database engine

    huey = make_huey(queue_url)
    try:
        return {"pending": huey.pending_count(), "scheduled": huey.scheduled_count()}
    finally:
        close = getattr(huey.storage, "close", None)
        if callable(close):
            close()


# --- reading the database back ------------------------------------------------------------------
# With sqlite3 / psycopg directly, not through the app: a plain read, in WAL mode it blocks nobody,
# and it does not depend on the engine hooks dashboard.extensions installs.

def _connect(url: str):
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], timeout=30)
        return conn
    import psycopg

    return psycopg.connect(_pg_with_database(url, urlsplit(url).path.lstrip("/")))


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one read-only query (`?` placeholders, translated for PostgreSQL)."""
    if not url.startswith("sqlite:///"):
        sql = sql.replace("?", "%s")
    conn = _connect(url)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def status_counts(url: str) -> Counter:
    return Counter(dict(query(url, "SELECT status, count(*) FROM publish_logs GROUP BY status")))


def _uuid(value) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _time(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: naive UTC text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class LogRow:
    id: uuid.UUID
    status: str
    platform: str
    caption: str
    external_post_id: str | None
    attempts: int
    requested_at: datetime
    started_at: datetime | None
    published_at: datetime | None
    scheduled_at: datetime | None
    batch_id: uuid.UUID | None
    events: list[tuple[str, dict]] = field(default_factory=list)  # (event_type, metadata), in order

    @property
    def event_types(self) -> list[str]:
        return [event_type for event_type, _ in self.events]

    @property
    def attempt_seconds(self) -> float | None:
        """Claim (or request) to outcome: the worker's whole attempt, platform call included."""
        if self.started_at is None or self.published_at is None:
            return None
        return (self.published_at - self.started_at).total_seconds()


def publish_logs(url: str) -> tuple[dict[uuid.UUID, LogRow], Counter]:
    """Every publish log with its ledger events (matched by metadata.publish_log_id), and the
    publish events that name no log (e.g. publish_batch_created), counted by type."""
    logs = {}
    for row in query(url, "SELECT id, status, platform, caption, external_post_id, attempts, "
                          "requested_at, started_at, published_at, scheduled_at, batch_id FROM publish_logs"):
        log = LogRow(_uuid(row[0]), row[1], row[2], row[3], row[4], row[5], _time(row[6]),
                     _time(row[7]), _time(row[8]), _time(row[9]), _uuid(row[10]))
        logs[log.id] = log
    unattached: Counter = Counter()
    events = query(url, "SELECT event_type, metadata, created_at, id FROM ledger_events "
                        "WHERE event_type LIKE ? ORDER BY created_at, id", ("publish%",))
    for event_type, metadata, _created, _id in events:
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        log_id = (metadata or {}).get("publish_log_id")
        if log_id and _uuid(log_id) in logs:
            logs[_uuid(log_id)].events.append((event_type, metadata))
        else:
            unattached[event_type] += 1
    return logs, unattached


PROVIDER_EVENTS = ("publish_provider_fallback", "publish_provider_ready")
OUTCOME_EVENTS = {"success": "publish_successful", "failed": "publish_failed",
                  "unconfirmed": "publish_unconfirmed"}
IN_FLIGHT = ("pending", "publishing")
WAITING = ("scheduled", "queued")


def events_as_expected(log: LogRow, first: tuple[str, ...]) -> bool:
    """The log's events are exactly `first` (e.g. publish_queued), publish_started, one provider
    event, and the one outcome event its final status calls for, in that order."""
    outcome = OUTCOME_EVENTS.get(log.status)
    types = log.event_types
    return (outcome is not None and len(types) == len(first) + 3
            and tuple(types[:len(first)]) == first and types[len(first)] == "publish_started"
            and types[len(first) + 1] in PROVIDER_EVENTS and types[len(first) + 2] == outcome)


def summarise_logs(logs: dict[uuid.UUID, LogRow], first: tuple[str, ...]) -> dict[str, int]:
    """The exactly-once figures over a set of logs (a background path when `first` is set)."""
    statuses = Counter(log.status for log in logs.values())
    external = [(log.platform, log.external_post_id) for log in logs.values() if log.external_post_id]
    per_log = Counter()
    for log in logs.values():
        for event_type, _ in log.events:
            per_log[event_type] += 1
    successful = Counter(log.id for log in logs.values() for t, _ in log.events if t == "publish_successful")
    return {
        "logs": len(logs),
        "success": statuses.get("success", 0),
        "not success": len(logs) - statuses.get("success", 0),
        "left waiting (scheduled/queued)": sum(statuses.get(s, 0) for s in WAITING),
        "left in flight (pending/publishing)": sum(statuses.get(s, 0) for s in IN_FLIGHT),
        "external ids": len(external),
        "distinct external ids": len(set(external)),
        "logs with exactly one publish_successful": sum(1 for n in successful.values() if n == 1),
        "logs with more than one publish_successful": sum(1 for n in successful.values() if n > 1),
        "logs with more than one attempt": sum(1 for log in logs.values() if log.attempts != 1),
        "logs whose events are exactly as expected": sum(1 for log in logs.values()
                                                         if events_as_expected(log, first)),
    }
