"""Live-mode publish throughput: 64 concurrent publishes whose processing takes 2 s on the platform.

The platform is the counting fake (tests/fakes/counting.py) over real HTTP on loopback: a
quota check, a chunked upload, processing that lasts --processing-seconds from the last byte
(polled every 0.5 s), the publish call and the post's URL. The app runs in this process with a
fresh SQLite database and queue, PROVIDER_MODE=live, and a real Huey consumer with
--worker-threads threads; --live-posts posts (64) are queued at once and the database is polled
until every log is final.

Two runs, same process, same fake:
- **pipeline**: the product. A processing poll that finds the video not ready ends the step with
  `wait_seconds`; the next poll is a scheduled queue task, so the thread is free for other posts.
- **sleeping** (the baseline): the same client, but its processing step sleeps in the worker
  thread until the video is ready, as a naive client would.

Reported: the wall time from queueing to the last final log, its ratio to the platform's
processing delay (the latency bound: 1.0 would be "every post waited only for the platform"), the
baseline's wall time and the ratio baseline / pipeline; and the exactly-once check (successes,
publishes counted by the fake).
"""

from __future__ import annotations

import copy
import os
import signal
import tempfile
import time
from pathlib import Path

from .common import table


def run_one(mode: str, args, workdir: Path) -> dict:
    from sqlalchemy import func, select

    from dashboard import create_app
    from dashboard.config import PLATFORM_LIMIT_DEFAULTS
    from dashboard.credentials import set_account_credentials
    from dashboard.extensions import db
    from dashboard.models import FINAL_STATUSES, Clip, PublishLog, SocialAccount
    from dashboard.publishing import background
    from dashboard.publishing.providers import LIVE_CLIENTS
    from tests.fakes import FakeServer
    from tests.fakes.counting import CountingClient, CountingPlatform

    class SleepingClient(CountingClient):
        """The baseline: waits for processing inside the step, holding the worker thread."""

        def wait_for_processing(self, job, state, checkpoint):
            while True:
                result = super().wait_for_processing(job, state, checkpoint)
                if not result.wait_seconds:
                    return result
                time.sleep(result.wait_seconds)

    folder = workdir / mode
    folder.mkdir()
    video = folder / "clip.mp4"
    video.write_bytes(os.urandom(256 * 1024))
    limits = copy.deepcopy(PLATFORM_LIMIT_DEFAULTS)
    limits["tiktok"]["posts_per_24h"] = 100_000
    platform = CountingPlatform(processing_seconds=args.processing_seconds)
    client_class = CountingClient if mode == "pipeline" else SleepingClient
    with FakeServer(platform.app) as server:
        client_class.base_url = server.url
        client_class.poll_wait = 0.5
        LIVE_CLIENTS["tiktok"] = client_class
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}",
            "QUEUE_URL": f"sqlite:///{folder / 'queue.sqlite3'}",
            "SECRET_KEY": "bench", "PROVIDER_MODE": "live", "PLATFORM_LIMITS": limits,
            "PROVIDER_HTTP_TIMEOUT": 30.0, "SIMULATOR_FAILURE_RATE": 0.0,
        })
        with app.app_context():
            db.create_all()
            account = SocialAccount(platform="tiktok", handle="bench", display_name="Bench")
            clip = Clip(title="Bench", description="", media=str(video), duration_seconds=20.0)
            db.session.add_all([account, clip])
            db.session.commit()
            set_account_credentials(db, account.id, {"client_key": "k", "client_secret": "s",
                                                     "access_token": "t"})
            huey = app.extensions["huey"]
            consumer = huey.create_consumer(workers=args.worker_threads, worker_type="thread",
                                            periodic=False, initial_delay=0.02, backoff=1.2,
                                            max_delay=0.2, scheduler_interval=1,
                                            check_worker_health=False)
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            consumer.start()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            target = background.Target("tiktok", account.id, "bench", [])
            started = time.perf_counter()
            for _ in range(args.live_posts):
                background.queue_publish(db, clip.id, target)
            deadline = started + args.max_drain_seconds
            while True:
                done = db.session.scalar(select(func.count()).select_from(PublishLog)
                                         .where(PublishLog.status.in_(FINAL_STATUSES)))
                db.session.rollback()
                if done >= args.live_posts or time.perf_counter() > deadline:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - started
            consumer.stop(graceful=True)
            successes = db.session.scalar(select(func.count()).select_from(PublishLog)
                                          .where(PublishLog.status == "success"))
            db.session.remove()
            huey.storage.close()
            db.engine.dispose()
    return {"mode": mode, "posts": args.live_posts, "final": done, "success": successes,
            "published": platform.publishes_of(), "wall_seconds": wall,
            "bound_ratio": wall / args.processing_seconds}


def main(args) -> tuple[str, dict]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        for mode in ("pipeline", "sleeping"):
            runs.append(run_one(mode, args, Path(folder)))
    pipeline, sleeping = runs
    rows = [[run["mode"], str(run["posts"]), f"{run['wall_seconds']:.1f} s",
             f"{run['bound_ratio']:.2f}", f"{run['success']}/{run['posts']}",
             str(run["published"])] for run in runs]
    text = (f"### Live publishing: {args.live_posts} concurrent publishes, processing "
            f"{args.processing_seconds:g} s, {args.worker_threads} worker threads\n\n"
            + table(["run", "posts", "wall", "wall / processing delay", "succeeded",
                     "published by the fake"], rows)
            + f"\n\nsleeping baseline / pipeline: {sleeping['wall_seconds'] / pipeline['wall_seconds']:.1f}x "
            "(the pipeline's threads are free while the platform processes)")
    return text, {"runs": runs}
