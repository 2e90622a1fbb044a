"""What a video is (the probe), the media rules per platform, the refusal of a publish that
breaks them before any platform call, and the MediaSource handed to the publishing engine."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest
from itsdangerous import TimestampSigner

from dashboard.config import PLATFORM_LIMIT_DEFAULTS, load_config
from dashboard.media.clips import create_clip_with_video, media_facts
from dashboard.media.probe import MediaFacts, NotAVideo, probe_file
from dashboard.media.rules import check_media
from dashboard.media.sources import media_source_for
from dashboard.publishing import simulator

from api_support import assert_problem, publish, written_rows
from fakes import FakeServer
from media_support import LANDSCAPE, VERTICAL, VERTICAL_15FPS, WEBM, VideoSpec

# The probe -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    (VERTICAL, dict(container="mp4", video_codec="h264", width=360, height=640, frame_rate=30.0,
                    audio_codec="aac", audio_channels=2, audio_sample_rate=44100)),
    (LANDSCAPE, dict(container="mp4", width=640, height=360, audio_codec=None, audio_channels=None)),
    (VERTICAL_15FPS, dict(frame_rate=15.0, width=360, height=640)),
    (WEBM, dict(container="webm", content_type="video/webm", video_codec="vp9", width=640)),
    (VideoSpec(faststart=False), dict(container="mp4", height=640)),  # the index at the end
])
def test_probe_reads_the_facts(videos, spec, expected):
    path = videos.video(spec)
    facts = probe_file(path)
    assert facts.size_bytes == path.stat().st_size
    assert facts.duration_seconds == pytest.approx(spec.seconds, abs=0.1)
    assert facts.bit_rate and facts.bit_rate > 0
    for name, value in expected.items():
        assert getattr(facts, name) == value, name


@pytest.mark.parametrize(("make", "words"), [
    (lambda v: v.not_a_video(), "not a video file"),
    (lambda v: v.image(), "an image"),
    (lambda v: v.truncated(VERTICAL, 0.6), "truncated"),
    (lambda v: v.truncated(VERTICAL, 0.97), "truncated"),
    (lambda v: v.truncated(VideoSpec(faststart=False), 0.9), "not a video file"),  # no index left
    (lambda v: v.truncated(WEBM, 0.6), "truncated"),
])
def test_probe_refuses_what_is_not_a_whole_video(videos, make, words):
    with pytest.raises(NotAVideo, match=words):
        probe_file(make(videos))


def test_an_empty_file_is_not_a_video(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(NotAVideo, match="empty"):
        probe_file(tmp_path / "empty.mp4")


# The rules -------------------------------------------------------------------------------------

LIMITS = PLATFORM_LIMIT_DEFAULTS
PHONE = MediaFacts(container="mp4", content_type="video/mp4", size_bytes=40 << 20, duration_seconds=30.0,
                   video_codec="h264", width=1080, height=1920, frame_rate=30.0, bit_rate=8_000_000,
                   video_bit_rate=7_800_000, audio_codec="aac", audio_channels=2, audio_sample_rate=48000)


def messages(platform, **changes):
    return [e.message for e in check_media(platform, LIMITS[platform], dataclasses.replace(PHONE, **changes))]


def test_a_phone_video_suits_every_platform():
    assert all(messages(platform) == [] for platform in LIMITS)


@pytest.mark.parametrize(("platform", "changes", "message"), [
    ("tiktok", dict(frame_rate=15.0), "TikTok needs at least 23 fps; this clip has 15"),
    ("tiktok", dict(frame_rate=120.0), "TikTok allows at most 60 fps; this clip has 120"),
    ("instagram", dict(frame_rate=23.976), None),
    ("instagram", dict(container="webm"), "Instagram takes containers mp4 or mov; this clip is webm"),
    ("instagram", dict(video_codec="vp9"), "Instagram takes video codecs h264 or hevc; this clip is vp9"),
    ("instagram", dict(audio_codec="opus"), "Instagram takes audio codecs aac; this clip is opus"),
    ("instagram", dict(audio_codec=None, audio_channels=None, audio_sample_rate=None), None),
    ("instagram", dict(audio_sample_rate=96000),
     "Instagram allows at most 48000 Hz of audio sample rate; this clip has 96000"),
    ("instagram", dict(audio_channels=6), "Instagram allows at most 2 audio channels; this clip has 6"),
    ("instagram", dict(width=2160, height=3840), "Instagram allows at most 1920 pixels of width; this clip has 2160"),
    ("instagram", dict(size_bytes=400 << 20), "Instagram allows at most 300.0 MB of file size; this clip has 400.0 MB"),
    ("instagram", dict(video_bit_rate=30_000_000),
     "Instagram allows at most 25 Mbps of video bit rate; this clip has 30 Mbps"),
    ("tiktok", dict(width=320, height=568), "TikTok needs each side to be at least 360 pixels; this clip is 320x568"),
    ("tiktok", dict(width=2160, height=4800), "TikTok allows each side at most 4096 pixels; this clip is 2160x4800"),
    ("tiktok", dict(container="mov", video_codec="vp8"), None),
    ("tiktok", dict(size_bytes=5 << 30), "TikTok allows at most 4,096.0 MB of file size; this clip has 5,120.0 MB"),
    ("youtube", dict(width=1920, height=1080),
     "YouTube Shorts must be vertical or square; this clip is 1920x1080, an aspect ratio of 1.7778"),
    ("youtube", dict(width=1080, height=1080), None),
    ("youtube", dict(container="mkv", video_codec="av1"), None),
])
def test_each_media_rule_is_named(platform, changes, message):
    found = messages(platform, **changes)
    assert found == ([message] if message else [])


def test_media_rules_are_settings():
    limits = load_config("/tmp/unused-instance", {
        "TIKTOK_FRAME_RATE_MIN": "10", "INSTAGRAM_CONTAINERS": "mp4, WebM",
        "YOUTUBE_ASPECT_RATIO_MAX": "2.0"})["PLATFORM_LIMITS"]
    slow_wide_webm = dataclasses.replace(PHONE, frame_rate=15.0, container="webm", width=1920, height=1080)
    assert check_media("tiktok", limits["tiktok"], slow_wide_webm) == []
    assert check_media("youtube", limits["youtube"], slow_wide_webm) == []
    assert limits["instagram"]["containers"] == ("mp4", "webm")


# Before any platform call ----------------------------------------------------------------------

@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


def test_a_publish_breaking_a_media_rule_is_refused_before_any_call(client, db, editor, videos, monkeypatch):
    clip = create_clip_with_video(db, {"title": "Slow"}, videos.video(VERTICAL_15FPS), "slow.mp4")
    calls = []
    original = simulator.PlatformSimulator.publish
    monkeypatch.setattr(simulator.PlatformSimulator, "publish",
                        lambda self, job: calls.append(job.platform) or original(self, job))
    before = written_rows(db)

    body = assert_problem(publish(client, editor, clip_id=clip.id, platform="tiktok",
                                  metadata={"caption": "hi"}), 400, "clip.media")
    assert "TikTok needs at least 23 fps; this clip has 15" in body["detail"]
    assert calls == [] and written_rows(db) == before
    assert publish(client, editor, clip_id=clip.id, platform="youtube").json["success"] is True
    assert calls == ["youtube"]


def test_scheduling_a_clip_a_platform_refuses_is_400(client, db, editor, videos):
    clip = create_clip_with_video(db, {"title": "Wide"}, videos.video(LANDSCAPE), "wide.mp4")
    before = written_rows(db)
    response = client.post("/publishing/schedule", headers=editor, json={
        "clip_id": str(clip.id), "platform": "youtube", "scheduled_at": "2030-01-01T09:00:00Z"})
    assert "YouTube Shorts must be vertical or square" in assert_problem(response, 400, "clip.media")["detail"]
    assert written_rows(db) == before


# What the engine gets --------------------------------------------------------------------------

def test_media_source_of_an_uploaded_clip_is_its_stored_file(app, db, videos):
    path = videos.video(VERTICAL)
    data = path.read_bytes()
    clip = create_clip_with_video(db, {"title": "T"}, path, "t.mp4")
    source = media_source_for(clip)
    assert source.public_url is None  # MEDIA_PUBLIC_URL is not set
    assert source.size == len(data) and source.content_type == "video/mp4"
    with source.open() as handle:
        assert handle.read() == data
    assert b"".join(source.read_range(100, 50)) == data[100:150]
    assert media_facts(clip).frame_rate == 30.0


def test_media_source_of_a_url_clip_is_its_url(make_clip, tmp_path):
    assert media_source_for(make_clip(media="https://cdn.example.com/a.mp4")).public_url == "https://cdn.example.com/a.mp4"
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"x")
    source = media_source_for(make_clip(media=str(local)))
    assert source.path == str(local) and source.public_url is None
    assert media_source_for(make_clip(media="/nowhere/a.mp4")) == type(source)()


def test_signed_public_url_serves_the_video_until_it_expires(app, db, videos, monkeypatch):
    path = videos.video(VERTICAL)
    data = path.read_bytes()
    clip = create_clip_with_video(db, {"title": "T"}, path, "t.mp4")
    with FakeServer(app) as server:
        app.config["MEDIA_PUBLIC_URL"] = server.url
        url = media_source_for(clip, local_file=False).public_url
        assert url.startswith(f"{server.url}/media/")
        whole = httpx.get(url)  # no session, no token: the signature is the permission
        assert whole.status_code == 200 and whole.content == data
        part = httpx.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert httpx.get(url[:-3] + "abc").status_code == 403

        ttl = app.config["MEDIA_URL_TTL_SECONDS"]
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - ttl - 5)
        expired = media_source_for(clip, local_file=False).public_url
        monkeypatch.undo()
        assert httpx.get(expired).status_code == 403
