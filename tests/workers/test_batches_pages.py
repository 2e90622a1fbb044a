"""The batch page on the real queue: one row per target, the summary, polling while the batch
runs and none once it is done, partial batches, Retry and "Mark as published" in place."""

from __future__ import annotations

import re
import uuid

import pytest
from flask import g
from sqlalchemy import select

from dashboard.extensions import db as _db
from dashboard.models import PublishBatch, PublishLog
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.simulator import PlatformSimulator

from queue_support import released, wait_until

HTMX = {"HX-Request": "true"}
POLLING = 'hx-trigger="load delay:1s"'


class Pages:
    """The test client as a signed-in user, ending the test thread's transaction after each
    request: on SQLite an open transaction holds the write lock the workers need."""

    def __init__(self, client):
        self.client = client

    def _call(self, method, url, **kwargs):
        try:
            return getattr(self.client, method)(url, **kwargs)
        finally:
            _db.session.remove()
            g.pop("_login_user", None)  # loaded in the removed session

    def get(self, url, **kwargs):
        return self._call("get", url, **kwargs)

    def post(self, url, **kwargs):
        return self._call("post", url, **kwargs)


@pytest.fixture
def pages(client, login):
    """pages(role="editor") -> Pages signed in as a new user of that role."""

    def sign_in(role: str = "editor") -> Pages:
        login(role)
        _db.session.remove()
        return Pages(client)

    return sign_in


@pytest.fixture
def family(make_account):
    """An Instagram main account with two active satellites."""
    main = make_account("instagram", "brand")
    satellites = [make_account("instagram", f"brand.{name}", parent_account_id=main.id) for name in ("fr", "de")]
    return main, satellites


@pytest.fixture
def fail_for(monkeypatch):
    """fail_for({"brand.de": "permanent"}): those accounts' calls fail with that kind, once each."""

    def arrange(kinds: dict[str, str]):
        real = PlatformSimulator.publish
        pending = dict(kinds)

        def publish(self, job):
            kind = pending.pop(job.account_handle, None)
            if kind is not None:
                return PlatformOutcome(False, error_message=f"simulated {kind} failure", error_kind=kind)
            return real(self, job)

        monkeypatch.setattr(PlatformSimulator, "publish", publish)

    return arrange


def crosspost(pages: Pages, clip_id, main_id) -> uuid.UUID:
    response = pages.post(f"/clips/{clip_id}/crosspost", headers=HTMX, data={
        "xp-with_satellites_of": str(main_id), "xp-caption": "Hello", "xp-idempotency_key": uuid.uuid4().hex})
    assert response.status_code == 204, response.get_data(as_text=True)
    return uuid.UUID(response.headers["HX-Redirect"].rsplit("/", 1)[1])


def fragment(pages: Pages, batch_id) -> str:
    response = pages.get(f"/batches/{batch_id}", headers=HTMX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="batch-progress"') and "<html" not in html
    return html


def wait_done(pages: Pages, batch_id) -> str:
    return wait_until(lambda: (html := fragment(pages, batch_id)) and POLLING not in html and html,
                      timeout=20, what=f"batch {batch_id} to finish")


def summary(html: str) -> str:
    counts = re.search(r'<span id="batch-counts">(.*?)</span>', html, re.S).group(1)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", counts)).strip()


def status_of(html: str) -> str:
    return re.search(r'data-batch-status="(\w+)"', html).group(1)


def rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr id="target-([0-9a-f-]+)" data-status="(\w+)"', html))


def test_the_batch_polls_while_running_and_stops_when_done(pages, start_worker, family, make_clip):
    editor = pages("editor")
    main, satellites = family
    batch_id = crosspost(editor, make_clip().id, main.id)

    # No worker yet: every target is queued, and the fragment asks for itself again.
    running = fragment(editor, batch_id)
    assert status_of(running) == "running"
    assert summary(running) == "0 succeeded, 0 failed, 3 waiting"
    section = re.search(r'<section id="batch-progress"[^>]*>', running).group(0)
    assert f'hx-get="/batches/{batch_id}"' in section and POLLING in section and 'hx-swap="outerHTML"' in section
    assert set(rows(running).values()) == {"queued"}
    page = editor.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "<html" in page and POLLING in page and "HX-Request" in editor.get(f"/batches/{batch_id}").headers["Vary"]

    start_worker(4)
    done = wait_done(editor, batch_id)
    assert status_of(done) == "succeeded"
    assert summary(done) == "3 succeeded, 0 failed, 0 waiting"
    assert "hx-trigger" not in done and "hx-get" not in done  # polling stops
    assert set(rows(done).values()) == {"success"}
    links = re.findall(r'<a href="(https://www\.instagram\.com/reel/[^"]+)"', done)
    assert len(set(links)) == 3
    assert re.findall(r'<td class="attempts">(\d+)</td>', done) == ["1", "1", "1"]


def test_targets_that_end_differently_make_a_partial_batch_with_retry(pages, worker, family, make_clip,
                                                                      fail_for):
    fail_for({"brand.de": "permanent"})
    editor = pages("editor")
    main, (fr, de) = family
    batch_id = crosspost(editor, make_clip().id, main.id)
    done = wait_done(editor, batch_id)

    assert status_of(done) == "partial" and ">Partly published</span>" in done
    assert summary(done) == "2 succeeded, 1 failed, 0 waiting"
    failed_id = next(log_id for log_id, status in rows(done).items() if status == "failed")
    failed_row = re.search(rf'<tr id="target-{failed_id}".*?</tr>', done, re.S).group(0)
    assert "@brand.de" in failed_row and "simulated permanent failure" in failed_row
    retry = re.search(r'<form[^>]*action="([^"]+/retry)".*?</form>', failed_row, re.S)
    assert retry.group(1) == f"/batches/{batch_id}/logs/{failed_id}/retry"
    assert 'hx-target="#batch-progress"' in retry.group(0) and "mark-button" not in failed_row
    assert done.count("retry-button") == 1  # successes offer nothing

    # Retry: the batch runs again (and polls again), then succeeds.
    again = editor.post(retry.group(1), headers=HTMX).get_data(as_text=True)
    assert again.lstrip().startswith('<section id="batch-progress"')
    assert status_of(again) == "running" and POLLING in again
    assert failed_id not in rows(again)  # the target's row is now its new attempt
    finished = wait_done(editor, batch_id)
    assert status_of(finished) == "succeeded" and summary(finished) == "3 succeeded, 0 failed, 0 waiting"
    assert f'#log-{failed_id}">an earlier attempt</a>' in finished  # the retry links to what it retried

    # A second Retry of the same failed attempt is refused in the row, and nothing is queued.
    refused = editor.post(retry.group(1), headers=HTMX).get_data(as_text=True)
    assert re.search(r'<p class="flash flash-error batch-error" role="alert">Not retried: this post was '
                     r'already retried: see publish log [0-9a-f-]{36}</p>', refused)
    assert released(lambda: len(list(_db.session.scalars(select(PublishLog))))) == 4


def test_an_unknown_outcome_asks_a_person(pages, worker, family, make_clip, fail_for):
    fail_for({"brand.fr": "unknown"})
    editor = pages("editor")
    main, (fr, de) = family
    batch_id = crosspost(editor, make_clip().id, main.id)
    done = wait_done(editor, batch_id)

    assert status_of(done) == "partial"
    assert summary(done) == "2 succeeded, 0 failed, 1 outcome unknown, 0 waiting"
    unconfirmed_id = next(log_id for log_id, status in rows(done).items() if status == "unconfirmed")
    row = re.search(rf'<tr id="target-{unconfirmed_id}".*?</tr>', done, re.S).group(0)
    assert "Outcome unknown:</strong> the platform may have published this; check before retrying." in row
    assert "retry-button" in row and "mark-button" in row
    mark_url = f"/batches/{batch_id}/logs/{unconfirmed_id}/mark-published"

    bad = editor.post(mark_url, headers=HTMX, data={"external_url": "javascript:alert(1)"}).get_data(as_text=True)
    assert re.search(r'<small class="field-error row-error" role="alert">enter the post', bad)
    assert rows(bad)[unconfirmed_id] == "unconfirmed"

    marked = editor.post(mark_url, headers=HTMX,
                         data={"external_url": "https://www.instagram.com/reel/found-it/"}).get_data(as_text=True)
    assert rows(marked)[unconfirmed_id] == "success"
    assert status_of(marked) == "succeeded" and POLLING not in marked
    assert 'href="https://www.instagram.com/reel/found-it/"' in marked


def test_viewers_read_batches_without_buttons(pages, db, family, make_clip, fail_for, worker):
    fail_for({"brand.de": "permanent"})
    editor = pages("editor")
    main, _ = family
    batch_id = crosspost(editor, make_clip().id, main.id)
    wait_done(editor, batch_id)
    viewer = pages("viewer")
    html = viewer.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Partly published" in html and "retry-button" not in html and "<th scope=\"col\">Actions" not in html
    failed = released(lambda: _db.session.scalars(select(PublishLog).where(PublishLog.status == "failed")).one().id)
    assert viewer.post(f"/batches/{batch_id}/logs/{failed}/retry", headers=HTMX).status_code == 403


def test_unknown_batch_or_a_log_of_another_batch_is_404(pages, family, make_clip):
    editor = pages("editor")
    main, _ = family
    clip_id = make_clip().id
    first, second = crosspost(editor, clip_id, main.id), crosspost(editor, clip_id, main.id)
    assert editor.get(f"/batches/{uuid.uuid4()}").status_code == 404
    other_log = released(lambda: _db.session.get(PublishBatch, second).logs[0].id)
    assert editor.post(f"/batches/{first}/logs/{other_log}/retry", headers=HTMX).status_code == 404
