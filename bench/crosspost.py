"""Cross-posting one clip to 30 accounts: the batch against its bound and against a sequence.

For each backend (SQLite; PostgreSQL when DATABASE_URL names a server) and each queue (SQLite
file; Redis too when it answers, a database of its own, flushed): a fresh database, the CLI's
admin and token, gunicorn (gunicorn.conf.py) and one `flask worker --threads 8` with the same
DATABASE_URL and QUEUE_URL. Through the API: a clip, a main Instagram account and 29 satellites
(all without credentials: the simulator publishes, at its default 0.1-0.3 s, failure rate 0).

Then, --crosspost-runs times (after --crosspost-idle seconds without work, the state a worker is
in when a manager clicks), `POST /publishing/batches {clip_id, with_satellites_of: [main]}` and
`GET /publishing/batches/<id>` every 50 ms until the batch is no longer running. Reported:

- the time from the POST to the batch being done, as the client saw it (and, from the logs,
  the batch's creation to its last published_at, and to its first started_at: queue pickup);
- the bound 2 x slowest single call x ceil(targets / threads), with the slowest call measured
  from the logs (started_at to published_at: the worker's whole attempt) and, for reference,
  with the simulator's maximum delay;
- the 30 calls in sequence: the sum of the batch's attempt durations, and measured by 30
  immediate `POST /publishing/publish` to the same accounts one after another.

Checks from the database: every target succeeded once, one attempt each, with exactly its
events (publish_queued, publish_started, a provider event, publish_successful).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from .common import (
    Gunicorn,
    QueueWorker,
    _time,
    _uuid,
    api,
    create_clips,
    events_as_expected,
    fresh_database,
    fresh_queue,
    prepare_app,
    publish_logs,
    query,
    queue_kinds,
    scan_log,
    server_env,
    simulator_delays,
    table,
)

PLATFORM = "instagram"  # 50 posts per 24 h per account: room for ~45 runs of one database


def one_batch(port: int, auth: dict, db_url: str, clip_id: str, main_id: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    batch = api(port, "POST", "/publishing/batches",
                {"clip_id": clip_id, "with_satellites_of": [main_id],
                 "metadata": {"caption": "cross-post benchmark", "hashtags": ["launch"]}}, auth, 202)
    posted = time.perf_counter() - t0
    polls, status = 0, batch["status"]
    while status == "running" and time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
        status = api(port, "GET", f"/publishing/batches/{batch['id']}", None, auth, 200)["status"]
        polls += 1
    done = time.perf_counter() - t0
    created = _time(query(db_url, "SELECT created_at FROM publish_batches WHERE id = ?",
                          (_db_id(db_url, batch["id"]),))[0][0])
    logs, _ = publish_logs(db_url)
    mine = [log for log in logs.values() if log.batch_id == _uuid(batch["id"])]
    attempts = [log.attempt_seconds for log in mine if log.attempt_seconds is not None]
    started = [log.started_at for log in mine if log.started_at]
    published = [log.published_at for log in mine if log.published_at]
    return {
        "batch_id": batch["id"], "status": status, "targets": len(mine), "post_s": posted,
        "done_s": done, "timed_out": status == "running", "polls": polls,
        "created_to_last_published_s": (max(published) - created).total_seconds() if published else None,
        "pickup_s": (min(started) - created).total_seconds() if started else None,
        "slowest_attempt_s": max(attempts) if attempts else None,
        "sum_attempts_s": sum(attempts),
        "success": sum(1 for log in mine if log.status == "success"),
        "one_attempt": sum(1 for log in mine if log.attempts == 1),
        "events_as_expected": sum(1 for log in mine if events_as_expected(log, ("publish_queued",))),
    }


def _f(value, digits: int = 2) -> str:
    """A figure for the report; '-' when there is none (e.g. a batch that timed out)."""
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(value, bound) -> str:
    return "-" if value is None or not bound else f"{value / bound:.2f}"


def _db_id(db_url: str, value: str):
    """An id as the database stores it (CHAR(32) hex on SQLite, uuid on PostgreSQL)."""
    return _uuid(value).hex if db_url.startswith("sqlite") else str(_uuid(value))


def run_one(backend: str, queue: str, args, workdir: Path) -> dict:
    low, high = simulator_delays()
    threads, n_targets = args.worker_threads, args.targets
    folder = workdir / f"{backend}-{queue}"
    folder.mkdir(parents=True, exist_ok=True)
    with fresh_database(backend, "crosspost") as db, \
            fresh_queue(queue, folder, db, args.redis_url) as queue_url:
        print(f"\n[crosspost/{backend}, {queue} queue] {n_targets} accounts, 1 worker x {threads} "
              f"threads, simulator {low:g}-{high:g} s, failure rate 0", flush=True)
        env = server_env(db, {"QUEUE_URL": queue_url, "SIMULATOR_FAILURE_RATE": "0",
                              "SIMULATOR_MIN_DELAY": str(low), "SIMULATOR_MAX_DELAY": str(high)})
        auth = prepare_app(env)
        with Gunicorn(env, folder / "gunicorn.log", args.workers, args.threads) as server, \
                QueueWorker(env, folder / "worker.log", threads) as worker:
            port = server.port
            clip_id = create_clips(port, auth, 1)[0]
            main = api(port, "POST", "/api/accounts", {"platform": PLATFORM, "handle": "bench.main"}, auth, 201)
            accounts = [main["id"]] + [
                api(port, "POST", "/api/accounts", {"platform": PLATFORM, "handle": f"bench.satellite{n:02d}",
                                                   "parent_account_id": main["id"]}, auth, 201)["id"]
                for n in range(1, n_targets)]
            runs = []
            for n in range(args.crosspost_runs):
                time.sleep(args.crosspost_idle)
                run = one_batch(port, auth, db.url, clip_id, main["id"], args.max_seconds)
                runs.append(run)
                print(f"  batch {n + 1}: {run['status']} in {run['done_s']:.2f} s (logs: created to last "
                      f"published {_f(run['created_to_last_published_s'])} s, pickup {_f(run['pickup_s'])} s, "
                      f"slowest attempt {_f(run['slowest_attempt_s'], 3)} s, sum {run['sum_attempts_s']:.2f} s); "
                      f"{run['success']}/{run['targets']} success, {run['events_as_expected']} with exactly "
                      "their events", flush=True)
            # The same 30 publishes one after another, immediate (no queue): the sequence.
            t0 = time.perf_counter()
            sequence_ok = 0
            for account_id in accounts:
                result = api(port, "POST", "/publishing/publish", {
                    "clip_id": clip_id, "platform": PLATFORM, "social_account_id": account_id,
                    "metadata": {"caption": "sequence benchmark", "hashtags": ["launch"]}}, auth, 200)
                sequence_ok += bool(result.get("success"))
            sequence_s = time.perf_counter() - t0
            print(f"  {len(accounts)} immediate publishes in sequence: {sequence_s:.2f} s "
                  f"({sequence_ok} success)", flush=True)
            worker_log, server_log = worker.log_text(), server.log_path.read_text(errors="replace")
    rounds = math.ceil(n_targets / threads)
    return {"backend": backend, "queue": queue, "targets": n_targets, "threads": threads,
            "rounds": rounds, "delays": [low, high], "runs": runs, "sequence_s": sequence_s,
            "sequence_success": sequence_ok, "worker_log": scan_log(worker_log),
            "server_log": scan_log(server_log)}


def report(results: list[dict], args) -> str:
    lines = ["## Cross-posting one clip to many accounts", ""]
    if not results:
        return "\n".join(lines + ["(not run)"])
    first = results[0]
    low, high = first["delays"]
    rounds, threads, targets = first["rounds"], first["threads"], first["targets"]
    lines.append(
        f"{targets} accounts (1 main + {targets - 1} satellites, Instagram, simulator {low:g}-{high:g} s, "
        f"failure rate 0), 1 `flask worker --threads {threads}`, gunicorn for the API; "
        f"{args.crosspost_runs} batches per row after {args.crosspost_idle:g} s idle each. "
        f"bound = 2 x slowest attempt x ceil({targets}/{threads}) = slowest x {2 * rounds} "
        f"(with the simulator's maximum: 2 x {high:g} x {rounds} = {2 * high * rounds:.2f} s); "
        "sequence = the sum of the batch's attempts, and measured as "
        f"{targets} immediate publishes one after another.")
    lines.append("")
    rows = []
    for r in results:
        for n, run in enumerate(r["runs"], 1):
            slowest = run["slowest_attempt_s"]
            bound = 2 * slowest * r["rounds"] if slowest else None
            rows.append([
                f"{r['backend']} / {r['queue']} queue", str(n), run["status"],
                f"{run['done_s']:.2f}", _f(run["created_to_last_published_s"]), _f(run["pickup_s"]),
                _f(slowest, 3), _f(bound), _ratio(run["done_s"], bound),
                _ratio(run["done_s"], 2 * high * r["rounds"]),
                f"{run['sum_attempts_s']:.2f}", _ratio(run["done_s"], run["sum_attempts_s"]),
                f"{r['sequence_s']:.2f}", _ratio(run["done_s"], r["sequence_s"]),
                f"{run['success']}/{run['targets']}", f"{run['events_as_expected']}/{run['targets']}"])
    lines.append(table(["database / queue", "batch", "status", "POST to done s (client)",
                        "created to last published s (logs)", "pickup s", "slowest attempt s",
                        "bound s", "done / bound", f"done / bound with {high:g} s", "sum of attempts s",
                        "done / sum", "measured sequence s", "done / sequence", "success",
                        "exactly their events"], rows))
    lines.append("")
    for r in results:
        findings = {**{f"worker: {k}": v for k, v in r["worker_log"].items() if v},
                    **{f"gunicorn: {k}": v for k, v in r["server_log"].items() if v}}
        lines.append(f"- {r['backend']} / {r['queue']} queue: {r['sequence_success']}/{r['targets']} "
                     "immediate publishes of the sequence succeeded; logs: "
                     + (", ".join(f'"{k}" x{v}' for k, v in findings.items()) or
                        "no lock error, pool timeout or traceback"))
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-crosspost-") as folder:
        for backend in backends(args.backend):
            for queue in queue_kinds(args.queue, args.redis_url):
                if queue == "postgresql" and backend != "postgresql":
                    continue
                results.append(run_one(backend, queue, args, Path(folder)))
    return report(results, args), {f"{r['backend']}/{r['queue']}": r for r in results}
