"""CPU per publish in this process: the project's POST /publishing/publish against the floor app's.

No gunicorn, no HTTP, no client threads: each app is called through Flask's test client in a
loop, one publish at a time (simulator latency 0, failure rate 0), and the figure is the
process's CPU time per publish, the best of --cpu-rounds rounds of --cpu-publishes each, rounds
of the two apps alternating. On a shared machine this moves far less than requests/s through
gunicorn, and it is the cost that bounds P1. With --profile, one more round of the project runs
under cProfile and its top functions (cumulative time) are printed; the SQL statements of one
publish are counted too.
"""

from __future__ import annotations

import cProfile
import importlib
import io
import os
import pstats
import tempfile
import time
from collections import Counter

from .common import backends, fresh_database, table
from .floor import _body


def _rounds(fn, rounds: int, per_round: int) -> list[float]:
    return [fn(per_round) for _ in range(rounds)]


def run_backend(backend: str, args) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import event

    from dashboard import create_app
    from dashboard.config import normalise_database_url
    from dashboard.extensions import db
    from dashboard.models import Clip
    from dashboard.users import create_token, create_user

    with fresh_database(backend, "cpu") as database, tempfile.TemporaryDirectory(prefix="bench-cpu-") as folder:
        url = normalise_database_url(database.url)
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": url, "QUEUE_URL": f"sqlite:///{folder}/queue.sqlite3",
            "SIMULATOR_MIN_DELAY": 0.0, "SIMULATOR_MAX_DELAY": 0.0, "SIMULATOR_FAILURE_RATE": 0.0,
        })
        with app.app_context():
            upgrade()
            user = create_user(db, "bench-admin@example.com", "bench-password-not-secret", "admin")
            token = create_token(db, user.id, "bench").plaintext
            clips = [Clip(title=f"Benchmark clip {n}", description="made by bench/",
                          media=f"https://cdn.example.com/bench/{n}.mp4", duration_seconds=30.0) for n in range(8)]
            db.session.add_all(clips)
            db.session.commit()
            clip_ids = [str(c.id) for c in clips]
            db.session.remove()
        server_url = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = database.url  # what floor_app reads when imported
        from . import floor_app

        floor = importlib.reload(floor_app).app.test_client()
        project = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        counter = iter(range(10**9))

        def publishes(client, path, headers):
            def run(n: int) -> float:
                start = time.process_time()
                for _ in range(n):
                    response = client.post(path, json=_body(clip_ids, next(counter)), headers=headers)
                    if response.status_code != 200 or not response.get_json()["success"]:
                        raise RuntimeError(f"{path} answered {response.status_code}: {response.get_data()[:300]!r}")
                return (time.process_time() - start) / n
            return run

        runs = {"project": publishes(project, "/publishing/publish", auth), "floor": publishes(floor, "/publish", {})}
        for run in runs.values():
            run(args.cpu_publishes)  # warm-up
        samples: dict[str, list[float]] = {"project": [], "floor": []}
        for n in range(args.cpu_rounds):
            for name in (("project", "floor") if n % 2 == 0 else ("floor", "project")):
                samples[name].append(runs[name](args.cpu_publishes))
        result = {name: min(values) * 1000 for name, values in samples.items()}
        result["ratio"] = result["floor"] / result["project"]

        statements: list[str] = []
        with app.app_context():
            def count(conn, cursor, statement, parameters, context, executemany):
                statements.append(statement.split()[0].upper())
            event.listen(db.engine, "before_cursor_execute", count)
            runs["project"](1)
            event.remove(db.engine, "before_cursor_execute", count)
        result["statements"] = dict(Counter(statements))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            runs["project"](args.cpu_publishes)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
            profiler.dump_stats(os.path.join(tempfile.gettempdir(), f"bench-publish-{backend}.prof"))
            result["profile"] = out.getvalue()
        if server_url is None:
            os.environ.pop("DATABASE_URL")
        else:
            os.environ["DATABASE_URL"] = server_url
        return result


def main(args) -> tuple[str, dict]:
    raw = {}
    rows = []
    for backend in backends(args.backend):
        print(f"\n[publish_cpu/{backend}] {args.cpu_rounds} rounds of {args.cpu_publishes} publishes per app",
              flush=True)
        raw[backend] = r = run_backend(backend, args)
        rows.append([backend, f"{r['project']:.2f}", f"{r['floor']:.2f}", f"{r['ratio']:.2f}x",
                     ", ".join(f"{k} {v}" for k, v in sorted(r["statements"].items()))])
        if args.profile:
            print(r["profile"])
    text = "\n".join([
        "## CPU per publish in one process (best round), project against the floor app", "",
        table(["backend", "project ms", "floor ms", "floor / project", "SQL statements of one publish"], rows), "",
    ])
    return text, raw
