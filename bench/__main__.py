"""`python -m bench [floor] [publish_cpu] [throughput] [concurrency] [crosspost] [scheduled] [pagination]
[youtube_upload] [media] [live_publish]`: run the benchmarks (all by default) and print Markdown figures.

Results are also written as JSON under bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

from .common import DEFAULT_REDIS_URL, REPO_ROOT, machine_summary, pg_server_version

BENCHMARKS = ("floor", "publish_cpu", "throughput", "concurrency", "crosspost", "scheduled", "pagination",
              "youtube_upload", "media", "live_publish")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Publishing dashboard benchmarks (figures, not pass/fail). SQLite always; "
        "PostgreSQL too when DATABASE_URL names a server (a fresh database is made there and dropped).",
    )
    parser.add_argument("which", nargs="*", metavar="|".join(BENCHMARKS),
                        help="benchmarks to run (default: all, in this order)")
    parser.add_argument("--backend", choices=["auto", "sqlite", "postgresql"], default="auto",
                        help="auto: SQLite, plus PostgreSQL when DATABASE_URL is set (default)")
    throughput = parser.add_argument_group("throughput")
    throughput.add_argument("--clients", type=int, default=16,
                            help="client threads for the latency-0 runs (default 16)")
    throughput.add_argument("--requests", type=int, default=3000,
                            help="requests per latency-0 run (default 3000)")
    throughput.add_argument("--slow-clients", type=int, default=64,
                            help="client threads at the default simulator latency (default 64)")
    throughput.add_argument("--slow-requests", type=int, default=3000,
                            help="requests in the slow run (default 3000)")
    throughput.add_argument("--max-seconds", type=float, default=60.0,
                            help="time cap of each run (default 60)")
    throughput.add_argument("--workers", type=int, default=None,
                            help="gunicorn workers (default: gunicorn.conf.py's)")
    throughput.add_argument("--threads", type=int, default=None,
                            help="gunicorn threads per worker (default: gunicorn.conf.py's)")
    floor = parser.add_argument_group("floor (P1: the project against a minimal app, interleaved)")
    floor.add_argument("--floor-requests", type=int, default=4000,
                       help="publishes per server, split over the rounds (default 4000)")
    floor.add_argument("--floor-rounds", type=int, default=8,
                       help="alternating rounds of project and floor (default 8)")
    cpu = parser.add_argument_group("publish_cpu (CPU per publish in one process, project and floor)")
    cpu.add_argument("--cpu-publishes", type=int, default=100, help="publishes per round (default 100)")
    cpu.add_argument("--cpu-rounds", type=int, default=10,
                     help="rounds per app, alternating; the best counts (default 10)")
    cpu.add_argument("--profile", type=int, default=0, metavar="N",
                     help="also profile a round of the project with cProfile and print its top N functions")
    queues = parser.add_argument_group("queue workers (crosspost, scheduled)")
    queues.add_argument("--queue", default="auto",
                        help="queue storage: auto (SQLite, plus Redis when it answers; the default) or "
                        "a comma-separated list of sqlite, redis, postgresql")
    queues.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help=f"Redis database for the Redis queue, flushed before and after; refused "
                        f"when it holds other keys (default {DEFAULT_REDIS_URL}, or BENCH_REDIS_URL)")
    queues.add_argument("--worker-threads", type=int, default=8,
                        help="threads of each `flask worker` (default 8)")
    concurrency = parser.add_argument_group("concurrency")
    concurrency.add_argument("--concurrency-clients", type=int, default=50,
                             help="concurrent clients publishing (default 50)")
    concurrency.add_argument("--concurrency-requests", type=int, default=2000,
                             help="immediate publishes in the run (default 2000; --max-seconds caps it)")
    crosspost = parser.add_argument_group("crosspost")
    crosspost.add_argument("--targets", type=int, default=30,
                           help="accounts of the cross-post: 1 main + N-1 satellites (default 30)")
    crosspost.add_argument("--crosspost-runs", type=int, default=3,
                           help="batches timed per database and queue (default 3)")
    crosspost.add_argument("--crosspost-idle", type=float, default=8.0,
                           help="seconds without work before each batch, so that it meets the worker "
                           "as a manager's click does: idle (default 8; 0 for back to back)")
    scheduled = parser.add_argument_group("scheduled")
    scheduled.add_argument("--posts", type=int, default=1000,
                           help="posts scheduled for the same moment (default 1,000)")
    scheduled.add_argument("--scheduled-workers", default="2",
                           help="`flask worker` processes draining them; a comma-separated list runs "
                           "each (default 2; the full run is 1,2)")
    scheduled.add_argument("--scheduled-lead", type=float, default=15.0,
                           help="seconds between the start of scheduling and the moment (default 15)")
    scheduled.add_argument("--max-drain-seconds", type=float, default=180.0,
                           help="time cap of the drain after the moment (default 180)")
    pagination = parser.add_argument_group("pagination")
    pagination.add_argument("--small", type=int, default=1000,
                            help="publish logs in the small database (default 1,000)")
    pagination.add_argument("--scale", type=int, default=100_000,
                            help="publish logs in the big database; ledger events are 3x that "
                            "(default 100,000; the full run is --scale 1000000)")
    pagination.add_argument("--small-clips", type=int, default=1000,
                            help="clips in the small database, for clip search (default 1,000; "
                            "at least those the logs use)")
    pagination.add_argument("--clips", type=int, default=100_000,
                            help="clips in the big database (default 100,000; the full run is --clips 1000000)")
    pagination.add_argument("--repeat", type=int, default=20,
                            help="timed repetitions of each query (default 20)")
    youtube = parser.add_argument_group("youtube_upload")
    youtube.add_argument("--upload-mb", type=int, default=256,
                         help="size of the uploaded file, MiB (default 256)")
    youtube.add_argument("--upload-chunk-mb", default="8,32",
                         help="YOUTUBE_CHUNK_BYTES to compare, MiB, comma-separated (default 8,32)")
    youtube.add_argument("--upload-runs", type=int, default=3,
                         help="timed uploads of each kind (default 3)")
    media = parser.add_argument_group("media")
    media.add_argument("--size-mb", type=int, default=2048,
                       help="size of the uploaded file in MiB (default 2048: 2 GiB)")
    media.add_argument("--chunk-mb", type=int, default=16,
                       help="PATCH size of the chunked tus run, as the pages send (default 16)")
    media.add_argument("--multipart-mb", type=int, default=512,
                       help="size of the multipart POST /api/clips run in MiB (default 512)")
    media.add_argument("--media-repeat", type=int, default=5,
                       help="timed probes and thumbnails per kind of video (default 5)")
    media.add_argument("--media-dir", default=None,
                       help="folder for the test files (default: the system's temporary folder)")
    live = parser.add_argument_group("live_publish")
    live.add_argument("--live-posts", type=int, default=64,
                      help="publishes queued at once in live mode (default 64)")
    live.add_argument("--processing-seconds", type=float, default=2.0,
                      help="the fake platform's processing delay (default 2)")
    parser.add_argument("--json", help="write the raw figures here (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    unknown = set(args.which) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose {', '.join(BENCHMARKS)}")
    if args.crosspost_runs > 40:
        parser.error("--crosspost-runs: at most 40 (each run posts once more to every account, and "
                     "Instagram allows 50 posts per account in 24 hours)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    which = [name for name in BENCHMARKS if name in (args.which or BENCHMARKS)]
    started = time.perf_counter()
    sections, raw = [], {"argv": sys.argv[1:], "machine": machine_summary(),
                         "at": datetime.now(UTC).isoformat()}
    if os.environ.get("DATABASE_URL"):
        raw["postgresql"] = pg_server_version(os.environ["DATABASE_URL"])
    import importlib

    for name in which:
        module = importlib.import_module(f".{name}", __package__)
        text, raw[name] = module.main(args)
        sections.append(text)
    header = f"Machine: {raw['machine']}" + (f", PostgreSQL {raw['postgresql']}" if raw.get("postgresql") else "")
    print("\n" + "=" * 100)
    print(header + f"; command: python -m bench {' '.join(sys.argv[1:] if argv is None else argv)}")
    print()
    print("\n\n".join(sections))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    path = args.json or REPO_ROOT / "bench" / "results" / f"{datetime.now():%Y%m%d-%H%M%S}.json"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(raw, handle, indent=2, default=str)
    print(f"raw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
