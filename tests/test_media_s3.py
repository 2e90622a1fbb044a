"""The S3 storage against an S3-compatible server: moto's server mode, started here as a real
HTTP server on a loopback port (boto3 speaks real HTTP to it: signing, multipart, ranges)."""

from __future__ import annotations

import io
import socket
import uuid
from datetime import timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from dashboard.media.sources import media_source_for
from dashboard.media.storage import MediaMissing, S3Storage, get_storage, make_storage
from dashboard.media.uploads import sweep_uploads
from dashboard.models import Clip, utcnow

from api_support import assert_problem
from media_support import LANDSCAPE, VERTICAL

KEYS = {"MEDIA_S3_ACCESS_KEY_ID": "test-access-key", "MEDIA_S3_SECRET_ACCESS_KEY": "test-secret-key",
        "MEDIA_S3_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_url):
    name = f"clips-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                          aws_access_key_id="test-access-key", aws_secret_access_key="test-secret-key")
    client.create_bucket(Bucket=name)
    return name, client


@pytest.fixture
def app_config(app_config, s3_url, bucket):
    return {**app_config, **KEYS, "MEDIA_STORAGE_URL": f"s3://{bucket[0]}/dashboard",
            "MEDIA_S3_ENDPOINT_URL": s3_url}


@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


def objects(bucket) -> list[str]:
    name, client = bucket
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))


def test_storage_interface_on_s3(app, bucket, tmp_path):
    storage = get_storage()
    assert isinstance(storage, S3Storage) and "secret" not in repr(storage)
    source = tmp_path / "blob.bin"
    data = bytes(range(256)) * 40_000  # ~10 MB: boto3 sends it as a multipart upload
    source.write_bytes(data)

    assert storage.put_file("clips/a/b.mp4", source, move=True) == len(data)
    assert not source.exists()
    assert objects(bucket) == ["dashboard/clips/a/b.mp4"]
    assert storage.size("clips/a/b.mp4") == len(data) and storage.exists("clips/a/b.mp4")
    assert b"".join(storage.stream("clips/a/b.mp4", 1000, 5000)) == data[1000:6000]
    assert b"".join(storage.stream("clips/a/b.mp4")) == data
    with storage.open("clips/a/b.mp4") as handle:
        assert handle.read(10) == data[:10]
    cached = storage.local_path("clips/a/b.mp4")
    assert open(cached, "rb").read() == data
    storage.put_bytes("clips/a/t.jpg", b"jpeg", "image/jpeg")

    storage.delete("clips/a/b.mp4")
    storage.delete("clips/a/b.mp4")  # already gone: nothing happens
    assert objects(bucket) == ["dashboard/clips/a/t.jpg"]
    with pytest.raises(MediaMissing):
        storage.size("clips/a/b.mp4")
    with pytest.raises(MediaMissing):
        storage.local_path("clips/a/b.mp4")
    with pytest.raises(ValueError):
        storage.size("../outside")


def test_upload_to_s3_then_play_with_ranges_then_delete(client, db, app, bucket, editor, videos):
    path = videos.video(VERTICAL)
    data = path.read_bytes()
    response = client.post("/api/clips", headers=editor, content_type="multipart/form-data",
                           data={"title": "On S3", "file": (io.BytesIO(data), "s3.mp4")})
    assert response.status_code == 201, response.json
    clip = response.json
    stored = objects(bucket)
    assert len(stored) == 2 and all(key.startswith(f"dashboard/clips/{uuid.UUID(clip['id']).hex}/") for key in stored)

    part = client.get(clip["media"]["url"], headers={**editor, "Range": "bytes=500-1499"})
    assert part.status_code == 206 and part.data == data[500:1500]
    assert client.get(clip["media"]["thumbnail_url"], headers=editor).mimetype == "image/jpeg"

    # A cover needs the frames: the storage gives a local copy of the object.
    assert client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"cover_offset_ms": 2000}).status_code == 200
    assert len(objects(bucket)) == 2

    source = media_source_for(db.session.get(Clip, uuid.UUID(clip["id"])))
    with source.open() as handle:
        assert handle.read() == data

    assert client.delete(f"/api/clips/{clip['id']}", headers=editor).status_code == 204
    assert objects(bucket) == []


def test_replace_on_s3_deletes_the_old_objects(client, bucket, editor, videos):
    clip = client.post("/api/clips", headers=editor, content_type="multipart/form-data", data={
        "title": "T", "file": (io.BytesIO(videos.video(VERTICAL).read_bytes()), "a.mp4")}).json
    old = objects(bucket)
    response = client.put(f"/api/clips/{clip['id']}/media", headers=editor, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(videos.video(LANDSCAPE).read_bytes()), "b.mp4")})
    assert response.status_code == 200
    assert len(objects(bucket)) == 2 and not set(old) & set(objects(bucket))


def test_a_refused_file_writes_nothing_to_the_bucket(client, bucket, editor, videos):
    assert_problem(client.post("/api/clips", headers=editor, content_type="multipart/form-data", data={
        "title": "T", "file": (io.BytesIO(videos.truncated().read_bytes()), "cut.mp4")}), 400, "file")
    assert objects(bucket) == []


def test_storage_url_must_name_a_bucket(app):
    from dashboard.config import ConfigError

    with pytest.raises(ConfigError, match="bucket"):
        make_storage({**app.config, "MEDIA_STORAGE_URL": "s3:///prefix"})
    with pytest.raises(ConfigError, match="file:// or s3://"):
        make_storage({**app.config, "MEDIA_STORAGE_URL": "ftp://host/x"})


def test_sweep_deletes_old_orphan_objects_from_the_bucket(client, db, app, bucket, editor, videos):
    storage = get_storage()
    storage.list_page_size = 2  # several ListObjectsV2 pages for a few objects
    data = videos.video(LANDSCAPE).read_bytes()
    response = client.post("/api/clips", headers=editor, content_type="multipart/form-data",
                           data={"title": "On S3", "file": (io.BytesIO(data), "s3.mp4")})
    assert response.status_code == 201, response.json
    clip = db.session.get(Clip, uuid.UUID(response.json["id"]))
    referenced = {f"dashboard/{clip.media_key}", f"dashboard/{clip.thumbnail_key}"}
    # What a process that died between its storage writes and its commit left.
    dead = f"clips/{uuid.uuid4().hex}/{uuid.uuid4().hex}"
    for key in (f"{dead}.mp4", f"{dead}-thumb.jpg", f"clips/{clip.id.hex}/{uuid.uuid4().hex}-thumb.jpg"):
        storage.put_bytes(key, b"orphan", "application/octet-stream")
    name, s3 = bucket
    s3.put_object(Bucket=name, Key="elsewhere/clips/report.csv", Body=b"not ours")
    s3.put_object(Bucket=name, Key="dashboard/backups/notes.txt", Body=b"not a clip key")

    listed = list(storage.list_objects("clips/"))
    assert len(listed) == 5 and all(item.written_at.tzinfo is not None for item in listed)
    assert {f"dashboard/{item.key}" for item in listed} == set(objects(bucket)) - {
        "elsewhere/clips/report.csv", "dashboard/backups/notes.txt"}

    # Just written (a request that has not committed yet would look the same): kept.
    assert sweep_uploads(db)["orphan_objects"] == 0
    assert len(objects(bucket)) == 7

    later = utcnow() + timedelta(seconds=app.config["MEDIA_ORPHAN_GRACE_SECONDS"] + 60)
    assert sweep_uploads(db, later)["orphan_objects"] == 3
    assert set(objects(bucket)) == referenced | {"elsewhere/clips/report.csv", "dashboard/backups/notes.txt"}
    played = client.get(response.json["media"]["url"], headers=editor)
    assert played.status_code == 200 and played.data == data
