"""Scheduled volume: 1,000 posts due at the same moment, drained by one or two queue workers.

For each backend (SQLite; PostgreSQL when DATABASE_URL names a server), each queue (SQLite file;
Redis too when it answers, a database of its own, flushed) and each worker count
(--scheduled-workers, e.g. 1,2): a fresh database and queue, the CLI's admin and token,
gunicorn, and N `flask worker --threads 8` processes sharing DATABASE_URL and QUEUE_URL,
started first (workers run all the time in production). Then --posts (1,000) posts are scheduled
through `POST /publishing/schedule` (8 client threads, no account: the simulator, default latency
0.1-0.3 s, failure rate 0) for one moment --scheduled-lead seconds ahead, and the database is
polled until every log has a final state (bounded by --max-drain-seconds).

Reported: the drain (the moment to the last published_at), the first start after the moment
(the scheduler's pickup), posts/s and its ratio to the bound workers x threads / mean latency,
the workers' CPU; and the exactly-once check: posts succeeded, distinct external ids, exactly one
publish_successful per log, one attempt each, none left scheduled/queued/publishing, the queue's
storage empty afterwards.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .common import (
    Gunicorn,
    QueueWorker,
    create_clips,
    fresh_database,
    fresh_queue,
    prepare_app,
    publish_logs,
    queue_backlog,
    queue_kinds,
    scan_log,
    server_env,
    simulator_delays,
    status_counts,
    summarise_logs,
    table,
)
from .throughput import PLATFORMS, drive

FINAL = ("success", "failed", "unconfirmed", "cancelled")


def run_one(backend: str, queue: str, n_workers: int, args, workdir: Path) -> dict:
    low, high = simulator_delays()
    threads, posts = args.worker_threads, args.posts
    folder = workdir / f"{backend}-{queue}-{n_workers}"
    folder.mkdir(parents=True, exist_ok=True)
    with fresh_database(backend, "scheduled") as db, \
            fresh_queue(queue, folder, db, args.redis_url) as queue_url:
        print(f"\n[scheduled/{backend}, {queue} queue] {posts} posts for one moment, {n_workers} "
              f"worker(s) x {threads} threads, simulator {low:g}-{high:g} s, failure rate 0", flush=True)
        env = server_env(db, {"QUEUE_URL": queue_url, "SIMULATOR_FAILURE_RATE": "0",
                              "SIMULATOR_MIN_DELAY": str(low), "SIMULATOR_MAX_DELAY": str(high)})
        auth = prepare_app(env)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(Gunicorn(env, folder / "gunicorn.log", args.workers, args.threads))
            workers = [stack.enter_context(QueueWorker(env, folder / f"worker{n}.log", threads))
                       for n in range(n_workers)]
            clip_id = create_clips(server.port, auth, 1)[0]
            moment = (datetime.now(UTC) + timedelta(seconds=args.scheduled_lead)).replace(microsecond=0)

            def schedule(i: int):
                return "POST", "/publishing/schedule", {
                    "clip_id": clip_id, "platform": PLATFORMS[i % len(PLATFORMS)],
                    "scheduled_at": moment.isoformat(),
                    "metadata": {"caption": f"scheduled post {i}", "hashtags": ["launch"]}}, auth

            scheduling = drive(server, "schedule", 8, posts, max(60.0, args.scheduled_lead * 4), schedule)
            overrun = (datetime.now(UTC) - moment).total_seconds()
            print(f"  scheduled {scheduling.completed} in {scheduling.elapsed:.1f} s "
                  f"({scheduling.rps:.0f}/s), statuses {dict(scheduling.statuses)}; the moment is "
                  + (f"{-overrun:.1f} s ahead" if overrun < 0 else f"{overrun:.1f} s PAST"), flush=True)
            cpu_start = sum(w.cpu_seconds() for w in workers)
            deadline = moment + timedelta(seconds=args.max_drain_seconds)
            counts = status_counts(db.url)
            while datetime.now(UTC) < deadline:
                counts = status_counts(db.url)
                if sum(counts.get(s, 0) for s in FINAL) >= posts:
                    break
                time.sleep(0.25)
            drained = sum(counts.get(s, 0) for s in FINAL) >= posts
            cpu = sum(w.cpu_seconds() for w in workers) - cpu_start
            worker_logs = "".join(w.log_text() for w in workers)
            server_log = server.log_path.read_text(errors="replace")
        # Workers stopped (gracefully): what is left in the queue's storage, and in the database.
        backlog = queue_backlog(queue_url)
        logs, _ = publish_logs(db.url)
    started = [log.started_at for log in logs.values() if log.started_at]
    published = [log.published_at for log in logs.values() if log.published_at]
    late = sum(1 for log in logs.values() for t, meta in log.events
               if t == "publish_started" and meta.get("late_by_seconds") is not None)
    drain_s = (max(published) - moment).total_seconds() if published else float("nan")
    mean = (low + high) / 2
    result = {
        "backend": backend, "queue": queue, "workers": n_workers, "threads": threads, "posts": posts,
        "delays": [low, high], "schedule_requests": scheduling.completed,
        "schedule_statuses": dict(scheduling.statuses), "schedule_s": scheduling.elapsed,
        "schedule_rps": scheduling.rps, "moment_overrun_s": overrun, "drained": drained,
        "drain_s": drain_s, "first_start_s": (min(started) - moment).total_seconds() if started else None,
        "posts_per_s": len(published) / drain_s if published else 0.0,
        "bound_per_s": n_workers * threads / mean, "worker_cpu_s": cpu,
        "started_late_events": late, "final_counts": dict(counts), "backlog": backlog,
        "check": summarise_logs(logs, ("publish_scheduled",)),
        "worker_log": scan_log(worker_logs), "server_log": scan_log(server_log),
    }
    first = result["first_start_s"]
    print(f"  drained {'yes' if drained else 'NO'}: last published {drain_s:.1f} s after the moment, "
          f"first started {'-' if first is None else f'{first:.2f}'} s after; {result['posts_per_s']:.1f} posts/s "
          f"({result['posts_per_s'] / result['bound_per_s']:.2f} of {result['bound_per_s']:.0f}/s); "
          f"worker CPU {cpu:.1f} s", flush=True)
    print(f"  check: {result['check']}; queue left {backlog}; worker log {result['worker_log']}", flush=True)
    return result


def report(results: list[dict], args) -> str:
    lines = ["## Scheduled volume: posts due at the same moment", ""]
    if not results:
        return "\n".join(lines + ["(not run)"])
    low, high = results[0]["delays"]
    lines.append(
        f"{args.posts} posts scheduled through `POST /publishing/schedule` (8 client threads) for one "
        f"moment {args.scheduled_lead:g} s ahead, no account (the simulator, {low:g}-{high:g} s, failure "
        f"rate 0), drained by `flask worker --threads {args.worker_threads}` processes started beforehand. "
        "drain = the moment to the last published_at; bound = workers x threads / mean latency.")
    lines.append("")
    rows = []
    for r in results:
        c = r["check"]
        rows.append([
            r["backend"], r["queue"], str(r["workers"]), f"{r['schedule_s']:.1f}",
            f"{r['first_start_s']:.2f}" if r["first_start_s"] is not None else "-",
            f"{r['drain_s']:.1f}" + ("" if r["drained"] else " (NOT drained)"),
            f"{r['posts_per_s']:.1f}", f"{r['posts_per_s'] / r['bound_per_s']:.2f} of {r['bound_per_s']:.0f}/s",
            f"{r['worker_cpu_s'] / max(r['posts'], 1) * 1000:.1f}",
            f"{c['success']}/{r['posts']}", str(c["distinct external ids"]),
            str(c["logs with exactly one publish_successful"]), str(c["logs with more than one attempt"]),
            str(c["left waiting (scheduled/queued)"] + c["left in flight (pending/publishing)"]),
            f"{r['backlog']['pending']}/{r['backlog']['scheduled']}", str(r["started_late_events"])])
    lines.append(table(["database", "queue", "workers", "scheduling s", "first start s", "drain s",
                        "posts/s", "ratio to bound", "worker CPU ms/post", "success",
                        "distinct external ids", "exactly one publish_successful", "more than one attempt",
                        "left behind", "queue left pending/scheduled", "started late (>60 s)"], rows))
    lines.append("")
    for r in results:
        findings = {**{f"worker: {k}": v for k, v in r["worker_log"].items() if v},
                    **{f"gunicorn: {k}": v for k, v in r["server_log"].items() if v}}
        lines.append(f"- {r['backend']} / {r['queue']} queue / {r['workers']} worker(s): scheduling "
                     f"{r['schedule_rps']:.0f} req/s, statuses {r['schedule_statuses']}; logs with exactly "
                     f"their events (publish_scheduled, publish_started, provider, publish_successful) "
                     f"{r['check']['logs whose events are exactly as expected']}; server/worker logs: "
                     + (", ".join(f'"{k}" x{v}' for k, v in findings.items())
                        or "no lock error, pool timeout or traceback"))
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    counts = [int(n) for n in str(args.scheduled_workers).split(",") if n.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scheduled-") as folder:
        for backend in backends(args.backend):
            for queue in queue_kinds(args.queue, args.redis_url):
                if queue == "postgresql" and backend != "postgresql":
                    continue
                for n_workers in counts:
                    results.append(run_one(backend, queue, n_workers, args, Path(folder)))
    return report(results, args), {f"{r['backend']}/{r['queue']}/{r['workers']}": r for r in results}
