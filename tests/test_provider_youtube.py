"""The live YouTube client against a faithful fake of the resumable upload protocol, over HTTP.

Each test drives the client's steps the way the pipeline will: a small loop runs a step from
the saved state, saves what `checkpoint` and the result hand back, and goes on with the next
step. A killed worker is a step that stops at a checkpoint (the exception is raised before the
patch is saved, as if the process died right after the platform call); the next run starts from
the saved state with a new client and a new HTTP connection.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tracemalloc
from datetime import UTC, datetime

import httpx
import pytest

from dashboard.config import ConfigError, load_config
from dashboard.publishing.providers import LIVE_CLIENTS
from dashboard.publishing.providers.base import LiveJob, MediaSource, ProviderError
from dashboard.publishing.providers.youtube import (
    ERROR_TABLE,
    YouTubeLiveClient,
    seconds_until_quota_reset,
)

from conftest import TEST_CREDENTIALS_KEY
from fakes import FakeServer
from fakes.youtube import CHUNK_UNIT, FakeYouTube

TOKEN = "ya29.secret-access-token-never-shown"
CREDENTIALS = {"client_id": "1234-app.apps.googleusercontent.com", "client_secret": "GOCSPX-shh",
               "access_token": TOKEN, "refresh_token": "1//refresh-secret"}


class Clock:
    """The fake's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Killed(Exception):
    """The worker died: what was being saved never reached the log."""


class Run:
    """The pipeline in miniature: the saved state of one attempt, and its steps run in turn."""

    def __init__(self, settings: dict, job: LiveJob, clock: Clock | None = None):
        self.settings = settings
        self.job = job
        self.clock = clock
        self.saved: dict = {}
        self.checkpoints: list[dict] = []
        self.kill_when = None  # a predicate on a checkpoint patch: die instead of saving it
        self.steps: list[str] = []

    def checkpoint(self, patch: dict) -> None:
        if self.kill_when is not None and self.kill_when(patch):
            self.kill_when = None
            raise Killed(patch)
        self.checkpoints.append(dict(patch))
        self.saved.update(patch)

    def step(self, name: str):
        """Run one step with a fresh client and connection, as a new worker would."""
        self.steps.append(name)
        with httpx.Client() as http:
            client = LIVE_CLIENTS["youtube"](CREDENTIALS, self.settings, http)
            result = client.run_step(name, self.job, dict(self.saved), self.checkpoint)
        self.saved = dict(result.state)
        return result

    def until_done(self, step: str = "prepare"):
        """Run steps until the attempt ends; waits move the clock instead of sleeping."""
        result = None
        while step is not None:
            result = self.step(step)
            if result.wait_seconds and self.clock is not None:
                self.clock.advance(result.wait_seconds)
            step = result.next_step
        return result

    def reconcile(self):
        with httpx.Client() as http:
            return YouTubeLiveClient(CREDENTIALS, self.settings, http).reconcile(self.job,
                                                                                 dict(self.saved))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake(clock):
    return FakeYouTube(clock=clock)


@pytest.fixture
def server(fake):
    with FakeServer(fake) as running:
        yield running


@pytest.fixture
def make_settings(tmp_path, server):
    def make(**env) -> dict:
        values = {"YOUTUBE_API_URL": server.url, "YOUTUBE_CHUNK_BYTES": str(CHUNK_UNIT),
                  "YOUTUBE_RETRY_BASE_DELAY": "0", "PROVIDER_HTTP_TIMEOUT": "10",
                  "SECRET_KEY": "test", "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY}
        values.update({key: str(value) for key, value in env.items()})
        return load_config(tmp_path, env=values)

    return make


@pytest.fixture
def settings(make_settings):
    return make_settings()


def media_file(tmp_path, size: int, name: str = "clip.mp4") -> MediaSource:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return MediaSource(path=str(path))


def make_job(media: MediaSource, **fields) -> LiveJob:
    values = dict(platform="youtube", log_id="log-1", title="Launch teaser",
                  description="The clip's description", caption="New drop today\n\n#launch #shorts",
                  hashtags=("launch", "shorts"), media=media, duration_seconds=30.0,
                  account_handle="@brand", credentials=CREDENTIALS)
    values.update(fields)
    return LiveJob(**values)


def sha256_of(media: MediaSource) -> str:
    return hashlib.sha256(open(media.path, "rb").read()).hexdigest()


def data_starts(fake: FakeYouTube) -> list[int]:
    """The first byte of every data PUT the fake received, in order."""
    return [int(put.content_range.split(" ")[1].split("-")[0]) for put in fake.puts
            if put.content_range and "*" not in put.content_range]


@pytest.fixture
def job(tmp_path):
    return make_job(media_file(tmp_path, 3 * CHUNK_UNIT + 1000))


def test_the_client_is_registered_for_live_mode():
    assert LIVE_CLIENTS["youtube"] is YouTubeLiveClient
    assert YouTubeLiveClient.name == "youtube_data_v3"


def test_happy_path_uploads_in_chunks_and_publishes_once(settings, fake, job):
    run = Run(settings, job)
    positions = []  # how many PUTs the fake had seen when each checkpoint was written
    original = run.checkpoint
    run.checkpoint = lambda patch: (positions.append((dict(patch), len(fake.puts))), original(patch))

    result = run.until_done()

    assert result.outcome.success
    video_id = result.outcome.external_post_id
    assert result.outcome.external_url == f"https://www.youtube.com/shorts/{video_id}"
    assert list(fake.videos) == [video_id] and fake.inserts == 1
    video = fake.videos[video_id]
    assert video.sha256 == sha256_of(job.media) and video.size == job.media.size
    assert video.snippet == {"title": "Launch teaser",
                             "description": "New drop today\n\n#launch #shorts",
                             "tags": ["launch", "shorts"], "categoryId": "22"}
    assert video.privacy_status == "private" and video.made_for_kids is False
    # Four chunks of 256 KiB (the last shorter), each answered 308 then 201.
    assert [put.content_range for put in fake.puts] == [
        f"bytes 0-{CHUNK_UNIT - 1}/{job.media.size}",
        f"bytes {CHUNK_UNIT}-{2 * CHUNK_UNIT - 1}/{job.media.size}",
        f"bytes {2 * CHUNK_UNIT}-{3 * CHUNK_UNIT - 1}/{job.media.size}",
        f"bytes {3 * CHUNK_UNIT}-{job.media.size - 1}/{job.media.size}",
    ]
    assert [put.status for put in fake.puts] == [308, 308, 308, 201]
    # The session is saved before any byte, each acknowledged offset after its 308, and the
    # final-chunk mark before the last chunk goes out.
    assert positions[0][0]["session_uri"].startswith(settings["YOUTUBE_API_URL"])
    assert positions[0][0]["size"] == job.media.size and positions[0][1] == 0
    offsets = [patch["offset"] for patch, _ in positions[1:] if "offset" in patch][:3]
    assert offsets == [CHUNK_UNIT, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT]
    assert ({"final_chunk_sent": True}, 3) in positions
    assert run.steps == ["prepare", "upload", "processing", "confirm"]
    assert run.saved["upload_trace_id"] == fake.videos[video_id].upload_id


def test_the_privacy_and_category_are_settings(make_settings, fake, job):
    fake.verified_projects.add("default-project")  # an audited project may publish publicly
    run = Run(make_settings(YOUTUBE_PRIVACY_STATUS="public", YOUTUBE_CATEGORY_ID="24"), job)
    video_id = run.until_done().outcome.external_post_id
    assert fake.videos[video_id].privacy_status == "public"
    assert fake.videos[video_id].snippet["categoryId"] == "24"


def test_a_post_may_choose_its_own_privacy(settings, fake, job):
    fake.verified_projects.add("default-project")
    run = Run(settings, make_job(job.media, options={"privacy_status": "unlisted"}))
    video_id = run.until_done().outcome.external_post_id
    assert fake.videos[video_id].privacy_status == "unlisted"


def test_an_unverified_project_is_locked_private_whatever_is_asked(make_settings, fake, job):
    run = Run(make_settings(YOUTUBE_PRIVACY_STATUS="public"), job)
    video_id = run.until_done().outcome.external_post_id
    assert fake.videos[video_id].privacy_status == "private"


@pytest.mark.parametrize("value", ["1000", "0", "-262144", "393216"])
def test_the_chunk_size_must_be_a_multiple_of_256_kib(tmp_path, value):
    with pytest.raises(ConfigError, match="YOUTUBE_CHUNK_BYTES"):
        load_config(tmp_path, env={"YOUTUBE_CHUNK_BYTES": value, "SECRET_KEY": "x",
                                   "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY})


def test_youtube_settings_have_documented_defaults(tmp_path):
    config = load_config(tmp_path, env={"SECRET_KEY": "x", "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY})
    assert config["YOUTUBE_CHUNK_BYTES"] == 8 * 1024 * 1024
    assert config["YOUTUBE_PRIVACY_STATUS"] == "private"
    assert config["YOUTUBE_UPLOADS_PER_DAY"] == 100
    assert config["YOUTUBE_CATEGORY_ID"] == "22"


# -- interruptions --------------------------------------------------------------------------

def test_a_dropped_connection_resumes_from_the_servers_range(make_settings, fake, tmp_path):
    job = make_job(media_file(tmp_path, 6 * CHUNK_UNIT + 5))
    settings = make_settings(YOUTUBE_CHUNK_BYTES=2 * CHUNK_UNIT)
    # The second chunk (bytes 512 KiB-1 MiB) dies after 256 KiB of it arrived.
    fake.drop_connection(on_put=2, after_bytes=CHUNK_UNIT)

    result = Run(settings, job).until_done()

    assert result.outcome.success and len(fake.videos) == 1 and fake.inserts == 1
    assert fake.videos[result.outcome.external_post_id].sha256 == sha256_of(job.media)
    # The session was asked, and the upload went on where the server said: mid-chunk, not at 0.
    assert f"bytes */{job.media.size}" in [put.content_range for put in fake.puts]
    assert data_starts(fake) == [0, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT, 5 * CHUNK_UNIT]


def test_a_lost_answer_to_the_final_chunk_is_settled_by_asking_the_session(settings, fake, job):
    fake.lose_answer(on_put=4)  # the video is created, the client hears nothing

    result = Run(settings, job).until_done()

    assert result.outcome.success and len(fake.videos) == 1 and fake.inserts == 1
    assert result.outcome.external_post_id == list(fake.videos)[0]
    assert [put.status for put in fake.puts][-2:] == [599, 200]  # lost, then the status query
    assert len(data_starts(fake)) == 4  # no byte sent twice


def test_a_lost_answer_to_a_middle_chunk_goes_on_from_the_servers_range(settings, fake, job):
    fake.lose_answer(on_put=2)
    result = Run(settings, job).until_done()
    assert result.outcome.success and len(fake.videos) == 1
    assert data_starts(fake) == [0, CHUNK_UNIT, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT]


def test_server_errors_mid_upload_are_asked_about_and_resumed(settings, fake, job):
    fake.fail_put(on_put=2, status=503)
    fake.fail_status_queries(2)  # and the session itself answers 503 twice: back off, ask again

    result = Run(settings, job).until_done()

    assert result.outcome.success and len(fake.videos) == 1 and fake.inserts == 1
    queries = [put.status for put in fake.puts if "*" in put.content_range]
    assert queries == [503, 503, 308]
    assert data_starts(fake) == [0, CHUNK_UNIT, CHUNK_UNIT, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT]


def test_a_session_that_stays_unreachable_leaves_a_resumable_transient_error(make_settings,
                                                                             fake, job):
    settings = make_settings(YOUTUBE_UPLOAD_RETRIES=2)
    run = Run(settings, job)
    run.step("prepare")
    fake.fail_put(on_put=2)
    fake.fail_status_queries(3)
    with pytest.raises(ProviderError) as caught:
        run.step("upload")
    assert caught.value.kind == "transient" and not caught.value.restart
    # The next run resumes the same session where the server stands.
    result = run.until_done("upload")
    assert result.outcome.success and fake.inserts == 1 and len(fake.videos) == 1
    assert 0 not in data_starts(fake)[1:]


def test_a_killed_worker_resumes_from_the_servers_range_not_its_saved_offset(settings, fake, job):
    run = Run(settings, job)
    run.step("prepare")
    # Die right after the server acknowledged the second chunk, before the offset was saved.
    run.kill_when = lambda patch: patch.get("offset") == 2 * CHUNK_UNIT
    with pytest.raises(Killed):
        run.step("upload")
    assert run.saved["offset"] == CHUNK_UNIT  # the log is one chunk behind the server
    puts_before = len(fake.puts)

    result = run.until_done("upload")

    assert result.outcome.success and fake.inserts == 1 and len(fake.videos) == 1
    resumed = fake.puts[puts_before:]
    assert resumed[0].content_range == f"bytes */{job.media.size}" and resumed[0].status == 308
    assert data_starts(fake) == [0, CHUNK_UNIT, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT]
    assert fake.videos[result.outcome.external_post_id].sha256 == sha256_of(job.media)


def test_a_session_that_kept_no_byte_is_resumed_from_zero_in_the_same_session(settings, fake,
                                                                              job):
    run = Run(settings, job)
    run.kill_when = lambda patch: patch.get("offset") == 2 * CHUNK_UNIT
    with pytest.raises(Killed):
        run.until_done()
    (session,) = fake.sessions.values()
    session.received, session.digest = 0, hashlib.sha256()  # the server kept nothing after all

    result = run.until_done("upload")

    assert result.outcome.success and fake.inserts == 1 and len(fake.videos) == 1
    assert data_starts(fake)[2:] == [0, CHUNK_UNIT, 2 * CHUNK_UNIT, 3 * CHUNK_UNIT]
    assert fake.videos[result.outcome.external_post_id].sha256 == sha256_of(job.media)


def test_an_upload_complete_before_the_crash_is_not_sent_again(settings, fake, job):
    run = Run(settings, job)
    run.step("prepare")
    run.kill_when = lambda patch: "video_id" in patch  # the last byte arrived, then death
    with pytest.raises(Killed):
        run.step("upload")
    assert run.saved["final_chunk_sent"] is True and len(fake.videos) == 1
    data_puts = len(data_starts(fake))

    result = run.until_done("upload")

    assert result.outcome.success and result.outcome.external_post_id == list(fake.videos)[0]
    assert len(fake.videos) == 1 and fake.inserts == 1
    assert len(data_starts(fake)) == data_puts  # only the status query, no byte again


def test_a_crash_before_the_final_chunk_arrived_resumes_it(settings, fake, job):
    run = Run(settings, job)
    run.step("prepare")
    original = run.checkpoint

    def die_after_marking(patch):
        original(patch)  # saved, then the worker dies before the chunk goes out
        if patch.get("final_chunk_sent"):
            raise Killed(patch)

    run.checkpoint = die_after_marking
    with pytest.raises(Killed):
        run.step("upload")
    run.checkpoint = original
    assert run.saved["final_chunk_sent"] is True and not fake.videos

    result = run.until_done("upload")
    assert result.outcome.success and len(fake.videos) == 1 and fake.inserts == 1


@pytest.mark.parametrize("gone", [404, 410])
def test_a_session_gone_before_its_last_byte_restarts_with_a_new_one(settings, fake, job, gone):
    run = Run(settings, job)
    run.step("prepare")
    run.kill_when = lambda patch: patch.get("offset") == 2 * CHUNK_UNIT
    with pytest.raises(Killed):
        run.step("upload")
    first_session = run.saved["session_uri"]
    fake.expire_sessions(gone)

    result = run.until_done("upload")

    assert result.outcome.success and len(fake.videos) == 1 and fake.inserts == 2
    assert run.saved["session_uri"] != first_session
    assert fake.videos[result.outcome.external_post_id].sha256 == sha256_of(job.media)


def test_a_session_expiring_mid_upload_restarts_once(settings, fake, job):
    """A chunk answered 404 is refused: nothing was completed, a new session starts."""
    run = Run(settings, job)
    original = run.checkpoint

    def expire_after_first_chunk(patch):
        original(patch)
        if patch.get("offset") == CHUNK_UNIT and fake.inserts == 1:
            fake.expire_sessions(404)

    run.checkpoint = expire_after_first_chunk
    result = run.until_done()
    assert result.outcome.success and fake.inserts == 2 and len(fake.videos) == 1


def test_a_session_gone_after_the_final_chunk_may_have_arrived_is_unknown(settings, fake, job):
    run = Run(settings, job)
    run.step("prepare")
    run.kill_when = lambda patch: "video_id" in patch
    with pytest.raises(Killed):
        run.step("upload")
    fake.expire_sessions(404)  # the video exists, but its session can no longer say so

    with pytest.raises(ProviderError) as caught:
        run.step("upload")
    assert caught.value.kind == "unknown"
    assert fake.inserts == 1 and len(fake.videos) == 1  # never started over
    assert run.reconcile() is None  # YouTube cannot tell: it stays unconfirmed


# -- errors ---------------------------------------------------------------------------------

# platforms.md, "YouTube Data API v3", Errors: reason -> status -> kind.
DOCUMENTED_ERRORS = [
    ("quotaExceeded", 403, "transient"),
    ("uploadLimitExceeded", 400, "transient"),
    ("rateLimitExceeded", 403, "transient"),
    ("forbidden", 403, "permanent"),
    ("authError", 401, "auth"),
    ("invalidTitle", 400, "permanent"),
    ("invalidDescription", 400, "permanent"),
    ("invalidTags", 400, "permanent"),
    ("backendError", 500, "transient"),
    ("backendError", 503, "transient"),
    ("somethingNobodyDocumented", 400, "permanent"),
]


def test_the_error_table_is_exactly_the_documented_one():
    documented = {reason for reason, _, _ in DOCUMENTED_ERRORS[:-1]}
    assert set(ERROR_TABLE) == documented


@pytest.mark.parametrize("where", ["insert", "put"])
@pytest.mark.parametrize("reason,status,kind", DOCUMENTED_ERRORS)
def test_every_documented_error_is_classified(settings, fake, job, caplog, where, reason,
                                              status, kind):
    caplog.set_level(logging.DEBUG)
    fake.queue_error(where, status, reason, message=f"YouTube says {reason}")
    if where == "put" and status >= 500:
        fake.fail_status_queries(99)  # the session stays unreachable too
    run = Run(settings, job)
    with pytest.raises(ProviderError) as caught:
        run.until_done()
    error = caught.value
    assert error.kind == kind
    if status < 500:
        assert error.code == reason and f"YouTube says {reason}" in str(error)
    if where == "put":
        assert error.trace_id == run.saved["upload_trace_id"]
    if reason == "quotaExceeded":
        expected = seconds_until_quota_reset(datetime.now(UTC))
        assert abs(error.retry_after - expected) < 60
    assert not fake.videos
    for text in (str(error), repr(error), caplog.text):
        assert TOKEN not in text and CREDENTIALS["client_secret"] not in text


def test_the_real_validation_errors_of_the_fake(settings, fake, tmp_path):
    media = media_file(tmp_path, 1000)
    cases = [
        (make_job(media, title="x" * 101), "invalidTitle"),
        (make_job(media, title="a <b> title"), "invalidTitle"),
        (make_job(media, caption="é" * 2501), "invalidDescription"),
        (make_job(media, hashtags=tuple(f"tag{n:03}" for n in range(80))), "invalidTags"),
    ]
    for job, reason in cases:
        with pytest.raises(ProviderError) as caught:
            Run(settings, job).until_done()
        assert (caught.value.kind, caught.value.code) == ("permanent", reason)
    assert fake.inserts == 0 and not fake.videos


def test_a_refused_token_is_an_auth_error_and_never_shown(settings, fake, job, caplog):
    caplog.set_level(logging.DEBUG)
    fake.revoked.add(TOKEN)
    with pytest.raises(ProviderError) as caught:
        Run(settings, job).until_done()
    assert caught.value.kind == "auth" and caught.value.status == 401
    assert TOKEN not in str(caught.value) and TOKEN not in caplog.text


def test_the_projects_daily_quota_is_youtubes_answer_after_the_limit(settings, clock, tmp_path):
    fake = FakeYouTube(clock=clock, quota_per_day=2)
    with FakeServer(fake) as server:
        settings = dict(settings, YOUTUBE_API_URL=server.url)
        for _ in range(2):
            assert Run(settings, make_job(media_file(tmp_path, 1000))).until_done().outcome.success
        with pytest.raises(ProviderError) as caught:
            Run(settings, make_job(media_file(tmp_path, 1000))).until_done()
        assert (caught.value.kind, caught.value.code) == ("transient", "quotaExceeded")
        assert 0 < caught.value.retry_after <= 25 * 3600
        clock.advance(24 * 3600)  # the next Pacific day
        assert Run(settings, make_job(media_file(tmp_path, 1000))).until_done().outcome.success
    assert len(fake.videos) == 3


def test_the_quota_resets_at_midnight_pacific_time():
    # 2026-12-01 07:59:59 UTC is 23:59:59 in Los Angeles (PST, UTC-8).
    assert seconds_until_quota_reset(datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC)) == 1
    # In summer (PDT, UTC-7) midnight is 07:00 UTC.
    assert seconds_until_quota_reset(datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == 3600


# -- processing -----------------------------------------------------------------------------

def test_processing_is_polled_until_processed(make_settings, clock, job, tmp_path):
    fake = FakeYouTube(clock=clock, processing_seconds=50)
    with FakeServer(fake) as server:
        settings = make_settings(YOUTUBE_API_URL=server.url, YOUTUBE_PROCESSING_POLL_SECONDS=15)
        run = Run(settings, job, clock)
        result = run.until_done()
    assert result.outcome.success
    assert run.steps.count("processing") == 5  # 0, 15, 30, 45 s processing; processed at 60 s
    assert run.steps[-1] == "confirm"


def test_processing_is_bounded_then_confirmed(make_settings, clock, job):
    fake = FakeYouTube(clock=clock, processing_seconds=3600)
    with FakeServer(fake) as server:
        settings = make_settings(YOUTUBE_API_URL=server.url, YOUTUBE_PROCESSING_MAX_POLLS=3)
        run = Run(settings, job, clock)
        result = run.until_done()
    assert result.outcome.success and run.steps.count("processing") == 3


@pytest.mark.parametrize("outcome,reason", [("rejected:duplicate", "duplicate"),
                                            ("failed:codec", "codec")])
def test_a_rejected_or_failed_video_is_a_permanent_failure_with_youtubes_reason(
        make_settings, clock, job, outcome, reason):
    fake = FakeYouTube(clock=clock, processing_seconds=20, processing_outcome=outcome)
    with FakeServer(fake) as server:
        run = Run(make_settings(YOUTUBE_API_URL=server.url), job, clock)
        result = run.until_done()
    assert not result.outcome.success and result.outcome.error_kind == "permanent"
    assert reason in result.outcome.error_message
    assert result.details["reason"] == reason


def test_a_poll_youtube_cannot_answer_never_fails_a_published_video(settings, fake, job):
    fake.queue_error("videos", 503, "backendError")
    run = Run(settings, job)
    result = run.until_done()
    assert result.outcome.success and run.steps.count("processing") == 2


# -- reconciliation -------------------------------------------------------------------------

def test_reconcile_without_a_session_is_safely_not_published(settings, job):
    outcome = Run(settings, job).reconcile()
    assert not outcome.success and outcome.error_kind == "transient"


def test_reconcile_of_an_incomplete_upload_is_safely_not_published_and_resumable(settings, fake,
                                                                                 job):
    run = Run(settings, job)
    run.kill_when = lambda patch: patch.get("offset") == 2 * CHUNK_UNIT
    with pytest.raises(Killed):
        run.until_done()
    outcome = run.reconcile()
    assert not outcome.success and outcome.error_kind == "transient"
    assert f"{2 * CHUNK_UNIT} of {job.media.size}" in outcome.error_message
    assert not fake.videos
    assert run.until_done("upload").outcome.success and fake.inserts == 1


def test_reconcile_of_a_completed_upload_finds_the_video(settings, fake, job):
    run = Run(settings, job)
    run.kill_when = lambda patch: "video_id" in patch
    with pytest.raises(Killed):
        run.until_done()
    outcome = run.reconcile()
    assert outcome.success and outcome.external_post_id == list(fake.videos)[0]
    assert outcome.external_url == f"https://www.youtube.com/shorts/{outcome.external_post_id}"


@pytest.mark.parametrize("gone", [404, 410])
def test_reconcile_of_a_session_gone_before_the_last_byte_is_safely_not_published(
        settings, fake, job, gone):
    run = Run(settings, job)
    run.kill_when = lambda patch: patch.get("offset") == CHUNK_UNIT
    with pytest.raises(Killed):
        run.until_done()
    fake.expire_sessions(gone)
    outcome = run.reconcile()
    assert not outcome.success and outcome.error_kind == "transient"


def test_reconcile_when_youtube_is_unreachable_cannot_tell(make_settings, job, fake):
    run = Run(make_settings(YOUTUBE_UPLOAD_RETRIES=1), job)
    run.kill_when = lambda patch: patch.get("offset") == CHUNK_UNIT
    with pytest.raises(Killed):
        run.until_done()
    fake.fail_status_queries(99)
    assert run.reconcile() is None


def test_reconcile_when_the_server_is_gone_cannot_tell(tmp_path, job):
    fake = FakeYouTube()
    with FakeServer(fake) as server:
        settings = load_config(tmp_path, env={
            "YOUTUBE_API_URL": server.url, "YOUTUBE_CHUNK_BYTES": str(CHUNK_UNIT),
            "YOUTUBE_RETRY_BASE_DELAY": "0", "YOUTUBE_UPLOAD_RETRIES": "1",
            "PROVIDER_HTTP_TIMEOUT": "5", "SECRET_KEY": "x", "CREDENTIALS_KEYS": TEST_CREDENTIALS_KEY})
        run = Run(settings, job)
        run.kill_when = lambda patch: patch.get("offset") == CHUNK_UNIT
        with pytest.raises(Killed):
            run.until_done()
    assert run.reconcile() is None  # connection refused: the server is down


# -- memory ---------------------------------------------------------------------------------

@pytest.mark.slow  # a 1 GiB upload through the fake
def test_a_large_file_uploads_with_flat_memory(make_settings, fake, tmp_path):
    size = 1024 * 1024 * 1024
    path = tmp_path / "large.mp4"
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: 1 GiB of zeros that take no disk
    job = make_job(MediaSource(path=str(path)))
    # Chunks of 64 MiB: holding one chunk, let alone the file, would break the bound below
    # (measured: about 10 MiB whatever the chunk size, client and fake together).
    settings = make_settings(YOUTUBE_CHUNK_BYTES=64 * 1024 * 1024)

    tracemalloc.start()
    try:
        result = Run(settings, job).until_done()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.outcome.success
    video = fake.videos[result.outcome.external_post_id]
    assert video.size == size
    zeros = hashlib.sha256()
    block = bytes(1024 * 1024)
    for _ in range(size // len(block)):
        zeros.update(block)
    assert video.sha256 == zeros.hexdigest()
    assert peak < 32 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"


# -- the fake refuses what YouTube refuses (so a client speaking a dialect fails here) -------

def start_session(server, size: int, **headers) -> httpx.Response:
    values = {"Authorization": "Bearer t", "Content-Type": "application/json; charset=UTF-8",
              "X-Upload-Content-Length": str(size), "X-Upload-Content-Type": "video/mp4"}
    values.update(headers)
    return httpx.post(f"{server.url}/upload/youtube/v3/videos?uploadType=resumable"
                      "&part=snippet,status", headers={k: v for k, v in values.items() if v},
                      json={"snippet": {"title": "t", "categoryId": "22"},
                            "status": {"privacyStatus": "private"}})


@pytest.mark.parametrize("header", ["X-Upload-Content-Length", "X-Upload-Content-Type",
                                    "Authorization"])
def test_the_fake_refuses_a_session_without_the_documented_headers(server, fake, header):
    response = start_session(server, 1000, **{header: ""})
    assert response.status_code in (400, 401) and "Location" not in response.headers
    assert fake.inserts == 0


def test_the_fake_enforces_chunk_rules_and_answers_status_queries(server, fake):
    size = 3 * CHUNK_UNIT
    uri = start_session(server, size).headers["Location"]
    assert uri.startswith(server.url)

    def put(content_range: str, length: int) -> httpx.Response:
        return httpx.put(uri, content=bytes(length), headers={"Content-Range": content_range})

    ask = put(f"bytes */{size}", 0)
    assert ask.status_code == 308 and "Range" not in ask.headers  # nothing received yet
    assert put(f"bytes 0-999/{size}", 1000).status_code == 400  # not a multiple of 256 KiB
    assert put(f"bytes {CHUNK_UNIT}-{2 * CHUNK_UNIT - 1}/{size}", CHUNK_UNIT).status_code == 400
    first = put(f"bytes 0-{CHUNK_UNIT - 1}/{size}", CHUNK_UNIT)
    assert first.status_code == 308 and first.headers["Range"] == f"bytes=0-{CHUNK_UNIT - 1}"
    assert first.headers["X-GUploader-UploadID"]
    last = put(f"bytes {CHUNK_UNIT}-{size - 1}/{size}", 2 * CHUNK_UNIT)
    assert last.status_code == 201 and last.json()["id"] in fake.videos
    done = put(f"bytes */{size}", 0)
    assert done.status_code == 200 and done.json()["id"] == last.json()["id"]
    assert len(fake.videos) == 1
