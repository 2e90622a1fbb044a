"""Publish throughput through a real gunicorn, as `make run` serves it.

For each backend (SQLite; PostgreSQL when DATABASE_URL names a server) the benchmark makes a
fresh database, applies the migrations with `flask db upgrade`, creates an admin and an API
token with the CLI, and starts gunicorn (gunicorn.conf.py: gthread workers) on a loopback port
in 5400-5499. A stdlib HTTP client (http.client, one keep-alive connection per client thread)
then drives it; every run is bounded in request count and in time.

Scenarios, each reported against a baseline measured in the same process:
  baseline   GET /healthz (one SELECT 1) with the same clients on the same server: the floor of
             HTTP + Flask + one database round trip on this machine;
  latency 0  POST /publishing/publish with SIMULATOR_MIN_DELAY=MAX_DELAY=0: the cost of the
             publish path itself (token check, validation, 2 transactions, 3 ledger events);
             ratio to the baseline's requests/s;
  64 @ 0.1-0.3 s  64 clients against the default simulator latency: ratio to the latency bound
             64 / mean latency (64 / 0.2 s = 320 requests/s).

Non-2xx answers, transport errors, "database is locked", pool timeouts and tracebacks in the
server's log, and publish logs left `pending` in the database are counted and reported.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REPO_ROOT,
    Gunicorn,
    flask_cli,
    fresh_database,
    machine_busy,
    percentile,
    request,
    scan_log,
    server_env,
    table,
)

PLATFORMS = ("tiktok", "instagram", "youtube")


# --- the load -----------------------------------------------------------------------------------

@dataclass
class LoadResult:
    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, every completed request
    statuses: Counter = field(default_factory=Counter)
    platform_failures: int = 0  # 200 with success: false (the simulator's 10 %)
    transport_errors: int = 0
    elapsed: float = 0.0
    hit_time_limit: bool = False
    log_findings: dict[str, int] = field(default_factory=dict)
    server_cores: float = 0.0  # CPU the gunicorn processes used, in cores, during the run
    machine_busy: float = 0.0  # fraction of all cores busy during the run (anything running)
    context_switches: int = 0  # of the gunicorn processes' threads during the run
    db_check: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def p(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction)

    @property
    def mean(self) -> float:
        return sum(self.latencies) / len(self.latencies) if self.latencies else float("nan")


def drive(server: Gunicorn, name: str, clients: int, total: int, max_seconds: float,
          make_request, check_success: bool = False, on_response=None) -> LoadResult:
    """`clients` threads, one keep-alive connection each, sending `total` requests at most.

    make_request(i) -> (method, path, body, headers). A POST is never retried: a transport
    error is counted, the connection reopened, and the next request sent. on_response(i,
    status, body_bytes), when given, is called for every answer (None, None on a transport
    error), from the client threads.
    """
    port = server.port
    result = LoadResult(name, clients)
    lock = threading.Lock()
    issued = 0
    start_line = threading.Barrier(clients + 1)
    deadline = 0.0

    def worker():
        nonlocal issued
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        latencies, statuses, failures, errors = [], Counter(), 0, 0
        start_line.wait()
        while True:
            with lock:
                if issued >= total or time.monotonic() > deadline:
                    break
                i = issued
                issued += 1
            method, path, body, headers = make_request(i)
            payload = json.dumps(body).encode() if body is not None else None
            hdrs = dict(headers)
            if payload is not None:
                hdrs["Content-Type"] = "application/json"
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=hdrs)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                if on_response is not None:
                    on_response(i, None, None)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[response.status] += 1
            if on_response is not None:
                on_response(i, response.status, data)
            if check_success and response.status == 200 and not json.loads(data).get("success"):
                failures += 1
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.statuses.update(statuses)
            result.platform_failures += failures
            result.transport_errors += errors

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu_start, (busy_start, all_start) = server.cpu_seconds(), machine_busy()
    switches_start = server.context_switches()
    deadline = time.monotonic() + max_seconds
    t_start = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - t_start
    busy_end, all_end = machine_busy()
    result.server_cores = (server.cpu_seconds() - cpu_start) / result.elapsed
    result.context_switches = server.context_switches() - switches_start
    result.machine_busy = (busy_end - busy_start) / max(all_end - all_start, 1)
    result.hit_time_limit = issued < total
    return result


def check_database(url: str) -> dict[str, int]:
    """Publish logs by status and ledger events: nothing may be left pending."""
    from sqlalchemy import create_engine, text

    from dashboard.config import normalise_database_url

    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as conn:
            counts = dict(conn.execute(text("SELECT status, count(*) FROM publish_logs GROUP BY status")).all())
            events = conn.execute(text(
                "SELECT count(*) FROM ledger_events WHERE event_type LIKE 'publish%'")).scalar_one()
    finally:
        engine.dispose()
    return {"logs": sum(counts.values()), "pending": counts.get("pending", 0),
            "success": counts.get("success", 0), "failed": counts.get("failed", 0),
            "publish_events": events}


# --- the benchmark ------------------------------------------------------------------------------

@dataclass
class BackendReport:
    backend: str
    workers: int
    threads: int
    runs: dict[str, LoadResult]
    mean_latency: float
    clients_slow: int


def effective_gunicorn_config(args) -> dict:
    """gunicorn.conf.py's values under the environment the benchmark gives it."""
    import runpy

    saved = dict(os.environ)
    try:
        if args.workers:
            os.environ["GUNICORN_WORKERS"] = str(args.workers)
        if args.threads:
            os.environ["GUNICORN_THREADS"] = str(args.threads)
        conf = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {k: conf.get(k) for k in ("workers", "threads", "worker_connections", "keepalive")}


def run_backend(backend: str, args, workdir: Path) -> BackendReport:
    with fresh_database(backend, "throughput") as db:
        print(f"\n[throughput/{backend}] database ready; migrating and creating a token", flush=True)
        log_dir = workdir / backend
        log_dir.mkdir(parents=True, exist_ok=True)
        # The immediate path enqueues nothing, but the app opens its queue at start: a file of
        # this run's, not the developer's instance/queue.sqlite3.
        base = server_env(db, {"QUEUE_URL": f"sqlite:///{log_dir / 'queue.sqlite3'}"})
        flask_cli(base, "db", "upgrade")
        flask_cli(base, "users", "create", ADMIN_EMAIL, "--role", "admin", "--password-stdin",
                  stdin=ADMIN_PASSWORD + "\n")
        token = flask_cli(base, "tokens", "create", ADMIN_EMAIL, "--name", "bench").strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        runs: dict[str, LoadResult] = {}

        def publish_request(clip_ids):
            def make(i):
                body = {"clip_id": clip_ids[i % len(clip_ids)], "platform": PLATFORMS[i % len(PLATFORMS)],
                        "metadata": {"caption": f"benchmark post {i}", "hashtags": ["launch", "bench"]}}
                return "POST", "/publishing/publish", body, auth
            return make

        def healthz(_i):
            return "GET", "/healthz", None, {}

        def finish(result: LoadResult, server: Gunicorn, log_offset: int) -> LoadResult:
            result.log_findings = scan_log(server.log_path.read_text(errors="replace")[log_offset:])
            runs[result.name] = result
            print(f"  {result.name}: {result.completed} requests in {result.elapsed:.1f} s = "
                  f"{result.rps:.0f}/s, p50 {result.p(0.5) * 1000:.1f} ms, p99 {result.p(0.99) * 1000:.1f} ms, "
                  f"non-2xx {result.non_2xx}, transport errors {result.transport_errors}, server CPU "
                  f"{result.server_cores:.2f} cores, {result.context_switches / max(result.completed, 1):.0f} "
                  f"context switches/req, machine {result.machine_busy:.0%} busy", flush=True)
            return result

        # Latency 0: the baseline (/healthz) and the publish path, same server, same clients.
        fast_env = dict(base, SIMULATOR_MIN_DELAY="0", SIMULATOR_MAX_DELAY="0")
        log_path = log_dir / "gunicorn-latency0.log"
        with Gunicorn(fast_env, log_path, args.workers, args.threads) as server:
            clip_ids = []
            for n in range(8):
                status, body = request(server.port, "POST", "/api/clips", {
                    "title": f"Benchmark clip {n}", "description": "made by bench/",
                    "media": f"https://cdn.example.com/bench/{n}.mp4", "duration_seconds": 30.0,
                }, auth)
                if status != 201:
                    raise RuntimeError(f"creating a clip answered {status}: {body[:300]!r}")
                clip_ids.append(json.loads(body)["id"])
            make_publish = publish_request(clip_ids)
            # Warm-up: every worker thread opens its database connection and imports lazily.
            drive(server, "warm-up", args.clients, args.clients * 4, 30, make_publish)
            offset = len(log_path.read_text(errors="replace"))
            finish(drive(server, "baseline: GET /healthz", args.clients, args.requests,
                         args.max_seconds, healthz), server, offset)
            offset = len(log_path.read_text(errors="replace"))
            finish(drive(server, "publish, latency 0", args.clients, args.requests,
                         args.max_seconds, make_publish, check_success=True), server, offset)

        # 64 clients against the default simulated latency.
        slow_env = dict(base)  # SIMULATOR_FAILURE_RATE/SEED as the environment has them (default 10 %)
        low = float(os.environ.get("SIMULATOR_MIN_DELAY") or 0.1)
        high = float(os.environ.get("SIMULATOR_MAX_DELAY") or 0.3)
        slow_env.update(SIMULATOR_MIN_DELAY=str(low), SIMULATOR_MAX_DELAY=str(high))
        log_path = log_dir / "gunicorn-latency-default.log"
        with Gunicorn(slow_env, log_path, args.workers, args.threads) as server:
            drive(server, "warm-up", args.slow_clients, args.slow_clients * 2, 30,
                  publish_request(clip_ids))
            offset = len(log_path.read_text(errors="replace"))
            finish(drive(server, f"publish, {args.slow_clients} clients @ {low:g}-{high:g} s",
                         args.slow_clients, args.slow_requests, args.max_seconds,
                         publish_request(clip_ids), check_success=True), server, offset)
        db_check = check_database(db.url)
        for result in runs.values():
            result.db_check = db_check
        print(f"  database after the runs: {db_check}", flush=True)
        conf = effective_gunicorn_config(args)
        return BackendReport(backend, conf["workers"], conf["threads"], runs, (low + high) / 2,
                             args.slow_clients)


def report(reports: list[BackendReport], args) -> str:
    lines = ["## Publish throughput through gunicorn", ""]
    conf = effective_gunicorn_config(args)
    lines.append(
        f"gunicorn.conf.py (gthread): {conf['workers']} workers x {conf['threads']} threads, "
        f"worker_connections {conf['worker_connections']}, keepalive {conf['keepalive']} s; client "
        f"(stdlib http.client, one keep-alive connection per client thread) and server on the same "
        f"2-core machine; latency-0 runs with {args.clients} client threads and "
        f"{args.requests} requests, the slow run with {args.slow_clients} clients and "
        f"{args.slow_requests} requests (each also capped at {args.max_seconds:g} s).")
    lines.append("")
    headers = ["backend", "run", "requests", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx",
               "platform failures", "server CPU cores / ms per req", "context switches per req",
               "machine busy"]
    rows = []
    for rep in reports:
        base_rps = None
        for name, r in rep.runs.items():
            if name.startswith("baseline"):
                base_rps = r.rps
                ratio = "1.00 (baseline)"
            elif "latency 0" in name:
                ratio = f"{r.rps / base_rps:.2f} of baseline" if base_rps else "-"
            else:
                bound = rep.clients_slow / rep.mean_latency
                ratio = f"{r.rps / bound:.2f} of bound {bound:.0f}/s"
            rows.append([rep.backend, name, str(r.completed) + (" (time cap)" if r.hit_time_limit else ""),
                         f"{r.rps:.0f}", f"{r.p(0.5) * 1000:.1f}", f"{r.p(0.99) * 1000:.1f}", ratio,
                         str(r.non_2xx + r.transport_errors),
                         str(r.platform_failures) if "publish" in name else "-",
                         f"{r.server_cores:.2f} / {r.server_cores * r.elapsed / max(r.completed, 1) * 1000:.1f}",
                         f"{r.context_switches / max(r.completed, 1):.0f}", f"{r.machine_busy:.0%}"])
    lines.append(table(headers, rows))
    lines.append("")
    lines.append("`ratio`: publish at latency 0 against the /healthz baseline of the same server; the "
                 "slow run against the latency bound clients / mean simulated latency. `server CPU`: "
                 "CPU used by gunicorn's processes during the run. `context switches`: of their threads (a "
                 "thread waiting for a lock, the GIL or I/O, or preempted). `machine busy`: all cores, any "
                 "process (other work on the machine included).")
    lines.append("")
    lines.append("Server log and database checks (every publish run on the backend together):")
    lines.append("")
    for rep in reports:
        findings = Counter()
        for r in rep.runs.values():
            findings.update(r.log_findings)
        statuses = Counter()
        for r in rep.runs.values():
            statuses.update(r.statuses)
        check = next(iter(rep.runs.values())).db_check
        lines.append(
            f"- {rep.backend}: " + ", ".join(f'"{k}" x{v}' for k, v in findings.items())
            + f"; HTTP statuses {dict(sorted(statuses.items()))}; publish logs {check.get('logs')} "
            f"(pending {check.get('pending')}), publish ledger events {check.get('publish_events')}")
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    reports = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder:
        for backend in backends(args.backend):
            reports.append(run_backend(backend, args, Path(folder)))
    data = {
        rep.backend: {
            name: {"requests": r.completed, "elapsed_s": r.elapsed, "rps": r.rps, "p50_ms": r.p(0.5) * 1000,
                   "p99_ms": r.p(0.99) * 1000, "mean_ms": r.mean * 1000, "clients": r.clients,
                   "statuses": dict(r.statuses), "server_cores": r.server_cores,
                   "machine_busy": r.machine_busy, "context_switches": r.context_switches,
                   "transport_errors": r.transport_errors,
                   "platform_failures": r.platform_failures, "log_findings": r.log_findings,
                   "db_check": r.db_check}
            for name, r in rep.runs.items()
        }
        for rep in reports
    }
    return report(reports, args), data
