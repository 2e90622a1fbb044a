"""Clips service: create, change, delete and search the videos to publish."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, or_, select

from .errors import Conflict, NotFound
from .ledger import record_event
from .models import Clip, PublishLog
from .pagination import Page, keyset_page
from .schemas import ClipIn, ClipPatch


def get_clip(db, clip_id: uuid.UUID) -> Clip:
    """The clip, or NotFound."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"clip {clip_id} does not exist")
    return clip


def list_clips(db, search: str | None = None, cursor: str | None = None, limit: int = 50) -> Page[Clip]:
    """Clips newest first, optionally matching `search` in title, description or media."""
    query = select(Clip)
    if search:
        pattern = f"%{search.strip()}%"
        query = query.where(or_(Clip.title.ilike(pattern), Clip.description.ilike(pattern),
                                Clip.media.ilike(pattern)))
    return keyset_page(db.session, query, Clip.created_at, Clip.id, cursor, limit)


def create_clip(db, data: ClipIn) -> Clip:
    """Add a clip (commits) and record `clip_created`."""
    clip = Clip(**data.model_dump())
    db.session.add(clip)
    db.session.flush()
    record_event(db.session, "clip_created", "clip", clip.id, {"title": clip.title})
    db.session.commit()
    return clip


def update_clip(db, clip_id: uuid.UUID, changes: ClipPatch) -> Clip:
    """Change the given fields of a clip (commits) and record `clip_updated`."""
    clip = get_clip(db, clip_id)
    fields = changes.model_dump(exclude_unset=True)
    for name, value in fields.items():
        if value is None and name != "duration_seconds":
            continue  # explicit null on a required field: keep the value
        setattr(clip, name, value)
    record_event(db.session, "clip_updated", "clip", clip.id, {"fields": sorted(fields)})
    db.session.commit()
    return clip


def delete_clip(db, clip_id: uuid.UUID) -> None:
    """Delete a clip that was never published (commits); its history is never thrown away."""
    clip = get_clip(db, clip_id)
    has_history = db.session.scalar(select(exists().where(PublishLog.clip_id == clip.id)))
    if has_history:
        raise Conflict(f"clip {clip_id} has publish history and cannot be deleted")
    record_event(db.session, "clip_deleted", "clip", clip.id, {"title": clip.title})
    db.session.delete(clip)
    db.session.commit()
