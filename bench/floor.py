"""P1: the project's publish path against the stack's floor, in one run, interleaved.

For each backend a fresh database is migrated and given an admin, a token and 8 clips (as in
`throughput`). Then two gunicorn servers run side by side with the same gunicorn.conf.py:
the project (`wsgi:app`, simulator latency 0) and `bench/floor_app.py`, a minimal Flask +
SQLAlchemy app writing the same rows (a publish log and 3 ledger events, in the same two
transactions) with no auth, validation, quota or templates. Both are warmed up, then driven in
alternating rounds (project, floor, floor, project, ...) by the same client threads, so that
whatever else the machine is doing falls on both alike. The figure is the project's requests/s
as a ratio of the floor's, over all rounds; the per-round ratios show the spread.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

from .common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Gunicorn,
    flask_cli,
    fresh_database,
    request,
    server_env,
    table,
)
from .throughput import PLATFORMS, LoadResult, drive


def _body(clip_ids: list[str], i: int) -> dict:
    return {"clip_id": clip_ids[i % len(clip_ids)], "platform": PLATFORMS[i % len(PLATFORMS)],
            "metadata": {"caption": f"benchmark post {i}", "hashtags": ["launch", "bench"]}}


def _combined(results: list[LoadResult]) -> tuple[float, float]:
    """Requests/s and server CPU ms per request over several runs."""
    requests = sum(r.completed for r in results)
    elapsed = sum(r.elapsed for r in results)
    cpu = sum(r.server_cores * r.elapsed for r in results)
    return requests / elapsed, cpu / max(requests, 1) * 1000


def run_backend(backend: str, args, workdir: Path) -> dict:
    with fresh_database(backend, "floor") as db:
        print(f"\n[floor/{backend}] migrating; admin, token and clips", flush=True)
        log_dir = workdir / backend
        log_dir.mkdir(parents=True, exist_ok=True)
        env = server_env(db, {"QUEUE_URL": f"sqlite:///{log_dir / 'queue.sqlite3'}",
                              "SIMULATOR_MIN_DELAY": "0", "SIMULATOR_MAX_DELAY": "0",
                              "SIMULATOR_FAILURE_RATE": "0"})
        flask_cli(env, "db", "upgrade")
        flask_cli(env, "users", "create", ADMIN_EMAIL, "--role", "admin", "--password-stdin",
                  stdin=ADMIN_PASSWORD + "\n")
        token = flask_cli(env, "tokens", "create", ADMIN_EMAIL, "--name", "bench").strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        rounds: list[tuple[LoadResult, LoadResult]] = []
        with Gunicorn(env, log_dir / "project.log", args.workers, args.threads) as project:
            clip_ids = []
            for n in range(8):
                status, body = request(project.port, "POST", "/api/clips", {
                    "title": f"Benchmark clip {n}", "description": "made by bench/",
                    "media": f"https://cdn.example.com/bench/{n}.mp4", "duration_seconds": 30.0,
                }, auth)
                if status != 201:
                    raise RuntimeError(f"creating a clip answered {status}: {body[:300]!r}")
                clip_ids.append(json.loads(body)["id"])
            with Gunicorn(env, log_dir / "floor.log", args.workers, args.threads,
                          app="bench.floor_app:app") as floor:
                servers = {
                    "project": (project, lambda i: ("POST", "/publishing/publish", _body(clip_ids, i), auth)),
                    "floor": (floor, lambda i: ("POST", "/publish", _body(clip_ids, i), {})),
                }
                for server, make in servers.values():
                    drive(server, "warm-up", args.clients, args.clients * 8, 30, make)
                per_round = max(args.floor_requests // args.floor_rounds, args.clients)
                for n in range(args.floor_rounds):
                    order = ("project", "floor") if n % 2 == 0 else ("floor", "project")
                    done = {}
                    for name in order:
                        server, make = servers[name]
                        done[name] = drive(server, name, args.clients, per_round, args.max_seconds, make)
                    rounds.append((done["project"], done["floor"]))
                    print(f"  round {n + 1}: project {done['project'].rps:.0f}/s, floor "
                          f"{done['floor'].rps:.0f}/s, ratio {done['project'].rps / done['floor'].rps:.2f}",
                          flush=True)
        project_runs = [p for p, _ in rounds]
        floor_runs = [f for _, f in rounds]
        project_rps, project_cpu = _combined(project_runs)
        floor_rps, floor_cpu = _combined(floor_runs)
        bad = sum(r.non_2xx + r.transport_errors for r in project_runs + floor_runs)
        return {
            "backend": backend, "project_rps": project_rps, "floor_rps": floor_rps,
            "ratio": project_rps / floor_rps,
            "round_ratios": [p.rps / f.rps for p, f in rounds],
            "project_cpu_ms": project_cpu, "floor_cpu_ms": floor_cpu,
            "project_p50_ms": statistics.median(x for r in project_runs for x in r.latencies) * 1000,
            "floor_p50_ms": statistics.median(x for r in floor_runs for x in r.latencies) * 1000,
            "errors": bad, "requests_per_round": per_round,
        }


def report(results: list[dict], args) -> str:
    lines = ["## P1: publish against the floor app (latency 0, interleaved)", "",
             f"{args.clients} client threads, {args.floor_rounds} alternating rounds of "
             f"{results[0]['requests_per_round'] if results else '-'} requests per server; both servers "
             "from gunicorn.conf.py, side by side.", ""]
    rows = []
    for r in results:
        spread = f"{min(r['round_ratios']):.2f}-{max(r['round_ratios']):.2f}"
        rows.append([r["backend"], f"{r['project_rps']:.0f}", f"{r['floor_rps']:.0f}", f"**{r['ratio']:.2f}x**",
                     spread, f"{r['project_p50_ms']:.1f} / {r['floor_p50_ms']:.1f}",
                     f"{r['project_cpu_ms']:.2f} / {r['floor_cpu_ms']:.2f}", str(r["errors"])])
    lines.append(table(["backend", "project req/s", "floor req/s", "project / floor", "per round",
                        "p50 ms project / floor", "server CPU ms per request project / floor",
                        "non-2xx + transport errors"], rows))
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        for backend in backends(args.backend):
            results.append(run_backend(backend, args, Path(folder)))
    return report(results, args), {r["backend"]: r for r in results}
