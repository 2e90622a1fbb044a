"""Prometheus metrics: event counters in the processes, states counted from the database.

- Counters and histograms (publish outcomes, publish latency, request latency) live in the
  process that saw the event. Under gunicorn's several workers, and with queue workers on the
  same machine, they go through prometheus_client's multiprocess mode: every process writes to
  PROMETHEUS_MULTIPROC_DIR and a scrape sums the files. Files are named after host and pid, so
  containers sharing the directory (compose.yaml) do not collide.
- States (queue depth, posts due, unconfirmed posts, oldest due post, workers seen) are counted
  at scrape time from the database and the queue, so every web process answers the same.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


# Made once per process (again in a forked child): prometheus_client asks for the identifier
# on every increment (to notice a fork), under its one lock, and a process does not change host.
_HOST = socket.gethostname().replace("_", "-")
_identifier = ""


def _identify_process() -> None:
    global _identifier
    _identifier = f"{_HOST}-{os.getpid()}"


_identify_process()
os.register_at_fork(after_in_child=_identify_process)


def _process_identifier() -> str:
    """Host and pid: two containers sharing the directory both have a pid 7."""
    return _identifier


if os.environ.get(MULTIPROC_DIR_ENV):
    values.ValueClass = values.MultiProcessValue(_process_identifier)

PUBLISH_OUTCOMES = Counter(
    "dashboard_publish_outcomes",
    "Finished publish attempts, by platform, provider (or simulator) and resulting status.",
    ["platform", "provider", "status"],
    registry=None,
)
PUBLISH_DURATION = Histogram(
    "dashboard_publish_duration_seconds",
    "Time from the start of a publish attempt to its recorded outcome.",
    ["platform", "provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
    registry=None,
)
REQUEST_DURATION = Histogram(
    "dashboard_http_request_duration_seconds",
    "HTTP request latency by endpoint (the Flask view name), method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
EVENT_METRICS = (PUBLISH_OUTCOMES, PUBLISH_DURATION, REQUEST_DURATION)


# Each label set's series, kept once looked up: `labels()` takes the metric's lock and
# converts every value on each call. A race adds the same series twice, harmlessly.
_publish_series: dict[tuple[str, str | None, str], tuple[Counter, Histogram]] = {}
_request_series: dict[tuple[str, str, int], Histogram] = {}


def observe_publish(platform: str, provider: str | None, status: str, seconds: float) -> None:
    """Count one finished publish attempt."""
    key = (platform, provider, status)
    series = _publish_series.get(key)
    if series is None:
        provider = provider or "none"
        series = _publish_series[key] = (PUBLISH_OUTCOMES.labels(platform, provider, status),
                                         PUBLISH_DURATION.labels(platform, provider))
    outcomes, duration = series
    outcomes.inc()
    duration.observe(max(seconds, 0.0))


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one HTTP request."""
    key = (endpoint, method, status)
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = REQUEST_DURATION.labels(endpoint, method, str(status))
    series.observe(seconds)


class StateCollector:
    """Gauges read from the database and the queue at scrape time."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from .health import queue_report

        report = queue_report(self.app)
        gauges = (
            ("dashboard_queue_pending", "Messages waiting in the task queue.", report.pending),
            ("dashboard_queue_scheduled", "Messages held by the queue for a later time.",
             report.scheduled),
            ("dashboard_posts_due_not_started",
             "Scheduled or queued posts whose time has come and that no worker has started.",
             report.due),
            ("dashboard_posts_unconfirmed",
             "Posts whose outcome is unknown, waiting for a person to check.", report.unconfirmed),
            ("dashboard_oldest_due_post_age_seconds",
             "How long the oldest due post has waited for a worker (0 when none).",
             report.oldest_due_seconds),
            ("dashboard_workers_seen",
             "Queue workers with a heartbeat within WORKER_STALE_SECONDS.", len(report.live_workers)),
        )
        for name, help_text, value in gauges:
            yield GaugeMetricFamily(name, help_text, value=value)
        seen = GaugeMetricFamily("dashboard_worker_last_seen_seconds",
                                 "Seconds since each queue worker's last heartbeat.",
                                 labels=["worker"])
        for worker in report.workers:
            seen.add_metric([worker.name], worker.age_seconds)
        yield seen


def render_metrics(app) -> bytes:
    """The exposition text: this process's (or every process's) events and the states."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        for metric in EVENT_METRICS:
            registry.register(metric)
    registry.register(StateCollector(app))
    return generate_latest(registry)


def elapsed_since(started: float) -> float:
    """Seconds since a time.perf_counter() reading."""
    return time.perf_counter() - started


_outcome_log = logging.getLogger("dashboard.publishing.outcome")
# A log's status after an attempt, as the outcome label says it (queued again = a retry).
_OUTCOME_OF_STATUS = {"queued": "retry"}


@dataclass(frozen=True)
class PublishReport:
    """One attempt's outcome, taken from its log before the commit and reported after it."""

    log_id: str
    platform: str
    provider: str | None
    account_id: str | None
    outcome: str
    seconds: float
    attempt: int

    @classmethod
    def of(cls, log_row) -> PublishReport:
        """Snapshot a log whose outcome was just recorded (before the commit expires it)."""
        from ..models import utcnow

        started = log_row.started_at or log_row.requested_at
        return cls(
            log_id=str(log_row.id), platform=log_row.platform, provider=log_row.provider,
            account_id=str(log_row.social_account_id) if log_row.social_account_id else None,
            outcome=_OUTCOME_OF_STATUS.get(log_row.status, log_row.status),
            seconds=max((utcnow() - started).total_seconds(), 0.0), attempt=log_row.attempts,
        )

    def report(self) -> None:
        """One INFO line and the outcome metrics (call once the outcome is committed)."""
        observe_publish(self.platform, self.provider, self.outcome, self.seconds)
        _outcome_log.info(
            "publish %s: log %s on %s (%s), account %s, %.3f s, attempt %d",
            self.outcome, self.log_id, self.platform, self.provider or "-",
            self.account_id or "-", self.seconds, self.attempt,
            extra={"publish_log_id": self.log_id, "platform": self.platform,
                   "provider": self.provider, "social_account_id": self.account_id,
                   "outcome": self.outcome, "duration_seconds": round(self.seconds, 3),
                   "attempt": self.attempt},
        )
