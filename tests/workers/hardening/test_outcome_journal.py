"""A 503 never hides a post that went out: when the platform answered but the database could not
record it, the answer is a problem+json 503 saying the outcome is unknown, with the log id; the
platform's answer is kept in the journal and the log is resolved from it once the database is
back (the sweep), never left `pending`."""

from __future__ import annotations

import json
import threading
import time
import uuid

from sqlalchemy import text

from dashboard.models import PublishLog, PublishStatus, utcnow
from dashboard.publishing import journal
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.worker import sweep

from outage import outage_fixtures
from queue_support import event_types, get_log


def test_a_journaled_answer_resolves_its_pending_log_at_the_next_sweep(app, db, make_clip):
    clip = make_clip()
    row = PublishLog(clip_id=clip.id, platform="tiktok", status=PublishStatus.PENDING.value,
                     requested_at=utcnow(), started_at=utcnow(), attempts=1)
    db.session.add(row)
    db.session.commit()
    log_id = row.id
    journal.keep(log_id, PlatformOutcome(True, external_post_id="7202", external_url="https://t.example/7202"),
                 may_retry=False)
    db.session.remove()

    report = sweep(db)
    db.session.remove()

    assert report["journaled"] == 1
    done = get_log(log_id)
    assert (done.status, done.external_post_id) == ("success", "7202")
    assert event_types(log_id) == ["publish_successful"]
    assert journal.entries() == []


outage, app_config, database_outage = outage_fixtures(SIMULATOR_MIN_DELAY=1.5, SIMULATOR_MAX_DELAY=1.5)


def test_database_lost_during_the_platform_call_is_a_503_and_the_post_is_recorded_later(
        database_outage, app, api, db, make_clip):
    outage = database_outage
    clip = make_clip()
    direct = outage.direct_engine()
    answers = []
    thread = threading.Thread(target=lambda: answers.append(app.test_client().post(
        "/publishing/publish", headers=api.headers,
        json={"clip_id": str(clip.id), "platform": "tiktok", "metadata": {"caption": "Out now"}})))
    thread.start()
    deadline = time.monotonic() + 10
    log_id = None
    while log_id is None and time.monotonic() < deadline:
        with direct.connect() as conn:
            log_id = conn.scalar(text("SELECT id FROM publish_logs WHERE status = 'pending'"))
        time.sleep(0.05)
    assert log_id is not None, "the publish never reached its platform call"
    log_id = uuid.UUID(str(log_id))

    direct.dispose()
    outage.cut()  # the database goes away while the platform is answering
    thread.join(20)
    [response] = answers

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["title"] == "Outcome unknown"
    assert body["publish_log_id"] == str(log_id)
    assert "may be out" in body["detail"]
    [entry] = journal.entries()
    said = json.loads(entry.read_text())["outcome"]
    assert said["success"] is True and said["external_post_id"]
    outage.restore()
    with direct.connect() as conn:
        assert conn.scalar(text("SELECT status FROM publish_logs")) == "pending"

    report = sweep(db)
    db.session.remove()

    assert report["journaled"] == 1 and report["interrupted"] == 0
    done = get_log(log_id)
    assert (done.status, done.external_post_id, done.external_url) == (
        "success", said["external_post_id"], said["external_url"])
    assert event_types(log_id)[-1] == "publish_successful"
    assert journal.entries() == []
    direct.dispose()
