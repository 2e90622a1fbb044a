"""Scheduling on the real queue: times and time zones, publishing at the time, cancel,
reschedule, and catching up after downtime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dashboard.models import utcnow
from dashboard.publishing import background
from dashboard.publishing.worker import enqueue

from queue_support import (
    count_logs,
    event_types,
    get_log,
    iso,
    log_events,
    messages_for,
    queue_counts,
    wait_for_status,
    wait_until,
)


def schedule_body(clip, when: str, **extra):
    return {"clip_id": str(clip.id), "platform": "tiktok", "scheduled_at": when,
            "metadata": {"caption": "Launch day", "hashtags": ["launch"]}, **extra}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# Times and time zones -------------------------------------------------------------------------

def test_time_with_offset_is_stored_as_utc(api, make_clip):
    clip = make_clip()
    local = (datetime.now(timezone(timedelta(hours=2))) + timedelta(days=1)).replace(microsecond=0)
    response = api.post("/publishing/schedule", json=schedule_body(clip, local.isoformat()))

    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "scheduled"
    assert body["scheduled_at"] == iso(local) and body["scheduled_at"].endswith("Z")
    assert body["next_attempt_at"] == body["scheduled_at"]
    assert (body["attempts"], body["caption"], body["hashtags"]) == (0, "Launch day", ["launch"])
    row = get_log(body["id"])
    assert row.scheduled_at == local and row.scheduled_at.utcoffset() == timedelta(0)
    assert event_types(body["id"]) == ["publish_scheduled"]
    assert log_events(body["id"])[0].event_metadata["scheduled_at"] == iso(local)


def test_local_time_with_iana_timezone_is_stored_as_utc(api, make_clip):
    clip = make_clip()
    zone = ZoneInfo("America/New_York")
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    local = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, 0)
    response = api.post("/publishing/schedule", json=schedule_body(
        clip, local.isoformat(), timezone="America/New_York"))

    assert response.status_code == 202, response.json
    expected = local.replace(tzinfo=zone).astimezone(UTC)
    assert response.json["scheduled_at"] == iso(expected)
    assert get_log(response.json["id"]).scheduled_at == expected


def test_time_without_offset_or_timezone_is_refused_naming_scheduled_at(api, make_clip):
    clip = make_clip()
    naive = (datetime.now() + timedelta(days=1)).replace(microsecond=0).isoformat()
    response = api.post("/publishing/schedule", json=schedule_body(clip, naive))

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == ["scheduled_at"]
    assert count_logs() == 0


def test_unknown_timezone_is_refused_naming_timezone(api, make_clip):
    clip = make_clip()
    response = api.post("/publishing/schedule", json=schedule_body(
        clip, "2030-01-01T09:00:00", timezone="Mars/Olympus_Mons"))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["timezone"]
    assert "Mars/Olympus_Mons" in response.json["detail"]
    assert count_logs() == 0


def test_time_long_past_is_refused(api, make_clip):
    clip = make_clip()
    response = api.post("/publishing/schedule", json=schedule_body(clip, iso(utcnow() - timedelta(hours=1))))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["scheduled_at"]
    assert count_logs() == 0


# Publishing at the time -----------------------------------------------------------------------

def test_scheduled_post_is_published_by_the_worker_after_its_time(api, worker, make_clip):
    clip = make_clip()
    due = utcnow() + timedelta(seconds=1.5)
    response = api.post("/publishing/schedule", json=schedule_body(clip, iso(due)))
    assert response.status_code == 202, response.json

    row = wait_for_status(response.json["id"], "success", "failed", "unconfirmed")
    assert row.status == "success"
    assert row.started_at >= due and row.published_at >= due
    assert row.attempts == 1 and row.external_post_id and row.external_url
    types = event_types(row.id)
    assert types[0] == "publish_scheduled" and types[-1] == "publish_successful"
    assert sorted(types[1:-1]) == ["publish_provider_fallback", "publish_started"]
    started = next(e for e in log_events(row.id) if e.event_type == "publish_started")
    assert started.event_metadata["attempt"] == 1
    assert "late_by_seconds" not in started.event_metadata  # on time


def test_cancelled_post_is_never_published_when_its_time_passes(app, api, worker, make_clip):
    clip = make_clip()
    due = utcnow() + timedelta(seconds=1)
    cancelled = api.post("/publishing/schedule", json=schedule_body(clip, iso(due))).json
    # A post due at the same moment shows when the worker has handled that moment.
    witness = api.post("/publishing/schedule", json=schedule_body(clip, iso(due))).json

    response = api.post(f"/publishing/logs/{cancelled['id']}/cancel")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled" and response.json["next_attempt_at"] is None

    wait_for_status(witness["id"], "success")
    wait_until(lambda: queue_counts(app) == (0, 0) and messages_for(app, cancelled["id"]) == 0,
               what="the cancelled post's message to be consumed")
    worker.stop()  # waits for tasks in flight
    assert get_log(cancelled["id"]).status == "cancelled"
    assert event_types(cancelled["id"]) == ["publish_scheduled", "publish_cancelled"]


def test_cancel_after_success_is_a_conflict(api, worker, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule", json=schedule_body(clip, iso(utcnow()))).json["id"]
    wait_for_status(log_id, "success")

    response = api.post(f"/publishing/logs/{log_id}/cancel")

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "success" in response.json["detail"]
    assert get_log(log_id).status == "success"
    assert "publish_cancelled" not in event_types(log_id)


def test_cancel_of_unknown_log_is_404(api):
    assert api.post(f"/publishing/logs/{uuid.uuid4()}/cancel").status_code == 404
    assert api.post("/publishing/logs/not-a-uuid/cancel").status_code == 400


def test_rescheduled_earlier_is_published_at_the_new_time(api, worker, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule",
                      json=schedule_body(clip, iso(utcnow() + timedelta(hours=3)))).json["id"]
    new_time = utcnow() + timedelta(seconds=1)

    response = api.post(f"/publishing/logs/{log_id}/reschedule", json={"scheduled_at": iso(new_time)})

    assert response.status_code == 200, response.json
    assert response.json["scheduled_at"] == iso(new_time) == response.json["next_attempt_at"]
    row = wait_for_status(log_id, "success", "failed")
    assert row.status == "success" and row.started_at >= new_time
    rescheduled = [e for e in log_events(log_id) if e.event_type == "publish_rescheduled"]
    assert len(rescheduled) == 1
    assert rescheduled[0].event_metadata["to"] == iso(new_time)
    assert event_types(log_id).count("publish_started") == 1


def test_rescheduled_later_is_not_published_at_the_old_time(app, api, worker, make_clip):
    clip = make_clip()
    old_time = utcnow() + timedelta(seconds=1)
    log_id = api.post("/publishing/schedule", json=schedule_body(clip, iso(old_time))).json["id"]
    witness = api.post("/publishing/schedule", json=schedule_body(clip, iso(old_time))).json["id"]
    later = utcnow() + timedelta(hours=2)

    response = api.post(f"/publishing/logs/{log_id}/reschedule",
                        json={"scheduled_at": later.replace(tzinfo=None).isoformat(), "timezone": "UTC"})

    assert response.status_code == 200, response.json
    wait_for_status(witness, "success")
    # The old message has fired and been dropped; only the new one waits for its time.
    wait_until(lambda: queue_counts(app) == (0, 1) and messages_for(app, log_id) == 1,
               what="the old message to be consumed")
    worker.stop()
    row = get_log(log_id)
    assert (row.status, row.scheduled_at, row.attempts) == ("scheduled", later, 0)
    assert "publish_started" not in event_types(log_id)


def test_only_scheduled_posts_can_be_rescheduled(api, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule",
                      json=schedule_body(clip, iso(utcnow() + timedelta(hours=1)))).json["id"]
    assert api.post(f"/publishing/logs/{log_id}/cancel").status_code == 200

    response = api.post(f"/publishing/logs/{log_id}/reschedule",
                        json={"scheduled_at": iso(utcnow() + timedelta(hours=2))})

    assert response.status_code == 409
    assert get_log(log_id).status == "cancelled"


def test_reschedule_needs_an_offset_or_timezone(api, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule",
                      json=schedule_body(clip, iso(utcnow() + timedelta(hours=1)))).json["id"]

    response = api.post(f"/publishing/logs/{log_id}/reschedule",
                        json={"scheduled_at": "2030-01-01T09:00:00"})

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["scheduled_at"]
    assert "publish_rescheduled" not in event_types(log_id)


def test_upcoming_lists_scheduled_posts_soonest_first(db, api, make_clip):
    clip = make_clip()
    now = utcnow()
    later = api.post("/publishing/schedule", json=schedule_body(clip, iso(now + timedelta(days=2)))).json
    sooner = api.post("/publishing/schedule", json=schedule_body(clip, iso(now + timedelta(days=1)))).json
    gone = api.post("/publishing/schedule", json=schedule_body(clip, iso(now + timedelta(days=1)))).json
    api.post(f"/publishing/logs/{gone['id']}/cancel")
    api.post("/publishing/schedule", json=schedule_body(clip, iso(now + timedelta(days=9))))

    rows = background.upcoming(db, now, now + timedelta(days=7))

    assert [str(r.id) for r in rows] == [sooner["id"], later["id"]]


# Downtime -------------------------------------------------------------------------------------

def test_post_missed_during_downtime_is_published_once_late_when_a_worker_starts(
        app, api, start_worker, make_clip):
    clip = make_clip()
    missed = utcnow() - timedelta(minutes=3)  # its time passed while no worker ran
    response = api.post("/publishing/schedule", json=schedule_body(clip, iso(missed)))
    assert response.status_code == 202, response.json
    log_id = response.json["id"]
    assert get_log(log_id).status == "scheduled"

    start_worker(4)
    row = wait_for_status(log_id, "success", "failed")

    assert row.status == "success"
    started = [e for e in log_events(log_id) if e.event_type == "publish_started"]
    assert len(started) == 1
    assert started[0].event_metadata["late_by_seconds"] >= 180
    assert event_types(log_id).count("publish_successful") == 1


def test_missed_post_whose_message_was_lost_is_found_by_the_sweep(app, api, start_worker, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule",
                      json=schedule_body(clip, iso(utcnow() - timedelta(minutes=2)))).json["id"]
    app.extensions["huey"].flush()  # the queue lost its message (a wiped Redis, a new queue file)
    assert messages_for(app, log_id) == 0

    start_worker(2)  # its first sweep runs at start

    row = wait_for_status(log_id, "success", "failed")
    assert row.status == "success"
    assert event_types(log_id).count("publish_started") == 1


def test_repeated_messages_publish_once(app, db, api, start_worker, make_clip):
    clip = make_clip()
    log_id = api.post("/publishing/schedule", json=schedule_body(clip, iso(utcnow()))).json["id"]
    for _ in range(5):
        enqueue(uuid.UUID(log_id))
    assert messages_for(app, log_id) == 6

    running = start_worker(4)
    wait_for_status(log_id, "success")
    wait_until(lambda: messages_for(app, log_id) == 0, what="every message to be consumed")
    running.stop()  # waits for tasks in flight

    assert event_types(log_id).count("publish_started") == 1
    assert event_types(log_id).count("publish_successful") == 1
