"""The live Instagram client over real HTTP against the fake Graph API (tests/fakes/instagram.py).

Each test drives the client's steps with a tiny loop that keeps the attempt's state between steps
the way the pipeline does: `checkpoint` patches are saved at once, a step's returned state
replaces the saved one, and a step that raises leaves only what was checkpointed.

The large-upload test streams a 200 MiB sparse file; INSTAGRAM_BIG_FILE_MB=1024 makes it 1 GiB.
"""

from __future__ import annotations

import json
import logging
import os
import tracemalloc

import httpx
import pytest

from dashboard.config import load_config
from dashboard.publishing.providers import LIVE_CLIENTS
from dashboard.publishing.providers.base import LiveJob, MediaSource, ProviderError
from dashboard.publishing.providers.instagram import ERROR_TABLE, InstagramLiveClient
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes import FakeServer
from tests.fakes.instagram import InstagramFake

TOKEN = "IGQVJ-secret-token-0123456789"
USER_ID = "17841400000000001"
MB = 1024 * 1024


class Killed(Exception):
    """Stands for SIGKILL at a checkpoint: the patch was written, nothing after it ran."""


class Attempt:
    """One publish attempt, its state saved between steps as the pipeline saves it."""

    def __init__(self, client: InstagramLiveClient, job: LiveJob, kill_at: str | None = None):
        self.client = client
        self.job = job
        self.state: dict = {}
        self.step: str | None = "prepare"
        self.results: list = []
        self.patches: list[dict] = []
        self.kill_at = kill_at

    def checkpoint(self, patch: dict) -> None:
        self.state.update(patch)
        self.patches.append(dict(patch))
        if self.kill_at is not None and self.kill_at in patch:
            self.kill_at = None
            raise Killed(next(iter(patch)))

    def run_step(self):
        result = self.client.run_step(self.step, self.job, self.state, self.checkpoint)
        self.state = json.loads(json.dumps(result.state))  # what the log can hold
        self.step = result.next_step
        self.results.append((self.step, result))
        return result

    def run(self, max_steps: int = 60):
        """Run steps until the attempt ends; the outcome."""
        for _ in range(max_steps):
            result = self.run_step()
            if self.step is None:
                return result.outcome
        raise AssertionError("the attempt did not end")


@pytest.fixture
def fake():
    return InstagramFake(processing_polls=1)


@pytest.fixture
def server(fake):
    with FakeServer(fake) as running:
        yield running


@pytest.fixture
def settings(server, tmp_path):
    config = load_config(tmp_path, env={
        "SECRET_KEY": "x", "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY,
        "INSTAGRAM_GRAPH_URL": f"{server.url}/v24.0", "PROVIDER_HTTP_TIMEOUT": "5",
        "INSTAGRAM_UPLOAD_CHUNK_BYTES": str(MB),
    })
    return config


@pytest.fixture
def http(settings):
    with httpx.Client(timeout=settings["PROVIDER_HTTP_TIMEOUT"]) as client:
        yield client


@pytest.fixture
def client(settings, http):
    return InstagramLiveClient({"access_token": TOKEN, "instagram_account_id": USER_ID},
                               settings, http)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3 * MB + 12345))
    return path


def make_job(path=None, public_url=None, **options) -> LiveJob:
    return LiveJob(platform="instagram", log_id="log-1", title="Launch", description="",
                   caption="Launch day #reels", hashtags=("reels",),
                   media=MediaSource(path=str(path) if path else None, public_url=public_url),
                   duration_seconds=12.0, account_handle="@brand",
                   credentials={"access_token": TOKEN, "instagram_account_id": USER_ID},
                   options=options)


URL_JOB = dict(public_url="https://cdn.example.com/clip.mp4")


def steps_of(attempt: Attempt) -> list[str | None]:
    return [step for step, _ in attempt.results]


# --- happy paths -----------------------------------------------------------------------------

def test_instagram_settings_come_from_the_environment(tmp_path):
    base = {"SECRET_KEY": "x", "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY}
    defaults = load_config(tmp_path, env=base)
    assert defaults["INSTAGRAM_POLL_INTERVAL_SECONDS"] == 60.0  # Meta's advice
    assert defaults["INSTAGRAM_UPLOAD_CHUNK_BYTES"] == 64 * MB
    assert defaults["INSTAGRAM_GRAPH_URL"] == "https://graph.facebook.com/v24.0"
    custom = load_config(tmp_path, env={**base, "INSTAGRAM_POLL_INTERVAL_SECONDS": "5",
                                        "INSTAGRAM_UPLOAD_CHUNK_BYTES": "1048576",
                                        "INSTAGRAM_PROCESSING_TIMEOUT_SECONDS": "900"})
    assert custom["INSTAGRAM_POLL_INTERVAL_SECONDS"] == 5.0
    assert custom["INSTAGRAM_UPLOAD_CHUNK_BYTES"] == MB
    assert custom["INSTAGRAM_PROCESSING_TIMEOUT_SECONDS"] == 900.0


def test_live_client_is_registered():
    assert LIVE_CLIENTS["instagram"] is InstagramLiveClient
    assert InstagramLiveClient.name == "instagram_graph"


def test_publish_by_video_url(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB))
    outcome = attempt.run()

    assert outcome.success
    [post] = fake.published
    assert outcome.external_post_id == post["media_id"]
    shortcode = fake.media[post["media_id"]]["shortcode"]
    assert outcome.external_url == f"https://www.instagram.com/reel/{shortcode}/"
    assert steps_of(attempt) == ["upload", "processing", "processing", "finalize", "confirm",
                                 None]
    [container] = fake.containers.values()
    assert container.params == {"media_type": "REELS", "video_url": URL_JOB["public_url"],
                                "caption": "Launch day #reels", "share_to_feed": "true"}
    assert post["caption"] == "Launch day #reels"
    # The token is the access_token parameter: in the form body of POSTs, the query of GETs.
    for call in fake.calls:
        if call["method"] == "POST":
            assert "access_token" in call["form"] and "access_token" not in call["query"]
        else:
            assert "access_token" in call["query"]
    # Every step carries the platform's trace id.
    assert all(result.trace_id for _, result in attempt.results)


def test_options_share_to_feed_and_cover(fake, client):
    Attempt(client, make_job(**URL_JOB, share_to_feed=False, cover_offset_ms=1500)).run()
    Attempt(client, make_job(**URL_JOB, cover_url="https://cdn.example.com/cover.jpg")).run()

    first, second = fake.containers.values()
    assert first.params["share_to_feed"] == "false" and first.params["thumb_offset"] == "1500"
    assert second.params["cover_url"] == "https://cdn.example.com/cover.jpg"
    assert "thumb_offset" not in second.params


@pytest.mark.parametrize("job,code", [
    (make_job(**URL_JOB, cover_offset_ms="soon"), "cover_offset_ms"),
    (make_job(), "no_media"),
])
def test_bad_input_is_refused_before_any_container(fake, client, job, code):
    attempt = Attempt(client, job)
    attempt.run_step()
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.kind == "permanent" and caught.value.code == code
    assert fake.containers == {}


def test_publish_by_resumable_upload(fake, client, video):
    attempt = Attempt(client, make_job(path=video))
    outcome = attempt.run()

    assert outcome.success and len(fake.published) == 1
    [container] = fake.containers.values()
    assert container.params["upload_type"] == "resumable" and "video_url" not in container.params
    assert bytes(container.data) == video.read_bytes()
    uploads = [call for call in fake.calls if call["call"] == "upload"]
    assert [int(call["headers"]["offset"]) for call in uploads] == [0, MB, 2 * MB, 3 * MB]
    assert all(call["headers"]["authorization"] == f"OAuth {TOKEN}" for call in uploads)
    assert all(int(call["headers"]["file_size"]) == video.stat().st_size for call in uploads)
    # The container id was saved before the first byte, then each acknowledged offset.
    assert attempt.patches[0]["container_id"] == container.id
    assert [p["upload_offset"] for p in attempt.patches[1:5]] == [
        MB, 2 * MB, 3 * MB, video.stat().st_size]


def test_upload_uri_is_used_as_returned(fake, settings, http, video):
    with FakeServer(fake) as rupload:
        fake.upload_base_url = rupload.url
        client = InstagramLiveClient({"access_token": TOKEN, "instagram_account_id": USER_ID},
                                     settings, http)
        assert Attempt(client, make_job(path=video)).run().success

    hosts = {call["host"] for call in fake.calls if call["call"] == "upload"}
    assert hosts == {f"127.0.0.1:{rupload.port}"}
    assert all(call["host"] != f"127.0.0.1:{rupload.port}"
               for call in fake.calls if call["call"] != "upload")


def test_graph_url_without_a_version(fake, server, client, settings, video):
    settings["INSTAGRAM_GRAPH_URL"] = server.url  # Graph's unversioned calls
    assert Attempt(client, make_job(path=video)).run().success
    assert len(fake.published) == 1
    assert all(not call["path"].startswith("/v") for call in fake.calls
               if call["call"] != "upload")
    # A fake told only a delay in seconds processes by the clock, not by polls.
    assert InstagramFake(processing_seconds=2).processing_polls is None


def test_processing_that_takes_many_polls_backs_off(fake, client, settings):
    fake.processing_polls = 7
    settings.update(INSTAGRAM_POLL_INTERVAL_SECONDS=10.0, INSTAGRAM_POLL_BACKOFF_MAX_SECONDS=100.0)
    attempt = Attempt(client, make_job(**URL_JOB))
    outcome = attempt.run()

    assert outcome.success and len(fake.published) == 1
    waits = [r.wait_seconds for step, r in attempt.results if step == "processing"
             and r.details.get("status_code") == "IN_PROGRESS"]
    assert waits == [10, 20, 40, 80, 100, 100, 100]
    assert attempt.state["polls"] == 7


def test_processing_that_never_ends_gives_up(fake, client, settings):
    fake.processing_polls = None  # never FINISHED
    settings.update(INSTAGRAM_PROCESSING_TIMEOUT_SECONDS=0.0)
    attempt = Attempt(client, make_job(**URL_JOB))
    outcome = attempt.run()

    assert not outcome.success and outcome.error_kind == "transient"
    assert "still processing" in outcome.error_message
    assert fake.published == [] and fake.publish_calls == 0


def test_processing_delay_in_seconds(fake, client, settings):
    import time

    fake.processing_polls, fake.processing_seconds = None, 0.3
    settings.update(INSTAGRAM_POLL_INTERVAL_SECONDS=0.05, INSTAGRAM_POLL_BACKOFF_MAX_SECONDS=0.1)
    attempt = Attempt(client, make_job(**URL_JOB))
    while attempt.step is not None:
        result = attempt.run_step()
        time.sleep(result.wait_seconds)  # the pipeline's queue task, here a plain wait
    assert attempt.results[-1][1].outcome.success and len(fake.published) == 1


def test_container_error_is_a_permanent_failure_with_the_platform_status(fake, client):
    fake.process_next_as("ERROR", "Error: Unsupported video format (2207026)")
    outcome = Attempt(client, make_job(**URL_JOB)).run()

    assert not outcome.success and outcome.error_kind == "permanent"
    assert outcome.error_message == "Error: Unsupported video format (2207026)"
    assert fake.publish_calls == 0


def test_expired_container_restarts_with_a_new_one(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB))
    attempt.run_step()  # prepare
    attempt.run_step()  # upload
    first = attempt.state["container_id"]
    fake.expire(first)
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    error = caught.value
    assert error.restart and error.kind == "transient" and error.code == "EXPIRED"
    assert error.trace_id

    attempt.state, attempt.step = {}, "prepare"  # the pipeline's fresh start
    assert attempt.run().success
    assert len(fake.containers) == 2 and attempt.state["container_id"] != first
    assert [post["container_id"] for post in fake.published] == [attempt.state["container_id"]]


def test_expired_container_is_never_published(fake, client):
    fake.container_ttl_seconds = 0
    attempt = Attempt(client, make_job(**URL_JOB))
    with pytest.raises(ProviderError) as caught:
        attempt.run()
    assert caught.value.restart and attempt.step == "processing"
    attempt.step = "finalize"  # even asked to, media_publish is refused by the platform
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.code == "-2/2207020" and caught.value.restart
    assert fake.published == []


# --- the error table, row by row -------------------------------------------------------------

# (code, subcode, is_transient, http status) -> (kind, restart)
ERROR_ROWS = [
    ((190, None), False, 400, "auth", False),
    ((190, 458), False, 400, "auth", False),
    ((190, 459), False, 400, "auth", False),
    ((190, 460), False, 400, "auth", False),
    ((190, 463), False, 400, "auth", False),
    ((190, 467), False, 400, "auth", False),
    ((4, None), False, 400, "transient", False),
    ((17, None), False, 400, "transient", False),
    ((32, None), False, 400, "transient", False),
    ((613, None), False, 400, "transient", False),
    ((9, 2207042), False, 400, "transient", False),
    ((-2, 2207003), False, 400, "transient", False),
    ((-2, 2207020), False, 400, "transient", True),
    ((-1, 2207001), False, 500, "transient", False),
    ((-1, 2207032), False, 500, "transient", False),
    ((-1, 2207053), False, 500, "transient", True),
    ((1, 2207057), False, 400, "permanent", False),
    ((4, 2207051), False, 400, "permanent", False),
    ((9004, 2207052), False, 400, "permanent", False),
    ((None, 2207026), False, 400, "permanent", False),
    ((None, 2207082), False, 400, "permanent", False),
    ((None, 2207085), False, 400, "permanent", False),
    ((2, None), True, 503, "transient", False),
]
EXTRA_ROWS = [
    ((100, None), False, 400, "permanent", False),  # unlisted: a person must look
    ((1, None), True, 400, "transient", False),  # unlisted, but the platform says transient
    ((-1, 2299999), False, 500, "transient", False),  # unlisted with a 5xx status
    ((17, 2207999), False, 400, "transient", False),  # a listed code with an unlisted subcode
]


def test_every_table_row_is_tested():
    assert {row[0] for row in ERROR_ROWS} == set(ERROR_TABLE)


@pytest.mark.parametrize("call", ["media", "media_publish"])
@pytest.mark.parametrize("key,is_transient,status,kind,restart", ERROR_ROWS + EXTRA_ROWS,
                         ids=[f"{r[0][0]}/{r[0][1]}" for r in ERROR_ROWS + EXTRA_ROWS])
def test_graph_error_is_classified(fake, client, call, key, is_transient, status, kind,
                                   restart):
    code, subcode = key
    code = -1 if code is None else code
    fake.fail_next(call, code=code, subcode=subcode, is_transient=is_transient, status=status,
                   message=f"platform says {code}", fbtrace_id="AbCdEfGhIjK")
    attempt = Attempt(client, make_job(**URL_JOB))
    while attempt.step != ("upload" if call == "media" else "finalize"):
        attempt.run_step()
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()

    error = caught.value
    assert (error.kind, error.restart) == (kind, restart)
    assert error.code == (f"{code}/{subcode}" if subcode is not None else str(code))
    assert error.trace_id == "AbCdEfGhIjK" and error.status == status
    assert str(error) == f"platform says {code}"
    if key == (9, 2207042):
        assert error.retry_after == client.settings["INSTAGRAM_QUOTA_RECHECK_SECONDS"]
    assert fake.published == []


@pytest.mark.parametrize("call,kind", [("content_publishing_limit", "transient"),
                                       ("media", "transient"), ("status", "transient"),
                                       # media_publish may have happened behind a bare 5xx
                                       ("media_publish", "unknown")])
def test_server_error_without_body(fake, client, call, kind):
    fake.fail_next(call, status=502, body="")
    attempt = Attempt(client, make_job(**URL_JOB))
    with pytest.raises(ProviderError) as caught:
        for _ in range(6):
            attempt.run_step()
    assert caught.value.kind == kind and caught.value.code == "HTTP 502"


def test_retry_after_header_is_kept(fake, client):
    fake.fail_next("media", code=4, status=400, headers={"Retry-After": "120"})
    attempt = Attempt(client, make_job(**URL_JOB))
    attempt.run_step()
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.retry_after == 120.0


def test_expired_token_is_an_auth_error(fake, client):
    fake.expire_token(TOKEN)
    with pytest.raises(ProviderError) as caught:
        Attempt(client, make_job(**URL_JOB)).run()
    assert caught.value.kind == "auth" and caught.value.code == "190/463"
    assert "Session has expired" in str(caught.value)


def test_pluggable_token_check(settings, http):
    fake = InstagramFake(token_check=lambda token: None if token == "good" else "revoked")
    with FakeServer(fake) as server:
        settings["INSTAGRAM_GRAPH_URL"] = f"{server.url}/v24.0"
        for token, ok in (("good", True), (TOKEN, False)):
            client = InstagramLiveClient({"access_token": token, "instagram_account_id": USER_ID},
                                         settings, http)
            if ok:
                assert Attempt(client, make_job(**URL_JOB)).run().success
            else:
                with pytest.raises(ProviderError) as caught:
                    Attempt(client, make_job(**URL_JOB)).run()
                assert caught.value.code == "190/458"


# --- quotas ----------------------------------------------------------------------------------

def test_prepare_refuses_when_the_platform_says_the_quota_is_used(fake, client):
    fake.quota_total = 1
    assert Attempt(client, make_job(**URL_JOB)).run().success
    attempt = Attempt(client, make_job(**URL_JOB))
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()

    error = caught.value
    assert error.kind == "transient" and error.code == "9/2207042"
    assert error.retry_after == client.settings["INSTAGRAM_QUOTA_RECHECK_SECONDS"]
    assert error.trace_id
    assert len(fake.containers) == 1 and len(fake.published) == 1


def test_prepare_reports_the_usage(fake, client):
    result = Attempt(client, make_job(**URL_JOB)).run_step()
    assert result.next_step == "upload"
    assert result.details == {"quota_usage": 0, "quota_total": 50, "quota_duration": 86400}


def test_media_publish_enforces_the_quota(fake, client):
    fake.quota_total = 1
    late = Attempt(client, make_job(**URL_JOB))
    for _ in range(3):  # prepare (0 of 1 used), upload, processing
        late.run_step()
    assert Attempt(client, make_job(**URL_JOB)).run().success  # takes the last slot
    late.run_step()  # processing: FINISHED
    with pytest.raises(ProviderError) as caught:
        late.run_step()
    assert caught.value.kind == "transient" and caught.value.code == "9/2207042"
    assert caught.value.retry_after == client.settings["INSTAGRAM_QUOTA_RECHECK_SECONDS"]
    assert len(fake.published) == 1


# --- re-runs from saved state ----------------------------------------------------------------

def test_killed_after_the_container_is_saved_resumes_without_a_second_container(fake, client,
                                                                               video):
    attempt = Attempt(client, make_job(path=video), kill_at="container_id")
    attempt.run_step()
    with pytest.raises(Killed):
        attempt.run_step()
    assert attempt.state["upload_offset"] == 0
    assert not [call for call in fake.calls if call["call"] == "upload"]

    assert attempt.run().success
    [container] = fake.containers.values()
    assert bytes(container.data) == video.read_bytes() and len(fake.published) == 1


def test_interrupted_upload_resumes_at_the_acknowledged_offset(fake, client, video):
    attempt = Attempt(client, make_job(path=video))
    attempt.run_step()
    fake.drop_next("upload", after_bytes=MB // 2)  # the first chunk is cut mid-body
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.kind == "transient"
    assert attempt.state["upload_offset"] == 0  # nothing was acknowledged

    attempt.kill_at = "upload_offset"  # killed right after the first acknowledgement is saved
    with pytest.raises(Killed):
        attempt.run_step()
    assert attempt.state["upload_offset"] == MB

    fake.drop_next("upload")  # the second chunk arrives, its answer is lost
    with pytest.raises(ProviderError):
        attempt.run_step()
    assert attempt.state["upload_offset"] == MB

    assert attempt.run().success
    [container] = fake.containers.values()
    assert bytes(container.data) == video.read_bytes()
    offsets = [int(c["headers"]["offset"]) for c in fake.calls if c["call"] == "upload"]
    assert offsets == [0, 0, MB, MB, 2 * MB, 3 * MB]
    assert len(fake.published) == 1


def test_upload_endpoint_errors_are_classified_by_the_same_table(fake, client, video):
    fake.fail_next("upload", code=-1, subcode=2207053, message="Unknown upload error",
                   status=500, fbtrace_id="UpLoAdTrace")
    attempt = Attempt(client, make_job(path=video))
    attempt.run_step()
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    error = caught.value
    assert error.restart and error.kind == "transient" and error.code == "-1/2207053"
    assert error.trace_id == "UpLoAdTrace" and str(error) == "Unknown upload error"
    assert attempt.state["upload_offset"] == 0


def test_upload_with_a_refused_token_is_an_auth_error(fake, client, video):
    attempt = Attempt(client, make_job(path=video), kill_at="container_id")
    attempt.run_step()
    with pytest.raises(Killed):
        attempt.run_step()
    fake.revoke_token(TOKEN)  # between the container and its bytes
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.kind == "auth" and caught.value.code == "190/458"
    assert "container_id" in attempt.state and attempt.state["upload_offset"] == 0


def test_the_fake_upload_endpoint_checks_the_protocol(fake, server, http):
    created = http.post(f"{server.url}/v24.0/{USER_ID}/media", data={
        "media_type": "REELS", "upload_type": "resumable", "access_token": TOKEN}).json()
    uri = created["uri"]
    assert uri == f"{server.url}/ig-api-upload/v24.0/{created['id']}"

    def post(body: bytes, **headers):
        return http.post(uri, content=body, headers=headers).json()

    good = {"Authorization": f"OAuth {TOKEN}", "file_size": "10"}
    assert post(b"x" * 4, **{**good, "Authorization": f"Bearer {TOKEN}"})["error"]["code"] == 190
    assert post(b"x" * 4, Authorization=f"OAuth {TOKEN}", offset="0")["error"]["code"] == 100
    assert post(b"x" * 4, **good, offset="4")["error"]["error_subcode"] == 2207053  # past 0
    assert post(b"abcd", **good, offset="0") == {"success": True, "message": "Upload successful."}
    assert post(b"x", **{**good, "file_size": "11"}, offset="4")["error"]["code"] == 100
    assert post(b"efghijk", **good, offset="4")["error"]["code"] == 100  # past file_size
    assert post(b"efghij", **good, offset="4")["success"] is True
    assert bytes(fake.containers[created["id"]].data) == b"abcdefghij"


def test_rerun_of_upload_with_a_video_url_container_goes_on(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB))
    attempt.run_step()
    attempt.run_step()
    saved = dict(attempt.state)
    attempt.step = "upload"  # killed before the pipeline recorded the step's end
    result = attempt.run_step()
    assert result.next_step == "processing" and result.state == saved
    assert attempt.run().success and len(fake.containers) == 1


def test_rerun_of_upload_after_the_bytes_all_arrived(fake, client, video):
    attempt = Attempt(client, make_job(path=video))
    attempt.run_step()
    attempt.run_step()
    attempt.run_step()  # processing: IN_PROGRESS
    attempt.run_step()  # FINISHED
    attempt.state["upload_offset"] = MB  # killed before the last offsets were written
    attempt.step = "upload"
    result = attempt.run_step()
    assert result.next_step == "processing"
    assert attempt.run().success
    assert len(fake.containers) == 1 and len(fake.published) == 1


def test_killed_after_publish_sent_was_saved_but_before_sending(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB), kill_at="publish_sent")
    with pytest.raises(Killed):
        attempt.run()
    assert attempt.state["publish_sent"] is True and fake.publish_calls == 0

    assert attempt.run().success  # the container is still FINISHED: sending is safe
    assert fake.publish_calls == 1 and len(fake.published) == 1


def test_lost_answer_to_media_publish_is_unknown_and_never_resent(fake, client):
    fake.drop_next("media_publish")
    attempt = Attempt(client, make_job(**URL_JOB))
    with pytest.raises(ProviderError) as caught:
        attempt.run()
    assert caught.value.kind == "unknown"
    assert attempt.state["publish_sent"] is True and attempt.step == "finalize"

    outcome = attempt.run()  # re-run of finalize: the container says PUBLISHED
    assert outcome.success
    assert fake.publish_calls == 1 and len(fake.published) == 1
    assert steps_of(attempt)[-2:] == ["confirm", None]


def test_timeout_on_media_publish_is_unknown_and_reconciles_as_published(fake, settings,
                                                                         client):
    client.http.timeout = httpx.Timeout(0.5)
    fake.stall_next("media_publish", 1.5)
    attempt = Attempt(client, make_job(**URL_JOB))
    with pytest.raises(ProviderError) as caught:
        attempt.run()
    assert caught.value.kind == "unknown" and caught.value.code == "ReadTimeout"

    outcome = client.reconcile(attempt.job, attempt.state)
    assert outcome.success and fake.publish_calls == 1 and len(fake.published) == 1


def test_media_publish_that_could_not_connect_is_transient(fake, server, client, settings):
    attempt = _attempt_until(client, "finalize")
    settings["INSTAGRAM_GRAPH_URL"] = "http://127.0.0.1:9/v24.0"  # nothing listens there
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.kind == "transient" and caught.value.code == "ConnectError"
    settings["INSTAGRAM_GRAPH_URL"] = f"{server.url}/v24.0"
    assert attempt.run().success and fake.publish_calls == 1


def test_timeout_on_container_creation_is_transient(fake, client):
    client.http.timeout = httpx.Timeout(0.5)
    fake.stall_next("media", 1.5)
    attempt = Attempt(client, make_job(**URL_JOB))
    attempt.run_step()
    with pytest.raises(ProviderError) as caught:
        attempt.run_step()
    assert caught.value.kind == "transient"
    assert "container_id" not in attempt.state


def test_processing_reads_published_and_goes_to_confirm(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB))
    assert attempt.run().success
    saved = dict(attempt.state)
    attempt.step = "processing"  # e.g. a poll task that ran again
    result = attempt.run_step()
    assert result.next_step == "confirm" and result.state == saved
    assert fake.publish_calls == 1


def test_confirm_is_best_effort(fake, client):
    fake.fail_next("media_info", code=2, is_transient=True, status=503)
    outcome = Attempt(client, make_job(**URL_JOB)).run()
    assert outcome.success and outcome.external_url is None
    assert outcome.external_post_id == fake.published[0]["media_id"]


# --- reconciliation --------------------------------------------------------------------------

def _attempt_until(client, step: str) -> Attempt:
    attempt = Attempt(client, make_job(**URL_JOB))
    while attempt.step != step:
        attempt.run_step()
    return attempt


def test_reconcile_published_with_the_media_id(fake, client):
    attempt = Attempt(client, make_job(**URL_JOB))
    attempt.run()
    outcome = client.reconcile(attempt.job, attempt.state)
    assert outcome.success and outcome.external_post_id == fake.published[0]["media_id"]
    assert outcome.external_url.startswith("https://www.instagram.com/reel/")


def test_reconcile_finished_is_safely_not_published(fake, client):
    attempt = _attempt_until(client, "finalize")
    attempt.state["publish_sent"] = True
    outcome = client.reconcile(attempt.job, attempt.state)
    assert not outcome.success and outcome.error_kind == "transient"
    assert "FINISHED" in outcome.error_message


def test_reconcile_in_progress_and_expired(fake, client):
    attempt = _attempt_until(client, "processing")
    assert client.reconcile(attempt.job, attempt.state).error_kind == "transient"
    fake.expire(attempt.state["container_id"])
    outcome = client.reconcile(attempt.job, attempt.state)
    assert not outcome.success and "EXPIRED" in outcome.error_message


def test_reconcile_error_is_permanent(fake, client):
    fake.process_next_as("ERROR", "Error: media processing failed (2207082)")
    attempt = _attempt_until(client, "processing")
    attempt.run_step()
    attempt.run_step()
    outcome = client.reconcile(attempt.job, attempt.state)
    assert outcome.error_kind == "permanent" and "2207082" in outcome.error_message


def test_reconcile_without_a_container(client):
    outcome = client.reconcile(make_job(**URL_JOB), {})
    assert not outcome.success and outcome.error_kind == "transient"


def test_reconcile_that_cannot_read_the_container(fake, client, settings):
    attempt = _attempt_until(client, "finalize")
    attempt.state["publish_sent"] = True
    fake.fail_next("status", code=2, is_transient=True, status=503)
    assert client.reconcile(attempt.job, attempt.state) is None

    settings["INSTAGRAM_GRAPH_URL"] = "http://127.0.0.1:9/v24.0"  # nothing listens there
    assert client.reconcile(attempt.job, attempt.state) is None


# --- secrets ---------------------------------------------------------------------------------

def test_the_token_never_reaches_logs_messages_or_state(fake, client, caplog):
    caplog.set_level(logging.DEBUG)
    # httpx's request log is off by default (WARNING); an operator debugging may turn it on.
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    client.http.timeout = httpx.Timeout(0.5)
    errors = []
    fake.fail_next("media", code=190, subcode=463, message=f"token {TOKEN} has expired")
    fake.drop_next("status")
    fake.stall_next("media_publish", 1.5)
    attempt = Attempt(client, make_job(**URL_JOB))
    for _ in range(12):
        try:
            if attempt.step is None:
                break
            attempt.run_step()
        except ProviderError as exc:
            errors.append(exc)
    assert [e.kind for e in errors] == ["auth", "transient", "unknown"]
    assert any("access_token=[redacted]" in record.getMessage() for record in caplog.records)

    seen = caplog.text + "".join(f"{e!s}{e!r}{e.code}{e.__cause__!r}" for e in errors)
    seen += json.dumps([attempt.state, attempt.patches,
                        [(r.details, r.trace_id) for _, r in attempt.results]])
    seen += repr(client)
    assert TOKEN not in seen


# --- memory ----------------------------------------------------------------------------------

def test_large_upload_streams_with_flat_memory(fake, client, settings, tmp_path):
    size = int(os.environ.get("INSTAGRAM_BIG_FILE_MB", "200")) * MB + 7
    path = tmp_path / "big.mp4"
    with open(path, "wb") as handle:  # sparse: no disk blocks, no bytes in memory
        handle.truncate(size)
    settings["INSTAGRAM_UPLOAD_CHUNK_BYTES"] = 64 * MB

    def upload_peak() -> int:
        tracemalloc.start()
        try:
            outcome = Attempt(client, make_job(path=path)).run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert outcome.success
        container = list(fake.containers.values())[-1]  # this run's: the newest
        assert container.received == size and container.data is None
        return peak

    # The least of three: tracemalloc counts every thread of the process, the fake's included,
    # so a run on a busy machine can catch a block or two more in flight at its peak.
    peak = min(upload_peak() for _ in range(3))
    assert len(fake.containers) == 3
    # Client and fake both hold a few 1 MiB blocks at a time, whatever the file's size.
    print(f"upload of {size} bytes: tracemalloc peak {peak / MB:.1f} MiB")
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MiB"
