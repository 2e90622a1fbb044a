"""Races between people and workers: a cancel, a reschedule or a retry that lands while a worker
takes the same post. Whatever the timing, a post is either cancelled and never published, or
published and the cancel refused: never both."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dashboard.models import FINAL_STATUSES, utcnow
from dashboard.publishing import background

from queue_support import all_logs, fire_together, per_log_counts, status_counts, wait_until

POSTS = 40


@pytest.fixture
def slow_ledger(monkeypatch):
    """Requests take 50 ms between reading a post and committing their change (as a loaded
    server may), which opens the window a worker can slip through."""
    real = background.record_event

    def record_event(session, event_type, *args, **kwargs):
        if event_type in ("publish_cancelled", "publish_rescheduled"):
            time.sleep(0.05)
        return real(session, event_type, *args, **kwargs)

    monkeypatch.setattr(background, "record_event", record_event)


def test_cancel_racing_the_worker_never_cancels_a_published_post(app, db, api_headers, worker,
                                                                 slow_ledger, make_clip):
    clip = make_clip()
    headers = api_headers("editor")
    due = utcnow() + timedelta(seconds=1)
    ids = [str(background.schedule_publish(db, clip.id,
                                           background.Target("tiktok", None, f"post {i}", []),
                                           due).id)
           for i in range(POSTS)]
    db.session.remove()
    wait_until(lambda: status_counts()["success"] > 0, what="the worker to start on them")

    def cancel_slice(client):
        index = slices.pop()
        return [(log_id, client.post(f"/publishing/logs/{log_id}/cancel", headers=headers))
                for log_id in ids[index::8]]

    slices = list(range(8))
    answers = [pair for batch in fire_together(app, 8, cancel_slice) for pair in batch]
    wait_until(lambda: sum(status_counts()[s] for s in FINAL_STATUSES) == POSTS,
               what="every post to end")

    logs = {str(log.id): log for log in all_logs()}
    started = per_log_counts("publish_started")
    cancelled_events = per_log_counts("publish_cancelled")
    for log_id, response in answers:
        if response.status_code == 200:
            assert logs[log_id].status == "cancelled"
            assert started[log_id] == 0, f"{log_id} was cancelled and published"
        else:
            assert response.status_code == 409, response.json
            assert logs[log_id].status == "success"
            assert cancelled_events[log_id] == 0


def test_retry_pressed_by_several_people_at_once_retries_once(app, api, api_headers, make_clip):
    app.config.update(SIMULATOR_FAILURE_RATE=1.0, SIMULATOR_FAILURE_KINDS=("permanent",))
    clip = make_clip()
    assert api.post("/publishing/publish", json={"clip_id": str(clip.id), "platform": "youtube"}
                    ).json["success"] is False
    [failed] = all_logs()
    people = [api_headers("editor") for _ in range(4)]

    responses = fire_together(app, 4, lambda client: client.post(
        f"/publishing/logs/{failed.id}/retry", headers=people.pop()))

    assert sorted(r.status_code for r in responses) == [202, 409, 409, 409]
    assert len(all_logs()) == 2
