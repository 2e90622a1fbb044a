"""50 concurrent clients publishing through gunicorn, and an account of every request.

For each backend (SQLite; PostgreSQL when DATABASE_URL names a server): a fresh database, the
CLI's admin and token, gunicorn from gunicorn.conf.py, and --concurrency-clients (50) client
threads sending immediate `POST /publishing/publish` at the simulator's default latency
(0.1-0.3 s, failure rate as the environment has it: 10 % by default), the load driver of
bench/throughput.py. Every request carries a caption of its own, so that afterwards the
database can be read back request by request:

- every answered request has exactly one publish log (found by its caption), and the answer
  agrees with it (success and external id);
- every such log has exactly its ledger events: publish_started, one provider event, and the
  outcome event of its final status (publish_successful / publish_failed / publish_unconfirmed);
- no log is left pending or publishing; no log exists without a request.

Reported: requests/s (and its ratio to the latency bound clients / mean latency), p50, p99, 5xx,
and "database is locked", pool timeouts, tracebacks and worker timeouts found in gunicorn's log.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import Counter
from pathlib import Path

from .common import (
    IN_FLIGHT,
    Gunicorn,
    create_clips,
    events_as_expected,
    fresh_database,
    prepare_app,
    publish_logs,
    scan_log,
    server_env,
    simulator_delays,
    table,
)
from .throughput import PLATFORMS, LoadResult, drive

CAPTION = "concurrency request {i}"


def run_backend(backend: str, args, workdir: Path) -> dict:
    clients, total = args.concurrency_clients, args.concurrency_requests
    low, high = simulator_delays()
    with fresh_database(backend, "concurrency") as db:
        folder = workdir / backend
        folder.mkdir(parents=True, exist_ok=True)
        print(f"\n[concurrency/{backend}] {clients} clients, {total} immediate publishes at "
              f"{low:g}-{high:g} s", flush=True)
        env = server_env(db, {"QUEUE_URL": f"sqlite:///{folder / 'queue.sqlite3'}",
                              "SIMULATOR_MIN_DELAY": str(low), "SIMULATOR_MAX_DELAY": str(high)})
        auth = prepare_app(env)
        log_path = folder / "gunicorn.log"
        answers: dict[int, tuple[int | None, dict | None]] = {}
        lock = threading.Lock()

        def make(prefix: str, clip_ids: list[str]):
            def request_for(i: int):
                body = {"clip_id": clip_ids[i % len(clip_ids)], "platform": PLATFORMS[i % len(PLATFORMS)],
                        "metadata": {"caption": prefix.format(i=i), "hashtags": ["launch", "bench"]}}
                return "POST", "/publishing/publish", body, auth
            return request_for

        def record(i: int, status: int | None, data: bytes | None) -> None:
            parsed = None
            if data:
                try:
                    parsed = json.loads(data)
                except ValueError:
                    parsed = None
            with lock:
                answers[i] = (status, parsed)

        with Gunicorn(env, log_path, args.workers, args.threads) as server:
            clip_ids = create_clips(server.port, auth, 8)
            # Warm-up: every gunicorn thread opens its connection, imports lazily.
            drive(server, "warm-up", clients, clients * 2, 30, make("warm-up {i}", clip_ids))
            offset = len(log_path.read_text(errors="replace"))
            result: LoadResult = drive(server, f"{clients} clients", clients, total, args.max_seconds,
                                       make(CAPTION, clip_ids), check_success=True, on_response=record)
            findings = scan_log(log_path.read_text(errors="replace")[offset:])
        accounting = account_for(db.url, answers)
    statuses_5xx = sum(n for s, n in result.statuses.items() if s >= 500)
    bound = clients / ((low + high) / 2)
    print(f"  {result.completed} requests in {result.elapsed:.1f} s = {result.rps:.0f}/s "
          f"({result.rps / bound:.2f} of {bound:.0f}/s), p50 {result.p(0.5) * 1000:.0f} ms, p99 "
          f"{result.p(0.99) * 1000:.0f} ms, 5xx {statuses_5xx}, log {findings}", flush=True)
    print(f"  accounting: {accounting}", flush=True)
    return {
        "backend": backend, "clients": clients, "requests": result.completed, "issued": total,
        "hit_time_limit": result.hit_time_limit, "elapsed_s": result.elapsed, "rps": result.rps,
        "bound_rps": bound, "p50_ms": result.p(0.5) * 1000, "p99_ms": result.p(0.99) * 1000,
        "statuses": dict(result.statuses), "5xx": statuses_5xx,
        "transport_errors": result.transport_errors, "platform_failures": result.platform_failures,
        "server_cores": result.server_cores, "machine_busy": result.machine_busy,
        "log_findings": findings, "accounting": accounting,
    }


def account_for(url: str, answers: dict[int, tuple[int | None, dict | None]]) -> dict:
    """Read the database back and match every request of the run to its log and events."""
    logs, _unattached = publish_logs(url)
    by_caption: dict[str, list] = {}
    for log in logs.values():
        by_caption.setdefault(log.caption, []).append(log)
    counts = Counter()
    for i, (status, body) in answers.items():
        found = by_caption.pop(CAPTION.format(i=i), [])
        counts["requests"] += 1
        if status != 200:
            what = "not answered (transport error)" if status is None else f"answered {status}"
            counts[f"requests {what}, with {len(found)} log(s)"] += 1
            continue
        if len(found) != 1:
            counts["answered requests without exactly one log"] += 1
            continue
        log = found[0]
        counts["answered requests with exactly one log"] += 1
        agrees = body is not None and body.get("success") == (log.status == "success") and (
            body.get("external_post_id") == log.external_post_id)
        counts["answers agreeing with their log" if agrees else "answers NOT agreeing with their log"] += 1
        counts["logs with exactly their events" if events_as_expected(log, ())
               else "logs WITHOUT exactly their events"] += 1
        counts[f"log status {log.status}"] += 1
    run_logs_left = [log for caption, found in by_caption.items() if caption.startswith("concurrency ")
                     for log in found]
    counts["logs of this run without an answered request"] = len(run_logs_left)
    counts["logs left pending/publishing (all runs)"] = sum(1 for log in logs.values() if log.status in IN_FLIGHT)
    return dict(counts)


def report(results: list[dict], args) -> str:
    lines = ["## Concurrent clients through gunicorn: every request accounted for", ""]
    low, high = simulator_delays()
    lines.append(
        f"{args.concurrency_clients} client threads (one keep-alive connection each) send up to "
        f"{args.concurrency_requests} immediate `POST /publishing/publish` (capped at "
        f"{args.max_seconds:g} s) to gunicorn (gunicorn.conf.py), simulator at {low:g}-{high:g} s; "
        "bound = clients / mean latency.")
    lines.append("")
    rows = []
    for r in results:
        f = r["log_findings"]
        rows.append([r["backend"], str(r["requests"]) + (" (time cap)" if r["hit_time_limit"] else ""),
                     f"{r['rps']:.0f}", f"{r['rps'] / r['bound_rps']:.2f} of {r['bound_rps']:.0f}/s",
                     f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", str(r["5xx"]),
                     str(sum(n for s, n in r["statuses"].items() if not 200 <= int(s) < 300 and int(s) < 500)),
                     str(r["transport_errors"]), str(r["platform_failures"]),
                     str(f.get("database is locked", 0)), str(f.get("pool timeout", 0)),
                     str(f.get("traceback", 0)), f"{r['server_cores']:.2f}", f"{r['machine_busy']:.0%}"])
    lines.append(table(["backend", "requests", "req/s", "ratio to bound", "p50 ms", "p99 ms", "5xx",
                        "other non-2xx", "transport errors", "platform failures (200, success: false)",
                        '"database is locked"', "pool timeouts", "tracebacks", "server CPU cores",
                        "machine busy"], rows))
    lines.append("")
    lines.append("The database read back afterwards, request by request (caption = request):")
    lines.append("")
    for r in results:
        lines.append(f"- {r['backend']}: " + ", ".join(f"{k} {v}" for k, v in r["accounting"].items()))
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as folder:
        for backend in backends(args.backend):
            results.append(run_backend(backend, args, Path(folder)))
    return report(results, args), {r["backend"]: r for r in results}
