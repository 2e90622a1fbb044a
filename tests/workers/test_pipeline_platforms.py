"""End to end, per platform: live mode through the pipeline against the platform's own fake
(tests/fakes/<platform>.py) over real HTTP, from the API and a schedule, and through a `flask
worker` killed with SIGKILL inside an upload (TikTok, YouTube) or inside media_publish
(Instagram): published exactly once each time."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from werkzeug.wrappers import Response

from dashboard.models import FINAL_STATUSES, utcnow
from tests.fakes import FakeServer
from tests.fakes.instagram import InstagramFake
from tests.fakes.tiktok import TikTokFake
from tests.fakes.youtube import FakeYouTube

from conftest import base_config
from queue_support import (
    all_logs,
    get_log,
    iso,
    log_events,
    wait_for_status,
    wait_until,
)

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


def take_over(log_id, worker_process, env):
    """Once the killed worker's claim on the log is stale, start a second worker (its sweep resumes
    a log stuck past PUBLISH_TIMEOUT_SECONDS) and return it."""
    wait_until(lambda: (utcnow() - get_log(log_id).step_started_at).total_seconds() > 1.5,
               what="the dead worker's claim to go stale")
    return worker_process(2, PUBLISH_TIMEOUT_SECONDS=1, **env)


def kill_inside_the_held_request(api, fake, post, worker_process, env):
    """Schedule `post` for now on a `flask worker`, SIGKILL it while `fake.holding` holds its
    request (the request is then dropped), and let a second worker take over.
    Returns (the log's id, the second worker)."""
    first = worker_process(2, **env)
    response = api.post("/publishing/schedule", json={**post, "scheduled_at": iso(utcnow())})
    log_id = response.json["id"]
    assert fake.holding.entered.wait(60), first.output()

    first.kill()
    fake.holding.release.set()
    return log_id, take_over(log_id, worker_process, env)


# TikTok ------------------------------------------------------------------------------------------

YOUTUBE_SETTINGS = dict(YOUTUBE_PROCESSING_POLL_SECONDS=0.3, YOUTUBE_CHUNK_BYTES=256 * 1024)
TIKTOK_SETTINGS = dict(TIKTOK_DEFAULT_PRIVACY_LEVEL="SELF_ONLY", TIKTOK_POLL_INTERVAL_SECONDS=0.3,
                       TIKTOK_POLL_MAX_INTERVAL_SECONDS=0.5, TIKTOK_CHUNK_BYTES=5 * MIB)


def chunk_at(offset: int):
    """A predicate for the PUT of the chunk that starts at `offset`."""
    def matches(environ) -> bool:
        return (environ["REQUEST_METHOD"] == "PUT"
                and environ.get("HTTP_CONTENT_RANGE", "").startswith(f"bytes {offset}-"))
    return matches


@contextmanager
def served(fake, request):
    """`fake` on a loopback port (`fake.url`) behind a Holding (`fake.holding`) for the request
    that the test's indirect parameter, a predicate, names (none without one)."""
    holding = Holding(fake, getattr(request, "param", None))
    with FakeServer(holding) as server:
        fake.url, fake.holding = server.url, holding
        yield fake
        holding.release.set()


@pytest.fixture
def tiktok(request):
    with served(TikTokFake(processing_seconds=1.0, moderation_seconds=0.5), request) as fake:
        yield fake


@pytest.fixture
def youtube(request):
    with served(FakeYouTube(processing_seconds=1.0), request) as fake:
        yield fake


@pytest.fixture
def app_config(database_uri, tiktok, youtube):
    config = base_config(database_uri)
    config.update(PROVIDER_MODE="live", PUBLISH_SYNC_WAIT=0.5, TIKTOK_API_URL=tiktok.url,
                  YOUTUBE_API_URL=youtube.url, RETRY_BASE_DELAY=0.1, RETRY_MAX_DELAY=0.2,
                  **TIKTOK_SETTINGS, **YOUTUBE_SETTINGS)
    return config


def post_body(clip, account) -> dict:
    """The publish request for `clip` to `account` on its platform."""
    return {"clip_id": str(clip.id), "platform": account.platform,
            "social_account_id": str(account.id)}


@pytest.fixture
def tiktok_post(make_video_clip, make_live_account):
    clip = make_video_clip(11 * MIB)  # two chunks of TikTok's rule: 5 MiB + 6 MiB
    return post_body(clip, make_live_account("tiktok"))


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


@pytest.mark.slow
@pytest.mark.parametrize("tiktok", [chunk_at(5 * MIB)], indirect=True)
def test_tiktok_worker_killed_inside_the_upload_resumes_and_publishes_once(
        app, api, tiktok, tiktok_post, worker_process):
    env = dict(PROVIDER_MODE="live", TIKTOK_API_URL=tiktok.url, **TIKTOK_SETTINGS)
    log_id, second = kill_inside_the_held_request(api, tiktok, tiktok_post, worker_process, env)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert_published_once(tiktok, row)
    interrupted = [e.event_metadata for e in log_events(log_id)
                   if e.event_type == "publish_step_interrupted"]
    assert [(i["step"], i["resumed_with"]) == ("upload", "upload") for i in interrupted] == [True], \
        second.output()
    assert tiktok.calls["init"] == 1  # one video/init: resumed, not started over


# YouTube -----------------------------------------------------------------------------------------

@pytest.fixture
def youtube_post(make_video_clip, make_live_account):
    clip = make_video_clip(MIB + 5, "short.mp4")  # five chunks of 256 KiB, the last of 5 bytes

    def post(handle=None) -> dict:
        return post_body(clip, make_live_account("youtube", handle))
    return post


def assert_on_youtube_once(fake, row):
    assert row.status == "success", row.error_message
    assert fake.inserts == 1 and list(fake.videos) == [row.external_post_id]
    assert row.external_url == f"https://www.youtube.com/shorts/{row.external_post_id}"
    assert row.trace_id  # X-GUploader-UploadID


def test_youtube_from_the_api_answers_202_and_a_worker_publishes_once(api, youtube, youtube_post,
                                                                      worker):
    response = api.post("/publishing/publish", json=youtube_post())

    assert response.status_code == 202, response.json
    row = wait_for_status(response.json["id"], *FINAL_STATUSES, timeout=60)
    assert_on_youtube_once(youtube, row)


def test_youtube_from_a_schedule_publishes_once(api, youtube, youtube_post, worker):
    response = api.post("/publishing/schedule", json={**youtube_post(), "scheduled_at": iso(utcnow())})

    row = wait_for_status(response.json["id"], *FINAL_STATUSES, timeout=60)
    assert_on_youtube_once(youtube, row)


@pytest.mark.slow
@pytest.mark.parametrize("youtube", [chunk_at(256 * 1024)], indirect=True)
def test_youtube_worker_killed_inside_the_upload_resumes_the_session_and_publishes_once(
        app, api, youtube, youtube_post, worker_process):
    env = dict(PROVIDER_MODE="live", YOUTUBE_API_URL=youtube.url, **YOUTUBE_SETTINGS)
    log_id, second = kill_inside_the_held_request(api, youtube, youtube_post(), worker_process, env)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert_on_youtube_once(youtube, row)  # one session: resumed, never started over
    interrupted = [e.event_metadata["step"] for e in log_events(log_id)
                   if e.event_type == "publish_step_interrupted"]
    assert interrupted == ["upload"], second.output()


def test_youtube_project_quota_defers_the_next_upload_to_the_pacific_reset(app, api, youtube,
                                                                           youtube_post):
    app.config["YOUTUBE_UPLOADS_PER_DAY"] = 1
    app.config["PUBLISH_SYNC_WAIT"] = 10.0
    first = api.post("/publishing/publish", json=youtube_post())
    assert first.status_code == 200 and first.json["success"] is True, first.json

    # Another channel of the same app (the same client id): the project's quota is used.
    second = api.post("/publishing/publish", json=youtube_post())

    assert second.status_code == 202, second.json
    assert (second.json["status"], second.json["step"]) == ("queued", "prepare")
    row = get_log(second.json["id"])
    deferred = [e.event_metadata for e in log_events(row.id) if e.event_type == "publish_deferred"]
    assert [(d["reason"], d["used"], d["limit"]) for d in deferred] == [("project_quota", 1, 1)]
    assert iso(row.next_attempt_at) == deferred[0]["until"]
    assert row.next_attempt_at.astimezone(ZoneInfo("America/Los_Angeles")).time() == dtime(0, 0)
    assert youtube.inserts == 1  # nothing was sent for the second


# Instagram ---------------------------------------------------------------------------------------

INSTAGRAM_SETTINGS = dict(INSTAGRAM_POLL_INTERVAL_SECONDS=0.2, INSTAGRAM_POLL_BACKOFF_MAX_SECONDS=0.5)


@pytest.fixture
def instagram():
    fake = InstagramFake(processing_polls=2)
    with FakeServer(fake) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def instagram_post(make_video_clip, make_live_account):
    clip = make_video_clip(MIB, "reel.mp4")  # a local file: resumable upload to the returned uri
    return post_body(clip, make_live_account("instagram"))


def assert_on_instagram_once(fake, row, answered: bool = True):
    """Published once; `answered`: media_publish's answer arrived, so the post's id and URL are
    known (a container settled as PUBLISHED does not name its media)."""
    assert row.status == "success", row.error_message
    assert len(fake.published) == 1
    if answered:
        assert fake.published[0]["media_id"] == row.external_post_id
        assert row.external_url.startswith("https://www.instagram.com/reel/")
        assert row.trace_id  # fbtrace_id


@pytest.fixture
def graph_url(app, instagram):
    app.config.update(INSTAGRAM_GRAPH_URL=f"{instagram.url}/v24.0", **INSTAGRAM_SETTINGS)
    return app.config["INSTAGRAM_GRAPH_URL"]


def test_instagram_from_the_api_answers_202_and_a_worker_publishes_once(api, instagram, graph_url,
                                                                        instagram_post, worker):
    response = api.post("/publishing/publish", json=instagram_post)

    assert response.status_code in (200, 202), response.json
    log_id = response.json.get("id") or all_logs()[0].id
    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert_on_instagram_once(instagram, row)


def test_instagram_from_a_schedule_publishes_once(api, instagram, graph_url, instagram_post, worker):
    response = api.post("/publishing/schedule", json={**instagram_post, "scheduled_at": iso(utcnow())})

    row = wait_for_status(response.json["id"], *FINAL_STATUSES, timeout=60)
    assert_on_instagram_once(instagram, row)


@pytest.mark.slow
def test_instagram_worker_killed_inside_media_publish_is_settled_by_asking_the_container(
        app, api, instagram, graph_url, instagram_post, worker_process):
    instagram.stall_next("media_publish", 60)  # published, and the answer never comes in time
    env = dict(PROVIDER_MODE="live", INSTAGRAM_GRAPH_URL=graph_url, PROVIDER_HTTP_TIMEOUT=120,
               **INSTAGRAM_SETTINGS)
    first = worker_process(2, **env)
    response = api.post("/publishing/schedule", json={**instagram_post, "scheduled_at": iso(utcnow())})
    log_id = response.json["id"]
    wait_until(lambda: instagram.publish_calls == 1, timeout=60, what="media_publish to be sent")

    first.kill()
    second = take_over(log_id, worker_process, env)

    row = wait_for_status(log_id, *FINAL_STATUSES, timeout=60)
    assert_on_instagram_once(instagram, row, answered=False)
    assert instagram.publish_calls == 1  # never sent again: the container was asked instead
    interrupted = [e.event_metadata for e in log_events(log_id)
                   if e.event_type == "publish_step_interrupted"]
    assert [(i["step"], i["resumed_with"]) for i in interrupted] == [("finalize", "reconcile")], \
        second.output()
    reconciled = [e.event_metadata["result"] for e in log_events(log_id)
                  if e.event_type == "publish_reconciled"]
    assert reconciled == ["published"]
