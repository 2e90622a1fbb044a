"""HTTP for media: range requests when serving stored videos, and the upload size allowance.

Request bodies are limited to MAX_CONTENT_LENGTH (1 MiB) everywhere, except on the views marked
`@accepts_uploads`, which may receive MEDIA_MAX_UPLOAD_BYTES. The allowance is decided by the
request class from the matched view, before anything (CSRF included) reads the body.
"""

from __future__ import annotations

from flask import Request, Response, current_app, request
from werkzeug.exceptions import NotFound

from .storage import MediaMissing, Storage

UPLOAD_VIEW_FLAG = "accepts_uploads"
# Only file bodies get the allowance: a JSON body on an upload view is still held to 1 MiB.
UPLOAD_MIMETYPES = ("multipart/form-data", "application/offset+octet-stream")


def accepts_uploads(view):
    """Mark a view as an upload endpoint: its body may be up to MEDIA_MAX_UPLOAD_BYTES."""
    setattr(view, UPLOAD_VIEW_FLAG, True)
    return view


def is_upload_view(endpoint: str | None) -> bool:
    """True when the endpoint's view is marked with @accepts_uploads."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return bool(getattr(view, UPLOAD_VIEW_FLAG, False))


class UploadAllowance(Request):
    """A request whose body limit is MEDIA_MAX_UPLOAD_BYTES for file bodies sent to upload
    views (MAX_CONTENT_LENGTH elsewhere)."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        if current_app and self.mimetype in UPLOAD_MIMETYPES and is_upload_view(self.endpoint):
            return current_app.config["MEDIA_MAX_UPLOAD_BYTES"]
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def send_stored(storage: Storage, key: str | None, content_type: str | None, *,
                max_age: int = 3600, download_name: str | None = None) -> Response:
    """The object `key` as a response that honours `Range` (206, or 416 when unsatisfiable),
    streamed block by block. Keys are never reused, so the key is a strong ETag."""
    content_type = content_type or "application/octet-stream"
    if key is None:
        raise NotFound("this clip has no stored media")
    try:
        size = storage.size(key)
    except MediaMissing:
        raise NotFound("this clip's media is no longer stored") from None
    etag = key.rsplit("/", 1)[-1]
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{etag}"',
               "Cache-Control": f"private, max-age={max_age}"}
    if download_name:
        headers["Content-Disposition"] = f'inline; filename="{download_name}"'
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    byte_range = request.range
    if_range = request.if_range
    if byte_range is not None and (len(byte_range.ranges) != 1
                                   or (if_range.etag and if_range.etag != etag)):
        byte_range = None  # several ranges, or the client's copy is another version: send it all
    start, stop = 0, size
    status = 200
    if byte_range is not None:
        span = byte_range.range_for_length(size)
        if span is None:
            return _unsatisfiable(size)
        start, stop = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    body = storage.stream(key, start, stop - start) if request.method != "HEAD" else iter(())
    response = Response(body, status=status, mimetype=content_type, headers=headers,
                        direct_passthrough=True)
    response.content_length = stop - start
    return response


def _unsatisfiable(size: int) -> Response:
    from .. import problem, wants_json

    detail = f"the range asks for bytes beyond the end of this {size}-byte file"
    headers = {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}
    if wants_json():
        return problem(416, "Range Not Satisfiable", detail, **headers)
    return Response(detail, status=416, mimetype="text/plain", headers=headers)


def with_upload_allowance(request_class: type[Request]) -> type[Request]:
    """`request_class` (the app's, e.g. htmx-flask's) with the upload allowance mixed in."""
    if issubclass(request_class, UploadAllowance):
        return request_class
    return type(f"UploadAllowance{request_class.__name__}", (UploadAllowance, request_class), {})
