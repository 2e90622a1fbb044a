"""What the publishing engine gets for a clip's video: a `MediaSource` (a local file to upload
and/or a signed, expiring public URL a platform may pull), and the signed URLs themselves.

A signed URL is `MEDIA_PUBLIC_URL/media/<token>`: the token names one storage key, is signed
with the app's SECRET_KEY and is refused after MEDIA_URL_TTL_SECONDS. It opens one video and
nothing else, which is what Instagram (`video_url`) and TikTok (`PULL_FROM_URL`) need to fetch it.
"""

from __future__ import annotations

import os

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..models import Clip
from ..publishing.providers.base import MediaSource
from .storage import get_storage

URL_SALT = "dashboard-media-url"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=URL_SALT)


def signed_media_url(key: str, content_type: str) -> str | None:
    """A public URL for the storage object `key`, valid MEDIA_URL_TTL_SECONDS; None when
    MEDIA_PUBLIC_URL is not set (the dashboard is not reachable from the platforms)."""
    base = current_app.config.get("MEDIA_PUBLIC_URL")
    if not base:
        return None
    return f"{base}/media/{_serializer().dumps([key, content_type])}"


def object_for_token(token: str) -> tuple[str, str] | None:
    """(storage key, content type) a signed URL's token names; None when forged or expired."""
    try:
        value = _serializer().loads(token, max_age=current_app.config["MEDIA_URL_TTL_SECONDS"])
    except BadSignature:  # SignatureExpired is one
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        return None
    return value[0], value[1]


def media_source_for(clip: Clip, *, local_file: bool = True) -> MediaSource:
    """Where the engine finds the clip's video.

    An uploaded video: `path` is a file on this machine (the stored file itself, or for S3 a
    cached copy downloaded on first use, so call this outside any database transaction) unless
    `local_file` is False, and `public_url` a signed URL when MEDIA_PUBLIC_URL is set. A clip that
    is a URL string: `public_url` is that URL; a path string that exists here is the `path`.
    """
    key = clip.media_key
    if key is not None:  # an uploaded video
        storage = get_storage()
        return MediaSource(
            path=storage.local_path(key) if local_file else None,
            public_url=signed_media_url(key, clip.media_content_type or "video/mp4"),
            size_bytes=clip.media_size_bytes,
            content_type=clip.media_content_type or "video/mp4",
        )
    if clip.media.startswith(("http://", "https://")):
        return MediaSource(public_url=clip.media)
    path = clip.media if os.path.isfile(clip.media) else None
    return MediaSource(path=path)
