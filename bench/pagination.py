"""Pages at scale: every page, the ledger and history services and a publish, at 1,000 and at N
publish logs.

Two databases are filled with the same distribution (publish logs spread over a year, three
ledger events per log, clips = logs / 1000 with at least 20, 12 accounts), the small one with
--small logs (1,000) and the big one with --scale logs (default 100,000; the full run is
--scale 1000000, i.e. 1,000,000 logs and 3,000,000 ledger events). Rows go in by bulk insert
(sqlite3 executemany, PostgreSQL COPY), not through the ORM; the schema comes from the
migrations.

Then the same pages are timed in each database, in this process, through the services the
pages and the API use (dashboard.ledger.list_events, dashboard.history.list_publish_logs), and
through the app's HTTP routes with Flask's test client. Each query is repeated (--repeat) after
a warm-up and its median reported; the figure that matters is the ratio big / small, which
keyset pagination on the right index keeps near 1x.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from .common import Timing, fresh_database, ms, table

# The app reads these at create_app(); benchmark values keep it from writing keys into instance/.
os.environ.setdefault("SECRET_KEY", "bench-secret-key")
os.environ.setdefault("CREDENTIALS_KEYS", Fernet.generate_key().decode())

PLATFORMS = ("instagram", "tiktok", "youtube")
EVENTS_PER_LOG = 3
SPAN = timedelta(days=365)
HISTORY_ENDS_BEFORE_NOW = timedelta(hours=25)
BATCH = 20_000


# --- filling a database -------------------------------------------------------------------------

@dataclass
class Filled:
    logs: int
    events: int
    clips: list[uuid.UUID]
    accounts: list[tuple[uuid.UUID, str]]
    middle: datetime  # a moment in the middle of the data, for a deep cursor
    seconds: float = 0.0


def _sqlite_ts(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME format, naive UTC (what UTCDateTime stores there)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


# The columns generate() gives values, where the database has a default of its own.
GENERATED_COLUMNS = {"attempts"}


def generate(n_logs: int, clips: list[uuid.UUID], accounts: list[tuple[uuid.UUID, str]], seed: int):
    """Yield (publish_log_rows, ledger_event_rows) in batches, oldest first.

    Rows are dicts keyed by column name with Python values (UUID, aware datetime, JSON as text).
    """
    rng = random.Random(seed)
    # The history ends a day ago, so that the accounts' 24-hour quotas are free at both sizes
    # and the timed publishes to an account with a long history are accepted.
    now = datetime.now(UTC) - HISTORY_ENDS_BEFORE_NOW
    start = now - SPAN
    span_s = SPAN.total_seconds()
    offsets = sorted(rng.random() * span_s for _ in range(n_logs))
    by_platform = {p: [a for a, ap in accounts if ap == p] for p in PLATFORMS}

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    logs, events = [], []
    for i, offset in enumerate(offsets):
        at = start + timedelta(seconds=offset)
        done = at + timedelta(milliseconds=200)
        log_id, clip_id = new_id(), clips[rng.randrange(len(clips))]
        platform = PLATFORMS[rng.randrange(3)]
        account = rng.choice(by_platform[platform]) if rng.random() < 0.7 else None
        ok = rng.random() < 0.89
        post_id = str(rng.getrandbits(60)) if ok else None
        logs.append({
            "id": log_id, "clip_id": clip_id, "platform": platform, "social_account_id": account,
            "status": "success" if ok else "failed", "provider": "simulator",
            "external_post_id": post_id,
            "external_url": f"https://example.com/{platform}/{post_id}" if ok else None,
            "error_message": None if ok else "rate_limit_exceeded: too many requests",
            "caption": f"Post {i}", "hashtags": '["launch"]', "requested_at": at,
            "published_at": done if ok else None, "created_at": at, "updated_at": done,
            # Columns of the background engine (issue 4): an immediate publish, one attempt.
            "attempts": 1, "started_at": at,
        })
        account_s = str(account) if account else None
        events.append({"id": new_id(), "event_type": "publish_started", "entity_type": "clip",
                       "entity_id": clip_id, "created_at": at, "metadata": json.dumps(
                           {"platform": platform, "social_account_id": account_s,
                            "publish_log_id": str(log_id)})})
        events.append({"id": new_id(), "event_type": "publish_provider_fallback", "entity_type": "clip",
                       "entity_id": clip_id, "created_at": at + timedelta(milliseconds=1),
                       "metadata": json.dumps({"platform": platform,
                                               "reason": "no_credentials" if account else "no_account",
                                               "publish_log_id": str(log_id)})})
        if ok:
            outcome = {"event_type": "publish_successful", "metadata": json.dumps(
                {"platform": platform, "external_post_id": post_id,
                 "external_url": f"https://example.com/{platform}/{post_id}", "publish_log_id": str(log_id)})}
        else:
            outcome = {"event_type": "publish_failed", "metadata": json.dumps(
                {"platform": platform, "error": "rate_limit_exceeded: too many requests",
                 "publish_log_id": str(log_id)})}
        events.append({"id": new_id(), "entity_type": "clip", "entity_id": clip_id, "created_at": done,
                       **outcome})
        if len(logs) >= BATCH:
            yield logs, events
            logs, events = [], []
    if logs:
        yield logs, events


NEEDLE = "Needle in the archive"


def _archive_clips(n: int):
    """Batches of `n` clips for clip search (the clips of the logs come first: these are older);
    the middle one is the needle."""
    start = datetime.now(UTC) - SPAN - timedelta(days=1)
    batch = []
    for i in range(n):
        batch.append({"id": uuid.uuid4(), "title": NEEDLE if i == n // 2 else f"Archive {i}",
                      "description": "", "media": f"https://cdn.example.com/archive/{i}.mp4",
                      "duration_seconds": 30.0, "created_at": start + timedelta(seconds=i),
                      "updated_at": start + timedelta(seconds=i)})
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _columns(table_name: str) -> list[str]:
    from dashboard.extensions import db

    # Not the columns the database computes itself (publish_logs.counts_at), nor those it
    # defaults that the generated rows leave out (columns added since, such as restarts).
    return [c.name for c in db.metadata.tables[table_name].columns
            if c.computed is None and (c.server_default is None or c.name in GENERATED_COLUMNS)]


def _load_sqlite(path: str, batches, clip_batches=()) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB page cache for the load only
    log_cols, event_cols = _columns("publish_logs"), _columns("ledger_events")

    def value(v):
        if isinstance(v, uuid.UUID):
            return v.hex  # Uuid is CHAR(32) hex on SQLite
        if isinstance(v, datetime):
            return _sqlite_ts(v)
        return v

    log_sql = f"INSERT INTO publish_logs ({', '.join(log_cols)}) VALUES ({', '.join('?' * len(log_cols))})"
    event_sql = (f"INSERT INTO ledger_events ({', '.join(event_cols)}) "
                 f"VALUES ({', '.join('?' * len(event_cols))})")
    clip_cols = list(ARCHIVE_CLIP_COLUMNS)
    clip_sql = f"INSERT INTO clips ({', '.join(clip_cols)}) VALUES ({', '.join('?' * len(clip_cols))})"
    with conn:
        for logs, events in batches:
            conn.executemany(log_sql, ([value(r.get(c)) for c in log_cols] for r in logs))
            conn.executemany(event_sql, ([value(r.get(c)) for c in event_cols] for r in events))
        for clips in clip_batches:  # the search table's triggers fill it as they go
            conn.executemany(clip_sql, ([value(r[c]) for c in clip_cols] for r in clips))
    conn.close()


ARCHIVE_CLIP_COLUMNS = ("id", "title", "description", "media", "duration_seconds", "created_at", "updated_at")


def _load_postgresql(url: str, batches, clip_batches=()) -> None:
    import psycopg

    log_cols, event_cols = _columns("publish_logs"), _columns("ledger_events")
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            for logs, events in batches:
                with cur.copy(f"COPY publish_logs ({', '.join(log_cols)}) FROM STDIN") as copy:
                    for r in logs:
                        copy.write_row([r.get(c) for c in log_cols])
                with cur.copy(f"COPY ledger_events ({', '.join(event_cols)}) FROM STDIN") as copy:
                    for r in events:
                        copy.write_row([r.get(c) for c in event_cols])
            for clips in clip_batches:
                with cur.copy(f"COPY clips ({', '.join(ARCHIVE_CLIP_COLUMNS)}) FROM STDIN") as copy:
                    for r in clips:
                        copy.write_row([r[c] for c in ARCHIVE_CLIP_COLUMNS])
        conn.commit()
        conn.autocommit = True
        # What autovacuum would do shortly after such a load (it vacuums after inserts too, which
        # merges the trigram indexes' GIN pending list: before that, a clip search at 1,000,000
        # clips read the list for 145 ms; after it, 0.06 ms). SQLite keeps no statistics unless
        # asked (`ANALYZE`/`PRAGMA optimize`), and the app never asks, so it is left without.
        conn.execute("VACUUM ANALYZE")


def fill(app, db_url: str, backend: str, n_logs: int, n_clips: int = 0, seed: int = 42) -> Filled:
    """Migrate the empty database, then add clips, accounts, logs and events; then, for clip
    search, clips without logs (`Archive <n>`, one of them `Needle in the archive`) up to
    `n_clips` in all."""
    from flask_migrate import upgrade

    from dashboard.extensions import db
    from dashboard.models import Clip, SocialAccount

    started = time.perf_counter()
    with app.app_context():
        upgrade()
        clips = [Clip(title=f"Clip {i}", description="", media=f"https://cdn.example.com/{i}.mp4",
                      duration_seconds=30.0) for i in range(max(20, n_logs // 1000))]
        accounts = [SocialAccount(platform=p, handle=f"{p}-{i}", display_name=f"{p} {i}")
                    for p in PLATFORMS for i in range(4)]
        db.session.add_all(clips + accounts)
        db.session.commit()
        clip_ids = [c.id for c in clips]
        account_ids = [(a.id, a.platform) for a in accounts]
        db.session.remove()
        db.engine.dispose()
    rng = random.Random(seed)
    times = []
    batches = generate(n_logs, clip_ids, account_ids, rng.randrange(2**32))

    def tracked():
        for logs, events in batches:
            times.append(logs[len(logs) // 2]["requested_at"])
            yield logs, events

    archive = _archive_clips(n_clips - len(clip_ids))
    if backend == "sqlite":
        _load_sqlite(db_url.removeprefix("sqlite:///"), tracked(), archive)
    else:
        _load_postgresql(db_url, tracked(), archive)
    middle = times[len(times) // 2]
    return Filled(n_logs, n_logs * EVENTS_PER_LOG, clip_ids, account_ids, middle,
                  time.perf_counter() - started)


# --- timing the pages ---------------------------------------------------------------------------

@dataclass
class Measure:
    name: str
    timing: Timing | None
    rows: int | str
    note: str = ""


@dataclass
class SizeResult:
    filled: Filled
    measures: dict[str, Measure] = field(default_factory=dict)


@dataclass
class Query:
    """One page to time in one database: `once()` loads it; rows is what the first call gave."""

    name: str
    once: object
    rows: int | str
    note: str = ""


def build_queries(app, filled: Filled) -> dict[str, Query]:
    """The pages to time in one database, each called once already (rows counted)."""
    from dashboard import history, ledger
    from dashboard.extensions import db
    from dashboard.pagination import encode_cursor
    from dashboard.sessions import start_session
    from dashboard.users import create_token, create_user

    queries: dict[str, Query] = {}
    clip = filled.clips[0]
    account = filled.accounts[4][0]  # a tiktok account
    deep_cursor = encode_cursor(filled.middle, uuid.UUID(int=(1 << 128) - 1))

    def service(name: str, call):
        def once():
            with app.app_context():
                rows = len(call().items)
                db.session.remove()
            return rows

        queries[name] = Query(name, once, once())

    LF, HF = ledger.LedgerFilter, history.HistoryFilter
    s = lambda: db.session  # noqa: E731
    with app.app_context():
        second_cursor = ledger.list_events(db.session, LF(), None, 50).next_cursor
        db.session.remove()

    service("ledger: first page", lambda: ledger.list_events(s(), LF(), None, 50))
    service("ledger: second page (cursor)", lambda: ledger.list_events(s(), LF(), second_cursor, 50))
    service("ledger: page in the middle (cursor)", lambda: ledger.list_events(s(), LF(), deep_cursor, 50))
    service("ledger: event_type=publish_failed",
            lambda: ledger.list_events(s(), LF(event_type="publish_failed"), None, 50))
    service("ledger: entity_id=<clip>",
            lambda: ledger.list_events(s(), LF(entity_id=clip), None, 50))
    service("ledger: entity_type=clip & entity_id=<clip>",
            lambda: ledger.list_events(s(), LF(entity_type="clip", entity_id=clip), None, 50))

    service("history: first page", lambda: history.list_publish_logs(db, HF(), None, 50))
    service("history: page in the middle (cursor)", lambda: history.list_publish_logs(db, HF(), deep_cursor, 50))
    service("history: status=failed", lambda: history.list_publish_logs(db, HF(status="failed"), None, 50))
    service("history: platform=tiktok", lambda: history.list_publish_logs(db, HF(platform="tiktok"), None, 50))
    service("history: status=failed & platform=tiktok",
            lambda: history.list_publish_logs(db, HF(status="failed", platform="tiktok"), None, 50))
    service("history: account=<tiktok account>",
            lambda: history.list_publish_logs(db, HF(social_account_id=account), None, 50))
    service("history: clip=<clip>", lambda: history.list_publish_logs(db, HF(clip_id=clip), None, 50))

    # Through the HTTP routes (Flask's test client, in this process): JSON API and pages.
    with app.app_context():
        user = create_user(db, "bench-admin@example.com", "bench-password-not-secret", "admin")
        token = create_token(db, user.id, "bench").plaintext
        user_id = str(user.id)
        session_id = str(start_session(db, user.id))
        db.session.remove()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
        session["sid"] = session_id
    auth = {"Authorization": f"Bearer {token}"}

    def http(name: str, url: str, headers=None, count=None):
        response = client.get(url, headers=headers or {})
        if response.status_code != 200:
            queries[name] = Query(name, None, "-", f"HTTP {response.status_code}")
            return

        def once():
            client.get(url, headers=headers or {}).close()

        queries[name] = Query(name, once, count(response) if count else "-")

    items = lambda r: len(r.get_json()["items"])  # noqa: E731
    http("GET /api/ledger", "/api/ledger?limit=50", auth, items)
    http("GET /api/ledger?event_type=publish_failed", "/api/ledger?limit=50&event_type=publish_failed",
         auth, items)
    http("GET /api/ledger?entity_id=<clip>", f"/api/ledger?limit=50&entity_id={clip}", auth, items)
    http("GET /ledger (page)", "/ledger")
    http("GET /ledger?event_type=publish_failed (page)", "/ledger?event_type=publish_failed")
    http("GET /ledger?entity_id=<clip> (page)", f"/ledger?entity_id={clip}")
    http("GET / (home page)", "/")
    http("GET /accounts (page: every account's quota)", "/accounts/")
    http("GET /schedule (page)", "/schedule")
    http("GET /clips?q=<no match> (page)", "/clips?q=no-such-clip")
    http("GET /api/clips?q=<no match>", "/api/clips?limit=50&q=no-such-clip", auth, items)
    http("GET /api/clips?q=<one clip>", "/api/clips?limit=50&q=needle+in", auth, items)
    http("GET /api/clips?q=<most clips>", "/api/clips?limit=50&q=archive", auth, items)
    http("GET /api/clips?q=<2 characters, no match> (scan)", "/api/clips?limit=50&q=zq", auth, items)
    http("GET /history (page)", "/history")
    http("GET /history?status=failed&platform=tiktok (page)", "/history?status=failed&platform=tiktok")
    # A publish to an account with a long history (~6 % of all logs): its quota is counted.
    publish_account = str(filled.accounts[8][0])  # youtube: 100 posts a day, the timed runs make 23

    def publish_once():
        response = client.post("/publishing/publish", headers=auth, json={
            "clip_id": str(clip), "platform": "youtube", "social_account_id": publish_account,
            "metadata": {"caption": "benchmark", "hashtags": ["bench"]}})
        if response.status_code != 200:
            raise RuntimeError(f"publish answered {response.status_code}: {response.get_data()[:300]!r}")
        response.close()

    publish_once()
    queries["POST /publishing/publish (account with a long history)"] = Query(
        "POST /publishing/publish (account with a long history)", publish_once, 1)
    # Not paginated by design (the seed's contract): every attempt of one clip.
    http("GET /publishing/logs/<clip> (unpaginated)", f"/publishing/logs/{clip}", auth,
         lambda r: len(r.get_json()))
    return queries


def time_interleaved(small: dict[str, Query], big: dict[str, Query], repeat: int,
                     warmup: int = 2) -> tuple[dict[str, Measure], dict[str, Measure]]:
    """Time each query in both databases turn about, so that load from anything else running on
    the machine falls on both sizes alike."""
    out_small, out_big = {}, {}
    for name, q_small in small.items():
        q_big = big[name]
        if q_small.once is None or q_big.once is None:
            out_small[name] = Measure(name, None, q_small.rows, q_small.note)
            out_big[name] = Measure(name, None, q_big.rows, q_big.note)
            continue
        for _ in range(warmup):
            q_small.once()
            q_big.once()
        samples = {"small": [], "big": []}
        for rep in range(repeat):
            order = (("small", q_small), ("big", q_big)) if rep % 2 == 0 else (("big", q_big), ("small", q_small))
            for label, query in order:
                start = time.perf_counter()
                query.once()
                samples[label].append(time.perf_counter() - start)
        out_small[name] = Measure(name, Timing(samples["small"]), q_small.rows)
        out_big[name] = Measure(name, Timing(samples["big"]), q_big.rows)
    return out_small, out_big


def run_backend(backend: str, args) -> dict[str, SizeResult]:
    from contextlib import ExitStack

    from dashboard import create_app
    from dashboard.config import normalise_database_url

    results: dict[str, SizeResult] = {}
    queries: dict[str, dict[str, Query]] = {}
    apps = []
    with ExitStack() as stack:
        # Nothing here is queued, but the app opens its queue: a temporary file, not instance/'s.
        queue_folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pages-queue-"))
        for label, n_logs, n_clips in (("small", args.small, args.small_clips), ("big", args.scale, args.clips)):
            database = stack.enter_context(fresh_database(backend, f"pages_{label}"))
            app = create_app({
                "SQLALCHEMY_DATABASE_URI": normalise_database_url(database.url),
                "WTF_CSRF_ENABLED": False,
                "SIMULATOR_MIN_DELAY": 0.0, "SIMULATOR_MAX_DELAY": 0.0, "SIMULATOR_FAILURE_RATE": 0.0,
                "QUEUE_URL": f"sqlite:///{queue_folder}/{label}.sqlite3",
            })
            apps.append(app)
            print(f"\n[pagination/{backend}] filling {n_logs:,} publish logs and "
                  f"{n_logs * EVENTS_PER_LOG:,} ledger events", flush=True)
            if n_clips:
                print(f"  and clips up to {n_clips:,} in all", flush=True)
            filled = fill(app, database.url, backend, n_logs, n_clips)
            print(f"  filled in {filled.seconds:.1f} s", flush=True)
            results[label] = SizeResult(filled)
            queries[label] = build_queries(app, filled)
        print(f"  timing {args.repeat} repetitions per query, small and big in turn", flush=True)
        small, big = time_interleaved(queries["small"], queries["big"], args.repeat)
        results["small"].measures, results["big"].measures = small, big
        for app in apps:  # close the pools before the databases are dropped
            with app.app_context():
                from dashboard.extensions import db

                db.engine.dispose()
    return results


def report(all_results: dict[str, dict[str, SizeResult]], args) -> str:
    lines = ["## Pages at scale: every page, the ledger and history, a publish", ""]
    for backend, results in all_results.items():
        small, big = results["small"], results["big"]
        lines.append(
            f"### {backend}: {small.filled.logs:,} logs / {small.filled.events:,} events (filled in "
            f"{small.filled.seconds:.1f} s) vs {big.filled.logs:,} logs / {big.filled.events:,} events "
            f"(filled in {big.filled.seconds:.1f} s)")
        lines.append("")
        rows = []
        for name, m_small in small.measures.items():
            m_big = big.measures.get(name)
            if m_small.timing is None or m_big is None or m_big.timing is None:
                note = m_small.note or (m_big.note if m_big else "")
                rows.append([name, "-", "-", "-", "-", "-", "-", f"not timed: {note}"])
                continue
            t_s, t_b = m_small.timing, m_big.timing
            rows.append([name, f"{m_small.rows}/{m_big.rows}", ms(t_s.median), ms(t_b.median),
                         f"{t_b.median / t_s.median:.2f}x", ms(t_s.best), ms(t_b.best),
                         f"{t_b.best / t_s.best:.2f}x"])
        lines.append(table(["query (limit 50)", "rows small/big", "small median ms", "big median ms",
                            "big/small (median)", "small best ms", "big best ms", "big/small (best)"],
                           rows))
        lines.append("")
    lines.append(f"{args.repeat} runs of each query after 2 warm-ups, each in a fresh session, small and "
                 "big in turn; the small database is the baseline, measured in the same process. The "
                 "best run is the steadier figure on a busy machine; the median includes its noise.")
    return "\n".join(lines)


def main(args) -> tuple[str, dict]:
    from .common import backends

    all_results = {b: run_backend(b, args) for b in backends(args.backend)}
    data = {
        backend: {
            label: {
                "logs": r.filled.logs, "events": r.filled.events, "fill_seconds": r.filled.seconds,
                "queries": {n: {"rows": m.rows, "note": m.note,
                                "median_ms": m.timing.median * 1000 if m.timing else None,
                                "best_ms": m.timing.best * 1000 if m.timing else None,
                                "p95_ms": m.timing.p95 * 1000 if m.timing else None}
                            for n, m in r.measures.items()},
            }
            for label, r in results.items()
        }
        for backend, results in all_results.items()
    }
    return report(all_results, args), data
