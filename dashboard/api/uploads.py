"""The tus 1.0 protocol (core, creation, termination) over the uploads service, and the
multipart `file` part of the clip endpoints. Mounted twice: `/api/uploads` (Bearer tokens) and
`/clips/uploads` (the pages' session, with the CSRF token in a header).

    OPTIONS  <base>            Tus-Version, Tus-Extension, Tus-Max-Size
    POST     <base>            Upload-Length + Upload-Metadata (filename, title, description, or
                               clip_id to replace that clip's video) -> 201, Location
    HEAD     <base>/<id>       Upload-Offset, Upload-Length (+ Clip-Id, Clip-Location once done)
    PATCH    <base>/<id>       application/offset+octet-stream at Upload-Offset -> 204, the new
                               Upload-Offset; the last one makes the clip (Clip-Id, Clip-Location)
    DELETE   <base>/<id>       forget an unfinished upload -> 204
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable

from flask import Response, current_app, request
from pydantic import ValidationError

from ..errors import DomainError, FieldError, InvalidInput
from ..extensions import db
from ..media import uploads as upload_service
from ..media.storage import staged_file
from ..schemas import ClipUploadFields

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


class TusVersionMismatch(DomainError):
    status = 412
    title = "Precondition failed"

    @property
    def headers(self) -> dict[str, str]:
        return {"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION}


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"


def _tus(**headers) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **{k.replace("_", "-"): str(v) for k, v in headers.items()}}


def _check_version() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusVersionMismatch(f"send 'Tus-Resumable: {TUS_VERSION}' (the only tus version served)")


def _int_header(name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit():
        raise InvalidInput.field(name, f"must be a whole number of bytes, got {raw!r}")
    return int(raw)


def parse_metadata(raw: str) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        key, _, value = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput.field(f"Upload-Metadata.{key}", "is not base64 of UTF-8 text") from None
    return metadata


def _upload_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput.field("upload_id", f"{value!r} is not an upload id") from None


def tus_options() -> Response:
    """What this tus server speaks."""
    return Response(status=204, headers=_tus(
        Tus_Version=TUS_VERSION, Tus_Extension=TUS_EXTENSIONS,
        Tus_Max_Size=current_app.config["MEDIA_MAX_UPLOAD_BYTES"]))


def tus_create(user_id: uuid.UUID, location_for: Callable[[uuid.UUID], str]) -> Response:
    """POST: a new upload of Upload-Length bytes, for a new clip or to replace one's video."""
    _check_version()
    length = _int_header("Upload-Length")
    upload_service.check_length(length)
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    filename = metadata.get("filename") or metadata.get("name") or ""
    clip_id = None
    clip_fields: dict = {}
    if metadata.get("clip_id"):
        try:
            clip_id = uuid.UUID(metadata["clip_id"])
        except ValueError:
            raise InvalidInput.field("Upload-Metadata.clip_id", "is not a clip id") from None
    else:
        title = metadata.get("title") or filename.rsplit(".", 1)[0]
        try:
            clip_fields = ClipUploadFields(title=title, description=metadata.get("description", "")).model_dump()
        except ValidationError as exc:
            errors = [FieldError(f"Upload-Metadata.{e.field}", e.message)
                      for e in InvalidInput.from_pydantic(exc).errors]
            raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors) from None
    upload = upload_service.create_upload(db, length, filename, created_by_id=user_id,
                                          clip_fields=clip_fields, clip_id=clip_id)
    return Response(status=201, headers=_tus(Location=location_for(upload.id), Upload_Offset=0))


def _clip_headers(upload, clip_location_for) -> dict[str, str]:
    if upload.finished_at is None or upload.clip_id is None:
        return {}
    return {"Clip-Id": str(upload.clip_id), "Clip-Location": clip_location_for(upload.clip_id)}


def tus_head(user_id: uuid.UUID, upload_id: str, clip_location_for) -> Response:
    """HEAD: how much of the upload the server holds."""
    _check_version()
    upload = upload_service.get_upload(db, _upload_id(upload_id), user_id)
    headers = _tus(Upload_Offset=upload_service.upload_offset(upload), Upload_Length=upload.length)
    headers.update(_clip_headers(upload, clip_location_for))
    headers["Cache-Control"] = "no-store"
    return Response(status=200, headers=headers)


def tus_patch(user_id: uuid.UUID, upload_id: str, clip_location_for) -> Response:
    """PATCH: append the body at Upload-Offset; the last bytes make the clip."""
    _check_version()
    if request.mimetype != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"send the bytes with 'Content-Type: {OFFSET_CONTENT_TYPE}'")
    offset = _int_header("Upload-Offset")
    if request.content_length is None:
        raise InvalidInput.field("Content-Length", "is required: say how many bytes this request sends")
    appended = upload_service.append(db, _upload_id(upload_id), offset, request.stream,
                                     request.content_length, user_id)
    headers = _tus(Upload_Offset=appended.offset)
    if appended.clip is not None:
        headers.update({"Clip-Id": str(appended.clip.id),
                        "Clip-Location": clip_location_for(appended.clip.id)})
    return Response(status=204, headers=headers)


def tus_delete(user_id: uuid.UUID, upload_id: str) -> Response:
    """DELETE: forget an unfinished upload and its bytes."""
    _check_version()
    upload_service.cancel_upload(db, _upload_id(upload_id), user_id)
    return Response(status=204, headers=_tus())


def staged_file_part(run: Callable):
    """Save the request's multipart `file` part in the staging folder and call run(path, name).

    The form parser already spooled the part to a temporary file; it is copied once, in blocks.
    """
    part = request.files.get("file")
    if part is None or not part.filename:
        raise InvalidInput.field("file", "send the video as a multipart/form-data part named 'file'")
    with staged_file(current_app.config["MEDIA_UPLOAD_DIR"], suffix=".part") as path:
        part.save(path)
        return run(path, part.filename)
