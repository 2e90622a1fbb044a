"""The media sweep's orphan objects, on the local folder storage (the S3 case is in
test_media_s3.py): objects no clip points at go once older than MEDIA_ORPHAN_GRACE_SECONDS,
what a clip points at stays whatever its age, and so does an object being written right now."""

from __future__ import annotations

import io
import logging
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dashboard.media.storage import LocalStorage, get_storage
from dashboard.media.uploads import sweep_uploads
from dashboard.models import Clip, utcnow

from media_support import LANDSCAPE, VERTICAL


@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


def upload_clip(client, headers, path: Path) -> dict:
    response = client.post("/api/clips", headers=headers, content_type="multipart/form-data",
                           data={"title": "Phone video", "file": (io.BytesIO(path.read_bytes()), path.name)})
    assert response.status_code == 201, response.json
    return response.json


def age(storage: LocalStorage, key: str, seconds: float) -> None:
    """Date the object `seconds` back, as if written then."""
    when = (utcnow() - timedelta(seconds=seconds)).timestamp()
    os.utime(storage.path(key), (when, when))


def keys(storage) -> set[str]:
    return {item.key for item in storage.list_objects("clips/")}


def test_sweep_deletes_old_orphan_objects_only(client, db, app, editor, videos, monkeypatch):
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    clip = upload_clip(client, editor, videos.video(VERTICAL))
    clip_id = uuid.UUID(clip["id"])
    first = set(keys(storage))

    # A delete after the commit fails: the replaced video and thumbnail stay, pointed at by nothing.
    def failing_delete(self, key):
        raise OSError("the disk is read-only")

    monkeypatch.setattr(LocalStorage, "delete", failing_delete)
    replaced = client.put(f"/api/clips/{clip['id']}/media", headers=editor, content_type="multipart/form-data",
                          data={"file": (io.BytesIO(videos.video(LANDSCAPE).read_bytes()), "new.mp4")})
    assert replaced.status_code == 200, replaced.json
    monkeypatch.undo()
    current = db.session.get(Clip, clip_id)
    referenced = {current.media_key, current.thumbnail_key}
    assert first <= keys(storage) and not first & referenced

    # A process that died between its storage writes and its commit: a clip that never was,
    # and a copy cut short.
    crashed = f"clips/{uuid.uuid4().hex}/{uuid.uuid4().hex}"
    storage.put_bytes(f"{crashed}.mp4", b"video", "video/mp4")
    storage.put_bytes(f"{crashed}-thumb.jpg", b"jpeg", "image/jpeg")
    storage.put_bytes(f"clips/{clip_id.hex}/{uuid.uuid4().hex}.mp4.partial", b"vid", "video/mp4")
    old_orphans = keys(storage) - referenced
    assert len(old_orphans) == 5
    # Something else sharing the folder, outside the dashboard's keys: never touched.
    storage.put_bytes("backups/notes.txt", b"mine", "text/plain")

    grace = app.config["MEDIA_ORPHAN_GRACE_SECONDS"]
    for key in [*old_orphans, *referenced, "backups/notes.txt"]:
        age(storage, key, grace + 3600)  # the clip's own objects are as old: kept all the same
    # Written a moment ago by a request that has not committed yet: its age protects it.
    in_flight = f"clips/{uuid.uuid4().hex}/{uuid.uuid4().hex}-thumb.jpg"
    storage.put_bytes(in_flight, b"jpeg", "image/jpeg")
    age(storage, in_flight, grace - 60)

    result = sweep_uploads(db)

    assert result["orphan_objects"] == 5
    assert keys(storage) == referenced | {in_flight}
    assert storage.exists("backups/notes.txt")
    assert not (storage.root / crashed).parent.exists()  # the dead clip's folder is gone too
    played = client.get(clip["media"]["url"], headers=editor)
    assert played.status_code == 200 and played.data == videos.video(LANDSCAPE).read_bytes()
    assert client.get(clip["media"]["thumbnail_url"], headers=editor).mimetype == "image/jpeg"

    assert sweep_uploads(db)["orphan_objects"] == 0  # nothing left to do


def test_flask_media_sweep_and_the_worker_task_count_orphan_objects(app, db, caplog):
    storage = get_storage()
    orphan = f"clips/{uuid.uuid4().hex}/{uuid.uuid4().hex}.mp4"
    storage.put_bytes(orphan, b"video", "video/mp4")
    age(storage, orphan, app.config["MEDIA_ORPHAN_GRACE_SECONDS"] + 60)

    result = app.test_cli_runner().invoke(args=["media", "sweep"])

    assert result.exit_code == 0, result.output
    assert "orphan objects: 1" in result.output
    assert not storage.exists(orphan)

    storage.put_bytes(orphan, b"video", "video/mp4")
    age(storage, orphan, app.config["MEDIA_ORPHAN_GRACE_SECONDS"] + 60)
    huey = app.extensions["huey"]
    task = next(task for task in huey.read_periodic(datetime(2030, 1, 1, 0, 15))
                if task.name == "sweep_media_uploads")
    with caplog.at_level(logging.INFO, logger="dashboard.media.tasks"):
        huey.execute(task)
    assert not storage.exists(orphan)
    line = next(record.getMessage() for record in caplog.records if record.name == "dashboard.media.tasks")
    assert "'orphan_objects': 1" in line and orphan not in line
