"""Pre-publish validation for later and elsewhere: a post that breaks a platform rule is refused
before anything is written or queued, with the rule named, on schedule and batches alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.models import utcnow

from queue_support import count_logs, iso, queue_counts


def later():
    return iso(utcnow() + timedelta(hours=1))


@pytest.mark.parametrize("platform, metadata, clip_fields, field, rule", [
    ("instagram", {"caption": "x" * 2201}, {}, "metadata.caption", "at most 2200"),
    ("instagram", {"hashtags": [f"tag{i}" for i in range(31)]}, {}, "metadata.hashtags", "at most 30"),
    ("tiktok", {"caption": "\U0001F600" * 1101}, {}, "metadata.caption", "UTF-16"),
    ("youtube", {}, {"duration_seconds": 181.0}, "clip.duration_seconds", "at most 180 s"),
    ("youtube", {}, {"title": "Best <b>clip</b>"}, "clip.title", "< or >"),
    ("instagram", {}, {"duration_seconds": 2.0}, "clip.duration_seconds", "at least 3 s"),
])
def test_schedule_is_refused_naming_the_rule(app, api, make_clip, platform, metadata, clip_fields,
                                             field, rule):
    clip = make_clip(**clip_fields)
    response = api.post("/publishing/schedule", json={
        "clip_id": str(clip.id), "platform": platform, "metadata": metadata, "scheduled_at": later()})

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]
    assert rule in response.json["errors"][0]["message"]
    assert count_logs() == 0 and queue_counts(app) == (0, 0)


def test_batch_is_refused_naming_the_target_and_the_rule(app, api, make_account, make_clip):
    clip = make_clip(duration_seconds=200.0)  # too long for YouTube Shorts only
    accounts = [make_account("instagram"), make_account("tiktok"), make_account("youtube")]

    response = api.post("/publishing/batches", json={
        "clip_id": str(clip.id), "targets": [{"social_account_id": str(a.id)} for a in accounts]})

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets.2.clip.duration_seconds"]
    assert "YouTube allows at most 180 s" in response.json["detail"]
    assert count_logs() == 0 and queue_counts(app) == (0, 0)


def test_batch_caption_rules_apply_per_target(app, api, make_account, make_clip):
    clip = make_clip()
    instagram, youtube = make_account("instagram"), make_account("youtube")

    response = api.post("/publishing/batches", json={
        "clip_id": str(clip.id), "metadata": {"caption": "fine"},
        "targets": [{"social_account_id": str(instagram.id)},
                    {"social_account_id": str(youtube.id), "metadata": {"caption": "a <b> tag"}}]})

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets.1.metadata.caption"]
    assert count_logs() == 0 and queue_counts(app) == (0, 0)
