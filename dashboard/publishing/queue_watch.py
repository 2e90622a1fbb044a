"""Notice when the task queue comes back, and hand it what fell due meanwhile at once.

While Redis (or the queue's database) is away, enqueueing fails (the logs stay in the database)
and a Redis restarted without persistence has lost the messages it held, scheduled ones
included. The minute sweep would find those posts only once they are REQUEUE_GRACE_SECONDS
overdue, a minute or two late. Each `flask worker` therefore watches its queue every
QUEUE_WATCH_INTERVAL_SECONDS; when it answers again after failing, or is a different Redis
server than before (a restart), it sweeps at once with no grace: every due post is queued
again within seconds, and the conditional claim makes a duplicate message harmless.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from huey.storage import RedisStorage

log = logging.getLogger(__name__)


def queue_identity(huey) -> str:
    """Something that changes when the queue's storage restarts (Redis: its run id); raises
    while the storage is unreachable."""
    if isinstance(huey.storage, RedisStorage):
        return huey.storage.conn.info("server")["run_id"]
    huey.pending_count()
    return "up"


def start(app: Flask, huey) -> threading.Thread | None:
    """Watch `huey`'s storage in a daemon thread of this worker process."""
    interval = app.config["QUEUE_WATCH_INTERVAL_SECONDS"]
    if not interval:
        return None
    stopping = threading.Event()

    def loop():
        from ..extensions import db
        from .worker import sweep

        last = _identity_or_none(huey)
        while not stopping.wait(interval):
            now = _identity_or_none(huey)
            if now is not None and now != last:
                with app.app_context():
                    try:
                        report = sweep(db, requeue_grace=0)
                        log.warning("the queue is back%s: requeued %d due posts",
                                    " (restarted)" if last is not None else "", report["requeued"])
                    except Exception as exc:
                        log.warning("sweep after the queue's return failed (%s)", type(exc).__name__)
                        now = None  # try again at the next look
                    finally:
                        db.session.remove()
            last = now

    thread = threading.Thread(target=loop, name="queue-watch", daemon=True)
    thread.start()
    return thread


def _identity_or_none(huey) -> str | None:
    try:
        return queue_identity(huey)
    except Exception:
        return None
