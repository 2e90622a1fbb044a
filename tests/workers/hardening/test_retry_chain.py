"""Failures that were dealt with stop shouting, and a retry shows its chain (issue 12, item 4), on
the retry service every page shares: home's Retry follows the new attempt until it is final (a
live attempt still working shows as in progress, never as a failure); the history shows the
chain (the original says it was retried and how that went, the retry links to what it retried,
attempts count the whole chain); the batch page's "Retry all failed" retries every failed
target once. Real database, real queue, a real worker thread."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.models import PublishBatch, PublishLog, utcnow

from queue_support import get_log, released, wait_for_status

HTMX = {"HX-Request": "true"}


@pytest.fixture
def failed_batch(db, make_clip):
    """failed_batch(*statuses) -> (batch id, [log ids]): a cross-post whose targets ended so."""

    def make(*statuses: str):
        clip = make_clip()
        batch = PublishBatch(clip_id=clip.id)
        db.session.add(batch)
        db.session.flush()
        rows = [PublishLog(clip_id=clip.id, platform="tiktok", status=status, provider="simulator",
                           caption=f"Target {index}", error_message="Simulated outage",
                           requested_at=utcnow(), attempts=2, batch_id=batch.id)
                for index, status in enumerate(statuses)]
        db.session.add_all(rows)
        db.session.commit()
        ids = batch.id, [row.id for row in rows]
        db.session.remove()
        return ids

    return make


def retry_of(log_id) -> PublishLog | None:
    from dashboard.extensions import db

    return released(lambda: db.session.scalar(select(PublishLog).where(PublishLog.retry_of_id == log_id)))


def row_of(html: str, log_id) -> str:
    return re.search(rf'<tr id="log-{log_id}".*?</tr>', html, re.S).group(0)


def test_home_retry_follows_the_new_attempt_until_it_is_published(client, login, failed_batch, worker):
    login("editor")
    _, [log_id] = failed_batch("failed")

    html = client.post(f"/failures/{log_id}/retry", headers=HTMX).get_data(as_text=True)

    retry = retry_of(log_id)
    assert "Retry queued" in html and "Failed" not in html
    assert f'hx-get="/retries/{retry.id}"' in html  # it follows the attempt by itself
    wait_for_status(retry.id, "success")
    final = client.get(f"/retries/{retry.id}", headers=HTMX).get_data(as_text=True)
    assert "Published" in final and "hx-get" not in final  # final: the polling stops
    assert get_log(retry.id).external_url in final


def test_a_live_retry_still_working_shows_in_progress_not_failed(client, db, login, failed_batch):
    login("editor")
    _, [log_id] = failed_batch("failed")
    client.post(f"/failures/{log_id}/retry", headers=HTMX)
    retry = db.session.get(PublishLog, retry_of(log_id).id)
    # As a live attempt is while the platform processes the video (between two steps).
    retry.status, retry.step, retry.attempts = "publishing", "processing", 1
    db.session.commit()

    html = client.get(f"/retries/{retry.id}", headers=HTMX).get_data(as_text=True)

    assert "Retrying" in html and "(processing)" in html
    assert "Failed" not in html and "Still publishing" not in html
    assert f'hx-get="/retries/{retry.id}"' in html


def test_the_history_shows_the_chain_and_counts_its_attempts(client, db, login, failed_batch):
    login("editor")
    _, [log_id] = failed_batch("failed")
    client.post(f"/history/{log_id}/retry", headers=HTMX)
    retry = db.session.get(PublishLog, retry_of(log_id).id)
    retry.status, retry.attempts, retry.error_message = "failed", 1, "Simulated outage again"
    db.session.commit()
    retry_id = retry.id

    page = client.get("/history").get_data(as_text=True)

    original, again = row_of(page, log_id), row_of(page, retry_id)
    assert "Retried:" in original and f"#log-{retry_id}" in original and "retry-button" not in original
    assert "Retry of" in again and f"#log-{log_id}" in again and "retry-button" in again
    # Two attempts of the original, then this retry's first: the third of the chain.
    assert '<td class="attempts" title="1 in this retry, 2 before it">3</td>' in again
    home = client.get("/").get_data(as_text=True)
    assert f"/failures/{log_id}/retry" not in home and f"/failures/{retry_id}/retry" in home


def test_retry_all_failed_retries_each_failed_target_once(client, login, failed_batch, worker):
    login("editor")
    batch_id, [first, second, unknown, done] = failed_batch("failed", "failed", "unconfirmed", "success")
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Retry all failed (2)" in page

    html = client.post(f"/batches/{batch_id}/retry-failed", headers=HTMX).get_data(as_text=True)

    retries = [retry_of(log_id) for log_id in (first, second)]
    assert all(r is not None and r.batch_id == batch_id for r in retries)
    assert retry_of(unknown) is None and retry_of(done) is None  # a person checks those first
    assert "Retry all failed" not in html  # nothing failed is left to retry
    again = client.post(f"/batches/{batch_id}/retry-failed", headers=HTMX)
    assert again.status_code == 200
    for retry in retries:
        assert wait_for_status(retry.id, "success").retry_of_id in (first, second)
        assert retry_of(retry.id) is None  # the second click queued nothing more


def test_retry_all_failed_says_which_target_was_refused(client, db, login, failed_batch, make_account):
    login("editor")
    batch_id, [ok_id, refused_id] = failed_batch("failed", "failed")
    sleepy = make_account("tiktok", "sleepy", active=False)
    db.session.get(PublishLog, refused_id).social_account_id = sleepy.id
    db.session.commit()

    html = client.post(f"/batches/{batch_id}/retry-failed", headers=HTMX).get_data(as_text=True)

    assert retry_of(ok_id) is not None and retry_of(refused_id) is None
    row = re.search(rf'<tr id="target-{refused_id}".*?</tr>', html, re.S).group(0)
    assert "Not retried:" in row and "@sleepy is inactive" in row
