"""A clip's uploaded video: store it (probed first), replace it, pick its cover, remove it.

Every file is probed before anything is stored or written: a file that is not a whole video is
refused (`InvalidInput` on `file`) and leaves nothing behind. Storage objects are written before
the commit that points the clip at them and the old ones deleted after it, so a reader never
sees a clip whose video is gone; a failed commit deletes the new objects again. What a crash
or a failed delete leaves behind anyway, the media sweep removes (`delete_orphan_objects`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from ..errors import ClipNotFound, FieldError, InvalidInput
from ..ledger import record_event
from ..models import PLATFORMS, Clip, TargetClip, utcnow
from ..transactions import rolls_back
from .probe import MediaFacts, NotAVideo, probe_file
from .storage import get_storage
from .thumbnail import default_cover_ms, make_thumbnail

log = logging.getLogger(__name__)

EXTENSIONS = {"mp4": "mp4", "mov": "mov", "webm": "webm", "mkv": "mkv"}

# Every storage key the dashboard makes starts with this; the orphan sweep looks nowhere else
# (a bucket prefix shared with other data stays untouched).
KEY_PREFIX = "clips/"
# Every Clip column that holds a storage key: what a clip owns, and what the sweep keeps.
KEY_COLUMNS = ("media_key", "thumbnail_key")


def clip_folder(clip: Clip) -> str:
    """The key prefix of a clip's objects."""
    return f"{KEY_PREFIX}{clip.id.hex}/"


def media_facts(clip: Clip | TargetClip) -> MediaFacts | None:
    """The probed facts kept on an uploaded clip; None for a clip that is a URL string."""
    if not clip.has_upload:
        return None
    return MediaFacts(
        container=clip.media_container or "",
        content_type=clip.media_content_type or "application/octet-stream",
        size_bytes=clip.media_size_bytes or 0,
        duration_seconds=clip.duration_seconds or 0.0,
        video_codec=clip.video_codec or "",
        width=clip.width or 0,
        height=clip.height or 0,
        frame_rate=clip.frame_rate or 0.0,
        bit_rate=clip.bit_rate,
        video_bit_rate=clip.video_bit_rate,
        rotation=clip.rotation or 0,
        audio_codec=clip.audio_codec,
        audio_channels=clip.audio_channels,
        audio_sample_rate=clip.audio_sample_rate,
    )


def probe_upload(path: str | Path) -> MediaFacts:
    """The facts of an uploaded file, or InvalidInput on `file` saying why it is not a video."""
    try:
        return probe_file(path)
    except NotAVideo as exc:
        raise InvalidInput.field("file", str(exc)) from None


@dataclass
class StoredObjects:
    """Storage keys written for one change: deleted again when its commit fails."""

    keys: list[str] = field(default_factory=list)

    def discard(self) -> None:
        storage = get_storage()
        for key in self.keys:
            try:
                storage.delete(key)
            except Exception:  # the commit already failed; say so, keep the first error
                log.exception("could not delete the storage object %s", key)


def delete_objects(keys) -> None:
    """Delete storage objects after the commit that forgot them (best effort, logged)."""
    storage = get_storage()
    for key in keys:
        if key:
            try:
                storage.delete(key)
            except Exception:
                log.exception("could not delete the storage object %s", key)


def _thumbnail(path: str | Path, cover_ms: int) -> bytes:
    try:
        return make_thumbnail(path, cover_ms, current_app.config["MEDIA_THUMBNAIL_MAX_SIDE"])
    except NotAVideo as exc:
        raise InvalidInput.field("file", str(exc)) from None


def attach_video(clip: Clip, path: str | Path, filename: str, facts: MediaFacts,
                 written: StoredObjects) -> list[str]:
    """Store the probed file at `path` (moved into storage) as the clip's video, with a fresh
    thumbnail; set the clip's facts. Does not commit. Returns the keys it replaced."""
    storage = get_storage()
    base = f"{clip_folder(clip)}{uuid.uuid4().hex}"
    video_key = f"{base}.{EXTENSIONS.get(facts.container, 'bin')}"
    thumb_key = f"{base}-thumb.jpg"
    cover_ms = default_cover_ms(facts.duration_seconds)
    thumbnail = _thumbnail(path, cover_ms)
    storage.put_bytes(thumb_key, thumbnail, "image/jpeg")
    written.keys.append(thumb_key)
    storage.put_file(video_key, path, move=True)
    written.keys.append(video_key)
    replaced = media_keys(clip)
    clip.media = (filename or Path(video_key).name)[:2000]
    clip.media_key, clip.thumbnail_key = video_key, thumb_key
    clip.media_content_type = facts.content_type
    clip.media_size_bytes = facts.size_bytes
    clip.media_container = facts.container
    clip.duration_seconds = facts.duration_seconds
    clip.video_codec, clip.audio_codec = facts.video_codec, facts.audio_codec
    clip.width, clip.height, clip.rotation = facts.width, facts.height, facts.rotation
    clip.frame_rate = facts.frame_rate
    clip.bit_rate, clip.video_bit_rate = facts.bit_rate, facts.video_bit_rate
    clip.audio_channels, clip.audio_sample_rate = facts.audio_channels, facts.audio_sample_rate
    clip.cover_offset_ms = cover_ms
    clip.media_uploaded_at = utcnow()
    return replaced


def facts_event(facts: MediaFacts, filename: str) -> dict:
    """What the ledger keeps about an uploaded video."""
    return {"filename": filename, "size_bytes": facts.size_bytes, "container": facts.container,
            "video_codec": facts.video_codec, "audio_codec": facts.audio_codec,
            "width": facts.width, "height": facts.height, "frame_rate": facts.frame_rate,
            "duration_seconds": facts.duration_seconds}


def commit_media_change(db, written: StoredObjects, replaced: list[str]) -> None:
    """Commit; on failure delete what was written for it, after success what it replaced."""
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        written.discard()
        raise
    delete_objects(replaced)


def create_clip_with_video(db, fields: Mapping, path: str | Path, filename: str,
                           facts: MediaFacts | None = None, *, before_commit=None) -> Clip:
    """A new clip from an uploaded file (probed first; commits) with `clip_created` and
    `clip_media_uploaded`. `fields` are the clip's title and description.

    `before_commit(clip)` lets the caller write its own rows in the same transaction.
    """
    facts = facts or probe_upload(path)
    # Its id made here, not by a flush: the INSERT waits for the commit, so that no write lock
    # (SQLite's is the whole database's) is held while the thumbnail is made and the video stored.
    clip = Clip(id=uuid.uuid4(), title=fields["title"], description=fields.get("description") or "",
                media=filename)
    db.session.add(clip)
    written = StoredObjects()
    try:
        attach_video(clip, path, filename, facts, written)
        record_event(db.session, "clip_created", "clip", clip.id, {"title": clip.title})
        record_event(db.session, "clip_media_uploaded", "clip", clip.id, facts_event(facts, filename))
        if before_commit is not None:
            before_commit(clip)
    except BaseException:
        db.session.rollback()
        written.discard()
        raise
    commit_media_change(db, written, [])
    return clip


def replace_video(db, clip_id: uuid.UUID, path: str | Path, filename: str,
                  facts: MediaFacts | None = None, *, before_commit=None) -> Clip:
    """Make the uploaded file the clip's video (probed first; commits), recording
    `clip_media_replaced` (or `clip_media_uploaded` for a clip that was a URL string)."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise ClipNotFound(clip_id)
    facts = facts or probe_upload(path)
    event = "clip_media_replaced" if clip.has_upload else "clip_media_uploaded"
    written = StoredObjects()
    try:
        replaced = attach_video(clip, path, filename, facts, written)
        record_event(db.session, event, "clip", clip.id, facts_event(facts, filename))
        if before_commit is not None:
            before_commit(clip)
    except BaseException:
        db.session.rollback()
        written.discard()
        raise
    commit_media_change(db, written, replaced)
    return clip


@rolls_back
def set_cover(db, clip_id: uuid.UUID, offset_ms: int) -> Clip:
    """Take the clip's cover (thumbnail, and the platforms' cover) at `offset_ms` (commits)."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise ClipNotFound(clip_id)
    if not clip.has_upload:
        raise InvalidInput.field("cover_offset_ms", "only an uploaded video has frames to pick a cover from")
    duration_ms = int((clip.duration_seconds or 0) * 1000)
    if offset_ms < 0 or offset_ms > duration_ms:
        raise InvalidInput.field("cover_offset_ms",
                                 f"must be between 0 and {duration_ms} (the video lasts {duration_ms} ms)")
    storage = get_storage()
    thumbnail = _thumbnail(storage.local_path(clip.media_key), offset_ms)
    written = StoredObjects()
    thumb_key = f"{clip_folder(clip)}{uuid.uuid4().hex}-thumb.jpg"
    storage.put_bytes(thumb_key, thumbnail, "image/jpeg")
    written.keys.append(thumb_key)
    replaced = [clip.thumbnail_key] if clip.thumbnail_key else []
    clip.thumbnail_key, clip.cover_offset_ms = thumb_key, offset_ms
    record_event(db.session, "clip_cover_set", "clip", clip.id, {"cover_offset_ms": offset_ms})
    commit_media_change(db, written, replaced)
    return clip


def media_keys(clip: Clip) -> list[str]:
    """The storage objects a clip owns."""
    return [key for key in (getattr(clip, column) for column in KEY_COLUMNS) if key]


def referenced_keys(db) -> set[str]:
    """Every storage key some clip points at."""
    columns = [getattr(Clip, column) for column in KEY_COLUMNS]
    return {key for row in db.session.execute(select(*columns)) for key in row if key}


def delete_orphan_objects(db, written_before: datetime) -> int:
    """Delete the storage objects no clip points at that were written before `written_before`
    (what a process that died between its storage write and its commit, or a failed delete,
    left behind); the number deleted. Only reads the database (and ends its transaction).

    Objects are written before the commit that points a clip at them, so a request in progress
    holds objects nothing references yet: only their age protects them. `written_before` must
    lie further back than the longest such request (the slowest write of the largest video
    into the storage, then the commit): MEDIA_ORPHAN_GRACE_SECONDS. The storage is listed
    before the clips are read, so an object whose clip was committed in between is kept.
    """
    storage = get_storage()
    old = [item.key for item in storage.list_objects(KEY_PREFIX) if item.written_at < written_before]
    if not old:
        return 0
    referenced = referenced_keys(db)
    db.session.rollback()  # no transaction held while the storage deletes
    deleted = 0
    for key in old:
        if key in referenced:
            continue
        try:
            storage.delete(key)
        except Exception:  # the next sweep tries again
            log.exception("could not delete the orphan storage object %s", key)
            continue
        deleted += 1
    return deleted


@dataclass(frozen=True)
class PlatformCheck:
    """Whether a clip can go to a platform as it is, and the rules it breaks."""

    platform: str
    errors: list[FieldError]

    @property
    def ok(self) -> bool:
        return not self.errors


def platform_checks(clip: Clip, limits: Mapping | None = None) -> list[PlatformCheck]:
    """Per platform, the rules the clip itself breaks (media, duration, title), whatever the
    caption: the same checks the engine makes before any call."""
    from ..publishing.rules import check_publish

    limits = current_app.config["PLATFORM_LIMITS"] if limits is None else limits
    facts = media_facts(clip)
    return [
        PlatformCheck(platform, check_publish(
            platform, limits.get(platform, {}), caption="", hashtags=[], clip_title=clip.title,
            duration_seconds=clip.duration_seconds, media=facts))
        for platform in PLATFORMS
    ]
