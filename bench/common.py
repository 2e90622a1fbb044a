"""Helpers shared by the benchmarks: databases made for one run, timing, statistics, reports."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
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
    name = f"bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
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
