"""The TikTok live client against the TikTok fake over real HTTP.

A tiny loop stands in for the pipeline: it runs one step at a time, saves each checkpoint and each
step's state, and makes the waits pass on the fake's clock. A "killed worker" is a checkpoint that
raises: the loop then runs the step again from what was saved, as a restarted worker would.
"""

from __future__ import annotations

import json
import logging
import tracemalloc

import httpx
import pytest
from cryptography.fernet import Fernet

from dashboard.config import ConfigError, load_config
from dashboard.publishing.providers import LIVE_CLIENTS
from dashboard.publishing.providers.base import LiveJob, MediaSource, ProviderError
from dashboard.publishing.providers.tiktok import TikTokLiveClient, plan_chunks
from tests.fakes import FakeServer
from tests.fakes.tiktok import TikTokFake, _check_chunks

MIB = 1024 * 1024
TOKEN = "act.secret-token-4f9a"
CREDENTIALS = {"client_key": "awkey123", "client_secret": "client-secret-77", "access_token": TOKEN}
SECRETS = (TOKEN, CREDENTIALS["client_secret"])


class ManualClock:
    """The fake's and the client's clock: time passes only when a test says so."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Killed(Exception):
    """The worker died here."""


class Runner:
    """What the pipeline does between steps: save state, honour waits, run the next step."""

    def __init__(self, client: TikTokLiveClient, job: LiveJob, clock: ManualClock):
        self.client, self.job, self.clock = client, job, clock
        self.state: dict = {}
        self.results = []
        self.kill_when = None  # a predicate on a checkpoint patch: kill before/after saving it
        self.kill_saves = True

    def checkpoint(self, patch: dict) -> None:
        json.dumps(patch)  # state must be JSON-able: it goes onto the publish log
        if self.kill_when is not None and self.kill_when(patch):
            self.kill_when = None
            if self.kill_saves:
                self.state.update(patch)
            raise Killed(patch)
        self.state.update(patch)

    def step(self, name: str):
        result = self.client.run_step(name, self.job, dict(self.state), self.checkpoint)
        self.state = dict(result.state)
        self.results.append((name, result))
        return result

    def run(self, start: str = "prepare", max_steps: int = 500):
        """Run steps from `start` until the attempt ends; return the last StepResult."""
        result = self.steps(max_steps, start)
        if result.next_step is not None:
            raise AssertionError("the attempt never ended")
        return result

    def steps(self, count: int, start: str = "prepare"):
        """Run at most `count` steps from `start` (waits pass on the clock)."""
        name = start
        for _ in range(count):
            result = self.step(name)
            if result.wait_seconds:
                self.clock.advance(result.wait_seconds)
            if result.next_step is None:
                break
            name = result.next_step
        return result


@pytest.fixture
def clock():
    return ManualClock()


class CurrentFake:
    """One server for the module (a server's shutdown costs 0.5 s); each test plugs in its fake."""

    app: TikTokFake | None = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def current_fake():
    current = CurrentFake()
    with FakeServer(current) as running:
        current.server = running
        yield current


@pytest.fixture
def fake(clock, current_fake):
    current_fake.app = TikTokFake(clock=clock.now, processing_seconds=12, moderation_seconds=6)
    yield current_fake.app
    current_fake.app = None


@pytest.fixture
def server(fake, current_fake):
    return current_fake.server


def make_settings(tmp_path, server, **env):
    base = {"CREDENTIALS_KEYS": Fernet.generate_key().decode(), "SECRET_KEY": "x",
            "TIKTOK_API_URL": server.url, "TIKTOK_POLL_INTERVAL_SECONDS": "2",
            "PROVIDER_HTTP_TIMEOUT": "10"}
    return load_config(tmp_path / "instance", {**base, **{k: str(v) for k, v in env.items()}})


@pytest.fixture
def make_client(tmp_path, server, clock):
    http_clients = []

    def make(**env) -> TikTokLiveClient:
        http = httpx.Client()
        http_clients.append(http)
        client = TikTokLiveClient(CREDENTIALS, make_settings(tmp_path, server, **env), http)
        client.clock = clock.now
        return client

    yield make
    for http in http_clients:
        http.close()


@pytest.fixture
def make_job(tmp_path):
    def make(size: int = 3 * MIB, *, public_url: str | None = None, duration: float | None = 30,
             caption: str = "Launch day #tiktok", **options) -> LiveJob:
        path = tmp_path / f"clip-{size}.mp4"
        with open(path, "wb") as handle:
            handle.write(b"\x00\x00\x00\x18ftypmp42")
            handle.truncate(size)  # sparse: large files cost no disk
        options.setdefault("privacy_level", "SELF_ONLY")
        return LiveJob(platform="tiktok", log_id="log-1", title="Launch", description="",
                       caption=caption, hashtags=("tiktok",),
                       media=MediaSource(path=str(path), public_url=public_url),
                       duration_seconds=duration, account_handle="@creator.one",
                       credentials=CREDENTIALS, options=options)
    return make


@pytest.fixture
def runner(make_client, make_job, clock):
    def make(job=None, client=None, **env) -> Runner:
        return Runner(client or make_client(**env), job or make_job(), clock)
    return make


def puts(fake) -> list[str]:
    return [r["headers"]["Content-Range"] for r in fake.requests if r["method"] == "PUT"]


def json_posts(fake, path_end: str) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith(path_end)]


# ---- happy paths ---------------------------------------------------------------------------------

def test_single_chunk_publishes_once_with_the_post_url(fake, runner, make_job):
    run = runner(make_job(3 * MIB))
    result = run.run()

    assert result.outcome.success
    publish_id = run.state["publish_id"]
    assert fake.published == [publish_id]
    assert fake.final_chunks[publish_id] == 1
    post = fake.post_for(publish_id)
    assert (post.chunk_size, post.total_chunk_count) == (3 * MIB, 1)
    assert result.outcome.external_post_id == str(post.post_id)
    assert result.outcome.external_url == \
        f"https://www.tiktok.com/@creator.one/video/{post.post_id}"
    assert puts(fake) == [f"bytes 0-{3 * MIB - 1}/{3 * MIB}"]
    put = next(r for r in fake.requests if r["method"] == "PUT")
    assert put["headers"]["Content-Type"] == "video/mp4"
    assert put["headers"]["Content-Length"] == str(3 * MIB)
    for call in json_posts(fake, "/"):
        assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert call["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    prepare = run.results[0][1]
    assert prepare.details["creator_nickname"] == "Creator One"
    assert run.state["creator_username"] == "creator.one"
    assert [name for name, _ in run.results][:2] == ["prepare", "upload"]
    assert "finalize" not in [name for name, _ in run.results]


def test_init_sends_the_post_info_and_the_creators_switched_off_interactions(fake, runner,
                                                                           make_job):
    fake.comment_disabled = True
    job = make_job(3 * MIB, caption="Caption ✨ #tag", privacy_level="FOLLOWER_OF_CREATOR",
                   disable_duet=True, cover_offset_ms=1500)
    run = runner(job)
    run.run()
    post = fake.post_for(run.state["publish_id"])
    assert post.post_info == {
        "title": "Caption ✨ #tag", "privacy_level": "FOLLOWER_OF_CREATOR",
        "disable_duet": True, "disable_comment": True, "disable_stitch": False,
        "brand_content_toggle": False, "brand_organic_toggle": False, "is_aigc": False,
        "video_cover_timestamp_ms": 1500,
    }


def test_multi_chunk_upload_puts_the_remainder_in_the_last_chunk(fake, runner, make_job):
    size = 37 * MIB - 123  # 10 MiB chunks: 3 of them, the last holding 17 MiB - 123
    run = runner(make_job(size))
    result = run.run()

    assert result.outcome.success
    chunk = 10 * MIB
    assert puts(fake) == [f"bytes 0-{chunk - 1}/{size}", f"bytes {chunk}-{2 * chunk - 1}/{size}",
                          f"bytes {2 * chunk}-{size - 1}/{size}"]
    assert run.state["chunk_plan"] == {"video_size": size, "chunk_size": chunk,
                                       "total_chunk_count": 3}
    assert fake.published == [run.state["publish_id"]]


def test_pull_from_url_sends_no_bytes(fake, runner, make_job):
    run = runner(make_job(public_url="https://media.example.com/clips/1.mp4"))
    result = run.run()

    assert result.outcome.success and result.outcome.external_url
    assert puts(fake) == []
    post = fake.post_for(run.state["publish_id"])
    assert (post.source, post.video_url) == ("PULL_FROM_URL", "https://media.example.com/clips/1.mp4")
    statuses = [r.details.get("status") for name, r in run.results if name == "processing"]
    assert "PROCESSING_DOWNLOAD" in statuses
    assert fake.published == [run.state["publish_id"]]


def test_pull_from_an_unverified_domain_is_refused(fake, runner, make_job):
    fake.verified_url_prefixes = ("https://media.example.com/",)
    run = runner(make_job(public_url="https://elsewhere.example.org/1.mp4"))
    with pytest.raises(ProviderError) as refused:
        run.run()
    assert (refused.value.kind, refused.value.code) == ("permanent", "url_ownership_unverified")
    assert fake.published == []


def test_processing_that_takes_many_polls_backs_off_and_never_sleeps(fake, runner, make_job):
    fake.processing_seconds = 600
    run = runner(make_job(), TIKTOK_POLL_MAX_INTERVAL_SECONDS=30)
    result = run.run()

    assert result.outcome.success
    waits = [r.wait_seconds for name, r in run.results if name == "processing" and r.wait_seconds]
    assert len(waits) >= 15
    assert waits == sorted(waits) and waits[0] == 2 and max(waits) == 30
    assert fake.published == [run.state["publish_id"]]


def test_status_rate_limit_while_polling_means_poll_later(fake, runner, make_job):
    run = runner(make_job())
    run.steps(2)  # prepare, upload
    fake.rate_limits["status"] = 0
    result = run.step("processing")
    assert result.next_step == "processing" and result.wait_seconds > 0
    assert result.details["poll_error"] == "rate_limit_exceeded"
    fake.rate_limits["status"] = 30
    assert run.run(start="processing").outcome.success


def test_processing_past_the_limit_is_an_unknown_outcome(fake, runner, make_job):
    fake.processing_seconds = 10_000
    run = runner(make_job(), TIKTOK_POLL_MAX_SECONDS=300)
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "unknown"


def test_moderation_gives_the_post_id_later(fake, runner, make_job):
    fake.moderation_seconds = 40
    run = runner(make_job())
    result = run.run()
    assert result.outcome.external_post_id
    confirms = [r for name, r in run.results if name == "confirm"]
    assert len(confirms) >= 2 and confirms[0].next_step == "confirm"


def test_moderation_longer_than_the_wait_is_a_success_without_url(fake, runner, make_job):
    fake.moderation_seconds = 7200
    run = runner(make_job(), TIKTOK_MODERATION_WAIT_SECONDS=120)
    result = run.run()
    assert result.outcome.success
    assert (result.outcome.external_post_id, result.outcome.external_url) == (None, None)
    assert result.details["moderation"] == "pending"
    assert result.details["publish_id"] == run.state["publish_id"]
    assert fake.published == [run.state["publish_id"]]


@pytest.mark.parametrize("reason, words", [
    ("file_format_check_failed", "format"),
    ("duration_check_failed", "duration"),
    ("frame_rate_check_failed", "frame rate"),
    ("picture_size_check_failed", "picture size"),
    ("video_pull_failed", "download"),
])
def test_failed_processing_ends_with_the_reason_in_words(fake, runner, make_job, reason, words):
    fake.fail_reason = reason
    job = make_job(public_url="https://media.example.com/1.mp4") \
        if reason == "video_pull_failed" else make_job()
    result = runner(job).run()
    assert not result.outcome.success
    assert result.outcome.error_kind == "permanent"
    assert words in result.outcome.error_message and reason in result.outcome.error_message
    assert result.details["fail_reason"] == reason
    assert fake.published == []


def test_a_missing_file_is_refused_before_init(fake, runner, make_job, tmp_path):
    job = make_job()
    job = LiveJob(**{**job.__dict__, "media": MediaSource(path=str(tmp_path / "gone.mp4"))})
    with pytest.raises(ProviderError) as refused:
        runner(job).run()
    assert refused.value.kind == "permanent" and fake.calls["init"] == 0


# ---- creator_info refusals -----------------------------------------------------------------------

def test_a_clip_longer_than_the_creator_may_post_is_refused_before_init(fake, runner, make_job):
    fake.max_video_post_duration_sec = 60
    with pytest.raises(ProviderError) as refused:
        runner(make_job(duration=61)).run()
    assert refused.value.kind == "permanent"
    assert "61 s" in str(refused.value) and "60 s" in str(refused.value)
    assert fake.calls["init"] == 0


def test_a_privacy_level_the_creator_does_not_offer_is_refused(fake, runner, make_job):
    fake.privacy_level_options = ["FOLLOWER_OF_CREATOR", "SELF_ONLY"]
    with pytest.raises(ProviderError) as refused:
        runner(make_job(privacy_level="PUBLIC_TO_EVERYONE")).run()
    assert refused.value.kind == "permanent"
    assert "FOLLOWER_OF_CREATOR, SELF_ONLY" in str(refused.value)
    assert fake.calls["init"] == 0


def test_no_privacy_level_chosen_is_refused_naming_the_options(fake, runner, make_job):
    job = make_job()
    job = LiveJob(**{**job.__dict__, "options": {}})
    with pytest.raises(ProviderError) as refused:
        runner(job).run()
    assert refused.value.kind == "permanent" and "Choose a TikTok privacy level" in str(refused.value)
    assert "PUBLIC_TO_EVERYONE" in str(refused.value)
    assert fake.calls["init"] == 0


def test_an_admins_default_privacy_level_is_used_when_none_was_chosen(fake, runner, make_job):
    job = make_job()
    job = LiveJob(**{**job.__dict__, "options": {}})
    run = runner(job, TIKTOK_DEFAULT_PRIVACY_LEVEL="mutual_follow_friends")
    assert run.run().outcome.success
    assert fake.post_for(run.state["publish_id"]).post_info["privacy_level"] == \
        "MUTUAL_FOLLOW_FRIENDS"


@pytest.mark.parametrize("code, kind", [
    ("spam_risk_user_banned_from_posting", "permanent"),
    ("spam_risk_too_many_posts", "transient"),
])
def test_a_creator_who_cannot_post_is_stopped_at_prepare(fake, runner, make_job, code, kind):
    fake.creator_error = code
    with pytest.raises(ProviderError) as refused:
        runner(make_job()).run()
    assert (refused.value.kind, refused.value.code) == (kind, code)
    assert fake.calls["init"] == 0


def test_an_unaudited_app_posting_publicly_is_refused(fake, runner, make_job):
    fake.audited = False
    with pytest.raises(ProviderError) as refused:
        runner(make_job(privacy_level="PUBLIC_TO_EVERYONE")).run()
    assert refused.value.code == "unaudited_client_can_only_post_to_private_accounts"
    assert refused.value.kind == "permanent"


def test_a_caption_over_2200_utf16_units_is_refused(fake, runner, make_job):
    with pytest.raises(ProviderError) as refused:
        runner(make_job(caption="😀" * 1101)).run()  # 1101 characters, 2202 UTF-16 units
    assert refused.value.kind == "permanent" and fake.calls["init"] == 0


# ---- the error table, row by row -----------------------------------------------------------------

# Kinds as platforms.md states them (written out here, not read from the client's table).
ERROR_ROWS = [
    ("access_token_invalid", 401, "auth"),
    ("scope_not_authorized", 401, "auth"),
    ("scope_permission_missed", 401, "auth"),
    ("rate_limit_exceeded", 429, "transient"),
    ("spam_risk_too_many_posts", 403, "transient"),
    ("spam_risk_too_many_pending_share", 403, "transient"),
    ("spam_risk_user_banned_from_posting", 403, "permanent"),
    ("unaudited_client_can_only_post_to_private_accounts", 403, "permanent"),
    ("privacy_level_option_mismatch", 400, "permanent"),
    ("invalid_params", 400, "permanent"),
    ("invalid_file_upload", 400, "permanent"),
    ("url_ownership_unverified", 403, "permanent"),
    ("internal_error", 500, "transient"),
    ("some_code_tiktok_adds_later", 400, "permanent"),
]


@pytest.mark.parametrize("code, http_status, kind", ERROR_ROWS)
def test_each_init_error_code_is_classified(fake, runner, make_job, code, http_status, kind):
    fake.fail("init", code, http_status=http_status, message=f"TikTok says {code}")
    run = runner(make_job())
    run.step("prepare")
    with pytest.raises(ProviderError) as raised:
        run.step("upload")
    error = raised.value
    assert (error.kind, error.code, error.status) == (kind, code, http_status)
    assert str(error) == f"TikTok says {code}"
    assert error.trace_id  # TikTok's log_id
    assert "publish_id" not in run.state and fake.published == []


@pytest.mark.parametrize("http_status, kind", [(503, "transient"), (500, "transient"),
                                               (429, "transient"), (401, "auth"),
                                               (404, "permanent")])
def test_an_answer_without_a_body_is_judged_by_its_status(fake, runner, make_job, http_status,
                                                          kind):
    fake.fail("creator_info", None, http_status=http_status)
    with pytest.raises(ProviderError) as raised:
        runner(make_job()).step("prepare")
    assert raised.value.kind == kind and f"HTTP {http_status}" in str(raised.value)


def test_the_real_rate_limit_of_init_is_transient(fake, make_client, make_job, clock):
    client = make_client()
    for attempt in range(7):
        run = Runner(client, make_job(), clock)
        run.step("prepare")
        if attempt < 6:
            run.step("upload")
        else:
            with pytest.raises(ProviderError) as limited:
                run.step("upload")
    assert (limited.value.kind, limited.value.code) == ("transient", "rate_limit_exceeded")
    assert fake.calls["init"] == 7 and len(fake.posts) == 6


def test_a_revoked_token_is_an_auth_error(fake, runner, make_job):
    fake.revoked.add(TOKEN)
    with pytest.raises(ProviderError) as refused:
        runner(make_job()).step("prepare")
    assert (refused.value.kind, refused.value.code) == ("auth", "access_token_invalid")


@pytest.mark.parametrize("mode", ["disconnect", "hang"])
def test_a_lost_answer_to_the_final_chunk_is_unknown_and_reconciles_as_published(
        fake, runner, make_job, clock, mode):
    fake.drop("upload_final", mode=mode, hang_seconds=1.5)
    run = runner(make_job(25 * MIB), PROVIDER_HTTP_TIMEOUT=0.5)
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "unknown"
    assert run.state["final_chunk_sent"] is True
    publish_id = run.state["publish_id"]
    assert fake.final_chunks[publish_id] == 1

    with pytest.raises(ProviderError) as still:
        run.client.reconcile(run.job, run.state)  # TikTok is still processing it
    assert still.value.kind == "unknown" and still.value.retry_after
    clock.advance(60)
    settled = run.client.reconcile(run.job, run.state)
    assert settled.success and settled.external_url
    assert fake.published == [publish_id] and fake.final_chunk_puts[publish_id] == 1


def test_a_lost_answer_to_a_middle_chunk_is_transient_and_resumes(fake, runner, make_job):
    fake.drop("upload", mode="hang", hang_seconds=1.0)
    run = runner(make_job(25 * MIB), PROVIDER_HTTP_TIMEOUT=0.4)
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "transient"
    assert run.state["uploaded_bytes"] == 0  # the answer was lost: not acknowledged here
    result = run.run(start="upload")  # TikTok says it has chunk 1: continue at chunk 2
    assert result.outcome.success
    assert puts(fake) == [f"bytes 0-{10 * MIB - 1}/{25 * MIB}",
                          f"bytes {10 * MIB}-{25 * MIB - 1}/{25 * MIB}"]


def test_a_lost_answer_to_creator_info_is_transient(fake, runner, make_job):
    fake.drop("creator_info", mode="disconnect")
    with pytest.raises(ProviderError) as lost:
        runner(make_job()).step("prepare")
    assert lost.value.kind == "transient"


def test_a_lost_answer_to_a_pull_init_is_unknown_and_never_sent_again(fake, runner, make_job):
    fake.drop("init", mode="disconnect")
    run = runner(make_job(public_url="https://media.example.com/1.mp4"))
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "unknown"
    with pytest.raises(ProviderError) as again:
        run.step("upload")
    assert again.value.kind == "unknown"
    assert fake.calls["init"] == 1
    assert run.client.reconcile(run.job, run.state) is None  # only the lost publish id could tell


def test_a_lost_answer_to_a_file_init_is_transient_and_nothing_is_posted(fake, runner, make_job):
    fake.drop("init", mode="disconnect")
    run = runner(make_job())
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "transient"
    assert run.run(start="upload").outcome.success  # a fresh init: the orphan never posts
    assert len(fake.published) == 1


def test_a_server_error_on_the_final_chunk_is_unknown_then_settles_as_not_published(
        fake, runner, make_job):
    fake.fail("upload_final", "internal_error")
    run = runner(make_job(25 * MIB))
    with pytest.raises(ProviderError) as lost:
        run.run()
    assert lost.value.kind == "unknown"
    settled = run.client.reconcile(run.job, run.state)
    assert not settled.success and settled.error_kind == "transient"
    assert "nothing was posted" in settled.error_message
    assert fake.published == []


# ---- resuming from saved state -------------------------------------------------------------------

def test_killed_right_after_init_resumes_without_a_second_init(fake, runner, make_job):
    run = runner(make_job(25 * MIB))
    run.kill_when = lambda patch: "publish_id" in patch
    with pytest.raises(Killed):
        run.run()
    assert run.state["publish_id"] and run.state["upload_url"]
    assert run.run(start="upload").outcome.success
    assert fake.calls["init"] == 1
    assert fake.published == [run.state["publish_id"]]


@pytest.mark.parametrize("saved", [True, False], ids=["offset-saved", "offset-lost"])
def test_killed_after_a_chunk_resumes_at_tiktoks_count(fake, runner, make_job, saved):
    size = 35 * MIB
    run = runner(make_job(size))
    run.kill_when = lambda patch: patch.get("uploaded_bytes") == 20 * MIB
    run.kill_saves = saved
    with pytest.raises(Killed):
        run.run()
    assert run.state["uploaded_bytes"] == (20 * MIB if saved else 10 * MIB)
    assert run.run(start="upload").outcome.success
    assert puts(fake) == [f"bytes 0-{10 * MIB - 1}/{size}", f"bytes {10 * MIB}-{20 * MIB - 1}/{size}",
                          f"bytes {20 * MIB}-{size - 1}/{size}"]
    assert fake.calls["init"] == 1


def test_killed_after_marking_the_final_chunk_sends_it_once(fake, runner, make_job):
    run = runner(make_job(25 * MIB))
    run.kill_when = lambda patch: patch.get("final_chunk_sent") is True
    with pytest.raises(Killed):
        run.run()
    publish_id = run.state["publish_id"]
    assert fake.final_chunk_puts[publish_id] == 0  # marked, never sent
    assert run.run(start="upload").outcome.success
    assert fake.final_chunk_puts[publish_id] == 1 and fake.final_chunks[publish_id] == 1
    assert fake.published == [publish_id]


def test_killed_after_the_final_chunk_never_sends_it_again(fake, runner, make_job):
    size = 25 * MIB
    run = runner(make_job(size))
    run.kill_when = lambda patch: patch.get("uploaded_bytes") == size
    run.kill_saves = False  # TikTok has the whole file; our log does not know it
    with pytest.raises(Killed):
        run.run()
    publish_id = run.state["publish_id"]
    assert run.state["final_chunk_sent"] is True
    assert run.run(start="upload").outcome.success
    assert fake.final_chunk_puts[publish_id] == 1
    assert fake.published == [publish_id]


def test_an_upload_resumed_after_its_url_expired_starts_again(fake, runner, make_job, clock):
    run = runner(make_job(25 * MIB))
    run.kill_when = lambda patch: patch.get("uploaded_bytes") == 10 * MIB
    with pytest.raises(Killed):
        run.run()
    clock.advance(3601)  # the worker comes back after the URL's hour
    with pytest.raises(ProviderError) as expired:
        run.run(start="upload")
    assert (expired.value.kind, expired.value.restart) == ("transient", True)
    stale = run.state["publish_id"]
    run.state = {}  # restart: fresh platform objects, as the pipeline does
    assert run.run().outcome.success
    assert fake.published == [run.state["publish_id"]] and stale not in fake.published


def test_without_tiktoks_count_a_resume_trusts_its_own_offset_and_never_resends_the_final(
        fake, runner, make_job):
    fake.reports_uploaded_bytes = False
    size = 35 * MIB
    run = runner(make_job(size))
    run.kill_when = lambda patch: patch.get("uploaded_bytes") == 20 * MIB
    with pytest.raises(Killed):
        run.run()
    run.kill_when = lambda patch: patch.get("uploaded_bytes") == size
    run.kill_saves = False
    with pytest.raises(Killed):
        run.run(start="upload")  # continues at chunk 3 from the saved offset
    assert run.run(start="upload").outcome.success  # TikTok did not say: no resend
    publish_id = run.state["publish_id"]
    assert fake.final_chunk_puts[publish_id] == 1
    assert puts(fake) == [f"bytes 0-{10 * MIB - 1}/{size}", f"bytes {10 * MIB}-{20 * MIB - 1}/{size}",
                          f"bytes {20 * MIB}-{size - 1}/{size}"]
    assert fake.published == [publish_id]


def test_a_video_sent_to_the_creators_inbox_is_a_success_without_a_link(fake, runner, make_job):
    fake.inbox_delivery = True
    result = runner(make_job()).run()
    assert result.outcome.success and result.outcome.external_url is None
    assert "inbox" in result.details["inbox"]


def test_processing_and_confirm_run_again_from_saved_state_harmlessly(fake, runner, make_job):
    run = runner(make_job())
    result = run.run()
    saved = dict(run.state)
    again = run.client.run_step("processing", run.job, saved, run.checkpoint)
    assert again.next_step == "confirm"
    twice = run.client.run_step("confirm", run.job, saved, run.checkpoint)
    assert twice.outcome == result.outcome
    calls = sum(fake.calls.values())
    skipped = run.client.run_step("finalize", run.job, saved, run.checkpoint)
    assert skipped.next_step == "confirm"  # Direct Post has no publish call
    assert sum(fake.calls.values()) == calls
    assert fake.calls["init"] == 1 and fake.published == [run.state["publish_id"]]


def test_upload_run_again_after_completion_goes_straight_to_processing(fake, runner, make_job):
    run = runner(make_job(25 * MIB))
    run.run()
    result = run.step("upload")
    assert result.next_step == "processing"
    assert fake.calls["init"] == 1 and fake.final_chunk_puts[run.state["publish_id"]] == 1


# ---- reconcile -----------------------------------------------------------------------------------

def test_reconcile_without_a_publish_id_is_not_published(runner, make_job):
    run = runner(make_job())
    outcome = run.client.reconcile(run.job, {})
    assert not outcome.success and outcome.error_kind == "transient"


def test_reconcile_a_completed_post(fake, runner, make_job, clock):
    run = runner(make_job())
    run.steps(2)
    clock.advance(60)
    outcome = run.client.reconcile(run.job, run.state)
    post = fake.post_for(run.state["publish_id"])
    assert outcome.success and outcome.external_post_id == str(post.post_id)


def test_reconcile_a_completed_post_still_in_moderation(fake, runner, make_job, clock):
    fake.moderation_seconds = 3600
    run = runner(make_job())
    run.steps(2)
    clock.advance(60)
    outcome = run.client.reconcile(run.job, run.state)
    assert outcome.success and outcome.external_post_id is None


def test_reconcile_a_failed_post(fake, runner, make_job, clock):
    fake.fail_reason = "frame_rate_check_failed"
    run = runner(make_job())
    run.steps(2)
    clock.advance(60)
    outcome = run.client.reconcile(run.job, run.state)
    assert not outcome.success and outcome.error_kind == "permanent"
    assert "frame_rate_check_failed" in outcome.error_message


def test_reconcile_a_publish_id_tiktok_does_not_know_cannot_tell(runner, make_job):
    run = runner(make_job())
    state = {"publish_id": "v_pub_file~v2-1.0000000000000000000", "source": "FILE_UPLOAD",
             "chunk_plan": {"video_size": 1, "chunk_size": 1, "total_chunk_count": 1}}
    assert run.client.reconcile(run.job, state) is None


def test_reconcile_asks_again_later_when_the_token_is_refused(fake, runner, make_job):
    run = runner(make_job())
    run.steps(2)
    fake.revoked.add(TOKEN)
    with pytest.raises(ProviderError) as refused:
        run.client.reconcile(run.job, run.state)
    assert refused.value.kind == "auth"


# ---- chunk rules ---------------------------------------------------------------------------------

MB = 1000 * 1000
READINGS = [MIB, MB]  # TikTok's "MB" read in binary and in decimal: plans must pass both


@pytest.mark.parametrize("size, chunk, expected", [
    (1, 10 * MIB, (1, 1)),
    (5 * MB - 1, 10 * MIB, (5 * MB - 1, 1)),             # under 5 MB: whole
    (5 * MIB - 1, 10 * MIB, (5 * MIB - 1, 1)),
    (5 * MIB, 5 * MIB, (5 * MIB, 1)),
    (5 * MIB + 1, 5 * MIB, (5 * MIB, 1)),                # the extra byte joins the last chunk
    (10 * MIB, 10 * MIB, (10 * MIB, 1)),
    (64 * MB, 64 * MB, (64 * MB, 1)),                    # 64 MB may still go whole
    (64 * MB + 1, 64 * MB, (32 * MB, 2)),                # over 64 MB: never one chunk
    (64 * MIB, 64 * MB, (32 * MIB, 2)),
    (192 * MB - 1, 64 * MB, (64 * MB, 2)),               # the last chunk 128 MB - 1
    (37 * MIB - 123, 10 * MIB, (10 * MIB, 3)),
    (5 * MIB * 1000, 5 * MIB, (5 * MIB, 1000)),          # exactly 1000 chunks
    (5 * MIB * 1001, 5 * MIB, (5 * MIB + 5243, 999)),    # past 1000: chunks grow
])
def test_chunk_plan_boundaries(size, chunk, expected):
    plan = plan_chunks(size, chunk)
    assert (plan.chunk_size, plan.total_chunk_count) == expected
    first, last = plan.byte_range(plan.total_chunk_count - 1)
    assert last == size - 1 and last - first + 1 <= 128 * MB
    assert plan.total_chunk_count == size // plan.chunk_size <= 1000
    if size <= 4 * 1024 * MIB:
        for mb in READINGS:
            assert _check_chunks(plan.as_dict(), mb) is None  # and the fake agrees


@pytest.mark.parametrize("size", [1, 4 * MIB, 5 * MB, 5 * MIB, 9 * MIB, 64 * MB + 5, 64 * MIB + 5,
                                  127 * MIB, 129 * MIB, 1000 * MIB, 4 * 1024 * MIB])
@pytest.mark.parametrize("chunk", [5 * MIB, 10 * MIB, 33 * MIB, 64 * MB])
@pytest.mark.parametrize("mb", READINGS, ids=["MiB", "MB"])
def test_every_plan_satisfies_tiktoks_rules_in_either_reading(size, chunk, mb):
    assert _check_chunks(plan_chunks(size, chunk).as_dict(), mb) is None


@pytest.mark.parametrize("source_info, why", [
    ({"video_size": 4 * MIB, "chunk_size": 2 * MIB, "total_chunk_count": 2}, "under 5 MB"),
    ({"video_size": 30 * MIB, "chunk_size": 4 * MIB, "total_chunk_count": 7}, "5-64"),
    ({"video_size": 30 * MIB, "chunk_size": 65 * MIB, "total_chunk_count": 1}, "5-64"),
    ({"video_size": 30 * MIB, "chunk_size": 10 * MIB, "total_chunk_count": 4}, "floor"),
    ({"video_size": 100 * MIB, "chunk_size": 64 * MIB, "total_chunk_count": 1}, "over 64"),
    ({"video_size": 30 * MIB, "chunk_size": 10 * MIB, "total_chunk_count": "3"}, "integers"),
])
def test_the_fake_refuses_bad_chunk_plans(fake, server, source_info, why):
    body = {"post_info": {"title": "", "privacy_level": "SELF_ONLY", "brand_content_toggle": False,
                          "brand_organic_toggle": False},
            "source_info": {"source": "FILE_UPLOAD", **source_info}}
    answer = httpx.post(f"{server.url}/v2/post/publish/video/init/", json=body,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_params"
    assert why in answer.json()["error"]["message"]


def test_the_fake_refuses_chunks_out_of_order(fake, runner, make_job):
    run = runner(make_job(25 * MIB))
    run.kill_when = lambda patch: "publish_id" in patch
    with pytest.raises(Killed):
        run.run()
    answer = httpx.put(run.state["upload_url"], content=b"\0" * 10,
                       headers={"Content-Range": f"bytes {10 * MIB}-{10 * MIB + 9}/{25 * MIB}",
                                "Content-Type": "video/mp4"})
    assert answer.status_code == 416
    assert fake.post_for(run.state["publish_id"]).received == 0


# ---- streaming, secrets, registration, settings --------------------------------------------------

def test_a_large_file_uploads_with_flat_memory(fake, make_client, make_job, clock):
    """64 MB chunks: buffering a chunk (or the file) would show; streaming stays flat."""
    client = make_client(TIKTOK_CHUNK_BYTES=64 * 1000 * 1000)

    def upload_peak(size: int) -> float:
        run = Runner(client, make_job(size), clock)
        run.step("prepare")
        tracemalloc.start()
        try:
            run.step("upload")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert fake.post_for(run.state["publish_id"]).received == size
        return peak

    # The least of three: the fake server reads in this process too, so a run on a busy machine
    # can catch a block or two more of either side in flight at its peak.
    small = min(upload_peak(70 * MIB) for _ in range(3))   # 2 chunks
    large = min(upload_peak(200 * MIB) for _ in range(3))  # 3 chunks, the last 81 MB
    assert large < 16 * MIB, f"peak {large / MIB:.1f} MiB while uploading 200 MiB"
    assert large < small + 2 * MIB, f"{small / MIB:.1f} MiB for 70 MiB, {large / MIB:.1f} for 200"


def test_no_secret_reaches_a_log_line_a_message_or_the_state(fake, runner, make_job, caplog):
    caplog.set_level(logging.DEBUG)
    run = runner(make_job(25 * MIB))
    result = run.run()
    fake.fail("creator_info", "access_token_invalid")
    with pytest.raises(ProviderError) as refused:
        run.step("prepare")
    fake.drop("upload_final", mode="disconnect")
    with pytest.raises(ProviderError) as lost:
        runner(make_job(25 * MIB)).run()
    text = " ".join([caplog.text, str(refused.value), str(lost.value), repr(run.client),
                     json.dumps(run.state), json.dumps([r.details for _, r in run.results]),
                     repr(run.job)])
    for secret in SECRETS:
        assert secret not in text
    assert "upload_token" not in caplog.text
    assert result.outcome.success


def test_the_live_client_is_registered():
    assert LIVE_CLIENTS["tiktok"] is TikTokLiveClient
    assert TikTokLiveClient.name == "tiktok_content_posting"


@pytest.mark.parametrize("env", [{"TIKTOK_CHUNK_BYTES": str(5 * MIB - 1)},
                                 {"TIKTOK_CHUNK_BYTES": str(64 * 1000 * 1000 + 1)},
                                 {"TIKTOK_DEFAULT_PRIVACY_LEVEL": "EVERYONE"}])
def test_bad_tiktok_settings_stop_the_start(tmp_path, env):
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, {"CREDENTIALS_KEYS": Fernet.generate_key().decode(),
                               "SECRET_KEY": "x", **env})
    assert next(iter(env)) in str(refused.value)


def test_tiktok_settings_defaults(tmp_path):
    config = load_config(tmp_path, {"CREDENTIALS_KEYS": Fernet.generate_key().decode(),
                                    "SECRET_KEY": "x"})
    assert config["TIKTOK_CHUNK_BYTES"] == 10 * MIB
    assert config["TIKTOK_DEFAULT_PRIVACY_LEVEL"] is None
    assert config["TIKTOK_API_URL"] == "https://open.tiktokapis.com"
