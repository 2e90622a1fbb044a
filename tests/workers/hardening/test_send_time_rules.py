"""A post is checked again when it goes out: a scheduled post whose clip was edited past the
platform's limit, or whose platform limit setting changed, is refused by the worker with the
rule named, like at creation, and nothing reaches the platform (a simulator in stub mode, the
live platform over HTTP in live mode)."""

from __future__ import annotations

from datetime import timedelta

from dashboard.models import utcnow

from queue_support import event_types, iso, wait_for_status


def schedule(api, clip, caption="Out now", account=None, seconds=2):
    body = {"clip_id": str(clip.id), "platform": "tiktok", "metadata": {"caption": caption},
            "scheduled_at": iso(utcnow() + timedelta(seconds=seconds))}
    if account is not None:
        body["social_account_id"] = str(account.id)
    response = api.post("/publishing/schedule", json=body)
    assert response.status_code == 202, response.json
    return response.json["id"]


def test_a_clip_edited_past_the_limit_is_refused_when_it_goes_out(api, make_clip, worker):
    clip = make_clip(duration_seconds=30)
    log_id = schedule(api, clip)
    edited = api._call("patch", f"/api/clips/{clip.id}", json={"duration_seconds": 900})
    assert edited.status_code == 200, edited.json

    row = wait_for_status(log_id, "failed", "success", timeout=20)

    assert row.status == "failed"
    assert row.error_message == ("refused at send time: clip.duration_seconds: the clip lasts 900 s; "
                                 "TikTok allows at most 600 s")
    assert "publish_started" not in event_types(log_id) and event_types(log_id)[-1] == "publish_failed"
    assert row.external_post_id is None


def test_a_limit_setting_lowered_since_is_applied_when_it_goes_out(app, api, make_clip, worker):
    log_id = schedule(api, make_clip(), caption="A caption of forty characters, give or take")
    limits = app.config["PLATFORM_LIMITS"]
    app.config["PLATFORM_LIMITS"] = {**limits, "tiktok": {**limits["tiktok"], "caption_max_chars": 20}}

    row = wait_for_status(log_id, "failed", "success", timeout=20)

    assert row.status == "failed"
    assert row.error_message.startswith("refused at send time: metadata.caption: the caption with "
                                        "its hashtags is 43 UTF-16 code units; TikTok allows at most 20")


def test_a_live_post_is_refused_at_send_time_before_any_platform_call(
        app, api, platform, live_account, live_clip, worker):
    app.config["PROVIDER_MODE"] = "live"
    log_id = schedule(api, live_clip, account=live_account)
    limits = app.config["PLATFORM_LIMITS"]
    app.config["PLATFORM_LIMITS"] = {**limits, "tiktok": {**limits["tiktok"], "duration_max_seconds": 10}}

    row = wait_for_status(log_id, "failed", "success", timeout=20)

    assert row.status == "failed" and row.error_message.startswith("refused at send time: clip.duration_seconds")
    assert row.step is None  # no live step was ever prepared
    assert platform.requests == []
