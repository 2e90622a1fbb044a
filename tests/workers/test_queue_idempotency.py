"""Idempotency-Key: a repeat with the same key and body gets the first answer and publishes
nothing; the same key with another body is a conflict; concurrent twins publish once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from dashboard.extensions import db as _db
from dashboard.models import PublishBatch, utcnow

from queue_support import all_logs, count_logs, fire_together, iso, released, wait_for_status


def key(value="publish-7f3a"):
    return {"Idempotency-Key": value}


def publish_body(clip, caption="Launch"):
    return {"clip_id": str(clip.id), "platform": "tiktok", "metadata": {"caption": caption}}


def count_batches() -> int:
    return released(lambda: _db.session.scalar(select(func.count()).select_from(PublishBatch)))


def test_repeat_with_same_key_and_body_replays_the_first_answer(api, make_clip):
    clip = make_clip()
    first = api.post("/publishing/publish", headers=key(), json=publish_body(clip))
    again = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert first.status_code == again.status_code == 200
    assert first.json["success"] is True
    assert again.json == first.json
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_logs() == 1


def test_same_key_with_another_body_is_a_conflict(api, make_clip):
    clip = make_clip()
    api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    other = api.post("/publishing/publish", headers=key(), json=publish_body(clip, caption="Other"))
    elsewhere = api.post("/publishing/schedule", headers=key(), json={
        **publish_body(clip), "scheduled_at": iso(utcnow() + timedelta(hours=1))})

    for response in (other, elsewhere):
        assert response.status_code == 409
        assert response.mimetype == "application/problem+json"
        assert "different request" in response.json["detail"]
    assert count_logs() == 1


def test_different_users_may_use_the_same_key(api, make_clip):
    clip = make_clip()
    alice, bob = api.as_role("editor"), api.as_role("editor")

    first = alice.post("/publishing/publish", headers=key(), json=publish_body(clip))
    second = bob.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers
    assert first.json["external_post_id"] != second.json["external_post_id"]
    assert count_logs() == 2


def test_a_refused_request_frees_its_key(api, make_clip):
    clip = make_clip()
    refused = api.post("/publishing/publish", headers=key(), json=publish_body(clip, caption="x" * 2300))
    fixed = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert refused.status_code == 400
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers
    assert count_logs() == 1


def test_a_key_must_be_reasonable(api, make_clip):
    clip = make_clip()
    for bad in ("   ", "k" * 201):
        response = api.post("/publishing/publish", headers=key(bad), json=publish_body(clip))
        assert response.status_code == 400
        assert [e["field"] for e in response.json["errors"]] == ["Idempotency-Key"]
    assert count_logs() == 0


def test_concurrent_twins_publish_once(app, api_headers, make_clip):
    app.config.update(SIMULATOR_MIN_DELAY=0.3, SIMULATOR_MAX_DELAY=0.3)
    clip = make_clip()
    headers = {**api_headers("editor"), **key("double-click")}

    responses = fire_together(app, 8, lambda client: client.post(
        "/publishing/publish", headers=headers, json=publish_body(clip)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 202, 409} and statuses[200] >= 1, statuses
    answers = [r.json for r in responses if r.status_code == 200]
    assert all(answer == answers[0] for answer in answers)
    assert sum(1 for r in responses if r.status_code == 200
               and "Idempotent-Replayed" not in r.headers) == 1
    # A twin that came while the first was in its platform call: that log, to follow.
    [log] = all_logs()
    for following in (r for r in responses if r.status_code == 202):
        assert following.json["id"] == str(log.id) and following.headers["Idempotent-Replayed"] == "true"
    # One that came before the first had created its log: told to wait.
    for conflict in (r for r in responses if r.status_code == 409):
        assert "still running" in conflict.json["detail"]


def test_concurrent_twin_schedules_and_batches_are_created_once(app, api_headers, make_account,
                                                                make_clip):
    clip = make_clip()
    account = make_account("instagram")
    headers = api_headers("editor")
    schedule = {**publish_body(clip), "scheduled_at": iso(utcnow() + timedelta(hours=1))}
    batch = {"clip_id": str(clip.id), "targets": [{"social_account_id": str(account.id)}]}

    scheduled = fire_together(app, 6, lambda client: client.post(
        "/publishing/schedule", headers={**headers, **key("sched")}, json=schedule))
    batches = fire_together(app, 6, lambda client: client.post(
        "/publishing/batches", headers={**headers, **key("batch")}, json=batch))

    assert {r.status_code for r in scheduled} <= {202, 409}
    assert len({r.json["id"] for r in scheduled if r.status_code == 202}) == 1
    assert {r.status_code for r in batches} <= {202, 409}
    assert len({r.json["id"] for r in batches if r.status_code == 202}) == 1
    assert count_batches() == 1
    assert sorted(log.status for log in all_logs()) == ["queued", "scheduled"]


def test_replayed_schedule_and_cancel_return_the_first_answer(api, worker, make_clip):
    clip = make_clip()
    body = {**publish_body(clip), "scheduled_at": iso(utcnow() + timedelta(hours=1))}
    first = api.post("/publishing/schedule", headers=key("s1"), json=body)
    again = api.post("/publishing/schedule", headers=key("s1"), json=body)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json["id"] == first.json["id"] and count_logs() == 1

    cancel = api.post(f"/publishing/logs/{first.json['id']}/cancel", headers=key("c1"))
    cancel_again = api.post(f"/publishing/logs/{first.json['id']}/cancel", headers=key("c1"))

    assert cancel.status_code == cancel_again.status_code == 200
    assert cancel_again.headers["Idempotent-Replayed"] == "true"
    assert cancel_again.json["status"] == "cancelled"


def test_replayed_batch_queues_nothing_new(api, worker, make_account, make_clip):
    clip = make_clip()
    accounts = [make_account("instagram"), make_account("tiktok")]
    body = {"clip_id": str(clip.id), "targets": [{"social_account_id": str(a.id)} for a in accounts]}

    first = api.post("/publishing/batches", headers=key("b1"), json=body)
    for log in first.json["logs"]:
        wait_for_status(log["id"], "success")
    again = api.post("/publishing/batches", headers=key("b1"), json=body)

    assert again.status_code == 202 and again.json == first.json
    assert count_batches() == 1 and count_logs() == 2
