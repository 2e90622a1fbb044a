"""Home: counts, the 7-day success-rate chart, the latest failures and their Retry button."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dashboard import stats
from dashboard.models import PUBLISH_DAY_COUNT_SHARDS, LedgerEvent, PublishLog, utcnow

from conftest import ROLES

HTMX = {"HX-Request": "true"}


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


@pytest.fixture
def make_log(db, make_clip):
    """make_log(status="failed", platform="instagram", account=None, age=timedelta(0), **fields)."""

    def make(status="failed", platform="instagram", account=None, age=timedelta(0), clip=None, **fields):
        clip = clip or make_clip()
        values = {"caption": "Hello", "hashtags": ["launch"],
                  "error_message": "Simulated rate limit" if status == "failed" else None}
        values.update(fields)
        log = PublishLog(clip_id=clip.id, platform=platform, status=status, provider="simulator",
                         social_account_id=account.id if account else None,
                         requested_at=utcnow() - age, **values)
        db.session.add(log)
        db.session.commit()
        return log

    return make


def count_logs(db, **where):
    db.session.expire_all()
    query = select(func.count()).select_from(PublishLog)
    for name, value in where.items():
        query = query.where(getattr(PublishLog, name) == value)
    return db.session.scalar(query)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_home(client, login, role):
    login(role)
    response = client.get("/")
    assert response.status_code == 200
    assert "<h1>Overview</h1>" in response.get_data(as_text=True)
    assert "HX-Request" in response.headers.get("Vary", "")


def test_counts(client, login, make_clip, make_account, make_log):
    login("viewer")
    clip = make_clip()
    make_clip()
    make_account(active=False)
    make_log(status="success", clip=clip)
    make_log(status="failed", clip=clip)
    make_log(status="success", clip=clip, age=timedelta(days=2))
    html = client.get("/").get_data(as_text=True)
    # make_log makes a clip per log unless given one: 2 + 0 here.
    assert re.search(r'id="count-clips"><span class="count">2</span>', html)
    assert re.search(r'id="count-accounts"><span class="count">1</span> accounts '
                     r'<small class="muted">\(0 active\)', html)
    assert re.search(r'id="count-publishes-today"><span class="count">2</span>', html)


def test_success_rate_chart_is_accessible(client, login, make_log):
    login("viewer")
    for status in ("success", "success", "failed"):
        make_log(status=status, platform="instagram")
    make_log(status="success", platform="youtube")
    make_log(status="pending", platform="youtube")  # not finished: not counted
    make_log(status="failed", platform="youtube", age=timedelta(days=8))  # too old
    html = client.get("/").get_data(as_text=True)
    assert '<svg id="rate-chart"' in html and 'role="img"' in html
    assert 'aria-labelledby="rate-chart-title rate-chart-desc"' in html
    assert '<title id="rate-chart-title">Success rate per platform over the last 7 days</title>' in html
    assert ("Instagram: 67% of 3 finished attempts succeeded; TikTok: no finished attempts; "
            "YouTube: 100% of 1 finished attempts succeeded.") in html
    # the bar widths are proportional: 2/3 of the 400-unit track
    assert 'width="266.7"' in html and 'width="400.0"' in html
    # the same figures as a table
    assert '<th scope="row">Instagram</th><td>2</td><td>1</td><td>67 %</td>' in html
    assert '<th scope="row">TikTok</th><td>0</td><td>0</td><td>—</td>' in html


def test_stats_service(db, make_log):
    now = utcnow()
    make_log(status="failed", platform="tiktok", age=timedelta(days=6, hours=23))
    make_log(status="success", platform="tiktok", age=timedelta(days=7, hours=1))
    rates = {r.platform: r for r in stats.success_rates(db, now=now)}
    assert (rates["tiktok"].succeeded, rates["tiktok"].failed, rates["tiktok"].rate) == (0, 1, 0.0)
    assert rates["instagram"].rate is None and rates["instagram"].percent is None
    assert [r.platform for r in stats.success_rates(db, now=now)] == ["instagram", "tiktok", "youtube"]


def test_the_7_day_rates_follow_every_change_to_a_log(db, make_log):
    """The chart's whole days come from per-day counts the database keeps: an outcome written
    by the ORM or by a bulk UPDATE, a status that leaves success/failed, and a deleted log all
    move the figures; the window's first, partial day is counted from the logs."""
    from sqlalchemy import delete, update

    now = utcnow()

    def tiktok():
        rate = {r.platform: r for r in stats.success_rates(db, now=now)}["tiktok"]
        return rate.succeeded, rate.failed

    pending = make_log(status="pending", platform="tiktok", age=timedelta(days=2))
    make_log(status="success", platform="tiktok", age=timedelta(days=6, hours=23, minutes=59))
    make_log(status="success", platform="tiktok", age=timedelta(days=7, minutes=1))  # outside
    failed = make_log(status="failed", platform="tiktok", age=timedelta(hours=1))
    assert tiktok() == (1, 1)

    pending.status = "success"  # an outcome recorded through the ORM
    db.session.commit()
    assert tiktok() == (2, 1)
    db.session.execute(update(PublishLog).where(PublishLog.id == failed.id).values(status="unconfirmed"))
    db.session.commit()
    assert tiktok() == (2, 0)
    db.session.execute(update(PublishLog).where(PublishLog.id == failed.id).values(status="success"))
    db.session.commit()
    assert tiktok() == (3, 0)
    db.session.execute(delete(PublishLog).where(PublishLog.id == pending.id))
    db.session.commit()
    assert tiktok() == (2, 0)


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:")),
                    reason="SQLite writes one transaction at a time (this runs in the PostgreSQL pass)")
def test_outcomes_on_two_connections_do_not_wait_for_each_other_on_their_day_count(db, make_log):
    """Two publishes of one platform finishing at once each move today's count; the second
    does not wait for the first one's COMMIT (on one counter row it stood in its lock)."""
    from sqlalchemy import text, update

    first_id, second_id = (make_log(status="pending", platform="tiktok").id for _ in range(2))
    db.session.remove()
    shard_of = text(f"SELECT mod(pg_backend_pid(), {PUBLISH_DAY_COUNT_SHARDS})")
    first = db.engine.connect()
    others = [db.engine.connect() for _ in range(PUBLISH_DAY_COUNT_SHARDS + 1)]
    try:
        # PostgreSQL hands out backend pids in turn: of 17 connections, some are in other shards.
        second = next(c for c in others if c.scalar(shard_of) != first.scalar(shard_of))
        first.execute(update(PublishLog).where(PublishLog.id == first_id).values(status="success"))
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        second.execute(update(PublishLog).where(PublishLog.id == second_id).values(status="success"))
        second.commit()
        first.commit()
    finally:
        for connection in [first, *others]:
            connection.close()

    rate = {r.platform: r for r in stats.success_rates(db)}["tiktok"]
    assert (rate.succeeded, rate.failed) == (2, 0)


def test_the_clip_count_follows_every_insert_and_delete(db, make_clip):
    """Home's clip figure is a count the database keeps: clips added by the ORM or by one
    multi-row INSERT, and deleted one by one or in bulk, all move it; a rolled-back one not."""
    from sqlalchemy import delete, insert

    from dashboard.clips import delete_clip
    from dashboard.models import Clip

    assert stats.counts(db).clips == 0
    first = make_clip()
    make_clip()
    assert stats.counts(db).clips == 2
    db.session.execute(insert(Clip), [{"title": f"Bulk {i}", "media": "https://cdn.example.com/b.mp4"}
                                      for i in range(3)])
    db.session.commit()
    assert stats.counts(db).clips == 5
    delete_clip(db, first.id)
    assert stats.counts(db).clips == 4
    db.session.execute(delete(Clip).where(Clip.title.like("Bulk %")))
    db.session.commit()
    assert stats.counts(db).clips == 1
    # A clip whose savepoint is rolled back was never added; the one beside it was.
    db.session.add(Clip(title="Kept", media="https://cdn.example.com/c.mp4"))
    with db.session.begin_nested() as savepoint:
        db.session.add(Clip(title="Undone", media="https://cdn.example.com/d.mp4"))
        db.session.flush()
        savepoint.rollback()
    db.session.commit()
    assert stats.counts(db).clips == 2


def test_publishes_today_counts_from_midnight_utc(db, make_log):
    now = utcnow().replace(hour=12, minute=0)
    midnight = stats.start_of_day(now)
    make_log(status="success", age=utcnow() - midnight + timedelta(minutes=1))  # yesterday
    make_log(status="success", age=utcnow() - midnight - timedelta(minutes=1))  # today
    assert stats.counts(db, now=now).publishes_today == 1


def test_latest_failures_newest_first_with_retry_for_editors(client, login, make_log, make_account):
    account = make_account("tiktok", handle="acme.clips")
    older = make_log(platform="tiktok", account=account, age=timedelta(hours=2), error_message="Older failure")
    newer = make_log(platform="tiktok", account=account, error_message="Newer failure")
    make_log(status="success")
    login("editor")
    html = client.get("/").get_data(as_text=True)
    assert html.index(f'id="failure-{newer.id}"') < html.index(f'id="failure-{older.id}"')
    assert "@acme.clips" in html and "Newer failure" in html
    assert f'<a href="/clips/{newer.clip_id}">' in html
    assert html.count('class="small retry-button"') == 2
    assert f'hx-post="/failures/{newer.id}/retry"' in html
    assert f'hx-target="#retry-result-{newer.id}"' in html
    assert f'<div id="retry-result-{newer.id}" class="publish-result" aria-live="polite"></div>' in html


def test_viewers_get_no_retry_button(client, login, make_log):
    make_log()
    login("viewer")
    html = client.get("/").get_data(as_text=True)
    assert "retry-button" not in html


def test_no_failures_message(client, login):
    login("viewer")
    assert 'id="no-failures"' in client.get("/").get_data(as_text=True)


def test_retry_through_htmx_queues_one_linked_attempt_and_answers_a_fragment(client, db, login, make_log, make_account):
    account = make_account("youtube", handle="AcmeShorts")
    failed = make_log(platform="youtube", account=account, caption="Again", hashtags=["shorts"])
    failed_id, clip_id, account_id = failed.id, failed.clip_id, account.id
    login("editor")
    response = client.post(f"/failures/{failed.id}/retry", headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert '<span class="badge badge-queued">Retry queued</span>' in html
    assert f'href="/history?clip={clip_id}#log-' in html
    # the Retry button goes away once the retry is queued (an out-of-band swap)
    assert f'<span id="retry-action-{failed_id}" hx-swap-oob="true"></span>' in html
    db.session.expire_all()
    retried = db.session.scalars(select(PublishLog).where(PublishLog.status == "queued")).one()
    assert (retried.clip_id, retried.platform, retried.social_account_id, retried.retry_of_id) == (
        clip_id, "youtube", account_id, failed_id)
    assert (retried.caption, retried.hashtags) == ("Again", ["shorts"])
    events = db.session.scalars(select(LedgerEvent.event_type).where(
        LedgerEvent.entity_id == clip_id).order_by(LedgerEvent.created_at)).all()
    assert events == ["publish_queued"]


def test_retry_refused_by_the_engine_shows_inline(client, db, login, make_log, make_account):
    account = make_account("instagram", active=False)
    failed = make_log(platform="instagram", account=account)
    login("editor")
    response = client.post(f"/failures/{failed.id}/retry", headers=HTMX)
    assert response.status_code == 200  # so that htmx swaps the message in
    html = response.get_data(as_text=True)
    assert 'class="field-error retry-error" role="alert"' in html
    assert "is inactive" in html
    assert count_logs(db) == 1


def test_retry_without_htmx_redirects_home_with_a_flash(client, login, make_log):
    failed = make_log(platform="tiktok")
    login("admin")
    response = client.post(f"/failures/{failed.id}/retry", follow_redirects=True)
    assert response.request.path == "/"
    assert "Retry queued: a worker publishes it in a moment." in response.get_data(as_text=True)


@pytest.mark.parametrize("role, status", [("viewer", 403), ("editor", 200), ("admin", 200)])
def test_retry_role_matrix(client, db, login, make_log, role, status):
    failed = make_log()
    login(role)
    response = client.post(f"/failures/{failed.id}/retry", headers=HTMX)
    assert response.status_code == status
    assert count_logs(db) == (1 if status == 403 else 2)


def test_retry_of_an_unknown_attempt_is_404(client, login):
    login("editor")
    assert client.post("/failures/00000000-0000-0000-0000-000000000000/retry").status_code == 404


def test_htmx_refresh_gets_the_overview_fragment(client, login):
    login("viewer")
    response = client.get("/", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "<nav" not in html
    assert html.lstrip().startswith("<section id=\"overview\"")
    assert 'hx-trigger="every 60s"' in html
    assert "HX-Request" in response.headers["Vary"]
    full = client.get("/").get_data(as_text=True)
    assert full.startswith("<!doctype html>") and 'id="overview"' in full


class TestCsrfEnforced:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_retry_without_token_is_refused(self, client, db, login, make_log):
        failed = make_log()
        login("editor")
        response = client.post(f"/failures/{failed.id}/retry", headers=HTMX)
        assert response.status_code == 400
        assert count_logs(db) == 1

    def test_retry_with_the_header_token_works(self, client, db, login, make_log):
        failed = make_log()
        login("editor")
        token = csrf_token_from(client.get("/").get_data(as_text=True))
        # htmx sends the token from <body hx-headers>; a plain form sends the field
        response = client.post(f"/failures/{failed.id}/retry", headers={**HTMX, "X-CSRFToken": token})
        assert response.status_code == 200
        assert count_logs(db) == 2
