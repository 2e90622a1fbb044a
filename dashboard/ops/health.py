"""Readiness, worker heartbeats and the queue's state (for /readyz, /metrics, pages and the CLI).

A queue worker writes a heartbeat into the queue's own storage (Huey's key-value store: the
SQLite file, Redis or PostgreSQL, whichever QUEUE_URL names) every WORKER_HEARTBEAT_SECONDS.
The web processes read the heartbeats to show "worker last seen 3 s ago" and to warn when no
worker has been seen for WORKER_STALE_SECONDS while posts are due.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from ..models import WAITING_STATUSES, PublishLog, PublishStatus, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "worker-heartbeat:"
# Heartbeats older than this are removed by the next worker to start (workers killed long ago).
FORGET_AFTER_SECONDS = 24 * 3600


def worker_name(host: str | None = None, pid: int | None = None) -> str:
    """How a worker is named in heartbeats: host:pid."""
    return f"{host or socket.gethostname()}:{pid or os.getpid()}"


@dataclass(frozen=True)
class WorkerSeen:
    """One worker's last heartbeat."""

    name: str
    host: str
    pid: int
    threads: int
    started_at: float
    seen_at: float
    age_seconds: float


def write_heartbeat(huey, threads: int, started_at: float) -> None:
    """Record that this worker process is alive now."""
    name = worker_name()
    huey.put(HEARTBEAT_PREFIX + name, {
        "host": socket.gethostname(), "pid": os.getpid(), "threads": threads,
        "started_at": started_at, "seen_at": time.time(),
    })


def workers_seen(huey, now: float | None = None) -> list[WorkerSeen]:
    """Every worker's last heartbeat, the most recent first."""
    now = time.time() if now is None else now
    seen = []
    for key, raw in huey.all_results().items():
        if not key.startswith(HEARTBEAT_PREFIX):
            continue
        data = huey.serializer.deserialize(raw)
        seen.append(WorkerSeen(
            name=key[len(HEARTBEAT_PREFIX):], host=data["host"], pid=data["pid"],
            threads=data["threads"], started_at=data["started_at"], seen_at=data["seen_at"],
            age_seconds=max(now - data["seen_at"], 0.0),
        ))
    return sorted(seen, key=lambda worker: worker.age_seconds)


def forget_old_heartbeats(huey) -> None:
    """Drop heartbeats of workers gone for a day (they would list forever)."""
    for worker in workers_seen(huey):
        if worker.age_seconds > FORGET_AFTER_SECONDS:
            huey.delete(HEARTBEAT_PREFIX + worker.name)


class Heartbeat(threading.Thread):
    """A daemon thread writing this worker's heartbeat until stopped (then removing it)."""

    def __init__(self, huey, threads: int, interval: float):
        super().__init__(name="worker-heartbeat", daemon=True)
        self.huey, self.threads, self.interval = huey, threads, interval
        self.started_at = time.time()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                write_heartbeat(self.huey, self.threads, self.started_at)
            except Exception:  # the queue storage is down: say so, keep trying
                log.warning("could not write the worker heartbeat", exc_info=True)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop beating and remove this worker's heartbeat (a clean exit)."""
        self._stop_event.set()
        self.join(timeout=5)
        try:
            self.huey.delete(HEARTBEAT_PREFIX + worker_name())
        except Exception:
            log.warning("could not remove the worker heartbeat", exc_info=True)


def start_heartbeat(app, huey, threads: int) -> Heartbeat:
    """Start writing this worker's heartbeat every WORKER_HEARTBEAT_SECONDS."""
    forget_old_heartbeats(huey)
    beat = Heartbeat(huey, threads, app.config["WORKER_HEARTBEAT_SECONDS"])
    beat.start()
    return beat


@dataclass(frozen=True)
class QueueReport:
    """What the queue holds and what the publish logs say is waiting."""

    pending: int
    scheduled: int
    due: int
    unconfirmed: int
    oldest_due_seconds: float
    workers: list[WorkerSeen] = field(default_factory=list)
    stale_after: float = 60.0

    @property
    def live_workers(self) -> list[WorkerSeen]:
        """Workers with a heartbeat within WORKER_STALE_SECONDS."""
        return [worker for worker in self.workers if worker.age_seconds <= self.stale_after]

    @property
    def last_seen_seconds(self) -> float | None:
        """Seconds since the most recent heartbeat of any worker; None when none was seen."""
        return self.workers[0].age_seconds if self.workers else None

    @property
    def workers_missing(self) -> bool:
        """Posts are due and no worker has been seen within WORKER_STALE_SECONDS."""
        return self.due > 0 and not self.live_workers


def publish_backlog(session) -> tuple[int, int, float]:
    """(due posts not started, unconfirmed posts, age in seconds of the oldest due post)."""
    now = utcnow()
    due, oldest = session.execute(
        select(func.count(), func.min(PublishLog.next_attempt_at)).where(
            PublishLog.status.in_(WAITING_STATUSES), PublishLog.next_attempt_at <= now)
    ).one()
    unconfirmed = session.scalar(
        select(func.count()).where(PublishLog.status == PublishStatus.UNCONFIRMED.value))
    oldest_seconds = (now - oldest).total_seconds() if oldest is not None else 0.0
    return due, unconfirmed, max(oldest_seconds, 0.0)


def queue_report(app) -> QueueReport:
    """The queue's depth, the due and unconfirmed posts, and the workers seen (one read)."""
    from ..extensions import db

    huey = app.extensions["huey"]
    due, unconfirmed, oldest = publish_backlog(db.session)
    db.session.rollback()  # end the read: a scrape must not keep a transaction open
    return QueueReport(
        pending=huey.pending_count(), scheduled=huey.scheduled_count(), due=due,
        unconfirmed=unconfirmed, oldest_due_seconds=oldest, workers=workers_seen(huey),
        stale_after=app.config["WORKER_STALE_SECONDS"],
    )


def queue_report_or_none(app) -> QueueReport | None:
    """The queue report for a page, or None when the queue storage does not answer."""
    try:
        return queue_report(app)
    except Exception:
        log.warning("the task queue is unreachable", exc_info=True)
        return None


def readiness(app) -> dict[str, str]:
    """{"database": "ok"|error, "queue": "ok"|error}: can this process serve and enqueue?"""
    from ..extensions import db

    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
    finally:
        db.session.rollback()
    try:
        app.extensions["huey"].pending_count()
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"unreachable ({type(exc).__name__})"
    return checks
