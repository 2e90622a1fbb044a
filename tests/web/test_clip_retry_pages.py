"""The clip page's Retry (issue 12, item 4): it goes through the one retry service, so the new
attempt is queued once and linked to the failed one (which then leaves home's latest failures
and the history's Retry), and the panel follows that attempt through the queue to its end, with
htmx and without JavaScript. A real queue worker publishes it."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from dashboard.extensions import db as _db
from dashboard.models import PublishLog, SocialAccount, utcnow

from queue_support import InProcessWorker, get_log, released, wait_for_status

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config, request):
    return {**app_config, **getattr(request, "param", {})}


CSRF_ON = pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)


@pytest.fixture
def start_worker(app):
    """start_worker() -> a running in-process queue worker, stopped after the test."""
    workers: list[InProcessWorker] = []

    def start() -> InProcessWorker:
        workers.append(InProcessWorker(app, 2).start())
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def attempt(db, make_clip, make_account):
    """attempt(status="failed") -> (clip id, account id, id of a finished attempt to @acme.sports)."""

    def make(status: str = "failed"):
        clip = make_clip(title="Spring launch")
        account = make_account("instagram", "acme.sports")
        log = PublishLog(clip_id=clip.id, platform="instagram", social_account_id=account.id,
                         status=status, provider="simulator", caption="Out now", hashtags=["launch"],
                         error_message="Simulated outage", requested_at=utcnow(), attempts=1)
        db.session.add(log)
        db.session.commit()
        ids = clip.id, account.id, log.id
        db.session.remove()
        return ids

    return make


def retries_of(log_id) -> list[PublishLog]:
    return released(lambda: list(_db.session.scalars(select(PublishLog).where(PublishLog.retry_of_id == log_id))))


def retry_url(clip_id, log_id) -> str:
    return f"/clips/{clip_id}/attempts/{log_id}/retry"


def test_retry_queues_a_linked_attempt_and_the_panel_follows_it_to_its_post(client, login, attempt,
                                                                            start_worker):
    login("editor")
    clip_id, _, failed_id = attempt()

    html = client.post(retry_url(clip_id, failed_id), headers=HTMX).get_data(as_text=True)

    [retry] = retries_of(failed_id)
    assert (retry.status, retry.caption, retry.hashtags) == ("queued", "Out now", ["launch"])
    processing = re.search(r'<div id="publish-processing".*?</div>', html, re.S).group(0)
    assert f'data-log-id="{retry.id}"' in processing and 'data-status="queued"' in processing
    # Queued is not the end: it keeps asking until the attempt is final.
    assert f'hx-get="/clips/{clip_id}/attempts/{retry.id}"' in processing
    assert 'hx-trigger="load delay:2s"' in processing
    assert "Retry queued" in processing and "@acme.sports</strong> on Instagram" in processing
    assert 'id="clip-history" aria-labelledby="clip-history-heading" hx-swap-oob="true"' in html

    start_worker()
    done = wait_for_status(retry.id, "success")
    poll = client.get(f"/clips/{clip_id}/attempts/{retry.id}", headers=HTMX).get_data(as_text=True)

    assert '<div id="publish-final">' in poll and 'id="publish-success"' in poll
    assert f'id="publish-url" href="{done.external_url}"' in poll
    assert 'id="publish-target"><strong class="target-account">@acme.sports</strong> on Instagram' in poll
    assert "hx-trigger" not in poll.split('id="clip-history"')[0]  # final: the polling stops
    # The clip's history shows the chain: the failure says it was retried, the retry what it retried.
    rows = dict(re.findall(r'<tr data-log-id="([^"]+)" data-status="[^"]+">(.*?)</tr>', poll, re.S))
    assert "Retried:" in rows[str(failed_id)] and "badge-success" in rows[str(failed_id)]
    assert f'#log-{failed_id}">Retry of an attempt that failed</a>' in rows[str(retry.id)]
    # The failure was dealt with: home no longer lists it, the history no longer offers Retry.
    assert f"/failures/{failed_id}/retry" not in client.get("/").get_data(as_text=True)
    assert f'action="/history/{failed_id}/retry"' not in client.get("/history").get_data(as_text=True)


def test_a_retry_that_fails_again_offers_retry_of_the_new_attempt(app, client, login, attempt, start_worker):
    login("editor")
    clip_id, _, failed_id = attempt()
    app.config.update(SIMULATOR_FAILURE_RATE=1.0)
    client.post(retry_url(clip_id, failed_id), headers=HTMX)
    [retry] = retries_of(failed_id)

    start_worker()
    wait_for_status(retry.id, "failed")
    poll = client.get(f"/clips/{clip_id}/attempts/{retry.id}", headers=HTMX).get_data(as_text=True)

    assert 'id="publish-failure"' in poll and "@acme.sports</strong>" in poll
    assert f'hx-post="{retry_url(clip_id, retry.id)}"' in poll
    assert retry_url(clip_id, failed_id) not in poll


def test_a_second_retry_is_answered_in_the_panel_with_the_one_retry(client, login, attempt):
    login("editor")
    clip_id, _, failed_id = attempt()

    first = client.post(retry_url(clip_id, failed_id), headers=HTMX)
    second = client.post(retry_url(clip_id, failed_id), headers=HTMX)

    assert first.status_code == 200 and second.status_code == 200
    html = second.get_data(as_text=True)
    [retry] = retries_of(failed_id)
    assert 'id="retry-refused"' in html and "already retried" in html
    assert f'id="publish-processing" class="publish-outcome" data-status="queued" data-log-id="{retry.id}"' in html
    assert "<html" not in html  # the panel's fragment, not an error page


def test_without_javascript_retry_goes_to_the_new_attempt_and_a_second_one_says_so(client, login, attempt):
    login("editor")
    clip_id, _, failed_id = attempt()

    response = client.post(retry_url(clip_id, failed_id))
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    [retry] = retries_of(failed_id)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/clips/{clip_id}/attempts/{retry.id}")
    assert "<html" in page and 'id="publish-panel"' in page
    assert f'data-log-id="{retry.id}"' in page and "Retry queued" in page
    assert f'<a id="publish-follow" href="/clips/{clip_id}/attempts/{retry.id}">' in page

    again = client.post(retry_url(clip_id, failed_id))
    html = again.get_data(as_text=True)
    assert again.status_code == 409
    assert 'id="publish-panel"' in html and 'id="retry-refused"' in html and "already retried" in html
    assert len(retries_of(failed_id)) == 1


def test_retry_anyway_of_an_unknown_outcome_is_a_linked_retry_too(client, login, attempt):
    login("editor")
    clip_id, _, unknown_id = attempt("unconfirmed")
    page = client.get(f"/clips/{clip_id}/attempts/{unknown_id}").get_data(as_text=True)
    form = re.search(r'<form id="retry-form".*?</form>', page, re.S).group(0)
    assert ">Retry anyway</button>" in form and f'action="{retry_url(clip_id, unknown_id)}"' in form

    client.post(retry_url(clip_id, unknown_id), headers=HTMX)

    [retry] = retries_of(unknown_id)
    assert retry.status == "queued"


def test_a_refused_retry_says_why_under_its_button_and_writes_nothing(db, client, login, attempt):
    login("editor")
    clip_id, account_id, failed_id = attempt()
    db.session.get(SocialAccount, account_id).active = False
    db.session.commit()

    html = client.post(retry_url(clip_id, failed_id), headers=HTMX).get_data(as_text=True)

    error = re.search(r'<p id="retry-error"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert error.startswith("Not retried: ") and "inactive" in error.lower()
    assert 'id="retry-button"' in html and f'data-log-id="{failed_id}"' in html
    assert retries_of(failed_id) == []


@CSRF_ON
def test_a_retry_without_its_csrf_token_is_refused_in_place(client, login, attempt):
    login("editor")
    clip_id, _, failed_id = attempt()
    response = client.post(retry_url(clip_id, failed_id), headers=HTMX)
    # The app-wide CSRF check answers; static/app.js shows #error-detail beside the button.
    detail = re.search(r'id="error-detail"[^>]*>(.*?)<', response.get_data(as_text=True), re.S).group(1)
    assert response.status_code == 400 and "expired" in detail
    assert retries_of(failed_id) == []


def test_retry_is_for_editors_and_for_the_clips_own_attempts(client, login, attempt, make_clip):
    clip_id, _, failed_id = attempt()
    other_clip = make_clip(title="Other").id
    login("editor")
    assert client.post(retry_url(other_clip, failed_id), headers=HTMX).status_code == 404
    assert client.post(retry_url(clip_id, uuid.uuid4()), headers=HTMX).status_code == 404
    assert retries_of(failed_id) == [] and get_log(failed_id).status == "failed"


def test_viewers_get_no_retry(client, login, attempt):
    clip_id, _, failed_id = attempt()
    login("viewer")
    assert client.post(retry_url(clip_id, failed_id), headers=HTMX).status_code == 403
    assert retries_of(failed_id) == []
