"""The live publish pipeline (publishing/pipeline.py, reconcile.py) against a tiny platform served
over real HTTP (tests/fakes/counting.py), through the real API, the real queue and real workers.

The platform counts what it really published: every test that ends in success asserts it
published exactly once.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from dashboard.extensions import db as _db
from dashboard.models import FINAL_STATUSES, LedgerEvent, PublishLog, SocialAccount, utcnow
from dashboard.publishing.models import PublishRequest
from dashboard.publishing.service import publish_clip
from dashboard.publishing.worker import sweep
from tests.fakes.counting import CountingClient

from conftest import base_config
from queue_support import (
    VIDEO_BYTES,
    event_types,
    get_log,
    iso,
    log_events,
    messages_for,
    released,
    wait_for_status,
    wait_until,
)


@pytest.fixture
def app_config(database_uri):
    config = base_config(database_uri)
    config.update(PROVIDER_MODE="live", PUBLISH_SYNC_WAIT=10.0, PROVIDER_HTTP_TIMEOUT=5.0,
                  RETRY_BASE_DELAY=0.1, RETRY_MAX_DELAY=0.2)
    return config


@pytest.fixture
def clip(live_clip):
    return live_clip


def publish(api, clip, account):
    return api.post("/publishing/publish", json={
        "clip_id": str(clip.id), "platform": "tiktok", "social_account_id": str(account.id),
        "metadata": {"caption": "Live!", "hashtags": ["launch"]}})


def schedule_now(api, clip, account) -> str:
    response = api.post("/publishing/schedule", json={
        "clip_id": str(clip.id), "platform": "tiktok", "social_account_id": str(account.id),
        "scheduled_at": iso(utcnow())})
    assert response.status_code == 202, response.json
    return response.json["id"]


def steps_of(log_id) -> list[str]:
    return [e.event_metadata["step"] for e in log_events(log_id) if e.event_type == "publish_step"]


def only_log() -> PublishLog:
    rows = released(lambda: list(_db.session.scalars(_db.select(PublishLog))))
    assert len(rows) == 1
    return rows[0]


# The happy path, step by step -----------------------------------------------------------------

def test_a_live_publish_runs_every_step_and_publishes_once(api, platform, clip, live_account):
    response = publish(api, clip, live_account)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["success"] is True
    post_id = body["external_post_id"]
    assert platform.posts[post_id] and platform.publishes_of() == 1
    assert body["external_url"] == f"https://counting.example/p/{post_id}"
    row = only_log()
    assert (row.status, row.provider, row.step) == ("success", "counting_fake", "confirm")
    assert row.platform_state["offset"] == VIDEO_BYTES and row.platform_state["post_id"] == post_id
    assert row.trace_id == f"trace-{post_id}"
    assert platform.bytes_received == VIDEO_BYTES
    assert event_types(row.id) == ["publish_started", "publish_provider_ready"] + ["publish_step"] * 7 + [
        "publish_successful"]
    assert steps_of(row.id) == ["prepare", "upload", "processing", "processing", "processing",
                                "finalize", "confirm"]
    finalize = [e for e in log_events(row.id) if e.event_metadata.get("step") == "finalize"][0]
    assert finalize.event_metadata["trace_id"] == f"trace-{post_id}"
    assert finalize.event_metadata["details"] == {"post_id": post_id}


def test_each_platform_id_is_on_the_log_before_the_call_that_needs_it(app, api, platform, clip,
                                                                      live_account):
    seen: dict[str, dict] = {}

    def look(endpoint):
        if endpoint in ("processing", "finalize") and endpoint not in seen:
            with app.app_context():
                row = _db.session.scalars(_db.select(PublishLog)).one()
                seen[endpoint] = {"step": row.step, "state": dict(row.platform_state),
                                  "claimed": row.step_started_at is not None}
                _db.session.remove()

    platform.on_request = look
    assert publish(api, clip, live_account).json["success"] is True

    upload_id = only_log().platform_state["upload_id"]
    assert seen["processing"] == {"step": "processing", "claimed": True,
                                  "state": {"upload_id": upload_id, "offset": VIDEO_BYTES}}
    # The publish call is marked on the log before it is sent (a re-run asks instead).
    assert seen["finalize"] == {"step": "finalize", "claimed": True, "state": {
        "upload_id": upload_id, "offset": VIDEO_BYTES, "publish_sent": True}}


def test_no_transaction_or_connection_is_held_during_any_live_step(app, api, platform, clip,
                                                                  live_account):
    """At every platform call, the pool lends no connection and another one can write."""
    engine = _db.engine
    seen: list[tuple[str, int, str | None]] = []

    def probe(endpoint):
        checked_out = engine.pool.checkedout()
        error = None
        try:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                if engine.dialect.name == "sqlite":
                    raw.execute("PRAGMA busy_timeout=1000")
                else:
                    raw.execute("SET lock_timeout = '1s'")
                with conn.begin():
                    conn.execute(_db.insert(LedgerEvent).values(
                        id=uuid.uuid4(), event_type="probe", entity_type="test",
                        entity_id=uuid.uuid4(), event_metadata={}, created_at=utcnow()))
        except Exception as exc:  # reported by the assertion below
            error = repr(exc)
        seen.append((endpoint, checked_out, error))

    platform.on_request = probe
    assert publish(api, clip, live_account).json["success"] is True

    assert {endpoint for endpoint, _, _ in seen} == {
        "prepare", "create", "upload_status", "chunk", "processing", "finalize", "confirm"}
    assert [(endpoint, n, error) for endpoint, n, error in seen if n or error] == []


def test_stub_mode_keeps_the_one_shot_publish(app, api, platform, clip, live_account):
    app.config["PROVIDER_MODE"] = "stub"
    body = publish(api, clip, live_account).json

    assert body["success"] is True
    assert platform.requests == []  # no platform call: the stub client
    row = only_log()
    assert (row.provider, row.step, row.platform_state) == ("tiktok_content_posting", None, None)
    assert event_types(row.id) == ["publish_started", "publish_provider_ready", "publish_successful"]


# Waiting is a queue task ------------------------------------------------------------------------

def test_processing_that_takes_many_polls_waits_in_the_queue_not_in_a_thread(
        app, api, platform, clip, live_account, start_worker, monkeypatch):
    monkeypatch.setattr(CountingClient, "poll_wait", 0.5)
    platform.processing_polls = 3
    start_worker(1)  # one thread for two posts: it must not sleep through either's polls
    first, second = schedule_now(api, clip, live_account), schedule_now(api, clip, live_account)

    waiting = wait_until(lambda: (row := get_log(first)).step == "processing"
                         and row.step_started_at is None and row.next_attempt_at is not None
                         and row, what="a poll to be scheduled")
    assert waiting.status == "publishing"  # waiting, with no thread and no claim

    for log_id in (first, second):
        row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
        assert row.status == "success", row.error_message
        assert steps_of(log_id).count("processing") == 4
    assert platform.publishes_of() == 2
    uploads = [get_log(first).platform_state["upload_id"], get_log(second).platform_state["upload_id"]]
    assert sorted(platform.published) == sorted(uploads)
    # The single thread served the second post while the first waited between its polls.
    polls = [u for u in platform.poll_order if u in uploads]
    assert polls.index(uploads[1]) < len(polls) - 1 - polls[::-1].index(uploads[0])


def test_past_the_sync_wait_the_api_answers_202_and_a_worker_finishes(
        app, api, platform, clip, live_account, start_worker, monkeypatch):
    app.config["PUBLISH_SYNC_WAIT"] = 0.3
    monkeypatch.setattr(CountingClient, "poll_wait", 1.0)

    response = publish(api, clip, live_account)

    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "publishing" and body["step"] in ("upload", "processing")
    assert response.headers["Location"] == f"/publishing/attempts/{body['id']}"
    assert messages_for(app, body["id"]) == 1  # the next poll, scheduled
    assert api.get(response.headers["Location"]).json["status"] == "publishing"

    start_worker(2)
    wait_for_status(body["id"], *FINAL_STATUSES, timeout=30)
    final = api.get(response.headers["Location"]).json
    assert final["status"] == "success" and final["external_post_id"]
    assert platform.publishes_of() == 1


def test_the_sweep_leaves_an_attempt_waiting_between_steps_alone(app, api, platform, clip,
                                                               live_account, monkeypatch):
    app.config.update(PUBLISH_SYNC_WAIT=0.2, PUBLISH_TIMEOUT_SECONDS=0.1)
    monkeypatch.setattr(CountingClient, "poll_wait", 30.0)
    log_id = publish(api, clip, live_account).json["id"]
    time.sleep(0.3)  # older than the timeout, but waiting for its next poll, not in a call

    report = released(lambda: sweep(_db))

    row = get_log(log_id)
    # Handed to the queue between two steps (which ones depends on the machine's speed).
    assert (row.status, row.step_started_at) == ("publishing", None) and row.step in ("upload", "processing")
    assert report["interrupted"] == 0 and report["resumed"] == 0
    assert "publish_interrupted" not in event_types(log_id)


def test_the_panel_shows_a_processing_publish_and_a_repeat_of_its_form_publishes_nothing(
        app, client, login, platform, clip, live_account, monkeypatch):
    app.config["PUBLISH_SYNC_WAIT"] = 0.2
    monkeypatch.setattr(CountingClient, "poll_wait", 30.0)
    login("editor")
    form = {"platform": "tiktok", "social_account_id": str(live_account.id), "caption": "Live",
            "hashtags": "", "when": "now", "idempotency_key": "k-" + os.urandom(8).hex()}

    first = client.post(f"/clips/{clip.id}/publish", data=form, headers={"HX-Request": "true"})
    second = client.post(f"/clips/{clip.id}/publish", data=form, headers={"HX-Request": "true"})

    row = only_log()
    for response in (first, second):
        html = response.get_data(as_text=True)
        assert 'id="publish-processing"' in html and 'data-status="publishing"' in html
        assert f'hx-get="/clips/{clip.id}/attempts/{row.id}"' in html
        assert 'hx-trigger="load delay:2s"' in html
    assert "already sent" in second.get_data(as_text=True)
    assert platform.requests.count("prepare") == 1  # one attempt
    poll = client.get(f"/clips/{clip.id}/attempts/{row.id}", headers={"HX-Request": "true"})
    assert 'id="publish-processing"' in poll.get_data(as_text=True)


# Errors, by kind --------------------------------------------------------------------------------

def test_a_permanent_error_fails_with_the_platform_message_and_trace(api, platform, clip, live_account):
    platform.fail_next("prepare", "rejected")
    body = publish(api, clip, live_account).json

    assert body["success"] is False and body["error_message"] == "the platform refused the video"
    row = only_log()
    assert (row.status, row.trace_id, row.step) == ("failed", "trace-rejected", "prepare")
    step = [e for e in log_events(row.id) if e.event_type == "publish_step"][0].event_metadata
    assert (step["kind"], step["code"], step["trace_id"]) == ("permanent", "rejected", "trace-rejected")
    assert platform.publishes_of() == 0


def test_the_trace_id_shows_on_the_history_and_clip_pages(db, client, login, platform, clip,
                                                          live_account):
    platform.fail_next("prepare", "rejected")
    publish_clip(db, PublishRequest(clip_id=clip.id, platform="tiktok",
                                    social_account_id=live_account.id))
    login("viewer")
    for page in ("/history", f"/clips/{clip.id}"):
        html = client.get(page).get_data(as_text=True)
        assert '<small class="trace-id muted"' in html and "<code>trace-rejected</code>" in html, page


def test_an_auth_error_fails_and_the_account_needs_credentials(api, platform, clip, live_account):
    platform.fail_next("create", "bad_token")
    body = publish(api, clip, live_account).json

    assert body["success"] is False
    account = released(lambda: _db.session.get(SocialAccount, live_account.id))
    assert account.needs_credentials is True
    events = released(lambda: list(_db.session.scalars(_db.select(LedgerEvent.event_type))))
    assert "account_needs_credentials" in events


def test_a_transient_error_retries_after_retry_after_and_resumes_at_its_step(
        app, api, platform, clip, live_account, worker):
    platform.fail_next("processing", "busy", retry_after=1.5)
    log_id = schedule_now(api, clip, live_account)

    queued = wait_for_status(log_id, "queued", timeout=30)
    assert queued.step == "processing" and queued.error_message == "the platform is busy; try later"
    assert (queued.next_attempt_at - utcnow()).total_seconds() > 0.8  # not the 0.1 s backoff
    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=30)

    assert row.status == "success" and row.attempts == 2
    assert platform.requests.count("create") == 1  # the upload was not made again
    assert platform.bytes_received == VIDEO_BYTES and platform.publishes_of() == 1


def test_a_spoiled_upload_starts_again_from_prepare_a_bounded_number_of_times(
        app, api, platform, clip, live_account):
    platform.fail_next("chunk", "expired")
    body = publish(api, clip, live_account).json

    assert body["success"] is True and platform.publishes_of() == 1
    row = only_log()
    assert row.restarts == 1 and platform.requests.count("create") == 2
    assert event_types(row.id).count("publish_restarted") == 1

    app.config["PUBLISH_MAX_RESTARTS"] = 1
    for _ in range(2):
        platform.fail_next("chunk", "expired")
    body = publish(api, clip, live_account).json
    assert body["success"] is False and "gave up after 1 fresh starts" in body["error_message"]
    assert platform.publishes_of() == 1


# Reconciliation ---------------------------------------------------------------------------------

def test_a_lost_answer_to_the_publish_call_is_settled_by_asking_the_platform(
        app, api, platform, clip, live_account):
    app.config["PROVIDER_HTTP_TIMEOUT"] = 0.5
    platform.hang_after_publish = 2.0  # published, but the answer comes too late

    body = publish(api, clip, live_account).json

    assert body["success"] is True and platform.publishes_of() == 1
    row = only_log()
    assert row.external_post_id == platform.published_posts()[0]
    reconciled = [e.event_metadata for e in log_events(row.id) if e.event_type == "publish_reconciled"]
    assert len(reconciled) == 1
    assert reconciled[0]["result"] == "published"
    assert reconciled[0]["external_post_id"] == row.external_post_id
    assert reconciled[0]["reason"] == "timed out waiting for /uploads/{}/publish".format(
        row.platform_state["upload_id"])
    assert reconciled[0]["asked_about"] == {"upload_id": row.platform_state["upload_id"]}


def test_a_publish_call_that_never_arrived_is_retried_from_a_fresh_start(
        app, api, platform, clip, live_account, worker):
    app.config["PROVIDER_HTTP_TIMEOUT"] = 0.5
    platform.hold("finalize", published=False)  # the platform never publishes this one

    log_id = schedule_now(api, clip, live_account)
    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=30)

    assert row.status == "success", row.error_message
    assert platform.publishes_of() == 1 and platform.requests.count("create") == 2
    reconciled = [e.event_metadata for e in log_events(log_id) if e.event_type == "publish_reconciled"]
    assert [r["result"] for r in reconciled] == ["not_published"]


def test_what_the_platform_cannot_tell_stays_unconfirmed_and_is_asked_again(
        app, api, platform, clip, live_account, worker):
    app.config.update(PROVIDER_HTTP_TIMEOUT=0.5, RECONCILE_INTERVAL_SECONDS=0.3)
    platform.hang_after_publish = 2.0

    def status_goes_down(endpoint):
        if endpoint == "finalize":
            platform.status_unavailable = True

    platform.on_request = status_goes_down
    body = publish(api, clip, live_account).json

    assert body["success"] is False and body["error_message"].startswith("Outcome unknown")
    row = only_log()
    assert (row.status, row.step, row.reconcile_checks) == ("unconfirmed", "reconcile", 1)
    assert row.next_attempt_at is not None
    platform.status_unavailable = False
    time.sleep(0.4)
    released(lambda: sweep(_db))  # the periodic sweep hands it to the worker
    row = wait_for_status(row.id, "success", timeout=30)

    assert row.external_post_id == platform.published_posts()[0] and platform.publishes_of() == 1
    results = [e.event_metadata["result"] for e in log_events(row.id)
               if e.event_type == "publish_reconciled"]
    assert results == ["unknown", "published"]
    assert event_types(row.id).count("publish_unconfirmed") == 1


# Crashes: a real `flask worker` killed with SIGKILL inside each step ---------------------------

KILL_POINTS = {
    # name: (endpoint to hold, requests of it let through first, platform publishes when released)
    "prepare": ("prepare", 0, True),
    "upload start": ("create", 0, True),
    "upload middle": ("chunk", 1, True),
    "processing": ("processing", 0, True),
    "finalize, published": ("finalize", 0, True),
    "finalize, not published": ("finalize", 0, False),
    "confirm": ("confirm", 0, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_worker_killed_inside_a_step_resumes_and_publishes_exactly_once(
        app, api, platform, clip, live_account, worker_process, point):
    endpoint, skip, published = KILL_POINTS[point]
    hold = platform.hold(endpoint, published=published, skip=skip)
    env = dict(FLASK_APP="tests.fakes.counting_worker", COUNTING_FAKE_URL=platform.url,
               PROVIDER_MODE="live", PROVIDER_HTTP_TIMEOUT=5)
    first = worker_process(2, **env)
    log_id = schedule_now(api, clip, live_account)
    assert hold.entered.wait(60), first.output()
    killed_in = get_log(log_id).step

    first.kill()
    hold.release.set()
    wait_until(lambda: (utcnow() - get_log(log_id).step_started_at).total_seconds() > 1.5,
               what="the dead worker's claim to go stale")
    second = worker_process(2, PUBLISH_TIMEOUT_SECONDS=1, **env)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert row.status == "success", (row.error_message, second.output())
    assert platform.publishes_of() == 1
    assert row.external_post_id in platform.posts
    assert platform.bytes_received >= VIDEO_BYTES
    interrupted = [e.event_metadata for e in log_events(log_id)
                   if e.event_type == "publish_step_interrupted"]
    assert [i["step"] for i in interrupted] == [killed_in]
    if endpoint == "finalize":
        assert interrupted[0]["resumed_with"] == "reconcile"
        results = [e.event_metadata["result"] for e in log_events(log_id)
                   if e.event_type == "publish_reconciled"]
        assert results == ["published" if published else "not_published"]
    else:
        assert interrupted[0]["resumed_with"] == killed_in
        # Resumed, not restarted: one upload object, every byte sent once.
        assert len(platform.uploads) == 1
        assert platform.bytes_received == VIDEO_BYTES


def test_an_attempt_left_before_its_first_step_by_a_dead_web_process_is_handed_on(
        app, db, platform, clip, live_account, worker):
    """The page committed the attempt, then its process died before the first step."""
    from dashboard.publishing import pipeline
    from dashboard.publishing.service import insert_log, load_target

    app.config["PUBLISH_TIMEOUT_SECONDS"] = 0.2
    loaded, account = load_target(db, clip.id, "tiktok", live_account.id, "", [])
    row = PublishLog(id=uuid.uuid4(), clip_id=loaded.id, platform="tiktok", social_account_id=account.id,
                     status="pending", caption="", hashtags=[], requested_at=utcnow(),
                     started_at=utcnow(), attempts=1)
    pipeline.start(db, row, loaded, account, {"platform": "tiktok", "publish_log_id": row.id})
    insert_log(db.session, row)
    db.session.commit()
    log_id = row.id
    db.session.remove()
    time.sleep(0.3)

    released(lambda: sweep(_db))

    done = wait_for_status(log_id, *FINAL_STATUSES, timeout=30)
    assert done.status == "success" and platform.publishes_of() == 1
    assert "publish_interrupted" not in event_types(log_id)
