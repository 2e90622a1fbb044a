"""Quotas: posts per account in a rolling 24 hours. An immediate post over the quota is refused
(429, with the time of the next slot); a queued or scheduled one waits for the slot."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard.config import PLATFORM_LIMIT_DEFAULTS
from dashboard.extensions import db as _db
from dashboard.models import LedgerEvent, utcnow

from conftest import base_config
from queue_support import (
    all_logs,
    count_logs,
    event_types,
    fire_together,
    get_log,
    iso,
    log_events,
    messages_for,
    queue_counts,
    released,
    wait_for_status,
    wait_until,
)

LIMIT = 2


@pytest.fixture
def app_config(database_uri):
    limits = copy.deepcopy(PLATFORM_LIMIT_DEFAULTS)
    limits["instagram"]["posts_per_24h"] = LIMIT
    return {**base_config(database_uri), "PLATFORM_LIMITS": limits}


def body(clip, account, **extra):
    return {"clip_id": str(clip.id), "platform": "instagram", "social_account_id": str(account.id),
            **extra}


def clip_event_count() -> int:
    return released(lambda: len(list(_db.session.scalars(
        select(LedgerEvent.id).where(LedgerEvent.entity_type == "clip")))))


def test_immediate_post_over_the_quota_is_refused_with_the_next_slot(api, platform_calls,
                                                                     make_account, make_clip):
    account, other = make_account("instagram", "brand"), make_account("instagram", "other")
    clip = make_clip()
    for _ in range(LIMIT):
        assert api.post("/publishing/publish", json=body(clip, account)).json["success"] is True
    first_published = min(log.published_at for log in all_logs())
    writes = (count_logs(), clip_event_count(), len(platform_calls))

    response = api.post("/publishing/publish", json=body(clip, account))

    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    detail = response.json["detail"]
    assert f"@brand has made {LIMIT} of its {LIMIT} posts in the last 24 hours" in detail
    assert f"{first_published + timedelta(hours=24):%Y-%m-%d %H:%M} UTC" in detail
    # Retry-After counts the seconds until that slot (about 24 h from the first post).
    retry_after = int(response.headers["Retry-After"])
    assert 24 * 3600 - 120 < retry_after <= 24 * 3600 + 1
    assert (count_logs(), clip_event_count(), len(platform_calls)) == writes
    # The quota is the account's: another account of the platform still posts.
    assert api.post("/publishing/publish", json=body(clip, other)).json["success"] is True


def test_failed_posts_do_not_use_the_quota(app, api, make_account, make_clip):
    account = make_account("instagram")
    clip = make_clip()
    app.config.update(SIMULATOR_FAILURE_RATE=1.0, SIMULATOR_FAILURE_KINDS=("transient",))
    for _ in range(3):
        assert api.post("/publishing/publish", json=body(clip, account)).json["success"] is False
    app.config.update(SIMULATOR_FAILURE_RATE=0.0)

    for _ in range(LIMIT):
        assert api.post("/publishing/publish", json=body(clip, account)).json["success"] is True
    assert api.post("/publishing/publish", json=body(clip, account)).status_code == 429


def test_concurrent_immediate_posts_never_exceed_the_quota(app, api_headers, make_account,
                                                           make_clip):
    app.config.update(SIMULATOR_MIN_DELAY=0.3, SIMULATOR_MAX_DELAY=0.3)
    account = make_account("instagram")
    clip = make_clip()
    headers = api_headers("editor")

    responses = fire_together(app, 5, lambda client: client.post(
        "/publishing/publish", headers=headers, json=body(clip, account)))

    assert sorted(r.status_code for r in responses) == [200] * LIMIT + [429] * (5 - LIMIT)
    assert [log.status for log in all_logs()] == ["success"] * LIMIT


def test_queued_post_over_the_quota_is_deferred_not_sent(app, api, worker, platform_calls,
                                                         make_account, make_clip):
    account = make_account("instagram")
    clip = make_clip()
    for _ in range(LIMIT):
        assert api.post("/publishing/publish", json=body(clip, account)).json["success"] is True
    next_slot = min(log.published_at for log in all_logs()) + timedelta(hours=24)
    calls = len(platform_calls)

    log_id = api.post("/publishing/schedule", json=body(clip, account, scheduled_at=iso(utcnow()))).json["id"]

    wait_until(lambda: "publish_deferred" in event_types(log_id), what="the post to be deferred")
    wait_until(lambda: messages_for(app, log_id) == 1 and queue_counts(app)[0] == 0,
               what="the deferred post to wait in the queue")
    worker.stop()
    row = get_log(log_id)
    assert (row.status, row.attempts, row.started_at) == ("scheduled", 0, None)
    assert row.next_attempt_at == next_slot
    [deferred] = [e for e in log_events(log_id) if e.event_type == "publish_deferred"]
    assert deferred.event_metadata["until"] == iso(next_slot)
    assert (deferred.event_metadata["used"], deferred.event_metadata["limit"]) == (LIMIT, LIMIT)
    assert "publish_started" not in event_types(log_id)
    assert len(platform_calls) == calls


def test_posts_due_together_take_only_the_free_slots(app, api, start_worker, platform_calls,
                                                     make_account, make_clip):
    account = make_account("instagram")
    clip = make_clip()
    due = iso(utcnow())
    ids = [api.post("/publishing/schedule", json=body(clip, account, scheduled_at=due)).json["id"]
           for _ in range(5)]
    start_worker(5)

    def settled():
        logs = [get_log(log_id) for log_id in ids]
        published = [log for log in logs if log.status == "success"]
        deferred = [log for log in logs if "publish_deferred" in event_types(log.id)]
        return len(published) + len(deferred) == 5 and (published, deferred)

    published, deferred = wait_until(settled, what="every post to be published or deferred")
    assert len(published) == LIMIT and len(platform_calls) == LIMIT
    assert all(log.status == "scheduled" and log.attempts == 0 for log in deferred)


def test_deferred_post_goes_out_once_when_the_window_frees_a_slot(app, api, worker, monkeypatch,
                                                                  make_account, make_clip):
    from dashboard.publishing import quotas

    monkeypatch.setattr(quotas, "WINDOW", timedelta(seconds=3))  # a 3-second "day"
    account = make_account("instagram")
    clip = make_clip()
    for _ in range(LIMIT):
        assert api.post("/publishing/publish", json=body(clip, account)).json["success"] is True
    log_id = api.post("/publishing/schedule", json=body(clip, account, scheduled_at=iso(utcnow()))).json["id"]

    row = wait_for_status(log_id, "success", "failed", "unconfirmed", timeout=20)

    assert (row.status, row.attempts) == ("success", 1)
    events = log_events(log_id)
    types = [e.event_type for e in events]
    assert types.count("publish_deferred") >= 1 and types.count("publish_started") == 1
    assert types.index("publish_deferred") < types.index("publish_started")
    until = datetime.fromisoformat(
        [e for e in events if e.event_type == "publish_deferred"][-1].event_metadata["until"]
        .replace("Z", "+00:00"))
    assert row.started_at >= until


def test_each_state_uses_a_slot_from_the_right_moment_however_it_was_written(app, make_account,
                                                                            make_clip):
    """Successes count from their publish time, attempts in flight or of unknown outcome from
    their start, failed/cancelled/waiting ones not at all; a status written by a bulk UPDATE (as
    the worker's claim does) counts at once, and leaving a counted state frees the slot."""
    from sqlalchemy import update

    from dashboard.models import PublishLog
    from dashboard.publishing.quotas import quota_state, quota_states

    account = make_account("instagram")
    clip = make_clip()
    now = utcnow()
    hours = lambda n: now - timedelta(hours=n)  # noqa: E731
    rows = {
        # status, started_at, published_at: inside the window?
        "success, published 2 h ago": ("success", hours(30), hours(2)),       # yes (published)
        "success, published 25 h ago": ("success", hours(26), hours(25)),     # no
        "unconfirmed, started 3 h ago": ("unconfirmed", hours(3), None),      # yes (started)
        "pending, started 1 h ago": ("pending", hours(1), None),              # yes
        "failed, started 1 h ago": ("failed", hours(1), None),                # no (failed)
        "cancelled": ("cancelled", None, None),                               # no
        "queued, started 1 h ago": ("queued", hours(1), None),                # no (waiting)
    }
    ids = {}
    with app.app_context():
        for name, (status, started, published) in rows.items():
            log_row = PublishLog(clip_id=clip.id, platform="instagram", social_account_id=account.id,
                                 status=status, started_at=started, published_at=published)
            _db.session.add(log_row)
            _db.session.flush()
            ids[name] = log_row.id
        _db.session.commit()

        def state(**kwargs):
            _db.session.remove()
            return quota_state(_db.session, _db.session.get(type(account), account.id), utcnow(), **kwargs)

        first = state()
        assert (first.used, first.limit) == (3, LIMIT)
        # The slot frees when the second-oldest of three in the window turns 24 h old.
        assert abs(first.next_slot - (hours(2) + timedelta(hours=24))) < timedelta(seconds=1)
        assert state(exclude_log_id=ids["pending, started 1 h ago"]).used == 2

        # The worker's claim is a bulk UPDATE: the queued log now uses a slot from its start.
        _db.session.execute(update(PublishLog).where(PublishLog.id == ids["queued, started 1 h ago"])
                            .values(status="publishing", started_at=now))
        _db.session.commit()
        assert state().used == 4
        # A pending attempt that fails gives its slot back.
        _db.session.get(PublishLog, ids["pending, started 1 h ago"]).status = "failed"
        _db.session.commit()
        assert state().used == 3
        assert quota_states(_db.session, [_db.session.get(type(account), account.id)],
                            utcnow())[account.id].used == 3
        _db.session.remove()
