"""An Idempotency-Key never publishes twice: a repeat of a request whose first sending created its
log but never answered (its process was killed, or it is still in its platform call) answers
from that log's state, however long after, never with a second publish; the final result once
the log is final, unconfirmed included. Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS and the
sweep deletes them. (A real gunicorn worker killed mid-request: test_web_worker_killed.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.extensions import db as _db
from dashboard.models import utcnow

from queue_support import count_logs, iso, released


def key(value="publish-7f3a"):
    return {"Idempotency-Key": value}


def publish_body(clip, caption="Launch"):
    return {"clip_id": str(clip.id), "platform": "tiktok", "metadata": {"caption": caption}}


def forget_the_answer(db, age=timedelta(0)):
    """As if the first request's process had died after its work and before answering."""
    from dashboard.models import IdempotencyRecord

    record = db.session.scalar(select(IdempotencyRecord))
    record.response_status, record.response_body = None, None
    record.created_at = utcnow() - age
    db.session.commit()
    db.session.remove()


def test_a_repeat_after_a_dead_request_answers_from_its_log_and_never_publishes_again(api, db, make_clip):
    clip = make_clip()
    first = api.post("/publishing/publish", headers=key(), json=publish_body(clip))
    forget_the_answer(db, age=timedelta(hours=2))  # long past any "abandoned" delay

    again = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert count_logs() == 1


def test_a_repeat_while_the_first_is_in_its_platform_call_answers_with_its_log(api, db, make_clip):
    from dashboard.models import PublishLog

    clip = make_clip()
    api.post("/publishing/publish", headers=key(), json=publish_body(clip))
    forget_the_answer(db, age=timedelta(hours=2))
    row = db.session.scalar(select(PublishLog))
    row.status, log_id = "pending", row.id
    db.session.commit()
    db.session.remove()

    again = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    # The log to follow, as a live publish past its sync wait answers; nothing published again.
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == str(log_id) and again.json["status"] == "pending"
    assert again.headers["Location"].endswith(f"/publishing/attempts/{log_id}")
    assert count_logs() == 1


def test_an_unconfirmed_first_attempt_is_replayed_as_unconfirmed(api, db, make_clip):
    from dashboard.models import PublishLog

    clip = make_clip()
    api.post("/publishing/publish", headers=key(), json=publish_body(clip))
    forget_the_answer(db)
    row = db.session.scalar(select(PublishLog))
    row.status, row.external_post_id, row.error_message = "unconfirmed", None, "interrupted"
    db.session.commit()
    db.session.remove()

    again = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert again.status_code == 200 and again.json["success"] is False
    assert again.json["error_message"].startswith("Outcome unknown")
    assert count_logs() == 1


def test_a_repeated_schedule_whose_answer_was_lost_answers_with_its_log(api, db, make_clip):
    clip = make_clip()
    body = {**publish_body(clip), "scheduled_at": iso(utcnow() + timedelta(hours=1))}
    first = api.post("/publishing/schedule", headers=key(), json=body)
    forget_the_answer(db, age=timedelta(hours=2))

    again = api.post("/publishing/schedule", headers=key(), json=body)

    assert again.status_code == 202 and again.json["id"] == first.json["id"]
    assert count_logs() == 1


@pytest.mark.parametrize("age, taken_over", [(timedelta(minutes=11), True), (timedelta(minutes=1), False)])
def test_a_key_that_created_nothing_can_be_taken_over_after_a_while(api, db, make_clip, age, taken_over):
    """A reservation with no answer and no log: its request died before creating anything."""
    from dashboard.idempotency import request_fingerprint
    from dashboard.models import IdempotencyRecord, User

    clip = make_clip()
    user = db.session.scalar(select(User))
    db.session.add(IdempotencyRecord(
        user_id=user.id, key="publish-7f3a", endpoint="/publishing/publish",
        request_hash=request_fingerprint("/publishing/publish", publish_body(clip)),
        created_at=utcnow() - age))
    db.session.commit()
    db.session.remove()

    response = api.post("/publishing/publish", headers=key(), json=publish_body(clip))

    assert response.status_code == (200 if taken_over else 409)
    if not taken_over:
        assert "still running" in response.json["detail"]
    assert count_logs() == (1 if taken_over else 0)


def test_keys_expire_after_the_ttl_and_the_sweep_deletes_them(app, api, db, make_clip):
    from dashboard.models import IdempotencyRecord
    from dashboard.publishing.worker import sweep

    app.config["IDEMPOTENCY_KEY_TTL_SECONDS"] = 3600
    clip = make_clip()
    api.post("/publishing/publish", headers=key("old"), json=publish_body(clip))
    api.post("/publishing/publish", headers=key("fresh"), json=publish_body(clip))
    old = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "old"))
    old.created_at = utcnow() - timedelta(seconds=3601)
    db.session.commit()
    db.session.remove()

    again = api.post("/publishing/publish", headers=key("old"), json=publish_body(clip))
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers  # a new request
    assert count_logs() == 3

    old = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "old"))
    old.created_at = utcnow() - timedelta(seconds=3601)
    db.session.commit()
    report = sweep(db)
    db.session.remove()
    assert report["expired_keys"] == 1
    assert released(lambda: sorted(_db.session.scalars(select(IdempotencyRecord.key)))) == ["fresh"]
