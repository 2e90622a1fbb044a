"""JSON endpoints for clips, accounts, credentials and the ledger (`/api/...`)."""

from __future__ import annotations

import uuid

from flask import Blueprint, g, request, url_for
from pydantic import ValidationError

from .. import accounts as account_service
from .. import clips as clip_service
from ..credentials import remove_account_credentials, set_account_credentials, summarize
from ..errors import InvalidInput, NotFound
from ..extensions import db
from ..ledger import LedgerFilter, list_events, visible_metadata
from ..linking import missing_scopes
from ..media import clips as media_service
from ..media.http import accepts_uploads, send_stored
from ..media.storage import get_storage
from ..models import Clip, LedgerEvent, SocialAccount
from ..schemas import (
    AccountConnectionOut,
    AccountIn,
    AccountList,
    AccountOut,
    AccountPatch,
    ClipIn,
    ClipOut,
    ClipPage,
    ClipPatch,
    ClipQuery,
    ClipUploadFields,
    CredentialsIn,
    CredentialsOut,
    LedgerEventOut,
    LedgerPage,
    LedgerQuery,
    MediaOut,
    PlatformFit,
)
from . import uploads as tus
from .auth import authenticate, require_role
from .spec import responses, spec

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(authenticate)


def parse_id(value: str, field: str) -> uuid.UUID:
    """A UUID from the URL, or a 400 that names the field."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput.field(field, f"{value!r} is not a UUID") from None


def json_of(model, status: int = 200, **headers):
    """A pydantic model as a JSON response (ISO 8601 times with Z).

    The model itself goes to spectree, which serialises an instance of the response model it
    declares without validating it again (the instance was validated when it was made); a dict
    would be validated field by field a second time on every response.
    """
    return model, status, headers


def media_out(clip: Clip, url_for_media, url_for_thumbnail) -> MediaOut:
    """A clip's video as the API (or a page) shows it; the URLs come from the caller."""
    if not clip.has_upload:
        return MediaOut(source="url", url=clip.media, duration_seconds=clip.duration_seconds)
    return MediaOut(
        source="upload", url=url_for_media(clip), thumbnail_url=url_for_thumbnail(clip),
        filename=clip.media, content_type=clip.media_content_type, size_bytes=clip.media_size_bytes,
        duration_seconds=clip.duration_seconds, width=clip.width, height=clip.height,
        frame_rate=clip.frame_rate, video_codec=clip.video_codec, audio_codec=clip.audio_codec,
        container=clip.media_container, bit_rate=clip.bit_rate, audio_channels=clip.audio_channels,
        audio_sample_rate=clip.audio_sample_rate, cover_offset_ms=clip.cover_offset_ms,
        uploaded_at=clip.media_uploaded_at,
    )


def clip_out(clip: Clip) -> ClipOut:
    """A clip as the API shows it: its media, and per platform whether it can go there."""
    media = media_out(
        clip,
        lambda c: url_for("api.get_clip_media", clip_id=c.id, _external=True),
        lambda c: url_for("api.get_clip_thumbnail", clip_id=c.id, _external=True),
    )
    platforms = {
        check.platform: PlatformFit(ok=check.ok, errors=[e.as_dict() for e in check.errors])
        for check in media_service.platform_checks(clip)
    }
    return ClipOut(id=clip.id, title=clip.title, description=clip.description, media=media,
                   duration_seconds=clip.duration_seconds, platforms=platforms,
                   created_at=clip.created_at, updated_at=clip.updated_at)


def account_out(account: SocialAccount) -> AccountOut:
    """An account as the API shows it: its credentials as a status and key names only."""
    summary = summarize(account)
    return AccountOut(
        id=account.id, platform=account.platform, handle=account.handle,
        display_name=account.display_name, parent_account_id=account.parent_account_id,
        config=account.config or {}, active=account.active, credentials=summary.status,
        credential_keys_set=list(summary.keys_set), needs_credentials=account.needs_credentials,
        needs_credentials_reason=account.needs_credentials_reason,
        connection=None if account.linked_at is None else AccountConnectionOut(
            connected_as=account.connected_as, external_id=account.external_id,
            token_expires_at=account.token_expires_at,
            refresh_expires_at=account.refresh_expires_at,
            token_refreshed_at=account.token_refreshed_at,
            granted_scopes=account.granted_scopes, missing_scopes=missing_scopes(account),
            needs_reconnect=account.needs_reconnect,
            needs_reconnect_reason=account.needs_reconnect_reason),
        created_at=account.created_at, updated_at=account.updated_at,
    )


def event_out(event: LedgerEvent, show_emails: bool) -> LedgerEventOut:
    """A ledger event as the API shows it (users' emails to admins only, as on the page)."""
    return LedgerEventOut(
        id=event.id, event_type=event.event_type, entity_type=event.entity_type,
        entity_id=event.entity_id, metadata=visible_metadata(event.event_metadata, show_emails=show_emails),
        created_at=event.created_at,
    )


# Clips ---------------------------------------------------------------------------------------

@bp.get("/clips")
@require_role("viewer")
@spec.validate(query=ClipQuery, resp=responses(200, ClipPage, 400), tags=["clips"])
def list_clips(query: ClipQuery):
    """Clips newest first; `q` searches title, description and media."""
    page = clip_service.list_clips(db, query.q, query.cursor, query.limit)
    return json_of(ClipPage(items=[clip_out(c) for c in page.items], next_cursor=page.next_cursor))


@bp.post("/clips")
@accepts_uploads
@require_role("editor")
@spec.validate(json=ClipIn, resp=responses(201, ClipOut, 400, 413), tags=["clips"])
def create_clip(json: ClipIn):  # None for a multipart body
    """Add a clip: JSON with a `media` URL string, or `multipart/form-data` with the video as a
    `file` part and the clip's `title` and `description` as fields (probed; refused with 400 when
    it is not a whole video). Larger files: the resumable `/api/uploads` (tus)."""
    if request.mimetype == "multipart/form-data":
        try:
            fields = ClipUploadFields(**request.form.to_dict())
        except ValidationError as exc:
            raise InvalidInput.from_pydantic(exc) from None
        clip = tus.staged_file_part(lambda path, name: media_service.create_clip_with_video(
            db, fields.model_dump(), path, name))
    elif json is None:
        raise InvalidInput.field("body", "send JSON, or multipart/form-data with a 'file' part")
    else:
        clip = clip_service.create_clip(db, json)
    return json_of(clip_out(clip), 201, Location=url_for("api.get_clip", clip_id=clip.id))


@bp.get("/clips/<clip_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, ClipOut, 400, 404), tags=["clips"])
def get_clip(clip_id: str):
    """One clip."""
    return json_of(clip_out(clip_service.get_clip(db, parse_id(clip_id, "clip_id"))))


@bp.patch("/clips/<clip_id>")
@require_role("editor")
@spec.validate(json=ClipPatch, resp=responses(200, ClipOut, 400, 404), tags=["clips"])
def update_clip(clip_id: str, json: ClipPatch):
    """Change some fields of a clip."""
    return json_of(clip_out(clip_service.update_clip(db, parse_id(clip_id, "clip_id"), json)))


@bp.delete("/clips/<clip_id>")
@require_role("editor")
@spec.validate(resp=responses(204, None, 400, 404, 409), tags=["clips"])
def delete_clip(clip_id: str):
    """Delete a clip that was never published, with its stored video (409 when it has publish
    history)."""
    clip_service.delete_clip(db, parse_id(clip_id, "clip_id"))
    return "", 204


@bp.put("/clips/<clip_id>/media")
@accepts_uploads
@require_role("editor")
@spec.validate(resp=responses(200, ClipOut, 400, 404, 413), tags=["clips"])
def put_clip_media(clip_id: str):
    """Replace the clip's video with the `file` part of a `multipart/form-data` body (probed;
    the old file is deleted once the new one is in place). Its duration becomes the probed one."""
    clip_id_ = parse_id(clip_id, "clip_id")
    clip_service.get_clip(db, clip_id_)
    if request.mimetype != "multipart/form-data":
        raise InvalidInput.field("file", "send the video as a multipart/form-data part named 'file'")
    clip = tus.staged_file_part(lambda path, name: media_service.replace_video(db, clip_id_, path, name))
    return json_of(clip_out(clip))


def _uploaded(clip_id: str) -> Clip:
    clip = clip_service.get_clip(db, parse_id(clip_id, "clip_id"))
    if not clip.has_upload:
        raise NotFound(f"clip {clip.id} has no uploaded video (its media is {clip.media!r})")
    return clip


@bp.get("/clips/<clip_id>/media")
@require_role("viewer")
def get_clip_media(clip_id: str):
    """The clip's uploaded video; honours `Range` (206) so players can seek."""
    clip = _uploaded(clip_id)
    return send_stored(get_storage(), clip.media_key, clip.media_content_type)


@bp.get("/clips/<clip_id>/thumbnail")
@require_role("viewer")
def get_clip_thumbnail(clip_id: str):
    """The clip's cover frame as a JPEG."""
    clip = _uploaded(clip_id)
    return send_stored(get_storage(), clip.thumbnail_key, "image/jpeg")


# Resumable uploads (tus 1.0) ------------------------------------------------------------------

def _upload_url(upload_id) -> str:
    return url_for("api.upload", upload_id=upload_id, _external=True)


def _clip_url(clip_id) -> str:
    return url_for("api.get_clip", clip_id=clip_id, _external=True)


@bp.route("/uploads", methods=["OPTIONS"], provide_automatic_options=False)
def uploads_options():
    """tus discovery: version, extensions, largest upload."""
    return tus.tus_options()


@bp.post("/uploads")
@require_role("editor")
def create_upload():
    """Start a resumable upload (tus creation): `Upload-Length`, `Upload-Metadata` with
    `filename`, `title`, `description` (a new clip) or `clip_id` (replace that clip's video)."""
    return tus.tus_create(g.api_user.id, _upload_url)


@bp.route("/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE"])
@accepts_uploads
@require_role("editor")
def upload(upload_id: str):
    """HEAD: the offset to resume at; PATCH: append at `Upload-Offset`; DELETE: forget it."""
    if request.method == "PATCH":
        return tus.tus_patch(g.api_user.id, upload_id, _clip_url)
    if request.method == "DELETE":
        return tus.tus_delete(g.api_user.id, upload_id)
    return tus.tus_head(g.api_user.id, upload_id, _clip_url)


# Accounts ------------------------------------------------------------------------------------

@bp.get("/accounts")
@require_role("viewer")
@spec.validate(resp=responses(200, AccountList), tags=["accounts"])
def list_accounts():
    """Every account, by platform then handle; credentials appear as a status only."""
    return json_of(AccountList(items=[account_out(a) for a in account_service.list_accounts(db)]))


@bp.post("/accounts")
@require_role("admin")
@spec.validate(json=AccountIn, resp=responses(201, AccountOut, 400, 409), tags=["accounts"])
def create_account(json: AccountIn):
    """Add a main account, or a satellite of a main account of the same platform."""
    account = account_service.create_account(db, json)
    return json_of(account_out(account), 201,
                   Location=url_for("api.get_account", account_id=account.id))


@bp.get("/accounts/<account_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, AccountOut, 400, 404), tags=["accounts"])
def get_account(account_id: str):
    """One account; `credentials` says none, incomplete, complete or unreadable, never a value."""
    return json_of(account_out(account_service.get_account(db, parse_id(account_id, "account_id"))))


@bp.patch("/accounts/<account_id>")
@require_role("admin")
@spec.validate(json=AccountPatch, resp=responses(200, AccountOut, 400, 404, 409), tags=["accounts"])
def update_account(account_id: str, json: AccountPatch):
    """Change some fields of an account (its platform is fixed)."""
    account = account_service.update_account(db, parse_id(account_id, "account_id"), json)
    return json_of(account_out(account))


@bp.put("/accounts/<account_id>/credentials")
@require_role("admin")
@spec.validate(json=CredentialsIn, resp=responses(200, CredentialsOut, 400, 404), tags=["accounts"])
def put_credentials(account_id: str, json: CredentialsIn):
    """Replace an account's credentials (encrypted at rest; never returned)."""
    account_id_ = parse_id(account_id, "account_id")
    account_service.get_account(db, account_id_)
    summary = set_account_credentials(db, account_id_, json.values())
    return json_of(CredentialsOut(account_id=account_id_, credentials=summary.status,
                                  credential_keys_set=list(summary.keys_set),
                                  missing=list(summary.missing)))


@bp.delete("/accounts/<account_id>/credentials")
@require_role("admin")
@spec.validate(resp=responses(204, None, 400, 404), tags=["accounts"])
def delete_credentials(account_id: str):
    """Forget an account's credentials; it publishes through the simulator afterwards."""
    account_id_ = parse_id(account_id, "account_id")
    account_service.get_account(db, account_id_)
    remove_account_credentials(db, account_id_)
    return "", 204


# Ledger --------------------------------------------------------------------------------------

@bp.get("/ledger")
@require_role("viewer")
@spec.validate(query=LedgerQuery, resp=responses(200, LedgerPage, 400), tags=["ledger"])
def ledger(query: LedgerQuery):
    """Ledger events newest first, filtered, one keyset page at a time."""
    page = list_events(
        db.session,
        LedgerFilter(query.event_type, query.entity_type, query.entity_id, query.since, query.until),
        query.cursor,
        query.limit,
    )
    show_emails = g.api_user.has_role("admin")
    return json_of(LedgerPage(items=[event_out(e, show_emails) for e in page.items], next_cursor=page.next_cursor))
