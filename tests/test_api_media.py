"""Uploaded videos through the JSON API: multipart create and replace, the resumable (tus)
upload interrupted and resumed over a real HTTP connection, refusals that keep nothing, range
requests, covers, deletion and the sweep of stale uploads."""

from __future__ import annotations

import base64
import io
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from dashboard.media.uploads import staged_path, sweep_uploads
from dashboard.models import Clip, LedgerEvent, MediaUpload, utcnow

from api_support import assert_problem, clip_events, count
from fakes import FakeServer
from media_support import LANDSCAPE, VERTICAL, VERTICAL_15FPS, WEBM, frame_red
from outage import write_without_waiting

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


def stored_files(app) -> list[Path]:
    """Every object in the local media storage, and every staged upload."""
    roots = [Path(app.config["MEDIA_STORAGE_URL"].removeprefix("file://")),
             Path(app.config["MEDIA_UPLOAD_DIR"])]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def upload_clip(client, headers, path: Path, **fields):
    data = {"title": "Phone video", **fields,
            "file": (io.BytesIO(path.read_bytes()), path.name)}
    return client.post("/api/clips", headers=headers, data=data, content_type="multipart/form-data")


def everything(db, app):
    return count(db, Clip), count(db, LedgerEvent), count(db, MediaUpload), stored_files(app)


def metadata(**values) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


# Multipart -------------------------------------------------------------------------------------

def test_multipart_upload_makes_a_clip_with_the_probed_facts(client, db, app, editor, videos):
    path = videos.video(VERTICAL)
    response = upload_clip(client, editor, path, title="Morning run", description="From my phone")

    assert response.status_code == 201, response.json
    clip = response.json
    assert clip["title"] == "Morning run" and clip["description"] == "From my phone"
    media = clip["media"]
    assert media["source"] == "upload" and media["filename"] == path.name
    assert (media["content_type"], media["container"], media["video_codec"], media["audio_codec"]) == (
        "video/mp4", "mp4", "h264", "aac")
    assert (media["width"], media["height"], media["frame_rate"]) == (360, 640, 30.0)
    assert media["size_bytes"] == path.stat().st_size
    assert media["duration_seconds"] == pytest.approx(4.0, abs=0.1)
    assert clip["duration_seconds"] == media["duration_seconds"]  # the probed one
    assert (media["audio_channels"], media["audio_sample_rate"]) == (2, 44100)
    assert media["url"].endswith(f"/api/clips/{clip['id']}/media")
    assert media["thumbnail_url"].endswith(f"/api/clips/{clip['id']}/thumbnail")
    assert all(fit == {"ok": True, "errors": []} for fit in clip["platforms"].values()), clip["platforms"]

    video = client.get(media["url"], headers=editor)
    assert video.status_code == 200 and video.data == path.read_bytes()
    assert video.headers["Accept-Ranges"] == "bytes" and video.mimetype == "video/mp4"
    thumbnail = client.get(media["thumbnail_url"], headers=editor)
    assert thumbnail.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(thumbnail.data))
    assert max(image.size) <= app.config["MEDIA_THUMBNAIL_MAX_SIDE"] and image.size[0] < image.size[1]
    # The default cover is one second in: frame 30.
    assert abs(image.getpixel((5, 5))[0] - frame_red(30)) < 12
    assert [e for e, _ in clip_events(db, clip["id"])] == ["clip_created", "clip_media_uploaded"]


def test_an_upload_keeps_no_other_writer_waiting_while_it_stores_the_video(client, db, editor,
                                                                          videos, monkeypatch):
    """Making the thumbnail and storing the video take a while (minutes for a big file to S3):
    meanwhile another writer that will not wait for a lock (a publish, say) still writes."""
    from dashboard.media import clips as media_clips

    others: list[str] = []
    make_thumbnail = media_clips._thumbnail

    def thumbnail_while_another_writes(path, offset_ms):
        write_without_waiting(db, "Written meanwhile")
        others.append("written")
        return make_thumbnail(path, offset_ms)

    monkeypatch.setattr(media_clips, "_thumbnail", thumbnail_while_another_writes)
    response = upload_clip(client, editor, videos.video(VERTICAL), title="Big upload")

    assert response.status_code == 201, response.json
    assert others == ["written"]
    titles = set(db.session.scalars(select(Clip.title)))
    assert titles == {"Big upload", "Written meanwhile"}


def test_the_platforms_say_which_rules_a_video_breaks(client, editor, videos):
    slow = upload_clip(client, editor, videos.video(VERTICAL_15FPS)).json["platforms"]
    assert slow["tiktok"]["ok"] is False
    fps_rule = {"field": "clip.media", "message": "TikTok needs at least 23 fps; this clip has 15"}
    assert fps_rule in slow["tiktok"]["errors"]
    assert "Instagram needs at least 23 fps; this clip has 15" in [e["message"] for e in slow["instagram"]["errors"]]
    assert slow["youtube"] == {"ok": True, "errors": []}

    wide = upload_clip(client, editor, videos.video(WEBM)).json
    assert wide["media"]["container"] == "webm" and wide["media"]["video_codec"] == "vp9"
    messages = {p: [e["message"] for e in fit["errors"]] for p, fit in wide["platforms"].items()}
    assert messages["tiktok"] == []
    assert "Instagram takes containers mp4 or mov; this clip is webm" in messages["instagram"]
    assert "Instagram takes video codecs h264 or hevc; this clip is vp9" in messages["instagram"]
    assert messages["youtube"] == ["YouTube Shorts must be vertical or square; this clip is 640x360, "
                                   "an aspect ratio of 1.7778"]


@pytest.mark.parametrize("kind", ["not_a_video", "truncated", "image"])
def test_a_file_that_is_not_a_whole_video_is_refused_and_nothing_is_kept(client, db, app, editor,
                                                                        videos, kind):
    path = getattr(videos, kind)()
    before = everything(db, app)
    body = assert_problem(upload_clip(client, editor, path), 400, "file")
    expected = {"not_a_video": "not a video file", "truncated": "truncated", "image": "an image"}[kind]
    assert expected in body["detail"]
    assert everything(db, app) == before


def test_multipart_needs_a_file_and_a_title(client, db, app, editor, videos):
    before = everything(db, app)
    assert_problem(client.post("/api/clips", headers=editor, data={"title": "No file"},
                               content_type="multipart/form-data"), 400, "file")
    path = videos.video(VERTICAL)
    assert_problem(client.post("/api/clips", headers=editor, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(path.read_bytes()), "a.mp4")}), 400, "title")
    assert everything(db, app) == before


def test_viewers_cannot_upload(client, db, app, api_headers, videos):
    viewer = api_headers("viewer")
    before = everything(db, app)
    assert_problem(upload_clip(client, viewer, videos.video(VERTICAL)), 403)
    assert everything(db, app) == before


def test_uploads_may_be_large_but_other_bodies_keep_the_1_mib_limit(client, db, app, editor, videos):
    big_json = {"title": "T", "media": "https://cdn.example.com/a.mp4", "description": "x" * (2 << 20)}
    assert_problem(client.post("/api/clips", headers=editor, json=big_json), 413)
    assert_problem(client.post("/publishing/publish", headers=editor, json=big_json), 413)

    path = videos.video(VERTICAL)
    padded = path.with_name("padded.mp4")  # an MP4 over 1 MiB: the probe ignores trailing bytes
    padded.write_bytes(path.read_bytes() + b"\0" * (2 << 20))
    assert upload_clip(client, editor, padded).status_code == 201

    app.config["MEDIA_MAX_UPLOAD_BYTES"] = 1 << 20
    before = everything(db, app)
    assert_problem(upload_clip(client, editor, padded), 413)
    assert everything(db, app) == before


# Replace, cover, delete ----------------------------------------------------------------------

def test_put_media_replaces_the_video_and_deletes_the_old_file(client, db, app, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    old_files = stored_files(app)

    landscape = videos.video(LANDSCAPE)
    response = client.put(f"/api/clips/{clip['id']}/media", headers=editor, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(landscape.read_bytes()), "wide.mp4")})

    assert response.status_code == 200, response.json
    media = response.json["media"]
    assert (media["width"], media["height"], media["audio_codec"], media["filename"]) == (640, 360, None, "wide.mp4")
    assert response.json["platforms"]["youtube"]["ok"] is False
    assert not set(old_files) & set(stored_files(app)) and len(stored_files(app)) == 2
    assert client.get(media["url"], headers=editor).data == landscape.read_bytes()
    assert clip_events(db, clip["id"])[-1][0] == "clip_media_replaced"


def test_put_media_refuses_a_non_video_and_keeps_the_old_one(client, db, app, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    before = everything(db, app)
    assert_problem(client.put(f"/api/clips/{clip['id']}/media", headers=editor, content_type="multipart/form-data",
                              data={"file": (io.BytesIO(b"GIF89a not really"), "x.gif")}), 400, "file")
    assert everything(db, app) == before
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).json["media"] == clip["media"]
    assert_problem(client.put(f"/api/clips/{uuid.uuid4()}/media", headers=editor, content_type="multipart/form-data",
                              data={"file": (io.BytesIO(b"x"), "x.mp4")}), 404)


def test_a_url_clip_becomes_an_uploaded_one(client, db, editor, videos):
    clip = client.post("/api/clips", headers=editor, json={
        "title": "T", "media": "https://cdn.example.com/a.mp4", "duration_seconds": 99}).json
    path = videos.video(VERTICAL)
    response = client.put(f"/api/clips/{clip['id']}/media", headers=editor, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(path.read_bytes()), "phone.mp4")})
    assert response.json["media"]["source"] == "upload"
    assert response.json["duration_seconds"] == pytest.approx(4.0, abs=0.1)


def test_an_uploaded_clip_keeps_its_probed_duration_and_file(client, db, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    assert_problem(client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"duration_seconds": 10}),
                   400, "duration_seconds")
    assert_problem(client.patch(f"/api/clips/{clip['id']}", headers=editor,
                                json={"media": "https://x.example/y.mp4"}), 400, "media")
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).json["media"] == clip["media"]


def test_cover_frame_remakes_the_thumbnail(client, db, app, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    response = client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"cover_offset_ms": 3000})
    assert response.status_code == 200, response.json
    assert response.json["media"]["cover_offset_ms"] == 3000
    image = Image.open(io.BytesIO(client.get(response.json["media"]["thumbnail_url"], headers=editor).data))
    assert abs(image.getpixel((5, 5))[0] - frame_red(90)) < 12
    assert len(stored_files(app)) == 2  # the old thumbnail is gone
    assert_problem(client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"cover_offset_ms": 60_000}),
                   400, "cover_offset_ms")
    url_clip = client.post("/api/clips", headers=editor, json={"title": "T", "media": "https://a.example/b.mp4"}).json
    assert_problem(client.patch(f"/api/clips/{url_clip['id']}", headers=editor, json={"cover_offset_ms": 0}),
                   400, "cover_offset_ms")


def test_deleting_a_clip_removes_its_media(client, db, app, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    assert len(stored_files(app)) == 2
    assert client.delete(f"/api/clips/{clip['id']}", headers=editor).status_code == 204
    assert stored_files(app) == []


# Range requests --------------------------------------------------------------------------------

def test_range_requests_answer_206_with_the_bytes_asked_for(client, editor, videos):
    path = videos.video(VERTICAL)
    data = path.read_bytes()
    url = upload_clip(client, editor, path).json["media"]["url"]

    part = client.get(url, headers={**editor, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.data == data[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert part.headers["Content-Length"] == "1000"
    tail = client.get(url, headers={**editor, "Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.data == data[-500:]
    rest = client.get(url, headers={**editor, "Range": f"bytes={len(data) - 10}-"})
    assert rest.data == data[-10:]
    beyond = client.get(url, headers={**editor, "Range": f"bytes={len(data) + 5}-"})
    assert_problem(beyond, 416)
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    etag = part.headers["ETag"]
    assert client.get(url, headers={**editor, "If-None-Match": etag}).status_code == 304


def test_media_of_a_url_clip_or_without_token_is_refused(client, editor):
    clip = client.post("/api/clips", headers=editor, json={"title": "T", "media": "https://a.example/b.mp4"}).json
    assert_problem(client.get(f"/api/clips/{clip['id']}/media", headers=editor), 404)
    assert_problem(client.get(f"/api/clips/{clip['id']}/media"), 401)


# Resumable uploads (tus) -------------------------------------------------------------------

@pytest.fixture
def server(app):
    with FakeServer(app) as running:
        yield running


def send_partial_patch(server, upload_path: str, token_headers: dict, offset: int, chunk: bytes,
                       declared: int) -> None:
    """A PATCH that declares `declared` bytes, sends `chunk` and drops the connection."""
    head = (f"PATCH {upload_path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            f"Authorization: {token_headers['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {declared}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(head.encode() + chunk)
        sock.shutdown(socket.SHUT_WR)  # the client is gone mid-body
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass


def test_tus_upload_interrupted_then_resumed(server, db, app, editor, videos):
    path = videos.video(VERTICAL)
    data = path.read_bytes()
    with httpx.Client(base_url=server.url, headers={**editor, **TUS}, timeout=30) as http:
        options = http.options("/api/uploads")
        assert options.headers["Tus-Version"] == "1.0.0"
        assert "creation" in options.headers["Tus-Extension"]
        created = http.post("/api/uploads", headers={
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="long-take.mp4", title="Long take", description="resumed")})
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        upload_path = httpx.URL(location).path

        first = http.patch(location, content=data[:1000], headers={
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
        assert first.status_code == 204 and first.headers["Upload-Offset"] == "1000"

        send_partial_patch(server, upload_path, editor, 1000, data[1000:5000], declared=len(data) - 1000)
        head = http.head(location)
        assert head.headers["Upload-Length"] == str(len(data))
        offset = int(head.headers["Upload-Offset"])
        assert offset == 5000  # what arrived before the drop is kept
        assert count(db, Clip) == 0
        db.session.rollback()  # SQLite: release the lock before the server writes again

        stale = http.patch(location, content=data[1000:], headers={
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": "1000"})
        assert stale.status_code == 409 and "resume at 5000" in stale.json()["detail"]

        last = http.patch(location, content=data[offset:], headers={
            "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)})
        assert last.status_code == 204, last.text
        assert last.headers["Upload-Offset"] == str(len(data))
        clip = http.get(last.headers["Clip-Location"]).json()
        assert (clip["title"], clip["description"], clip["media"]["filename"]) == (
            "Long take", "resumed", "long-take.mp4")
        assert http.get(clip["media"]["url"]).content == data
        # A client that lost the last answer learns the clip from HEAD.
        again = http.head(location)
        assert again.headers["Upload-Offset"] == str(len(data)) and again.headers["Clip-Id"] == clip["id"]
    assert not list(Path(app.config["MEDIA_UPLOAD_DIR"]).glob("*.part"))


def test_tus_upload_replaces_a_clip_video(client, db, editor, videos):
    clip = upload_clip(client, editor, videos.video(VERTICAL)).json
    data = videos.video(LANDSCAPE).read_bytes()
    created = client.post("/api/uploads", headers={**editor, **TUS, "Upload-Length": str(len(data)),
                                                    "Upload-Metadata": metadata(filename="w.mp4", clip_id=clip["id"])})
    done = client.patch(created.headers["Location"], data=data, headers={
        **editor, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert done.status_code == 204 and done.headers["Clip-Id"] == clip["id"]
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).json["media"]["width"] == 640


def test_tus_refuses_a_non_video_at_the_end_and_keeps_nothing(client, db, app, editor, videos):
    before = everything(db, app)
    data = videos.truncated().read_bytes()
    created = client.post("/api/uploads", headers={**editor, **TUS, "Upload-Length": str(len(data)),
                                                    "Upload-Metadata": metadata(filename="cut.mp4")})
    refused = client.patch(created.headers["Location"], data=data, headers={
        **editor, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    assert "truncated" in assert_problem(refused, 400, "file")["detail"]
    assert everything(db, app) == before
    assert client.head(created.headers["Location"], headers={**editor, **TUS}).status_code == 404


@pytest.mark.parametrize(("headers", "status", "field"), [
    ({"Upload-Length": "ten"}, 400, "Upload-Length"),
    ({"Upload-Length": "0"}, 400, "Upload-Length"),
    ({"Upload-Length": str(100 << 30)}, 413, None),
    ({"Upload-Length": "10", "Upload-Metadata": "title !!!"}, 400, "Upload-Metadata.title"),
    ({"Upload-Length": "10", "Upload-Metadata": metadata(clip_id="nope")}, 400, "Upload-Metadata.clip_id"),
])
def test_tus_creation_refusals(client, db, app, editor, headers, status, field):
    before = everything(db, app)
    assert_problem(client.post("/api/uploads", headers={**editor, **TUS, **headers}), status, field)
    assert everything(db, app) == before


def test_tus_protocol_refusals(client, db, editor, api_headers):
    assert_problem(client.post("/api/uploads", headers={**editor, "Upload-Length": "10"}), 412)
    created = client.post("/api/uploads", headers={**editor, **TUS, "Upload-Length": "10",
                                                    "Upload-Metadata": metadata(filename="a.mp4")})
    location = created.headers["Location"]
    patch = {**editor, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    assert_problem(client.patch(location, data=b"0123", headers={**patch, "Content-Type": "video/mp4"}), 415)
    assert_problem(client.patch(location, data=b"0" * 11, headers=patch), 400, "Content-Length")
    # Another user's upload does not exist for them.
    other = api_headers("editor")
    assert_problem(client.patch(location, data=b"0123", headers={**patch, **other}), 404)
    assert client.delete(location, headers={**editor, **TUS}).status_code == 204
    assert client.head(location, headers={**editor, **TUS}).status_code == 404


def test_sweep_removes_stale_unfinished_uploads(client, db, app, editor):
    created = client.post("/api/uploads", headers={**editor, **TUS, "Upload-Length": "100",
                                                    "Upload-Metadata": metadata(filename="a.mp4")})
    upload_id = uuid.UUID(created.headers["Location"].rsplit("/", 1)[1])
    client.patch(created.headers["Location"], data=b"x" * 40, headers={
        **editor, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
    orphan = Path(app.config["MEDIA_UPLOAD_DIR"]) / "left-by-a-crash.part"
    orphan.write_bytes(b"y")
    assert sweep_uploads(db)["expired_uploads"] == 0  # fresh: kept
    assert staged_path(upload_id).exists()

    later = utcnow() + timedelta(seconds=app.config["MEDIA_UPLOAD_EXPIRY_SECONDS"] + 60)
    old = (later - timedelta(days=2)).timestamp()
    os.utime(orphan, (old, old))
    os.utime(staged_path(upload_id), (old, old))
    result = sweep_uploads(db, later)
    assert result == {"expired_uploads": 1, "forgotten_uploads": 0, "orphan_files": 1, "orphan_objects": 0}
    assert not staged_path(upload_id).exists() and not orphan.exists()
    assert count(db, MediaUpload) == 0


def test_the_worker_sweeps_uploads_and_so_does_flask_media_sweep(app, db):
    from datetime import datetime

    due = {task.name for task in app.extensions["huey"].read_periodic(datetime(2030, 1, 1, 0, 15))}
    assert "sweep_media_uploads" in due
    old = Path(app.config["MEDIA_UPLOAD_DIR"])
    old.mkdir(parents=True, exist_ok=True)
    stale = old / "stale.part"
    stale.write_bytes(b"z")
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(stale, (two_days_ago, two_days_ago))
    result = app.test_cli_runner().invoke(args=["media", "sweep"])
    assert result.exit_code == 0 and "orphan files: 1" in result.output
    assert not stale.exists()
