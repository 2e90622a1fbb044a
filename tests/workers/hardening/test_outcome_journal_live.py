"""A 503 never hides a post that went out, in live mode too: the database goes away (really: a
TCP proxy cut in front of PostgreSQL, SQLite's folder moved away) while a live attempt talks to
the platform (the counting fake over real HTTP).

- Lost after the last step answered: the 503 names the log, the platform's answer (post id, URL,
  trace id) is journalled, and the sweep records it once the database is back.
- Lost after `finalize`, before its result was written: nothing final to journal; the step's claim
  goes stale and the sweep settles the attempt by asking the platform (reconcile). Either way the
  post is published once and the log never stays in flight.
"""

from __future__ import annotations

import json
import threading
import uuid

from sqlalchemy import text

from dashboard.publishing import journal
from dashboard.publishing.worker import sweep

from outage import outage_fixtures
from queue_support import event_types, get_log, wait_for_status

outage, app_config, database_outage = outage_fixtures(
    PROVIDER_MODE="live", PUBLISH_SYNC_WAIT=10.0, PROVIDER_HTTP_TIMEOUT=5.0)


def cut_when(app, platform, outage, endpoint: str) -> threading.Event:
    """Take the database away as the platform receives its first `endpoint` request (the
    request itself goes through: the platform acts on it)."""
    cut = threading.Event()

    def on_request(name):
        if name == endpoint and not cut.is_set():
            with app.app_context():
                outage.cut()
            cut.set()

    platform.on_request = on_request
    return cut


def publish(app, api, clip, account):
    return app.test_client().post("/publishing/publish", headers=api.headers, json={
        "clip_id": str(clip.id), "platform": "tiktok", "social_account_id": str(account.id),
        "metadata": {"caption": "Live!"}})


def only_log_row(outage):
    engine = outage.direct_engine()
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, status, step FROM publish_logs")).one()
    finally:
        engine.dispose()
    return uuid.UUID(str(row.id)), row.status, row.step


def assert_unknown_outcome(response, log_id):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["title"] == "Outcome unknown" and "may be out" in body["detail"]
    assert body["publish_log_id"] == str(log_id)


def test_the_last_steps_answer_is_journalled_and_recorded_by_the_sweep(
        database_outage, app, api, db, platform, live_account, live_clip):
    cut = cut_when(app, platform, database_outage, "confirm")

    response = publish(app, api, live_clip, live_account)

    assert cut.is_set()
    [entry] = journal.entries()
    said = json.loads(entry.read_text())
    assert said["outcome"]["success"] is True and said["outcome"]["external_post_id"]
    database_outage.restore()
    log_id, status, step = only_log_row(database_outage)
    assert_unknown_outcome(response, log_id)
    assert (status, step) == ("publishing", "confirm")  # in flight: its answer is on disk

    report = sweep(db)
    db.session.remove()

    assert report["journaled"] == 1
    done = get_log(log_id)
    post_id = said["outcome"]["external_post_id"]
    assert (done.status, done.external_post_id, done.external_url) == (
        "success", post_id, said["outcome"]["external_url"])
    assert done.trace_id == f"trace-{post_id}"
    assert done.step_started_at is None
    assert event_types(log_id)[-1] == "publish_successful"
    assert journal.entries() == []
    assert platform.publishes_of() == 1


def test_a_lost_write_after_finalize_is_settled_by_asking_the_platform(
        database_outage, app, api, db, platform, live_account, live_clip, worker):
    cut = cut_when(app, platform, database_outage, "finalize")

    response = publish(app, api, live_clip, live_account)

    assert cut.is_set()
    database_outage.restore()
    log_id, status, step = only_log_row(database_outage)
    assert_unknown_outcome(response, log_id)
    assert journal.entries() == []  # no final answer came: nothing to journal
    assert (status, step) == ("publishing", "finalize")
    assert platform.publishes_of() == 1

    app.config["PUBLISH_TIMEOUT_SECONDS"] = 0  # the dead request's claim is stale at once
    report = sweep(db)
    db.session.remove()

    assert report["resumed"] == 1
    done = wait_for_status(log_id, "success")
    assert done.external_post_id in platform.posts
    assert "publish_reconciled" in event_types(log_id)
    assert platform.publishes_of() == 1
