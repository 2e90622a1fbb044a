"""End to end, per platform: live mode through the pipeline against the platform's own fake
(tests/fakes/<platform>.py) over real HTTP, from the API and a schedule, and through a `flask
worker` killed with SIGKILL inside an upload: published exactly once each time."""

from __future__ import annotations

import os
import threading

import pytest
from werkzeug.wrappers import Response

from api_support import COMPLETE_CREDENTIALS
from conftest import base_config
from dashboard.credentials import set_account_credentials
from dashboard.extensions import db as _db
from dashboard.models import FINAL_STATUSES, utcnow
from queue_support import (  # noqa: F401  (fixtures)
    api,
    event_types,
    get_log,
    iso,
    log_events,
    make_account,
    make_clip,
    start_worker,
    wait_for_status,
    wait_until,
    worker,
    worker_process,
)
from tests.fakes import FakeServer
from tests.fakes.tiktok import TikTokFake

MIB = 1024 * 1024


class Holding:
    """WSGI middleware: the first request matching `predicate` waits until `release` is set,
    then is dropped (503) without reaching the fake, as a connection cut by a dying worker."""

    def __init__(self, app, predicate):
        self.app, self.predicate = app, predicate
        self.entered, self.release = threading.Event(), threading.Event()
        self.armed = predicate is not None

    def __call__(self, environ, start_response):
        if self.armed and self.predicate(environ):
            self.armed = False
            self.entered.set()
            self.release.wait(60)
            return Response("gone", status=503)(environ, start_response)
        return self.app(environ, start_response)


# TikTok ------------------------------------------------------------------------------------------

TIKTOK_SETTINGS = dict(TIKTOK_DEFAULT_PRIVACY_LEVEL="SELF_ONLY", TIKTOK_POLL_INTERVAL_SECONDS=0.3,
                       TIKTOK_POLL_MAX_INTERVAL_SECONDS=0.5, TIKTOK_CHUNK_BYTES=5 * MIB)


def second_chunk(environ) -> bool:
    return (environ["REQUEST_METHOD"] == "PUT"
            and environ.get("HTTP_CONTENT_RANGE", "").startswith(f"bytes {5 * MIB}-"))


@pytest.fixture
def tiktok(request):
    fake = TikTokFake(processing_seconds=1.0, moderation_seconds=0.5)
    holding = Holding(fake, getattr(request, "param", None))
    with FakeServer(holding) as server:
        fake.url, fake.holding = server.url, holding
        yield fake
        holding.release.set()


@pytest.fixture
def app_config(database_uri, tiktok):
    config = base_config(database_uri)
    config.update(PROVIDER_MODE="live", PUBLISH_SYNC_WAIT=0.5, TIKTOK_API_URL=tiktok.url,
                  RETRY_BASE_DELAY=0.1, RETRY_MAX_DELAY=0.2, **TIKTOK_SETTINGS)
    return config


@pytest.fixture
def tiktok_post(make_clip, make_account, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(11 * MIB))  # two chunks of TikTok's rule: 5 MiB + 6 MiB
    clip = make_clip(media=str(video), duration_seconds=20.0)
    account = make_account("tiktok")
    set_account_credentials(_db, account.id, COMPLETE_CREDENTIALS["tiktok"])
    _db.session.remove()
    return {"clip_id": str(clip.id), "platform": "tiktok", "social_account_id": str(account.id)}


def assert_published_once(fake, row):
    assert row.status == "success", row.error_message
    assert len(fake.published) == 1 and set(fake.final_chunks.values()) == {1}
    assert row.platform_state["publish_id"] == fake.published[0]
    assert row.external_url.startswith("https://www.tiktok.com/@creator.one/video/")
    assert row.trace_id  # TikTok's log_id


def test_tiktok_from_the_api_answers_202_and_a_worker_publishes_once(api, tiktok, tiktok_post, worker):
    response = api.post("/publishing/publish", json=tiktok_post)

    assert response.status_code == 202, response.json
    assert response.headers["Location"] == f"/publishing/attempts/{response.json['id']}"
    row = wait_for_status(response.json["id"], *FINAL_STATUSES, timeout=60)
    assert_published_once(tiktok, row)
    assert api.get(response.headers["Location"]).json["external_url"] == row.external_url


def test_tiktok_from_a_schedule_publishes_once(api, tiktok, tiktok_post, worker):
    response = api.post("/publishing/schedule", json={**tiktok_post, "scheduled_at": iso(utcnow())})
    assert response.status_code == 202, response.json

    row = wait_for_status(response.json["id"], *FINAL_STATUSES, timeout=60)
    assert_published_once(tiktok, row)
    steps = [e.event_metadata["step"] for e in log_events(row.id) if e.event_type == "publish_step"]
    assert steps[:2] == ["prepare", "upload"] and steps[-1] == "confirm"


@pytest.mark.parametrize("tiktok", [second_chunk], indirect=True)
def test_tiktok_worker_killed_inside_the_upload_resumes_and_publishes_once(
        app, api, tiktok, tiktok_post, worker_process):
    env = dict(PROVIDER_MODE="live", TIKTOK_API_URL=tiktok.url, **TIKTOK_SETTINGS)
    first = worker_process(2, **env)
    response = api.post("/publishing/schedule", json={**tiktok_post, "scheduled_at": iso(utcnow())})
    log_id = response.json["id"]
    assert tiktok.holding.entered.wait(60), first.output()

    first.kill()
    tiktok.holding.release.set()
    wait_until(lambda: (utcnow() - get_log(log_id).step_started_at).total_seconds() > 1.5,
               what="the dead worker's claim to go stale")
    second = worker_process(2, PUBLISH_TIMEOUT_SECONDS=1, **env)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert_published_once(tiktok, row)
    interrupted = [e.event_metadata for e in log_events(log_id)
                   if e.event_type == "publish_step_interrupted"]
    assert [(i["step"], i["resumed_with"]) == ("upload", "upload") for i in interrupted] == [True], \
        second.output()
    assert tiktok.calls["init"] == 1  # one video/init: resumed, not started over
