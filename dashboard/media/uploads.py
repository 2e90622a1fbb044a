"""Resumable uploads (tus 1.0 core, creation and termination), and the sweep of stale ones.

An upload is a `MediaUpload` row (its declared length, what to make of the file) and a staged
file under MEDIA_UPLOAD_DIR that grows with each PATCH; the staged file's size *is* the offset,
so what was written before a dropped connection counts and the client resumes from there. When
the last byte arrives the file is probed and becomes a new clip (or the new video of the clip
the upload names) in the same transaction that marks the upload finished; a file that is not a
whole video is refused and nothing is kept.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from flask import current_app
from sqlalchemy import select

from ..errors import ClipNotFound, Conflict, DomainError, InvalidInput, NotFound
from ..models import Clip, MediaUpload, utcnow
from .clips import create_clip_with_video, delete_orphan_objects, probe_upload, replace_video
from .storage import BLOCK

log = logging.getLogger(__name__)


class TooLarge(DomainError):
    status = 413
    title = "Payload too large"


def staging_dir() -> Path:
    return Path(current_app.config["MEDIA_UPLOAD_DIR"])


def staged_path(upload_id: uuid.UUID) -> Path:
    """Where an upload's bytes are received."""
    return staging_dir() / f"{upload_id.hex}.part"


def upload_offset(upload: MediaUpload) -> int:
    """How many bytes of the upload the server holds (all of them once it is finished)."""
    if upload.finished_at is not None:
        return upload.length
    try:
        return staged_path(upload.id).stat().st_size
    except FileNotFoundError:
        return 0


def check_length(length: int) -> None:
    """Refuse an empty upload (400) or one over MEDIA_MAX_UPLOAD_BYTES (413)."""
    if length <= 0:
        raise InvalidInput.field("Upload-Length", "must be more than 0 bytes")
    limit = current_app.config["MEDIA_MAX_UPLOAD_BYTES"]
    if length > limit:
        raise TooLarge(f"the file is {length} bytes; uploads may be at most {limit} bytes "
                       "(MEDIA_MAX_UPLOAD_BYTES)")


def create_upload(db, length: int, filename: str, *, created_by_id: uuid.UUID | None,
                  clip_fields: Mapping | None = None, clip_id: uuid.UUID | None = None) -> MediaUpload:
    """Start a resumable upload of `length` bytes (commits): for a new clip with `clip_fields`
    (title, description), or to replace the video of `clip_id`."""
    check_length(length)
    if clip_id is not None and db.session.get(Clip, clip_id) is None:
        raise ClipNotFound(clip_id)
    upload = MediaUpload(length=length, filename=(filename or "")[:255],
                         clip_fields=dict(clip_fields or {}), clip_id=clip_id,
                         created_by_id=created_by_id)
    db.session.add(upload)
    db.session.flush()
    staging_dir().mkdir(parents=True, exist_ok=True)
    staged_path(upload.id).touch()
    db.session.commit()
    return upload


def get_upload(db, upload_id: uuid.UUID, user_id: uuid.UUID | None = None) -> MediaUpload:
    """The upload (its creator's only, when `user_id` is given), or NotFound."""
    upload = db.session.get(MediaUpload, upload_id)
    if upload is None or (user_id is not None and upload.created_by_id != user_id):
        raise NotFound(f"upload {upload_id} does not exist (or has expired)")
    return upload


@dataclass(frozen=True)
class Appended:
    """What a PATCH did: the new offset, and the clip once the upload is complete."""

    offset: int
    clip: Clip | None = None


def append(db, upload_id: uuid.UUID, offset: int, body: IO[bytes], content_length: int,
           user_id: uuid.UUID | None = None) -> Appended:
    """Write `content_length` bytes of `body` at `offset` (which must be the current offset:
    409 otherwise), streamed in blocks; finish the upload when it is complete.

    A body that ends early keeps what arrived (the client resumes at the new offset). Two
    PATCHes of one upload at once: the second is refused (409) while the first writes.
    """
    upload = get_upload(db, upload_id, user_id)
    if upload.finished_at is not None:
        raise Conflict("this upload is already complete")
    if offset + content_length > upload.length:
        raise InvalidInput.field("Content-Length", f"the upload is {upload.length} bytes; "
                                 f"{content_length} more at offset {offset} would pass its end")
    path = staged_path(upload.id)
    db.session.rollback()  # no transaction is held while the bytes arrive (minutes, for GBs)
    try:
        handle = open(path, "r+b")
    except FileNotFoundError:
        raise NotFound(f"upload {upload_id} has expired") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("another request is writing this upload; ask for its offset (HEAD) "
                           "and resume from there") from None
        current = os.fstat(handle.fileno()).st_size
        if offset != current:
            raise Conflict(f"Upload-Offset is {offset} but the server holds {current} bytes; "
                           f"resume at {current}")
        handle.seek(current)
        received = _copy(body, handle, content_length)
        handle.flush()
        os.fsync(handle.fileno())
        new_offset = current + received
        if received < content_length:
            raise InvalidInput.field(
                "body", f"the body ended after {received} of {content_length} bytes; "
                f"the server holds {new_offset} bytes: resume at Upload-Offset {new_offset}")
        upload = get_upload(db, upload_id)
        upload.updated_at = utcnow()
        if new_offset < upload.length:
            db.session.commit()
            return Appended(new_offset)
        return Appended(new_offset, finish(db, upload))


def _copy(body: IO[bytes], handle, length: int) -> int:
    """Copy up to `length` bytes from the request body to the file; the count copied."""
    received = 0
    while received < length:
        try:
            data = body.read(min(BLOCK, length - received))
        except Exception as exc:  # a dropped connection (werkzeug's ClientDisconnected, OSError)
            log.info("upload body ended early after %d bytes: %s", received, type(exc).__name__)
            break
        if not data:
            break
        handle.write(data)
        received += len(data)
    return received


def finish(db, upload: MediaUpload) -> Clip:
    """Probe the complete file and make it a clip's video, marking the upload finished in the
    same commit; a file that is not a video is refused and both it and the upload are dropped."""
    path = staged_path(upload.id)
    try:
        facts = probe_upload(path)
    except InvalidInput:
        db.session.delete(upload)
        db.session.commit()
        path.unlink(missing_ok=True)
        raise

    def mark_finished(clip: Clip) -> None:
        upload.finished_at = utcnow()
        upload.clip_id = clip.id

    if upload.clip_id is not None:
        return replace_video(db, upload.clip_id, path, upload.filename, facts,
                             before_commit=mark_finished)
    fields = upload.clip_fields or {}
    return create_clip_with_video(db, fields, path, upload.filename, facts,
                                  before_commit=mark_finished)


def cancel_upload(db, upload_id: uuid.UUID, user_id: uuid.UUID | None = None) -> None:
    """Forget an unfinished upload and its bytes (commits)."""
    upload = get_upload(db, upload_id, user_id)
    if upload.finished_at is not None:
        raise Conflict("this upload is complete; delete the clip instead")
    db.session.delete(upload)
    db.session.commit()
    staged_path(upload_id).unlink(missing_ok=True)


def forget_uploads_of_clip(db, clip_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete the upload rows that point at a clip (before the clip goes; does not commit);
    returns their ids, whose staged files the caller removes after the commit."""
    uploads = db.session.scalars(select(MediaUpload).where(MediaUpload.clip_id == clip_id)).all()
    for upload in uploads:
        db.session.delete(upload)
    return [upload.id for upload in uploads]


def sweep_uploads(db, now=None) -> dict[str, int]:
    """The media sweep. Delete what uploads left behind: unfinished uploads untouched for
    MEDIA_UPLOAD_EXPIRY_SECONDS with their bytes, the records of finished ones as old, staged
    files no upload owns, and cached copies of S3 objects unused for as long; and storage
    objects no clip points at, written more than MEDIA_ORPHAN_GRACE_SECONDS ago."""
    now = now or utcnow()
    expiry = current_app.config["MEDIA_UPLOAD_EXPIRY_SECONDS"]
    cutoff = now - timedelta(seconds=expiry)
    stale = db.session.scalars(select(MediaUpload).where(MediaUpload.updated_at < cutoff)).all()
    unfinished = [upload.id for upload in stale if upload.finished_at is None]
    for upload in stale:
        db.session.delete(upload)
    db.session.commit()
    for upload_id in unfinished:
        staged_path(upload_id).unlink(missing_ok=True)
    known = {upload.hex for upload in db.session.scalars(select(MediaUpload.id))}
    db.session.rollback()
    orphans = 0
    old = now.timestamp() - expiry
    for folder, pattern in ((staging_dir(), "*"), (Path(current_app.config["MEDIA_CACHE_DIR"]), "**/*")):
        if not folder.is_dir():
            continue
        for path in folder.glob(pattern):
            if not path.is_file() or path.stem in known:
                continue
            try:
                if path.stat().st_mtime < old:
                    path.unlink()
                    orphans += 1
            except FileNotFoundError:
                pass
    grace = timedelta(seconds=current_app.config["MEDIA_ORPHAN_GRACE_SECONDS"])
    orphan_objects = delete_orphan_objects(db, now - grace)
    return {"expired_uploads": len(unfinished), "forgotten_uploads": len(stale) - len(unfinished),
            "orphan_files": orphans, "orphan_objects": orphan_objects}
