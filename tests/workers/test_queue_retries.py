"""Retries on the real queue: transient failures come back with backoff until the attempts run
out, permanent ones fail at once, unknown outcomes wait for a person (Retry or mark as
published)."""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard.models import utcnow
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.service import next_retry_at
from dashboard.publishing.simulator import PlatformSimulator

from conftest import base_config
from queue_support import (
    event_types,
    get_log,
    iso,
    log_events,
    messages_for,
    queue_counts,
    wait_for_status,
    wait_until,
)

FINAL = ("success", "failed", "unconfirmed", "cancelled")


@pytest.fixture
def app_config(database_uri):
    return {**base_config(database_uri), "SIMULATOR_FAILURE_RATE": 1.0,
            "PUBLISH_MAX_ATTEMPTS": 3, "RETRY_BASE_DELAY": 0.1, "RETRY_MAX_DELAY": 0.2}


def failing(app, *kinds):
    app.config.update(SIMULATOR_FAILURE_RATE=1.0, SIMULATOR_FAILURE_KINDS=kinds)


def publish_later(api, clip, platform="tiktok"):
    """Hand a post to the queue (due now) through the API; its log id."""
    response = api.post("/publishing/schedule", json={
        "clip_id": str(clip.id), "platform": platform, "scheduled_at": iso(utcnow())})
    assert response.status_code == 202, response.json
    return response.json["id"]


def settle(app, worker, log_id):
    """Wait until the queue holds nothing more for this log, then stop the worker (it finishes
    what it runs): whatever happens to the log after this, a worker did not do it."""
    wait_until(lambda: messages_for(app, log_id) == 0 and queue_counts(app)[0] == 0,
               what="the queue to hold nothing for the log")
    worker.stop()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_transient_failures_are_retried_until_the_attempts_run_out(app, api, worker, make_clip):
    failing(app, "transient")
    log_id = publish_later(api, make_clip())

    row = wait_for_status(log_id, *FINAL)

    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    events = log_events(log_id)
    types = [e.event_type for e in events]
    assert types.count("publish_retry_scheduled") == 2
    assert types.count("publish_started") == 3
    assert types.count("publish_failed") == 1 and types[-1] == "publish_failed"
    assert [e.event_metadata["attempt"] for e in events if e.event_type == "publish_started"] == [1, 2, 3]
    # Each retry waited for its time.
    retries = [parse(e.event_metadata["next_attempt_at"]) for e in events
               if e.event_type == "publish_retry_scheduled"]
    starts = [e.created_at for e in events if e.event_type == "publish_started"]
    assert starts[1] >= retries[0] and starts[2] >= retries[1]
    assert row.error_message in {e.event_metadata["error"] for e in events
                                 if e.event_type == "publish_retry_scheduled"} | {row.error_message}


def test_a_retried_post_that_then_passes_is_a_success(app, api, worker, make_clip, monkeypatch):
    calls = []
    real_publish = PlatformSimulator.publish

    def fails_once(self, job):
        calls.append(job)
        if len(calls) == 1:
            return PlatformOutcome(False, error_message="internal_error: TikTok server error",
                                   error_kind="transient")
        return real_publish(self, job)

    app.config.update(SIMULATOR_FAILURE_RATE=0.0)
    monkeypatch.setattr(PlatformSimulator, "publish", fails_once)
    log_id = publish_later(api, make_clip())

    row = wait_for_status(log_id, *FINAL)

    assert (row.status, row.attempts, len(calls)) == ("success", 2, 2)
    types = event_types(log_id)
    assert types.count("publish_retry_scheduled") == 1 and types.count("publish_successful") == 1
    assert "publish_failed" not in types


def test_permanent_failure_is_not_retried(app, api, worker, make_clip):
    failing(app, "permanent")
    log_id = publish_later(api, make_clip(), platform="youtube")

    row = wait_for_status(log_id, *FINAL)
    settle(app, worker, log_id)

    row = get_log(log_id)
    assert (row.status, row.attempts) == ("failed", 1)
    types = event_types(log_id)
    assert "publish_retry_scheduled" not in types
    assert types.count("publish_started") == 1


def test_unknown_outcome_is_unconfirmed_and_never_retried(app, api, worker, make_clip):
    failing(app, "unknown")
    log_id = publish_later(api, make_clip(), platform="instagram")

    wait_for_status(log_id, *FINAL)
    settle(app, worker, log_id)

    row = get_log(log_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("unconfirmed", 1, None)
    assert row.error_message == "Timed out waiting for the media_publish response"
    types = event_types(log_id)
    assert types.count("publish_started") == 1
    assert "publish_unconfirmed" in types
    assert "publish_retry_scheduled" not in types and "publish_failed" not in types
    shown = api.get(f"/publishing/logs/{row.clip_id}").json[0]
    assert shown["status"] == "unconfirmed"


def test_retry_of_a_failed_post_queues_a_new_log_that_is_published(app, api, worker, make_clip):
    failing(app, "permanent")
    failed_id = publish_later(api, make_clip(), platform="youtube")
    assert wait_for_status(failed_id, *FINAL).status == "failed"
    app.config.update(SIMULATOR_FAILURE_RATE=0.0)

    response = api.post(f"/publishing/logs/{failed_id}/retry")

    assert response.status_code == 202, response.json
    retry = response.json
    assert retry["id"] != failed_id and retry["retry_of_id"] == failed_id
    assert retry["status"] == "queued"
    row = wait_for_status(retry["id"], *FINAL)
    assert row.status == "success"
    assert get_log(failed_id).status == "failed"  # the first attempt's record is kept
    queued = [e for e in log_events(retry["id"]) if e.event_type == "publish_queued"]
    assert queued[0].event_metadata["retry_of_id"] == failed_id


def test_a_failed_post_is_retried_once_however_often_retry_is_pressed(app, api, make_clip):
    failing(app, "permanent")
    clip = make_clip()
    failed = api.post("/publishing/publish", json={"clip_id": str(clip.id), "platform": "youtube"})
    assert failed.json["success"] is False
    failed_id = api.get(f"/publishing/logs/{clip.id}").json[0]["id"]

    first = api.post(f"/publishing/logs/{failed_id}/retry")
    second = api.post(f"/publishing/logs/{failed_id}/retry")

    assert first.status_code == 202
    assert second.status_code == 409
    assert first.json["id"] in second.json["detail"]
    assert len(api.get(f"/publishing/logs/{clip.id}").json) == 2


def test_only_failed_or_unconfirmed_posts_are_retried(app, api, worker, make_clip):
    app.config.update(SIMULATOR_FAILURE_RATE=0.0)
    log_id = publish_later(api, make_clip())
    wait_for_status(log_id, "success")

    response = api.post(f"/publishing/logs/{log_id}/retry")

    assert response.status_code == 409
    assert "success" in response.json["detail"]


def test_unconfirmed_post_can_be_marked_published(app, api, worker, make_clip):
    failing(app, "unknown")
    log_id = publish_later(api, make_clip(), platform="instagram")
    wait_for_status(log_id, *FINAL)
    url = "https://www.instagram.com/reel/Cx1234567_8/"

    response = api.post(f"/publishing/logs/{log_id}/mark-published", json={"external_url": url})

    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["external_url"]) == ("success", url)
    assert response.json["published_at"] is not None
    marked = [e for e in log_events(log_id) if e.event_type == "publish_marked_published"]
    assert len(marked) == 1 and marked[0].event_metadata["external_url"] == url
    assert api.post(f"/publishing/logs/{log_id}/mark-published", json={}).status_code == 409


def test_unconfirmed_post_can_be_retried_by_a_person(app, api, worker, make_clip):
    failing(app, "unknown")
    log_id = publish_later(api, make_clip(), platform="youtube")
    wait_for_status(log_id, *FINAL)
    app.config.update(SIMULATOR_FAILURE_RATE=0.0)

    response = api.post(f"/publishing/logs/{log_id}/retry")

    assert response.status_code == 202
    assert wait_for_status(response.json["id"], *FINAL).status == "success"
    assert get_log(log_id).status == "unconfirmed"


def test_immediate_publish_never_retries_and_reports_unknown_outcomes(app, api, make_clip):
    clip = make_clip()
    failing(app, "transient")
    transient = api.post("/publishing/publish", json={"clip_id": str(clip.id), "platform": "tiktok"})
    failing(app, "unknown")
    unknown = api.post("/publishing/publish", json={"clip_id": str(clip.id), "platform": "youtube"})

    assert transient.status_code == unknown.status_code == 200
    assert transient.json["success"] is unknown.json["success"] is False
    assert unknown.json["error_message"].startswith("Outcome unknown: ")
    logs = {log["platform"]: log for log in api.get(f"/publishing/logs/{clip.id}").json}
    assert (logs["tiktok"]["status"], logs["tiktok"]["attempts"]) == ("failed", 1)
    assert logs["youtube"]["status"] == "unconfirmed"


def test_backoff_grows_exponentially_with_jitter_and_a_cap(app):
    app.config.update(PUBLISH_MAX_ATTEMPTS=10, RETRY_BASE_DELAY=30.0, RETRY_MAX_DELAY=200.0)
    for attempts, (low, high) in {1: (15, 30), 2: (30, 60), 3: (60, 120), 4: (100, 200),
                                  9: (100, 200)}.items():
        delays = {(next_retry_at(attempts) - utcnow()).total_seconds() for _ in range(50)}
        assert all(low - 1 <= d <= high for d in delays), (attempts, min(delays), max(delays))
        assert len({round(d, 3) for d in delays}) > 1  # jitter: not all the same
    assert next_retry_at(10) is None
