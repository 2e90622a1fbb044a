"""Crash safety: a `flask worker` killed with SIGKILL in the middle of a publish leaves no log
stuck in `publishing`. The next worker marks it unconfirmed ("interrupted") and never retries
it by itself (the platform may have received it); everything else it publishes, once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from dashboard.models import FINAL_STATUSES, utcnow

from queue_support import (
    all_logs,
    event_types,
    get_log,
    iso,
    log_events,
    per_log_counts,
    queue_counts,
    status_counts,
    wait_for_status,
    wait_until,
)

# Events that close a log: exactly one each.
CLOSING = ("publish_successful", "publish_failed", "publish_unconfirmed", "publish_interrupted",
           "publish_cancelled")


def queue_post(api, clip, platform="tiktok"):
    response = api.post("/publishing/schedule", json={
        "clip_id": str(clip.id), "platform": platform, "scheduled_at": iso(utcnow())})
    assert response.status_code == 202, response.json
    return response.json["id"]


def older_than(log_id, seconds: float) -> bool:
    started = get_log(log_id).started_at
    return utcnow() - started > timedelta(seconds=seconds)


@pytest.mark.slow  # `flask worker` processes killed with SIGKILL
def test_killed_worker_leaves_an_unconfirmed_log_that_is_not_retried(app, api, worker_process,
                                                                     make_clip):
    first = worker_process(2, SIMULATOR_MIN_DELAY=3, SIMULATOR_MAX_DELAY=3)
    log_id = queue_post(api, make_clip())
    wait_for_status(log_id, "publishing", timeout=30)

    first.kill()  # in the middle of the 3-second platform call
    assert get_log(log_id).status == "publishing"
    wait_until(lambda: older_than(log_id, 1.5), what="the publish to outlast the timeout")
    second = worker_process(2, PUBLISH_TIMEOUT_SECONDS=1, SIMULATOR_MIN_DELAY=3,
                            SIMULATOR_MAX_DELAY=3)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=30)
    assert row.status == "unconfirmed", second.output()
    assert row.error_message.startswith("interrupted")
    assert (row.attempts, row.next_attempt_at, row.external_post_id) == (1, None, None)
    interrupted = [e for e in log_events(log_id) if e.event_type == "publish_interrupted"]
    assert len(interrupted) == 1
    assert interrupted[0].event_metadata["attempt"] == 1
    assert interrupted[0].event_metadata["started_at"] == iso(row.started_at)
    # Not retried: nothing for it in the queue, and the worker (stopped gracefully, so it
    # finishes whatever it runs) never started it again.
    wait_until(lambda: queue_counts(app)[0] == 0, what="the queue to be empty")
    second.stop()
    assert get_log(log_id).status == "unconfirmed"
    types = event_types(log_id)
    assert types.count("publish_started") == 1
    assert "publish_successful" not in types and "publish_retry_scheduled" not in types


@pytest.mark.slow  # `flask worker` processes killed with SIGKILL
def test_after_a_crash_every_log_ends_in_one_final_state(app, api, worker_process, make_clip):
    clip = make_clip()
    first = worker_process(3, SIMULATOR_MIN_DELAY=1, SIMULATOR_MAX_DELAY=1.5)
    ids = [queue_post(api, clip, platform) for platform in ("tiktok", "instagram", "youtube") * 4]

    def in_flight():
        logs = [get_log(log_id) for log_id in ids]
        return [log for log in logs if log.status == "publishing"]

    wait_until(lambda: len(in_flight()) >= 2, timeout=30, what="posts in flight")
    first.kill()
    flying = in_flight()
    wait_until(lambda: all(older_than(log.id, 1.5) for log in flying), what="the timeout to pass")
    # A message the killed worker had taken but not yet claimed is lost with it: the sweep
    # re-enqueues such posts once they are overdue by the grace (1 s here, not 60).
    second = worker_process(4, PUBLISH_TIMEOUT_SECONDS=1, REQUEUE_GRACE_SECONDS=1,
                            SIMULATOR_MIN_DELAY=0, SIMULATOR_MAX_DELAY=0)

    try:
        wait_until(lambda: all(log.status in FINAL_STATUSES for log in all_logs()), timeout=30,
                   what="every log to reach a final state")
    except AssertionError:
        raise AssertionError(f"{status_counts()}; queue {queue_counts(app)}; first worker:\n"
                             f"{first.output()}\nsecond worker:\n{second.output()}") from None
    logs = {str(log.id): log for log in all_logs()}
    assert set(logs) == set(ids)
    statuses = Counter(log.status for log in logs.values())
    assert set(statuses) <= {"success", "unconfirmed"} and statuses["unconfirmed"] >= 2
    for log_id in (str(log.id) for log in flying):
        assert logs[log_id].status == "unconfirmed"
        assert logs[log_id].error_message.startswith("interrupted")
    closing = Counter()
    for event_type in CLOSING:
        closing.update(per_log_counts(event_type))
    assert closing == Counter({log_id: 1 for log_id in ids})  # each log closed once
    started = per_log_counts("publish_started")
    assert all(started[log_id] == 1 for log_id in ids)
    external = [log.external_post_id for log in logs.values() if log.status == "success"]
    assert len(external) == len(set(external))


def test_immediate_publish_cut_off_by_a_dying_web_process_becomes_unconfirmed(app, db, start_worker,
                                                                             make_clip):
    from dashboard.models import PublishLog

    clip = make_clip()
    now = utcnow()

    def pending(started):
        row = PublishLog(clip_id=clip.id, platform="tiktok", status="pending", requested_at=started,
                         started_at=started, attempts=1)
        db.session.add(row)
        db.session.commit()
        return str(row.id)

    dead, alive = pending(now - timedelta(minutes=2)), pending(now)
    db.session.remove()
    app.config.update(PUBLISH_TIMEOUT_SECONDS=60)
    start_worker(1)  # sweeps at start

    row = wait_for_status(dead, "unconfirmed")
    assert row.error_message == "interrupted: the web request stopped during the platform call"
    assert event_types(dead) == ["publish_interrupted"]
    assert get_log(alive).status == "pending"  # still within its time
