"""Account health: a token the platform refuses marks the account "needs new credentials";
publishing to it is refused before any call until its credentials are saved again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.models import SocialAccount, utcnow
from dashboard.publishing import simulator
from dashboard.publishing.simulator import FAILURES

from queue_support import count_logs, event_types, events_by_type, iso, released, wait_for_status

FINAL = ("success", "failed", "unconfirmed", "cancelled")


@pytest.fixture
def expired_tokens(app, monkeypatch):
    """Every simulated Instagram call fails: the token has expired."""
    auth = next(f for f in FAILURES["instagram"] if f.auth_error)
    monkeypatch.setitem(simulator.FAILURES, "instagram", (auth,))
    app.config.update(SIMULATOR_FAILURE_RATE=1.0)
    return auth


def publish_body(clip, account):
    return {"clip_id": str(clip.id), "platform": account.platform,
            "social_account_id": str(account.id), "metadata": {"caption": "hi"}}


def test_refused_token_in_the_background_marks_the_account(app, api, worker, expired_tokens,
                                                          make_account, make_clip):
    account = make_account("instagram", "brand")
    clip = make_clip()
    response = api.post("/publishing/schedule",
                        json={**publish_body(clip, account), "scheduled_at": iso(utcnow())})
    log_id = response.json["id"]

    row = wait_for_status(log_id, *FINAL)

    assert (row.status, row.error_message, row.attempts) == ("failed", expired_tokens.message, 1)
    shown = api.get(f"/api/accounts/{account.id}").json
    assert shown["needs_credentials"] is True
    assert "Session has expired" in shown["needs_credentials_reason"]
    [event] = events_by_type("account_needs_credentials")
    assert (event.entity_type, str(event.entity_id)) == ("account", str(account.id))
    assert event.event_metadata["publish_log_id"] == log_id


def test_account_needing_credentials_is_refused_before_any_call(app, api, expired_tokens,
                                                                platform_calls, make_account,
                                                                make_clip):
    account = make_account("instagram", "brand")
    clip = make_clip()
    first = api.post("/publishing/publish", json=publish_body(clip, account))
    assert first.json["success"] is False
    assert api.get(f"/api/accounts/{account.id}").json["needs_credentials"] is True
    calls, logs = len(platform_calls), count_logs()

    later = api.post("/publishing/publish", json=publish_body(clip, account))
    scheduled = api.post("/publishing/schedule", json={
        **publish_body(clip, account), "scheduled_at": iso(utcnow() + timedelta(hours=1))})
    batch = api.post("/publishing/batches", json={
        "clip_id": str(clip.id), "targets": [{"social_account_id": str(account.id)}]})

    for response in (later, scheduled):
        assert response.status_code == 400
        assert [e["field"] for e in response.json["errors"]] == ["social_account_id"]
        assert "@brand needs new credentials" in response.json["detail"]
    assert batch.status_code == 400
    assert [e["field"] for e in batch.json["errors"]] == ["targets.0.social_account_id"]
    assert (len(platform_calls), count_logs()) == (calls, logs)


def test_saving_credentials_again_lets_the_account_publish(app, api, expired_tokens, make_account,
                                                         make_clip):
    account = make_account("instagram", "brand")
    clip = make_clip()
    api.post("/publishing/publish", json=publish_body(clip, account))
    assert api.get(f"/api/accounts/{account.id}").json["needs_credentials"] is True

    saved = api.as_role("admin").put(f"/api/accounts/{account.id}/credentials", json={
        "access_token": "fresh-token", "instagram_account_id": "17841400000000000"})

    assert saved.status_code == 200, saved.json
    shown = api.get(f"/api/accounts/{account.id}").json
    assert (shown["needs_credentials"], shown["needs_credentials_reason"]) == (False, None)
    again = api.post("/publishing/publish", json=publish_body(clip, account))
    assert again.status_code == 200 and again.json["success"] is True  # the provider client


def test_a_queued_post_to_an_account_flagged_meanwhile_fails_without_a_call(
        app, db, api, start_worker, platform_calls, make_account, make_clip):
    account = make_account("instagram", "brand")
    clip = make_clip()
    log_id = api.post("/publishing/schedule",
                      json={**publish_body(clip, account), "scheduled_at": iso(utcnow())}).json["id"]

    def flag():
        row = db.session.get(SocialAccount, account.id)
        row.needs_credentials, row.needs_credentials_reason = True, "token revoked"
        db.session.commit()
    released(flag)
    start_worker(2)

    row = wait_for_status(log_id, *FINAL)

    assert row.status == "failed"
    assert "@brand needs new credentials (token revoked)" in row.error_message
    assert platform_calls == []
    assert "publish_started" not in event_types(log_id)


def test_non_auth_permanent_failure_leaves_the_account_healthy(app, api, monkeypatch, make_account,
                                                               make_clip):
    media = next(f for f in FAILURES["instagram"] if f.kind == "permanent" and not f.auth_error)
    monkeypatch.setitem(simulator.FAILURES, "instagram", (media,))
    app.config.update(SIMULATOR_FAILURE_RATE=1.0)
    account = make_account("instagram")

    response = api.post("/publishing/publish", json=publish_body(make_clip(), account))

    assert response.json["success"] is False
    assert api.get(f"/api/accounts/{account.id}").json["needs_credentials"] is False
