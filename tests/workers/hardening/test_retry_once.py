"""A retry publishes once, whoever asks: home's Retry, the history's, a batch row's and the API's
all go through one service that links the new attempt to the failed one (`retry_of_id`), keeps it
in its batch, refuses a second retry of the same log with 409, and takes the failure off the
"latest failures" list and the history's Retry once it is retried. A real worker publishes it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.models import PublishBatch, PublishLog, utcnow

from queue_support import all_logs, fire_together, get_log, released, wait_for_status

HTMX = {"HX-Request": "true"}


@pytest.fixture
def failed_log(db, make_clip):
    """failed_log(batch=False) -> the id of a failed publish log (in a batch of its own if asked)."""

    def make(batch: bool = False):
        clip = make_clip()
        batch_id = None
        if batch:
            row = PublishBatch(clip_id=clip.id)
            db.session.add(row)
            db.session.flush()
            batch_id = row.id
        log = PublishLog(clip_id=clip.id, platform="tiktok", status="failed", provider="simulator",
                         caption="Out now", hashtags=["launch"], error_message="Simulated outage",
                         requested_at=utcnow(), attempts=1, batch_id=batch_id)
        db.session.add(log)
        db.session.commit()
        log_id = log.id
        db.session.remove()
        return log_id

    return make


def retries_of(log_id) -> list[PublishLog]:
    return released(lambda: list(_scalars(select(PublishLog).where(PublishLog.retry_of_id == log_id))))


def _scalars(query):
    from dashboard.extensions import db

    return db.session.scalars(query)


RETRY_URLS = {
    "home": "/failures/{id}/retry",
    "history": "/history/{id}/retry",
}


@pytest.mark.parametrize("page", sorted(RETRY_URLS))
def test_a_double_click_on_retry_publishes_once(client, login, failed_log, worker, page):
    login("editor")
    log_id = failed_log()
    url = RETRY_URLS[page].format(id=log_id)

    first = client.post(url, headers=HTMX)
    second = client.post(url, headers=HTMX)

    assert first.status_code == 200 and second.status_code == 200
    assert "already retried" in second.get_data(as_text=True)
    retries = retries_of(log_id)
    assert len(retries) == 1
    done = wait_for_status(retries[0].id, "success")
    assert done.retry_of_id == log_id and done.caption == "Out now" and done.hashtags == ["launch"]
    assert len(all_logs()) == 2  # the failed log and its one retry


def test_a_batch_rows_retry_stays_in_its_batch_and_is_refused_a_second_time(client, login, failed_log):
    login("editor")
    log_id = failed_log(batch=True)
    batch_id = get_log(log_id).batch_id
    url = f"/batches/{batch_id}/logs/{log_id}/retry"

    assert client.post(url, headers=HTMX).status_code == 200
    html = client.post(url, headers=HTMX).get_data(as_text=True)

    assert "already retried" in html
    [retry] = retries_of(log_id)
    assert retry.batch_id == batch_id


def test_home_retry_keeps_the_batch_too(client, login, failed_log):
    login("editor")
    log_id = failed_log(batch=True)
    client.post(f"/failures/{log_id}/retry", headers=HTMX)
    [retry] = retries_of(log_id)
    assert (retry.batch_id, retry.retry_of_id) == (get_log(log_id).batch_id, log_id)


def test_concurrent_api_retries_make_one_attempt_and_the_rest_are_409(app, api, failed_log):
    log_id = failed_log()

    responses = fire_together(app, 6, lambda c: c.post(f"/publishing/logs/{log_id}/retry",
                                                       headers=api.headers))

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [409] * 5, [r.get_json() for r in responses]
    assert len(retries_of(log_id)) == 1


def test_a_retried_failure_leaves_the_latest_failures_and_the_history_retry(client, login, failed_log, worker):
    login("editor")
    log_id = failed_log()
    home = client.get("/").get_data(as_text=True)
    assert f"/failures/{log_id}/retry" in home
    history = client.get("/history").get_data(as_text=True)
    assert f'action="/history/{log_id}/retry"' in history

    html = client.post(f"/failures/{log_id}/retry", headers=HTMX).get_data(as_text=True)
    assert "Retry queued" in html
    # Under way (queued or publishing) or done: no Retry either way.
    for _ in ("under way", "done"):
        home = client.get("/").get_data(as_text=True)
        assert f"/failures/{log_id}/retry" not in home
        history = client.get("/history").get_data(as_text=True)
        row = re.search(rf'<tr id="log-{log_id}".*?</tr>', history, re.S).group(0)
        assert "retry-button" not in row and "Retried:" in row
        wait_for_status(retries_of(log_id)[0].id, "success")
