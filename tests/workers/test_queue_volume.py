"""Exactly once at volume: 1,000 posts scheduled for the same moment, taken by two workers (one
in this process, one `flask worker` subprocess, 8 threads each) sharing the queue and the
database. Every post is published once: no duplicate external id, no log left behind."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest

from dashboard.models import utcnow
from dashboard.publishing import background

from conftest import base_config
from queue_support import all_logs, per_log_counts, status_counts, wait_until

# A thousand posts through real workers: deselect with -m "not slow" while iterating.
pytestmark = pytest.mark.slow

POSTS = 1000
PLATFORMS = ("instagram", "tiktok", "youtube")


@pytest.fixture
def app_config(database_uri):
    return base_config(database_uri)  # simulator: no delay, no failures


def test_a_thousand_posts_due_together_are_each_published_exactly_once(
        app, db, start_worker, worker_process, make_clip, caplog):
    clip = make_clip()
    began = time.monotonic()
    due = utcnow() + timedelta(seconds=6)
    ids = set()
    for index in range(POSTS):
        target = background.Target(PLATFORMS[index % 3], None, f"Post {index}", ["launch"])
        ids.add(str(background.schedule_publish(db, clip.id, target, due).id))
    db.session.remove()
    scheduled_in = time.monotonic() - began
    assert status_counts() == {"scheduled": POSTS}

    other = worker_process(8)
    start_worker(8)
    wait_until(lambda: status_counts()["success"] == POSTS, timeout=120, interval=0.25,
               what=f"{POSTS} successes")
    published_in = time.monotonic() - began

    logs = all_logs()
    assert {str(log.id) for log in logs} == ids
    assert {log.status for log in logs} == {"success"}
    assert all(log.attempts == 1 and log.published_at >= due for log in logs)
    external = [(log.platform, log.external_post_id) for log in logs]
    assert len(set(external)) == POSTS
    assert len({log.external_url for log in logs}) == POSTS
    for event_type in ("publish_started", "publish_successful"):
        counts = per_log_counts(event_type)
        assert set(counts) == ids and set(counts.values()) == {1}, event_type
    assert per_log_counts("publish_failed") == {}
    assert other.process.poll() is None, other.output()  # the other worker survived
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []  # no task raised, nothing failed to enqueue
    assert "Traceback" not in other.output(), other.output()
    late = (max(log.published_at for log in logs) - due).total_seconds()
    print(f"\n{POSTS} posts: scheduled in {scheduled_in:.1f} s; the last went out {late:.1f} s "
          f"after their time; {published_in:.1f} s in all")
