"""Publish history page: filters, keyset pages, fragments, Retry in the row, roles, CSRF, indexes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from dashboard.history import HistoryFilter, list_publish_logs
from dashboard.models import PublishLog, utcnow
from dashboard.pagination import encode_cursor

from page_support import field_error, walk_pages

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config, request):
    """The conftest settings, changed by `@pytest.mark.parametrize("app_config", [...], indirect=True)`."""
    return {**app_config, **getattr(request, "param", {})}


@pytest.fixture
def make_log(db, make_clip):
    """make_log(status="failed", platform="instagram", account=None, at=None, clip=None, **fields) -> log id."""

    def make(status="failed", platform="instagram", account=None, at=None, clip=None, **fields):
        clip = clip or make_clip()
        values = {"caption": "Hello", "hashtags": ["launch"],
                  "error_message": "Simulated rate limit" if status == "failed" else None}
        if status == "success":
            values.update(external_post_id="123", external_url="https://www.instagram.com/reel/abc/")
        values.update(fields)
        log = PublishLog(clip_id=clip.id, platform=platform, status=status, provider="simulator",
                         social_account_id=account.id if account else None,
                         requested_at=at or utcnow(), **values)
        db.session.add(log)
        db.session.commit()
        return log.id

    return make


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="log-([0-9a-f-]{36})"', html)


def log_count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(PublishLog))


UTC = UTC


# Sign-in and roles ------------------------------------------------------------------------------

def test_history_needs_a_signed_in_user(client, make_log):
    log_id = make_log()
    assert client.get("/history").headers["Location"].startswith("/login")
    response = client.post(f"/history/{log_id}/retry")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_reads_the_history(client, login, role):
    login(role)
    response = client.get("/history")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Publish history</h1>" in html
    assert not re.search(r'class="field-error">[^<]', html)  # no filter, no complaint
    assert "HX-Request" in response.headers["Vary"]


def test_viewer_sees_no_retry_and_may_not_retry(client, db, login, make_log):
    login("viewer")
    log_id = make_log(status="failed")
    html = client.get("/history").get_data(as_text=True)
    assert str(log_id) in html and "retry-button" not in html
    assert client.post(f"/history/{log_id}/retry", headers=HTMX).status_code == 403
    assert log_count(db) == 1


# Listing and filters ----------------------------------------------------------------------------

def test_newest_first_with_links_to_clip_and_ledger(client, login, make_clip, make_log):
    login("viewer")
    clip = make_clip(title="Shoot")
    older = make_log(status="success", at=utcnow() - timedelta(hours=2), clip=clip)
    newer = make_log(status="failed", at=utcnow() - timedelta(hours=1), clip=clip)
    html = client.get("/history").get_data(as_text=True)
    assert row_ids(html) == [str(newer), str(older)]
    assert f'href="/clips/{clip.id}">Shoot</a>' in html
    assert f'href="/ledger?entity_type=clip&amp;entity_id={clip.id}">Events</a>' in html
    assert "Simulated rate limit" in html and 'href="https://www.instagram.com/reel/abc/"' in html


def test_filter_by_status_platform_and_account(client, login, make_account, make_log):
    login("viewer")
    acme = make_account("tiktok", "acme")
    other = make_account("tiktok", "other")
    ok_tiktok = make_log(status="success", platform="tiktok", account=acme)
    failed_tiktok = make_log(status="failed", platform="tiktok", account=other)
    failed_insta = make_log(status="failed", platform="instagram")

    def ids(query: str) -> set[str]:
        return set(row_ids(client.get("/history?" + query, headers=HTMX).get_data(as_text=True)))

    assert ids("status=failed") == {str(failed_tiktok), str(failed_insta)}
    assert ids("platform=tiktok") == {str(ok_tiktok), str(failed_tiktok)}
    assert ids(f"account={acme.id}") == {str(ok_tiktok)}
    assert ids(f"status=failed&platform=tiktok&account={other.id}") == {str(failed_tiktok)}
    assert ids("status=pending") == set()
    assert ids("status=&platform=&account=&from=&to=") == {str(ok_tiktok), str(failed_tiktok), str(failed_insta)}


def test_filter_by_days_inclusive_for_a_utc_user(client, login, make_log):
    login("viewer")
    before = make_log(at=datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC))
    first = make_log(at=datetime(2026, 3, 10, 0, 0, 0, tzinfo=UTC))
    last = make_log(at=datetime(2026, 3, 11, 23, 59, 59, 999999, tzinfo=UTC))
    after = make_log(at=datetime(2026, 3, 12, 0, 0, 0, tzinfo=UTC))
    html = client.get("/history?from=2026-03-10&to=2026-03-11", headers=HTMX).get_data(as_text=True)
    assert row_ids(html) == [str(last), str(first)]
    only_from = row_ids(client.get("/history?from=2026-03-11", headers=HTMX).get_data(as_text=True))
    assert only_from == [str(after), str(last)]
    only_to = row_ids(client.get("/history?to=2026-03-09", headers=HTMX).get_data(as_text=True))
    assert only_to == [str(before)]


def test_filter_by_clip_from_the_clip_page(client, login, make_clip, make_log):
    login("viewer")
    mine, other = make_clip(title="Mine"), make_clip(title="Other")
    log_id = make_log(clip=mine)
    make_log(clip=other)
    html = client.get(f"/history?clip={mine.id}").get_data(as_text=True)
    assert row_ids(html) == [str(log_id)]
    assert 'id="history-clip-filter"' in html and ">Mine</a>" in html


def test_invalid_filters_are_shown_next_to_the_field(client, login, make_log):
    login("viewer")
    make_log()
    html = client.get("/history?from=2026-03-10&to=2026-03-01&account=nope").get_data(as_text=True)
    assert "must be on or after the From date" in field_error(html, "to")
    assert "choose an account from the list" in field_error(html, "account")
    # htmx: the error slots come out of band, next to the fields that stay on the page
    fragment = client.get("/history?from=2026-03-10&to=2026-03-01", headers=HTMX).get_data(as_text=True)
    assert re.search(r'<small id="to-error" class="field-error" hx-swap-oob="true">must be on or after', fragment)
    assert re.search(r'<small id="from-error" class="field-error" hidden hx-swap-oob="true"></small>', fragment)
    bad_date = client.get("/history?from=yesterday", headers=HTMX).get_data(as_text=True)
    assert "Not a valid date value" in bad_date
    assert client.get("/history?status=lost").status_code == 200


def test_fragment_versus_full_page(client, login, make_log):
    login("viewer")
    make_log()
    page = client.get("/history?status=failed")
    fragment = client.get("/history?status=failed", headers=HTMX)
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="history-filters"' not in body and 'id="history-table"' in body
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    form = re.search(r'<form id="history-filters".*?>', page.get_data(as_text=True), re.S).group(0)
    assert 'hx-get="/history"' in form and 'hx-target="#history-results"' in form
    assert 'hx-push-url="true"' in form


def test_keyset_pages_walk_every_log_once(client, login, make_clip, make_log):
    login("viewer")
    clip = make_clip()
    start = utcnow()
    # Ties on requested_at on purpose: the id breaks them, and no row may be lost or repeated.
    made = [make_log(clip=clip, status="failed", at=start - timedelta(seconds=i // 3)) for i in range(120)]
    make_log(clip=clip, status="success", at=start - timedelta(seconds=200))
    seen, pages = walk_pages(client, "/history?status=failed", "history-next", row_ids,
                             kept="status=failed")
    assert pages == 3
    # Newest first, equal times by id descending; nothing lost, nothing twice.
    expected = sorted(range(120), key=lambda i: (i // 3, -made[i].int))
    assert seen == [str(made[i]) for i in expected]


def test_a_damaged_cursor_is_a_400(client, login):
    login("viewer")
    assert client.get("/history?cursor=abc").status_code == 400


# Retry --------------------------------------------------------------------------------------------

def test_retry_queues_one_linked_attempt_and_swaps_the_row(client, db, login, make_account, make_log):
    login("editor")
    account = make_account("tiktok", "acme")
    account_id = account.id
    log_id = make_log(status="failed", platform="tiktok", account=account, caption="Again",
                      hashtags=["a", "b"])
    page = client.get("/history").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/history/{log_id}/retry".*?</form>', page, re.S).group(0)
    assert 'hx-target="closest tr"' in form and 'hx-swap="outerHTML"' in form
    assert '<button type="submit" class="secondary small retry-button">Retry</button>' in form

    response = client.post(f"/history/{log_id}/retry", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.strip().startswith(f'<tr id="log-{log_id}"') and "<html" not in html
    db.session.expire_all()
    new = db.session.scalars(select(PublishLog).where(PublishLog.id != log_id)).one()
    assert (new.platform, new.social_account_id, new.caption, new.hashtags, new.status, new.retry_of_id) == (
        "tiktok", account_id, "Again", ["a", "b"], "queued", log_id)
    assert 'data-retry-status="queued"' in html and "Retry queued:" in html
    assert "retry-button" not in html  # retried once: no second Retry on this row
    assert db.session.get(PublishLog, log_id).status == "failed"  # the old attempt stays as it was


def test_a_retried_row_says_so_and_its_retry_offers_retry_when_it_fails(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="failed")
    client.post(f"/history/{log_id}/retry", headers=HTMX)
    new = db.session.scalars(select(PublishLog).where(PublishLog.id != log_id)).one()
    new.status, new.error_message = "failed", "Simulated outage"
    db.session.commit()
    new_id = new.id
    page = client.get("/history").get_data(as_text=True)
    old_row = re.search(rf'<tr id="log-{log_id}".*?</tr>', page, re.S).group(0)
    new_row = re.search(rf'<tr id="log-{new_id}".*?</tr>', page, re.S).group(0)
    assert "Retried:" in old_row and "retry-button" not in old_row
    assert "retry-button" in new_row


def test_retry_refused_inline(client, db, login, make_account, make_log):
    login("editor")
    sleepy = make_account("instagram", "sleepy", active=False)
    log_id = make_log(status="failed", account=sleepy)
    html = client.post(f"/history/{log_id}/retry", headers=HTMX).get_data(as_text=True)
    assert "Not retried:" in html and "@sleepy is inactive" in html
    ok_id = make_log(status="success")
    html = client.post(f"/history/{ok_id}/retry", headers=HTMX).get_data(as_text=True)
    assert "only failed or unconfirmed posts are retried" in html
    assert log_count(db) == 2
    assert client.post(f"/history/{uuid.uuid4()}/retry", headers=HTMX).status_code == 404


def test_retry_without_htmx_redirects_with_a_message(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="failed")
    response = client.post(f"/history/{log_id}/retry")
    assert response.status_code == 302 and response.headers["Location"] == "/history"
    assert "Retry queued" in client.get("/history").get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_csrf_is_enforced_on_retry(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="failed")
    assert client.post(f"/history/{log_id}/retry").status_code == 400
    assert client.post(f"/history/{log_id}/retry", headers={**HTMX, "X-CSRFToken": "x"}).status_code == 400
    assert log_count(db) == 1
    page = client.get("/history").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert client.post(f"/history/{log_id}/retry", data={"csrf_token": token}).status_code == 302
    assert log_count(db) == 2


# Scale: every filter is an index search ------------------------------------------------------------

def test_filtered_queries_use_an_index(db, make_account, make_clip):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by its statistics")
    account, clip = make_account(), make_clip()
    day = datetime(2026, 3, 1, tzinfo=UTC)
    filters = [
        HistoryFilter(),
        HistoryFilter(status="failed"),
        HistoryFilter(platform="tiktok"),
        HistoryFilter(social_account_id=account.id),
        HistoryFilter(clip_id=clip.id),
        HistoryFilter(since=day, until=day + timedelta(days=1)),
        HistoryFilter(status="failed", platform="tiktok", social_account_id=account.id, since=day),
        HistoryFilter(status="failed", clip_id=clip.id),
    ]
    statements = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM publish_logs" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        for f in filters:
            page = list_publish_logs(db, f, None, 50)
            list_publish_logs(db, f, encode_cursor(day, uuid.UUID(int=0)), 50)
            assert page.items == []
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    assert len(statements) == 2 * len(filters)
    connection = db.session.connection()
    for statement, parameters in statements:
        plan = " | ".join(row[-1] for row in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))
        assert "USING INDEX ix_publish_logs_" in plan, plan
        assert "SCAN publish_logs" not in plan or "USING INDEX ix_publish_logs_requested_id" in plan, plan
        if "requested_at <=" in statement:  # a cursor: the index seeks to it
            assert "requested_at<?" in plan, plan
    # the most selective filter's index wins where SQLite has no statistics to choose with
    plans = [" ".join(r[-1] for r in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p))
             for s, p in statements]
    assert "ix_publish_logs_account_requested" in plans[12]
    assert "ix_publish_logs_clip_requested" in plans[14]


def test_only_web_urls_become_links(client, login, make_log):
    login("viewer")
    make_log(status="success", external_url="javascript:alert(1)", external_post_id="evil")
    html = client.get("/history").get_data(as_text=True)
    assert 'href="javascript:' not in html
    assert "<code>javascript:alert(1)</code>" in html


# Publishing at scale: every status, attempts, the unconfirmed and waiting rows' actions ----------

def test_every_status_has_a_badge_and_the_filter_offers_it(client, login, make_log):
    from dashboard.models import PublishStatus

    login("viewer")
    labels = {"scheduled": "Scheduled", "queued": "Queued", "publishing": "Publishing",
              "success": "Published", "failed": "Failed", "unconfirmed": "Unconfirmed",
              "cancelled": "Cancelled", "pending": "Pending"}
    ids = {status: make_log(status=status) for status in labels}
    html = client.get("/history").get_data(as_text=True)
    for status, log_id in ids.items():
        row = re.search(rf'<tr id="log-{log_id}".*?</tr>', html, re.S).group(0)
        assert f'<span class="badge badge-{status}">{labels[status]}</span>' in row
    select_html = re.search(r'<select[^>]*id="status".*?</select>', html, re.S).group(0)
    offered = re.findall(r'<option[^>]*value="([^"]*)"', select_html)
    assert offered == ["", *(s.value for s in PublishStatus)]
    for status in labels:
        page = client.get(f"/history?status={status}", headers=HTMX).get_data(as_text=True)
        assert row_ids(page) == [str(ids[status])]


def test_attempts_and_the_next_attempt_on_the_users_clock(client, user_in, make_log):
    user_in("Asia/Kolkata", role="viewer")
    next_at = datetime(2031, 5, 4, 10, 0, tzinfo=UTC)
    log_id = make_log(status="queued", attempts=2, next_attempt_at=next_at, error_message="rate limited")
    html = client.get("/history").get_data(as_text=True)
    row = re.search(rf'<tr id="log-{log_id}".*?</tr>', html, re.S).group(0)
    assert '<td class="attempts">2</td>' in row
    assert re.search(r"rate limited; next attempt at <time datetime=\"2031-05-04T10:00:00Z\"[^>]*>"
                     r"2031-05-04 15:30 <span class=\"tz\">IST, UTC\+05:30</span></time>", row)
    assert "Times are in your zone, Asia/Kolkata" in html


def test_an_unconfirmed_row_says_so_and_offers_retry_and_mark(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="unconfirmed", error_message="timeout after upload")
    html = client.get("/history").get_data(as_text=True)
    row = re.search(rf'<tr id="log-{log_id}".*?</tr>', html, re.S).group(0)
    assert "<strong>Outcome unknown:</strong> the platform may have published this; check before retrying." in row
    assert "retry-button" in row and "mark-button" in row and "cancel-button" not in row

    # Retry goes through the queue, once: a new queued attempt that points back at this one.
    response = client.post(f"/history/{log_id}/retry", headers=HTMX)
    html = response.get_data(as_text=True)
    assert html.strip().startswith(f'<tr id="log-{log_id}"')
    assert 'data-retry-status="queued"' in html and "Retry queued:" in html and "retry-button" not in html
    db.session.expire_all()
    new = db.session.scalars(select(PublishLog).where(PublishLog.id != log_id)).one()
    assert (new.status, new.retry_of_id) == ("queued", log_id)
    again = client.post(f"/history/{log_id}/retry", headers=HTMX).get_data(as_text=True)
    assert "Not retried:" in again and "already retried" in again
    assert log_count(db) == 2


def test_mark_an_unconfirmed_post_as_published(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="unconfirmed")
    bad = client.post(f"/history/{log_id}/mark-published", headers=HTMX,
                      data={"external_url": "ftp://example.com/x"}).get_data(as_text=True)
    assert "enter an http(s) address" in bad and 'data-status="unconfirmed"' in bad
    html = client.post(f"/history/{log_id}/mark-published", headers=HTMX,
                       data={"external_url": "https://www.tiktok.com/@acme/video/1"}).get_data(as_text=True)
    assert 'data-status="success"' in html and 'href="https://www.tiktok.com/@acme/video/1"' in html
    assert "mark-button" not in html
    db.session.expire_all()
    assert db.session.get(PublishLog, log_id).status == "success"
    twice = client.post(f"/history/{log_id}/mark-published", headers=HTMX, data={}).get_data(as_text=True)
    assert "only unconfirmed posts can be marked" in twice


@pytest.mark.parametrize("status", ["scheduled", "queued"])
def test_cancel_a_waiting_post_in_its_row(client, db, login, make_log, status):
    login("editor")
    log_id = make_log(status=status, next_attempt_at=utcnow() + timedelta(hours=1))
    page = client.get("/history").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/history/{log_id}/cancel".*?</form>', page, re.S).group(0)
    assert 'hx-target="closest tr"' in form
    html = client.post(f"/history/{log_id}/cancel", data={"confirm": "yes"}, headers=HTMX).get_data(as_text=True)
    assert html.strip().startswith(f'<tr id="log-{log_id}" data-status="cancelled"')
    assert "cancel-button" not in html
    again = client.post(f"/history/{log_id}/cancel", data={"confirm": "yes"}, headers=HTMX).get_data(as_text=True)
    assert "this post is cancelled and can no longer be cancelled" in again


def test_a_failed_target_of_a_batch_is_retried_through_the_queue(client, db, login, make_clip, make_log):
    from dashboard.publishing import background

    login("editor")
    clip = make_clip()
    batch = background.create_batch(db, clip.id, [background.Target("instagram", None, "", [])])
    db.session.expire_all()
    [log] = batch.logs
    log.status = "failed"
    db.session.commit()
    html = client.get("/history").get_data(as_text=True)
    assert f'<a class="batch-link" href="/batches/{batch.id}">cross-post</a>' in html
    retried = client.post(f"/history/{log.id}/retry", headers=HTMX).get_data(as_text=True)
    assert f'<a href="/batches/{batch.id}">follow it on the batch page</a>' in retried
    db.session.expire_all()
    assert {row.status for row in db.session.get(type(batch), batch.id).logs} == {"failed", "queued"}


def test_cancel_without_javascript_asks_first(client, db, login, make_log):
    login("editor")
    log_id = make_log(status="scheduled", next_attempt_at=utcnow() + timedelta(hours=1))
    html = client.post(f"/history/{log_id}/cancel").get_data(as_text=True)
    assert '<h1 id="confirm-question">Cancel this post?</h1>' in html
    db.session.expire_all()
    assert db.session.get(PublishLog, log_id).status == "scheduled"


def test_a_target_waiting_to_retry_says_so_with_when(client, user_in, make_log):
    user_in("Europe/Paris", role="viewer")
    next_at = datetime(2031, 1, 6, 9, 30, tzinfo=UTC)
    waiting = make_log(status="queued", attempts=1, next_attempt_at=next_at, error_message="rate limited")
    fresh = make_log(status="queued")
    html = client.get("/history").get_data(as_text=True)
    row = re.search(rf'<tr id="log-{waiting}".*?</tr>', html, re.S).group(0)
    assert ('<span class="badge badge-retrying" title="Next attempt at 2031-01-06 10:30 CET, UTC+01:00">'
            'Waiting to retry</span>') in row
    assert "rate limited; next attempt at" in row and "Queued" not in row
    never_tried = re.search(rf'<tr id="log-{fresh}".*?</tr>', html, re.S).group(0)
    assert '<span class="badge badge-queued">Queued</span>' in never_tried
