"""`python -m bench [throughput] [pagination]`: run the benchmarks and print Markdown figures.

Results are also written as JSON under bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone

from .common import REPO_ROOT, machine_summary, pg_server_version


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Publishing dashboard benchmarks (figures, not pass/fail). SQLite always; "
        "PostgreSQL too when DATABASE_URL names a server (a fresh database is made there and dropped).",
    )
    parser.add_argument("which", nargs="*", metavar="throughput|pagination",
                        help="benchmarks to run (default: both)")
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
    pagination = parser.add_argument_group("pagination")
    pagination.add_argument("--small", type=int, default=1000,
                            help="publish logs in the small database (default 1,000)")
    pagination.add_argument("--scale", type=int, default=100_000,
                            help="publish logs in the big database; ledger events are 3x that "
                            "(default 100,000; the full run is --scale 1000000)")
    pagination.add_argument("--repeat", type=int, default=20,
                            help="timed repetitions of each query (default 20)")
    parser.add_argument("--json", help="write the raw figures here (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    unknown = set(args.which) - {"throughput", "pagination"}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose throughput, pagination")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    which = args.which or ["throughput", "pagination"]
    started = time.perf_counter()
    sections, raw = [], {"argv": sys.argv[1:], "machine": machine_summary(),
                         "at": datetime.now(timezone.utc).isoformat()}
    if os.environ.get("DATABASE_URL"):
        raw["postgresql"] = pg_server_version(os.environ["DATABASE_URL"])
    if "throughput" in which:
        from . import throughput

        text, raw["throughput"] = throughput.main(args)
        sections.append(text)
    if "pagination" in which:
        from . import pagination

        text, raw["pagination"] = pagination.main(args)
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
