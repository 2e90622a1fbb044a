"""Clips service: create, change, delete and search the videos to publish."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, func, or_, select, text
from sqlalchemy.dialects import postgresql

from .errors import ClipNotFound, Conflict, FieldError, InvalidInput
from .ledger import record_event
from .models import (
    CLIP_SEARCH_COLUMNS,
    CLIP_SEARCH_TABLE,
    CLIP_SHORT_SEARCH_TABLE,
    CLIP_SHORT_TERMS,
    Clip,
    PublishLog,
)
from .pagination import Page, keyset_page
from .schemas import ClipIn, ClipPatch
from .transactions import rolls_back


def get_clip(db, clip_id: uuid.UUID) -> Clip:
    """The clip, or NotFound."""
    clip = db.session.get(Clip, clip_id)
    if clip is None:
        raise ClipNotFound(clip_id)
    return clip


# SQLite: up to this many clips matching, the search table's answer picks the clips; beyond it,
# walking the clips newest first meets a page of matches soon, as PostgreSQL's planner also chooses.
SEARCH_CANDIDATES = 2000


def list_clips(db, search: str | None = None, cursor: str | None = None, limit: int = 50) -> Page[Clip]:
    """Clips newest first, optionally those whose title, description or media contains `search`
    (case-insensitive; `%` and `_` are plain characters)."""
    query = select(Clip)
    search = (search or "").strip()
    if search:
        query = query.where(or_(*(getattr(Clip, name).icontains(search, autoescape=True)
                                  for name in CLIP_SEARCH_COLUMNS)))
        if db.session.get_bind().dialect.name == "postgresql":
            if len(search) <= CLIP_SHORT_TERMS:
                query = query.where(func.clip_short_terms(Clip.title, Clip.description, Clip.media)
                                    .op("@>")(postgresql.array([func.lower(search)])))
        else:
            candidates = _sqlite_search_candidates(db.session, search)
            if candidates is not None:
                query = query.where(Clip.id.in_(candidates))
    return keyset_page(db.session, query, Clip.created_at, Clip.id, cursor, limit)


def _sqlite_search_candidates(session, search: str) -> list[uuid.UUID] | None:
    """The ids of the clips SQLite's search tables find for `search` (the short-terms table up
    to 2 characters, the trigram table from 3), or None when there are more than
    SEARCH_CANDIDATES. A superset of the ILIKE's answer, which still decides: the trigram
    tokenizer folds the case of more letters than SQLite's lower()."""
    if len(search) <= CLIP_SHORT_TERMS:  # the term is the hex of what lower() makes of it
        table, match = CLIP_SHORT_SEARCH_TABLE, "'\"' || hex(lower(:search)) || '\"'"
    else:
        table, match = CLIP_SEARCH_TABLE, ":search"
        search = f"{{{' '.join(CLIP_SEARCH_COLUMNS)}}} : " + '"' + search.replace('"', '""') + '"'
    found = session.execute(
        text(f"SELECT clip_id FROM {table} WHERE {table} MATCH {match} LIMIT :most")
        .columns(clip_id=Clip.id.type),
        {"search": search, "most": SEARCH_CANDIDATES + 1},
    ).scalars().all()
    return list(found) if len(found) <= SEARCH_CANDIDATES else None


@rolls_back
def create_clip(db, data: ClipIn) -> Clip:
    """Add a clip (commits) and record `clip_created`."""
    clip = Clip(**data.model_dump())
    db.session.add(clip)
    db.session.flush()
    record_event(db.session, "clip_created", "clip", clip.id, {"title": clip.title})
    db.session.commit()
    return clip


@rolls_back
def update_clip(db, clip_id: uuid.UUID, changes: ClipPatch) -> Clip:
    """Change the given fields of a clip (commits) and record `clip_updated`."""
    clip = get_clip(db, clip_id)
    fields = changes.model_dump(exclude_unset=True)
    cover = fields.pop("cover_offset_ms", None)
    if clip.has_upload:
        # The video's name and duration are the upload's facts, not free text.
        refused = [FieldError(name, "this clip's video is an uploaded file: replace the file "
                              "(PUT /api/clips/<id>/media) instead" if name == "media" else
                              "is the uploaded video's probed duration and cannot be typed")
                   for name in ("media", "duration_seconds") if fields.get(name) is not None]
        if refused:
            raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in refused), refused)
        fields.pop("media", None)
        fields.pop("duration_seconds", None)
    elif cover is not None:
        raise InvalidInput.field("cover_offset_ms", "only an uploaded video has frames to pick a cover from")
    for name, value in fields.items():
        if value is None and name != "duration_seconds":
            continue  # explicit null on a required field: keep the value
        setattr(clip, name, value)
    if fields or cover is None:
        record_event(db.session, "clip_updated", "clip", clip.id, {"fields": sorted(fields)})
        db.session.commit()
    if cover is not None:
        from .media.clips import set_cover

        clip = set_cover(db, clip_id, cover)
    return clip


def delete_clip(db, clip_id: uuid.UUID) -> None:
    """Delete a clip that was never published, and its stored video and thumbnail (commits);
    a published clip's history is never thrown away."""
    from .media.clips import delete_objects, media_keys
    from .media.uploads import forget_uploads_of_clip, staged_path

    clip = get_clip(db, clip_id)
    has_history = db.session.scalar(select(exists().where(PublishLog.clip_id == clip.id)))
    if has_history:
        raise Conflict(f"clip {clip_id} has publish history and cannot be deleted")
    keys = media_keys(clip)
    uploads = forget_uploads_of_clip(db, clip.id)
    record_event(db.session, "clip_deleted", "clip", clip.id, {"title": clip.title})
    db.session.delete(clip)
    db.session.commit()
    delete_objects(keys)
    for upload_id in uploads:
        staged_path(upload_id).unlink(missing_ok=True)
