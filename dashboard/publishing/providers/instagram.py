"""Instagram Graph API (Reels through a media container).

The stub client (PROVIDER_MODE=stub); the live client and its error table join it here.
"""

from __future__ import annotations

import uuid

from .stub import PostRef, ProviderClient, _digits


class InstagramGraphClient(ProviderClient):
    """Instagram Graph API: a REELS media container, then media_publish."""

    platform = "instagram"
    name = "instagram_graph"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return _digits(17)  # the container (creation) id

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        media_id = "17" + _digits(16)
        shortcode = uuid.uuid4().hex[:11]
        return PostRef(media_id, f"https://www.instagram.com/reel/{shortcode}/")
