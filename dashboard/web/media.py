"""Signed public links to stored videos (`/media/<token>`), for platforms that pull by URL.

No session and no token: the signature (SECRET_KEY) and its age (MEDIA_URL_TTL_SECONDS) are
the permission, and a link opens one video only. Range requests are honoured.
"""

from __future__ import annotations

from flask import Blueprint
from werkzeug.exceptions import Forbidden

from ..media.http import send_stored
from ..media.sources import object_for_token
from ..media.storage import get_storage

bp = Blueprint("media", __name__, url_prefix="/media")


@bp.get("/<token>")
def signed(token: str):
    """The video a signed link names, while the link is valid (403 once expired or forged)."""
    found = object_for_token(token)
    if found is None:
        raise Forbidden("this media link is invalid or has expired")
    key, content_type = found
    return send_stored(get_storage(), key, content_type, max_age=300)
